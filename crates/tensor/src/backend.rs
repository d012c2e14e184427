//! The contract every backend implements: device-resident buffers, transfers, synchronization, a
//! registry of kernel variants per op, and one `launch` entry point that takes a [`Kernel`].
//!
//! The tensor crate knows no backend; a backend is one crate implementing [`Backend`], and a
//! [`Device`](crate::Device) holds any of them behind an `Arc<dyn Backend>`.

use std::any::Any;
use std::fmt;

use crate::{Dtype, Error, Kernel, KernelFile, Op, Precision, Result, Roofline, SourceRef};

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

    /// Whether the environment variable `KERNELAB_REQUIRE` names this backend (see
    /// [`required_backends`]): where it does, its absence fails a test run instead of skipping it.
    pub fn is_required(self) -> bool {
        required_backends().iter().any(|name| name == self.name())
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The backends named in the environment variable `KERNELAB_REQUIRE`, comma-separated (e.g.
/// `wgpu,cuda`), each trimmed, empty names dropped: those a test run must find instead of
/// skipping. The names are as given; unknown ones are the caller's to refuse.
pub fn required_backends() -> Vec<String> {
    names_in(&std::env::var("KERNELAB_REQUIRE").unwrap_or_default())
}

/// The names of a comma-separated list, each trimmed, empty ones dropped.
fn names_in(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(String::from).collect()
}

/// A buffer of values owned by one device, stored as its [`dtype`](DeviceBuffer::dtype) (f32
/// unless allocated with [`Backend::alloc_as`]). Backends downcast it to their own type.
pub trait DeviceBuffer: Any + Send + Sync + fmt::Debug {
    /// The number of values it holds.
    fn len(&self) -> usize;

    /// The type its values are stored in.
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl dyn DeviceBuffer {
    /// The buffer as [`Any`], for a backend to downcast to its own buffer type.
    pub fn as_any(&self) -> &dyn Any {
        self
    }

    /// The buffer as mutable [`Any`], for a backend to downcast to its own buffer type.
    pub fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
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
    /// `Some(what it is)` for a software device standing in for a GPU (the emulated CUDA device,
    /// a CPU Vulkan adapter such as lavapipe): its results are checked like any device's, but its
    /// timings mean nothing, so no ceiling is measured for it and no ratio is quoted against one.
    pub software: Option<String>,
}

/// A vendor or peer library that a backend times beside its own kernels, and what it runs as here.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// The variant name its rows carry (`openblas`, `gemm-crate`, `cublas`).
    pub variant: String,
    /// The library and its version, e.g. `OpenBLAS 0.3.21`, `gemm 0.19 (Rust)`.
    pub library: String,
    /// The kernel or code path it chose for this processor, e.g. OpenBLAS's core `SkylakeX`.
    pub kernel: String,
    /// Its build configuration or other facts, as the library reports them.
    pub config: String,
    /// Threads it runs on (CPU), or `None` on a GPU.
    pub threads: Option<usize>,
    /// It runs code that is not meant for this processor (a generic core), so no ratio is quoted
    /// against it.
    pub degraded: bool,
    /// What was done about its choice of kernel, or why it is degraded, in a sentence.
    pub note: Option<String>,
}

/// One named kernel variant of one op, and whether this machine can run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    /// One line on what the variant does differently.
    pub summary: &'static str,
    /// `None` when it can run here; otherwise why not (e.g. "the CPU lacks AVX-512F").
    pub unavailable: Option<String>,
    /// It runs on the calling thread alone, whatever the thread pool's size (CPU).
    pub single_thread: bool,
    /// It is a vendor or peer library timed as a baseline, not one of kernelab's kernels.
    pub baseline: bool,
    /// It was loaded from a file at run time ([`Backend::load_kernel`]): the file and its hash.
    pub source: Option<SourceRef>,
    /// The dtype its buffers hold and the one it accumulates in ([`Precision::F32`] unless set
    /// with [`Variant::with_precision`]). Every float buffer of a launch by this variant is of
    /// `precision.storage` (for `narrow` the output, for `widen` the input).
    pub precision: Precision,
}

impl Variant {
    pub fn available(name: &'static str, summary: &'static str) -> Self {
        Self {
            name,
            summary,
            unavailable: None,
            single_thread: false,
            baseline: false,
            source: None,
            precision: Precision::F32,
        }
    }

    /// The same variant, storing and accumulating in `p`.
    pub fn with_precision(self, p: Precision) -> Self {
        Self { precision: p, ..self }
    }

    /// The variant of a kernel loaded from `file`, named after it.
    pub fn from_file(file: &KernelFile, summary: &'static str) -> Self {
        Self { source: Some(file.source.clone()), ..Self::available(file.name, summary) }
    }

    /// The same variant, marked as running on one thread.
    pub fn one_thread(self) -> Self {
        Self { single_thread: true, ..self }
    }

    /// The same variant, marked as a baseline library.
    pub fn as_baseline(self) -> Self {
        Self { baseline: true, ..self }
    }

    /// The same variant, unavailable here for `reason` (when there is one).
    pub fn unavailable_if(self, reason: Option<String>) -> Self {
        Self { unavailable: reason, ..self }
    }

    pub fn is_available(&self) -> bool {
        self.unavailable.is_none()
    }
}

/// One entry of a backend's variant table: the [`Variant`] it describes, and whatever the backend
/// needs to run it (a function, an entry point and its launch plan).
pub trait VariantEntry {
    fn variant(&self) -> &Variant;
}

impl VariantEntry for Variant {
    fn variant(&self) -> &Variant {
        self
    }
}

/// The entry of `table` (one op's variants, the default first) that `requested` names, or the
/// default when it names none: the one lookup every backend uses. A name the table lacks is
/// [`Error::UnknownVariant`] listing the names it has; a variant that cannot run on this machine
/// is [`Error::VariantUnavailable`] with the reason. Never a fallback to another variant.
pub fn resolve<'t, T: VariantEntry>(
    backend: BackendKind,
    op: Op,
    table: &'t [T],
    requested: Option<&str>,
) -> Result<&'t T> {
    resolve_for(backend, op, table, requested, Some(Dtype::F32))
}

