//! cuBLAS, loaded at run time (no link-time dependency) as the vendor baseline for matmul: the
//! `cublas` variant, so the percent of cuBLAS a rung reaches comes from the same run.
//!
//! Where libcublas is looked for: `$KERNELAB_CUBLAS` (a path), then the loader's search path
//! (`libcublas.so.13`, `.12`, `.11`, `libcublas.so`), then `/usr/local/cuda/lib64`.

use std::ffi::c_void;

use kernelab_tensor::{Error, Gemm, Result};

use crate::variants::GemmEx;
use libloading::Library;

type Handle = *mut c_void;
type Status = i32;

/// `cublasOperation_t`.
const OP_N: i32 = 0;
const OP_T: i32 = 1;
/// `CUBLAS_DEFAULT_MATH`: FP32 routines compute in FP32 (no TF32 tensor cores).
const DEFAULT_MATH: i32 = 0;
/// `cudaDataType_t`: `CUDA_R_32F`, `CUDA_R_16F`, `CUDA_R_16BF`.
const R_32F: i32 = 0;
const R_16F: i32 = 2;
const R_16BF: i32 = 14;
/// `cublasComputeType_t`: `CUBLAS_COMPUTE_32F` (f32 sums; 16-bit inputs on the tensor cores) and
/// `CUBLAS_COMPUTE_32F_FAST_TF32` (f32 data, TF32 products on the tensor cores).
const COMPUTE_32F: i32 = 68;
const COMPUTE_32F_FAST_TF32: i32 = 77;
/// `CUBLAS_GEMM_DEFAULT`: cuBLAS picks the algorithm.
const GEMM_DEFAULT: i32 = -1;

/// `(cudaDataType_t of A, B and C, cublasComputeType_t)` of a GemmEx row.
fn ex_types(p: GemmEx) -> (i32, i32) {
    match p {
        GemmEx::Tf32 => (R_32F, COMPUTE_32F_FAST_TF32),
        GemmEx::Bf16 => (R_16BF, COMPUTE_32F),
        GemmEx::F16 => (R_16F, COMPUTE_32F),
    }
}

type Create = unsafe extern "C" fn(*mut Handle) -> Status;
type Destroy = unsafe extern "C" fn(Handle) -> Status;
type SetStream = unsafe extern "C" fn(Handle, *mut c_void) -> Status;
type SetMathMode = unsafe extern "C" fn(Handle, i32) -> Status;
type GetVersion = unsafe extern "C" fn(Handle, *mut i32) -> Status;
#[allow(clippy::type_complexity)]
type Sgemm = unsafe extern "C" fn(
    Handle,
    i32,
    i32,
    i32,
    i32,
    i32,
    *const f32,
    *const f32,
    i32,
    *const f32,
    i32,
    *const f32,
    *mut f32,
    i32,
) -> Status;

/// `cublasGemmEx`: `(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta,
/// C, Ctype, ldc, computeType, algo)`.
#[allow(clippy::type_complexity)]
type GemmExFn = unsafe extern "C" fn(
    Handle,
    i32,
    i32,
    i32,
    i32,
    i32,
    *const c_void,
    *const c_void,
    i32,
    i32,
    *const c_void,
    i32,
    i32,
    *const c_void,
    *mut c_void,
    i32,
    i32,
    i32,
    i32,
) -> Status;

/// A cuBLAS handle bound to the backend's stream.
pub struct Cublas {
    handle: Handle,
    sgemm: Sgemm,
    /// `cublasGemmEx`, where the library has it (cuBLAS 11 and later).
    gemm_ex: Option<GemmExFn>,
    destroy: Destroy,
    version: i32,
    path: String,
    /// Keeps the library mapped while the function pointers above are in use.
    _library: Library,
}

// SAFETY: the handle is used under the backend's calls only, which make its context current; cuBLAS
// handles may be used from any thread, one call at a time, and `sgemm` takes `&self` from one
// backend whose launches are ordered on one stream.
unsafe impl Send for Cublas {}
unsafe impl Sync for Cublas {}

