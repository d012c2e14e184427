//! Narrow-input GEMM: `C ← α·op(A)·op(B) + β·C`, row-major, any transposes, with `A` and `B` in
//! bf16 or f16 (`u16` bits) and every product summed in f32; `C` is f32, or narrow through
//! [`narrow_output`] (computed in f32, rounded once at the end).
//!
//! Variants, fastest first:
//! - `dpbf16` ([`gemm_dpbf16`]): bf16 on `vdpbf16ps` (AVX512-BF16). The loops are the f32 packed
//!   GEMM's (`gemm/mod.rs`: loop 4 passes over the depth in `KC` steps, loop 3 packs `MC`-row
//!   blocks of `A`, loops 2 and 1 run the microkernel over the slivers), with slivers packed as
//!   depth pairs (`pack.rs`) and the 8 × 32 `vdpbf16ps` kernel (`kernel.rs`). The threads split
//!   differently: per pass they pack one shared `B` panel together, then they share out blocks
//!   of `C`'s rows, each packing only its rows of `A`. Splitting columns, as the f32 GEMM does, every
//!   thread packed all of `A` (at 2048³ twice, in 512-column tasks), and with a microkernel twice
//!   as fast that repeated packing, and `C` zeroed and rounded on one thread, took twice the share
//!   of a two-thread product (`examples/gemm_stages.rs` shows the breakdown). α is applied as the
//!   tile is added to `C`, so the bf16 inputs are used as given (packing α into `A`, as the f32
//!   GEMM does, would round `α·a` to bf16).
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

/// Below this many multiply-adds (2M) the product stays on one thread. Lower than the f32 packed
/// GEMM's 8M ([`super::PAR_MIN_FMAS`]): here the threads pack each pass's `B` panel together and
/// each packs only its own rows of `A`, so a second thread repeats no packing, and the seed
/// model's training products (6.4M: 64x128x784:NT, 128x784x64:TN) are worth splitting.
pub const PAR_MIN_FMAS: usize = 1 << 21;

/// `C ← α·op(A)·op(B) + β·C` with bf16 `A` and `B` by the pair kernel `kernel`, on the kernels'
/// pool when `threaded` and at least [`PAR_MIN_FMAS`] multiply-adds.
///
/// Per depth pass (loop 4) the threads first pack `op(B)`'s whole panel into one shared buffer,
/// each a run of its slivers, then they claim blocks of `C`'s rows (whole `MR`s, at most `MC`,
/// at least two blocks for two threads) and run loops 3 to 1 over each: a block packs only its
/// rows of `A`, and every element of `C` is summed by one thread in the same order whatever the
/// thread count. With β = 0 the first pass stores its tiles instead
/// of adding them, so `C` is neither zeroed first nor read.
pub fn gemm_dpbf16(a: &[u16], b: &[u16], c: &mut [f32], g: &Gemm, kernel: PairKernel, threaded: bool) {
    let (m, n, k) = (g.m, g.n, g.k);
    debug_assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || g.alpha == 0.0 {
        stages::timed(Stage::Prologue, || crate::matmul::scale_output(c, g.beta));
        return;
    }
    let overwrite = g.beta == 0.0;
    if !overwrite {
        stages::timed(Stage::Prologue, || crate::matmul::scale_output(c, g.beta));
    }
    let threads = if super::worth_threads(g, threaded, PAR_MIN_FMAS) { crate::threads() } else { 1 };
    let kernel = kernel.for_columns(n);
    let (a_panel, b_panel) = panels(a, b, g);
    let shared = SendPtr(c.as_mut_ptr());
    SHARED_B.with(|b_pack| {
        let b_pack = &mut *b_pack.borrow_mut();
        stages::timed(Stage::Parallel, || {
            // Loop 4: passes over the depth (even, so only the last pass can end on half a pair).
            for pc in (0..k).step_by(kernel.kc) {
                let depth = pc..(pc + kernel.kc).min(k);
                let b_words = pack_b_panel(b_panel, n, depth.clone(), kernel.nr, threads, b_pack);
                let pass = Pass { b_words, depth, first: pc == 0 && overwrite };
                let rows = |rows: Range<usize>| rows_block(a_panel, &pass, rows, g, kernel, shared);
                // Row blocks of at most MC rows, claimed by whichever thread is free: a thread
                // that falls behind (a core shared with other work) leaves blocks to the other.
                let per = m.div_ceil(threads).div_ceil(kernel.mr).saturating_mul(kernel.mr).min(MC);
                let block = |t: usize| stages::timed(Stage::Piece, || rows(t * per..((t + 1) * per).min(m)));
                if threads > 1 {
                    crate::spin_pool::run(m.div_ceil(per), &block);
                } else {
                    (0..m.div_ceil(per)).for_each(block);
                }
            }
        });
    });
}

