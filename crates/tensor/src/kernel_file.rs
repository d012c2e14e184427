//! Kernels from files: a researcher's WGSL shader, PTX module or shared library, read at run time
//! and run as one more variant of its op, beside the built-in ladder, with no Rust build.
//!
//! A file is named on the command line as `PATH[:ENTRY]`; its extension says which backend runs it
//! (`.wgsl` → wgpu, `.ptx` → cuda, `.so` → cpu). Its first lines may hold a header that says how
//! to launch it, in a comment of the file's own language:
//!
//! ```text
//! // kernelab: op=matmul entry=matmul_t32 tile=32x32
//! // kernelab: op=softmax rows=1 block=256
//! ```
//!
//! Keys: `op` (the op it implements; must be the one benchmarked), `entry` (the entry point or
//! symbol; `:ENTRY` on the command line wins), `tile=WxH` (matmul: the columns × rows of C one
//! workgroup or block writes), `items=N` (elementwise: elements per workgroup or block), `rows=N`
//! (row-wise: rows per workgroup or block), `block=X[xY]` (PTX: threads per block). What an op's
//! kernel receives (bindings, parameters, pointers) is the calling convention the built-in kernels
//! of that op use; `docs/kernels.md` writes each one down.

use std::path::{Path, PathBuf};

use crate::{BackendKind, Error, Op, OpFamily, Result};

/// What a kernel file holds, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A WGSL shader, compiled by wgpu.
    Wgsl,
    /// A PTX module, loaded by the CUDA driver.
    Ptx,
    /// A shared library exporting the op's C-ABI function, loaded by the CPU backend.
    SharedLibrary,
}

impl SourceKind {
    /// The kinds with the extension each is recognised by.
    pub const ALL: [(SourceKind, &'static str); 3] =
        [(SourceKind::Wgsl, "wgsl"), (SourceKind::Ptx, "ptx"), (SourceKind::SharedLibrary, "so")];

    /// The kind of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        Self::ALL.iter().find(|(_, e)| *e == ext).map(|(k, _)| *k).ok_or_else(|| Error::KernelFile {
            path: path.display().to_string(),
            why: format!(
                "the extension `.{ext}` names no kind of kernel; expected .wgsl (wgpu), .ptx (cuda) or .so (a CPU \
                 shared library)"
            ),
        })
    }

    /// The backend that runs kernels of this kind.
    pub const fn backend(self) -> BackendKind {
        match self {
            SourceKind::Wgsl => BackendKind::Wgpu,
            SourceKind::Ptx => BackendKind::Cuda,
            SourceKind::SharedLibrary => BackendKind::Cpu,
        }
    }

    /// Whether the file is text whose header lines are read.
    const fn is_text(self) -> bool {
        !matches!(self, SourceKind::SharedLibrary)
    }
}

/// How a file's kernel is launched, as its header or the defaults say. Which fields a backend
/// reads depends on the op's family and the backend: a CPU library launches itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Geometry {
    /// Matmul: the columns × rows of C one workgroup or block writes (`tile=WxH`).
    pub tile: Option<(u32, u32)>,
    /// Elementwise: elements per workgroup or block (`items=N`).
    pub items: Option<u32>,
    /// Row-wise: rows per workgroup or block (`rows=N`).
    pub rows: Option<u32>,
    /// CUDA: threads per block (`block=X` or `block=XxY`).
    pub block: Option<(u32, u32)>,
}

impl Geometry {
    /// Workgroups or blocks along x and y for a launch of `op` over `dims` (`[m, n, k]` for
    /// matmul, `[rows, cols]` for row-wise ops, `[len]` for elementwise ones); `None` when the
    /// geometry lacks what the op's family needs (checked when the file is opened).
    pub fn groups(&self, op: Op, dims: &[usize]) -> Option<(usize, usize)> {
        match (op.family(), dims) {
            (OpFamily::Matmul, [m, n, _]) => {
                let (w, h) = self.tile?;
                Some((n.div_ceil(w as usize), m.div_ceil(h as usize)))
            }
            (OpFamily::Rowwise, [rows, ..]) => Some((rows.div_ceil(self.rows? as usize), 1)),
            (OpFamily::Elementwise, [len, ..]) => Some((len.div_ceil(self.items? as usize), 1)),
            _ => None,
        }
    }
}

/// A provenance a row carries: the file and the SHA-256 of its bytes (`sha256sum` prints the same).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceRef {
    pub path: String,
    pub sha256: String,
}

