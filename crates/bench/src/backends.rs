//! Opening backends by name at run time, and reporting the ones that cannot be opened.
//!
//! Every backend kernelab knows is listed, compiled in or not; one that is not compiled in, or
//! finds no device, answers with a reason instead of disappearing.

use kernelab_cpu::CpuBackend;
use kernelab_tensor::{BackendKind, Device, Dtype, Error, Op, Result};

/// The backend names `--backend` accepts.
pub fn known() -> String {
    BackendKind::ALL.map(BackendKind::name).join(", ")
}

/// Parses a backend name.
pub fn kind(name: &str) -> Result<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .find(|k| k.name() == name.trim())
        .ok_or_else(|| Error::UnknownBackend { name: name.to_string(), known: known() })
}

/// Opens a new device of `kind`, or says why it cannot.
pub fn open(kind: BackendKind) -> Result<Device> {
    open_with(kind, None)
}

/// Opens a new device of `kind`; for GPU backends, the first adapter whose name contains
/// `adapter` (case-insensitive), else the highest-performance one.
pub fn open_with(kind: BackendKind, adapter: Option<&str>) -> Result<Device> {
    #[cfg(not(feature = "wgpu"))]
    let _ = adapter;
    match kind {
        BackendKind::Cpu => Ok(Device::new(CpuBackend::new())),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Ok(Device::new(kernelab_wgpu::WgpuBackend::with_adapter(adapter)?)),
        #[cfg(not(feature = "wgpu"))]
        BackendKind::Wgpu => Err(not_compiled(kind, "wgpu")),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Ok(Device::new(kernelab_cuda::CudaBackend::new()?)),
        #[cfg(not(feature = "cuda"))]
        BackendKind::Cuda => Err(not_compiled(kind, "cuda")),
    }
}

/// Opens a device by name (`cpu`, `wgpu`, `cuda`).
pub fn open_named(name: &str) -> Result<Device> {
    open(kind(name)?)
}

/// Every adapter the WGPU backend can see, one line each (empty when it is not compiled in).
pub fn wgpu_adapters() -> Vec<String> {
    #[cfg(feature = "wgpu")]
    {
        kernelab_wgpu::adapters()
            .into_iter()
            .map(|a| {
                format!(
                    "{} [{}, {}] {}; storage binding {} MiB, workgroup storage {} KiB, {} invocations",
                    a.name,
                    a.backend,
                    a.device_type,
                    a.driver,
                    a.max_storage_binding_mib,
                    a.workgroup_storage_kib,
                    a.invocations_per_workgroup
                )
            })
            .collect()
    }
    #[cfg(not(feature = "wgpu"))]
    {
        Vec::new()
    }
}

#[cfg_attr(all(feature = "wgpu", feature = "cuda"), allow(dead_code))]
fn not_compiled(kind: BackendKind, feature: &str) -> Error {
    Error::BackendUnavailable {
        backend: kind.name().into(),
        reason: format!("not compiled into this build; rebuild with `--features {feature}`"),
    }
}

/// Every known backend with a device, or the reason it has none.
pub fn probe_all() -> Vec<(BackendKind, Result<Device>)> {
    BackendKind::ALL.into_iter().map(|k| (k, open(k))).collect()
}

/// One device of every backend that is available here.
pub fn available() -> Vec<Device> {
    probe_all().into_iter().filter_map(|(_, d)| d.ok()).collect()
}

/// Why a backend lists no variant of `op` storing `dtype`, naming what is missing: `the wgpu
/// backend has no bf16 variant of matmul: WGSL has no bf16 type`.
pub fn no_variant_reason(kind: BackendKind, op: Op, dtype: Dtype) -> String {
    let missing = match (kind, dtype) {
        (BackendKind::Wgpu, Dtype::Bf16) => ": WGSL has no bf16 type".to_string(),
        (BackendKind::Cpu | BackendKind::Wgpu, Dtype::Tf32) => {
            ": TF32 is a mode of NVIDIA's tensor cores (mma.sync .tf32, cuBLAS FAST_TF32); only the cuda backend has it"
                .to_string()
        }
        (BackendKind::Cpu, _) => String::new(),
        _ => " yet".to_string(),
    };
    let name = if kind == BackendKind::Cpu { "CPU".to_string() } else { kind.to_string() };
    format!("the {name} backend has no {dtype} variant of {op}{missing}")
}
