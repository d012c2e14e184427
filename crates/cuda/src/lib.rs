//! The CUDA backend of kernelab: the hand-written PTX of `kernels/`, loaded and launched with
//! `cust` on one stream.
//!
//! Without the `cuda` feature this crate carries only what needs no driver: the embedded PTX
//! ([`ptx`]), the variant tables ([`variants`]) and the launch plans ([`plan`]), which the tests
//! check against each other. With the
//! feature, [`CudaBackend`] opens the first CUDA device; where the driver reports none (or the
//! stand-in `libcuda` of a machine without a GPU answers), it is unavailable with the driver's
//! reason, never a panic.

pub mod loaded;
pub mod plan;
pub mod ptx;
pub mod variants;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod buffer;
#[cfg(feature = "cuda")]
mod cublas;
#[cfg(feature = "cuda")]
mod driver;
#[cfg(feature = "cuda")]
pub mod emulated;
#[cfg(feature = "cuda")]
mod launch;
#[cfg(feature = "cuda")]
mod roofline;
#[cfg(feature = "cuda")]
mod widened;

#[cfg(feature = "cuda")]
pub use backend::CudaBackend;
#[cfg(feature = "cuda")]
pub use buffer::CudaBuffer;
pub use variants::CUBLAS;
