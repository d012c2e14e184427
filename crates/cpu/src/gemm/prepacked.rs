//! A layer's weights packed once, for the forward-only path: `C ← ep(A·Wᵀ)`, with `W` (`n × k`,
//! row-major, a Linear layer's `out × in`) prepared when the model is loaded rather than on
//! every call, and the layer's epilogue (`+ bias`, then `max(0, ·)`) applied as `C` is stored.
//!
//! [`PackedNt::new`] keeps `W` itself (the plain product's operand where no panels are kept),
//! `op(B) = Wᵀ` packed into [`direct::NR`]-column panels over the whole depth,
//! `panels[(s·k + p)·NR + c] = W[s·NR + c, p]` (zeros past `n`): the layout `pack.rs` gives
//! one pass of the 8 × 32 microkernel, and the transposed strip the direct broadcast kernel
//! builds; and `W` in the dot kernel's layout ([`DotPanels`]: groups of four rows interleaved
//! 16 depths at a time, read as one stream). [`gemm_prepacked`] then computes every sum in the
//! order of the path the default `threaded` matmul takes for the NT product (`Strategy::choose`),
//! with the per-call packing or transposing of `W` replaced by reads of the panels, and the dot
//! products (few rows, or ten columns) run on the dot layout, each sum in the dot kernel's
//! order: the sums, and with the epilogue's single rounding of `z + b`, the layer's outputs, are
//! the training forward's (`matmul` then `bias_relu`) bit for bit. CPUs without AVX-512 keep no
//! panels and run the plain product followed by the epilogue.
//!
//! Where the default matmul packs (a batch whose rows, the re-read operand, outgrow half of L2:
//! the 784-wide layers at batch 256), packing `A` anew on every call is the one copy left, and a
//! layer runs without it: the broadcast kernel on the panels reads `A` in place and sums each
//! value as the packed 8 × 32 microkernel does — from zero, over passes of its depth
//! ([`MicroKernel::kc`]), the depths in order — in blocks of [`super::MC`] rows so that a block
//! of `A` stays in L2 while every panel runs past it ([`Prepared::packed_kc`]). Measured on this
//! project's Zen 4 (one thread, the student's 256x128x784 layer, `gemm_stages`): packing `A` was
//! 9% of the packed product's time; without it the kernel runs at 99% of the FMA peak (perf), and
//! `kernelab infer` (one thread, both binaries alternating) took the student's batch-256 call
//! from 507–535 to 466–473 µs (with the batch read in place, `linear.rs`).

use std::ops::Range;

use kernelab_tensor::{Error, Gemm, Result};

use super::direct::Nt;
use super::dot_panels::{DotPanels, gemm_dot_panels};
use super::{MicroKernel, Strategy, direct, pack, prefers_direct};

/// What is done to each value of `C` after its last pass: `v ← v + bias[j]` where a bias is
/// given, then `v ← max(0, v)` (NaN kept, −0 to +0) when `relu`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Nothing: the plain product.
    pub const NONE: Epilogue<'static> = Epilogue { bias: None, relu: false };

    /// `max(0, v)` as the CPU's `bias_relu` computes it: `v` where `v > 0` or NaN, else `+0`.
    #[inline(always)]
    pub fn relu(v: f32) -> f32 {
        if v > 0.0 || v.is_nan() { v } else { 0.0 }
    }

    /// The epilogue of `v` in column `j`.
    #[inline(always)]
    pub fn apply(&self, v: f32, j: usize) -> f32 {
        let v = self.bias.map_or(v, |bias| v + bias[j]);
        if self.relu { Self::relu(v) } else { v }
    }

    /// Applies the epilogue to `rows` rows of `cols` at `tile` (row stride `ldc`; the columns
    /// are `C`'s, which index the bias).
    ///
    /// # Safety
    /// The `rows × cols` values at `tile` lie inside `C`, and no other thread touches them.
    pub(crate) unsafe fn apply_tile(&self, tile: *mut f32, ldc: usize, rows: usize, cols: Range<usize>) {
        if self.bias.is_none() && !self.relu {
            return;
        }
        for r in 0..rows {
            // SAFETY: the caller's bounds.
            let row = unsafe { std::slice::from_raw_parts_mut(tile.add(r * ldc), cols.len()) };
            row.iter_mut().zip(cols.clone()).for_each(|(v, j)| *v = self.apply(*v, j));
        }
    }
}

