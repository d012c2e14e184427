//! Packed, cache-blocked GEMM: `C ← α·op(A)·op(B) + β·C`, row-major, any transposes.
//!
//! The loops follow BLIS, with the parallel loop outermost so that one product forks and joins
//! once. From the outside in:
//! - loop 5 (`jc`): `C`'s columns in blocks; the blocks are independent (disjoint columns of `C`),
//!   so they run on the kernels' threads, narrow enough that every thread gets some. One thread takes all
//!   columns at once, so nothing is packed twice.
//! - loop 4 (`pc`): the depth in passes of the kernel's `KC`; `C` accumulates across passes, so
//!   this loop is serial. `op(B)[pc.., cols]` is packed into `NR`-column slivers (`pack.rs`).
//! - loop 3 (`ic`): rows in blocks of [`MC`]; `α·op(A)[rows, pc..]` is packed into `MR`-row
//!   slivers (`MC × KC`, in L2).
//! - loop 2 (`jr`): one packed `B` sliver (`KC × NR`) at a time …
//! - loop 1 (`ir`): … against every `A` sliver of the block (`MC × KC`, in L2), one microkernel
//!   call each (`kernels.rs`), which keeps its `MR × NR` tile of `C` in registers.
//!
//! Tiles that overhang the edge of `C` run into a scratch tile and only their valid part is added,
//! so odd sizes (784, 10, 127, 1) cost one partial tile per edge, not a scalar loop.
//!
//! Products whose re-read operand fits in L2 — every product of a training step at batch 64 —
//! skip packing altogether and read the operands in place ([`direct`]); [`Strategy::choose`]
//! decides. Both paths split `C`'s columns over threads the same way.
//!
//! The depth of a pass is the kernel's ([`MicroKernel::kc`]). Measured on this project's 2-vCPU
//! Zen 4 (one thread, GFLOP/s at 1024³ / 2048³, OpenBLAS 100–104 beside it in every run): the
//! AVX-512 8×32 kernel ran 85 / 82 at KC = 128, 92 / 95 at 256, 95 / 98 at 384, 99 / 102 at 512 and
//! 103 / 102 at 1024. A deep pass loads and stores each `C` tile fewer times, and `C`'s rows, a
//! power-of-two stride apart, miss the L1 on every such round trip; the `B` sliver it costs
//! (128 KiB at 1024) streams from L2 well enough. MC ∈ {96, 192, 384} made no difference beyond
//! the run-to-run noise (±5%).

pub mod bf16;
pub mod direct;
mod direct_dot;
pub mod dot_panels;
pub mod kernels;
mod pack;
pub mod prepacked;
pub mod stages;
mod transpose;

use std::ops::Range;

use kernelab_tensor::Gemm;

use crate::spin_pool::SendPtr;
use stages::Stage;

pub use kernels::MicroKernel;

/// Rows of `C` per block (loop 3): an `MC × KC` block of `A` fits in L2. A multiple of every `MR`.
pub const MC: usize = 96;
/// The most columns of `C` per parallel task. A multiple of every `NR`.
pub const TASK_N: usize = 512;

/// Below this many multiply-adds (8M, about 80 µs of one core) the product stays on one thread:
/// waking the pool and packing `A` once more per task costs more than a second core saves.
/// Measured on 2 vCPUs (GFLOP/s, two threads against one): 128³ (2M) 71 vs 84, 160³ (4M) 54 vs 89,
/// the seed model's 64x128x784:NT and 128x784x64:TN (6.4M) 51 vs 63 and 87 vs 98 — all losses —
/// while 200³ (8M) 112 vs 85 and 64x256x512:NT (8.4M) 107 vs 68 win.
pub(crate) const PAR_MIN_FMAS: usize = 1 << 23;

/// The same threshold for the direct path (2M multiply-adds, about 20 µs of one core), which has
/// no packing to repeat per thread: measured on 2 vCPUs (GFLOP/s, two threads against one) the
/// seed model's 64x128x784:NT 196 vs 111 and 128x784x64:TN 189 vs 109, 128³ (2.1M) 155 vs 112 —
/// while the 1M threshold made 160³ and 256x512x64:TN slower than this one.
pub(crate) const PAR_MIN_FMAS_DIRECT: usize = 1 << 21;

