//! The core of kernelab: [`Tensor`] (f32, row-major, contiguous, up to 4-D) on a [`Device`], the
//! [`Backend`] contract every device implements, the [`Kernel`] launches it receives, and the
//! autograd [`Tape`].
//!
//! This crate depends on no backend. A backend crate implements [`Backend`]; a program opens one
//! (or several, of any kinds) at run time and wraps each in a [`Device`].

mod backend;
mod device;
mod dtype;
mod error;
pub mod files;
mod fused;
mod kernel;
mod kernel_buffers;
mod kernel_file;
mod labels;
pub mod memory;
mod op;
mod ops;
mod pool;
mod profile;
mod roofline;
mod shape;
mod tape;
mod tensor;

pub use backend::{
    Backend, BackendKind, Baseline, DeviceBuffer, DeviceInfo, PreparedLinear, Variant, VariantEntry, required_backends,
    resolve, resolve_for,
};
pub use device::Device;
pub use dtype::{Dtype, Precision};
pub use error::{Error, Result};
pub use fused::{AdamNarrow, adam_narrow_step_, all_finite};
pub use kernel::{AdamStep, Gemm, In, Kernel, Out};
pub use kernel_buffers::{Buffers, Written};
pub use kernel_file::{Geometry, KernelFile, SourceKind, SourceRef, sha256_hex};
pub use labels::Labels;
pub use op::{LaunchCost, Op, OpFamily};
pub use ops::adam_step_;
pub use pool::{DEFAULT_POOL_BYTES, Pool};
pub use profile::{Cost, Profile, ProfileEntry};
pub use roofline::{Ceiling, MemoryLevel, Peak, Roofline};
pub use shape::{MAX_RANK, Shape};
pub use tape::{Grads, Tape};
pub use tensor::{Tensor, TensorId};
