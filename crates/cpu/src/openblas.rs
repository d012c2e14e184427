//! OpenBLAS's `cblas_sgemm` as the `openblas` matmul variant: the vendor baseline beside our own
//! ladder, in the same table and under the same conformance suite. Behind the cargo feature
//! `openblas` (Debian: `libopenblas-dev`).
//!
//! A baseline is checked, not assumed: a `DYNAMIC_ARCH` OpenBLAS picks its kernels ("core") when
//! it loads, and one that does not recognise a newer processor falls back to a generic core
//! (`Prescott`: SSE3 kernels) and runs several times slower. [`ensure_native_core`] detects that
//! at the start of `main` and re-executes the program with `OPENBLAS_CORETYPE` set to the core
//! this CPU's instruction set calls for (the variable is read only when the library loads, before
//! `main`); [`baseline`] reports the core in use, and marks the baseline degraded when it is still
//! not the right one, so that no ratio is quoted against it.

use std::ffi::{CStr, c_char, c_int};

use kernelab_tensor::{Error, Gemm, Result};

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

#[link(name = "openblas")]
unsafe extern "C" {
    fn cblas_sgemm(
        layout: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn openblas_set_num_threads(threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_config() -> *const c_char;
    fn openblas_get_corename() -> *const c_char;
}

/// `C ← α·op(A)·op(B) + β·C` by OpenBLAS.
pub fn sgemm(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let (m, n, k, lda, ldb) = dims(g)?;
    let (ta, tb) = (if g.trans_a { TRANS } else { NO_TRANS }, if g.trans_b { TRANS } else { NO_TRANS });
    // SAFETY: the buffer lengths were checked against m, n, k by `Kernel::check`, and the leading
    // dimensions describe exactly those row-major layouts.
    unsafe {
        cblas_sgemm(ROW_MAJOR, ta, tb, m, n, k, g.alpha, a.as_ptr(), lda, b.as_ptr(), ldb, g.beta, c.as_mut_ptr(), n);
    }
    Ok(())
}

/// OpenBLAS's `cblas_sbgemm` (bf16 `A`, `B` as `u16` bits; f32 `C`), which only a library built
/// with `BUILD_BFLOAT16=1` exports (Debian's 0.3.21 does not). Looked up in the running process,
/// so the same binary uses it wherever the linked OpenBLAS has it.
type Sbgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const u16,
    c_int,
    *const u16,
    c_int,
    f32,
    *mut f32,
    c_int,
);

/// The linked OpenBLAS's `cblas_sbgemm`, or why there is none.
fn sbgemm_symbol() -> std::result::Result<Sbgemm, String> {
    static FOUND: std::sync::OnceLock<std::result::Result<Sbgemm, String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let this = libloading::os::unix::Library::this();
            // SAFETY: the symbol, where present, is OpenBLAS's cblas_sbgemm with this signature
            // (cblas.h of OpenBLAS 0.3.x); `this` is the running process, never unloaded.
            match unsafe { this.get::<Sbgemm>(b"cblas_sbgemm\0") } {
                Ok(symbol) => Ok(*symbol),
                Err(_) => Err(format!(
                    "the linked {} has no cblas_sbgemm (built without BUILD_BFLOAT16=1)",
                    config().split_whitespace().take(2).collect::<Vec<_>>().join(" ")
                )),
            }
        })
        .clone()
}

/// Whether OpenBLAS's core `core` has bf16 GEMM kernels (`vdpbf16ps`): only its Cooperlake and
/// SapphireRapids cores do; every other core runs `sbgemm` as generic C.
pub fn core_has_bf16(core: &str) -> bool {
    matches!(core.to_ascii_lowercase().as_str(), "cooperlake" | "sapphirerapids")
}

/// The `openblas` bf16 matmul where the linked library has `cblas_sbgemm`, else why not. Like the
/// f32 row it is checked, not assumed: on a CPU with AVX512-BF16 whose core OpenBLAS chose has no
/// bf16 kernels, the row is refused with that reason rather than timed as generic C.
pub fn sbgemm_available() -> std::result::Result<(), String> {
    sbgemm_symbol()?;
    let core = corename();
    if crate::convert::has_avx512_bf16() && !core_has_bf16(&core) {
        return Err(format!(
            "baseline degraded: OpenBLAS's {core} core runs sbgemm without vdpbf16ps on a CPU that has it \
             (OPENBLAS_CORETYPE=Cooperlake selects its bf16 kernels)"
        ));
    }
    Ok(())
}