/// How a product is computed.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    /// Packed slivers and a register-blocked microkernel (the module header).
    Packed(MicroKernel),
    /// The operands read in place ([`direct`]); TT products, which it cannot read in place, and
    /// CPUs without AVX-512 take the packed path with the best microkernel instead.
    Direct(direct::Nt),
}

impl Strategy {
    /// The default variant's choice for `g`: see [`prefers_direct`].
    pub fn choose(g: &Gemm) -> Strategy {
        if prefers_direct(g) { Strategy::Direct(direct::Nt::ByShape) } else { Strategy::Packed(MicroKernel::best()) }
    }
}

/// Whether the direct path beats packing for `g` (where it can run at all): when the operand it
/// re-reads from cache, `op(B)` for the broadcast kernel (once per 8 rows) or `A` for the dot
/// kernel (once per 4 columns), fits in half of one core's L2. Beyond that packing wins, because
/// rows of an unpacked operand a power-of-two stride apart fall into the same cache sets.
/// Measured on one Zen 4 thread (1 MiB L2), GFLOP/s direct against packed: 128³ 113 vs 85,
/// 256³ (B: 256 KiB) 113 vs 97, 4096x256x256 (256 KiB) 104 vs 87, but 512³ (1 MiB) 98 vs 102,
/// 2048³ 83 vs 92, 256x4096x256 (4 MiB) 82 vs 88, 1024³:NT (A: 4 MiB) 82 vs 87. Every product of
/// the seed models' training steps is below the line. The rule is two multiplications and a
/// comparison against a size read once, so a training loop pays nothing for it.
pub fn prefers_direct(g: &Gemm) -> bool {
    let reread = if g.trans_b { g.m * g.k } else { g.k * g.n };
    direct::supports(g) && reread.saturating_mul(4) <= l2_bytes() / 2
}

/// One core's L2 (data or unified), read from sysfs once; 1 MiB where it cannot be read.
fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        crate::topology::caches()
            .iter()
            .find(|c| c.level == 2 && c.kind != "Instruction")
            .map_or(1 << 20, |c| c.size_bytes as usize)
    })
}

/// `C ← α·op(A)·op(B) + β·C` by `strategy`, on the kernels' pool ([`crate::spin_pool`]) when
/// `threaded` and large enough.
pub fn gemm(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm, strategy: Strategy, threaded: bool) {
    let (m, n, k) = (g.m, g.n, g.k);
    debug_assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || g.alpha == 0.0 {
        crate::matmul::scale_output(c, g.beta);
        return;
    }
    let kernel = match strategy {
        Strategy::Direct(nt) if direct::supports(g) => {
            return gemm_direct(a, b, c, g, nt, threaded, &prepacked::Prepared::NONE);
        }
        Strategy::Direct(_) => MicroKernel::best(),
        Strategy::Packed(kernel) => kernel,
    };
    gemm_packed(a, b, c, g, kernel, threaded);
}

/// The packed path of [`gemm`] (`m`, `n`, `k` > 0, α ≠ 0).
fn gemm_packed(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm, kernel: MicroKernel, threaded: bool) {
    // The packed kernels accumulate into C (the direct ones apply β as they store).
    stages::timed(Stage::Prologue, || crate::matmul::scale_output(c, g.beta));
    let shared = SendPtr(c.as_mut_ptr());
    let run = |cols: Range<usize>| stages::timed(Stage::Piece, || column_block(a, b, g, cols, kernel, shared));
    stages::timed(Stage::Parallel, || {
        if worth_threads(g, threaded, PAR_MIN_FMAS) {
            split(g.n, kernel.nr, &run);
        } else {
            run(0..g.n);
        }
    });
}