fn candidates() -> Vec<String> {
    // An empty path would open the program itself (dlopen("") is the main program), so it is unset.
    let mut names: Vec<String> = std::env::var("KERNELAB_CUBLAS").into_iter().filter(|p| !p.is_empty()).collect();
    for name in ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"] {
        names.push(name.into());
        names.push(format!("/usr/local/cuda/lib64/{name}"));
    }
    names
}

impl Cublas {
    /// Loads libcublas and creates a handle on `stream`; the error says what was tried.
    pub fn load(stream: *mut c_void) -> Result<Self, String> {
        let mut tried = Vec::new();
        for path in candidates() {
            // SAFETY: loading libcublas runs its initializers, which have no preconditions.
            match unsafe { Library::new(&path) } {
                Ok(library) => return Self::bind(library, path, stream),
                Err(e) => tried.push(format!("{path} ({e})")),
            }
        }
        Err(format!("libcublas not found (set KERNELAB_CUBLAS to its path); tried {}", tried.join("; ")))
    }

    fn bind(library: Library, path: String, stream: *mut c_void) -> Result<Self, String> {
        // SAFETY: the symbols are looked up with the signatures cuBLAS v2 declares for them.
        unsafe {
            let symbol = |name: &str| format!("{path} lacks {name}");
            let create = *library.get::<Create>(b"cublasCreate_v2\0").map_err(|_| symbol("cublasCreate_v2"))?;
            let destroy = *library.get::<Destroy>(b"cublasDestroy_v2\0").map_err(|_| symbol("cublasDestroy_v2"))?;
            let set_stream =
                *library.get::<SetStream>(b"cublasSetStream_v2\0").map_err(|_| symbol("cublasSetStream_v2"))?;
            let set_math =
                *library.get::<SetMathMode>(b"cublasSetMathMode\0").map_err(|_| symbol("cublasSetMathMode"))?;
            let get_version =
                *library.get::<GetVersion>(b"cublasGetVersion_v2\0").map_err(|_| symbol("cublasGetVersion_v2"))?;
            let sgemm = *library.get::<Sgemm>(b"cublasSgemm_v2\0").map_err(|_| symbol("cublasSgemm_v2"))?;
            let gemm_ex = library.get::<GemmExFn>(b"cublasGemmEx\0").ok().map(|f| *f);
            let mut handle: Handle = std::ptr::null_mut();
            let status = create(&mut handle);
            if status != 0 {
                return Err(format!("cublasCreate failed with status {status}"));
            }
            let mut version = 0;
            for (what, status) in [
                ("cublasSetStream", set_stream(handle, stream)),
                ("cublasSetMathMode", set_math(handle, DEFAULT_MATH)),
                ("cublasGetVersion", get_version(handle, &mut version)),
            ] {
                if status != 0 {
                    destroy(handle);
                    return Err(format!("{what} failed with status {status}"));
                }
            }
            Ok(Self { handle, sgemm, gemm_ex, destroy, version, path, _library: library })
        }
    }

    /// `cuBLAS 12.9.1 (path)`.
    pub fn describe(&self) -> String {
        let v = self.version;
        format!("cuBLAS {}.{}.{} ({}), FP32 math, TF32 off", v / 10000, v / 100 % 100, v % 100, self.path)
    }

