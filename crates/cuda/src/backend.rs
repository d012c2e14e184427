//! [`CudaBackend`]: one CUDA device, its primary context and one stream; PTX modules loaded on
//! first use; device buffers from a pool; CUDA events around each launch while timing is on.
//!
//! The stream is a blocking one, so the synchronous copies of `upload` and `download` (which run on
//! the legacy default stream) wait for every launch before them, and launches after them wait for
//! the copies: host and device never race on a buffer.

use std::any::Any;
use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use cust::context::{Context, CurrentContext};
use cust::device::{Device as CuDevice, DeviceAttribute};
use cust::error::CudaError;
use cust::event::{Event, EventFlags};
use cust::memory::{CopyDestination, DeviceBuffer as CuBuffer};
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};
use cust::sys;

use kernelab_tensor::{
    Backend, BackendKind, DeviceBuffer, DeviceInfo, Error, Kernel, MemoryLevel, Op, Pool, Result, Roofline, Variant,
    resolve,
};

use crate::CUBLAS;
use crate::cublas::Cublas;
use crate::plan::{self, Arg, Launch};
use crate::ptx::{self, ModuleId, PtxModule};
use crate::variants::{self, CudaKernel, Entry};

fn device_error(message: impl std::fmt::Display) -> Error {
    Error::Device { backend: "cuda".into(), message: message.to_string() }
}

/// A raw driver call's result as ours: `Err` names the call and the driver's code.
fn checked(result: sys::CUresult, what: &str) -> Result<()> {
    if result == sys::cudaError_enum::CUDA_SUCCESS { Ok(()) } else { Err(device_error(format!("{what}: {result:?}"))) }
}

/// `CUDA_ERROR_NOT_SUPPORTED (801)`: the driver's name for an error. (cust's `Display` asks the
/// driver for a description, which a stand-in driver cannot give.)
fn code(e: CudaError) -> String {
    let mut name = String::from("CUDA_ERROR");
    for c in format!("{e:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    format!("{name} ({})", e as u32)
}

fn driver(what: &str) -> impl FnOnce(CudaError) -> Error + '_ {
    move |e| device_error(format!("{what}: {}", code(e)))
}

/// The most parameters any entry point of `kernels/` takes (matmul's twelve).
const MAX_ARGS: usize = 12;

/// One device allocation; freed with its context made current, whichever thread drops it.
#[derive(Debug)]
struct Allocation {
    buffer: CuBuffer<f32>,
    context: Arc<Context>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // The buffer frees itself after this; the free needs the context current on this thread.
        let _ = CurrentContext::set_current(&*self.context);
    }
}

/// A device buffer of `len` f32 values, returned to its device's pool when dropped. Reuse is
/// safe in stream order: work launched before the drop runs before work launched after reuse.
#[derive(Debug)]
pub struct CudaBuffer {
    allocation: Option<Allocation>,
    len: usize,
    pool: Arc<Pool<Allocation>>,
}

impl CudaBuffer {
    /// The device address of the first value (0 for an empty buffer).
    pub fn device_address(&self) -> u64 {
        self.allocation.as_ref().map_or(0, |a| a.buffer.as_device_ptr().as_raw())
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        if let Some(allocation) = self.allocation.take() {
            self.pool.give(self.len, allocation);
        }
    }
}

impl DeviceBuffer for CudaBuffer {
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

/// A loaded kernel. The handle stays valid while its module (kept by the backend) is loaded.
#[derive(Clone, Copy)]
struct Function(sys::CUfunction);

// SAFETY: a CUfunction is a driver handle usable from any thread once its context is current.
unsafe impl Send for Function {}

/// One CUDA device.
pub struct CudaBackend {
    name: String,
    capability: (i32, i32),
    multiprocessors: i32,
    /// Bytes of L2 cache.
    l2_bytes: usize,
    memory: usize,
    driver_version: String,
    /// Loaded modules by their text ([`PtxModule::id`]), and their functions by text and entry
    /// point: two modules with an entry point of the same name are two functions.
    modules: Mutex<HashMap<ModuleId, Module>>,
    functions: Mutex<HashMap<(ModuleId, &'static str), Function>>,
    /// Each op's variant table ([`variants::table`]), in [`Op::ALL`]'s order.
    tables: Vec<Vec<Entry>>,
    /// Kernels loaded from PTX files ([`crate::loaded`]), of every op, in load order.
    loaded: Mutex<Vec<Entry>>,
    pool: Arc<Pool<Allocation>>,
    /// Start and end events of every launch since the last `take_device_seconds`, while timing.
    timing: Mutex<Option<Vec<(Event, Event)>>>,
    cublas: Result<Cublas, String>,
    roofline: OnceLock<Option<Roofline>>,
    stream: Stream,
    context: Arc<Context>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaBackend({})", self.name)
    }
}

impl CudaBackend {
    /// The first CUDA device, or why there is none.
    pub fn new() -> Result<Self> {
        Self::with_ordinal(0)
    }

