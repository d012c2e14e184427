//! Packing: copying a block of `op(A)` or `op(B)` into the order the microkernel reads, so that its
//! inner loop walks memory with unit stride whatever the operand's layout or transpose.
//!
//! - `op(A)` (rows `i`, depth `p`) goes into slivers of `MR` rows: `packed[(s·kc + p)·MR + r]` holds
//!   `α·op(A)[i₀ + s·MR + r, p₀ + p]`.
//! - `op(B)` (depth `p`, columns `j`) goes into slivers of `NR` columns: `packed[(s·kc + p)·NR + c]`
//!   holds `op(B)[p₀ + p, j₀ + s·NR + c]`.
//!
//! Rows or columns past the matrix's edge are packed as zeros, so every sliver is full and the
//! microkernel needs no edge cases.

use std::ops::Range;

use kernelab_tensor::Gemm;

/// A packing buffer whose contents start on a 64-byte cache line, so that the microkernel's
/// vector loads never straddle two lines.
#[derive(Debug, Default)]
pub struct Packed(Vec<f32>);

impl Packed {
    /// `len` zeroed values, cache-line aligned.
    pub(super) fn reset(&mut self, len: usize) -> &mut [f32] {
        self.0.clear();
        self.0.resize(len + 16, 0.0);
        let offset = self.0.as_ptr().align_offset(64).min(16);
        &mut self.0[offset..offset + len]
    }

    /// The values written by the last `pack_*` call.
    pub fn values(&self, len: usize) -> &[f32] {
        let offset = self.0.as_ptr().align_offset(64).min(16);
        &self.0[offset..offset + len]
    }
}

/// Packs `α·op(A)[rows, depth]` into `MR`-row slivers (see the module header).
pub fn pack_a(
    a: &[f32],
    g: &Gemm,
    rows: std::ops::Range<usize>,
    depth: std::ops::Range<usize>,
    mr: usize,
    buf: &mut Packed,
) {
    let kc = depth.len();
    let slivers = rows.len().div_ceil(mr);
    let out = buf.reset(slivers * kc * mr);
    if g.trans_a {
        // A is k × m: op(A)[i, p] = A[p, i]. Each row of A (contiguous in i) splits into runs of
        // MR values, one per sliver, each copied whole.
        for (q, p) in depth.enumerate() {
            let src = &a[p * g.m + rows.start..p * g.m + rows.end];
            for (s, run) in src.chunks(mr).enumerate() {
                let dst = &mut out[s * kc * mr + q * mr..][..run.len()];
                // A whole run of the AVX-512 kernel's eight as one fixed-size copy, which
                // compiles to a vector load, multiply and store instead of a loop.
                match (<&mut [f32; 8]>::try_from(&mut *dst), <&[f32; 8]>::try_from(run)) {
                    (Ok(dst), Ok(run)) => *dst = run.map(|v| g.alpha * v),
                    _ => dst.iter_mut().zip(run).for_each(|(d, &v)| *d = g.alpha * v),
                }
            }
        }
    } else {
        // A is m × k: each row of op(A) is contiguous in p and goes to one lane of its sliver;
        // whole 16 × 16 blocks are transposed in registers, the rest value by value.
        let (whole_rows, whole_depth) = pack_a_blocks(a, g, rows.clone(), depth.clone(), mr, out);
        for (r, i) in rows.enumerate() {
            let sliver = &mut out[(r / mr) * kc * mr..][..kc * mr];
            let lane = r % mr;
            let from = if r < whole_rows { whole_depth } else { 0 };
            for (q, &v) in a[i * g.k + depth.start..i * g.k + depth.end].iter().enumerate().skip(from) {
                sliver[q * mr + lane] = g.alpha * v;
            }
        }
    }
}