/// A kernel file, read and its header parsed; a backend of its kind loads it
/// ([`Backend::load_kernel`](crate::Backend::load_kernel)).
#[derive(Clone, Debug)]
pub struct KernelFile {
    pub path: PathBuf,
    pub kind: SourceKind,
    /// The op it implements.
    pub op: Op,
    /// The entry point or symbol: `:ENTRY`, else the header's `entry=`; `None` lets the backend
    /// take the file's only entry point (WGSL, PTX) or `kernelab_<op>` (a library).
    pub entry: Option<String>,
    /// The file's bytes as read.
    pub bytes: Vec<u8>,
    pub source: SourceRef,
    pub geometry: Geometry,
    /// The row's variant name: the file's name, and `:ENTRY` when one was given.
    pub name: &'static str,
}

impl KernelFile {
    /// Reads `spec` (`PATH` or `PATH:ENTRY`) as a kernel of `op`: the file must exist, have a
    /// known extension, and its header (if any) must name `op` and hold the geometry `op` needs
    /// (filled with the built-in kernels' defaults where one exists).
    pub fn open(spec: &str, op: Op) -> Result<Self> {
        let (path, entry) = split_entry(spec);
        let path = PathBuf::from(path);
        let shown = path.display().to_string();
        let fail = |why: String| Error::KernelFile { path: shown.clone(), why };
        let kind = SourceKind::of(&path)?;
        let bytes = std::fs::read(&path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let header = if kind.is_text() {
            let text = std::str::from_utf8(&bytes).map_err(|e| fail(format!("is not UTF-8 text: {e}")))?;
            Header::parse(text).map_err(fail)?
        } else {
            Header::default()
        };
        if let Some(declared) = header.op.as_ref().filter(|d| *d != op.name()) {
            let hint = match declared.parse::<Op>() {
                Ok(_) => format!("run it with --op {declared}"),
                Err(_) => format!("`{declared}` is no op (`kernelab list` names them)"),
            };
            return Err(fail(format!("its header says op={declared}, but it is benchmarked as {op}; {hint}")));
        }
        let geometry = header.geometry.with_defaults(op);
        if kind != SourceKind::SharedLibrary && geometry.groups(op, &sample_dims(op)).is_none() {
            return Err(fail(format!(
                "a {op} kernel must say how many workgroups cover its output: add a header line `// kernelab: \
                 op={op} {}",
                match op.family() {
                    OpFamily::Matmul => "tile=WxH` (the columns × rows of C one workgroup writes)",
                    OpFamily::Rowwise => "rows=N` (rows per workgroup)",
                    OpFamily::Elementwise => "items=N` (elements per workgroup)",
                }
            )));
        }
        let entry = entry.map(str::to_string).or(header.entry);
        let name = match &entry {
            Some(e) if spec.ends_with(&format!(":{e}")) => format!("{}:{e}", file_name(&path)),
            _ => file_name(&path),
        };
        let sha256 = sha256_hex(&bytes);
        Ok(Self {
            source: SourceRef { path: shown, sha256 },
            path,
            kind,
            op,
            entry,
            bytes,
            geometry,
            name: Box::leak(name.into_boxed_str()),
        })
    }

    /// The path and the entry point of a `PATH[:ENTRY]` spec (a colon inside a directory name
    /// stays in the path).
    pub fn split(spec: &str) -> (&str, Option<&str>) {
        split_entry(spec)
    }

    /// The file's text (WGSL, PTX); an error for a library.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.bytes).map_err(|e| self.error(format!("is not UTF-8 text: {e}")))
    }

    /// An error about this file.
    pub fn error(&self, why: impl Into<String>) -> Error {
        Error::KernelFile { path: self.source.path.clone(), why: why.into() }
    }
}

