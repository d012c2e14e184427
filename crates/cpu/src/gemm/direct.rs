//! Small and thin products without packing: the operands are read where they lie.
//!
//! Packing pays when each packed value is reused many times — a large `m` reuses every sliver of
//! `op(B)`, a large `n` every sliver of `op(A)`. In a training step at batch 64 the products are
//! 64 rows tall, and copying a transposed weight into slivers costs about as much as the
//! multiply-adds it feeds (the layer-1 forward, 64x128x784:NT, ran at 48 GFLOP/s packed against
//! OpenBLAS's 92). Two kernels cover the layouts that can be read in place with unit stride, and
//! a third transposes a little at a time where that pays:
//!
//! - **Broadcast** (`op(B)` not transposed: NN and TN). A row of `op(B)` is contiguous, so the
//!   microkernel loads it straight from `B` with a row stride, two masked zmm loads per depth step;
//!   `op(A)[i, p] = a[i·rs + p·cs]` is broadcast from wherever it is (a broadcast is one load,
//!   whatever the stride). The tile is up to 8 × 32 — `M` rows × `NV` vectors, both compile-time —
//!   or up to 12 rows when the whole product is that short, and a column edge such as n = 10 is a
//!   load mask, not a padded tile.
//! - **Transposed broadcast** (NT, at least 32 rows and 16 columns; see `transposes_b`): `Bᵀ`'s
//!   rows are `op(B)`'s columns, so each 32-column strip of `op(B)` over one pass of the depth is
//!   transposed into a small buffer in L1 (16 × 16 blocks in registers, `transpose.rs`), and the
//!   broadcast kernel runs every row tile of the block against it. Each value of `B` is
//!   transposed once, and the product runs at the NN speed.
//! - **Dot** (the other NT products: few rows, or a 10-class layer's 10 columns). Row `i` of `A`
//!   and row `j` of `B` are both contiguous in `p`, so `C[i, j]` is a dot product: up to 4 × 4
//!   accumulators (4 × 5 where five divides the width and four does not), 16 depths per FMA, the
//!   depth's tail masked, and each row's accumulators reduced four at a time with one
//!   transposing sum (`direct_dot.rs`, 13 instructions for four dot products).
//! - **Packed order on panels** (forward-only layers whose product the default matmul packs,
//!   [`Prepared::packed_kc`]): the broadcast kernel on `Wᵀ` packed once, `A` read in place, in
//!   8 × 32 tiles summed over the packed microkernel's passes, so each value is the packed
//!   path's without `A` packed per call.
//!
//! TT products (both transposed) have neither layout and stay on the packed path.
//!
//! All of them apply `C ← α·acc + β·C` as they store, multiplying only when `α ≠ 1` and reading `C`
//! only when `β ≠ 0` (so a NaN-poisoned output is overwritten), and passes over the depth after the
//! first accumulate. A threaded product splits `C` into column blocks, or into runs of rows when
//! `C` is its largest operand (see `gemm`).

use std::ops::Range;

use kernelab_tensor::Gemm;

use super::prepacked::{Epilogue, Prepared};

/// Depth of one pass of the broadcast kernel: a 32-column strip of `B` over this depth (32 KiB)
/// is reused by every 8-row tile of the pass.
const KC_BROADCAST: usize = 256;
/// Depth of one pass of the dot kernel: four rows of `B` over this depth (16 KiB) stay in L1
/// while every row of `A` streams past them.
pub(super) const KC_DOT: usize = 1024;
/// The tallest broadcast tile: 12 rows × 2 vectors are 24 accumulators, beside the two vectors
/// of `B` and a broadcast, in AVX-512's 32 registers.
const MAX_TILE_ROWS: usize = 12;
/// Columns of `C` per broadcast tile and per parallel task's unit.
pub const NR: usize = 32;
/// Rows of `op(B)` (columns of `C`) per dot tile, and per parallel task's unit.
pub const NJ: usize = 4;

