//! [`CudaBackend`]: one CUDA device, its primary context and one stream, and its `Backend`
//! implementation. The rest of the backend lives beside it: device buffers from a pool
//! (`buffer.rs`), PTX modules loaded on first use and launched with CUDA events around each launch
//! while timing is on (`launch.rs`), narrow launches through the f32 kernels (`widened.rs`), the
//! roofline probe (`roofline.rs`) and the driver's errors (`driver.rs`).
//!
//! The stream is a blocking one, so the synchronous copies of `upload` and `download` (which run on
//! the legacy default stream) wait for every launch before them, and launches after them wait for
//! the copies: host and device never race on a buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cust::context::{Context, CurrentContext};
use cust::device::{Device as CuDevice, DeviceAttribute};
use cust::error::CudaError;
use cust::event::Event;
use cust::memory::CopyDestination;
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};

use kernelab_tensor::{
    Backend, BackendKind, DeviceBuffer, DeviceInfo, Dtype, Error, Kernel, Op, Pool, Result, Roofline, Variant,
    resolve_for,
};

use crate::CUBLAS;
use crate::buffer::{Allocation, Words, narrow_bits, own, own_mut, widen_bits};
use crate::cublas::Cublas;
use crate::driver::{code, device_error, driver};
use crate::launch::Function;
use crate::plan;
use crate::ptx::ModuleId;
use crate::variants::{self, CudaKernel, Entry, GemmEx};

