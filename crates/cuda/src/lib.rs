//! The CUDA backend of kernelab: the hand-written PTX of `kernels/`, loaded and launched with
//! `cust` on one stream.
//!
//! Without the `cuda` feature this crate carries only what needs no driver: the embedded PTX
//! ([`ptx`]) and the launch plans ([`plan`]), which the tests check against each other. With the
//! feature, [`CudaBackend`] opens the first CUDA device; where the driver reports none (or the
//! stand-in `libcuda` of a machine without a GPU answers), it is unavailable with the driver's
//! reason, never a panic.

pub mod plan;
pub mod ptx;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod cublas;

#[cfg(feature = "cuda")]
pub use backend::{CudaBackend, CudaBuffer};

use kernelab_tensor::Op;

/// The variant names of `op` on CUDA, the default first, with one line each. `cublas` is the
/// vendor baseline for matmul, present when libcublas can be loaded.
pub fn variant_names(op: Op) -> Vec<(&'static str, &'static str)> {
    match op {
        Op::Matmul => vec![
            ("warptile", "128×128 block tile, 8×8 per thread, double-buffered 8-deep k slices, 128-bit loads"),
            ("vec4", "64×64 block tile, 4×4 per thread, 128-bit global loads where the layout allows"),
            ("regblock", "64×64 block tile, 4×4 per thread in registers, scalar global loads"),
            ("tiled", "16×16 tiles staged in shared memory"),
            ("coalesced", "one thread per element, neighbouring threads along a row of C"),
            ("naive", "one thread per element, neighbouring threads down a column of C"),
            ("cublas", "cuBLAS SGEMM (FP32, TF32 off), loaded at run time: the vendor baseline"),
        ],
        _ => vec![("ptx", "one hand-written PTX entry point, grid-stride over elements or rows")],
    }
}