/// [`resolve`] for a launch whose buffers hold `storage` ([`Kernel::storage`]): the default is
/// the first entry of that storage, and a named entry whose buffers are of another type is
/// [`Error::DtypeMismatch`] naming both (a TF32 entry runs on f32 buffers when named; it is never
/// the default). `None`: any storage, the default the first entry.
pub fn resolve_for<'t, T: VariantEntry>(
    backend: BackendKind,
    op: Op,
    table: &'t [T],
    requested: Option<&str>,
    storage: Option<Dtype>,
) -> Result<&'t T> {
    let chosen = match (requested, storage) {
        (None, Some(storage)) => table.iter().find(|e| e.variant().precision.storage == storage),
        (None, None) => table.first(),
        (Some(name), _) => table.iter().find(|e| e.variant().name == name),
    };
    if let (Some(e), Some(storage)) = (chosen, storage)
        && e.variant().precision.storage.buffer() != storage
    {
        let v = e.variant();
        return Err(Error::DtypeMismatch {
            op: op.name(),
            found: format!("variant {} stores {}, the buffers hold {storage}", v.name, v.precision.storage),
            why: format!("pick a {storage} variant of {op} on {backend}"),
        });
    }
    if let (None, None, Some(storage)) = (chosen, requested, storage) {
        return Err(Error::NoStorage {
            backend: backend.name().into(),
            dtype: storage,
            why: format!(" kernel for {op}: it lists no {storage} variant"),
        });
    }
    match chosen {
        Some(e) if e.variant().is_available() => Ok(e),
        Some(e) => Err(Error::VariantUnavailable {
            backend: backend.name().into(),
            op: op.name(),
            name: e.variant().name.into(),
            reason: e.variant().unavailable.clone().unwrap_or_default(),
        }),
        None => Err(Error::UnknownVariant {
            backend: backend.name().into(),
            op: op.name(),
            name: requested.unwrap_or_default().into(),
            known: table.iter().map(|e| e.variant().name).collect::<Vec<_>>().join(", "),
        }),
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

    /// A buffer of `len` values stored as `dtype`, unspecified contents. [`Backend::upload`] into
    /// a narrow buffer rounds each f32 to the nearest value of its type (ties to even) and
    /// [`Backend::download`] widens exactly. Default: f32 is [`Backend::alloc`], any other dtype is
    /// [`Error::NoStorage`].
    fn alloc_as(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        match dtype {
            Dtype::F32 => self.alloc(len),
            _ => Err(Error::NoStorage { backend: self.kind().name().into(), dtype, why: String::new() }),
        }
    }

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

    /// The baseline libraries this backend times beside its own kernels, as they run here.
    fn baselines(&self) -> Vec<Baseline> {
        Vec::new()
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

    /// Loads a kernel from `file` (a kind this backend runs) and adds it to the variants of
    /// `file.op`: listed by [`Backend::variants`] after the built-in ones, and launched by
    /// [`Backend::launch`] under `file.name`. A file that does not compile, lacks its entry point
    /// or symbol, or declares a launch its op cannot take is an [`Error::KernelFile`] that says so.
    fn load_kernel(&self, file: &KernelFile) -> Result<Variant> {
        Err(file.error(format!("the {} backend cannot load kernels from files", self.kind())))
    }

    /// Whether anything was written outside `buffer` since it was allocated: backends that keep
    /// guard zones around their buffers (filled with a known pattern) name the first value found
    /// changed, e.g. `"3 values after the end changed (first at +0)"`; `None` when intact or when
    /// the backend keeps no guards.
    fn guard_violation(&self, _buffer: &dyn DeviceBuffer) -> Result<Option<String>> {
        Ok(None)
    }

    /// Runs `kernel` with the named variant (a name from [`Backend::variants`]), or the default one.
    /// The kernel's lengths were checked ([`Kernel::check`]); the variant name was not.
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()>;

    /// A Linear layer for forward-only calls, `y = x·Wᵀ + b` then `max(0, ·)` when `relu`, with
    /// `weight` (`outputs × inputs`, f32) and `bias` (`outputs`) copied and packed once into the
    /// layout this backend's kernels read, so that calls pack nothing; `None` where the backend has
    /// no such path (callers then launch `matmul` and `bias_relu` with the default variants, which
    /// a prepared layer must match). Later writes to `weight` and `bias` are not seen.
    fn prepare_linear(
        &self,
        _weight: &dyn DeviceBuffer,
        _bias: &dyn DeviceBuffer,
        _outputs: usize,
        _relu: bool,
    ) -> Result<Option<Box<dyn PreparedLinear>>> {
        Ok(None)
    }

    /// The name of this backend's fused mixed-precision Adam step for gradients and working
    /// weights stored as `dtype` ([`AdamNarrow`](crate::AdamNarrow)), or `None` where it has
    /// none: callers then compose the step from `widen`, `scale`, `adam` and `narrow`.
    fn adam_narrow_variant(&self, _dtype: Dtype) -> Option<&'static str> {
        None
    }

    /// Runs the fused step named by [`Backend::adam_narrow_variant`]; the kernel was checked
    /// ([`AdamNarrow::check`](crate::AdamNarrow::check)). A backend without one refuses.
    fn adam_narrow(&self, kernel: crate::AdamNarrow<'_>) -> Result<()> {
        Err(Error::InvalidArgument {
            op: "adam (fused narrow)",
            why: format!(
                "the {} backend has no fused {} Adam step; compose widen, adam, narrow",
                self.kind(),
                kernel.dtype()
            ),
        })
    }

    /// Whether every value of `buffer` is finite, read in its own dtype; `None` where the backend
    /// has no such pass (callers then widen and sum).
    fn all_finite(&self, _buffer: &dyn DeviceBuffer) -> Result<Option<bool>> {
        Ok(None)
    }
}

