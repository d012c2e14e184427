//! Matrix multiply on the CPU: `C ← α·op(A)·op(B) + β·C`, row-major (see [`Gemm`]).
//!
//! Variants, slowest first:
//! - `naive`: the textbook triple loop, one dot product per element of `C`, one thread. Reads
//!   `op(B)` down a column, so every step of the inner loop misses the cache once `B` is large.
//! - `blocked`: packs `op(B)` once into a row-major `k × n` panel and each block of `op(A)` rows
//!   into a row-major strip, then updates four rows of `C` at a time with a unit-stride inner loop
//!   the compiler vectorizes; blocks of rows run on rayon threads once the product is large enough.
//!
//! Both read transposed operands in place through the strides; neither materializes `Aᵀ` or `Bᵀ`
//! for the caller. The rungs above these, packed GEMM with `std::arch` microkernels, live in
//! [`crate::gemm`].

use rayon::prelude::*;

use kernelab_tensor::Gemm;

use crate::parallel::PAR_MIN_WORK;

/// `op(A)[i, p]` of a row-major buffer, honoring the transpose flag.
#[inline(always)]
fn at_a(a: &[f32], g: &Gemm, i: usize, p: usize) -> f32 {
    if g.trans_a { a[p * g.m + i] } else { a[i * g.k + p] }
}

/// `op(B)[p, j]` of a row-major buffer, honoring the transpose flag.
#[inline(always)]
fn at_b(b: &[f32], g: &Gemm, p: usize, j: usize) -> f32 {
    if g.trans_b { b[j * g.k + p] } else { b[p * g.n + j] }
}

/// `c ← β·c`, where `β = 0` writes zeros without reading (so a NaN-poisoned output is cleared).
pub(crate) fn scale_output(c: &mut [f32], beta: f32) {
    if beta == 0.0 {
        c.fill(0.0);
    } else if beta != 1.0 {
        c.iter_mut().for_each(|v| *v *= beta);
    }
}

/// The textbook loop: `C[i, j] = α·Σ_p op(A)[i, p]·op(B)[p, j] + β·C[i, j]`.
pub fn naive(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) {
    for i in 0..g.m {
        for j in 0..g.n {
            let mut dot = 0.0f32;
            for p in 0..g.k {
                dot += at_a(a, g, i, p) * at_b(b, g, p, j);
            }
            let out = &mut c[i * g.n + j];
            *out = if g.beta == 0.0 { g.alpha * dot } else { g.alpha * dot + g.beta * *out };
        }
    }
}

/// Rows of `C` per rayon task, and per packed strip of `op(A)`.
const MC: usize = 32;
/// Depth of one pass over `k`, so that the `KC × n` slice of packed `B` stays in cache.
const KC: usize = 256;
/// Rows of `C` updated together by the inner kernel (each `B` value loaded feeds four FMAs).
const MR: usize = 4;

/// Packed, cache-blocked product (see the module header).
pub fn blocked(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) {
    let (m, n, k) = (g.m, g.n, g.k);
    if m == 0 || n == 0 {
        return;
    }
    // Pack op(B) into a row-major k × n panel: row p holds op(B)[p, 0..n].
    let packed_b: Vec<f32> =
        if g.trans_b { (0..k).flat_map(|p| (0..n).map(move |j| b[j * k + p])).collect() } else { b.to_vec() };
    let block = |(blk, c_block): (usize, &mut [f32])| {
        let row0 = blk * MC;
        let rows = c_block.len() / n;
        // Pack this block's rows of op(A), pre-scaled by α, into a row-major rows × k strip.
        let strip: Vec<f32> = (0..rows).flat_map(|i| (0..k).map(move |p| g.alpha * at_a(a, g, row0 + i, p))).collect();
        scale_output(c_block, g.beta);
        // Loop 1: split k into KC-deep passes; C's block accumulates across them.
        for p0 in (0..k).step_by(KC) {
            let p1 = (p0 + KC).min(k);
            // Loop 2: MR rows of C at a time, sharing every load of B.
            let mut i = 0;
            while i < rows {
                let mr = MR.min(rows - i);
                update_rows(&strip[i * k..(i + mr) * k], k, &packed_b, n, p0..p1, &mut c_block[i * n..(i + mr) * n]);
                i += mr;
            }
        }
    };
    if m * n * k < PAR_MIN_WORK * 8 {
        c.chunks_mut(MC * n).enumerate().for_each(block);
    } else {
        c.par_chunks_mut(MC * n).enumerate().for_each(block);
    }
}

/// `C[r, :] += Σ_{p ∈ depth} A[r, p]·B[p, :]` for up to [`MR`] rows `r`; the inner loop over a row
/// of `B` is unit-stride and vectorizes.
fn update_rows(a_rows: &[f32], k: usize, b: &[f32], n: usize, depth: std::ops::Range<usize>, c_rows: &mut [f32]) {
    let mr = c_rows.len() / n;
    if mr == MR {
        let (c0, rest) = c_rows.split_at_mut(n);
        let (c1, rest) = rest.split_at_mut(n);
        let (c2, c3) = rest.split_at_mut(n);
        for p in depth {
            let (a0, a1, a2, a3) = (a_rows[p], a_rows[k + p], a_rows[2 * k + p], a_rows[3 * k + p]);
            let b_row = &b[p * n..(p + 1) * n];
            for ((((&bj, x0), x1), x2), x3) in
                b_row.iter().zip(c0.iter_mut()).zip(c1.iter_mut()).zip(c2.iter_mut()).zip(c3.iter_mut())
            {
                *x0 += a0 * bj;
                *x1 += a1 * bj;
                *x2 += a2 * bj;
                *x3 += a3 * bj;
            }
        }
    } else {
        for (r, c_row) in c_rows.chunks_mut(n).enumerate() {
            for p in depth.clone() {
                let a_rp = a_rows[r * k + p];
                let b_row = &b[p * n..(p + 1) * n];
                c_row.iter_mut().zip(b_row).for_each(|(x, &bj)| *x += a_rp * bj);
            }
        }
    }
}
