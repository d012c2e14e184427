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

use kernelab_tensor::Gemm;

/// A packing buffer whose contents start on a 64-byte cache line, so that the microkernel's
/// vector loads never straddle two lines.
#[derive(Debug, Default)]
pub struct Packed(Vec<f32>);

impl Packed {
    /// `len` zeroed values, cache-line aligned.
    fn reset(&mut self, len: usize) -> &mut [f32] {
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
                dst.iter_mut().zip(run).for_each(|(d, &v)| *d = g.alpha * v);
            }
        }
    } else {
        // A is m × k: each row of op(A) is contiguous in p and goes to one lane of its sliver.
        for (r, i) in rows.enumerate() {
            let sliver = &mut out[(r / mr) * kc * mr..][..kc * mr];
            let lane = r % mr;
            for (q, &v) in a[i * g.k + depth.start..i * g.k + depth.end].iter().enumerate() {
                sliver[q * mr + lane] = g.alpha * v;
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
        if g.trans_b {
            // B is n × k: op(B)[p, j] = B[j, p]. Read each row of B (contiguous in p), scatter by lane.
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