/// `PATH:ENTRY` → (`PATH`, `Some(ENTRY)`); a colon that is part of the path (no known extension
/// before it) stays in the path.
fn split_entry(spec: &str) -> (&str, Option<&str>) {
    if let Some((path, entry)) = spec.rsplit_once(':') {
        let known = SourceKind::ALL.iter().any(|(_, ext)| path.ends_with(&format!(".{ext}")));
        if known && !entry.is_empty() && !entry.contains('/') {
            return (path, Some(entry));
        }
    }
    (spec, None)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// A shape of each family, to check that a geometry covers something.
fn sample_dims(op: Op) -> Vec<usize> {
    match op.family() {
        OpFamily::Matmul => vec![1, 1, 1],
        OpFamily::Rowwise => vec![1, 1],
        OpFamily::Elementwise => vec![1],
    }
}

impl Geometry {
    /// The built-in kernels' geometry where the header leaves one out: 256 elements per group for
    /// elementwise ops and one row per group for row-wise ones (matmul has no default: a tile is
    /// the kernel's own choice).
    fn with_defaults(self, op: Op) -> Self {
        match op.family() {
            OpFamily::Elementwise => Self { items: self.items.or(Some(256)), ..self },
            OpFamily::Rowwise => Self { rows: self.rows.or(Some(1)), ..self },
            OpFamily::Matmul => self,
        }
    }
}

/// The `kernelab:` header lines of a text file.
#[derive(Debug, Default)]
struct Header {
    op: Option<String>,
    entry: Option<String>,
    geometry: Geometry,
}

impl Header {
    /// Reads every line of the form `// kernelab: key=value …` (before the first line that is
    /// neither blank nor a comment); an unknown key or a malformed value is an error.
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut header = Header::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some(comment) = line.strip_prefix("//") else { break };
            let Some(fields) = comment.trim().strip_prefix("kernelab:") else { continue };
            for field in fields.split_whitespace() {
                let at = format!("line {}: `{field}`", number + 1);
                let (key, value) = field.split_once('=').ok_or_else(|| format!("{at}: expected key=value"))?;
                let g = &mut header.geometry;
                match key {
                    "op" => header.op = Some(value.to_string()),
                    "entry" => header.entry = Some(value.to_string()),
                    "tile" => g.tile = Some(pair(value).ok_or_else(|| format!("{at}: expected tile=WxH"))?),
                    "block" => g.block = Some(pair(value).ok_or_else(|| format!("{at}: expected block=X or XxY"))?),
                    "items" => g.items = Some(positive(value).ok_or_else(|| format!("{at}: expected items=N"))?),
                    "rows" => g.rows = Some(positive(value).ok_or_else(|| format!("{at}: expected rows=N"))?),
                    _ => return Err(format!("{at}: unknown key; known: op, entry, tile, items, rows, block")),
                }
            }
        }
        Ok(header)
    }
}

/// A positive 32-bit count.
fn positive(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|&v| v > 0)
}

/// `WxH` (or `W`, meaning `Wx1`), both positive.
fn pair(text: &str) -> Option<(u32, u32)> {
    match text.split_once('x') {
        Some((w, h)) => Some((positive(w)?, positive(h)?)),
        None => Some((positive(text)?, 1)),
    }
}

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn header_entry_and_geometry_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "t32.wgsl", "// kernelab: op=matmul tile=32x16\n// kernelab: entry=mm\nfn x() {}\n");
        let file = KernelFile::open(&path, Op::Matmul).unwrap();
        assert_eq!(file.kind, SourceKind::Wgsl);
        assert_eq!(file.entry.as_deref(), Some("mm"));
        assert_eq!(file.geometry.tile, Some((32, 16)));
        assert_eq!(file.name, "t32.wgsl");
        assert_eq!(file.geometry.groups(Op::Matmul, &[33, 65, 7]), Some((3, 3)));
        let named = KernelFile::open(&format!("{path}:other"), Op::Matmul).unwrap();
        assert_eq!((named.entry.as_deref(), named.name), (Some("other"), "t32.wgsl:other"));
    }

    #[test]
    fn defaults_fill_elementwise_and_rowwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "s.wgsl", "fn x() {}\n");
        assert_eq!(KernelFile::open(&path, Op::Softmax).unwrap().geometry.rows, Some(1));
        assert_eq!(KernelFile::open(&path, Op::Relu).unwrap().geometry.items, Some(256));
    }

    #[test]
    fn the_hash_is_sha256_of_the_bytes() {
        // `printf abc | sha256sum`.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.wgsl").display().to_string();
        let err = |spec: &str, op| KernelFile::open(spec, op).unwrap_err().to_string();
        assert!(err(&missing, Op::Matmul).contains("cannot read it"));
        let txt = write(&dir, "k.txt", "");
        assert!(err(&txt, Op::Matmul).contains("expected .wgsl (wgpu), .ptx (cuda) or .so"));
        let no_tile = write(&dir, "m.wgsl", "fn x() {}\n");
        assert!(err(&no_tile, Op::Matmul).contains("tile=WxH"));
        let wrong_op = write(&dir, "w.wgsl", "// kernelab: op=softmax\n");
        assert!(err(&wrong_op, Op::Matmul).contains("run it with --op softmax"));
        let bad = write(&dir, "b.wgsl", "// kernelab: op=matmul tile=0x4\n");
        assert!(err(&bad, Op::Matmul).contains("expected tile=WxH"));
        let unknown = write(&dir, "u.wgsl", "// kernelab: tiles=4x4\n");
        assert!(err(&unknown, Op::Matmul).contains("unknown key"));
    }

    #[test]
    fn a_colon_in_a_directory_stays_in_the_path() {
        assert_eq!(split_entry("a:b/k.wgsl"), ("a:b/k.wgsl", None));
        assert_eq!(split_entry("dir/k.ptx:matmul_x"), ("dir/k.ptx", Some("matmul_x")));
    }
}