/// The dot tiles' width for a block `n` columns wide: [`NJ`], or 5 where that divides `n` and
/// four does not, so that a 10-class layer's forward (n = 10) runs two 4 × 5 tiles (20
/// accumulators, 9 loads per 20 multiply-adds) instead of 4 + 4 + a 4 × 2 tile (8 accumulators,
/// 6 loads per 8). Calling `gemm` directly on one Zen 5 thread (µs, 64x10x128:NT and
/// 64x10x256:NT): 1.12 and 2.32 before, 0.98 and 2.10 with the depth loop over plain loads and a
/// separate masked tail, 0.95 and 2.03 with the scalar epilogue, 0.89 and 1.63 with 5-wide tiles
/// (OpenBLAS 0.96–1.00 and 1.82–1.85 in the bench beside it). For 20 columns 4 × 4 tiles stay
/// faster (64x20x128:NT 1.44 against 1.62 µs as 4 × 5), hence only where four does not divide.
fn dot_width(n: usize) -> usize {
    if !n.is_multiple_of(NJ) && n.is_multiple_of(5) { 5 } else { NJ }
}

/// Whether this CPU runs the direct kernels (AVX-512F) and `g`'s layout has one (not TT).
pub fn supports(g: &Gemm) -> bool {
    cfg!(target_arch = "x86_64") && crate::simd::has_avx512() && !(g.trans_a && g.trans_b)
}

/// How the direct path computes an NT product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nt {
    /// `Bᵀ` transposed strip by strip for the broadcast kernel where [`transposes_b`] says it
    /// pays, dot products elsewhere (the default, and rung `direct_avx512`).
    ByShape,
    /// Always dot products (rung `direct_dot_avx512`, the NT kernel before transposition).
    Dot,
}

/// Which kernel computes `g` (where [`supports`] holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// `op(B)` not transposed: rows of `B` read in place.
    Broadcast,
    /// NT, `op(B)`'s columns transposed into rows first, then broadcast.
    TransposedBroadcast,
    /// NT, dot products of rows of `A` and rows of `B`.
    Dot,
}

/// Whether the direct path computes `g` (an NT product, where [`supports`] holds) by dot
/// products, the kernel [`super::dot_panels`] reproduces on prepared weights.
pub fn computes_by_dot(g: &Gemm, nt: Nt) -> bool {
    supports(g) && kernel(g, nt) == Kernel::Dot
}

fn kernel(g: &Gemm, nt: Nt) -> Kernel {
    if !g.trans_b {
        Kernel::Broadcast
    } else if nt == Nt::ByShape && transposes_b(g) {
        Kernel::TransposedBroadcast
    } else {
        Kernel::Dot
    }
}

/// Whether an NT product is cheaper with `Bᵀ` transposed into strips for the broadcast kernel
/// than as dot products: at least 32 rows, over which each transposed value is reused, and at
/// least one whole vector of columns.
///
/// The dot kernel uses each vector it loads for four multiply-adds and then reduces every output
/// across lanes; the broadcast kernel runs at the NN products' speed, and the transpose costs
/// about one shuffle per value of `B`. Measured on one Zen 5 thread (µs, dot →
/// transposed, alternating runs in one minute): 64x128x784 (layer-1 forward) 68–80 → 59–62,
/// 64x512x784 277–329 → 242–250, 64x256x512 92–112 → 76–82, 128³ 27–30 → 17–18, 64x32x32
/// 1.2–1.3 → 0.67–0.70, 32x128x128 6.6 → 4.9; even at 24x128x784 (26 both ways) and
/// 64x16x784 (9.8 → 9.3); worse at 16x128x784 (17 → 20–23) and at n = 10 (64x10x128
/// 1.1–1.3 → 1.7–1.8, the transpose of a 10-wide strip going value by value).
fn transposes_b(g: &Gemm) -> bool {
    g.m >= 32 && g.n >= 16
}

/// The columns a parallel task should take whole: one broadcast tile or one dot tile.
pub fn column_unit(g: &Gemm, nt: Nt) -> usize {
    if kernel(g, nt) == Kernel::Dot { NJ } else { NR }
}

/// A block of `C`: the rows and columns one task computes.
#[derive(Clone, Debug)]
pub struct Block {
    pub rows: Range<usize>,
    pub cols: Range<usize>,
}

