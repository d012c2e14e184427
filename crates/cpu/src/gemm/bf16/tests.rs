//! Every narrow GEMM against an f64 reference on awkward shapes, every layout, α and β, outputs
//! NaN-poisoned where β = 0 (so an unwritten element cannot pass).

use kernelab_tensor::Gemm;

use super::*;

/// Shapes that cross every edge: partial tiles (MR = 8, NR = 32), more than one MC block (96),
/// more than one depth pass (KC = 1024) ending on half a pair, and a product big enough to thread.
/// `n ≤ 16` runs the 8 × 16 kernel: full tiles at 17 × 16, partial ones at 64 × 10.
const SHAPES: [(usize, usize, usize); 10] = [
    (1, 1, 1),
    (3, 17, 31),
    (8, 32, 2),
    (9, 33, 3),
    (17, 257, 127),
    (127, 31, 1023),
    (97, 65, 1031),
    (203, 333, 130),
    (64, 10, 784),
    (17, 16, 35),
];

/// A narrow product into an f32 `C`: `run(a, b, c, g)`.
type Product<'a> = &'a dyn Fn(&[u16], &[u16], &mut [f32], &Gemm);

/// A skewed, sign-changing input of `len` values, as bits of `kind` (so it is exactly representable).
fn input(kind: Narrow, len: usize, seed: usize) -> Vec<u16> {
    (0..len).map(|i| kind.from_f32(((i * 7919 + seed * 104_729) % 1001) as f32 / 1001.0 - 0.3)).collect()
}

/// Checks `run` (computing into f32 `C`) against the f64 reference of `C ← α·op(A)·op(B) + β·C`:
/// every element within `(k + 2)·2⁻²⁴·(|α|·Σ|a||b| + |β·c₀|)`, the bound on f32 summation of exact
/// products (the inputs are exact in f32).
fn check(kind: Narrow, g: &Gemm, run: Product<'_>) {
    let (a, b) = (input(kind, g.m * g.k, 1), input(kind, g.k * g.n, 2));
    let c0: Vec<f32> = (0..g.m * g.n).map(|i| if g.beta == 0.0 { f32::NAN } else { (i % 7) as f32 - 3.0 }).collect();
    let mut c = c0.clone();
    run(&a, &b, &mut c, g);
    let at = |x: &[u16], trans: bool, rows: usize, cols: usize, r: usize, s: usize| {
        f64::from(kind.to_f32(if trans { x[s * rows + r] } else { x[r * cols + s] }))
    };
    for i in 0..g.m {
        for j in 0..g.n {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..g.k {
                let term = at(&a, g.trans_a, g.m, g.k, i, p) * at(&b, g.trans_b, g.k, g.n, p, j);
                dot += term;
                mag += term.abs();
            }
            let prior = if g.beta == 0.0 { 0.0 } else { f64::from(g.beta) * f64::from(c0[i * g.n + j]) };
            let want = f64::from(g.alpha) * dot + prior;
            let budget = (g.k + 2) as f64 * 2f64.powi(-24) * (f64::from(g.alpha).abs() * mag + prior.abs()) + 1e-30;
            let got = f64::from(c[i * g.n + j]);
            assert!((got - want).abs() <= budget, "{kind:?} {g:?} C[{i},{j}] = {got}, want {want} ± {budget:e}");
        }
    }
}

/// Every shape, every layout, α = 1 β = 0 (poisoned `C`) and α = −0.75 β = 0.5.
fn every_case(kind: Narrow, run: Product<'_>) {
    for (m, n, k) in SHAPES {
        for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (-0.75, 0.5)] {
                check(kind, &Gemm::new(m, n, k).trans(trans_a, trans_b).scaled(alpha, beta), run);
            }
        }
    }
}

#[test]
fn dpbf16_matches_the_f64_reference_on_one_and_all_threads() {
    let Ok(kernel) = PairKernel::detect() else { return };
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| every_case(Narrow::Bf16, &|a, b, c, g| gemm_dpbf16(a, b, c, g, kernel, true)));
    }
}

#[test]
fn widened_products_match_the_f64_reference_in_both_narrow_types() {
    let kernel = MicroKernel::best();
    for kind in [Narrow::Bf16, Narrow::F16] {
        every_case(kind, &|a, b, c, g| gemm_widened(kind, a, b, c, g, kernel, true));
    }
}

/// On one thread, and split over two threads (a `C` large enough, of an odd length), in both
/// narrow types: the f32 result rounded once; with β = 0 a poisoned `C` comes out finite.
#[test]
fn a_narrow_output_is_the_f32_result_rounded_once() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for (g, threaded) in [(Gemm::new(17, 33, 65), false), (Gemm::new(181, 197, 5), true)] {
        assert!(!threaded || g.m * g.n >= super::PAR_MIN_CONVERT, "large enough to be split");
        let g = g.scaled(1.5, 0.25);
        for kind in [Narrow::Bf16, Narrow::F16] {
            let (a, b) = (input(kind, g.m * g.k, 3), input(kind, g.k * g.n, 4));
            let c0: Vec<u16> = (0..g.m * g.n).map(|i| kind.from_f32(i as f32 / 64.0)).collect();
            let mut wide: Vec<f32> = c0.iter().map(|&h| kind.to_f32(h)).collect();
            gemm_widened(kind, &a, &b, &mut wide, &g, MicroKernel::best(), false);
            let (a, b) = (&a, &b);
            let product = |g: Gemm| move |c: &mut [f32]| gemm_widened(kind, a, b, c, &g, MicroKernel::best(), false);
            let mut narrow = c0.clone();
            pool.install(|| narrow_output(kind, &mut narrow, g.beta, threaded, product(g)));
            let want: Vec<u16> = wide.iter().map(|&v| kind.from_f32(v)).collect();
            assert_eq!(narrow, want, "{kind:?} {g:?}");
            let mut poisoned = vec![kind.from_f32(f32::NAN); g.m * g.n];
            pool.install(|| narrow_output(kind, &mut poisoned, 0.0, threaded, product(g.scaled(1.0, 0.0))));
            assert!(poisoned.iter().all(|&h| kind.to_f32(h).is_finite()), "{kind:?} {g:?}");
        }
    }
}

#[test]
fn the_thread_count_does_not_change_dpbf16_results() {
    let Ok(kernel) = PairKernel::detect() else { return };
    let g = Gemm::new(203, 333, 130).trans(true, true);
    assert!(g.m * g.n * g.k >= super::PAR_MIN_FMAS, "the shape must be large enough to be threaded");
    let (a, b) = (input(Narrow::Bf16, g.m * g.k, 5), input(Narrow::Bf16, g.k * g.n, 6));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut c = vec![f32::NAN; g.m * g.n];
        pool.install(|| gemm_dpbf16(&a, &b, &mut c, &g, kernel, true));
        c
    };
    assert_eq!(run(1), run(2));
}
