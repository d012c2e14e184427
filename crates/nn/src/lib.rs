//! Neural networks on kernelab: [`Linear`] and [`Mlp`] (PyTorch's initialization and layout),
//! [`Adam`] and [`Sgd`], MNIST-format [`data`], the training loop ([`fit`]) with validation and
//! JSON logs, safetensors [`checkpoint`]s, knowledge distillation ([`Objective::Distill`]) and
//! data-parallel training across devices ([`DataParallel`]).

pub mod checkpoint;
pub mod data;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod idx;
mod linear;
pub mod optim;
mod parallel;
mod train;

pub use data::{Dataset, FASHION_MNIST_DIR, Split};
pub use linear::{Linear, Mlp, parse_spec};
pub use optim::{Adam, Optimizer, Sgd};
pub use parallel::DataParallel;
pub use train::{EpochLog, Fit, FitConfig, Objective, Trainer, evaluate, fit};