/// One CUDA device.
pub struct CudaBackend {
    pub(crate) name: String,
    pub(crate) capability: (i32, i32),
    pub(crate) multiprocessors: i32,
    /// Bytes of L2 cache.
    pub(crate) l2_bytes: usize,
    pub(crate) memory: usize,
    pub(crate) driver_version: String,
    /// Loaded modules by their text ([`PtxModule::id`]), and their functions by text and entry
    /// point: two modules with an entry point of the same name are two functions.
    pub(crate) modules: Mutex<HashMap<ModuleId, Module>>,
    pub(crate) functions: Mutex<HashMap<(ModuleId, &'static str), Function>>,
    /// Each op's variant table ([`variants::table`]), in [`Op::ALL`]'s order.
    pub(crate) tables: Vec<Vec<Entry>>,
    /// Kernels loaded from PTX files ([`crate::loaded`]), of every op, in load order.
    pub(crate) loaded: Mutex<Vec<Entry>>,
    pub(crate) pool: Arc<Pool<Allocation>>,
    /// Freed 16-bit allocations (bf16 and f16 alike), by length.
    pub(crate) half_pool: Arc<Pool<Allocation>>,
    /// Start and end events of every launch since the last `take_device_seconds`, while timing.
    pub(crate) timing: Mutex<Option<Vec<(Event, Event)>>>,
    pub(crate) cublas: Result<Cublas, String>,
    pub(crate) roofline: OnceLock<Option<Roofline>>,
    pub(crate) stream: Stream,
    pub(crate) context: Arc<Context>,
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
            half_pool: Arc::new(Pool::default()),
            timing: Mutex::new(None),
            cublas,
            roofline: OnceLock::new(),
            stream,
            context: Arc::new(context),
        })
    }

    /// Makes this device's context current on the calling thread (every entry point does).
    pub(crate) fn bind(&self) -> Result<()> {
        CurrentContext::set_current(&*self.context).map_err(driver("making the context current"))
    }

    /// `C ← α·op(A)·op(B) + β·C` through cuBLAS: SGEMM, or `cublasGemmEx` at precision `ex`.
    fn cublas_gemm(
        &self,
        a: &dyn DeviceBuffer,
        b: &dyn DeviceBuffer,
        c: &dyn DeviceBuffer,
        g: &kernelab_tensor::Gemm,
        ex: Option<GemmEx>,
    ) -> Result<()> {
        let cublas = self.cublas.as_ref().map_err(|reason| Error::VariantUnavailable {
            backend: "cuda".into(),
            op: "matmul",
            name: "cublas".into(),
            reason: reason.clone(),
        })?;
        let events = self.start_event()?;
        let (a, b, c) = (own(a)?.device_address(), own(b)?.device_address(), own(c)?.device_address());
        match ex {
            None => cublas.sgemm(g, a, b, c)?,
            Some(p) => cublas.gemm_ex(p, g, a, b, c)?,
        }
        self.end_event(events)
    }
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
            software: crate::emulated::is_emulated().then(|| crate::emulated::EMULATED.to_string()),
        }
    }

    fn variants(&self, op: Op) -> Vec<Variant> {
        let loaded = self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let of_op = loaded.iter().filter(|e| matches!(e.kernel, CudaKernel::Ptx(k) if k.op == op));
        self.tables[op.index()].iter().chain(of_op).map(|e| e.variant.clone()).collect()
    }

    /// `cublas` (SGEMM) and the GemmEx rows (bf16, f16 and TF32 on f32 data).
    fn baselines(&self) -> Vec<kernelab_tensor::Baseline> {
        let Ok(c) = &self.cublas else { return Vec::new() };
        let row = |variant: &str, kernel: &str, config: String| kernelab_tensor::Baseline {
            variant: variant.into(),
            library: c.describe(),
            kernel: kernel.into(),
            config,
            threads: None,
            degraded: false,
            note: c.gemm_ex_unavailable().filter(|_| variant != CUBLAS),
        };
        let mut rows = vec![row(
            CUBLAS,
            "cublasSgemm (its own heuristic)",
            "FP32 math mode, TF32 off, on kernelab's stream".into(),
        )];
        for ex in variants::CUBLAS_EX.iter().filter(|r| r.unavailable.is_none()) {
            let (name, p) = ex.kernel;
            let compute = if p == GemmEx::Tf32 { "CUBLAS_COMPUTE_32F_FAST_TF32" } else { "CUBLAS_COMPUTE_32F" };
            let config =
                format!("{} storage, {compute}, CUBLAS_GEMM_DEFAULT, on kernelab's stream", p.storage().buffer());
            rows.push(row(name, "cublasGemmEx (its own heuristic)", config));
        }
        rows
    }

    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        self.allocate(len, Dtype::F32)
    }

    /// bf16 and f16 buffers hold 2 bytes a value; uploads round on the host, downloads widen.
    fn alloc_as(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        self.allocate(len, dtype)
    }

    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        let dst = own_mut(dst)?;
        let dtype = dst.dtype();
        let Some(allocation) = dst.allocation.as_mut() else { return Ok(()) };
        self.bind()?;
        match &mut allocation.words {
            Words::F32(b) => b.copy_from(src),
            Words::Half(b) => b.copy_from(narrow_bits(dtype, src).as_slice()),
        }
        .map_err(driver("upload"))
    }

    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        let src = own(src)?;
        let Some(allocation) = src.allocation.as_ref() else { return Ok(()) };
        self.bind()?;
        // A kernel fault surfaces here, as the error of the copy that waits for it.
        let waited = driver("download (or a kernel launched before it)");
        match &allocation.words {
            Words::F32(b) => b.copy_to(dst).map_err(waited),
            Words::Half(b) => {
                let mut bits = vec![0u16; dst.len()];
                b.copy_to(bits.as_mut_slice()).map_err(waited)?;
                widen_bits(src.dtype(), &bits, dst);
                Ok(())
            }
        }
    }

    fn synchronize(&self) -> Result<()> {
        self.bind()?;
        self.stream.synchronize().map_err(driver("synchronize (or a kernel launched before it)"))
    }

    /// The measured roofline; none on the emulated device, whose timings mean nothing.
    fn roofline(&self) -> Option<Roofline> {
        if crate::emulated::is_emulated() {
            return None;
        }
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
            None => {
                let storage = Some(kernel.storage());
                resolve_for(BackendKind::Cuda, op, &self.tables[op.index()], variant, storage)?.kernel
            }
        };
        self.bind()?;
        match (found, &kernel) {
            (CudaKernel::Cublas, Kernel::Matmul { a, b, c, gemm }) => self.cublas_gemm(*a, *b, &**c, gemm, None),
            (CudaKernel::CublasEx(p), Kernel::Matmul { a, b, c, gemm }) => {
                self.cublas_gemm(*a, *b, &**c, gemm, Some(p))
            }
            (CudaKernel::Cublas | CudaKernel::CublasEx(_), _) => {
                Err(device_error(format!("cuBLAS has no {op} kernel")))
            }
            (CudaKernel::Widened(f32), _) => self.launch_widened(kernel, &f32),
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
