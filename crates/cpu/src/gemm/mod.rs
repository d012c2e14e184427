//! Packed, cache-blocked GEMM: `C ← α·op(A)·op(B) + β·C`, row-major, any transposes.
//!
//! The loops follow BLIS, with the parallel loop outermost so that one product forks and joins
//! once. From the outside in:
//! - loop 5 (`jc`): `C`'s columns in blocks; the blocks are independent (disjoint columns of `C`),
//!   so they run on rayon threads, narrow enough that every thread gets some. One thread takes all
//!   columns at once, so nothing is packed twice.
//! - loop 4 (`pc`): the depth in passes of [`KC`]; `C` accumulates across passes, so this loop is
//!   serial. `op(B)[pc.., cols]` is packed into `NR`-column slivers (`pack.rs`) and stays in L2/L3.
//! - loop 3 (`ic`): rows in blocks of [`MC`]; `α·op(A)[rows, pc..]` is packed into `MR`-row
//!   slivers (`MC × KC`, in L2).
//! - loop 2 (`jr`): one packed `B` sliver (`KC × NR`, in L1) at a time …
//! - loop 1 (`ir`): … against every `A` sliver of the block (`MC × KC`, in L2), one microkernel
//!   call each (`kernels.rs`), which keeps its `MR × NR` tile of `C` in registers.
//!
//! Tiles that overhang the edge of `C` run into a scratch tile and only their valid part is added,
//! so odd sizes (784, 10, 127, 1) cost one partial tile per edge, not a scalar loop.

pub mod kernels;
mod pack;

use rayon::prelude::*;

use kernelab_tensor::Gemm;

pub use kernels::MicroKernel;

/// Depth of one pass (loop 4): a `KC × NR` sliver of `B` fits in L1.
pub const KC: usize = 256;
/// Rows of `C` per block (loop 3): an `MC × KC` block of `A` fits in L2. A multiple of every `MR`.
pub const MC: usize = 96;
/// The most columns of `C` per parallel task. A multiple of every `NR`.
pub const TASK_N: usize = 512;

/// Below this many multiply-adds (8M, about 80 µs of one core) the product stays on one thread:
/// waking the pool and packing `A` once more per task costs more than a second core saves.
/// Measured on 2 vCPUs (GFLOP/s, two threads against one): 128³ (2M) 71 vs 84, 160³ (4M) 54 vs 89,
/// the seed model's 64x128x784:NT and 128x784x64:TN (6.4M) 51 vs 63 and 87 vs 98 — all losses —
/// while 200³ (8M) 112 vs 85 and 64x256x512:NT (8.4M) 107 vs 68 win.
const PAR_MIN_FMAS: usize = 1 << 23;

/// `C` shared between tasks that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct SharedC(*mut f32);
// SAFETY: every task writes only its own block of C (disjoint row × column ranges), and the
// parallel loop joins before C's borrow ends.
unsafe impl Send for SharedC {}
unsafe impl Sync for SharedC {}

/// `C ← α·op(A)·op(B) + β·C` with `kernel`, on rayon threads when `threaded` and large enough.
pub fn gemm(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm, kernel: MicroKernel, threaded: bool) {
    let (m, n, k) = (g.m, g.n, g.k);
    debug_assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n);
    crate::matmul::scale_output(c, g.beta);
    if m == 0 || n == 0 || k == 0 || g.alpha == 0.0 {
        return;
    }
    let parallel = threaded && rayon::current_num_threads() > 1 && m * n * k >= PAR_MIN_FMAS;
    let shared = SharedC(c.as_mut_ptr());
    if parallel {
        let width = task_width(n, kernel.nr);
        let starts: Vec<usize> = (0..n).step_by(width).collect();
        starts.par_iter().for_each(|&j| column_block(a, b, g, j..(j + width).min(n), kernel, shared));
    } else {
        column_block(a, b, g, 0..n, kernel, shared);
    }
}

thread_local! {
    /// Each thread's packing buffers, kept between products so that packing allocates nothing.
    static PACKED: std::cell::RefCell<(pack::Packed, pack::Packed)> = std::cell::RefCell::new(Default::default());
}

/// Loops 4 to 1 for the columns `cols` of `C`, packing into this thread's buffers.
fn column_block(a: &[f32], b: &[f32], g: &Gemm, cols: std::ops::Range<usize>, kernel: MicroKernel, c: SharedC) {
    PACKED.with(|packed| {
        let (a_pack, b_pack) = &mut *packed.borrow_mut();
        column_block_with(a, b, g, cols, kernel, c, a_pack, b_pack);
    });
}

#[allow(clippy::too_many_arguments)]
fn column_block_with(
    a: &[f32],
    b: &[f32],
    g: &Gemm,
    cols: std::ops::Range<usize>,
    kernel: MicroKernel,
    c: SharedC,
    a_pack: &mut pack::Packed,
    b_pack: &mut pack::Packed,
) {
    // Loop 4: passes of KC over the depth.
    for pc in (0..g.k).step_by(KC) {
        let kc = KC.min(g.k - pc);
        pack::pack_b(b, g, pc..pc + kc, cols.clone(), kernel.nr, b_pack);
        // Loop 3: blocks of MC rows.
        for ic in (0..g.m).step_by(MC) {
            let rows = ic..(ic + MC).min(g.m);
            pack::pack_a(a, g, rows.clone(), pc..pc + kc, kernel.mr, a_pack);
            let a_len = rows.len().div_ceil(kernel.mr) * kc * kernel.mr;
            let b_len = cols.len().div_ceil(kernel.nr) * kc * kernel.nr;
            tiles(a_pack.values(a_len), b_pack.values(b_len), kc, rows, cols.clone(), g.n, kernel, c);
        }
    }
}

/// Columns per parallel task: whole slivers, at most [`TASK_N`], one task per thread where `n`
/// allows (each task packs the rows of `A` it needs, so more tasks would pack `A` more often).
fn task_width(n: usize, nr: usize) -> usize {
    let tasks = rayon::current_num_threads();
    n.div_ceil(tasks).div_ceil(nr).max(1).saturating_mul(nr).min(TASK_N)
}

/// Loops 2 and 1 over the tiles `rows × cols` of `C` (`n` columns), from their packed slivers.
#[allow(clippy::too_many_arguments)]
fn tiles(
    a_pack: &[f32],
    b_pack: &[f32],
    kc: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    n: usize,
    kernel: MicroKernel,
    c: SharedC,
) {
    let (mr, nr) = (kernel.mr, kernel.nr);
    let m_end = rows.end;
    // Loop 2: one B sliver at a time.
    for j in cols.clone().step_by(nr) {
        let b_sliver = &b_pack[((j - cols.start) / nr) * kc * nr..][..kc * nr];
        let width = nr.min(cols.end - j);
        // Loop 1: every A sliver of the task's rows.
        for i in rows.clone().step_by(mr) {
            let a_sliver = &a_pack[((i - rows.start) / mr) * kc * mr..][..kc * mr];
            let height = mr.min(m_end - i);
            // SAFETY: the tile (i.., j..) lies inside C when it is full; partial tiles go
            // through `scratch`. No other task touches these rows × columns.
            unsafe {
                let tile = c.0.add(i * n + j);
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
