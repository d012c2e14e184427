//! The `vdpbf16ps` microkernel: `C[MR × NR] += α · A_sliver · B_sliver` (or `=`, for the first
//! pass of a β = 0 product) over `⌈kc/2⌉` depth
//! pairs, the tile held in f32 registers. Slivers are pair-interleaved (`pack.rs`): a step reads
//! one pair word per row of `A` (broadcast to all 16 lanes) and `NR/16` vectors of `B` pairs, and
//! each `vdpbf16ps` adds two products into each of 16 f32 lanes, in f32 (the products of two
//! bf16 values are exact in f32; the sums round as f32 additions do).
//!
//! | kernel      | MR × NR | accumulators    | per depth pair                          |
//! |-------------|---------|-----------------|-----------------------------------------|
//! | dpbf16_8x32 | 8 × 32  | 16 zmm (of 32)  | 2 loads of B, 8 broadcasts, 16 vdpbf16ps |
//! | dpbf16_8x16 | 8 × 16  | 8 zmm           | 1 load of B, 8 broadcasts, 8 vdpbf16ps   |
//!
//! Both are one function, `dpbf16_8xv::<V>` with `V = NR/16`; the 8 × 16 one runs products at
//! most 16 columns wide ([`PairKernel::for_columns`]).

/// A pair-interleaved microkernel (see the module header).
#[derive(Clone, Copy, Debug)]
pub struct PairKernel {
    pub name: &'static str,
    pub mr: usize,
    pub nr: usize,
    /// Depth (in bf16 values, even) of one pass of the packed loops.
    pub kc: usize,
    /// # Safety
    /// `a` holds `pairs·mr` words, `b` holds `pairs·nr`, `c` points at an `mr × nr` tile of row
    /// stride `ldc`, and the CPU has AVX-512F and AVX512-BF16 (checked by [`PairKernel::detect`]).
    /// With `store` the tile is overwritten (`C ← α·A·B`, `C` not read), else added to.
    pub run: unsafe fn(pairs: usize, a: *const u32, b: *const u32, c: *mut f32, ldc: usize, alpha: f32, store: bool),
}

/// The largest tile of any pair kernel, for edge tiles computed into a scratch buffer.
pub const MAX_TILE: usize = 8 * 32;

#[cfg(target_arch = "x86_64")]
pub const DPBF16_8X32: PairKernel =
    PairKernel { name: "dpbf16_8x32", mr: 8, nr: 32, kc: 1024, run: x86::dpbf16_8xv::<2> };
/// The half-width tile, for products at most 16 columns wide (a classifier's 10 outputs), where
/// 8 × 32 tiles would compute more padding than values.
#[cfg(target_arch = "x86_64")]
pub const DPBF16_8X16: PairKernel =
    PairKernel { name: "dpbf16_8x16", mr: 8, nr: 16, kc: 1024, run: x86::dpbf16_8xv::<1> };

impl PairKernel {
    /// The kernel to run a product `n` columns wide with: [`DPBF16_8X16`] in place of
    /// [`DPBF16_8X32`] where `n ≤ 16`, else `self`.
    pub fn for_columns(self, n: usize) -> PairKernel {
        #[cfg(target_arch = "x86_64")]
        if self.name == DPBF16_8X32.name && n <= DPBF16_8X16.nr {
            return DPBF16_8X16;
        }
        let _ = n;
        self
    }

    /// The `vdpbf16ps` kernel if this CPU runs it, else the missing feature.
    pub fn detect() -> Result<PairKernel, String> {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::convert::has_avx512_bf16() {
                return Ok(DPBF16_8X32);
            }
            if !crate::simd::has_avx512() {
                return Err("the CPU lacks AVX-512F (and AVX512-BF16)".into());
            }
            Err("the CPU lacks AVX512-BF16 (vdpbf16ps)".into())
        }
        #[cfg(not(target_arch = "x86_64"))]
        Err(format!("vdpbf16ps is an x86_64 instruction; this is {}", std::env::consts::ARCH))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 16 bf16 pairs as the type `vdpbf16ps` takes (the same 64 bytes).
    #[inline(always)]
    fn pairs(v: __m512i) -> __m512bh {
        // SAFETY: both are plain 64-byte vectors; every bit pattern is valid in each.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// AVX512-BF16, 8 × 16·V: 8·V zmm accumulators (see the module header).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn dpbf16_8xv<const V: usize>(
        n_pairs: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        ldc: usize,
        alpha: f32,
        store: bool,
    ) {
        // As the f32 kernel does: the C tile is touched only after the whole depth, so ask for it now.
        for i in 0..8 {
            for v in 0..V {
                _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 16 * v) as *const i8);
            }
        }
        let mut acc = [[_mm512_setzero_ps(); V]; 8];
        for q in 0..n_pairs {
            // SAFETY: q < n_pairs, so every load stays inside the packed slivers.
            unsafe {
                let bq: [__m512bh; V] =
                    std::array::from_fn(|v| pairs(_mm512_loadu_si512(b.add((q * V + v) * 16).cast())));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = pairs(_mm512_set1_epi32(*a.add(q * 8 + i) as i32));
                    for (r, &bv) in row.iter_mut().zip(&bq) {
                        *r = _mm512_dpbf16_ps(*r, ai, bv);
                    }
                }
            }
        }
        let alpha = _mm512_set1_ps(alpha);
        for (i, row) in acc.iter().enumerate() {
            for (v, &r) in row.iter().enumerate() {
                // SAFETY: row i of the tile holds 16·V values at c + i·ldc.
                unsafe {
                    let at = c.add(i * ldc + 16 * v);
                    let out =
                        if store { _mm512_mul_ps(alpha, r) } else { _mm512_fmadd_ps(alpha, r, _mm512_loadu_ps(at)) };
                    _mm512_storeu_ps(at, out);
                }
            }
        }
    }
}
