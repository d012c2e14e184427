//! The contract every backend implements: device-resident buffers, transfers, synchronization, a
//! registry of kernel variants per op, and one `launch` entry point that takes a [`Kernel`].
//!
//! The tensor crate knows no backend; a backend is one crate implementing [`Backend`], and a
//! [`Device`](crate::Device) holds any of them behind an `Arc<dyn Backend>`.

use std::any::Any;
use std::fmt;

use crate::{Kernel, Op, Result};

/// Which family of backend a device belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Cpu,
    Wgpu,
    Cuda,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda];

    /// The name users type after `--backend`.
    pub const fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A buffer of f32 values owned by one device. Backends downcast it to their own type.
pub trait DeviceBuffer: Any + Send + Sync + fmt::Debug {
    /// The number of f32 values it holds.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn as_any(&self) -> &dyn Any;

    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// What a device says about itself, for `kernelab devices` and result records.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    /// The processor or adapter, e.g. `AMD EPYC 9454 (2 threads)`.
    pub name: String,
    /// The driver or runtime and its version, where there is one.
    pub driver: String,
    /// Further facts worth a line each (SIMD level, memory, limits), as `(key, value)`.
    pub details: Vec<(String, String)>,
}

/// A device's measured roofline: what no kernel can beat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Roofline {
    /// The FMA peak with every thread or SM, in GFLOP/s.
    pub peak_gflops: f64,
    /// The FMA peak of one thread (CPU), in GFLOP/s.
    pub peak_gflops_one_thread: f64,
    /// The copy bandwidth (bytes read + written), in GB/s.
    pub bandwidth_gbps: f64,
    /// How it was measured.
    pub how: String,
}

impl Roofline {
    /// The fraction of the roofline a kernel reached: `achieved / min(peak, intensity · bandwidth)`,
    /// which is `max(gflops / peak, gbps / bandwidth)`.
    pub fn fraction(&self, gflops: f64, gbps: f64) -> f64 {
        (gflops / self.peak_gflops).max(gbps / self.bandwidth_gbps)
    }
}

/// One named kernel variant of one op, and whether this machine can run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    /// One line on what the variant does differently.
    pub summary: &'static str,
    /// `None` when it can run here; otherwise why not (e.g. "the CPU lacks AVX-512F").
    pub unavailable: Option<String>,
}

impl Variant {
    pub fn available(name: &'static str, summary: &'static str) -> Self {
        Self { name, summary, unavailable: None }
    }

    pub fn is_available(&self) -> bool {
        self.unavailable.is_none()
    }
}

/// A compute device: CPU, WGPU or CUDA. Object-safe, so devices of different kinds can live in
/// one process (data-parallel training holds several).
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    fn kind(&self) -> BackendKind;

    fn info(&self) -> DeviceInfo;

    /// The registered variants of `op`, the default first. Every op has at least one.
    fn variants(&self, op: Op) -> Vec<Variant>;

    /// A buffer of `len` values with unspecified contents; refusal is [`Error::OutOfMemory`](crate::Error).
    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>>;

    /// Copies `src` (exactly `dst.len()` values, checked by the caller) into `dst`.
    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()>;

    /// Copies `src` into `dst` (exactly `src.len()` values), waiting for pending work first.
    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()>;

    /// Waits until every launched kernel has finished.
    fn synchronize(&self) -> Result<()>;

    /// The measured roofline, if the backend can measure one (measured once, then cached).
    fn roofline(&self) -> Option<Roofline> {
        None
    }

    /// Turns timing with the device's own clock (GPU timestamp queries) on or off; returns whether
    /// the device has such a clock. Off by default: timestamps cost a readback per submission.
    fn set_device_timing(&self, _on: bool) -> bool {
        false
    }

    /// Device-clock seconds spent in the kernels launched since the last call, while timing is on
    /// (waits for them); `None` for a device without its own clock.
    fn take_device_seconds(&self) -> Result<Option<f64>> {
        Ok(None)
    }

    /// Runs `kernel` with the named variant (a name from [`Backend::variants`]), or the default one.
    /// The kernel's lengths were checked ([`Kernel::check`]); the variant name was not.
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()>;
}