/// [`gemm`] by the direct kernels (`direct::supports(g)` holds, `m`, `n`, `k` > 0), with what a
/// forward-only caller prepared ([`prepacked::Prepared`]).
pub(crate) fn gemm_direct(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    g: &Gemm,
    nt: direct::Nt,
    threaded: bool,
    prep: &prepacked::Prepared,
) {
    let (m, n, k) = (g.m, g.n, g.k);
    let shared = SendPtr(c.as_mut_ptr());
    let (row_unit, column_unit) = match prep.packed_kc {
        Some(_) => (8, direct::NR),
        None => (direct::row_unit(g, nt), direct::column_unit(g, nt)),
    };
    let block = |rows: Range<usize>, cols: Range<usize>| {
        // SAFETY: `supports` holds, the slices have the product's sizes, and each task owns its
        // block of C (whose columns start at a multiple of the column unit, NR for panels).
        unsafe { direct::gemm_block(a, b, shared.get(), g, &direct::Block { rows, cols }, nt, prep) }
    };
    if !worth_threads(g, threaded, PAR_MIN_FMAS_DIRECT) {
        block(0..m, 0..n);
    } else if m * n > n * k && m * n > m * k {
        // C is the largest of the three (a weight gradient, 128x784x64:TN): each thread writes a
        // run of whole rows of it, the same contiguous part that the optimizer's split of the
        // array gives the same thread (see `spin_pool`), so the gradient is written and read in
        // one core's cache. Split by columns, every line of it crossed cores twice a step.
        // Measured, two threads, 20 epochs each way: the same in the VM's usual state (steps
        // 199-246 µs against 204-247), but where cache lines moved slowly between its two vCPUs
        // (it came and went; bias+ReLU on data from the other core 4x slower), this product took
        // 64-76 ms an epoch against 97-110.
        split(m, row_unit, &|rows| block(rows, 0..n));
    } else {
        split(n, column_unit, &|cols| block(0..m, cols));
    }
}

/// Whether `g` is worth splitting over the threads: asked for, more than one thread, and at least
/// `min_fmas` multiply-adds.
pub(crate) fn worth_threads(g: &Gemm, threaded: bool, min_fmas: usize) -> bool {
    threaded && crate::threads() > 1 && g.m * g.n * g.k >= min_fmas
}

/// Runs `piece` over `0..len` cut into one run of whole `unit`s per thread ([`task_width`]), on
/// the kernels' pool.
pub(crate) fn split(len: usize, unit: usize, piece: &(dyn Fn(Range<usize>) + Sync)) {
    let width = task_width(len, unit);
    crate::spin_pool::run(len.div_ceil(width), &|t| piece(t * width..((t + 1) * width).min(len)));
}

thread_local! {
    /// Each thread's packing buffers, kept between products so that packing allocates nothing.
    static PACKED: std::cell::RefCell<(pack::Packed, pack::Packed)> = std::cell::RefCell::new(Default::default());
}

/// Loops 4 to 1 for the columns `cols` of `C` (starting at a multiple of `NR`), packing into this
/// thread's buffers.
fn column_block(a: &[f32], b: &[f32], g: &Gemm, cols: Range<usize>, kernel: MicroKernel, c: SendPtr) {
    PACKED.with(|packed| {
        let (a_pack, b_pack) = &mut *packed.borrow_mut();
        // Loop 4: passes over the depth.
        for pc in (0..g.k).step_by(kernel.kc) {
            let kc = kernel.kc.min(g.k - pc);
            // This pass's slivers of op(B), and how far apart they lie.
            stages::timed(Stage::PackB, || pack::pack_b(b, g, pc..pc + kc, cols.clone(), kernel.nr, b_pack));
            let (b_slivers, stride) = (b_pack.values(cols.len().div_ceil(kernel.nr) * kc * kernel.nr), kc * kernel.nr);
            // Loop 3: blocks of MC rows.
            for ic in (0..g.m).step_by(MC) {
                let rows = ic..(ic + MC).min(g.m);
                stages::timed(Stage::PackA, || pack::pack_a(a, g, rows.clone(), pc..pc + kc, kernel.mr, a_pack));
                let a_len = rows.len().div_ceil(kernel.mr) * kc * kernel.mr;
                let b = Pass { slivers: b_slivers, stride, kc };
                stages::timed(Stage::Kernel, || tiles(a_pack.values(a_len), &b, rows, cols.clone(), g.n, kernel, c));
            }
        }
    });
}

