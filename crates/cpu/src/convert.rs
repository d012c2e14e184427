//! Conversions between f32 and the narrow types (bf16 and f16 held as their `u16` bits) a slice
//! at a time with SIMD, for the kernels that convert inside their loops (the narrow GEMM's
//! operands, the narrow ReLU and softmax strips). One value at a time, and on CPUs without the
//! instructions, they are the `half` crate's conversions, as everywhere else in kernelab.
//!
//! | conversion | SIMD (where the CPU has it; `half` elsewhere and for the tail)  |
//! |------------|-----------------------------------------------------------------|
//! | bf16 → f32 | AVX-512F: `vpmovzxwd` + `vpslld` (exact), 16 values a step      |
//! | f32 → bf16 | AVX512-BF16: `vcvtneps2bf16` (nearest even), 16 values a step   |
//! | f16 → f32  | F16C: `vcvtph2ps` (exact), 8 values a step                      |
//! | f32 → f16  | F16C: `vcvtps2ph` (imm 0: nearest even), 8 values a step        |
//!
//! Rounding is to nearest, ties to even; NaN stays NaN (quiet, sign kept); a finite f32 beyond
//! the narrow type's largest value rounds to ±∞, as IEEE 754 says, and is counted by the caller
//! (never flushed). One difference between the two bf16 narrowings: `vcvtneps2bf16` treats an f32
//! *subnormal* input (|x| < 2⁻¹²⁶ ≈ 1.2·10⁻³⁸) as zero, while [`f32_to_bf16`] rounds it to the
//! nearest bf16 subnormal; both are within bf16's absolute error there (2⁻¹³³), and
//! `simd_narrowing_flushes_only_f32_subnormals` pins the difference down.

/// A narrow storage type: bf16 (8 exponent bits, 7 fraction bits) or IEEE binary16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Narrow {
    Bf16,
    F16,
}

impl Narrow {
    /// The value of the bits `h`, exactly.
    #[inline]
    pub fn to_f32(self, h: u16) -> f32 {
        match self {
            Narrow::Bf16 => bf16_to_f32(h),
            Narrow::F16 => f16_to_f32(h),
        }
    }

    /// The bits nearest to `x` (ties to even).
    #[inline]
    pub fn from_f32(self, x: f32) -> u16 {
        match self {
            Narrow::Bf16 => f32_to_bf16(x),
            Narrow::F16 => f32_to_f16(x),
        }
    }

    /// `dst[i] ← src[i]` as f32, exactly; SIMD where the CPU has it.
    pub fn widen(self, src: &[u16], dst: &mut [f32]) {
        debug_assert_eq!(src.len(), dst.len());
        #[cfg(target_arch = "x86_64")]
        {
            let done = match self {
                // SAFETY (both): the feature is checked right here.
                Narrow::Bf16 if crate::simd::has_avx512() => unsafe { x86::widen_bf16(src, dst) },
                Narrow::F16 if is_x86_feature_detected!("f16c") => unsafe { x86::widen_f16(src, dst) },
                _ => 0,
            };
            dst[done..].iter_mut().zip(&src[done..]).for_each(|(d, &s)| *d = self.to_f32(s));
        }
        #[cfg(not(target_arch = "x86_64"))]
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = self.to_f32(s));
    }

    /// `dst[i] ← src[i]` rounded to the narrow type (ties to even); SIMD where the CPU has it
    /// (see the module header for the one way `vcvtneps2bf16` differs).
    pub fn narrow(self, src: &[f32], dst: &mut [u16]) {
        debug_assert_eq!(src.len(), dst.len());
        #[cfg(target_arch = "x86_64")]
        {
            let done = match self {
                // SAFETY (both): the feature is checked right here.
                Narrow::Bf16 if has_avx512_bf16() => unsafe { x86::narrow_bf16(src, dst) },
                Narrow::F16 if is_x86_feature_detected!("f16c") => unsafe { x86::narrow_f16(src, dst) },
                _ => 0,
            };
            dst[done..].iter_mut().zip(&src[done..]).for_each(|(d, &s)| *d = self.from_f32(s));
        }
        #[cfg(not(target_arch = "x86_64"))]
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = self.from_f32(s));
    }
}

