//! Narrow-input GEMM: `C ← α·op(A)·op(B) + β·C`, row-major, any transposes, with `A` and `B` in
//! bf16 or f16 (`u16` bits) and every product summed in f32; `C` is f32, or narrow through
//! [`narrow_output`] (computed in f32, rounded once at the end).
//!
//! Variants, fastest first:
//! - `dpbf16` ([`gemm_dpbf16`]): bf16 on `vdpbf16ps` (AVX512-BF16). The loops are the f32 packed
//!   GEMM's (`gemm/mod.rs`: loop 5 splits `C`'s columns over the threads, loop 4 passes over the
//!   depth in `KC` steps, loop 3 packs `MC`-row blocks of `A`, loops 2 and 1 run the microkernel
//!   over the slivers), with slivers packed as depth pairs (`pack.rs`) and the 8 × 32 `vdpbf16ps`
//!   kernel (`kernel.rs`). α is applied as the tile is added to `C`, so the bf16 inputs are used
//!   as given (packing α into `A`, as the f32 GEMM does, would round `α·a` to bf16).
//! - `widen` ([`gemm_widened`]): where `vdpbf16ps` is missing (and for f16 with F16C): both
//!   operands widened to f32 (exact: every bf16 and f16 is an f32) by SIMD conversions
//!   ([`crate::narrow`]), then the f32 packed GEMM with its AVX-512F 8 × 32 microkernel.
//!
//! Both compute every product exactly and sum in f32, so they differ only in the order of the
//! f32 additions (pairs first, then the running sum) and agree to f32 rounding.

pub mod kernel;
pub mod pack;
pub mod variants;

use std::ops::Range;

use kernelab_tensor::Gemm;

use super::stages::{self, Stage};
use super::{MC, MicroKernel, Strategy};
use crate::convert::Narrow;
use crate::spin_pool::SendPtr;
pub use kernel::PairKernel;
use pack::{Packed, Panel};

/// `C ← α·op(A)·op(B) + β·C` with bf16 `A` and `B` by the pair kernel `kernel`, on the kernels'
/// pool when `threaded` and large enough (the f32 GEMM's threshold and split).
pub fn gemm_dpbf16(a: &[u16], b: &[u16], c: &mut [f32], g: &Gemm, kernel: PairKernel, threaded: bool) {
    let (m, n, k) = (g.m, g.n, g.k);
    debug_assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    if m == 0 || n == 0 {
        return;
    }
    stages::timed(Stage::Prologue, || crate::matmul::scale_output(c, g.beta));
    if k == 0 || g.alpha == 0.0 {
        return;
    }
    let shared = SendPtr(c.as_mut_ptr());
    let run = |cols: Range<usize>| stages::timed(Stage::Piece, || column_block(a, b, g, cols, kernel, shared));
    stages::timed(Stage::Parallel, || {
        if super::worth_threads(g, threaded, super::PAR_MIN_FMAS) {
            super::split(n, kernel.nr, &run);
        } else {
            run(0..n);
        }
    });
}

/// `op(A)` as rows × depth and `op(B)` as columns × depth ([`Panel`]s of the packing).
fn panels<'a>(a: &'a [u16], b: &'a [u16], g: &Gemm) -> (Panel<'a>, Panel<'a>) {
    let a = if g.trans_a {
        Panel { data: a, lane_stride: 1, depth_stride: g.m }
    } else {
        Panel { data: a, lane_stride: g.k, depth_stride: 1 }
    };
    let b = if g.trans_b {
        Panel { data: b, lane_stride: g.k, depth_stride: 1 }
    } else {
        Panel { data: b, lane_stride: 1, depth_stride: g.n }
    };
    (a, b)
}

thread_local! {
    /// Each thread's packing buffers, kept between products so that packing allocates nothing.
    static PACKED: std::cell::RefCell<(Packed, Packed)> = std::cell::RefCell::new(Default::default());
}

