//! FNV-1a, the one hash behind every fingerprint the ranks of a distributed run compare (the
//! data, the model's spec, its parameters): `h ← (h ⊕ byte) · 0x100000001b3` over each byte, from
//! the offset basis. Byte by byte, so that every bit of the input reaches the low bits of the
//! product (a word-wise variant cannot see two flips of a word's top bit).

/// The offset basis, the hash of nothing.
pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a continued from `hash` over `bytes`.
pub fn extend(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_every_bit_counts() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(extend(OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(extend(OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(extend(OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        // Two flips of the top bit of bytes 7 and 15 (what a word-wise hash cannot see).
        let mut bytes = [0u8; 16];
        let before = extend(OFFSET, &bytes);
        bytes[7] ^= 0x80;
        bytes[15] ^= 0x80;
        assert_ne!(extend(OFFSET, &bytes), before);
    }
}
