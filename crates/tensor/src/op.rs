//! The catalogue of kernel entry points. Every backend implements every [`Op`]; the registries, the
//! benchmark and the conformance suite all enumerate [`Op::ALL`].
//!
//! To add an op, every place to touch, in order (the compiler's exhaustive matches point at most
//! of them; `tests/conformance.rs` fails until the op has its line):
//! 1. `crates/tensor/src/op.rs` (here): the variant, its place in [`Op::ALL`], its name in
//!    [`Op::name`], its [`OpFamily`] (which decides how a benchmark shape is read) and its
//!    FLOPs and bytes in [`Op::cost`].
//! 2. `crates/tensor/src/kernel.rs`: the [`Kernel`](crate::Kernel) variant with its buffers and
//!    parameters and the math in its doc comment, and its arms in `op`, `work`, `dims`,
//!    `accumulates` (if it adds into an output) and `check` (every buffer's length).
//! 3. `crates/tensor/src/ops.rs` (the tensor method that launches it) and, for a differentiable
//!    op, `crates/tensor/src/tape.rs` (its node and backward rule, the formula on top).
//! 4. `crates/bench/src/reference.rs`: the f64 reference; `crates/bench/src/case.rs`: its inputs
//!    in `Case::new` (skewed so that a wrong kernel cannot pass by luck), `expected` and the
//!    kernel `Prepared::launch` builds; `crates/bench/src/conformance.rs`: its knobs in
//!    `knob_sets` if it has any (awkward shapes come from its family).
//! 5. CPU: the loop body in `crates/cpu/src/elementwise.rs` or `rowwise.rs` (one `multiversion!`
//!    function; the instruction-set table serves every op but matmul) and its arm in
//!    `elementwise_or_rowwise` in `crates/cpu/src/lib.rs`.
//! 6. CUDA: the entry point in `kernels/*.ptx` (named after the op, listed in the file's header
//!    comment with its parameters), its `PtxKernel` in `KERNELS` (`crates/cuda/src/variants.rs`),
//!    its arguments in `args` (`crates/cuda/src/plan.rs`), its plan check in
//!    `crates/cuda/tests/plans_match_ptx.rs`, and its cases in `scripts/ptx_emulate.py`.
//! 7. WGPU: the entry point in `shaders/*.wgsl` and its entry in the variant table and launch
//!    plan of `crates/wgpu/src/` (the bindings and parameter words the op passes).
//! 8. Loaded kernels: the op's C function in `examples/kernels/kernelab.h` and its call in the
//!    CPU backend's library loader, and its calling convention in `docs/kernels.md`.
//! 9. Tests: its line in `tests/conformance.rs`, a gradient check in `tests/gradcheck.rs` for a
//!    differentiable op. `kernelab bench --op NAME` and `kernelab check` pick it up from
//!    [`Op::ALL`]; `benches/kernels.rs` times a chosen few ops (add it there if it should be one).

use std::fmt;
use std::str::FromStr;

use crate::{Dtype, Error, Result};

/// One kernel entry point of the [`Backend`](crate::Backend) contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Fill,
    Matmul,
    BiasAdd,
    BiasRelu,
    ColSum,
    Relu,
    ReluBackward,
    Softmax,
    SoftmaxBackward,
    LogSoftmax,
    LogSoftmaxBackward,
    SoftmaxCrossEntropy,
    KlDiv,
    Add,
    Scale,
    ScaleBy,
    Axpy,
    Adam,
    /// f32 → a narrow dtype, rounding to nearest even.
    Narrow,
    /// A narrow dtype → f32, exactly.
    Widen,
}

/// How an op's work is shaped, which decides how a benchmark shape is read (`N`, `RxC`, `MxNxK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpFamily {
    /// One value per element: shape `N`.
    Elementwise,
    /// Row-wise over a matrix: shape `R×C`.
    Rowwise,
    /// Matrix product: shape `M×N×K`.
    Matmul,
}

impl Op {
    /// Every op, in catalogue order.
    pub const ALL: [Op; 20] = [
        Op::Fill,
        Op::Matmul,
        Op::BiasAdd,
        Op::BiasRelu,
        Op::ColSum,
        Op::Relu,
        Op::ReluBackward,
        Op::Softmax,
        Op::SoftmaxBackward,
        Op::LogSoftmax,
        Op::LogSoftmaxBackward,
        Op::SoftmaxCrossEntropy,
        Op::KlDiv,
        Op::Add,
        Op::Scale,
        Op::ScaleBy,
        Op::Axpy,
        Op::Adam,
        Op::Narrow,
        Op::Widen,
    ];

