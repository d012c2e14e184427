//! CPU kernels from shared libraries (`--kernel my.so`): a researcher's C, Rust or any other
//! kernel, compiled on its own, loaded at run time and run as one more variant of its op.
//!
//! A library exports `kernelab_abi_version` and a function per op it implements, with the
//! signature [`abi`] lists and `examples/kernels/kernelab.h` writes down for C. Loading it:
//!
//! 1. the op must have a C function ([`abi::prototype`]);
//! 2. the file's bytes (those [`KernelFile`] hashed) are written to a private copy named by their
//!    hash, and that copy is loaded with every symbol bound now (`RTLD_NOW`): the code that runs
//!    is the code the report's SHA-256 names, even when the file is rebuilt in place (the loader
//!    would otherwise hand back the library it already has under that path);
//! 3. `kernelab_abi_version()` must return [`abi::ABI_VERSION`];
//! 4. the function (`:ENTRY`, else `kernelab_<op>`) must be there; if not, the error lists the
//!    `kernelab_` functions the library exports.
//!
//! Libraries are never unloaded: a kernel's code must stay mapped as long as the variant can be
//! launched (for the process's life, since variant names are `&'static`), and a misbehaving one
//! may still have a thread running in it.

pub mod abi;
mod elf;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use kernelab_tensor::{Error, Kernel, KernelFile, Op, Result, Variant};

use abi::Entry;

/// One loaded kernel: a variant of one op.
#[derive(Debug)]
pub struct Loaded {
    op: Op,
    variant: Variant,
    /// The SHA-256 of the library's bytes and the symbol: the same pair loads as the same variant.
    sha256: String,
    symbol: String,
    path: String,
    entry: Entry,
}

/// The libraries a CPU device has loaded, and their kernels.
#[derive(Debug, Default)]
pub struct Libraries {
    /// Every loaded kernel, in load order. Read on launches, written on loads.
    loaded: RwLock<Vec<Arc<Loaded>>>,
    /// The private copies, one per distinct library, and the folder that holds them.
    copies: Mutex<Copies>,
}

#[derive(Debug, Default)]
struct Copies {
    dir: Option<tempfile::TempDir>,
    /// `(sha256, library)`: each distinct library is loaded once, whatever ops it serves.
    libraries: Vec<(String, &'static libloading::Library)>,
}

impl Libraries {
    /// Loads `file`'s kernel for `file.op` (see the module's steps); the same library and symbol
    /// again give the same variant, another file of the same name a name with `#2`, `#3`, ….
    pub fn load(&self, file: &KernelFile) -> Result<Variant> {
        let op = file.op;
        let Some((signature, prototype)) = abi::prototype(op) else {
            let ops: Vec<&str> = abi::supported().map(Op::name).collect();
            return Err(file.error(format!(
                "a CPU library cannot implement {op}: it has no C function in {} yet; the ops that have one: {}",
                abi::HEADER,
                ops.join(", ")
            )));
        };
        let symbol = file.entry.clone().unwrap_or_else(|| format!("kernelab_{op}"));
        let sha256 = file.source.sha256.clone();
        if let Some(same) = self.read().iter().find(|l| l.op == op && l.sha256 == sha256 && l.symbol == symbol) {
            return Ok(same.variant.clone());
        }
        let library = self.library(file)?;
        // SAFETY: the ABI gives the symbol its op's signature (see `Entry::find`).
        let entry = unsafe { Entry::find(library, &symbol, signature) }.ok_or_else(|| {
            file.error(format!(
                "it exports no function `{symbol}`; expected `{prototype}` (see {}){}",
                abi::HEADER,
                exported(&file.bytes)
            ))
        })?;
        let mut loaded = self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(same) = loaded.iter().find(|l| l.op == op && l.sha256 == sha256 && l.symbol == symbol) {
            return Ok(same.variant.clone()); // loaded meanwhile by another thread
        }
        let name = unique_name(file.name, |name| loaded.iter().any(|l| l.op == op && l.variant.name == name));
        let summary = format!("{symbol} from a shared library (C ABI {})", abi::ABI_VERSION);
        let variant = Variant { name, ..Variant::from_file(file, Box::leak(summary.into_boxed_str())) };
        loaded.push(Arc::new(Loaded {
            op,
            variant: variant.clone(),
            sha256,
            symbol,
            path: file.source.path.clone(),
            entry,
        }));
        Ok(variant)
    }

    /// The loaded variants of `op`, in load order.
    pub fn variants(&self, op: Op) -> Vec<Variant> {
        self.read().iter().filter(|l| l.op == op).map(|l| l.variant.clone()).collect()
    }