/// The part of [`pack_a`]'s non-transposed case that goes by 16 × 16 blocks, two 8-row slivers
/// at a time (AVX-512 and `mr = 8` only): the leading rows and depths it packed, the multiples
/// of 16 below each count, or none.
///
/// On Zen 5, whose 8 × 32 kernel runs 246–254 GFLOP/s on packed slivers alone (93–95% of the FMA
/// peak), packing one value at a time cost about a tenth of a large product. Packed rung, one
/// thread, medians of alternating runs (GFLOP/s, before → after): 1024³ 227 → 236 with these
/// blocks, 1024³:TN 210 → 221 with whole eight-value runs (above), 2048³:NT 213 → 226 with
/// transposed `B` slivers (`pack_b`); OpenBLAS 228–242 beside them.
fn pack_a_blocks(
    a: &[f32],
    g: &Gemm,
    rows: Range<usize>,
    depth: Range<usize>,
    mr: usize,
    out: &mut [f32],
) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if mr == 8 && crate::simd::has_avx512() {
        let (whole_rows, whole_depth) = (rows.len() / 16 * 16, depth.len() / 16 * 16);
        // SAFETY: AVX-512F is present; every block's rows and depths lie inside A (m × k) and
        // its two slivers inside `out` (`⌈rows/8⌉` slivers of `kc·8`).
        unsafe { x86::pack_a_blocks(a, g, rows.start, depth, whole_rows, whole_depth, out) };
        return (whole_rows, whole_depth);
    }
    let _ = (a, g, rows, depth, mr, out);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use kernelab_tensor::Gemm;

    use super::super::transpose::x86::block;

    /// Rows `first..first + rows` (a multiple of 16) × the first `depths` (a multiple of 16) of
    /// `depth`, into 8-row slivers: each 16 × 16 block transposed, its columns scaled by α and
    /// split in halves, the low eight rows to one sliver and the high eight to the next.
    ///
    /// # Safety
    /// AVX-512F is present; the rows and depths lie inside A, and `out` holds their slivers.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pack_a_blocks(
        a: &[f32],
        g: &Gemm,
        first: usize,
        depth: Range<usize>,
        rows: usize,
        depths: usize,
        out: &mut [f32],
    ) {
        let kc = depth.len();
        let alpha = _mm512_set1_ps(g.alpha);
        for r in (0..rows).step_by(16) {
            let (low, high) = ((r / 8) * kc * 8, (r / 8 + 1) * kc * 8);
            for q in (0..depths).step_by(16) {
                // SAFETY (all below): the caller's bounds.
                let columns = unsafe { block(a.as_ptr().add((first + r) * g.k + depth.start + q), g.k) };
                for (d, &column) in columns.iter().enumerate() {
                    let column = if g.alpha == 1.0 { column } else { _mm512_mul_ps(alpha, column) };
                    let at = (q + d) * 8;
                    unsafe {
                        _mm256_storeu_ps(out.as_mut_ptr().add(low + at), _mm512_castps512_ps256(column));
                        let upper = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(column)));
                        _mm256_storeu_ps(out.as_mut_ptr().add(high + at), upper);
                    }
                }
            }
        }
    }
}

/// Packs `op(B)[depth, cols]` into `NR`-column slivers (see the module header).
pub fn pack_b(
    b: &[f32],
    g: &Gemm,
    depth: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    nr: usize,
    buf: &mut Packed,
) {
    let kc = depth.len();
    let slivers = cols.len().div_ceil(nr);
    let out = buf.reset(slivers * kc * nr);
    for s in 0..slivers {
        let j0 = cols.start + s * nr;
        let width = nr.min(cols.end - j0);
        let sliver = &mut out[s * kc * nr..(s + 1) * kc * nr];
        if g.trans_b && width == nr {
            // B is n × k: op(B)[p, j] = B[j, p], so a whole sliver is the transpose of NR rows of
            // B over the pass's depth (16 × 16 blocks in registers where the CPU has AVX-512).
            super::transpose::transpose(&b[j0 * g.k + depth.start..], g.k, nr, kc, sliver);
        } else if g.trans_b {
            // A partial sliver: read each row of B (contiguous in p), scatter by lane.
            for c in 0..width {
                let row = &b[(j0 + c) * g.k + depth.start..(j0 + c) * g.k + depth.end];
                row.iter().enumerate().for_each(|(q, &v)| sliver[q * nr + c] = v);
            }
        } else {
            for (q, p) in depth.clone().enumerate() {
                sliver[q * nr..q * nr + width].copy_from_slice(&b[p * g.n + j0..p * g.n + j0 + width]);
            }
        }
    }
}