    /// The CUDA device with this ordinal.
    pub fn with_ordinal(ordinal: u32) -> Result<Self> {
        let unavailable = |what: &str, e: CudaError| Error::BackendUnavailable {
            backend: "cuda".into(),
            reason: format!("{what}: {}; no usable NVIDIA driver or GPU on this machine", code(e)),
        };
        cust::init(cust::CudaFlags::empty()).map_err(|e| unavailable("cuInit", e))?;
        let count = CuDevice::num_devices().map_err(|e| unavailable("counting devices", e))?;
        if ordinal >= count {
            return Err(Error::BackendUnavailable {
                backend: "cuda".into(),
                reason: format!("no CUDA device {ordinal}; the driver reports {count}"),
            });
        }
        let device = CuDevice::get_device(ordinal).map_err(|e| unavailable("opening the device", e))?;
        let context = Context::new(device).map_err(|e| unavailable("creating a context", e))?;
        CurrentContext::set_current(&context).map_err(driver("making the context current"))?;
        let attribute = |a| device.get_attribute(a).unwrap_or(0);
        let stream = Stream::new(StreamFlags::DEFAULT, None).map_err(driver("creating a stream"))?;
        let cublas = Cublas::load(stream.as_inner().cast());
        Ok(Self {
            name: device.name().unwrap_or_else(|_| "CUDA device".into()),
            capability: (
                attribute(DeviceAttribute::ComputeCapabilityMajor),
                attribute(DeviceAttribute::ComputeCapabilityMinor),
            ),
            multiprocessors: attribute(DeviceAttribute::MultiprocessorCount),
            l2_bytes: attribute(DeviceAttribute::L2CacheSize).max(0) as usize,
            memory: device.total_memory().unwrap_or(0),
            driver_version: cust::CudaApiVersion::get()
                .map(|v| format!("CUDA driver API {}.{}", v.major(), v.minor()))
                .unwrap_or_default(),
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            tables: Op::ALL
                .iter()
                .map(|&op| variants::table(op, cublas.as_ref().map(|_| ()).map_err(String::as_str)))
                .collect(),
            loaded: Mutex::new(Vec::new()),
            pool: Arc::new(Pool::default()),
            timing: Mutex::new(None),
            cublas,
            roofline: OnceLock::new(),
            stream,
            context: Arc::new(context),
        })
    }

    /// Makes this device's context current on the calling thread (every entry point does).
    fn bind(&self) -> Result<()> {
        CurrentContext::set_current(&*self.context).map_err(driver("making the context current"))
    }

    /// Loads PTX text as a module; a failure carries the driver's JIT error log and the file name.
    pub fn load_ptx(&self, file: &str, source: &str) -> Result<Module> {
        self.bind()?;
        // The built-in modules are named by their file under kernels/; a loaded file by its path.
        let file = if file.contains('/') { file.to_string() } else { format!("kernels/{file}") };
        let text = CString::new(source).map_err(|_| device_error(format!("{file} contains a NUL byte")))?;
        Module::from_ptx_cstr(&text, &[]).map_err(|e| {
            device_error(format!("{file} failed to load: {}; the JIT log says: {}", code(e), jit_error_log(&text)))
        })
    }

