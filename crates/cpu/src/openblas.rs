//! OpenBLAS's `cblas_sgemm` as the `openblas` matmul variant: the vendor baseline beside our own
//! ladder, in the same table and under the same conformance suite. Behind the cargo feature
//! `openblas` (Debian: `libopenblas-dev`).

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
}

/// `C ← α·op(A)·op(B) + β·C` by OpenBLAS.
pub fn sgemm(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm) -> Result<()> {
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let int = |v: usize| {
        c_int::try_from(v)
            .map_err(|_| Error::InvalidArgument { op: "matmul", why: format!("{v} exceeds OpenBLAS's 32-bit sizes") })
    };
    let (m, n, k) = (int(g.m)?, int(g.n)?, int(g.k)?);
    let lda = int(if g.trans_a { g.m } else { g.k }.max(1))?;
    let ldb = int(if g.trans_b { g.k } else { g.n }.max(1))?;
    let (ta, tb) = (if g.trans_a { TRANS } else { NO_TRANS }, if g.trans_b { TRANS } else { NO_TRANS });
    // SAFETY: the buffer lengths were checked against m, n, k by `Kernel::check`, and the leading
    // dimensions describe exactly those row-major layouts.
    unsafe {
        cblas_sgemm(ROW_MAJOR, ta, tb, m, n, k, g.alpha, a.as_ptr(), lda, b.as_ptr(), ldb, g.beta, c.as_mut_ptr(), n);
    }
    Ok(())
}

/// Sets the number of threads OpenBLAS uses.
pub fn set_threads(threads: usize) {
    // SAFETY: a plain setter of OpenBLAS's global thread count.
    unsafe { openblas_set_num_threads(threads.min(c_int::MAX as usize) as c_int) }
}

/// OpenBLAS's build configuration and thread count, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH … (2 threads)`.
pub fn describe() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    let config = unsafe { CStr::from_ptr(openblas_get_config()) }.to_string_lossy().into_owned();
    // SAFETY: a plain getter.
    let threads = unsafe { openblas_get_num_threads() };
    format!("{} ({threads} threads)", config.trim())
}