/// Packs `op(B)[0..n, depth]` into `buf` as `NR`-column slivers, split over `threads` in runs of
/// whole slivers; the packed words.
fn pack_b_panel<'a>(
    b: Panel<'_>,
    n: usize,
    depth: Range<usize>,
    nr: usize,
    threads: usize,
    buf: &'a mut Packed,
) -> &'a [u32] {
    let sliver = depth.len().div_ceil(2) * nr;
    let words = buf.reset(n.div_ceil(nr) * sliver);
    crate::spin_pool::for_each_part(words, sliver, threads > 1, |offset, part| {
        let lanes = offset / sliver * nr..((offset + part.len()) / sliver * nr).min(n);
        stages::timed(Stage::Piece, || {
            stages::timed(Stage::PackB, || pack::pack_into(b, lanes, depth.clone(), nr, part))
        });
    });
    words
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
    /// The caller's buffer for each pass's `B` panel, which every thread of the product reads.
    static SHARED_B: std::cell::RefCell<Packed> = std::cell::RefCell::new(Packed::default());
    /// Each thread's buffer for its blocks of `A`.
    static OWN_A: std::cell::RefCell<Packed> = std::cell::RefCell::new(Packed::default());
}

/// One depth pass: its packed `B` panel (every column of `C`), its depths, and whether it is the
/// first of a β = 0 product (tiles stored, not added).
struct Pass<'a> {
    b_words: &'a [u32],
    depth: Range<usize>,
    first: bool,
}

/// Loops 3 to 1 of one pass for the rows `rows` of `C` (starting at a multiple of `MR`), packing
/// `A` into this thread's buffer.
fn rows_block(a_panel: Panel<'_>, pass: &Pass, rows: Range<usize>, g: &Gemm, kernel: PairKernel, c: SendPtr) {
    let pairs = pass.depth.len().div_ceil(2);
    OWN_A.with(|a_pack| {
        let a_pack = &mut *a_pack.borrow_mut();
        // Loop 3: blocks of MC rows.
        for ic in rows.clone().step_by(MC) {
            let rows = ic..(ic + MC).min(rows.end);
            stages::timed(Stage::PackA, || pack::pack(a_panel, rows.clone(), pass.depth.clone(), kernel.mr, a_pack));
            let a_words = a_pack.words(rows.len().div_ceil(kernel.mr) * pairs * kernel.mr);
            let block = Block { rows, cols: 0..g.n, pairs, store: pass.first };
            stages::timed(Stage::Kernel, || tiles(a_words, pass.b_words, &block, g, kernel, c));
        }
    });
}

/// The tiles of `C` that one packed `A` block and one packed `B` panel cover.
struct Block {
    rows: Range<usize>,
    cols: Range<usize>,
    /// Depth pairs of the pass.
    pairs: usize,
    /// Whether the tiles are stored (the first pass of a β = 0 product) or added to `C`.
    store: bool,
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
                let (a, b) = (a_sliver.as_ptr(), b_sliver.as_ptr());
                if height == mr && width == nr {
                    (kernel.run)(pairs, a, b, tile, g.n, g.alpha, block.store);
                } else {
                    let mut scratch = [0.0f32; kernel::MAX_TILE];
                    (kernel.run)(pairs, a, b, scratch.as_mut_ptr(), nr, g.alpha, true);
                    for r in 0..height {
                        let dst = std::slice::from_raw_parts_mut(tile.add(r * g.n), width);
                        let src = &scratch[r * nr..r * nr + width];
                        if block.store {
                            dst.copy_from_slice(src);
                        } else {
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                        }
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
/// poisoned `C` included, so the f32 copy is neither widened nor zeroed: it keeps whatever the
/// last product left), and the f32 result rounded once, to nearest even. With `threaded`, a large
/// `C` is widened and rounded by the kernels' threads, each a run of it, so that this serial
/// work does not cap a threaded product's speed-up.
pub fn narrow_output(kind: Narrow, c: &mut [u16], beta: f32, threaded: bool, product: impl FnOnce(&mut [f32])) {
    WIDE_C.with(|wide| {
        let wide = &mut *wide.borrow_mut();
        let parallel = threaded && c.len() >= PAR_MIN_CONVERT;
        stages::timed(Stage::Prologue, || {
            wide.resize(c.len(), 0.0);
            if beta != 0.0 {
                let from: &[u16] = c;
                crate::spin_pool::for_each_part(wide, CONVERT_UNIT, parallel, |at, part| {
                    kind.widen(&from[at..at + part.len()], part)
                });
            }
        });
        product(wide);
        let from: &[f32] = wide;
        stages::timed(Stage::Epilogue, || {
            crate::spin_pool::for_each_part(c, CONVERT_UNIT, parallel, |at, part| {
                kind.narrow(&from[at..at + part.len()], part)
            })
        });
    });
}

/// Elements of `C` below which [`narrow_output`] converts on one thread (32K: about 10 µs).
const PAR_MIN_CONVERT: usize = 1 << 15;
/// Elements per unit of a threaded conversion: whole cache lines of both types.
const CONVERT_UNIT: usize = 64;

thread_local! {
    /// The calling thread's f32 copy of a narrow `C`, kept between products.
    static WIDE_C: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests;