impl Narrow {
    /// `dst[i] ← src[i]` rounded exactly as the `half` crate rounds one value (so subnormals are
    /// kept, unlike [`Narrow::narrow`]'s `vcvtneps2bf16`): bf16 by integer arithmetic on
    /// AVX-512F where the CPU has it (`half` for the tail and elsewhere), f16 by `half`'s slice
    /// conversion (F16C where the CPU has it). The `narrow` op, uploads and the fused Adam step
    /// round through here.
    pub fn round(self, src: &[f32], dst: &mut [u16]) {
        use half::slice::HalfFloatSliceExt;
        debug_assert_eq!(src.len(), dst.len());
        match self {
            Narrow::Bf16 => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the feature is checked right here.
                let done = if crate::simd::has_avx512() { unsafe { x86::round_bf16(src, dst) } } else { 0 };
                #[cfg(not(target_arch = "x86_64"))]
                let done = 0;
                bytemuck::cast_slice_mut::<u16, half::bf16>(&mut dst[done..]).convert_from_f32_slice(&src[done..]);
            }
            Narrow::F16 => bytemuck::cast_slice_mut::<u16, half::f16>(dst).convert_from_f32_slice(src),
        }
    }
}

/// Whether the CPU has AVX512-BF16 (`vdpbf16ps`, `vcvtneps2bf16`) beside AVX-512F.
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The value of the bf16 bits `h`: the upper half of an f32.
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    half::bf16::from_bits(h).to_f32()
}

