//! Neural networks on kernelab: [`Linear`] and [`Mlp`] (PyTorch's initialization and layout),
//! [`Adam`] and [`Sgd`], MNIST-format [`data`], the training loop ([`fit`]) with validation and
//! JSON logs, safetensors [`checkpoint`]s, knowledge distillation ([`Objective::Distill`] from a
//! [`Frozen`] teacher, run as an experiment with its control by [`distill::distill`]),
//! data-parallel training across devices ([`DataParallel`]) and processes ([`world`]), the
//! choice between them ([`learner`]), mixed-precision training in bf16 or f16 ([`mixed`]), and the forward-only inference path ([`Inference`]).

pub mod checkpoint;
pub mod data;
pub mod distill;
#[cfg(feature = "mpi")]
pub mod distributed;
mod fnv;
mod frozen;
pub mod idx;
pub mod infer;
pub mod learner;
mod linear;
pub mod mixed;
pub mod optim;
mod parallel;
pub mod size;
mod train;
pub mod world;

pub use data::{Data, Dataset, FASHION_MNIST_DIR, Split};
pub use frozen::Frozen;
pub use infer::Inference;
pub use learner::{Observer, Plan, Run};
pub use linear::{Linear, Mlp, parse_spec};
pub use mixed::{LossScale, MixedAdam};
pub use optim::{Adam, Optimizer, Sgd};
pub use parallel::{DataParallel, check_split};
pub use train::{EpochLog, Fit, FitConfig, Objective, Trainer, evaluate, fit};
