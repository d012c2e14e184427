//! The functions a shared library exports, read from its ELF dynamic symbol table, so that an
//! error about a missing symbol can list the ones that are there.
//!
//! Only 64-bit little-endian ELF (x86_64 and aarch64 Linux) is read; anything else gives `None`
//! and the error says what is expected instead. Every offset is bounds-checked: the bytes are
//! the user's file, not trusted.

/// `SHT_DYNSYM`: the section type of the dynamic symbol table.
const SHT_DYNSYM: u32 = 11;
/// `STT_FUNC`: the symbol type of a function.
const STT_FUNC: u8 = 2;
/// The size of one `Elf64_Sym`.
const SYM_SIZE: usize = 24;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?)).ok()
}

/// One section header's `(sh_type, sh_offset, sh_size, sh_link)`.
fn section(bytes: &[u8], index: usize) -> Option<(u32, usize, usize, usize)> {
    // e_shoff at 0x28, e_shentsize at 0x3A.
    let header = u64_at(bytes, 0x28)?.checked_add(index.checked_mul(usize::from(u16_at(bytes, 0x3A)?))?)?;
    Some((
        u32_at(bytes, header + 0x04)?,
        u64_at(bytes, header + 0x18)?,
        u64_at(bytes, header + 0x20)?,
        u32_at(bytes, header + 0x28)? as usize,
    ))
}

/// The names of the functions `bytes` (a shared library) defines and exports, sorted; `None`
/// when it is not a 64-bit little-endian ELF file or its tables do not read.
pub fn exported_functions(bytes: &[u8]) -> Option<Vec<String>> {
    // "\x7fELF", ELFCLASS64, ELFDATA2LSB.
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let sections = usize::from(u16_at(bytes, 0x3C)?);
    let (_, symbols, size, strings) =
        (0..sections).filter_map(|i| section(bytes, i)).find(|&(kind, ..)| kind == SHT_DYNSYM)?;
    let (_, names, names_size, _) = section(bytes, strings)?;
    let names = bytes.get(names..names.checked_add(names_size)?)?;
    let table = bytes.get(symbols..symbols.checked_add(size)?)?;
    let mut found: Vec<String> = table
        .chunks_exact(SYM_SIZE)
        .filter(|sym| sym[4] & 0xf == STT_FUNC && u16_at(sym, 6) != Some(0))
        .filter_map(|sym| {
            let name = names.get(u32_at(sym, 0)? as usize..)?;
            let end = name.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&name[..end]).ok().map(str::to_string)
        })
        .collect();
    found.sort();
    found.dedup();
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_elf_lists_nothing() {
        assert_eq!(exported_functions(b"not a library at all"), None);
        assert_eq!(exported_functions(b"\x7fELF\x02\x01"), None, "truncated after the magic");
        assert_eq!(exported_functions(b""), None);
    }
}