/// `x` rounded to bf16, to nearest with ties to even; NaN stays NaN.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// The value of the IEEE binary16 bits `h`, exactly (subnormals, ±∞ and NaN included).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// `x` rounded to IEEE binary16, to nearest with ties to even (beyond 65520 in magnitude ±∞).
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Widens the whole 16-value chunks of `src`; returns how many values it converted.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `dst` is at least as long as `src`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn widen_bf16(src: &[u16], dst: &mut [f32]) -> usize {
        let whole = src.len() / 16 * 16;
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 ≤ whole ≤ both lengths.
            unsafe {
                let h = _mm256_loadu_si256(src.as_ptr().add(i).cast());
                let w = _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h));
                _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_castsi512_ps(w));
            }
        }
        whole
    }

    /// Rounds the whole 16-value chunks of `src` as `half::bf16::from_f32` does: NaN to
    /// `(bits >> 16) | 0x40` (quiet, sign and payload top kept), else `bits + 0x7FFF + lsb`
    /// shifted down (nearest, ties to even; overflow carries into ±∞). Returns how many it did.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `dst` is at least `src.len()` long.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn round_bf16(src: &[f32], dst: &mut [u16]) -> usize {
        let full = src.len() - src.len() % 16;
        let (bias, one, quiet) = (_mm512_set1_epi32(0x7FFF), _mm512_set1_epi32(1), _mm512_set1_epi32(0x40));
        for at in (0..full).step_by(16) {
            // SAFETY: `at + 16 ≤ full ≤ src.len() ≤ dst.len()`.
            unsafe {
                let x = _mm512_loadu_ps(src.as_ptr().add(at));
                let bits = _mm512_castps_si512(x);
                let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), one);
                let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, _mm512_add_epi32(bias, lsb)));
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
                let quieted = _mm512_or_si512(_mm512_srli_epi32::<16>(bits), quiet);
                let out = _mm512_mask_blend_epi32(nan, rounded, quieted);
                _mm256_storeu_si256(dst.as_mut_ptr().add(at).cast(), _mm512_cvtepi32_epi16(out));
            }
        }
        full
    }

    /// Narrows the whole 16-value chunks of `src` by `vcvtneps2bf16`; returns how many it converted.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX512-BF16; `dst` is at least as long as `src`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn narrow_bf16(src: &[f32], dst: &mut [u16]) -> usize {
        let whole = src.len() / 16 * 16;
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 ≤ whole ≤ both lengths; __m256bh and __m256i are both 32 bytes.
            unsafe {
                let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(src.as_ptr().add(i))));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), h);
            }
        }
        whole
    }

    /// Widens the whole 8-value chunks of `src` by `vcvtph2ps`; returns how many it converted.
    ///
    /// # Safety
    /// The CPU has F16C; `dst` is at least as long as `src`.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn widen_f16(src: &[u16], dst: &mut [f32]) -> usize {
        let whole = src.len() / 8 * 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: i + 8 ≤ whole ≤ both lengths.
            unsafe {
                let w = _mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().add(i).cast()));
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), w);
            }
        }
        whole
    }

    /// Narrows the whole 8-value chunks of `src` by `vcvtps2ph` (nearest even); returns how many.
    ///
    /// # Safety
    /// The CPU has F16C; `dst` is at least as long as `src`.
    #[target_feature(enable = "avx,f16c")]
    pub unsafe fn narrow_f16(src: &[f32], dst: &mut [u16]) -> usize {
        let whole = src.len() / 8 * 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: i + 8 ≤ whole ≤ both lengths.
            unsafe {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that probe every rounding case: ties both ways, subnormals, overflow, ±0, ∞, NaN.
    fn probes() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            3.0e38,
            -3.4e38,
            65504.0,
            65519.0,
            65520.0,
            1e-8,
            6.0e-8,
            2.9e-8,
            1e-40,
            -1e-45,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
        ];
        // A spread of bit patterns, every exponent.
        v.extend((0..4000u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761))));
        v.retain(|x| !x.is_nan());
        v
    }

    #[test]
    fn simd_conversions_agree_with_the_scalar_ones() {
        let x: Vec<f32> = probes().into_iter().filter(|v| v.abs() >= f32::MIN_POSITIVE || *v == 0.0).collect();
        for kind in [Narrow::Bf16, Narrow::F16] {
            let mut h = vec![0u16; x.len()];
            kind.narrow(&x, &mut h);
            let scalar: Vec<u16> = x.iter().map(|&v| kind.from_f32(v)).collect();
            assert_eq!(h, scalar, "{kind:?} narrowing");
            let mut back = vec![f32::NAN; x.len()];
            kind.widen(&h, &mut back);
            let want: Vec<u32> = h.iter().map(|&b| kind.to_f32(b).to_bits()).collect();
            assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want, "{kind:?} widening");
        }
    }

    #[test]
    fn round_is_halfs_rounding_bit_for_bit() {
        let mut src = probes();
        src.extend((0..1000u32).map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761))));
        for kind in [Narrow::Bf16, Narrow::F16] {
            let mut got = vec![0u16; src.len()];
            kind.round(&src, &mut got);
            let want: Vec<u16> = src.iter().map(|&x| kind.from_f32(x)).collect();
            assert_eq!(got, want, "{kind:?}");
        }
    }

    #[test]
    fn simd_narrowing_flushes_only_f32_subnormals() {
        let x = [1e-40f32; 17];
        let mut h = [0xffffu16; 17];
        Narrow::Bf16.narrow(&x, &mut h);
        let scalar = f32_to_bf16(1e-40);
        assert_ne!(scalar, 0, "the scalar rounding keeps the subnormal");
        // The 16-value SIMD chunk flushes it where the CPU has vcvtneps2bf16; the scalar tail does not.
        let flushed = if has_avx512_bf16() { 0 } else { scalar };
        assert!(h[..16].iter().all(|&v| v == flushed) && h[16] == scalar, "{h:x?}");
    }
}
