//! `W` laid out for the dot kernel on the forward-only path: `C ← ep(A·Wᵀ)` for the NT products
//! the default matmul computes as dot products (few rows, or a 10-class layer), with `W` read as
//! one stream, front to back, instead of four rows at a time from four places.
//!
//! The direct dot kernel ([`super::direct`]) computes `C[i, j]` in a zmm accumulator whose lane
//! `l` sums `A[i, p]·W[j, p]` over the depths `p ≡ l (mod 16)` in order, a masked load covering
//! the depth's tail, then adds the 16 lanes by one fixed tree ([`super::direct::sum4`]), in passes
//! of [`KC_DOT`] depths that add onto the previous pass's sum. For one row of `A` (a batch of one
//! image) it streams four rows of `W` at once, 3 KiB apart for a 784-wide layer, 49 cache lines
//! each: a fresh start for the hardware prefetcher every four outputs.
//!
//! [`DotPanels`] stores `W` (`n × k`) in groups of [`GROUP`] rows, each group's rows interleaved
//! 16 depths at a time: `panels[((g·blocks + b)·GROUP + r)·16 + l] = W[GROUP·g + r, 16·b + l]`
//! (`blocks = ⌈k/16⌉`, zeros past `n` and `k`, the buffer cache-line aligned), so that one depth
//! step of a group is four consecutive aligned loads, and the whole of `W` lies in the order a
//! one-row product reads it. [`gemm_dot_panels`] runs tiles of up to 4 rows × one group (the dot
//! kernel's 4 × 4; a lone row takes [`ROW_GROUPS`] groups at once), with each accumulator summed
//! in the dot kernel's order, reduced by its tree, its passes combined as its stores combine them
//! and the epilogue applied as [`Epilogue::apply`] does: the outputs are the default matmul's
//! followed by `bias_relu` (or `bias_add`) bit for bit, on one thread or several.
//!
//! Launch shape: groups outermost (a group's `4 × k` values stay in L1 while every row tile of
//! `A` passes them), row tiles of 4 inside; threaded products split the groups.
//!
//! Threads, by bytes: a product with few rows is bound by the stream of `W`, not by its FMAs
//! (the 784-512-256-10 teacher's first layer, 1 × 512 × 784, is 0.4M FMAs and 1.6 MB of `W`).
//! One core streams about 100 GB/s from L2 or L3 alike, two cores twice that
//! (`examples/weight_stream.rs`, results/infer/bandwidth-*), so where `W` holds at least
//! [`SPLIT_MIN_BYTES`] the groups are split over the kernels' threads whatever the FMA count;
//! the caller always runs the first share itself, so with one worker (two cores) and no more
//! shares than threads each core reads the same groups at every call, and its share of a model's
//! layers stays in its own L2 from call to call (with more workers, or more shares, the rest go to
//! whichever worker claims them first). Such a split product reads its groups in
//! alternate directions from call to call (serpentine): the groups read last are read first on
//! the next call, while the core's cache still holds them. Every output's sum is computed whole
//! by one tile in the same order whichever direction, so the outputs do not change.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::direct::KC_DOT;
use super::pack::Packed;
use super::prepacked::Epilogue;
use crate::spin_pool::SendPtr;

/// Rows of `W` (columns of `C`) per group: the dot kernel's [`super::direct::NJ`].
pub const GROUP: usize = 4;
/// Depths per step: one zmm.
const LANES: usize = 16;
/// Groups a one-row tile takes at once, so that its accumulators (4 per group) cover the FMA's
/// latency.
pub const ROW_GROUPS: usize = 2;
/// The most rows of `A` per tile.
const TILE_ROWS: usize = 4;
/// Bytes of `W` from which a product splits its groups over the threads whatever its FMAs (see
/// the module header): a quarter of one Zen 4 core's L2. Split, the 784-128-10 student's first
/// layer (401 KB, 4 µs on one core) saves more than the pool's hand-off costs (about a µs).
pub const SPLIT_MIN_BYTES: usize = 256 << 10;