/// What a forward-only caller prepared for [`direct::gemm_block`]: `op(B)`'s panels, packed once, and the
/// epilogue. [`Prepared::NONE`] is the plain product.
#[derive(Clone, Copy, Debug, Default)]
pub struct Prepared<'a> {
    pub panels: Option<&'a [f32]>,
    pub epilogue: Epilogue<'a>,
    /// With panels, for an NT product that the default matmul packs (`α = 1`, `β = 0`): the
    /// packed microkernel's depth per pass ([`MicroKernel::kc`]). The broadcast kernel then sums
    /// each value of `C` as the packed 8 × 32 kernel does — from zero, over passes of this depth,
    /// in the same order — reading `A` in place instead of packing it, in 8 × [`direct::NR`]
    /// tiles under blocks of [`super::MC`] rows.
    pub packed_kc: Option<usize>,
}

impl Prepared<'_> {
    pub const NONE: Prepared<'static> = Prepared { panels: None, epilogue: Epilogue::NONE, packed_kc: None };
}

/// `W` (`n × k`) prepared for [`gemm_prepacked`]: see the module header.
#[derive(Debug)]
pub struct PackedNt {
    weights: Vec<f32>,
    /// `Wᵀ` in panels, where this CPU runs the direct kernels and the 8 × 32 microkernel.
    panels: Option<pack::Packed>,
    /// `W` laid out for the dot kernel's products, where this CPU runs the direct kernels.
    dots: Option<DotPanels>,
    n: usize,
    k: usize,
}

impl PackedNt {
    /// Copies `w` (`n × k`, row-major) and packs its panels and its dot layout; `w` must hold
    /// `n·k` values.
    pub fn new(w: &[f32], n: usize, k: usize) -> Result<Self> {
        Self::with_dot_panels(w, n, k, true)
    }

    /// [`PackedNt::new`], with the dot layout ([`DotPanels`]) only where `dot_panels` (without it
    /// the dot products read `W` in place, as the plain matmul does: the same outputs, to
    /// measure what the layout buys).
    pub fn with_dot_panels(w: &[f32], n: usize, k: usize, dot_panels: bool) -> Result<Self> {
        if n.checked_mul(k) != Some(w.len()) {
            return Err(Error::InvalidArgument {
                op: "matmul",
                why: format!("weights of {} values cannot be a {n} × {k} matrix", w.len()),
            });
        }
        let g = Gemm::new(1, n, k).trans(false, true);
        let panels = (direct::supports(&g) && MicroKernel::best().nr == direct::NR).then(|| {
            let mut panels = pack::Packed::default();
            pack::pack_b(w, &g, 0..k, 0..n, direct::NR, &mut panels);
            panels
        });
        let dots = (dot_panels && direct::supports(&g) && n > 0 && k > 0).then(|| DotPanels::new(w, n, k));
        Ok(Self { weights: w.to_vec(), panels, dots, n, k })
    }

    /// Rows of `W`: the columns of `C`.
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// Columns of `W`: the depth of the product.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// Whether the panels were packed (this CPU has AVX-512F), so that calls pack nothing.
    pub fn has_panels(&self) -> bool {
        self.panels.is_some()
    }

    fn panel_values(&self) -> Option<&[f32]> {
        self.panels.as_ref().map(|p| p.values(self.n.div_ceil(direct::NR) * self.k * direct::NR))
    }
}

