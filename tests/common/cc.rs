//! Building CPU kernel libraries for tests: the C examples (`examples/kernels/c/`), the fixtures
//! (`tests/kernels/c/`, honest and cheating ones) and the Rust example, each into a folder of the
//! test's own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/kernels/c/NAME.c`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples/kernels/c").join(format!("{name}.c"))
}

/// `tests/kernels/c/NAME.c`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/kernels/c").join(format!("{name}.c"))
}

/// Compiles the C file `source` with the system's `cc` into `dir/NAME.so` (`NAME` the source's
/// stem) with `flags` added, as the examples' comments say (without `-march=native`, so that
/// the library runs wherever the test does); `kernelab.h` and the fixtures' `honest.h` are on
/// the include path.
pub fn shared_library(source: &Path, dir: &Path, flags: &[&str]) -> PathBuf {
    let stem = source.file_stem().expect("a source file name").to_string_lossy();
    let out = dir.join(format!("{stem}.so"));
    let status = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-pthread"])
        .args(flags)
        .arg("-I")
        .arg(root().join("examples/kernels"))
        .arg("-I")
        .arg(root().join("tests/kernels/c"))
        .arg("-o")
        .arg(&out)
        .arg(source)
        .arg("-lm")
        .status()
        .expect("the C compiler `cc` runs (apt-get install gcc)");
    assert!(status.success(), "cc failed on {}", source.display());
    out
}

/// Builds the Rust example `examples/kernels/rust-softmax` (a `cdylib` with no dependencies) from
/// a copy in `dir`, so that the source tree stays as it is; returns the library's path.
pub fn rust_softmax(dir: &Path) -> PathBuf {
    let project = dir.join("rust-softmax");
    let from = root().join("examples/kernels/rust-softmax");
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs"] {
        std::fs::create_dir_all(project.join(file).parent().expect("a folder")).expect("a folder in the temp dir");
        std::fs::copy(from.join(file), project.join(file)).expect("the example's files copy");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--offline", "--quiet"])
        .current_dir(&project)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the Rust example does not build");
    project.join("target/release/libkernelab_rust_softmax.so")
}