/// `W` (`n × k`) in the layout of the module header.
#[derive(Debug)]
pub struct DotPanels {
    panels: Packed,
    n: usize,
    k: usize,
    /// Split products run so far, whose parity sets the direction of the next one's groups.
    split_calls: AtomicUsize,
}

impl DotPanels {
    /// Lays out `w` (`n × k`, row-major; the caller checked that it holds `n·k` values).
    pub fn new(w: &[f32], n: usize, k: usize) -> Self {
        debug_assert_eq!(w.len(), n * k);
        let blocks = k.div_ceil(LANES);
        let mut panels = Packed::default();
        let out = panels.reset(n.div_ceil(GROUP) * blocks * GROUP * LANES);
        for (j, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
            let (g, r) = (j / GROUP, j % GROUP);
            for (b, run) in row.chunks(LANES).enumerate() {
                out[((g * blocks + b) * GROUP + r) * LANES..][..run.len()].copy_from_slice(run);
            }
        }
        Self { panels, n, k, split_calls: AtomicUsize::new(0) }
    }

    /// Values between the starts of two groups.
    fn group_stride(&self) -> usize {
        self.k.div_ceil(LANES) * GROUP * LANES
    }

    fn values(&self) -> &[f32] {
        self.panels.values(self.n.div_ceil(GROUP) * self.group_stride())
    }
}

/// `C ← ep(A·Wᵀ)` on [`DotPanels`]: `A` is `m × k`, `C` is `m × n` (every value written), both
/// checked by the caller (`m`, `n`, `k` > 0, the bias `n` values); threaded as the default
/// matmul's direct path would be.
pub(crate) fn gemm_dot_panels(a: &[f32], m: usize, w: &DotPanels, c: &mut [f32], ep: &Epilogue, threaded: bool) {
    debug_assert!(a.len() == m * w.k && c.len() == m * w.n && m > 0 && w.n > 0 && w.k > 0);
    let shared = SendPtr(c.as_mut_ptr());
    let g = kernelab_tensor::Gemm::new(m, w.n, w.k).trans(false, true);
    if splits(w, &g, threaded) {
        let backward = w.split_calls.fetch_add(1, Ordering::Relaxed) % 2 == 1;
        // SAFETY: the sizes above; each task writes only the columns of its own groups.
        let block = |groups: Range<usize>| unsafe { block(a, m, w, shared.get(), groups, ep, backward) };
        super::split(w.n, GROUP, &|cols| block(cols.start / GROUP..cols.end.div_ceil(GROUP)));
    } else {
        // SAFETY: as above, one task.
        unsafe { block(a, m, w, shared.get(), 0..w.n.div_ceil(GROUP), ep, false) };
    }
}

/// Whether the product `g` on `w` splits its groups over the threads: threaded and worth it by
/// its multiply-adds, as the direct path decides, or by the bytes of `W` it streams (the module
/// header).
fn splits(w: &DotPanels, g: &kernelab_tensor::Gemm, threaded: bool) -> bool {
    super::worth_threads(g, threaded, super::PAR_MIN_FMAS_DIRECT)
        || (super::worth_threads(g, threaded, 0) && w.n * w.k * size_of::<f32>() >= SPLIT_MIN_BYTES)
}