/// The rows a parallel task should take whole: one tile's height.
pub fn row_unit(g: &Gemm, nt: Nt) -> usize {
    if kernel(g, nt) == Kernel::Dot { 4 } else { 8 }
}

/// `C[rows, cols] ← α·op(A)[rows, :]·op(B)[:, cols] + β·C[rows, cols]` without packing, for the
/// rows and columns of `block`. `c` is the whole of `C` (`m × n`, row-major).
///
/// # Safety
/// [`supports`] holds for `g`; `a`, `b` and `c` hold `m·k`, `k·n` and `m·n` values; `block` lies
/// inside `C`, and no other thread touches that block of `C` meanwhile.
///
/// `prep` adds what a forward-only caller prepared: `panels`, `op(B)` packed once into [`NR`]-column
/// slivers over the whole depth (`panels[(s·k + p)·NR + c] = op(B)[p, s·NR + c]`, see
/// [`super::prepacked`]), which the transposed broadcast kernel then reads in place of
/// transposing each strip (the same values in the same order, so the same sums); and an
/// [`Epilogue`] applied to each value as it is stored after the last pass. With panels and
/// `packed_kc`, any NT product runs the broadcast kernel on them in the packed path's order
/// instead ([`Prepared::packed_kc`], `deep_driver`).
///
/// # Safety
/// [`supports`] holds for `g`; `a`, `b` and `c` hold `m·k`, `k·n` and `m·n` values (and `panels`,
/// where given, `⌈n/NR⌉·k·NR`, and the epilogue's bias `n`); `block` lies inside `C`, its columns
/// start at a multiple of [`NR`] where panels are read, and no other thread touches that block of
/// `C` meanwhile.
pub unsafe fn gemm_block(a: &[f32], b: &[f32], c: *mut f32, g: &Gemm, block: &Block, nt: Nt, prep: &Prepared) {
    debug_assert!(supports(g) && a.len() == g.m * g.k && b.len() == g.k * g.n);
    debug_assert!(block.rows.end <= g.m && block.cols.end <= g.n);
    debug_assert!(prep.epilogue.bias.is_none_or(|bias| bias.len() == g.n));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller; the drivers keep every tile inside the block.
    unsafe {
        let ep = &prep.epilogue;
        match (kernel(g, nt), prep.panels, prep.packed_kc) {
            (_, Some(panels), Some(kc)) => x86::deep_driver(a, panels, c, g, block, kc, ep),
            (Kernel::Broadcast, ..) => x86::broadcast_driver(a, b, c, g, block, ep),
            (Kernel::Dot, ..) => x86::dot_driver(a, b, c, g, block, ep),
            (Kernel::TransposedBroadcast, Some(panels), None) => x86::panel_driver(a, panels, c, g, block, ep),
            (Kernel::TransposedBroadcast, None, _) => STRIP.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                scratch.resize(KC_BROADCAST * NR, 0.0);
                x86::transposed_driver(a, b, c, g, block, &mut scratch, ep)
            }),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, b, c, block, nt, prep);
}

#[cfg(target_arch = "x86_64")]
pub(super) use super::direct_dot::sum4;
#[cfg(target_arch = "x86_64")]
pub(super) use x86::Tile;