/// `C ← α·op(A)·op(B) + β·C` with bf16 `A` and `B` by OpenBLAS's `cblas_sbgemm` (f32 `C`).
pub fn sbgemm(a: &[u16], b: &[u16], c: &mut [f32], g: &Gemm) -> Result<()> {
    let gemm = sbgemm_symbol().map_err(|why| Error::InvalidArgument { op: "matmul", why })?;
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let (m, n, k, lda, ldb) = dims(g)?;
    let (ta, tb) = (if g.trans_a { TRANS } else { NO_TRANS }, if g.trans_b { TRANS } else { NO_TRANS });
    // SAFETY: as in `sgemm`: the lengths match m, n, k, and the leading dimensions describe them.
    unsafe { gemm(ROW_MAJOR, ta, tb, m, n, k, g.alpha, a.as_ptr(), lda, b.as_ptr(), ldb, g.beta, c.as_mut_ptr(), n) };
    Ok(())
}

/// `m, n, k` and the leading dimensions of `op(A)`'s and `op(B)`'s storage, as OpenBLAS's ints.
fn dims(g: &Gemm) -> Result<(c_int, c_int, c_int, c_int, c_int)> {
    let int = |v: usize| {
        c_int::try_from(v)
            .map_err(|_| Error::InvalidArgument { op: "matmul", why: format!("{v} exceeds OpenBLAS's 32-bit sizes") })
    };
    let lda = int(if g.trans_a { g.m } else { g.k }.max(1))?;
    let ldb = int(if g.trans_b { g.k } else { g.n }.max(1))?;
    Ok((int(g.m)?, int(g.n)?, int(g.k)?, lda, ldb))
}

/// Sets the number of threads OpenBLAS uses.
pub fn set_threads(threads: usize) {
    // SAFETY: a plain setter of OpenBLAS's global thread count.
    unsafe { openblas_set_num_threads(threads.min(c_int::MAX as usize) as c_int) }
}

/// OpenBLAS's build configuration, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH … MAX_THREADS=64`.
pub fn config() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(openblas_get_config()) }.to_string_lossy().trim().to_string()
}

/// The core (kernel set) OpenBLAS chose when it loaded, e.g. `SkylakeX`, `Haswell`, `Prescott`.
pub fn corename() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(openblas_get_corename()) }.to_string_lossy().trim().to_string()
}

/// OpenBLAS's build configuration and thread count, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH … (2 threads)`.
pub fn describe() -> String {
    // SAFETY: a plain getter.
    let threads = unsafe { openblas_get_num_threads() };
    format!("{} (core {}, {threads} threads)", config(), corename())
}

/// The environment variable that carries, into the re-executed process, the core OpenBLAS had
/// chosen by itself.
const FALLBACK_ENV: &str = "KERNELAB_OPENBLAS_FELL_BACK_FROM";

/// Re-executes this program with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to a core below
/// this CPU's instruction set and nobody chose the core by hand. Call first thing in `main`, before
/// any thread starts; returns (doing nothing) when no re-execution is needed or it fails.
pub fn ensure_native_core() {
    if std::env::var_os(FALLBACK_ENV).is_some() || std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return;
    }
    let chosen = corename();
    let Some(core) = core_for(&chosen, CpuIsa::detect()) else { return };
    let Ok(exe) = std::env::current_exe() else { return };
    use std::os::unix::process::CommandExt;
    // Only returns on failure; the baseline is then reported as degraded.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OPENBLAS_CORETYPE", core)
        .env(FALLBACK_ENV, &chosen)
        .exec();
}

/// The `openblas` baseline as it runs here: version, core, threads, and whether it is degraded.
pub fn baseline() -> kernelab_tensor::Baseline {
    let (config, core, isa) = (config(), corename(), CpuIsa::detect());
    let version = config.split_whitespace().nth(1).unwrap_or("?").to_string();
    // SAFETY: a plain getter.
    let threads = unsafe { openblas_get_num_threads() }.max(1) as usize;
    let wanted = core_for(&core, isa);
    let by_hand = std::env::var("OPENBLAS_CORETYPE").ok().filter(|_| std::env::var_os(FALLBACK_ENV).is_none());
    let note = match (std::env::var(FALLBACK_ENV).ok(), &wanted, by_hand) {
        (Some(from), None, _) => Some(format!(
            "OpenBLAS chose the generic core {from} for this CPU; kernelab re-ran itself with OPENBLAS_CORETYPE={core}"
        )),
        (_, Some(want), Some(set)) => Some(format!(
            "baseline degraded: OPENBLAS_CORETYPE={set} selects {core} kernels on a CPU with {}; unset it or use {want}",
            isa.name()
        )),
        (_, Some(want), None) => Some(format!(
            "baseline degraded: OpenBLAS runs its {core} kernels on a CPU with {}, and OPENBLAS_CORETYPE={want} did not take",
            isa.name()
        )),
        (None, None, _) => None,
    };
    kernelab_tensor::Baseline {
        variant: "openblas".into(),
        library: format!("OpenBLAS {version}"),
        kernel: core,
        config,
        threads: Some(threads),
        degraded: wanted.is_some(),
        note,
    }
}