/// Loops 4 to 1 for the columns `cols` of `C`, packing into this thread's buffers.
fn column_block(a: &[u16], b: &[u16], g: &Gemm, cols: Range<usize>, kernel: PairKernel, c: SendPtr) {
    let (a_panel, b_panel) = panels(a, b, g);
    PACKED.with(|packed| {
        let (a_pack, b_pack) = &mut *packed.borrow_mut();
        // Loop 4: passes over the depth (even, so only the last pass can end on half a pair).
        for pc in (0..g.k).step_by(kernel.kc) {
            let depth = pc..(pc + kernel.kc).min(g.k);
            let pairs = depth.len().div_ceil(2);
            stages::timed(Stage::PackB, || pack::pack(b_panel, cols.clone(), depth.clone(), kernel.nr, b_pack));
            let b_words = b_pack.words(cols.len().div_ceil(kernel.nr) * pairs * kernel.nr);
            // Loop 3: blocks of MC rows.
            for ic in (0..g.m).step_by(MC) {
                let rows = ic..(ic + MC).min(g.m);
                stages::timed(Stage::PackA, || pack::pack(a_panel, rows.clone(), depth.clone(), kernel.mr, a_pack));
                let a_words = a_pack.words(rows.len().div_ceil(kernel.mr) * pairs * kernel.mr);
                let block = Block { rows, cols: cols.clone(), pairs };
                stages::timed(Stage::Kernel, || tiles(a_words, b_words, &block, g, kernel, c));
            }
        }
    });
}

/// The tiles of `C` that one packed `A` block and one packed `B` panel cover.
struct Block {
    rows: Range<usize>,
    cols: Range<usize>,
    /// Depth pairs of the pass.
    pairs: usize,
}

/// Loops 2 and 1 over the tiles of `block`, from their packed slivers.
fn tiles(a_pack: &[u32], b_pack: &[u32], block: &Block, g: &Gemm, kernel: PairKernel, c: SendPtr) {
    let (mr, nr, pairs) = (kernel.mr, kernel.nr, block.pairs);
    // Loop 2: one B sliver at a time.
    for j in block.cols.clone().step_by(nr) {
        let b_sliver = &b_pack[((j - block.cols.start) / nr) * pairs * nr..][..pairs * nr];
        let width = nr.min(block.cols.end - j);
        // Loop 1: every A sliver of the block.
        for i in block.rows.clone().step_by(mr) {
            let a_sliver = &a_pack[((i - block.rows.start) / mr) * pairs * mr..][..pairs * mr];
            let height = mr.min(block.rows.end - i);
            // SAFETY: the tile (i.., j..) lies inside C when it is full; partial tiles go through
            // `scratch`. No other task touches these rows × columns; the kernel was detected.
            unsafe {
                let tile = c.get().add(i * g.n + j);
                if height == mr && width == nr {
                    (kernel.run)(pairs, a_sliver.as_ptr(), b_sliver.as_ptr(), tile, g.n, g.alpha);
                } else {
                    let mut scratch = [0.0f32; kernel::MAX_TILE];
                    (kernel.run)(pairs, a_sliver.as_ptr(), b_sliver.as_ptr(), scratch.as_mut_ptr(), nr, g.alpha);
                    for r in 0..height {
                        let dst = std::slice::from_raw_parts_mut(tile.add(r * g.n), width);
                        dst.iter_mut().zip(&scratch[r * nr..r * nr + width]).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

thread_local! {
    /// The calling thread's widened operands, kept between products.
    static WIDE: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = std::cell::RefCell::new(Default::default());
}

/// `C ← α·op(A)·op(B) + β·C` with `A` and `B` of type `kind`: both widened to f32 (exactly), then
/// the f32 packed GEMM with `kernel` (see the module header).
pub fn gemm_widened(kind: Narrow, a: &[u16], b: &[u16], c: &mut [f32], g: &Gemm, kernel: MicroKernel, threaded: bool) {
    WIDE.with(|wide| {
        let (a32, b32) = &mut *wide.borrow_mut();
        for (src, dst) in [(a, &mut *a32), (b, &mut *b32)] {
            dst.clear();
            dst.resize(src.len(), 0.0);
            kind.widen(src, dst);
        }
        super::gemm(a32, b32, c, g, Strategy::Packed(kernel), threaded);
    });
}

/// Runs `product` (which computes `C ← α·op(A)·op(B) + β·C` into f32) on a narrow `C` of type
/// `kind`: `C` widened first only when β ≠ 0 (with β = 0 every product here overwrites it, a
/// poisoned `C` included, so the widening would be wasted work), and the f32 result rounded
/// once, to nearest even.
pub fn narrow_output(kind: Narrow, c: &mut [u16], beta: f32, product: impl FnOnce(&mut [f32])) {
    WIDE_C.with(|wide| {
        let wide = &mut *wide.borrow_mut();
        stages::timed(Stage::Prologue, || {
            wide.clear();
            wide.resize(c.len(), 0.0);
            if beta != 0.0 {
                kind.widen(c, wide);
            }
        });
        product(wide);
        stages::timed(Stage::Epilogue, || kind.narrow(wide, c));
    });
}

thread_local! {
    /// The calling thread's f32 copy of a narrow `C`, kept between products.
    static WIDE_C: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests;
