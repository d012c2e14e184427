//! The WGPU backend of kernelab: the hand-written WGSL compute shaders of `shaders/`, run with
//! `wgpu` on any Vulkan, Metal or DX12 adapter, a software one (Mesa's lavapipe) included.
//!
//! Every wgpu call that can fail validation runs inside an error scope, so a bad shader, an
//! oversized buffer or a lost device comes back as a typed [`Error`], never a panic. Each op's
//! variants are one table of data (`table.rs`), looked up with [`kernelab_tensor::resolve`];
//! what an entry point receives is the op's calling convention (`convention.rs`), the same for
//! the built-in shaders and for a WGSL file loaded at run time (`load.rs`); pipelines are
//! compiled once per (source, entry point) and cached (`pipeline.rs`); `launch.rs` records the
//! dispatch.
//!
//! Launches are recorded into one pending command encoder and submitted together when the host
//! next needs the device: before an upload (a queued write must not overtake recorded work), a
//! download, or a synchronize. A training step, which uploads a batch and then only launches,
//! is therefore one submission.

pub mod convention;
mod launch;
mod load;
mod pipeline;
pub mod shaders;
pub mod table;

pub use load::{Checked, check_file};

use std::any::Any;
use std::sync::{Arc, Mutex, RwLock};

use kernelab_tensor::{
    Backend, BackendKind, DeviceBuffer, DeviceInfo, Error, Kernel, KernelFile, Op, Pool, Result, Variant, resolve,
};

use table::Entry;

/// A device buffer: a wgpu storage buffer of `len` f32 values, its size rounded up to 16 bytes so it
/// can also be read as `array<vec4<f32>>`,
/// returned to its device's pool when dropped. Reuse is safe in queue order: work recorded before
/// the drop runs before any work recorded after the buffer is handed out again.
#[derive(Debug)]
pub struct WgpuBuffer {
    buffer: wgpu::Buffer,
    len: usize,
    pool: Arc<Pool<wgpu::Buffer>>,
}

impl Drop for WgpuBuffer {
    fn drop(&mut self) {
        self.pool.give(self.len, self.buffer.clone());
    }
}

impl DeviceBuffer for WgpuBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One wgpu device and queue, with its variant tables and compiled pipelines.
pub struct WgpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Every op's variants, indexed by [`Op::index`]: the built-in ones, then those loaded from
    /// files in load order.
    tables: RwLock<Vec<Vec<Entry>>>,
    pipelines: Mutex<pipeline::Cache>,
    /// Launches recorded since the last submission, and how many.
    pending: Mutex<(Option<wgpu::CommandEncoder>, usize)>,
    /// Freed buffers by length, so a training step creates none.
    pool: Arc<Pool<wgpu::Buffer>>,
    /// Whether the device was created with timestamp queries, and the timer while timing is on.
    timestamps: bool,
    timer: Mutex<Option<Timer>>,
    /// An error wgpu raised outside any error scope (asynchronously, say), kept for the next call
    /// to return: the handler that records it replaces wgpu's default, which panics.
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Submit after this many recorded launches even if the host has not asked, to bound memory.
const MAX_PENDING: usize = 256;

/// Timestamp queries around every compute pass, while timing is on.
struct Timer {
    queries: wgpu::QuerySet,
    /// Where the queries resolve to (two u64 ticks per pass).
    resolved: wgpu::Buffer,
    /// Passes recorded since the last resolve.
    passes: u32,
    /// Ticks accumulated since the last `take_device_seconds`.
    ticks: u64,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgpuBackend({})", self.info.name)
    }
}

fn device_error(message: impl std::fmt::Display) -> Error {
    Error::Device { backend: "wgpu".into(), message: message.to_string() }
}

/// Discrete GPUs first, then integrated, virtual, CPU (lavapipe) and the rest.
fn preference(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// One adapter as `kernelab devices` lists it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub max_storage_binding_mib: u64,
    pub workgroup_storage_kib: u32,
    pub invocations_per_workgroup: u32,
}

/// Every adapter wgpu finds on this machine, the one [`WgpuBackend::new`] picks first.
pub fn adapters() -> Vec<AdapterSummary> {
    let mut all = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY));
    all.sort_by_key(|a| preference(a.get_info().device_type));
    all.iter()
        .map(|a| {
            let (info, limits) = (a.get_info(), a.limits());
            AdapterSummary {
                name: info.name,
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info),
                max_storage_binding_mib: limits.max_storage_buffer_binding_size >> 20,
                workgroup_storage_kib: limits.max_compute_workgroup_storage_size >> 10,
                invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            }
        })
        .collect()
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

impl WgpuBackend {
    /// The highest-performance adapter found (discrete first).
    pub fn new() -> Result<Self> {
        Self::with_adapter(None)
    }

