//! The C ABI of a CPU kernel library, as Rust sees it. `examples/kernels/kernelab.h` writes it
//! down for C; every prototype here is a line of that file, word for word (a test reads the file
//! and finds each one), so the two cannot drift apart.
//!
//! Every op with a C function has one of five signatures ([`Signature`]): matmul's, and four
//! generic ones by how many inputs the op reads and whether it is elementwise (`n` values) or
//! row-wise (`rows × cols`). The pointers and sizes are those the built-in kernels receive
//! ([`Kernel`]).

use std::os::raw::c_int;

use kernelab_tensor::{Error, Gemm, Kernel, Op, Result};

use crate::buffer::{host, host_mut};

/// The version of the ABI this build speaks: what `kernelab_abi_version()` must return.
pub const ABI_VERSION: c_int = 1;

/// The symbol every library exports with its ABI version.
pub const VERSION_SYMBOL: &str = "kernelab_abi_version";

/// Where the ABI is written down, for error messages.
pub const HEADER: &str = "examples/kernels/kernelab.h";

/// `struct kernelab_gemm`: the parameters of `C ← α·op(A)·op(B) + β·C` ([`Gemm`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AbiGemm {
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub trans_a: u32,
    pub trans_b: u32,
    pub alpha: f32,
    pub beta: f32,
}

impl From<&Gemm> for AbiGemm {
    fn from(g: &Gemm) -> Self {
        Self {
            m: g.m as u64,
            n: g.n as u64,
            k: g.k as u64,
            trans_a: g.trans_a.into(),
            trans_b: g.trans_b.into(),
            alpha: g.alpha,
            beta: g.beta,
        }
    }
}

/// The C signatures an op's function has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// `(const float *a, const float *b, float *c, const struct kernelab_gemm *g)`.
    Gemm,
    /// `(const float *x, float *y, uint64_t n)`.
    Map1,
    /// `(const float *a, const float *b, float *y, uint64_t n)`.
    Map2,
    /// `(const float *x, float *y, uint64_t rows, uint64_t cols)`.
    Rows1,
    /// `(const float *a, const float *b, float *y, uint64_t rows, uint64_t cols)`.
    Rows2,
}

/// The signature and the C prototype (as `kernelab.h` declares it) of `op`'s function; `None`
/// for an op that has no C function yet.
pub fn prototype(op: Op) -> Option<(Signature, &'static str)> {
    use Signature::*;
    Some(match op {
        Op::Matmul => {
            (Gemm, "int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g);")
        }
        Op::Relu => (Map1, "int kernelab_relu(const float *x, float *y, uint64_t n);"),
        Op::ReluBackward => {
            (Map2, "int kernelab_relu_backward(const float *x, const float *dy, float *dx, uint64_t n);")
        }
        Op::Add => (Map2, "int kernelab_add(const float *a, const float *b, float *y, uint64_t n);"),
        Op::Softmax => (Rows1, "int kernelab_softmax(const float *x, float *y, uint64_t rows, uint64_t cols);"),
        Op::LogSoftmax => (Rows1, "int kernelab_log_softmax(const float *x, float *y, uint64_t rows, uint64_t cols);"),
        Op::SoftmaxBackward => (
            Rows2,
            "int kernelab_softmax_backward(const float *y, const float *dy, float *dx, uint64_t rows, uint64_t cols);",
        ),
        Op::LogSoftmaxBackward => (
            Rows2,
            "int kernelab_log_softmax_backward(const float *y, const float *dy, float *dx, uint64_t rows, uint64_t \
             cols);",
        ),
        Op::BiasAdd => {
            (Rows2, "int kernelab_bias_add(const float *x, const float *bias, float *y, uint64_t rows, uint64_t cols);")
        }
        Op::BiasRelu => (
            Rows2,
            "int kernelab_bias_relu(const float *x, const float *bias, float *y, uint64_t rows, uint64_t cols);",
        ),
        _ => return None,
    })
}

/// The ops a library can implement, in catalogue order.
pub fn supported() -> impl Iterator<Item = Op> {
    Op::ALL.into_iter().filter(|&op| prototype(op).is_some())
}

type GemmFn = unsafe extern "C" fn(*const f32, *const f32, *mut f32, *const AbiGemm) -> c_int;
type Map1Fn = unsafe extern "C" fn(*const f32, *mut f32, u64) -> c_int;
type Map2Fn = unsafe extern "C" fn(*const f32, *const f32, *mut f32, u64) -> c_int;
type Rows1Fn = unsafe extern "C" fn(*const f32, *mut f32, u64, u64) -> c_int;
type Rows2Fn = unsafe extern "C" fn(*const f32, *const f32, *mut f32, u64, u64) -> c_int;
/// `int kernelab_abi_version(void)`.
pub type VersionFn = unsafe extern "C" fn() -> c_int;

/// A function of a loaded library, typed by its op's signature. It stays callable for the
/// process's lifetime: the libraries are never unloaded.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    Gemm(GemmFn),
    Map1(Map1Fn),
    Map2(Map2Fn),
    Rows1(Rows1Fn),
    Rows2(Rows2Fn),
}