/// `C ← ep(A·Wᵀ)`: `A` is `m × k`, `C` is `m × n` (row-major, every value written), `ep`'s bias
/// holds `n` values; on the kernels' threads when `threaded` and large enough, as the default
/// matmul. See the module header for the path it takes and why its results are the training
/// forward's.
pub fn gemm_prepacked(a: &[f32], m: usize, w: &PackedNt, c: &mut [f32], ep: &Epilogue, threaded: bool) -> Result<()> {
    let (n, k) = (w.n, w.k);
    let sizes = [(a.len(), m.checked_mul(k), "A"), (c.len(), m.checked_mul(n), "C")];
    for (len, want, name) in sizes {
        if Some(len) != want {
            let why = format!("{name} holds {len} values; a {m}-row product with W {n} × {k} needs {want:?}");
            return Err(Error::InvalidArgument { op: "matmul", why });
        }
    }
    if let Some(bias) = ep.bias.filter(|b| b.len() != n) {
        let why = format!("the bias holds {} values; C has {n} columns", bias.len());
        return Err(Error::InvalidArgument { op: "matmul", why });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let g = Gemm::new(m, n, k).trans(false, true);
    if let Some(dots) =
        w.dots.as_ref().filter(|_| k > 0 && prefers_direct(&g) && direct::computes_by_dot(&g, Nt::ByShape))
    {
        gemm_dot_panels(a, m, dots, c, ep, threaded);
        return Ok(());
    }
    match (w.panel_values(), Strategy::choose(&g)) {
        (Some(panels), Strategy::Direct(nt)) if k > 0 => {
            let prep = Prepared { panels: Some(panels), epilogue: *ep, packed_kc: None };
            super::gemm_direct(a, &w.weights, c, &g, nt, threaded, &prep);
        }
        (Some(panels), Strategy::Packed(kernel)) if k > 0 && kernel.nr == direct::NR => {
            let prep = Prepared { panels: Some(panels), epilogue: *ep, packed_kc: Some(kernel.kc) };
            super::gemm_direct(a, &w.weights, c, &g, Nt::ByShape, threaded, &prep);
        }
        (_, strategy) => {
            super::gemm(a, &w.weights, c, &g, strategy, threaded);
            // SAFETY: the whole of C, which this call holds exclusively.
            unsafe { ep.apply_tile(c.as_mut_ptr(), n, m, 0..n) };
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Values in [−1, 1) with a few a hundred times larger, so that a kernel that drops or
    /// repeats one product cannot stay inside the budget by luck.
    pub(in crate::gemm) fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0;
                if i % 97 == seed % 97 { 100.0 * v } else { v }
            })
            .collect()
    }

    /// Shapes for every path: 1–8 rows (dot products, on the dot layout), 33 and 64 (the transposed broadcast on
    /// panels), 257 × 784 and 200 × 1025 (the packed GEMM's order with `A` in place, the latter
    /// over two passes of its depth), and widths that are not multiples of a tile (1, 3, 10, 17, 31, 33).
    fn shapes() -> Vec<(usize, usize, usize)> {
        let mut all = Vec::new();
        for m in [1, 2, 3, 5, 8, 33, 64] {
            for n in [1, 3, 10, 17, 32, 33, 127] {
                for k in [1, 3, 17, 127, 257, 784] {
                    all.push((m, n, k));
                }
            }
        }
        all.extend([(257, 10, 784), (257, 33, 784), (257, 128, 784), (200, 33, 1025), (1100, 17, 128)]);
        // The dot layout over two and three passes of its depth (1024), many row tiles against
        // 10 columns, and products large enough to split their groups over threads.
        all.extend([(1, 33, 1025), (5, 10, 2049), (300, 10, 130), (8, 301, 1000), (1, 2100, 1000)]);
        // The packed order with `A` in place wherever this CPU's L2 is (up to 4 MiB): a row tail
        // below a tile (300, 97), a block tail past MC (97 = 96 + 1), three passes of the depth
        // (2100 = 1024 + 1024 + 52), columns threaded in strips of 32, and a product whose C is
        // its largest operand (rows threaded in tiles of 8).
        all.extend([(300, 128, 784), (97, 40, 2100), (1300, 10, 784), (2900, 200, 190)]);
        all
    }

    fn epilogues(bias: &[f32]) -> [Epilogue<'_>; 3] {
        [Epilogue::NONE, Epilogue { bias: Some(bias), relu: false }, Epilogue { bias: Some(bias), relu: true }]
    }

    /// Against an f64 reference, every output poisoned first: `|c − ref| ≤ (k + 1)·u·(Σ|a||w| +
    /// |b|)`, the dot product's bound plus the one rounding of the bias add (ReLU moves nothing
    /// further apart).
    #[test]
    fn matches_the_f64_reference_on_awkward_shapes() {
        for (m, n, k) in shapes() {
            let (a, w, bias) = (values(m * k, 1), values(n * k, 2), values(n, 3));
            let packed = PackedNt::new(&w, n, k).unwrap();
            for ep in epilogues(&bias) {
                let mut c = vec![f32::NAN; m * n];
                gemm_prepacked(&a, m, &packed, &mut c, &ep, true).unwrap();
                for (at, &got) in c.iter().enumerate() {
                    let (i, j) = (at / n, at % n);
                    let row =
                        |x: &[f32], r: usize| x[r * k..(r + 1) * k].iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
                    let (ai, wj) = (row(&a, i), row(&w, j));
                    let dot: f64 = ai.iter().zip(&wj).map(|(x, y)| x * y).sum();
                    let mag: f64 = ai.iter().zip(&wj).map(|(x, y)| (x * y).abs()).sum();
                    let b = ep.bias.map_or(0.0, |b| f64::from(b[j]));
                    let want = if ep.relu { (dot + b).max(0.0) } else { dot + b };
                    let budget = (k + 1) as f64 * f64::from(f32::EPSILON / 2.0) * (mag + b.abs());
                    assert!(
                        (f64::from(got) - want).abs() <= budget,
                        "{m}x{n}x{k} {ep:?}: C[{i}, {j}] = {got}, want {want} ± {budget:e}"
                    );
                }
            }
        }
    }

    /// The training forward's arithmetic, bit for bit: the default matmul's choice for the NT
    /// product (`Strategy::choose`, threaded), then the epilogue as a pass of its own.
    #[test]
    fn equals_the_default_matmul_then_the_epilogue_bit_for_bit() {
        for (m, n, k) in shapes() {
            let (a, w, bias) = (values(m * k, 4), values(n * k, 5), values(n, 6));
            let packed = PackedNt::new(&w, n, k).unwrap();
            assert_eq!(packed.has_panels(), crate::simd::has_avx512(), "panels where AVX-512F is");
            let g = Gemm::new(m, n, k).trans(false, true);
            let mut z = vec![f32::NAN; m * n];
            super::super::gemm(&a, &w, &mut z, &g, Strategy::choose(&g), true);
            for ep in epilogues(&bias) {
                let want: Vec<u32> = z.iter().enumerate().map(|(at, &v)| ep.apply(v, at % n).to_bits()).collect();
                let mut c = vec![f32::NAN; m * n];
                gemm_prepacked(&a, m, &packed, &mut c, &ep, true).unwrap();
                let got: Vec<u32> = c.iter().map(|v| v.to_bits()).collect();
                assert!(got == want, "{m}x{n}x{k} {ep:?}: differs from matmul + epilogue");
            }
        }
    }

    /// ReLU keeps NaN and turns −0 into +0, as `bias_relu` does, in every kernel's store.
    #[test]
    fn relu_keeps_nan_and_zeroes_negative_zero() {
        assert!(Epilogue::relu(f32::NAN).is_nan());
        assert_eq!(Epilogue::relu(-0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(Epilogue::relu(-2.5), 0.0);
        assert_eq!(Epilogue::relu(2.5), 2.5);
        // Through the kernels: 2 rows (dot), 64 rows (broadcast on panels), 300 × 784 (packed). A
        // zero weight row and a bias of −3 give −3 before the ReLU; a NaN input gives a NaN row.
        for (m, k) in [(2, 16), (64, 16), (300, 784)] {
            let n = 33;
            let mut w = values(n * k, 7);
            w[..k].fill(0.0);
            let mut bias = values(n, 8);
            bias[0] = -3.0;
            let mut a = values(m * k, 9);
            a[k * (m - 1)] = f32::NAN;
            let packed = PackedNt::new(&w, n, k).unwrap();
            let mut c = vec![f32::NAN; m * n];
            let ep = Epilogue { bias: Some(&bias), relu: true };
            gemm_prepacked(&a, m, &packed, &mut c, &ep, true).unwrap();
            assert_eq!(c[0].to_bits(), 0.0f32.to_bits(), "{m}x{k}: +0 after the ReLU");
            assert!(c[(m - 1) * n + 1].is_nan(), "{m}x{k}: NaN kept");
            assert!(c[..(m - 1) * n].iter().all(|v| *v >= 0.0), "{m}x{k}: nothing negative");
        }
    }

    #[test]
    fn wrong_sizes_are_refused_with_the_numbers() {
        let err = PackedNt::new(&[0.0; 7], 2, 3).unwrap_err().to_string();
        assert!(err.contains("weights of 7 values cannot be a 2 × 3 matrix"), "{err}");
        let packed = PackedNt::new(&[1.0; 6], 2, 3).unwrap();
        let mut c = vec![0.0; 4];
        let err = gemm_prepacked(&[1.0; 5], 2, &packed, &mut c, &Epilogue::NONE, false).unwrap_err().to_string();
        assert!(err.contains("A holds 5 values; a 2-row product with W 2 × 3 needs Some(6)"), "{err}");
        let err = gemm_prepacked(&[1.0; 6], 2, &packed, &mut c[..3], &Epilogue::NONE, false).unwrap_err().to_string();
        assert!(err.contains("C holds 3 values"), "{err}");
        let ep = Epilogue { bias: Some(&[1.0; 3]), relu: false };
        let err = gemm_prepacked(&[1.0; 6], 2, &packed, &mut c, &ep, false).unwrap_err().to_string();
        assert!(err.contains("the bias holds 3 values; C has 2 columns"), "{err}");
        gemm_prepacked(&[1.0; 6], 2, &packed, &mut c, &Epilogue { bias: Some(&[0.5, -4.0]), relu: true }, false)
            .unwrap();
        assert_eq!(c, [3.5, 0.0, 3.5, 0.0]);
    }
}