    /// The loaded variant `name` of `op`; `None` when no loaded variant has that name.
    pub fn find(&self, op: Op, name: &str) -> Option<Arc<Loaded>> {
        self.read().iter().find(|l| l.op == op && l.variant.name == name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Loaded>>> {
        self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The library `file` holds, loaded from a private copy of its bytes (once per distinct
    /// library) and its ABI version checked.
    fn library(&self, file: &KernelFile) -> Result<&'static libloading::Library> {
        let mut copies = self.copies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sha256 = &file.source.sha256;
        if let Some((_, library)) = copies.libraries.iter().find(|(sha, _)| sha == sha256) {
            return Ok(library);
        }
        let copy = copies.write(file)?;
        let library = open(&copy).map_err(|e| {
            let message = e.to_string().replace(&copy.display().to_string(), &file.source.path);
            file.error(format!("the loader cannot load it: {message}"))
        })?;
        check_version(file, &library)?;
        // Never unloaded (see the module's notes).
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        copies.libraries.push((sha256.clone(), library));
        Ok(library)
    }
}

impl Loaded {
    /// Runs the kernel on `kernel`'s buffers, on the calling thread (a launch with nothing to
    /// write makes no call); a non-zero return is an error that names the function, the file and
    /// the value.
    pub fn launch(&self, kernel: Kernel<'_>) -> Result<()> {
        if kernel.work() == 0 {
            return Ok(());
        }
        match self.entry.call(kernel)? {
            0 => Ok(()),
            code => Err(Error::KernelFile {
                path: self.path.clone(),
                why: format!("{}() returned {code}: the kernel reports that it failed", self.symbol),
            }),
        }
    }
}

/// The environment variable naming the folder the private copies go in (default: the system's
/// temporary folder).
pub const COPIES_IN: &str = "KERNELAB_KERNEL_COPIES";

impl Copies {
    /// Writes `file`'s bytes to `<hash>-<name>` in this device's private folder.
    fn write(&mut self, file: &KernelFile) -> Result<PathBuf> {
        let fail = |e: std::io::Error| file.error(format!("cannot make the private copy it is loaded from: {e}"));
        let dir = match &mut self.dir {
            Some(dir) => dir,
            empty => {
                // In a child process that runs kernels, the parent names a folder it removes
                // after the child ends, however it ends (a crash leaves nothing behind).
                let base = std::env::var_os(COPIES_IN).map_or_else(std::env::temp_dir, PathBuf::from);
                let made = tempfile::Builder::new().prefix("kernelab-cpu-kernels-").tempdir_in(base).map_err(fail)?;
                empty.insert(made)
            }
        };
        let short = file.source.sha256.get(..16).unwrap_or(&file.source.sha256);
        let name = file.path.file_name().map_or_else(|| "kernel.so".into(), |n| n.to_string_lossy().into_owned());
        let copy = dir.path().join(format!("{short}-{name}"));
        std::fs::write(&copy, &file.bytes).map_err(fail)?;
        Ok(copy)
    }
}

/// Loads the library at `path` with every symbol bound now, so that a missing dependency or
/// symbol is the loader's error here and not a crash at the first call.
fn open(path: &Path) -> std::result::Result<libloading::Library, libloading::Error> {
    // SAFETY: loading runs the library's initializers: the user's own code, which they asked to
    // run (as its kernels will be). Nothing else of this process is handed to it.
    #[cfg(unix)]
    unsafe {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        Library::open(Some(path), RTLD_NOW | RTLD_LOCAL).map(Into::into)
    }
    #[cfg(not(unix))]
    unsafe {
        libloading::Library::new(path)
    }
}

/// `kernelab_abi_version()` must be exported and return [`abi::ABI_VERSION`].
fn check_version(file: &KernelFile, library: &libloading::Library) -> Result<()> {
    let expected = format!(
        "`int {}(void) {{ return KERNELAB_ABI_VERSION; }}` ({} defines it as {})",
        abi::VERSION_SYMBOL,
        abi::HEADER,
        abi::ABI_VERSION
    );
    // SAFETY: the ABI declares `int kernelab_abi_version(void)`; calling it runs the user's code.
    let version = unsafe { library.get::<abi::VersionFn>(abi::VERSION_SYMBOL.as_bytes()).map(|f| f()) };
    match version {
        Ok(abi::ABI_VERSION) => Ok(()),
        Ok(other) => Err(file.error(format!(
            "its {}() returns {other}; this kernelab speaks ABI {}: rebuild it against {}",
            abi::VERSION_SYMBOL,
            abi::ABI_VERSION,
            abi::HEADER
        ))),
        Err(_) => Err(file.error(format!(
            "it exports no {}, so it is not a kernelab kernel library; define {expected}{}",
            abi::VERSION_SYMBOL,
            exported(&file.bytes)
        ))),
    }
}

/// `"; the kernelab_ functions it exports: …"` (or that it exports none), when the library's
/// symbol table reads; empty otherwise.
fn exported(bytes: &[u8]) -> String {
    let Some(functions) = elf::exported_functions(bytes) else { return String::new() };
    let ours: Vec<String> = functions.into_iter().filter(|f| f.starts_with("kernelab_")).collect();
    if ours.is_empty() {
        "; it exports no kernelab_ functions".into()
    } else {
        format!("; the kernelab_ functions it exports: {}", ours.join(", "))
    }
}

/// `base`, or `base#2`, `base#3`, … — the first that `taken` refuses — as a `'static` name.
fn unique_name(base: &'static str, taken: impl Fn(&str) -> bool) -> &'static str {
    if !taken(base) {
        return base;
    }
    let name = (2..).map(|n| format!("{base}#{n}")).find(|name| !taken(name)).unwrap_or_default();
    Box::leak(name.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_gets_the_next_free_number() {
        assert_eq!(unique_name("k.so", |_| false), "k.so");
        assert_eq!(unique_name("k.so", |n| n == "k.so"), "k.so#2");
        assert_eq!(unique_name("k.so", |n| ["k.so", "k.so#2"].contains(&n)), "k.so#3");
    }
}
