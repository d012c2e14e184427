//! The CPU backend of kernelab. Always available, and the home of the f64 reference's checks.
//!
//! Kernels live one family per module: [`matmul`] (the `naive` and `blocked` rungs) and [`gemm`]
//! (packed GEMM with run-time-chosen `std::arch` microkernels, threaded), [`elementwise`],
//! [`adam`] and [`rowwise`] (one loop body compiled per instruction set by [`simd`]); `openblas` (feature
//! `openblas`) is the vendor baseline and `peers` (feature `rust-baselines`) the Rust ones.
//! [`registry`] holds the variant tables every launch is looked up in; [`roofline`] measures the
//! machine's FMA peak and the bandwidth of every memory level ([`topology`] reads the cache sizes)
//! and keeps them per machine. Buffers are host vectors between guard zones ([`CpuBuffer`])
//! recycled through a per-device [`Pool`](kernelab_tensor::Pool). [`library`] loads kernels from
//! shared libraries at run time.

pub mod adam;
pub mod adam_narrow;
mod buffer;
pub mod convert;
pub mod elementwise;
pub mod gemm;
pub mod library;
pub mod linear;
pub mod matmul;
pub mod narrow;
pub mod narrow_ops;
pub mod narrow_strips;
#[cfg(feature = "openblas")]
pub mod openblas;
mod parallel;
#[cfg(feature = "rust-baselines")]
pub mod peers;
pub mod registry;
pub mod roofline;
pub mod rowwise;
pub mod simd;
pub mod spin_pool;
pub mod topology;

pub use buffer::CpuBuffer;

use buffer::{cpu_mut, host, host_mut};
use kernelab_tensor::{
    Backend, BackendKind, DeviceBuffer, DeviceInfo, Dtype, Error, Kernel, Op, Result, Roofline, Variant,
};

/// The CPU as a device: kernels run on the calling thread or are split over the kernels' threads
/// ([`spin_pool`]; as many as rayon's global pool, which `--threads` sizes); buffers are
/// recycled through the device's own [`Pool`](kernelab_tensor::Pool).
#[derive(Debug, Default)]
pub struct CpuBackend {
    pool: std::sync::Arc<kernelab_tensor::Pool<Vec<f32>>>,
    /// The same for narrow (bf16, f16) buffers' bits.
    narrow_pool: std::sync::Arc<kernelab_tensor::Pool<Vec<u16>>>,
    /// The variant tables, built once (they detect CPU features) and read on every launch.
    registry: std::sync::OnceLock<registry::Registry>,
    /// Kernels loaded from shared libraries ([`Backend::load_kernel`]), listed after the registry's.
    libraries: library::Libraries,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// The variant tables, built on first use.
    fn registry(&self) -> &registry::Registry {
        self.registry.get_or_init(registry::Registry::detect)
    }
}

/// Runs every CPU kernel (and OpenBLAS, when linked) on `threads` threads. Call before any kernel
/// runs: rayon's global pool can be sized only once per process.
pub fn set_threads(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().map_err(|e| Error::InvalidArgument {
        op: "threads",
        why: format!("cannot size the thread pool to {threads}: {e}"),
    })?;
    #[cfg(feature = "openblas")]
    openblas::set_threads(threads);
    Ok(())
}

/// The processor's model name, from `/proc/cpuinfo` where there is one.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The SIMD extensions this processor reports, as a short list.
fn simd_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut found = vec!["sse2"];
        if is_x86_feature_detected!("avx2") {
            found.push("avx2");
        }
        if is_x86_feature_detected!("fma") {
            found.push("fma");
        }
        if is_x86_feature_detected!("avx512f") {
            found.push("avx512f");
        }
        found.join(" ")
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon".to_string()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "none detected".to_string()
    }
}

