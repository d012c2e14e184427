//! The narrow GEMMs as matmul variants over narrow CPU buffers (`A`, `B`, `C` all bf16 or all
//! f16; `C` computed in f32 and rounded once), and why each cannot run where it cannot.
//!
//! | variant          | storage | what runs                                                     |
//! |------------------|---------|---------------------------------------------------------------|
//! | `bf16-dpbf16`    | bf16    | [`gemm_dpbf16`], blocks of rows over the threads               |
//! | `bf16-dpbf16-1t` | bf16    | the same, one thread                                          |
//! | `bf16-widen`     | bf16    | [`gemm_widened`] with the AVX-512F f32 kernel, threaded       |
//! | `f16-f16c`       | f16     | [`gemm_widened`] (F16C conversions), AVX-512F kernel, threaded |
//! | `f16-avx512fp16` | f16     | never runs: see [`avx512fp16`]                                |
//! | `openblas-sbgemm`| bf16    | baseline: OpenBLAS `cblas_sbgemm` where the library has it    |
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
        Dtype::F32 | Dtype::Tf32 => {
            Err(Error::Device { backend: "cpu".into(), message: "internal: a narrow GEMM got f32 C".into() })
        }
    }
}

/// `bf16-dpbf16` and `bf16-dpbf16-1t`: `C ← α·op(A)·op(B) + β·C` on `vdpbf16ps`.
fn dpbf16(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm, threaded: bool) -> Result<()> {
    let kernel = PairKernel::detect().map_err(|why| Error::Device { backend: "cpu".into(), message: why })?;
    let kind = narrow_of(c)?;
    narrow_output(kind, c.bits_mut(), g.beta, threaded, |c32| {
        gemm_dpbf16(a.bits(), b.bits(), c32, g, kernel, threaded)
    });
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
    narrow_output(kind, c.bits_mut(), g.beta, true, |c32| gemm_widened(kind, a.bits(), b.bits(), c32, g, kernel, true));
    Ok(())
}