    /// The op's name as the CLI, the registries and the JSON records spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Fill => "fill",
            Op::Matmul => "matmul",
            Op::BiasAdd => "bias_add",
            Op::BiasRelu => "bias_relu",
            Op::ColSum => "col_sum",
            Op::Relu => "relu",
            Op::ReluBackward => "relu_backward",
            Op::Softmax => "softmax",
            Op::SoftmaxBackward => "softmax_backward",
            Op::LogSoftmax => "log_softmax",
            Op::LogSoftmaxBackward => "log_softmax_backward",
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Op::KlDiv => "kl_div",
            Op::Add => "add",
            Op::Scale => "scale",
            Op::ScaleBy => "scale_by",
            Op::Axpy => "axpy",
            Op::Adam => "adam",
            Op::Narrow => "narrow",
            Op::Widen => "widen",
        }
    }

    pub const fn family(self) -> OpFamily {
        match self {
            Op::Matmul => OpFamily::Matmul,
            Op::BiasAdd
            | Op::BiasRelu
            | Op::ColSum
            | Op::Softmax
            | Op::SoftmaxBackward
            | Op::LogSoftmax
            | Op::LogSoftmaxBackward
            | Op::SoftmaxCrossEntropy
            | Op::KlDiv => OpFamily::Rowwise,
            Op::Fill
            | Op::Relu
            | Op::ReluBackward
            | Op::Add
            | Op::Scale
            | Op::ScaleBy
            | Op::Axpy
            | Op::Adam
            | Op::Narrow
            | Op::Widen => OpFamily::Elementwise,
        }
    }

    /// The index of the op in [`Op::ALL`], for per-op tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The work of one launch at `dims`, the shape as the benchmark writes it (`[M, N, K]` for
    /// matmul, `[R, C]` for row-wise ops (bias_add and col_sum among them), `[N]` for elementwise
    /// ones; a missing dimension counts 1). `accumulate`: the launch adds into its output (matmul with
    /// `β ≠ 0`, col_sum with `accumulate`), so the output is read as well; axpy and adam always
    /// read what they update. The one source of these numbers: the benchmark's GFLOP/s and GB/s
    /// and the profiler's per-kernel rows both come from here.
    ///
    /// FLOPs are the conventional counts of the math in [`Kernel`](crate::Kernel)'s docs: `2·M·N·K`
    /// for matmul, a few per element elsewhere (an `exp` counts one: 4 for softmax, 14 for adam);
    /// bytes are f32 values × 4.
    pub fn cost(self, dims: &[usize], accumulate: bool) -> LaunchCost {
        self.cost_as(dims, accumulate, Dtype::F32)
    }

    /// [`Op::cost`] for buffers stored as `storage`: the same FLOPs, bytes at `storage.bytes()`
    /// per value (`narrow` reads f32 and writes `storage`, `widen` the other way round).
    pub fn cost_as(self, dims: &[usize], accumulate: bool, storage: Dtype) -> LaunchCost {
        let d = |i: usize| dims.get(i).map_or(1.0, |&v| v as f64);
        let n: f64 = dims.iter().map(|&v| v as f64).product();
        let (rows, cols) = (d(0), d(1));
        let acc = |values: f64| if accumulate { values } else { 0.0 };
        // (flops, values read, values written)
        let (flops, read, written) = match self {
            Op::Matmul => {
                let (m, n, k) = (d(0), d(1), d(2));
                (2.0 * m * n * k, m * k + k * n + acc(m * n), m * n)
            }
            Op::Fill => (0.0, 0.0, n),
            Op::Relu | Op::Scale => (n, n, n),
            Op::ReluBackward | Op::Add => (n, 2.0 * n, n),
            Op::ScaleBy => (n, n + 1.0, n),
            Op::Axpy => (2.0 * n, 2.0 * n, n),
            Op::Adam => (14.0 * n, 4.0 * n, 3.0 * n),
            Op::BiasAdd => (n, n + cols, n),
            Op::BiasRelu => (2.0 * n, n + cols, n),
            Op::ColSum => (n, n + acc(cols), cols),
            Op::Softmax | Op::LogSoftmax => (4.0 * n, n, n),
            Op::SoftmaxBackward | Op::LogSoftmaxBackward => (4.0 * n, 2.0 * n, n),
            Op::SoftmaxCrossEntropy => (5.0 * n, n + rows, n + rows),
            Op::KlDiv => (8.0 * n, 2.0 * n, n + rows),
            Op::Narrow | Op::Widen => {
                let narrow = storage.bytes() as f64;
                return LaunchCost { flops: n, bytes: (4.0 + narrow) * n };
            }
        };
        LaunchCost { flops, bytes: storage.bytes() as f64 * (read + written) }
    }
}

/// What one launch of an op costs: see [`Op::cost`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LaunchCost {
    /// Floating-point operations.
    pub flops: f64,
    /// The least traffic: every input read once, every output written once (and read too when
    /// the launch adds into it).
    pub bytes: f64,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| Error::UnknownOp { name: name.to_string(), known: Op::ALL.map(Op::name).join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.name().parse::<Op>().unwrap(), op);
            assert_eq!(op.index(), i);
        }
    }

    #[test]
    fn unknown_op_lists_the_known_ones() {
        let err = "matmull".parse::<Op>().unwrap_err().to_string();
        assert!(err.contains("unknown op `matmull`") && err.contains("softmax_cross_entropy"), "{err}");
    }
}