/// A Linear layer packed once by [`Backend::prepare_linear`].
pub trait PreparedLinear: Send + Sync + fmt::Debug {
    /// `y ← x·Wᵀ + b` (then `max(0, ·)` if prepared with `relu`) for `rows` rows: `x` holds
    /// `rows × inputs` values and `y` `rows × outputs`, both f32 buffers of the preparing backend.
    fn forward(&self, x: &dyn DeviceBuffer, y: &mut dyn DeviceBuffer, rows: usize) -> Result<()>;

    /// Whether [`forward_host`](Self::forward_host) reads `x` where the caller holds it in host
    /// memory: a backend whose buffers are host memory (the CPU), which then needs no copy of a
    /// batch, nor a buffer to copy it into, before the first layer. `false` by default.
    fn reads_host(&self) -> bool {
        false
    }

    /// [`forward`](Self::forward) with `x` in host memory (`rows × inputs` values), where
    /// [`reads_host`](Self::reads_host); refused elsewhere (upload `x` and call `forward`).
    fn forward_host(&self, _x: &[f32], _y: &mut dyn DeviceBuffer, _rows: usize) -> Result<()> {
        Err(Error::InvalidArgument {
            op: "forward_host",
            why: "this backend's prepared layers read their input from its own buffers: upload it and call forward"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_list_is_split_on_commas_and_trimmed() {
        assert_eq!(names_in(" wgpu, cuda ,,"), ["wgpu", "cuda"]);
        assert_eq!(names_in("wgpucuda"), ["wgpucuda"]);
        assert!(names_in("").is_empty() && names_in(" , ").is_empty());
    }

    /// A buffer seen as `dyn DeviceBuffer` downcasts to its own type and to no other.
    #[test]
    fn a_buffer_downcasts_to_its_own_type_only() {
        #[derive(Debug)]
        struct Mine(usize);
        impl DeviceBuffer for Mine {
            fn len(&self) -> usize {
                self.0
            }
        }
        let mut buffer: Box<dyn DeviceBuffer> = Box::new(Mine(7));
        assert_eq!(buffer.as_any().downcast_ref::<Mine>().map(|m| m.0), Some(7));
        assert!(buffer.as_any().downcast_ref::<Box<dyn DeviceBuffer>>().is_none());
        assert!(buffer.as_any().downcast_ref::<usize>().is_none());
        if let Some(mine) = buffer.as_any_mut().downcast_mut::<Mine>() {
            mine.0 = 9;
        }
        assert_eq!(buffer.len(), 9);
    }
}
