//! The Rust peers as matmul baselines, beside OpenBLAS: the `gemm` crate (the GEMM under candle
//! and faer) as the `gemm-crate` variant on the thread pool, and `matrixmultiply` (BLIS-style,
//! the GEMM under ndarray) as the `matrixmultiply` variant on one thread. Behind the cargo feature
//! `rust-baselines`.
//!
//! Both take strides, so every transpose form is read in place: row-major `X` (`r × c`) has row
//! stride `c` and column stride 1; its transpose, read from the same buffer, swaps the two.

use kernelab_tensor::{Baseline, Gemm};

/// `(row stride, column stride)` of `op(A)` (`m × k`) and `op(B)` (`k × n`), in elements.
fn strides(g: &Gemm) -> ((isize, isize), (isize, isize)) {
    let (m, n, k) = (g.m as isize, g.n as isize, g.k as isize);
    let a = if g.trans_a { (1, m) } else { (k, 1) };
    let b = if g.trans_b { (1, k) } else { (n, 1) };
    (a, b)
}

/// `C ← α·op(A)·op(B) + β·C` by the `gemm` crate on `threads` rayon threads. Its convention is
/// `dst ← α·dst + β·lhs·rhs`, with `dst` not read when `read_dst` is false.
pub fn gemm_crate(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm, threads: usize) {
    if g.m == 0 || g.n == 0 {
        return;
    }
    let ((a_rs, a_cs), (b_rs, b_cs)) = strides(g);
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: `Kernel::check` verified that the buffers hold m·k, k·n and m·n values, and the
    // strides above address exactly those row-major layouts.
    unsafe {
        gemm::gemm(
            g.m,
            g.n,
            g.k,
            c.as_mut_ptr(),
            1,
            g.n as isize,
            g.beta != 0.0,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            g.beta,
            g.alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `C ← α·op(A)·op(B) + β·C` by `matrixmultiply` on the calling thread (it does not read `C`
/// when `β = 0`).
pub fn matrixmultiply(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) {
    if g.m == 0 || g.n == 0 {
        return;
    }
    let ((a_rs, a_cs), (b_rs, b_cs)) = strides(g);
    // SAFETY: as above; matrixmultiply reads m·k and k·n values and writes m·n through the strides.
    unsafe {
        matrixmultiply::sgemm(
            g.m,
            g.k,
            g.n,
            g.alpha,
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
            g.beta,
            c.as_mut_ptr(),
            g.n as isize,
            1,
        );
    }
}

/// What the two peers are and how they run here.
pub fn baselines(threads: usize) -> Vec<Baseline> {
    vec![
        Baseline {
            variant: "gemm-crate".into(),
            library: "gemm 0.19 (Rust)".into(),
            kernel: "its own run-time dispatch (x86-v4 AVX-512 kernels enabled)".into(),
            config: "Parallelism::Rayon on kernelab's thread pool".into(),
            threads: Some(threads),
            degraded: false,
            note: None,
        },
        Baseline {
            variant: "matrixmultiply".into(),
            library: "matrixmultiply 0.3 (Rust)".into(),
            kernel: "its own run-time dispatch (AVX-512 / FMA / SSE2)".into(),
            config: "single-threaded build".into(),
            threads: Some(1),
            degraded: false,
            note: None,
        },
    ]
}