impl Entry {
    /// Looks up `symbol` in `library` as a function of `signature`.
    ///
    /// # Safety
    /// The symbol must be a function of that C signature: the ABI says so, and nothing can check
    /// it (a library that exports something else breaks its contract).
    pub unsafe fn find(library: &libloading::Library, symbol: &str, signature: Signature) -> Option<Entry> {
        let name = symbol.as_bytes();
        // SAFETY: as the caller promised; each function pointer is copied out of its `Symbol`,
        // and stays valid because the library is never unloaded.
        unsafe {
            Some(match signature {
                Signature::Gemm => Entry::Gemm(*library.get::<GemmFn>(name).ok()?),
                Signature::Map1 => Entry::Map1(*library.get::<Map1Fn>(name).ok()?),
                Signature::Map2 => Entry::Map2(*library.get::<Map2Fn>(name).ok()?),
                Signature::Rows1 => Entry::Rows1(*library.get::<Rows1Fn>(name).ok()?),
                Signature::Rows2 => Entry::Rows2(*library.get::<Rows2Fn>(name).ok()?),
            })
        }
    }

    /// Calls the function on `kernel`'s buffers (whose lengths [`Kernel::check`] checked) and
    /// returns what it returned; a kernel of another op than the entry's is an error.
    pub fn call(self, kernel: Kernel<'_>) -> Result<c_int> {
        let op = kernel.op();
        // SAFETY (every call below): the pointers come from slices of exactly the lengths the
        // sizes passed with them describe (checked by `Kernel::check`), the output is a distinct
        // `&mut` slice, and each slice is borrowed until the call returns. The ABI forbids the
        // function to write its inputs, to touch memory outside the slices, and to keep using
        // them once it returns; a library that breaks this is caught afterwards (inputs compared,
        // guard zones read, outputs re-checked) or crashes, which is why the benchmark runs
        // library kernels in a child process.
        let code = match (self, kernel) {
            (Entry::Gemm(f), Kernel::Matmul { a, b, c, gemm }) => {
                let (a, b, c, g) = (host(a)?, host(b)?, host_mut(c)?, AbiGemm::from(&gemm));
                unsafe { f(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), &g) }
            }
            (Entry::Map1(f), Kernel::Relu { x, y }) => {
                let (x, y) = (host(x)?, host_mut(y)?);
                unsafe { f(x.as_ptr(), y.as_mut_ptr(), y.len() as u64) }
            }
            (Entry::Map2(f), Kernel::ReluBackward { x: a, dy: b, dx: y } | Kernel::Add { a, b, y }) => {
                let (a, b, y) = (host(a)?, host(b)?, host_mut(y)?);
                unsafe { f(a.as_ptr(), b.as_ptr(), y.as_mut_ptr(), y.len() as u64) }
            }
            (Entry::Rows1(f), Kernel::Softmax { x, y, rows, cols } | Kernel::LogSoftmax { x, y, rows, cols }) => {
                let (x, y) = (host(x)?, host_mut(y)?);
                unsafe { f(x.as_ptr(), y.as_mut_ptr(), rows as u64, cols as u64) }
            }
            (
                Entry::Rows2(f),
                Kernel::SoftmaxBackward { y: a, dy: b, dx: y, rows, cols }
                | Kernel::LogSoftmaxBackward { y: a, dy: b, dx: y, rows, cols }
                | Kernel::BiasAdd { x: a, bias: b, y, rows, cols }
                | Kernel::BiasRelu { x: a, bias: b, y, rows, cols },
            ) => {
                let (a, b, y) = (host(a)?, host(b)?, host_mut(y)?);
                unsafe { f(a.as_ptr(), b.as_ptr(), y.as_mut_ptr(), rows as u64, cols as u64) }
            }
            (entry, _) => {
                return Err(Error::InvalidArgument {
                    op: op.name(),
                    why: format!("internal: a {op} launch reached a library function of another op ({entry:?})"),
                });
            }
        };
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header, from the source tree.
    fn header() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kernels/kernelab.h");
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn every_prototype_is_declared_in_the_header_word_for_word() {
        let header = header();
        let lines: Vec<&str> = header.lines().map(str::trim).collect();
        let declared: Vec<Op> = supported().collect();
        assert_eq!(declared.len(), 10);
        for op in declared {
            let (_, prototype) = prototype(op).unwrap();
            assert!(prototype.contains(&format!(" kernelab_{op}(")), "{prototype}");
            assert!(lines.contains(&prototype), "{} does not declare `{prototype}`", HEADER);
        }
        assert!(lines.contains(&format!("#define KERNELAB_ABI_VERSION {ABI_VERSION}").as_str()));
        assert!(lines.contains(&format!("int {VERSION_SYMBOL}(void);").as_str()));
        // Every kernelab_ function the header declares has a prototype here.
        let functions = lines.iter().filter(|l| l.starts_with("int kernelab_") && l.ends_with(");")).count();
        assert_eq!(functions, 11, "ten ops and the version");
    }

    #[test]
    fn the_gemm_struct_has_the_c_layout() {
        // struct kernelab_gemm { uint64_t m, n, k; uint32_t trans_a, trans_b; float alpha, beta; }
        assert_eq!((std::mem::size_of::<AbiGemm>(), std::mem::align_of::<AbiGemm>()), (40, 8));
        let g = AbiGemm::from(&Gemm::new(3, 5, 7).trans(false, true).scaled(0.5, -1.0));
        assert_eq!(g, AbiGemm { m: 3, n: 5, k: 7, trans_a: 0, trans_b: 1, alpha: 0.5, beta: -1.0 });
    }
}
