//! What the tests share: the repository's PTX files, found by entry name (never by file name:
//! the matmul rungs move between files), launching with typed arguments, and f64 references.

#![allow(dead_code)]

pub mod cases;

use std::path::{Path, PathBuf};

use kernelab_ptx_emu::{Fault, Launch, Memory, Module};

/// The repository root (two levels above this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ptx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            ptx_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "ptx") {
            out.push(p);
        }
    }
}

/// Every `.ptx` under `kernels/` (recursively) and `examples/kernels/ptx/`.
pub fn all_ptx() -> Vec<PathBuf> {
    let mut out = Vec::new();
    ptx_files(&root().join("kernels"), &mut out);
    ptx_files(&root().join("examples/kernels/ptx"), &mut out);
    out
}

/// The text of the file under `kernels/` that defines the entry `name`.
pub fn source_of(name: &str) -> String {
    let mut files = Vec::new();
    ptx_files(&root().join("kernels"), &mut files);
    ptx_files(&root().join("examples/kernels/ptx"), &mut files);
    let needle = format!(".entry {name}(");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        if text.contains(&needle) {
            return text;
        }
    }
    panic!("no .ptx file under kernels/ defines the entry `{name}`");
}

/// A kernel argument.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    Ptr(u64),
    U32(u32),
    F32(f32),
}

impl Arg {
    fn bytes(self) -> Vec<u8> {
        match self {
            Arg::Ptr(p) => p.to_le_bytes().to_vec(),
            Arg::U32(v) => v.to_le_bytes().to_vec(),
            Arg::F32(v) => v.to_le_bytes().to_vec(),
        }
    }
}

/// Runs the entry `name` of `text` with `args`.
pub fn run(
    text: &str,
    name: &str,
    grid: [u32; 3],
    block: [u32; 3],
    args: &[Arg],
    mem: &mut Memory,
    sanitize: bool,
) -> Result<(), Fault> {
    let module = Module::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let kernel = module.kernel(name).unwrap_or_else(|| panic!("no entry {name}"));
    let bytes: Vec<Vec<u8>> = args.iter().map(|a| a.bytes()).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    let launch = Launch { grid, block, dynamic_shared_bytes: 0, sanitize };
    kernelab_ptx_emu::launch(kernel, &launch, &refs, mem)
}

pub fn upload(mem: &mut Memory, v: &[f32]) -> u64 {
    let p = mem.alloc(v.len() * 4).unwrap();
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    mem.write(p, &bytes).unwrap();
    p
}

pub fn download(mem: &Memory, p: u64, n: usize) -> Vec<f32> {
    let mut bytes = vec![0u8; n * 4];
    mem.read(p, &mut bytes).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// A small deterministic generator (xorshift) of values in [lo, hi).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| lo + (hi - lo) * self.next() as f32).collect()
    }
}

/// The first index where `got` is not within `tol·(1 + |want|)` of `want` (NaN never is).
pub fn first_wrong(got: &[f32], want: &[f64], tol: f64) -> Option<(usize, f32, f64)> {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).enumerate().find_map(|(i, (&g, &w))| {
        let ok = (g as f64 - w).abs() <= tol * (1.0 + w.abs());
        (!ok).then_some((i, g, w))
    })
}