/// Every row of `C` in the columns of `groups`, pass by pass over the depth; the groups' tiles
/// taken last to first where `backward` (the same tiles, each computing its outputs alike).
///
/// # Safety
/// `a` holds `m·k` values, `c` points at `m × n`; no other thread writes these columns.
unsafe fn block(a: &[f32], m: usize, w: &DotPanels, c: *mut f32, groups: Range<usize>, ep: &Epilogue, backward: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let (panels, stride) = (w.values(), w.group_stride());
        let per_tile = if m == 1 { ROW_GROUPS } else { 1 };
        let tiles = groups.len().div_ceil(per_tile);
        for pc in (0..w.k).step_by(KC_DOT) {
            let kc = KC_DOT.min(w.k - pc);
            let last = pc + kc == w.k;
            for t in 0..tiles {
                let g = groups.start + per_tile * if backward { tiles - 1 - t } else { t };
                let count = per_tile.min(groups.end - g);
                for i in (0..m).step_by(TILE_ROWS) {
                    let t = x86::Tile {
                        // SAFETY: row i < m of A at depth pc, group g at depth block pc/16 of the
                        // panels, C[i, GROUP·g] — all inside their buffers.
                        a: unsafe { a.as_ptr().add(i * w.k + pc) },
                        lda: w.k,
                        w: panels[g * stride + pc * GROUP..].as_ptr(),
                        stride,
                        kc,
                        c: unsafe { c.add(i * w.n + g * GROUP) },
                        ldc: w.n,
                        cols: (w.n - g * GROUP).min(count * GROUP),
                        first: pc == 0,
                        bias: if last { ep.bias.map(|b| &b[g * GROUP..]) } else { None },
                        relu: last && ep.relu,
                    };
                    // SAFETY: the tile's rows, depths and columns lie inside A, the panels and C.
                    unsafe { x86::tile(TILE_ROWS.min(m - i), count, &t) };
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, m, w, c, groups, ep, backward);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::direct::sum4;
    use super::{Epilogue, GROUP, LANES};
    use crate::simd::first_lanes as lanes;

    /// One tile: rows of `A` from `a` (stride `lda`, at the pass's first depth), groups of the
    /// panels from `w` (`stride` apart, at the pass's first depth block), `kc` depths, the
    /// `cols` valid columns of `C` from `c` (row stride `ldc`). `first`: the pass that
    /// overwrites `C`; later passes add onto it. `bias` (from the tile's first column) and `relu`
    /// on the last pass only.
    pub(super) struct Tile<'a> {
        pub a: *const f32,
        pub lda: usize,
        pub w: *const f32,
        pub stride: usize,
        pub kc: usize,
        pub c: *mut f32,
        pub ldc: usize,
        pub cols: usize,
        pub first: bool,
        pub bias: Option<&'a [f32]>,
        pub relu: bool,
    }

    /// Picks the monomorphized kernel for `rows` (1–4) and `groups` (1–2).
    ///
    /// # Safety
    /// `t`'s pointers cover `rows` rows and `groups` groups over its depths, and `t.cols` columns.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(rows: usize, groups: usize, t: &Tile) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match (rows, groups) {
                (1, 2) => kernel::<1, 2, 8>(t),
                (4, _) => kernel::<4, 1, 4>(t),
                (3, _) => kernel::<3, 1, 4>(t),
                (2, _) => kernel::<2, 1, 4>(t),
                _ => kernel::<1, 1, 4>(t),
            }
        }
    }

    /// `MI` rows against `G` groups (`NJ = G·GROUP` accumulators a row): each depth step loads 16
    /// values of every row (masked in the tail) and the groups' `NJ` vectors, and adds their
    /// products lane by lane, as the dot kernel does.
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const MI: usize, const G: usize, const NJ: usize>(t: &Tile) {
        let mut acc = [[_mm512_setzero_ps(); NJ]; MI];
        let step = |acc: &mut [[__m512; NJ]; MI], b: usize, mask: __mmask16| {
            let mut wv = [_mm512_setzero_ps(); NJ];
            for (j, out) in wv.iter_mut().enumerate() {
                // SAFETY: depth block b of group j / GROUP lies inside the panels (zeros past k).
                *out = unsafe { _mm512_load_ps(t.w.add((j / GROUP) * t.stride + (b * GROUP + j % GROUP) * LANES)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: the mask keeps the load inside row i's depths of this pass.
                let av = unsafe { _mm512_maskz_loadu_ps(mask, t.a.add(i * t.lda + b * LANES)) };
                for (x, &wj) in row.iter_mut().zip(&wv) {
                    *x = _mm512_fmadd_ps(av, wj, *x);
                }
            }
        };
        let whole = t.kc / LANES;
        for b in 0..whole {
            step(&mut acc, b, !0);
        }
        if !t.kc.is_multiple_of(LANES) {
            step(&mut acc, whole, lanes(t.kc % LANES));
        }
        for (i, row) in acc.iter().enumerate() {
            let mut sums = [0.0f32; NJ];
            for (q, out) in sums.chunks_exact_mut(GROUP).enumerate() {
                // SAFETY: `out` holds the four lanes stored.
                unsafe {
                    _mm_storeu_ps(out.as_mut_ptr(), sum4(row[4 * q], row[4 * q + 1], row[4 * q + 2], row[4 * q + 3]))
                };
            }
            for (j, &s) in sums.iter().take(t.cols).enumerate() {
                // SAFETY: row i < MI and column j < cols of the tile lie inside C.
                unsafe {
                    let dst = t.c.add(i * t.ldc + j);
                    let s = if t.first { s } else { s + *dst };
                    let s = t.bias.map_or(s, |bias| s + bias[j]);
                    *dst = if t.relu { Epilogue::relu(s) } else { s };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kernelab_tensor::Gemm;

    use super::super::prepacked::tests::values;
    use super::super::{Strategy, direct};
    use super::*;

    /// Products with few rows whose `W` holds at least [`SPLIT_MIN_BYTES`] but whose FMAs are
    /// below the direct path's threshold, so only the bytes split them: awkward widths (257:
    /// a lone group at the end; 131: a pair of groups cut short), a depth over two passes
    /// (1100), and the teacher's first layer. On 1 and 2 threads, three calls each (forward,
    /// backward, forward on 2 threads), every output poisoned first: the bits of the default
    /// matmul on one thread followed by the epilogue, and the direction flips only where split.
    #[test]
    fn split_by_bytes_in_both_directions_equals_the_default_matmul_bit_for_bit() {
        if !crate::simd::has_avx512() {
            return; // the dot layout's kernels need AVX-512F; `PackedNt` makes none without it
        }
        for (m, n, k) in [(1, 257, 257), (3, 131, 513), (2, 61, 1100), (1, 512, 784)] {
            assert!(n * k * 4 >= SPLIT_MIN_BYTES && m * n * k < super::super::PAR_MIN_FMAS_DIRECT, "{m}x{n}x{k}");
            let g = Gemm::new(m, n, k).trans(false, true);
            assert!(direct::computes_by_dot(&g, direct::Nt::ByShape), "{m}x{n}x{k}: the dot kernel's shape");
            let (a, w, bias) = (values(m * k, 1), values(n * k, 2), values(n, 3));
            let ep = Epilogue { bias: Some(&bias), relu: true };
            let mut z = vec![f32::NAN; m * n];
            super::super::gemm(&a, &w, &mut z, &g, Strategy::choose(&g), false);
            let want: Vec<u32> = z.iter().enumerate().map(|(at, &v)| ep.apply(v, at % n).to_bits()).collect();
            assert!(want.iter().any(|&b| f32::from_bits(b) > 0.0), "{m}x{n}x{k}: some outputs pass the ReLU");
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let panels = DotPanels::new(&w, n, k);
                for call in 0..3 {
                    let mut c = vec![f32::NAN; m * n];
                    pool.install(|| gemm_dot_panels(&a, m, &panels, &mut c, &ep, true));
                    let got: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                    assert!(got == want, "{m}x{n}x{k}, {threads} threads, call {call}: differs");
                }
                let split = if threads == 2 { 3 } else { 0 };
                assert_eq!(panels.split_calls.load(Ordering::Relaxed), split, "{m}x{n}x{k}, {threads} threads");
            }
        }
    }

    /// Below [`SPLIT_MIN_BYTES`] (and the FMA threshold) a product stays on one thread: the
    /// 784-128-10 student's last layer and a 1 × 64 × 1000 one.
    #[test]
    fn small_weights_stay_on_one_thread() {
        if !crate::simd::has_avx512() {
            return; // as above
        }
        for (m, n, k) in [(1, 10, 128), (1, 64, 1000)] {
            let (a, w) = (values(m * k, 4), values(n * k, 5));
            let panels = DotPanels::new(&w, n, k);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let mut c = vec![f32::NAN; m * n];
            pool.install(|| gemm_dot_panels(&a, m, &panels, &mut c, &Epilogue::NONE, true));
            assert!(c.iter().all(|v| v.is_finite()), "{m}x{n}x{k}: every output written");
            assert_eq!(panels.split_calls.load(Ordering::Relaxed), 0, "{m}x{n}x{k}");
        }
    }
}