impl Backend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            name: format!("{} ({} threads)", cpu_model(), rayon::current_num_threads()),
            driver: format!("spin pool, {} {}", std::env::consts::OS, std::env::consts::ARCH),
            details: {
                #[allow(unused_mut)]
                let mut details = vec![("simd".into(), simd_features())];
                #[cfg(feature = "openblas")]
                details.push(("openblas".into(), openblas::describe()));
                details
            },
            software: None,
        }
    }

    fn variants(&self, op: Op) -> Vec<Variant> {
        let mut all = self.registry().variants(op);
        all.extend(self.libraries.variants(op));
        all
    }

    fn load_kernel(&self, file: &kernelab_tensor::KernelFile) -> Result<Variant> {
        self.libraries.load(file)
    }

    fn guard_violation(&self, buffer: &dyn DeviceBuffer) -> Result<Option<String>> {
        Ok(buffer::cpu(buffer)?.guard_violation())
    }

    fn roofline(&self) -> Option<Roofline> {
        Some(roofline::machine())
    }

    fn baselines(&self) -> Vec<kernelab_tensor::Baseline> {
        #[allow(unused_mut)]
        let mut all = Vec::new();
        #[cfg(feature = "openblas")]
        all.push(openblas::baseline());
        #[cfg(feature = "rust-baselines")]
        all.extend(peers::baselines(rayon::current_num_threads()));
        all
    }

    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        Ok(Box::new(CpuBuffer::pooled(len, &self.pool)?))
    }

    fn alloc_as(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        dtype.storable("cpu")?;
        match dtype {
            Dtype::F32 => self.alloc(len),
            _ => Ok(Box::new(CpuBuffer::pooled_as(len, dtype, &self.narrow_pool)?)),
        }
    }

    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        match dst.dtype() {
            Dtype::F32 => host_mut(dst)?.copy_from_slice(src),
            _ => narrow::store(src, cpu_mut(dst)?)?,
        }
        Ok(())
    }

    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        narrow::load(buffer::cpu(src)?, dst)
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn prepare_linear(
        &self,
        weight: &dyn DeviceBuffer,
        bias: &dyn DeviceBuffer,
        outputs: usize,
        relu: bool,
    ) -> Result<Option<Box<dyn kernelab_tensor::PreparedLinear>>> {
        Ok(linear::CpuLinear::new(weight, bias, outputs, relu)?.map(|l| Box::new(l) as Box<_>))
    }

    fn adam_narrow_variant(&self, dtype: Dtype) -> Option<&'static str> {
        adam_narrow::variant(simd::Isa::best(), dtype)
    }

    fn adam_narrow(&self, k: kernelab_tensor::AdamNarrow<'_>) -> Result<()> {
        let kind = narrow_kind(k.dtype())?;
        let (grad, working) = (buffer::cpu(k.grad)?.bits(), cpu_mut(k.working)?.bits_mut());
        let (master, m, v) = (host_mut(k.master)?, host_mut(k.m)?, host_mut(k.v)?);
        adam_narrow::adam_narrow(simd::Isa::best(), kind, master, grad, m, v, working, k.unscale, &k.step);
        Ok(())
    }

    fn all_finite(&self, x: &dyn DeviceBuffer) -> Result<Option<bool>> {
        let x = buffer::cpu(x)?;
        Ok(Some(match x.dtype() {
            Dtype::F32 | Dtype::Tf32 => x.values().iter().all(|v| v.is_finite()),
            narrow => adam_narrow::all_finite(narrow_kind(narrow)?, x.bits()),
        }))
    }

    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        if let Some(loaded) = variant.and_then(|name| self.libraries.find(kernel.op(), name)) {
            return loaded.launch(kernel);
        }
        let (op, registry, storage) = (kernel.op(), self.registry(), kernel.storage());
        let narrow_name = variant.is_some_and(|name| registry.narrow(op).iter().any(|e| e.variant.name == name));
        if storage.is_narrow() || narrow_name || matches!(op, Op::Narrow | Op::Widen) {
            let run = registry::lookup_for(registry.narrow(op), op, variant, storage).map_err(|e| {
                // A name of the f32 tables: say that it stores f32, not that it is unknown.
                let all = self.variants(op);
                match (&e, variant) {
                    (Error::UnknownVariant { .. }, Some(_)) => {
                        kernelab_tensor::resolve_for(BackendKind::Cpu, op, &all, variant, Some(storage))
                            .err()
                            .unwrap_or(e)
                    }
                    _ => e,
                }
            })?;
            return narrow::launch(kernel, run, &self.pool);
        }
        match kernel {
            Kernel::Matmul { a, b, c, gemm } => {
                let matmul = registry::lookup(&registry.matmul, op, variant)?;
                matmul.run(host(a)?, host(b)?, host_mut(c)?, &gemm)
            }
            kernel => {
                let isa = registry::lookup(&registry.simd, op, variant)?;
                elementwise_or_rowwise(kernel, isa)
            }
        }
    }
}

