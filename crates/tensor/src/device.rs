//! [`Device`]: a cheap, clonable handle to one backend instance, chosen at run time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::{Backend, BackendKind, DeviceBuffer, DeviceInfo, Dtype, Error, Kernel, Op, Result, Variant};

static NEXT_DEVICE_ID: AtomicU64 = AtomicU64::new(0);

/// A handle to one backend instance. Clones share the instance; two devices opened separately are
/// different devices even when they are of the same kind (`--backend cpu,cpu`).
#[derive(Clone)]
pub struct Device(Arc<DeviceInner>);

struct DeviceInner {
    id: u64,
    backend: Box<dyn Backend>,
    /// The label used in messages: `cpu:0`, `wgpu:1`, …
    label: String,
    /// Per-op variant chosen by the user instead of the backend's default.
    preferred: RwLock<[Option<&'static str>; Op::ALL.len()]>,
    /// Every launch's time while profiling (see [`Device::start_profile`]).
    profile: std::sync::Mutex<Option<crate::Profile>>,
    /// Whether launches are being recorded: read on every launch, so an atomic, not the lock.
    profiling: std::sync::atomic::AtomicBool,
    /// The default variant of each op and storage seen, looked up once for the profile's rows.
    default_variants: RwLock<Vec<(Op, Dtype, &'static str)>>,
    /// What uploads to narrow buffers turned into ±∞ (see [`Device::take_overflows`]).
    overflows: std::sync::Mutex<Vec<String>>,
}

impl Device {
    pub fn new(backend: impl Backend) -> Self {
        let id = NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed);
        let label = format!("{}:{id}", backend.kind());
        Self(Arc::new(DeviceInner {
            id,
            backend: Box::new(backend),
            label,
            preferred: RwLock::new([None; Op::ALL.len()]),
            profile: std::sync::Mutex::new(None),
            profiling: std::sync::atomic::AtomicBool::new(false),
            default_variants: RwLock::new(Vec::new()),
            overflows: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// A process-unique number; equal ids mean the same device.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn kind(&self) -> BackendKind {
        self.0.backend.kind()
    }

    /// `cpu:0`, `wgpu:1`, …, as error messages name the device.
    pub fn label(&self) -> &str {
        &self.0.label
    }

    pub fn info(&self) -> DeviceInfo {
        self.0.backend.info()
    }

    /// The backend's measured roofline, if it has one.
    pub fn roofline(&self) -> Option<crate::Roofline> {
        self.0.backend.roofline()
    }

    /// The baseline libraries the backend times beside its own kernels.
    pub fn baselines(&self) -> Vec<crate::Baseline> {
        self.0.backend.baselines()
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.0.backend
    }

    pub fn same_as(&self, other: &Device) -> bool {
        self.0.id == other.0.id
    }

    /// The registered variants of `op`, the default first.
    pub fn variants(&self, op: Op) -> Vec<Variant> {
        self.0.backend.variants(op)
    }

    /// Loads a kernel from `file` as one more variant of its op (see [`Backend::load_kernel`]); a
    /// file of another backend's kind is an error that names the backend it needs.
    pub fn load_kernel(&self, file: &crate::KernelFile) -> Result<Variant> {
        let needs = file.kind.backend();
        if needs != self.kind() {
            return Err(file.error(format!("it is a {needs} kernel; the device {} is {}", self.label(), self.kind())));
        }
        self.0.backend.load_kernel(file)
    }

    /// See [`Backend::guard_violation`].
    pub fn guard_violation(&self, buffer: &dyn crate::DeviceBuffer) -> Result<Option<String>> {
        self.0.backend.guard_violation(buffer)
    }

    /// The variant of `op` named `name`, by [`resolve`](crate::resolve) over [`Device::variants`]
    /// (the lookup every backend's launch makes): an unknown name is an error listing the known
    /// ones, a variant that cannot run here is an error saying why.
    pub fn variant(&self, op: Op, name: &str) -> Result<Variant> {
        crate::resolve_for(self.kind(), op, &self.variants(op), Some(name), None).cloned()
    }

    /// Makes tensor ops on this device use the named variant of `op` instead of the default; the
    /// name must be one that [`Device::variant`] finds.
    pub fn prefer_variant(&self, op: Op, name: &str) -> Result<()> {
        let variant = self.variant(op, name)?;
        let mut preferred = self.0.preferred.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        preferred[op.index()] = Some(variant.name);
        Ok(())
    }

    /// The backend's forward-only Linear layer ([`Backend::prepare_linear`]), or `None` where it
    /// has none or where a preferred variant of `matmul`, `bias_add` or `bias_relu` is set (the
    /// prepared layer runs the defaults' arithmetic, so a chosen variant keeps the launches).
    pub fn prepare_linear(
        &self,
        weight: &dyn DeviceBuffer,
        bias: &dyn DeviceBuffer,
        outputs: usize,
        relu: bool,
    ) -> Result<Option<Box<dyn crate::PreparedLinear>>> {
        let preferred = self.0.preferred.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if [Op::Matmul, Op::BiasAdd, Op::BiasRelu].iter().any(|op| preferred[op.index()].is_some()) {
            return Ok(None);
        }
        drop(preferred);
        self.0.backend.prepare_linear(weight, bias, outputs, relu)
    }

    /// Allocates a buffer of `len` values with unspecified contents.
    pub fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        self.0.backend.alloc(len)
    }

    /// A buffer of `len` values stored as `dtype` (see [`Backend::alloc_as`]). TF32 has no buffers
    /// of its own ([`Dtype::buffer`](crate::Dtype::buffer)): asking for one is [`Error::NoStorage`].
    pub fn alloc_as(&self, len: usize, dtype: crate::Dtype) -> Result<Box<dyn DeviceBuffer>> {
        dtype.storable(self.kind().name())?;
        self.0.backend.alloc_as(len, dtype)
    }

    /// A buffer holding a copy of `data`.
    pub fn upload(&self, data: &[f32]) -> Result<Box<dyn DeviceBuffer>> {
        self.upload_as(data, crate::Dtype::F32)
    }

    /// A buffer stored as `dtype` holding `data`, each value rounded to the nearest of that type;
    /// finite values past a narrow type's range become ±∞ and are counted ([`Device::take_overflows`]).
    pub fn upload_as(&self, data: &[f32], dtype: crate::Dtype) -> Result<Box<dyn DeviceBuffer>> {
        let mut buf = self.alloc_as(data.len(), dtype)?;
        self.note_overflows(data, dtype);
        self.0.backend.upload(data, &mut *buf)?;
        Ok(buf)
    }

    /// Overwrites `dst` with `data`, which must have exactly its length (rounded and counted as
    /// [`Device::upload_as`] does when `dst` is narrow).
    pub fn write(&self, dst: &mut dyn DeviceBuffer, data: &[f32]) -> Result<()> {
        if data.len() != dst.len() {
            return Err(Error::BufferLength { op: "upload", buffer: "dst", len: dst.len(), expected: data.len() });
        }
        self.note_overflows(data, dst.dtype());
        self.0.backend.upload(data, dst)
    }

    /// Keeps [`Dtype::overflow_note`](crate::Dtype::overflow_note) of an upload of `data` to a
    /// `dtype` buffer, when some finite value overflows.
    fn note_overflows(&self, data: &[f32], dtype: crate::Dtype) {
        if !dtype.is_narrow() {
            return;
        }
        if let Some(note) = dtype.overflow_note(data, &format!("upload to {}", self.0.label)) {
            self.0.overflows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(note);
        }
    }

    /// Every upload since the last call that turned finite values into ±∞ because they lie past
    /// the buffer's type's range, one line each (`upload to cpu:0: 2 of 100 finite values are
    /// beyond f16's range (±65504) and became ±∞`), for the caller to report: a conversion never
    /// flushes values silently.
    pub fn take_overflows(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.overflows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The contents of `buf`, after every pending kernel has finished.
    pub fn download(&self, buf: &dyn DeviceBuffer) -> Result<Vec<f32>> {
        let mut out = vec![0.0; buf.len()];
        self.0.backend.download(buf, &mut out)?;
        Ok(out)
    }

    /// See [`Backend::set_device_timing`].
    pub fn set_device_timing(&self, on: bool) -> bool {
        self.0.backend.set_device_timing(on)
    }

    /// See [`Backend::take_device_seconds`].
    pub fn take_device_seconds(&self) -> Result<Option<f64>> {
        self.0.backend.take_device_seconds()
    }

    pub fn synchronize(&self) -> Result<()> {
        self.0.backend.synchronize()
    }

    /// Runs one kernel: checks its buffer lengths, then launches the given variant, else the
    /// preferred one (see [`Device::prefer_variant`]), else the backend's default.
    pub fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        kernel.check()?;
        let preferred = match variant {
            Some(_) => None,
            None => self.0.preferred.read().unwrap_or_else(|poisoned| poisoned.into_inner())[kernel.op().index()],
        };
        if !self.profiling() {
            return self.0.backend.launch(kernel, variant.or(preferred));
        }
        // Profiling: time this launch alone (the device's clock where it has one; the CPU runs a
        // launch to completion, so its wall time is the kernel's), and the profile's own
        // bookkeeping around it apart, so that the host's remainder does not absorb it.
        let bookkeeping = Instant::now();
        let (op, cost) = (kernel.op(), kernel.cost());
        let name = variant.or(preferred).unwrap_or_else(|| self.default_variant(op, kernel.storage()));
        let started = Instant::now();
        self.0.backend.launch(kernel, variant.or(preferred))?;
        let launched = Instant::now();
        self.record(op, name, cost, launched - started, started - bookkeeping)
    }

    /// See [`Backend::adam_narrow_variant`]; `None` too where a preferred variant of `widen`,
    /// `scale`, `adam` or `narrow` is set (the composed step then runs the variants asked for).
    pub fn adam_narrow_variant(&self, dtype: Dtype) -> Option<&'static str> {
        let preferred = self.0.preferred.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if [Op::Widen, Op::Scale, Op::Adam, Op::Narrow].iter().any(|op| preferred[op.index()].is_some()) {
            return None;
        }
        drop(preferred);
        self.0.backend.adam_narrow_variant(dtype)
    }

    /// Runs the fused mixed-precision Adam step ([`crate::AdamNarrow`]) after checking its
    /// buffers; while profiling it is a row of `adam` under the fused variant's name.
    pub fn adam_narrow(&self, kernel: crate::AdamNarrow<'_>) -> Result<()> {
        kernel.check()?;
        let Some(name) = self.0.backend.adam_narrow_variant(kernel.dtype()) else {
            return self.0.backend.adam_narrow(kernel);
        };
        if !self.profiling() {
            return self.0.backend.adam_narrow(kernel);
        }
        let bookkeeping = Instant::now();
        let cost = kernel.cost();
        let started = Instant::now();
        self.0.backend.adam_narrow(kernel)?;
        let launched = Instant::now();
        self.record(Op::Adam, name, cost, launched - started, started - bookkeeping)
    }

    /// See [`Backend::all_finite`].
    pub fn all_finite(&self, buffer: &dyn DeviceBuffer) -> Result<Option<bool>> {
        self.0.backend.all_finite(buffer)
    }

    /// Adds one timed launch to the profile: `wall` its wall time (the device's clock where it
    /// has one), `before` the bookkeeping spent before it started.
    fn record(&self, op: Op, name: &str, cost: crate::Cost, wall: Duration, before: Duration) -> Result<()> {
        let after = Instant::now();
        let seconds = match self.0.backend.take_device_seconds()? {
            Some(s) => s,
            None => wall.as_secs_f64(),
        };
        if let Some(p) = self.0.profile.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut() {
            p.record(op, name, cost, seconds);
            p.bookkeeping_seconds += (before + after.elapsed()).as_secs_f64();
        }
        Ok(())
    }

    /// The name of the variant a launch of `op` on buffers of `storage` runs when none is named
    /// (the first registered of that storage, as the backends resolve it), looked up once per op
    /// and storage.
    fn default_variant(&self, op: Op, storage: Dtype) -> &'static str {
        let seen = |(o, d, _): &&(Op, Dtype, &'static str)| *o == op && *d == storage;
        if let Some(&(_, _, name)) =
            self.0.default_variants.read().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().find(seen)
        {
            return name;
        }
        let variants = self.variants(op);
        let name = crate::resolve_for(self.kind(), op, &variants, None, Some(storage))
            .or_else(|_| crate::resolve_for(self.kind(), op, &variants, None, None))
            .map_or("", |v| v.name);
        self.0.default_variants.write().unwrap_or_else(|poisoned| poisoned.into_inner()).push((op, storage, name));
        name
    }

    fn profiling(&self) -> bool {
        self.0.profiling.load(Ordering::Relaxed)
    }

    /// Starts timing every launch, by op, variant and shape (an empty profile; the device's own
    /// clock is switched on where it has one).
    pub fn start_profile(&self) {
        self.0.backend.set_device_timing(true);
        *self.0.profile.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(crate::Profile::default());
        self.0.profiling.store(true, Ordering::Relaxed);
    }

    /// Stops or resumes recording, keeping what was recorded.
    pub fn pause_profile(&self, paused: bool) {
        let started = self.0.profile.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some();
        self.0.profiling.store(started && !paused, Ordering::Relaxed);
    }

    /// Ends profiling and returns what it recorded.
    pub fn take_profile(&self) -> Option<crate::Profile> {
        self.0.profiling.store(false, Ordering::Relaxed);
        let taken = self.0.profile.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if taken.is_some() {
            self.0.backend.set_device_timing(false);
        }
        taken
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
