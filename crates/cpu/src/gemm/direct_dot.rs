//! The direct path's dot kernel ([`super::direct`], NT products with few rows or a 10-class
//! layer's ten columns): `C[i, j] ← α·Σ_p A[i, p]·B[j, p] + β·C[i, j]` for `MI` ≤ 4 rows of `A`
//! and `NJ` ≤ 5 rows of `B`, both contiguous along the depth, in one [`Tile`] of the direct
//! drivers: 16 depths per FMA into `MI × NJ` accumulators, the depth's tail masked, then each
//! row's accumulators reduced four at a time by one transposing sum ([`sum4`], which the
//! dot-panel kernel shares so that both sum in one order), and the epilogue in the scalar store.

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{dot_tile, sum4};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::direct::Tile;
    use super::super::prepacked::Epilogue;
    use crate::simd::first_lanes as lanes;

    /// Picks the monomorphized dot kernel for `rows` (1–4) and the tile's width (1–4).
    #[target_feature(enable = "avx512f")]
    pub(in crate::gemm) unsafe fn dot_tile(rows: usize, t: &Tile) {
        macro_rules! by_width {
            ($mi:literal) => {
                match t.width {
                    5 => dot::<$mi, 5>(t),
                    4 => dot::<$mi, 4>(t),
                    3 => dot::<$mi, 3>(t),
                    2 => dot::<$mi, 2>(t),
                    _ => dot::<$mi, 1>(t),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match rows {
                4 => by_width!(4),
                3 => by_width!(3),
                2 => by_width!(2),
                _ => by_width!(1),
            }
        }
    }

    /// `C[i, j] ← α·Σ_p A[i, p]·B[j, p] + β·C[i, j]` for `MI` rows of `A` and `NJ` rows of `B`:
    /// each accumulator sums 16 depths at once; the tail of the depth is a masked load.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot<const MI: usize, const NJ: usize>(t: &Tile) {
        let (a, b, rs, ldb, kc) = (t.a, t.b, t.rs, t.ldb, t.kc);
        let mut acc = [[_mm512_setzero_ps(); NJ]; MI];
        // One depth step of 16 (or fewer, under the tail's mask) for every accumulator; the load
        // is a parameter so that the whole steps use plain loads (measured the same as writing
        // the two loops out, 64x10x128:NT 0.90–0.93 µs either way).
        // SAFETY (both uses): `load` reads only the depths from p inside the pass's kc.
        let step = |acc: &mut [[__m512; NJ]; MI], p: usize, load: &dyn Fn(*const f32) -> __m512| {
            let mut bv = [_mm512_setzero_ps(); NJ];
            for (j, out) in bv.iter_mut().enumerate() {
                *out = load(b.wrapping_add(j * ldb + p));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = load(a.wrapping_add(i * rs + p));
                for (x, &bj) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(av, bj, *x);
                }
            }
        };
        let mut p = 0;
        while p + 16 <= kc {
            step(&mut acc, p, &|at| unsafe { _mm512_loadu_ps(at) });
            p += 16;
        }
        if p < kc {
            let mask = lanes(kc - p);
            step(&mut acc, p, &|at| unsafe { _mm512_maskz_loadu_ps(mask, at) });
        }
        let zero = _mm512_setzero_ps();
        for (i, row) in acc.iter().enumerate() {
            // The row's sums, four columns per transposing sum, out through a small array: on
            // Zen 5 this measured 3% faster than one 128-bit store of four (64x10x128:NT, one
            // thread, 0.98 → 0.95 µs).
            let mut sums = [0.0f32; 8];
            for (q, out) in sums.chunks_exact_mut(4).enumerate().take(NJ.div_ceil(4)) {
                let pick = |j: usize| row.get(4 * q + j).copied().unwrap_or(zero);
                // SAFETY: `out` holds the four lanes stored.
                unsafe { _mm_storeu_ps(out.as_mut_ptr(), sum4(pick(0), pick(1), pick(2), pick(3))) };
            }
            for (j, &s) in sums.iter().take(NJ).enumerate() {
                // SAFETY: row i < MI and column j < NJ of the tile lie inside C.
                unsafe {
                    let dst = t.c.add(i * t.ldc + j);
                    let s = if t.alpha == 1.0 { s } else { t.alpha * s };
                    let s = if t.beta == 0.0 { s } else { s + t.beta * *dst };
                    let s = if t.bias.is_null() { s } else { s + *t.bias.add(j) };
                    *dst = if t.relu { Epilogue::relu(s) } else { s };
                }
            }
        }
    }

    /// The sums of four zmm's lanes, as `[Σw, Σx, Σy, Σz]`: pairs are interleaved and added
    /// (`unpack`), the pairs' halves gathered and added (`shuffle`), then the four 128-bit lanes
    /// folded — 13 instructions where four separate reductions take 32.
    #[target_feature(enable = "avx512f")]
    pub(in crate::gemm) fn sum4(w: __m512, x: __m512, y: __m512, z: __m512) -> __m128 {
        // Per 128-bit lane: [w, x, w, x] and [y, z, y, z] partial sums.
        let wx = _mm512_add_ps(_mm512_unpacklo_ps(w, x), _mm512_unpackhi_ps(w, x));
        let yz = _mm512_add_ps(_mm512_unpacklo_ps(y, z), _mm512_unpackhi_ps(y, z));
        // Per 128-bit lane: [w, x, y, z].
        let wxyz = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(wx, yz), _mm512_shuffle_ps::<0xEE>(wx, yz));
        // Fold the four lanes: swap the 256-bit halves and add, then swap neighbouring lanes.
        let halves = _mm512_add_ps(wxyz, _mm512_shuffle_f32x4::<0x4E>(wxyz, wxyz));
        let all = _mm512_add_ps(halves, _mm512_shuffle_f32x4::<0xB1>(halves, halves));
        _mm512_castps512_ps128(all)
    }
}
