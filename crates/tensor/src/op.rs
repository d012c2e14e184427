//! The catalogue of kernel entry points. Every backend implements every [`Op`]; the registries, the
//! benchmark and the conformance suite all enumerate [`Op::ALL`].

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

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
    pub const ALL: [Op; 18] = [
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
            Op::Fill | Op::Relu | Op::ReluBackward | Op::Add | Op::Scale | Op::ScaleBy | Op::Axpy | Op::Adam => {
                OpFamily::Elementwise
            }
        }
    }

    /// The index of the op in [`Op::ALL`], for per-op tables.
    pub const fn index(self) -> usize {
        self as usize
    }
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
