//! The CPU's kernel variants per op. The benchmark and the conformance suite read this list; the
//! first entry of each op is its default.

use kernelab_tensor::{Op, Variant};

use crate::gemm::MicroKernel;
use crate::simd::Isa;

/// The variants of `op`, the default first.
pub fn variants(op: Op) -> Vec<Variant> {
    match op {
        Op::Matmul => {
            let simd = |name: &'static str, kernel: &str, summary: &'static str| {
                Variant::available(name, summary).one_thread().unavailable_if(MicroKernel::detect(kernel).err())
            };
            let not_built = |feature: &str, needs: &str| {
                Some(format!("not compiled in; rebuild with `--features {feature}`{needs}"))
            };
            vec![
                Variant::available(
                    "threaded",
                    "direct where the re-read operand fits half the L2, else packed; column blocks over the threads",
                ),
                simd(
                    "direct_avx512",
                    "avx512",
                    "no packing: NN/TN broadcast 8×32, NT broadcast over transposed strips of Bᵀ or dot 4×4 by shape (TT packed), one thread",
                ),
                simd(
                    "direct_dot_avx512",
                    "avx512",
                    "no packing: NN/TN broadcast 8×32, NT always dot 4×4 (TT packed), one thread",
                ),
                simd("packed_avx512", "avx512", "packed GEMM, AVX-512F 8×32 microkernel, one thread"),
                simd("packed_avx2", "avx2", "packed GEMM, AVX2+FMA 6×16 microkernel, one thread"),
                Variant::available("packed_portable", "packed GEMM, plain-Rust 4×16 microkernel, one thread")
                    .one_thread(),
                Variant::available("blocked", "packed rows, 4-row unit-stride update, rayon over 32-row blocks"),
                Variant::available("naive", "textbook triple loop, one thread").one_thread(),
                Variant::available("openblas", "baseline: OpenBLAS cblas_sgemm on OpenBLAS's threads")
                    .as_baseline()
                    .unavailable_if(if cfg!(feature = "openblas") {
                        None
                    } else {
                        not_built("openblas", " (needs libopenblas-dev)")
                    }),
                Variant::available("gemm-crate", "baseline: the gemm crate (candle, faer) on the thread pool")
                    .as_baseline()
                    .unavailable_if(if cfg!(feature = "rust-baselines") {
                        None
                    } else {
                        not_built("rust-baselines", "")
                    }),
                Variant::available("matrixmultiply", "baseline: the matrixmultiply crate (ndarray), one thread")
                    .as_baseline()
                    .one_thread()
                    .unavailable_if(if cfg!(feature = "rust-baselines") {
                        None
                    } else {
                        not_built("rust-baselines", "")
                    }),
            ]
        }
        _ => {
            // The widest instruction set first: it is the default.
            let best = Isa::best();
            let mut all: Vec<Isa> = vec![best];
            all.extend(Isa::ALL.into_iter().filter(|&i| i != best));
            all.into_iter()
                .map(|isa| {
                    let summary = match isa {
                        Isa::Avx512 => "one loop body compiled for AVX-512F, split over the threads above 32K elements",
                        Isa::Avx2 => "one loop body compiled for AVX2+FMA, split over the threads above 32K elements",
                        Isa::Portable => {
                            "one loop body compiled for the baseline target, split over the threads above 32K elements"
                        }
                    };
                    Variant::available(isa.name(), summary).unavailable_if(isa.unavailable())
                })
                .collect()
        }
    }
}