    /// The loaded function `entry` of `module`, loading the module on first use.
    fn function(&self, module: PtxModule, entry: &'static str) -> Result<Function> {
        let mut functions = self.functions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&f) = functions.get(&(module.id(), entry)) {
            return Ok(f);
        }
        let mut modules = self.modules.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let loaded = match modules.entry(module.id()) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(self.load_ptx(module.file, module.source)?),
        };
        let f = loaded
            .get_function(entry)
            .map_err(driver(&format!("kernels/{} has no entry point `{entry}`", module.file)))?
            .to_raw();
        functions.insert((module.id(), entry), Function(f));
        Ok(Function(f))
    }

    /// Launches a planned kernel on the stream, bracketed by events while timing is on.
    fn run(&self, launch: Launch<'_>) -> Result<()> {
        let function = self.function(launch.module, launch.entry)?;
        let mut slots = [0u64; MAX_ARGS];
        if launch.args.len() > MAX_ARGS {
            return Err(device_error(format!("{} takes more than {MAX_ARGS} arguments", launch.entry)));
        }
        for (slot, arg) in slots.iter_mut().zip(&launch.args) {
            *slot = match arg {
                Arg::Buffer(b) => own(*b)?.device_address(),
                Arg::U32(v) => u64::from(*v),
                Arg::F32(v) => u64::from(v.to_bits()),
            };
        }
        let events = self.start_event()?;
        let what = || format!("launching {} from kernels/{}", launch.entry, launch.module.file);
        // SAFETY: the plan's arguments match the entry point's parameters (checked by the tests
        // against the PTX), and the buffers' lengths were checked by `Kernel::check`.
        unsafe { self.launch_raw(function, launch.grid, launch.block, &mut slots[..launch.args.len()], what)? };
        self.end_event(events)
    }

    /// `cuLaunchKernel` on the stream with these argument values, each in an 8-byte slot (the driver
    /// reads as many bytes as the parameter has).
    ///
    /// # Safety
    /// `slots` must match the entry point's parameters in number and type, and every address in
    /// them must be a live buffer large enough for what the kernel reads and writes.
    unsafe fn launch_raw(
        &self,
        function: Function,
        grid: (u32, u32),
        block: (u32, u32),
        slots: &mut [u64],
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        let mut pointers = [std::ptr::null_mut::<c_void>(); MAX_ARGS];
        for (pointer, slot) in pointers.iter_mut().zip(slots.iter_mut()) {
            *pointer = (slot as *mut u64).cast();
        }
        // SAFETY: the caller vouches for the arguments; the slots outlive the call, which copies them.
        let result = unsafe {
            sys::cuLaunchKernel(
                function.0,
                grid.0,
                grid.1,
                1,
                block.0,
                block.1,
                1,
                0,
                self.stream.as_inner(),
                pointers.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        if result == sys::cudaError_enum::CUDA_SUCCESS { Ok(()) } else { checked(result, &what()) }
    }

    fn start_event(&self) -> Result<Option<Event>> {
        let timing = self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if timing.is_none() {
            return Ok(None);
        }
        let start = Event::new(EventFlags::DEFAULT).map_err(driver("creating an event"))?;
        start.record(&self.stream).map_err(driver("recording an event"))?;
        Ok(Some(start))
    }

    fn end_event(&self, start: Option<Event>) -> Result<()> {
        let Some(start) = start else { return Ok(()) };
        let end = Event::new(EventFlags::DEFAULT).map_err(driver("creating an event"))?;
        end.record(&self.stream).map_err(driver("recording an event"))?;
        if let Some(pairs) = self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut() {
            pairs.push((start, end));
        }
        Ok(())
    }

    /// The roofline: the FMA peak (`kernels/probe.ptx`) and the copy bandwidth (bytes read +
    /// written) of two levels — L2 (a device-to-device copy whose source and destination together
    /// take half the L2, repeated 50 times per timing) and HBM (a 256 MiB copy) — each the best
    /// of a few runs timed with events.
    fn measure_roofline(&self) -> Result<Roofline> {
        self.bind()?;
        let len = 64 << 20;
        let (src, dst) = (self.alloc(len)?, self.alloc(len)?);
        let (src, dst) = (own(&*src)?.device_address(), own(&*dst)?.device_address());
        let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let (start, end) = (Event::new(EventFlags::DEFAULT), Event::new(EventFlags::DEFAULT));
                let (start, end) = (start.map_err(driver("event"))?, end.map_err(driver("event"))?);
                start.record(&self.stream).map_err(driver("event"))?;
                f()?;
                end.record(&self.stream).map_err(driver("event"))?;
                end.synchronize().map_err(driver("waiting for an event"))?;
                best = best.min(f64::from(end.elapsed_time_f32(&start).map_err(driver("event"))?) * 1e-3);
            }
            Ok(best)
        };
        let copy = |bytes: usize, times: usize| {
            time(&|| {
                for _ in 0..times {
                    // SAFETY: both buffers hold at least `bytes` and belong to this context.
                    checked(
                        unsafe { sys::cuMemcpyDtoDAsync_v2(dst, src, bytes, self.stream.as_inner()) },
                        "device copy",
                    )?;
                }
                Ok(())
            })
            .map(|secs| 2.0 * (bytes * times) as f64 / secs / 1e9)
        };
        let hbm_gbps = copy(len * 4, 1)?;
        let l2 = self.l2_bytes.max(1 << 20);
        let l2_gbps = copy(l2 / 4, 50)?;
        let threads = (self.multiprocessors.max(1) as usize) * 2048 * 4;
        let out = self.alloc(threads)?;
        let iterations = 4096u32;
        let fma = self.function(ptx::PROBE, "fma_peak")?;
        let address = own(&*out)?.device_address();
        let peak = time(&|| {
            let mut slots =
                [address, u64::from(iterations), u64::from(0.999_f32.to_bits()), u64::from(1e-3_f32.to_bits())];
            // SAFETY: the slots match fma_peak's parameters; `out` holds one value per thread.
            unsafe {
                self.launch_raw(fma, ((threads / 256) as u32, 1), (256, 1), &mut slots, || "launching fma_peak".into())
            }
        })?;
        let flops = 2.0 * 32.0 * f64::from(iterations) * threads as f64;
        let level = |name: &str, capacity: Option<u64>, gbps: f64| MemoryLevel {
            name: name.into(),
            capacity_one_thread: capacity,
            capacity_all: capacity,
            gbps_one_thread: gbps,
            gbps_all: gbps,
        };
        let gflops = flops / peak / 1e9;
        Ok(Roofline {
            threads: 1,
            peak_gflops: gflops,
            peak_gflops_one_thread: gflops,
            levels: vec![level("L2", Some(l2 as u64), l2_gbps), level("HBM", None, hbm_gbps)],
            how: format!(
                "FMA peak: kernels/probe.ptx fma_peak, 8 chains per thread; bandwidth: device-to-device copies \
                 (read + write) of {} KiB ×50 (L2) and 256 MiB (HBM); best of 5, CUDA events; measured per process",
                (l2 / 4) >> 10
            ),
            peaks: Default::default(),
        })
    }

    /// `C ← α·op(A)·op(B) + β·C` through cuBLAS.
    fn cublas_gemm(
        &self,
        a: &dyn DeviceBuffer,
        b: &dyn DeviceBuffer,
        c: &dyn DeviceBuffer,
        g: &kernelab_tensor::Gemm,
    ) -> Result<()> {
        let cublas = self.cublas.as_ref().map_err(|reason| Error::VariantUnavailable {
            backend: "cuda".into(),
            op: "matmul",
            name: "cublas".into(),
            reason: reason.clone(),
        })?;
        let events = self.start_event()?;
        cublas.sgemm(g, own(a)?.device_address(), own(b)?.device_address(), own(c)?.device_address())?;
        self.end_event(events)
    }
}