/// One pass's slivers of `op(B)`: sliver `s` is `slivers[s·stride..][..kc·NR]`.
struct Pass<'a> {
    slivers: &'a [f32],
    stride: usize,
    kc: usize,
}

/// Columns per parallel task: whole slivers, at most [`TASK_N`], one task per thread where `n`
/// allows (each task packs the rows of `A` it needs, so more tasks would pack `A` more often).
fn task_width(n: usize, nr: usize) -> usize {
    let tasks = crate::threads();
    n.div_ceil(tasks).div_ceil(nr).max(1).saturating_mul(nr).min(TASK_N)
}

/// Loops 2 and 1 over the tiles `rows × cols` of `C` (`n` columns), from their packed slivers.
fn tiles(
    a_pack: &[f32],
    b: &Pass,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    kernel: MicroKernel,
    c: SendPtr,
) {
    let (mr, nr, kc) = (kernel.mr, kernel.nr, b.kc);
    let m_end = rows.end;
    // Loop 2: one B sliver at a time.
    for j in cols.clone().step_by(nr) {
        let b_sliver = &b.slivers[((j - cols.start) / nr) * b.stride..][..kc * nr];
        let width = nr.min(cols.end - j);
        // Loop 1: every A sliver of the task's rows.
        for i in rows.clone().step_by(mr) {
            let a_sliver = &a_pack[((i - rows.start) / mr) * kc * mr..][..kc * mr];
            let height = mr.min(m_end - i);
            // SAFETY: the tile (i.., j..) lies inside C when it is full; partial tiles go
            // through `scratch`. No other task touches these rows × columns.
            unsafe {
                let tile = c.get().add(i * n + j);
                if height == mr && width == nr {
                    (kernel.run)(kc, a_sliver.as_ptr(), b_sliver.as_ptr(), tile, n);
                } else {
                    let mut scratch = [0.0f32; kernels::MAX_TILE];
                    (kernel.run)(kc, a_sliver.as_ptr(), b_sliver.as_ptr(), scratch.as_mut_ptr(), nr);
                    for r in 0..height {
                        let dst = std::slice::from_raw_parts_mut(tile.add(r * n), width);
                        dst.iter_mut().zip(&scratch[r * nr..r * nr + width]).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Products above the threading threshold, every layout, every strategy: the columns (or, for
    /// the direct kernels where C is the largest operand, the rows) each thread takes are summed in
    /// the same order as on one thread, so the results agree exactly.
    #[test]
    fn the_thread_count_does_not_change_results() {
        for (m, n, k) in [(96, 333, 301), (203, 333, 130)] {
            assert!(m * n * k >= PAR_MIN_FMAS, "the shape must be large enough to be threaded");
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1001) as f32 / 1001.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 997) as f32 / 997.0 - 0.5).collect();
            let run = |threads: usize, g: &Gemm, strategy: Strategy| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut c = vec![f32::NAN; m * n];
                pool.install(|| gemm(&a, &b, &mut c, g, strategy, true));
                c
            };
            for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
                let g = Gemm::new(m, n, k).trans(trans_a, trans_b);
                for strategy in [
                    Strategy::Direct(direct::Nt::ByShape),
                    Strategy::Direct(direct::Nt::Dot),
                    Strategy::Packed(MicroKernel::best()),
                    Strategy::Packed(kernels::PORTABLE),
                ] {
                    let (one, two) = (run(1, &g, strategy), run(2, &g, strategy));
                    assert!(one.iter().all(|v| v.is_finite()), "{strategy:?} {g:?} left poison");
                    assert!(one == two, "{strategy:?} {g:?}: 1 and 2 threads differ");
                }
            }
        }
    }
}
