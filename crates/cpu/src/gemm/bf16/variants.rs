//! The narrow GEMMs as matmul variants over narrow CPU buffers (`A`, `B`, `C` all bf16 or all
//! f16; `C` computed in f32 and rounded once), and why each cannot run where it cannot.
//!
//! | variant          | storage | what runs                                                     |
//! |------------------|---------|---------------------------------------------------------------|
//! | `bf16-dpbf16`    | bf16    | [`gemm_dpbf16`], column blocks over the threads               |
//! | `bf16-dpbf16-1t` | bf16    | the same, one thread                                          |
//! | `bf16-widen`     | bf16    | [`gemm_widened`] with the AVX-512F f32 kernel, threaded       |
//! | `f16-f16c`       | f16     | [`gemm_widened`] (F16C conversions), AVX-512F kernel, threaded |
//! | `f16-avx512fp16` | f16     | never runs: see [`avx512fp16`]                                |
//! | `bf16-amx`       | bf16    | never runs: see [`amx`]                                       |

use kernelab_tensor::{DeviceBuffer, Dtype, Error, Gemm, Result};

use super::{PairKernel, gemm_dpbf16, gemm_widened, narrow_output};
use crate::CpuBuffer;
use crate::convert::Narrow;
use crate::gemm::MicroKernel;

/// The narrow type of `c` (whose dtype `Kernel::check` made the operands' too).
fn narrow_of(c: &CpuBuffer) -> Result<Narrow> {
    match c.dtype() {
        Dtype::Bf16 => Ok(Narrow::Bf16),
        Dtype::F16 => Ok(Narrow::F16),
        Dtype::F32 => Err(Error::Device { backend: "cpu".into(), message: "internal: a narrow GEMM got f32 C".into() }),
    }
}

/// `bf16-dpbf16` and `bf16-dpbf16-1t`: `C ← α·op(A)·op(B) + β·C` on `vdpbf16ps`.
fn dpbf16(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm, threaded: bool) -> Result<()> {
    let kernel = PairKernel::detect().map_err(|why| Error::Device { backend: "cpu".into(), message: why })?;
    let kind = narrow_of(c)?;
    narrow_output(kind, c.bits_mut(), g.beta, |c32| gemm_dpbf16(a.bits(), b.bits(), c32, g, kernel, threaded));
    Ok(())
}

pub fn dpbf16_threaded(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()> {
    dpbf16(a, b, c, g, true)
}

pub fn dpbf16_one_thread(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()> {
    dpbf16(a, b, c, g, false)
}

/// `bf16-widen` and `f16-f16c`: operands widened to f32, the AVX-512F packed GEMM, threaded.
pub fn widened(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()> {
    let kernel = MicroKernel::detect("avx512").map_err(|why| Error::Device { backend: "cpu".into(), message: why })?;
    let kind = narrow_of(c)?;
    narrow_output(kind, c.bits_mut(), g.beta, |c32| gemm_widened(kind, a.bits(), b.bits(), c32, g, kernel, true));
    Ok(())
}

/// Why `bf16-dpbf16` cannot run here, if it cannot.
pub fn dpbf16_unavailable() -> Option<String> {
    PairKernel::detect().err()
}

/// Why `bf16-widen` cannot run here, if it cannot (it needs AVX-512F).
pub fn widen_unavailable() -> Option<String> {
    MicroKernel::detect("avx512").err()
}

/// Why `f16-f16c` cannot run here, if it cannot (F16C and AVX-512F).
pub fn f16c_unavailable() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    if !is_x86_feature_detected!("f16c") {
        return Some("the CPU lacks F16C".into());
    }
    widen_unavailable()
}

/// Whether `/proc/cpuinfo` lists the flag `flag` (Linux's names: `avx512_fp16`, `amx_bf16`).
fn cpu_flag(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == flag))
    })
}

/// `f16-avx512fp16` (f16 arithmetic in 32 half-precision lanes): no kernel is written, because no
/// CPU with AVX512-FP16 (Intel Sapphire Rapids and later) was available to test one on.
pub fn avx512fp16() -> String {
    if cpu_flag("avx512_fp16") {
        "this CPU has AVX512-FP16, but no kernel for it is written yet (none could be tested)".into()
    } else {
        "the CPU lacks AVX512-FP16".into()
    }
}

/// `bf16-amx` (AMX-BF16 tiles, `tdpbf16ps`): no kernel is written, as no CPU with AMX was
/// available to test one on; a kernel would also have to ask the kernel for the tile state first
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, Linux 5.16 and later).
pub fn amx() -> String {
    if cpu_flag("amx_bf16") {
        "this CPU has AMX-BF16, but no tile kernel is written yet (none could be tested; it needs \
         arch_prctl(ARCH_REQ_XCOMP_PERM) for the tile state)"
            .into()
    } else {
        "the CPU lacks AMX-BF16 (Intel Sapphire Rapids and later; it also needs the OS's permission for the tile \
         state, arch_prctl(ARCH_REQ_XCOMP_PERM))"
            .into()
    }
}