/// The driver's error log for PTX that failed to load, from a second load with a log buffer.
fn jit_error_log(text: &CString) -> String {
    let mut log = vec![0u8; 1 << 16];
    let mut options =
        [sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER, sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES];
    // cuModuleLoadDataEx takes option values that fit a pointer by value, not by reference.
    let mut values = [log.as_mut_ptr().cast::<c_void>(), log.len() as *mut c_void];
    let mut module: sys::CUmodule = std::ptr::null_mut();
    // SAFETY: the option arrays have two entries each and the log buffer outlives the call.
    let result = unsafe {
        sys::cuModuleLoadDataEx(&mut module, text.as_ptr().cast(), 2, options.as_mut_ptr(), values.as_mut_ptr())
    };
    if result == sys::cudaError_enum::CUDA_SUCCESS {
        // SAFETY: the module was just loaded and nothing else refers to it.
        unsafe { sys::cuModuleUnload(module) };
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    match String::from_utf8_lossy(&log[..end]).trim() {
        "" => "(empty)".into(),
        text => text.to_string(),
    }
}

fn own(b: &dyn DeviceBuffer) -> Result<&CudaBuffer> {
    b.as_any()
        .downcast_ref::<CudaBuffer>()
        .ok_or_else(|| device_error(format!("a buffer of another backend was passed to cuda: {b:?}")))
}

fn own_mut(b: &mut dyn DeviceBuffer) -> Result<&mut CudaBuffer> {
    let description = format!("{b:?}");
    b.as_any_mut()
        .downcast_mut::<CudaBuffer>()
        .ok_or_else(|| device_error(format!("a buffer of another backend was passed to cuda: {description}")))
}

impl Backend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            name: self.name.clone(),
            driver: self.driver_version.clone(),
            details: vec![
                ("compute capability".into(), format!("{}.{}", self.capability.0, self.capability.1)),
                ("multiprocessors".into(), self.multiprocessors.to_string()),
                ("memory".into(), format!("{} MiB", self.memory >> 20)),
                (
                    "cuBLAS".into(),
                    match &self.cublas {
                        Ok(c) => c.describe(),
                        Err(reason) => format!("not loaded: {reason}"),
                    },
                ),
            ],
        }
    }

    fn variants(&self, op: Op) -> Vec<Variant> {
        let loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let of_op = loaded.iter().filter(|e| matches!(e.kernel, CudaKernel::Ptx(k) if k.op == op));
        self.tables[op.index()].iter().chain(of_op).map(|e| e.variant.clone()).collect()
    }

    fn baselines(&self) -> Vec<kernelab_tensor::Baseline> {
        match &self.cublas {
            Ok(c) => vec![kernelab_tensor::Baseline {
                variant: CUBLAS.into(),
                library: c.describe(),
                kernel: "cublasSgemm (its own heuristic)".into(),
                config: "FP32 math mode, TF32 off, on kernelab's stream".into(),
                threads: None,
                degraded: false,
                note: None,
            }],
            Err(_) => Vec::new(),
        }
    }

    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        let pool = self.pool.clone();
        if len == 0 {
            return Ok(Box::new(CudaBuffer { allocation: None, len, pool }));
        }
        if let Some(allocation) = self.pool.take(len) {
            return Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, pool }));
        }
        self.bind()?;
        // SAFETY: f32 has no invalid bit patterns; the contents are unspecified, as `alloc` promises.
        let buffer = unsafe { CuBuffer::<f32>::uninitialized(len) }.map_err(|e| match e {
            CudaError::OutOfMemory => {
                Error::OutOfMemory { device: format!("cuda ({})", self.name), bytes: len * 4, len }
            }
            e => device_error(format!("allocating {len} values: {}", code(e))),
        })?;
        let allocation = Allocation { buffer, context: Arc::clone(&self.context) };
        Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, pool }))
    }

    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        let dst = own_mut(dst)?;
        let Some(allocation) = dst.allocation.as_mut() else { return Ok(()) };
        self.bind()?;
        allocation.buffer.copy_from(src).map_err(driver("upload"))
    }

    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        let Some(allocation) = own(src)?.allocation.as_ref() else { return Ok(()) };
        self.bind()?;
        // A kernel fault surfaces here, as the error of the copy that waits for it.
        allocation.buffer.copy_to(dst).map_err(driver("download (or a kernel launched before it)"))
    }

    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.stream.synchronize().map_err(driver("synchronize (or a kernel launched before it)"))
    }

    fn roofline(&self) -> Option<Roofline> {
        self.roofline.get_or_init(|| self.measure_roofline().ok()).clone()
    }

    fn set_device_timing(&self, on: bool) -> bool {
        *self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = on.then(Vec::new);
        true
    }

    fn take_device_seconds(&self) -> Result<Option<f64>> {
        self.synchronize()?;
        let mut timing = self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(pairs) = timing.as_mut() else { return Ok(None) };
        let mut seconds = 0.0;
        for (start, end) in pairs.drain(..) {
            seconds += f64::from(end.elapsed_time_f32(&start).map_err(driver("reading an event"))?) * 1e-3;
        }
        Ok(Some(seconds))
    }

    fn load_kernel(&self, file: &kernelab_tensor::KernelFile) -> Result<Variant> {
        let checked = crate::loaded::check(file)?;
        // JIT-compile it now, so a file the driver refuses is an error of its own, with the log.
        self.function(checked.module, checked.entry).map_err(|e| file.error(e.to_string()))?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::loaded::register(&mut loaded, file, checked)
    }

    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        let op = kernel.op();
        let from_file = variant.and_then(|name| {
            let loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            loaded.iter().find(|e| e.variant.name == name).map(|e| e.kernel)
        });
        let found = match from_file {
            Some(found) => found,
            None => resolve(BackendKind::Cuda, op, &self.tables[op.index()], variant)?.kernel,
        };
        self.bind()?;
        match (found, &kernel) {
            (CudaKernel::Cublas, Kernel::Matmul { a, b, c, gemm }) => self.cublas_gemm(*a, *b, &**c, gemm),
            (CudaKernel::Cublas, _) => Err(device_error(format!("cuBLAS has no {op} kernel"))),
            (CudaKernel::Ptx(ptx), _) => match plan::plan(&kernel, &ptx)? {
                Some(launch) => self.run(launch),
                None => Ok(()),
            },
        }
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        // The modules, events and stream release themselves next; that needs the context current.
        let _ = CurrentContext::set_current(&*self.context);
    }
}