/// The widest instruction set of this CPU that OpenBLAS has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuIsa {
    /// SSE2/SSE3 only, or not x86.
    Generic,
    /// AVX without FMA.
    Avx,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F, BW, DQ, VL and CD (what OpenBLAS's SkylakeX kernels need).
    Avx512,
}

impl CpuIsa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") && has!("avx512cd") {
                return CpuIsa::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return CpuIsa::Avx2;
            }
            if has!("avx") {
                return CpuIsa::Avx;
            }
        }
        CpuIsa::Generic
    }

    pub fn name(self) -> &'static str {
        match self {
            CpuIsa::Generic => "no AVX",
            CpuIsa::Avx => "AVX",
            CpuIsa::Avx2 => "AVX2+FMA",
            CpuIsa::Avx512 => "AVX-512",
        }
    }
}

/// The instruction set an OpenBLAS x86 core's kernels use.
pub fn core_isa(core: &str) -> CpuIsa {
    match core.to_ascii_lowercase().as_str() {
        "skylakex" | "cooperlake" | "sapphirerapids" => CpuIsa::Avx512,
        "haswell" | "zen" | "skylake" => CpuIsa::Avx2,
        "sandybridge" | "bulldozer" | "piledriver" | "steamroller" | "excavator" => CpuIsa::Avx,
        _ => CpuIsa::Generic,
    }
}

/// The core to select when OpenBLAS chose `chosen` on a CPU with `cpu`: `None` when the choice
/// already uses the CPU's widest vector kernels (or the CPU has no AVX2, where the generic cores
/// are what OpenBLAS has), else `SkylakeX` on AVX-512 and `Haswell` on AVX2+FMA.
pub fn core_for(chosen: &str, cpu: CpuIsa) -> Option<&'static str> {
    if core_isa(chosen) >= cpu {
        return None;
    }
    match cpu {
        CpuIsa::Avx512 => Some("SkylakeX"),
        CpuIsa::Avx2 => Some("Haswell"),
        CpuIsa::Avx | CpuIsa::Generic => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_core_on_a_vector_cpu_is_replaced() {
        assert_eq!(core_for("Prescott", CpuIsa::Avx512), Some("SkylakeX"));
        assert_eq!(core_for("Prescott", CpuIsa::Avx2), Some("Haswell"));
        assert_eq!(core_for("Sandybridge", CpuIsa::Avx2), Some("Haswell"));
        assert_eq!(core_for("Haswell", CpuIsa::Avx512), Some("SkylakeX"), "AVX2 kernels on an AVX-512 CPU");
        assert_eq!(core_for("Zen", CpuIsa::Avx512), Some("SkylakeX"));
    }

    #[test]
    fn a_core_that_fits_the_cpu_is_kept() {
        assert_eq!(core_for("SkylakeX", CpuIsa::Avx512), None);
        assert_eq!(core_for("Cooperlake", CpuIsa::Avx512), None);
        assert_eq!(core_for("SapphireRapids", CpuIsa::Avx512), None);
        assert_eq!(core_for("Haswell", CpuIsa::Avx2), None);
        assert_eq!(core_for("Zen", CpuIsa::Avx2), None);
        assert_eq!(core_for("Prescott", CpuIsa::Avx), None, "no better core exists for AVX without FMA");
        assert_eq!(core_for("Prescott", CpuIsa::Generic), None);
    }

    #[test]
    fn sbgemm_runs_only_where_the_library_has_it_and_says_why_not() {
        let (a, b, mut c) = ([0x3f80u16; 6], [0x4000u16; 6], [f32::NAN; 4]);
        match (sbgemm_symbol(), sbgemm(&a, &b, &mut c, &Gemm::new(2, 2, 3))) {
            (Ok(_), Ok(())) => assert_eq!(c, [6.0; 4], "1·2 summed over 3"),
            (Err(why), Err(err)) => {
                assert!(why.contains("cblas_sbgemm") && why.contains("OpenBLAS 0."), "{why}");
                assert!(err.to_string().contains(&why) && c.iter().all(|v| v.is_nan()), "{err}");
            }
            (symbol, run) => panic!("symbol {:?} but run {run:?}", symbol.map(|_| ())),
        }
        assert!(core_has_bf16("Cooperlake") && core_has_bf16("SapphireRapids") && !core_has_bf16("SkylakeX"));
    }

    #[test]
    fn the_linked_library_reports_a_core_and_a_version() {
        let b = baseline();
        assert!(b.library.starts_with("OpenBLAS 0."), "{b:?}");
        assert!(!b.kernel.is_empty());
        assert_eq!(b.degraded, core_for(&b.kernel, CpuIsa::detect()).is_some());
    }
}
