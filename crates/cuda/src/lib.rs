//! The CUDA backend of kernelab: the hand-written PTX of `kernels/`, loaded and launched with
//! `cust` on one stream.
//!
//! Without the `cuda` feature this crate carries only what needs no driver: the embedded PTX
//! ([`ptx`]) and the launch plans ([`plan`]), which the tests check against each other. With the
//! feature, [`CudaBackend`] opens the first CUDA device; where the driver reports none (or the
//! stand-in `libcuda` of a machine without a GPU answers), it is unavailable with the driver's
//! reason, never a panic.

pub mod loaded;
pub mod plan;
pub mod ptx;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod cublas;

#[cfg(feature = "cuda")]
pub use backend::{CudaBackend, CudaBuffer};

use kernelab_tensor::Op;

/// The variant names of `op` on CUDA, the default first, with one line each: for matmul the
/// ladder from the top rung down, then `cublas`, the vendor baseline, present when libcublas can
/// be loaded.
pub fn variant_names(op: Op) -> Vec<(&'static str, &'static str)> {
    match op {
        Op::Matmul => {
            let mut names: Vec<_> = plan::MATMUL_LADDER.iter().rev().map(|r| (r.variant, r.summary)).collect();
            names.push((CUBLAS, "cuBLAS SGEMM (FP32, TF32 off), loaded at run time: the vendor baseline"));
            names
        }
        _ => vec![("ptx", "one hand-written PTX entry point, grid-stride over elements or rows")],
    }
}

/// The variant `op` runs when none is named: the first of [`variant_names`], without building it.
pub fn default_variant(op: Op) -> &'static str {
    match op {
        Op::Matmul => plan::MATMUL_LADDER[plan::MATMUL_LADDER.len() - 1].variant,
        _ => "ptx",
    }
}

/// Whether `name` is one of [`variant_names`]`(op)`, without building the list (every launch asks).
pub fn is_variant(op: Op, name: &str) -> bool {
    match op {
        Op::Matmul => name == CUBLAS || plan::MATMUL_LADDER.iter().any(|r| r.variant == name),
        _ => name == "ptx",
    }
}

/// The name of the cuBLAS matmul variant.
pub const CUBLAS: &str = "cublas";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortcuts_agree_with_the_variant_list() {
        for op in Op::ALL {
            let names = variant_names(op);
            assert_eq!(default_variant(op), names[0].0, "{op:?}");
            for (name, _) in &names {
                assert!(is_variant(op, name), "{op:?} {name}");
            }
            assert!(!is_variant(op, "strassen"));
        }
        assert_eq!(variant_names(Op::Matmul).len(), plan::MATMUL_LADDER.len() + 1);
    }
}