    /// `C ← α·op(A)·op(B) + β·C` for row-major f32 matrices at these device addresses.
    ///
    /// cuBLAS is column-major, and a row-major `m × n` matrix is a column-major `n × m` one, so
    /// the call computes `Cᵀ = op(B)ᵀ·op(A)ᵀ`: B first, with n and m swapped.
    pub fn sgemm(&self, g: &Gemm, a: u64, b: u64, c: u64) -> Result<()> {
        let Some(call) = Call::of(g)? else { return Ok(()) };
        // SAFETY: the addresses are device buffers of the lengths `Kernel::check` verified, and
        // the scalars are host values (cuBLAS's default pointer mode).
        let status = unsafe {
            (self.sgemm)(
                self.handle,
                call.op_b,
                call.op_a,
                call.n,
                call.m,
                call.k,
                &g.alpha,
                b as *const f32,
                call.ldb,
                a as *const f32,
                call.lda,
                &g.beta,
                c as *mut f32,
                call.n,
            )
        };
        check(status, "cublasSgemm")
    }

    /// Whether [`Cublas::gemm_ex`] can run: `None`, or why not.
    pub fn gemm_ex_unavailable(&self) -> Option<String> {
        self.gemm_ex.is_none().then(|| format!("{} lacks cublasGemmEx (cuBLAS 11 or later has it)", self.path))
    }

    /// `C ← α·op(A)·op(B) + β·C` at precision `p` through `cublasGemmEx`, row-major as
    /// [`Cublas::sgemm`]: A, B and C hold `p`'s storage type, α and β are f32 on the host, the
    /// sums f32; cuBLAS picks the algorithm (`CUBLAS_GEMM_DEFAULT`, tensor cores where it likes).
    pub fn gemm_ex(&self, p: GemmEx, g: &Gemm, a: u64, b: u64, c: u64) -> Result<()> {
        let Some(gemm_ex) = self.gemm_ex else {
            let why = self.gemm_ex_unavailable().unwrap_or_default();
            return Err(Error::Device { backend: "cuda".into(), message: why });
        };
        let Some(call) = Call::of(g)? else { return Ok(()) };
        let (data, compute) = ex_types(p);
        let (alpha, beta) = (&g.alpha as *const f32 as *const c_void, &g.beta as *const f32 as *const c_void);
        // SAFETY: as in `sgemm`; the buffers hold elements of `data`, as the variant's precision
        // made the caller allocate them.
        let status = unsafe {
            gemm_ex(
                self.handle,
                call.op_b,
                call.op_a,
                call.n,
                call.m,
                call.k,
                alpha,
                b as *const c_void,
                data,
                call.ldb,
                a as *const c_void,
                data,
                call.lda,
                beta,
                c as *mut c_void,
                data,
                call.n,
                compute,
                GEMM_DEFAULT,
            )
        };
        check(status, "cublasGemmEx")
    }
}

/// The column-major arguments of one row-major product: `Cᵀ = op(B)ᵀ·op(A)ᵀ`.
struct Call {
    op_a: i32,
    op_b: i32,
    m: i32,
    n: i32,
    k: i32,
    lda: i32,
    ldb: i32,
}

impl Call {
    /// The call for `g`, or `None` when C is empty (nothing to do).
    fn of(g: &Gemm) -> Result<Option<Call>> {
        let int = |v: usize| {
            i32::try_from(v)
                .map_err(|_| Error::InvalidArgument { op: "matmul", why: format!("{v} exceeds cuBLAS's 32-bit sizes") })
        };
        let (m, n, k) = (int(g.m)?, int(g.n)?, int(g.k)?);
        let (op_b, ldb) = if g.trans_b { (OP_T, k) } else { (OP_N, n) };
        let (op_a, lda) = if g.trans_a { (OP_T, m) } else { (OP_N, k) };
        if m == 0 || n == 0 {
            return Ok(None);
        }
        Ok(Some(Call { op_a, op_b, m, n, k, lda: lda.max(1), ldb: ldb.max(1) }))
    }
}

fn check(status: Status, what: &str) -> Result<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(Error::Device { backend: "cuda".into(), message: format!("{what} failed with status {status}") })
    }
}

impl Drop for Cublas {
    fn drop(&mut self) {
        // SAFETY: the handle was created by this library and is not used after this.
        unsafe { (self.destroy)(self.handle) };
    }
}
