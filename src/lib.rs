//! kernelab: a hand-written compute engine for studying compute kernels.
//!
//! This facade re-exports the workspace so that one dependency brings all of it:
//! - [`tensor`]: `Tensor`, `Device`, the `Backend` contract, kernels, the autograd `Tape`;
//! - [`cpu`]: the CPU backend;
//! - [`nn`]: layers, Adam, data, training, distillation, data parallel;
//! - [`bench`](mod@bench): the f64 reference, the conformance suite, timing, records, opening backends by name.

pub use kernelab_bench as bench;
pub use kernelab_cli as cli;
pub use kernelab_cpu as cpu;
pub use kernelab_nn as nn;
pub use kernelab_tensor as tensor;

pub use kernelab_bench::backends;
pub use kernelab_tensor::{Backend, BackendKind, Device, Error, Labels, Op, Result, Tape, Tensor};
