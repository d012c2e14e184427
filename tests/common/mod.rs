//! Helpers shared by the integration tests that run the `kernelab` binary.
#![allow(dead_code)]

pub mod cc;
pub mod students;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `kernelab ARGS`.
pub fn kernelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernelab")).args(args).output().expect("the kernelab binary runs")
}

/// `bench --backend cpu --op OP --shape SHAPE` and then `rest`, as an argument list.
pub fn cpu_bench<'a>(op: &'a str, shape: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["bench", "--backend", "cpu", "--op", op, "--shape", shape];
    args.extend_from_slice(rest);
    args
}

/// Stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `kernelab ARGS`, insists on success; returns (stdout, stderr).
pub fn ok(args: &[&str]) -> (String, String) {
    let out = kernelab(args);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "kernelab {args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Runs `kernelab ARGS`, insists on exit status `code` and a message containing `message`, and
/// on no panic.
pub fn fails_with(args: &[&str], code: i32, message: &str) {
    let out = kernelab(args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
    assert!(all.contains(message), "{args:?} does not say `{message}`:\n{all}");
    assert!(!all.contains("panicked"), "{args:?} panicked:\n{all}");
}

/// A small MNIST-format folder of 2×2 images in 3 classes, the class readable from the pixels.
pub fn tiny_mnist(dir: &Path) -> PathBuf {
    write_mnist(dir, 96, (2, 2));
    dir.to_path_buf()
}

/// `n` images of `rows × cols` pixels, for both splits.
pub fn write_mnist(dir: &Path, n: usize, (rows, cols): (usize, usize)) {
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let pixels: Vec<u8> =
        labels.iter().flat_map(|&l| (0..rows * cols).map(move |p| if p == l as usize { 250 } else { 20 })).collect();
    for (images, label_file) in
        [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        kernelab::nn::idx::write(&dir.join(images), &[n, rows, cols], &pixels).unwrap();
        kernelab::nn::idx::write(&dir.join(label_file), &[n], &labels).unwrap();
    }
}

/// A device of `kind` (a GPU, the emulated CUDA device, lavapipe), or none where it does not
/// open, said on stderr; where `KERNELAB_REQUIRE` names the backend, not opening fails the test.
pub fn open_or_skip(kind: kernelab::BackendKind) -> Option<kernelab::Device> {
    match kernelab::backends::open(kind) {
        Ok(d) => Some(d),
        Err(e) if kind.is_required() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Whether the CUDA backend is available to the binary, and whether it is the emulated device
/// (`crates/cuda-emu`): `None` where it is unavailable, after insisting that `KERNELAB_REQUIRE`
/// does not name cuda.
pub fn cuda_here() -> Option<bool> {
    let devices = text(&kernelab(&["devices"]));
    let line = devices.lines().find(|l| l.starts_with("cuda")).unwrap_or_default().to_string();
    if line.contains("unavailable") || line.is_empty() {
        assert!(!kernelab::BackendKind::Cuda.is_required(), "KERNELAB_REQUIRE names cuda: {line}");
        return None;
    }
    Some(line.contains("emulated (PTX interpreter"))
}