/// `openblas-sbgemm`: OpenBLAS's `cblas_sbgemm` into f32, `C` rounded to bf16.
#[cfg(feature = "openblas")]
pub fn openblas_sbgemm(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()> {
    let mut status = Ok(());
    narrow_output(narrow_of(c)?, c.bits_mut(), g.beta, true, |c32| {
        status = crate::openblas::sbgemm(a.bits(), b.bits(), c32, g)
    });
    status
}

/// Why `openblas-sbgemm` cannot run here, if it cannot: not compiled in, no `cblas_sbgemm` in the
/// linked library, or a core without bf16 kernels on a CPU with them.
pub fn openblas_sbgemm_unavailable() -> Option<String> {
    #[cfg(feature = "openblas")]
    {
        crate::openblas::sbgemm_available().err()
    }
    #[cfg(not(feature = "openblas"))]
    {
        Some("not compiled in; rebuild with `--features openblas` (needs libopenblas-dev with cblas_sbgemm)".into())
    }
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

#[cfg(test)]
mod tests {
    use kernelab_tensor::{Device, Kernel, Op};

    use crate::CpuBackend;

    use super::*;

    /// `C ← α·op(A)·op(B)` through the backend by `variant` on narrow buffers (`C` NaN-poisoned),
    /// against the f64 reference of the rounded inputs: within the rounding of `C` to its type plus
    /// the f32 sum's `(k + 2)·2⁻²⁴·|α|·Σ|a||b|`.
    fn check(cpu: &Device, variant: &str, dtype: Dtype, g: Gemm) {
        let value = |i: usize, s: usize| dtype.round(((i * 7919 + s) % 1001) as f32 / 1001.0 - 0.3);
        let a: Vec<f32> = (0..g.m * g.k).map(|i| value(i, 1)).collect();
        let b: Vec<f32> = (0..g.k * g.n).map(|i| value(i, 2)).collect();
        let (da, db) = (cpu.upload_as(&a, dtype).unwrap(), cpu.upload_as(&b, dtype).unwrap());
        let mut dc = cpu.upload_as(&vec![f32::NAN; g.m * g.n], dtype).unwrap();
        cpu.launch(Kernel::Matmul { a: &*da, b: &*db, c: &mut *dc, gemm: g }, Some(variant)).unwrap();
        let c = cpu.download(&*dc).unwrap();
        let at = |x: &[f32], t: bool, cols: usize, rows: usize, r: usize, s: usize| {
            f64::from(if t { x[s * rows + r] } else { x[r * cols + s] })
        };
        for i in 0..g.m {
            for j in 0..g.n {
                let terms = (0..g.k).map(|p| at(&a, g.trans_a, g.k, g.m, i, p) * at(&b, g.trans_b, g.n, g.k, p, j));
                let (dot, mag) = terms.fold((0.0, 0.0), |(d, m), t| (d + t, m + t.abs()));
                let want = f64::from(g.alpha) * dot;
                let budget = dtype.unit_roundoff() * want.abs()
                    + (g.k + 2) as f64 * 2f64.powi(-24) * f64::from(g.alpha).abs() * mag
                    + 1e-30;
                let got = f64::from(c[i * g.n + j]);
                assert!((got - want).abs() <= budget, "{variant} {g:?} C[{i},{j}] = {got}, want {want} ± {budget:e}");
            }
        }
        assert_eq!(cpu.guard_violation(&*dc).unwrap(), None, "{variant}");
    }

    #[test]
    fn every_narrow_gemm_variant_runs_through_the_backend_within_its_budget() {
        let cpu = Device::new(CpuBackend::new());
        let variants = cpu.variants(Op::Matmul);
        let mine = [
            ("bf16-dpbf16", Dtype::Bf16),
            ("bf16-dpbf16-1t", Dtype::Bf16),
            ("bf16-widen", Dtype::Bf16),
            ("f16-f16c", Dtype::F16),
        ];
        for (name, dtype) in mine {
            let listed = variants.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("{name} is not listed"));
            assert_eq!(listed.precision.storage, dtype, "{name}");
            if listed.unavailable.is_some() {
                continue;
            }
            for (m, n, k) in [(1, 1, 1), (17, 33, 65), (64, 10, 784), (9, 40, 1031)] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    check(&cpu, name, dtype, Gemm::new(m, n, k).trans(ta, tb).scaled(-1.25, 0.0));
                }
            }
        }
    }

    #[test]
    fn the_bf16_default_is_the_fastest_that_runs_and_the_missing_kernels_say_why() {
        let variants = crate::registry::variants(Op::Matmul);
        let default_bf16 = variants.iter().find(|v| v.precision.storage == Dtype::Bf16).unwrap();
        let want = if PairKernel::detect().is_ok() { "bf16-dpbf16" } else { "bf16-widen" };
        if widen_unavailable().is_none() {
            assert_eq!(default_bf16.name, want);
        }
        let reason = |name: &str| variants.iter().find(|v| v.name == name).and_then(|v| v.unavailable.clone());
        assert!(reason("f16-avx512fp16").is_some_and(|r| r.contains("AVX512-FP16")));
        assert!(reason("bf16-amx").is_some_and(|r| r.contains("AMX-BF16") && r.contains("ARCH_REQ_XCOMP_PERM")));
    }

    #[test]
    fn narrow_relu_and_softmax_run_through_the_backend() {
        let cpu = Device::new(CpuBackend::new());
        for (name, dtype) in [("bf16-avx512", Dtype::Bf16), ("f16-avx512", Dtype::F16)] {
            let listed = cpu.variants(Op::Relu).into_iter().find(|v| v.name == name).unwrap();
            if listed.unavailable.is_some() {
                continue;
            }
            let x: Vec<f32> = (0..3 * 17).map(|i| dtype.round(i as f32 / 7.0 - 3.0)).collect();
            let dx = cpu.upload_as(&x, dtype).unwrap();
            let mut dy = cpu.upload_as(&[f32::NAN; 51], dtype).unwrap();
            cpu.launch(Kernel::Relu { x: &*dx, y: &mut *dy }, Some(name)).unwrap();
            assert_eq!(cpu.download(&*dy).unwrap(), x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(), "{name}");
            let mut dy = cpu.upload_as(&[f32::NAN; 51], dtype).unwrap();
            cpu.launch(Kernel::Softmax { x: &*dx, y: &mut *dy, rows: 3, cols: 17 }, Some(name)).unwrap();
            let y = cpu.download(&*dy).unwrap();
            for (xr, yr) in x.chunks(17).zip(y.chunks(17)) {
                let max = xr.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = xr.iter().map(|&v| f64::from(v - max).exp()).sum();
                for (&v, &got) in xr.iter().zip(yr) {
                    let want = f64::from(v - max).exp() / sum;
                    assert!((f64::from(got) - want).abs() <= 2.0 * dtype.unit_roundoff() * want + 1e-7, "{name}");
                }
            }
        }
    }
}