thread_local! {
    /// Each thread's transposed strip of `Bᵀ`, kept between products so that it allocates once.
    static STRIP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use kernelab_tensor::Gemm;

    use super::super::MC;
    use super::super::direct_dot::dot_tile;
    use super::super::transpose::transpose;
    use super::{Block, Epilogue, KC_BROADCAST, KC_DOT, MAX_TILE_ROWS, NR, dot_width};
    use crate::simd::first_lanes as lanes;

    /// How a kernel walks the product: the depth of a pass, the rows of a block (loop 3: every
    /// strip of `op(B)` runs against one block's tiles before the next block), the tile's rows
    /// and columns, and how `A` is laid out (`op(A)[i, p] = a[i·rs + p·cs]`).
    struct Walk {
        kc: usize,
        mc: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    }

    /// Where a strip of `op(B)` (depths `pc`, columns `j` of `C`) is read from: a pointer to its
    /// first value and the stride the kernel steps by along its own axis (depth for broadcast,
    /// column for dot).
    type Strip = (*const f32, usize);

    /// The broadcast kernel's walk: 8 × [`NR`] tiles, or one tile up to [`MAX_TILE_ROWS`] high
    /// when the product is that short (a 10-class layer's weight gradient: each row of `B` is
    /// then loaded once, not once per 8 rows, and no 2-row tile is left over).
    fn broadcast_walk(g: &Gemm) -> Walk {
        let (rs, cs) = if g.trans_a { (1, g.m) } else { (g.k, 1) };
        let height = if g.m <= MAX_TILE_ROWS { g.m } else { 8 };
        Walk { kc: KC_BROADCAST, mc: usize::MAX, rows: height, cols: NR, rs, cs }
    }

    /// NN and TN: `B` row-major `k × n`, each strip read in place along its rows.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn broadcast_driver(a: &[f32], b: &[f32], c: *mut f32, g: &Gemm, block: &Block, ep: &Epilogue) {
        // SAFETY (both): forwarded from the caller; the strips and tiles `drive` makes lie
        // inside op(B) and are the kernel's.
        let strip = |pc: usize, j: usize, _: usize, _: usize| (unsafe { b.as_ptr().add(pc * g.n + j) }, g.n);
        unsafe { drive(a, c, g, block, &broadcast_walk(g), strip, ep, |rows, t| broadcast_tile(rows, t)) }
    }

    /// NT by the broadcast kernel: each strip of `op(B) = Bᵀ`, [`NR`] columns (rows of `B`) over
    /// one pass of the depth, is transposed into `scratch` (`kc × NR`, in L1) before the block's
    /// row tiles run against it, so every value of `B` is transposed once.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transposed_driver(
        a: &[f32],
        b: &[f32],
        c: *mut f32,
        g: &Gemm,
        block: &Block,
        scratch: &mut [f32],
        ep: &Epilogue,
    ) {
        debug_assert!(scratch.len() >= KC_BROADCAST * NR);
        let strip = |pc: usize, j: usize, kc: usize, width: usize| {
            transpose(&b[j * g.k + pc..], g.k, width, kc, scratch);
            (scratch.as_ptr(), width)
        };
        // SAFETY: forwarded from the caller; the tiles `drive` makes are the kernel's.
        unsafe { drive(a, c, g, block, &broadcast_walk(g), strip, ep, |rows, t| broadcast_tile(rows, t)) }
    }

    /// NT by the broadcast kernel on `op(B)` packed once into [`NR`]-column panels (see
    /// [`super::gemm_block`]): the strip at depth `pc`, columns `j..` is read in place at
    /// `panels[(j/NR·k + pc)·NR]` with row stride [`NR`], where [`transposed_driver`] would
    /// transpose it.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn panel_driver(a: &[f32], panels: &[f32], c: *mut f32, g: &Gemm, block: &Block, ep: &Epilogue) {
        debug_assert!(block.cols.start.is_multiple_of(NR) && panels.len() >= g.n.div_ceil(NR) * g.k * NR);
        let strip = |pc: usize, j: usize, _: usize, _: usize| (panels[(j / NR * g.k + pc) * NR..].as_ptr(), NR);
        // SAFETY: forwarded from the caller; the tiles `drive` makes are the kernel's.
        unsafe { drive(a, c, g, block, &broadcast_walk(g), strip, ep, |rows, t| broadcast_tile(rows, t)) }
    }

    /// NT on panels in the packed path's order ([`super::super::prepacked`]): passes of `kc` (the
    /// packed microkernel's depth), blocks of [`MC`] rows, 8 × [`NR`] tiles, with `A` read in
    /// place (`α = 1`, `β = 0`): each value of `C` is the same sequence of multiply-adds as the
    /// packed 8 × 32 microkernel's, from a zeroed accumulator, and the first pass's store equals
    /// its `0 + sum` (a sum that starts at +0 is never −0 when rounding to nearest), each later
    /// pass's its `C + sum`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn deep_driver(
        a: &[f32],
        panels: &[f32],
        c: *mut f32,
        g: &Gemm,
        block: &Block,
        kc: usize,
        ep: &Epilogue,
    ) {
        debug_assert!(g.alpha == 1.0 && g.beta == 0.0 && !g.trans_a && g.trans_b);
        debug_assert!(block.cols.start.is_multiple_of(NR) && panels.len() >= g.n.div_ceil(NR) * g.k * NR);
        let walk = Walk { kc, mc: MC, rows: 8, cols: NR, rs: g.k, cs: 1 };
        let strip = |pc: usize, j: usize, _: usize, _: usize| (panels[(j / NR * g.k + pc) * NR..].as_ptr(), NR);
        // SAFETY: forwarded from the caller; the tiles `drive` makes are the kernel's.
        unsafe { drive(a, c, g, block, &walk, strip, ep, |rows, t| broadcast_tile(rows, t)) }
    }

    /// The dot kernel's walk: 4 × [`dot_width`] tiles, `A` and `B` both row-major along the depth.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_driver(a: &[f32], b: &[f32], c: *mut f32, g: &Gemm, block: &Block, ep: &Epilogue) {
        let walk = Walk { kc: KC_DOT, mc: usize::MAX, rows: 4, cols: dot_width(block.cols.len()), rs: g.k, cs: 1 };
        // SAFETY (both): forwarded from the caller; the strips and tiles `drive` makes lie
        // inside B and are the kernel's.
        let strip = |pc: usize, j: usize, _: usize, _: usize| (unsafe { b.as_ptr().add(j * g.k + pc) }, g.k);
        unsafe { drive(a, c, g, block, &walk, strip, ep, |rows, t| dot_tile(rows, t)) }
    }

    /// Loops over the depth in passes (β on the first, accumulating after), the block's rows in
    /// the walk's blocks, their columns in the walk's strips, and their rows in tiles beneath each
    /// strip, so that a strip of `op(B)` (from `strip(pc, j, kc, width)`) stays in cache while a
    /// block of `A` streams past it.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn drive(
        a: &[f32],
        c: *mut f32,
        g: &Gemm,
        block: &Block,
        w: &Walk,
        mut strip: impl FnMut(usize, usize, usize, usize) -> Strip,
        ep: &Epilogue,
        tile: impl Fn(usize, &Tile),
    ) {
        let Block { rows, cols } = block;
        for pc in (0..g.k).step_by(w.kc) {
            let kc = w.kc.min(g.k - pc);
            // β belongs to the first pass, the epilogue to the last pass's stores.
            let first = pc == 0;
            let last = pc + kc == g.k;
            for ic in rows.clone().step_by(w.mc) {
                let rows = ic..rows.end.min(ic.saturating_add(w.mc));
                for j in cols.clone().step_by(w.cols) {
                    let width = w.cols.min(cols.end - j);
                    let (b, ldb) = strip(pc, j, kc, width);
                    for i in rows.clone().step_by(w.rows) {
                        // SAFETY: rows i.. (clipped to the block), columns j..j+width and depths
                        // pc..pc+kc lie inside op(A), the strip and C; the caller owns this block of C.
                        unsafe {
                            let t = Tile {
                                kc,
                                a: a.as_ptr().add(i * w.rs + pc * w.cs),
                                rs: w.rs,
                                cs: w.cs,
                                b,
                                ldb,
                                c: c.add(i * g.n + j),
                                ldc: g.n,
                                width,
                                alpha: g.alpha,
                                beta: if first { g.beta } else { 1.0 },
                                bias: match ep.bias {
                                    Some(bias) if last => bias.as_ptr().add(j),
                                    _ => std::ptr::null(),
                                },
                                relu: last && ep.relu,
                            };
                            tile(w.rows.min(rows.end - i), &t);
                        }
                    }
                }
            }
        }
    }

    /// One tile's operands: `a` at `op(A)[i, pc]`, `b` at `op(B)[pc, j]`, `c` at `C[i, j]`.
    pub(in crate::gemm) struct Tile {
        pub(in crate::gemm) kc: usize,
        pub(in crate::gemm) a: *const f32,
        pub(in crate::gemm) rs: usize,
        pub(in crate::gemm) cs: usize,
        pub(in crate::gemm) b: *const f32,
        pub(in crate::gemm) ldb: usize,
        pub(in crate::gemm) c: *mut f32,
        pub(in crate::gemm) ldc: usize,
        pub(in crate::gemm) width: usize,
        pub(in crate::gemm) alpha: f32,
        pub(in crate::gemm) beta: f32,
        /// `bias[j..]` to add to the stored values, or null; and whether to take `max(0, ·)`
        /// after it (NaN kept), as [`Epilogue::apply`] does.
        pub(in crate::gemm) bias: *const f32,
        pub(in crate::gemm) relu: bool,
    }

    /// Picks the monomorphized kernel for `rows` (1–12) and the tile's width (1–32).
    #[target_feature(enable = "avx512f")]
    unsafe fn broadcast_tile(rows: usize, t: &Tile) {
        macro_rules! by_rows {
            ($nv:literal) => {
                match rows {
                    12 => broadcast::<12, $nv>(t),
                    11 => broadcast::<11, $nv>(t),
                    10 => broadcast::<10, $nv>(t),
                    9 => broadcast::<9, $nv>(t),
                    8 => broadcast::<8, $nv>(t),
                    7 => broadcast::<7, $nv>(t),
                    6 => broadcast::<6, $nv>(t),
                    5 => broadcast::<5, $nv>(t),
                    4 => broadcast::<4, $nv>(t),
                    3 => broadcast::<3, $nv>(t),
                    2 => broadcast::<2, $nv>(t),
                    _ => broadcast::<1, $nv>(t),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe { if t.width > 16 { by_rows!(2) } else { by_rows!(1) } }
    }

    /// `C[M × width] ← α·Σ_p op(A)[:, p]·op(B)[p, :] + β·C`, `M` rows by `NV` zmm of columns,
    /// every `B` load and `C` access masked to `width`.
    #[target_feature(enable = "avx512f")]
    unsafe fn broadcast<const M: usize, const NV: usize>(t: &Tile) {
        let masks = [lanes(t.width), lanes(t.width.saturating_sub(16))];
        let mut acc = [[_mm512_setzero_ps(); NV]; M];
        for p in 0..t.kc {
            // SAFETY: p < kc and the masks keep every load inside the tile's rows and columns.
            unsafe {
                let b_row = t.b.add(p * t.ldb);
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, out) in bv.iter_mut().enumerate() {
                    *out = _mm512_maskz_loadu_ps(masks[v], b_row.add(16 * v));
                }
                let a_col = t.a.add(p * t.cs);
                for (r, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a_col.add(r * t.rs));
                    for (x, &bj) in row.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(ai, bj, *x);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                // SAFETY: row r < M of the tile, columns masked to the tile's width.
                unsafe { store(t.c.add(r * t.ldc + 16 * v), 16 * v, masks[v], x, t) };
            }
        }
    }

    /// `dst[lanes] ← α·x + β·dst[lanes]`, with neither the multiply when α = 1 nor the read when
    /// β = 0 (the common case in training), and a plain store for a full vector: Zen 4 runs a
    /// masked 512-bit store at a fraction of a plain one's rate.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(dst: *mut f32, col: usize, lanes: __mmask16, x: __m512, t: &Tile) {
        let mut out = if t.alpha == 1.0 { x } else { _mm512_mul_ps(_mm512_set1_ps(t.alpha), x) };
        // SAFETY (all four accesses): the caller's lanes of `dst` lie inside C, and those of the
        // bias (tile column `col` on) inside the bias.
        if t.beta != 0.0 {
            out = _mm512_fmadd_ps(_mm512_set1_ps(t.beta), unsafe { _mm512_maskz_loadu_ps(lanes, dst) }, out);
        }
        if !t.bias.is_null() {
            out = _mm512_add_ps(out, unsafe { _mm512_maskz_loadu_ps(lanes, t.bias.add(col)) });
        }
        if t.relu {
            // Keep lanes that are not ≤ 0 (positive or NaN), zero the rest (−0 included), as
            // `Epilogue::apply` does.
            out = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(out, _mm512_setzero_ps()), out);
        }
        if lanes == !0 {
            unsafe { _mm512_storeu_ps(dst, out) };
        } else {
            unsafe { _mm512_mask_storeu_ps(dst, lanes, out) };
        }
    }
}
