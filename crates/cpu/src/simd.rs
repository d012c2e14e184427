//! Run-time choice of instruction set for the elementwise and row-wise kernels.
//!
//! Those kernels are written once, as plain loops over slices with explicit lane accumulators and a
//! branch-free [`exp`], and compiled three times by `multiversion!`: for AVX-512F, for AVX2+FMA
//! and for the portable baseline. The compiler vectorizes each copy with the widest registers its
//! target allows; the variant name (`avx512`, `avx2`, `portable`) picks the copy at run time.

/// An instruction set a kernel copy was compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The variant name: `avx512`, `avx2`, `portable`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// `None` when this CPU can run code for `self`, else why not.
    pub fn unavailable(self) -> Option<String> {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 if !is_x86_feature_detected!("avx512f") => Some("the CPU lacks AVX-512F".into()),
                Isa::Avx2 if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) => {
                    Some("the CPU lacks AVX2 or FMA".into())
                }
                _ => None,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            match self {
                Isa::Portable => None,
                other => Some(format!("{} is x86_64 only; this is {}", other.name(), std::env::consts::ARCH)),
            }
        }
    }

    /// The widest instruction set this CPU runs.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().find(|i| i.unavailable().is_none()).unwrap_or(Isa::Portable)
    }
}

/// Whether this CPU has AVX-512F, what every kernel written with AVX-512 intrinsics here needs
/// (no allocation, unlike [`Isa::unavailable`], so a kernel's dispatch may ask every launch).
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `pub fn $name(isa, args…)` that runs `$body` compiled for the chosen [`Isa`].
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        pub fn $name(isa: $crate::simd::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match isa {
                // SAFETY: an `Isa` other than Portable reaches a kernel only after
                // `Isa::unavailable` confirmed the CPU has its features (see `CpuBackend::launch`).
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Isa::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

/// Lanes of the explicit accumulators in reductions: enough for a 512-bit register, so the
/// compiler can keep a sum in vector registers without reordering a sequential one.
pub const LANES: usize = 16;

/// `Σ x` with [`LANES`] partial sums.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &v)| *a += v);
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ x·y` with [`LANES`] partial sums.
#[inline(always)]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `max x` with [`LANES`] partial maxima (−∞ for an empty slice).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, &v)| *a = a.max(v));
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// `eˣ` without a libm call, so loops over it vectorize: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (ln 2 split in two for an exact reduction), `eʳ` by its degree-7 Taylor polynomial (truncation
/// below 1e-8 relative), and `2ⁿ` built in the exponent bits. `n` is rounded by adding 1.5·2²³,
/// which leaves it, as an integer, in the low mantissa bits: no rounding or conversion
/// instruction that a vector unit may lack. Within 2 ulp of `exp` for `x ∈ [−87.3, 88.7]`;
/// 0 below (where `eˣ` is denormal), ∞ above, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUNDER: f32 = 12_582_912.0; // 1.5·2²³
    let xc = x.clamp(-87.3, 88.7);
    let t = xc * std::f32::consts::LOG2_E + ROUNDER;
    let n = t - ROUNDER;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // t's bits minus ROUNDER's are n in two's complement; n + 127 ∈ [1, 254] is the biased exponent.
    let two_to_n = f32::from_bits(t.to_bits().wrapping_sub(ROUNDER.to_bits()).wrapping_add(127) << 23);
    let e = p * two_to_n;
    if x < -87.3 {
        0.0
    } else if x > 88.7 {
        f32::INFINITY
    } else {
        e
    }
}

/// The mask of a zmm's first `n` lanes (all sixteen from `n ≥ 16`): the tail of a row, a depth or
/// an array under a masked load or store.
#[cfg(target_arch = "x86_64")]
pub fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    ((1u32 << n.min(16)) - 1) as std::arch::x86_64::__mmask16
}

/// [`exp`] on the 16 lanes of a zmm, for kernels written with intrinsics (the row-wise kernels'
/// rows narrower than a vector): the same reduction, polynomial and constants, each step the same
/// single rounding (no fused multiply-adds), so it agrees with [`exp`] lane by lane.
///
/// # Safety
/// The CPU has AVX-512F (a safe call needs the caller's own `avx512f` target feature).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub fn exp_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUNDER: f32 = 12_582_912.0;
    let splat = _mm512_set1_ps;
    let (low, high) = (splat(-87.3), splat(88.7));
    let xc = _mm512_min_ps(_mm512_max_ps(x, low), high);
    let t = _mm512_add_ps(_mm512_mul_ps(xc, splat(std::f32::consts::LOG2_E)), splat(ROUNDER));
    let n = _mm512_sub_ps(t, splat(ROUNDER));
    let r = _mm512_sub_ps(_mm512_sub_ps(xc, _mm512_mul_ps(n, splat(LN2_HI))), _mm512_mul_ps(n, splat(LN2_LO)));
    // Horner from the inside out, as `exp` writes it: 1 + r·(1 + r·(½ + … + r·(1/720 + r/5040))).
    let mut p = _mm512_div_ps(r, splat(5040.0));
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0] {
        p = _mm512_mul_ps(r, _mm512_add_ps(splat(c), p));
    }
    let p = _mm512_add_ps(splat(1.0), p);
    let bias = _mm512_set1_epi32(ROUNDER.to_bits().wrapping_neg().wrapping_add(127) as i32);
    let two_to_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(_mm512_castps_si512(t), bias)));
    let e = _mm512_mul_ps(p, two_to_n);
    // Below the range 0, above it ∞, NaN as it came (the clamp above turned it into a bound).
    let e = _mm512_maskz_mov_ps(!_mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, low), e);
    let e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, high), splat(f32::INFINITY));
    _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x), x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_exp_is_the_scalar_one_lane_by_lane() {
        use std::arch::x86_64::*;
        if Isa::Avx512.unavailable().is_some() {
            return;
        }
        let mut x: Vec<f32> = (0..4000).map(|i| -100.0 + i as f32 * 0.0503).collect();
        x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -87.3, 88.7, 0.0, -0.0, 1e-30, -87.29, 88.69]);
        x.resize(x.len().next_multiple_of(16), 1.0);
        for chunk in x.chunks_exact(16) {
            let mut got = [0.0f32; 16];
            // SAFETY: AVX-512F is present (checked above); both arrays hold 16 values.
            unsafe { _mm512_storeu_ps(got.as_mut_ptr(), exp_avx512(_mm512_loadu_ps(chunk.as_ptr()))) };
            for (&v, &g) in chunk.iter().zip(&got) {
                let want = exp(v);
                assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "exp({v}): {g} against {want}");
            }
        }
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (f64::from(exp(x)), f64::from(x).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.013;
        }
        assert!(worst < 2.0 * f64::from(f32::EPSILON), "worst relative error {worst:e}");
        assert_eq!((exp(-100.0), exp(0.0), exp(100.0)), (0.0, 1.0, f32::INFINITY));
        assert!(exp(f32::NEG_INFINITY) == 0.0);
    }

    #[test]
    fn lane_reductions_match_sequential_ones() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        assert!((sum(&x) - x.iter().sum::<f32>()).abs() < 1e-5);
        assert!((dot(&x, &y) - x.iter().zip(&y).map(|(a, b)| a * b).sum::<f32>()).abs() < 1e-5);
        assert_eq!(max(&x), x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