/// The narrow type of a bf16 or f16 buffer's bits.
fn narrow_kind(dtype: Dtype) -> Result<convert::Narrow> {
    match dtype {
        Dtype::Bf16 => Ok(convert::Narrow::Bf16),
        Dtype::F16 => Ok(convert::Narrow::F16),
        Dtype::F32 | Dtype::Tf32 => Err(Error::Device {
            backend: "cpu".into(),
            message: format!("internal: {dtype} buffers in a narrow kernel"),
        }),
    }
}

/// Launches every kernel but matmul with the instruction set `isa`.
pub(crate) fn elementwise_or_rowwise(kernel: Kernel<'_>, isa: simd::Isa) -> Result<()> {
    match kernel {
        Kernel::Matmul { .. } => {
            return Err(Error::InvalidArgument {
                op: "matmul",
                why: "internal: matmul has its own table of variants, not an instruction set".into(),
            });
        }
        Kernel::Narrow { .. } | Kernel::Widen { .. } => {
            return Err(Error::InvalidArgument {
                op: "narrow",
                why: "internal: conversions run in the narrow variants, not an f32 instruction set".into(),
            });
        }
        Kernel::Fill { y, value } => elementwise::fill(isa, host_mut(y)?, value),
        Kernel::BiasAdd { x, bias, y, cols, .. } => {
            elementwise::bias_add(isa, host(x)?, host(bias)?, host_mut(y)?, cols, false)
        }
        Kernel::BiasRelu { x, bias, y, cols, .. } => {
            elementwise::bias_add(isa, host(x)?, host(bias)?, host_mut(y)?, cols, true)
        }
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => {
            rowwise::col_sum(isa, host(x)?, host_mut(y)?, rows, cols, alpha, accumulate)
        }
        Kernel::Relu { x, y } => elementwise::relu(isa, host(x)?, host_mut(y)?),
        Kernel::ReluBackward { x, dy, dx } => elementwise::relu_backward(isa, host(x)?, host(dy)?, host_mut(dx)?),
        Kernel::Softmax { x, y, cols, .. } => rowwise::softmax(isa, host(x)?, host_mut(y)?, cols),
        Kernel::SoftmaxBackward { y, dy, dx, cols, .. } => {
            rowwise::softmax_backward(isa, host(y)?, host(dy)?, host_mut(dx)?, cols)
        }
        Kernel::LogSoftmax { x, y, cols, .. } => rowwise::log_softmax(isa, host(x)?, host_mut(y)?, cols),
        Kernel::LogSoftmaxBackward { y, dy, dx, cols, .. } => {
            rowwise::log_softmax_backward(isa, host(y)?, host(dy)?, host_mut(dx)?, cols)
        }
        Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, cols, .. } => {
            rowwise::softmax_cross_entropy(isa, host(logits)?, host(labels)?, host_mut(loss)?, host_mut(grad)?, cols)?
        }
        Kernel::KlDiv { logits, target, loss, grad, cols, temperature, .. } => {
            rowwise::kl_div(isa, host(logits)?, host(target)?, host_mut(loss)?, host_mut(grad)?, cols, temperature)
        }
        Kernel::Add { a, b, y } => elementwise::add(isa, host(a)?, host(b)?, host_mut(y)?),
        Kernel::Scale { x, alpha, y } => elementwise::scale(isa, host(x)?, alpha, host_mut(y)?),
        Kernel::ScaleBy { x, s, alpha, y } => elementwise::scale(isa, host(x)?, alpha * host(s)?[0], host_mut(y)?),
        Kernel::Axpy { alpha, x, y } => elementwise::axpy(isa, alpha, host(x)?, host_mut(y)?),
        Kernel::Adam { param, grad, m, v, step } => {
            adam::adam(isa, host_mut(param)?, host(grad)?, host_mut(m)?, host_mut(v)?, &step)
        }
    }
    Ok(())
}

/// The cargo features of this crate that this build has.
pub const FEATURES: &[&str] = &[
    #[cfg(feature = "openblas")]
    "openblas",
    #[cfg(feature = "rust-baselines")]
    "rust-baselines",
];

/// Makes the linked baselines run the kernels meant for this processor; call first thing in
/// `main`, before any thread starts. With OpenBLAS compiled in, this may re-execute the program
/// (see [`openblas::ensure_native_core`]); otherwise it does nothing.
pub fn prepare_baselines() {
    #[cfg(feature = "openblas")]
    openblas::ensure_native_core();
}

/// The size of the thread pool every CPU kernel runs on.
pub fn threads() -> usize {
    rayon::current_num_threads()
}
