//! The CPU's kernel variants per op. The benchmark and the conformance suite read this list; the
//! first entry of each op is its default.

use kernelab_tensor::{Op, Variant};

use crate::gemm::MicroKernel;

/// The default variant of every op that has only one.
pub const PORTABLE: &str = "portable";

/// The variants of `op`, the default first.
pub fn variants(op: Op) -> Vec<Variant> {
    match op {
        Op::Matmul => {
            let simd = |name: &'static str, kernel: &str, summary: &'static str| Variant {
                name,
                summary,
                unavailable: MicroKernel::detect(kernel).err(),
            };
            let mut all = vec![
                Variant::available("threaded", "packed GEMM, the best microkernel here, rayon over column blocks"),
                simd("packed_avx512", "avx512", "packed GEMM, AVX-512F 8×32 microkernel, one thread"),
                simd("packed_avx2", "avx2", "packed GEMM, AVX2+FMA 6×16 microkernel, one thread"),
                Variant::available("packed_portable", "packed GEMM, plain-Rust 4×16 microkernel, one thread"),
                Variant::available("blocked", "packed rows, 4-row unit-stride update, rayon over 32-row blocks"),
                Variant::available("naive", "textbook triple loop, one thread"),
            ];
            if cfg!(feature = "openblas") {
                all.push(Variant::available("openblas", "baseline: OpenBLAS cblas_sgemm, OpenBLAS's threads"));
            }
            all
        }
        _ => vec![Variant::available(PORTABLE, "plain loops, vectorized by the compiler, rayon above 32K elements")],
    }
}