    /// The best adapter whose name contains `filter` (case-insensitive), or the best of all.
    pub fn with_adapter(filter: Option<&str>) -> Result<Self> {
        let unavailable = |reason: String| Error::BackendUnavailable { backend: "wgpu".into(), reason };
        let mut adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY));
        let found: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        if let Some(filter) = filter {
            let want = filter.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&want));
        }
        adapters.sort_by_key(|a| preference(a.get_info().device_type));
        let adapter = adapters.into_iter().next().ok_or_else(|| {
            unavailable(match (filter, found.is_empty()) {
                (_, true) => "no Vulkan, Metal or DX12 adapter found (for a software one on Debian: \
                              apt-get install mesa-vulkan-drivers libvulkan1)"
                    .into(),
                (Some(f), false) => format!("no adapter matches `{f}`; found: {}", found.join(", ")),
                (None, false) => "no usable adapter".into(),
            })
        })?;
        let limits = adapter.limits();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("kernelab"),
            required_features: if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() },
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| unavailable(format!("the adapter refused a device: {e}")))?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        Ok(Self {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            tables: RwLock::new(table::builtin()),
            pipelines: Mutex::new(pipeline::Cache::default()),
            pending: Mutex::new((None, 0)),
            pool: Arc::new(Pool::default()),
            timestamps,
            timer: Mutex::new(None),
            uncaptured,
        })
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error becomes [`Error::Device`].
    fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let invalid = pollster::block_on(validation.pop());
        let out_of_memory = pollster::block_on(oom.pop());
        match (invalid, out_of_memory) {
            (None, None) => self.take_uncaptured(what).map(|()| out),
            (Some(e), _) | (None, Some(e)) => Err(device_error(format!("{what}: {e}"))),
        }
    }

    /// The error wgpu raised outside any scope since the last call, if any.
    fn take_uncaptured(&self, what: &str) -> Result<()> {
        match self.uncaptured.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some(e) => Err(device_error(format!("{what}: {e}"))),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset or an unplugged GPU would: every later call must
    /// fail with an error, not hang or panic. For tests of that path.
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// Bytes of freed buffers the pool holds for reuse.
    pub fn pooled_bytes(&self) -> usize {
        self.pool.bytes()
    }

    /// Records into the pending encoder (created on first use), then submits when it is full. `f`
    /// gets the timestamp writes for its compute pass while timing is on.
    pub(crate) fn record(
        &self,
        f: impl FnOnce(&mut wgpu::CommandEncoder, Option<wgpu::ComputePassTimestampWrites<'_>>),
    ) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let encoder = pending.0.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kernelab launches") })
        });
        let mut timer = self.timer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writes = timer.as_mut().map(|t| {
            t.passes += 1;
            wgpu::ComputePassTimestampWrites {
                query_set: &t.queries,
                beginning_of_pass_write_index: Some(2 * t.passes - 2),
                end_of_pass_write_index: Some(2 * t.passes - 1),
            }
        });
        f(encoder, writes);
        drop(timer);
        pending.1 += 1;
        let full = pending.1 >= MAX_PENDING;
        drop(pending);
        if full { self.flush() } else { Ok(()) }
    }

    /// Submits every recorded launch; their validation errors surface here. While timing is on,
    /// also resolves the passes' timestamps and adds their ticks to the timer.
    fn flush(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (encoder, count) = (pending.0.take(), std::mem::take(&mut pending.1));
        drop(pending);
        let Some(mut encoder) = encoder else { return Ok(()) };
        let mut timer = self.timer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let timed = timer.as_mut().filter(|t| t.passes > 0).map(|t| {
            let bytes = 16 * u64::from(t.passes);
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.resolve_query_set(&t.queries, 0..2 * t.passes, &t.resolved, 0);
            encoder.copy_buffer_to_buffer(&t.resolved, 0, &staging, 0, bytes);
            t.passes = 0;
            staging
        });
        self.checked("submit", || {
            self.queue.submit([encoder.finish()]);
        })
        .map_err(|e| device_error(format!("{count} recorded launches: {e}")))?;
        if let (Some(staging), Some(t)) = (timed, timer.as_mut()) {
            let ticks = self.read_back(&staging)?;
            let pairs: &[u64] = bytemuck::cast_slice(&ticks);
            t.ticks += pairs.chunks_exact(2).map(|p| p[1].saturating_sub(p[0])).sum::<u64>();
        }
        Ok(())
    }

    /// Maps a MAP_READ buffer (after the work that fills it), copying its bytes out.
    fn read_back(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        let (sender, receiver) = std::sync::mpsc::channel();
        self.checked("reading back", || {
            staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
                // The receiver waits below; if it is gone there is nobody left to tell.
                let _ = sender.send(result);
            })
        })?;
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| device_error(format!("waiting: {e}")))?;
        receiver
            .recv()
            .map_err(|_| device_error("the device was lost while reading back"))?
            .map_err(|e| device_error(format!("reading back: {e}")))?;
        let bytes =
            staging.slice(..).get_mapped_range().map_err(|e| device_error(format!("reading back: {e}")))?.to_vec();
        staging.unmap();
        Ok(bytes)
    }

    fn wait(&self) -> Result<()> {
        self.flush()?;
        self.take_uncaptured("waiting")?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| device_error(format!("waiting: {e}")))
    }
}

/// The wgpu buffer of a [`WgpuBuffer`]; a buffer of another backend is an error.
fn own(b: &dyn DeviceBuffer) -> Result<&wgpu::Buffer> {
    b.as_any()
        .downcast_ref::<WgpuBuffer>()
        .map(|w| &w.buffer)
        .ok_or_else(|| device_error(format!("a buffer of another backend was passed to wgpu: {b:?}")))
}

impl Backend for WgpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn info(&self) -> DeviceInfo {
        let l = &self.limits;
        DeviceInfo {
            name: self.info.name.clone(),
            driver: format!("{} {} ({:?})", self.info.driver, self.info.driver_info, self.info.backend),
            details: vec![
                ("type".into(), format!("{:?}", self.info.device_type)),
                ("max storage binding".into(), format!("{} MiB", l.max_storage_buffer_binding_size >> 20)),
                ("workgroup storage".into(), format!("{} KiB", l.max_compute_workgroup_storage_size >> 10)),
                ("invocations".into(), format!("{} per workgroup", l.max_compute_invocations_per_workgroup)),
            ],
            software: (self.info.device_type == wgpu::DeviceType::Cpu)
                .then(|| "a CPU adapter (software Vulkan such as lavapipe; timings mean nothing)".to_string()),
        }
    }

    fn variants(&self, op: Op) -> Vec<Variant> {
        self.tables.read().unwrap_or_else(|poisoned| poisoned.into_inner())[op.index()]
            .iter()
            .map(|e| e.variant.clone())
            .collect()
    }

    fn load_kernel(&self, file: &KernelFile) -> Result<Variant> {
        self.load(file)
    }

    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        let bytes = (len.max(1) as u64).saturating_mul(4).div_ceil(16).saturating_mul(16);
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(device_error(format!(
                "a buffer of {} MiB exceeds this adapter's largest storage binding ({} MiB); use a smaller shape",
                bytes >> 20,
                limit >> 20
            )));
        }
        if let Some(buffer) = self.pool.take(len) {
            return Ok(Box::new(WgpuBuffer { buffer, len, pool: self.pool.clone() }));
        }
        let buffer = self
            .checked("alloc", || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .map_err(|_| Error::OutOfMemory {
                device: format!("wgpu ({})", self.info.name),
                bytes: bytes as usize,
                len,
            })?;
        Ok(Box::new(WgpuBuffer { buffer, len, pool: self.pool.clone() }))
    }

    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        if !src.is_empty() {
            self.flush()?;
            let dst = own(dst)?;
            self.checked("upload", || self.queue.write_buffer(dst, 0, bytemuck::cast_slice(src)))?;
        }
        Ok(())
    }

    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        let bytes = (dst.len() * 4) as u64;
        let src = own(src)?;
        self.flush()?;
        let staging = self.checked("download", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("download") });
            encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
            self.queue.submit([encoder.finish()]);
            staging
        })?;
        let bytes = self.read_back(&staging)?;
        dst.copy_from_slice(bytemuck::cast_slice(&bytes));
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        self.wait()
    }

    fn set_device_timing(&self, on: bool) -> bool {
        if !self.timestamps || self.flush().is_err() {
            return false;
        }
        let timer = on.then(|| Timer {
            queries: self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * MAX_PENDING as u32,
            }),
            resolved: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: 16 * MAX_PENDING as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            passes: 0,
            ticks: 0,
        });
        *self.timer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = timer;
        true
    }

    fn take_device_seconds(&self) -> Result<Option<f64>> {
        self.wait()?;
        let mut timer = self.timer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(timer
            .as_mut()
            .map(|t| std::mem::take(&mut t.ticks) as f64 * f64::from(self.queue.get_timestamp_period()) * 1e-9))
    }

    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        let op = kernel.op();
        let (name, code) = {
            let tables = self.tables.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let found = resolve(BackendKind::Wgpu, op, &tables[op.index()], variant)?;
            (found.variant.name, found.code)
        };
        self.run(&kernel, name, code)
    }
}
