//! PTX files loaded at run time (`--kernel file.ptx`), checked without a GPU: the entry point
//! exists, and its parameters are the op's calling convention, which is the built-in kernel's
//! parameter list (`matmul_tiled` for matmul, the entry named after the op for every other op).
//!
//! The driver's JIT still has the last word on the text where there is a device; these checks
//! catch what it would not name well (a missing entry, a parameter list of another op) and run
//! everywhere.

use kernelab_tensor::{KernelFile, Op, OpFamily, Result, Variant};

use crate::ptx::{self, MATMUL_TILED, ParamType, PtxModule};
use crate::variants::{CudaKernel, Entry, Grid, PtxKernel};

/// A PTX file that passed the checks: its text as a module, the entry point to launch and the
/// threads per block its header declares.
#[derive(Clone, Copy, Debug)]
pub struct CheckedPtx {
    pub module: PtxModule,
    pub entry: &'static str,
    pub block: (u32, u32),
}

/// The built-in module and entry point whose parameter list is `op`'s calling convention:
/// `matmul_tiled` for matmul, `narrow_bf16` and `widen_bf16` for the conversions, else the entry
/// named after the op, in whichever module holds it.
pub fn convention(op: Op) -> (PtxModule, &'static str) {
    let entry = match op {
        Op::Matmul => "matmul_tiled",
        Op::Narrow => "narrow_bf16",
        Op::Widen => "widen_bf16",
        _ => op.name(),
    };
    let module = ptx::module_of(entry).unwrap_or(MATMUL_TILED);
    (module, entry)
}

/// Checks `file` (a `.ptx` of `file.op`): the entry point (`file.entry`, else the file's only
/// one), its parameter types against the op's convention, and a `block=` in its header.
pub fn check(file: &KernelFile) -> Result<CheckedPtx> {
    let text: &'static str = Box::leak(file.text()?.to_string().into_boxed_str());
    let name: &'static str = Box::leak(file.source.path.clone().into_boxed_str());
    let module = PtxModule { file: name, source: text };
    // Entry points and parameters are read from the text without its comments, and `.entry`
    // without `.visible` counts too (the driver takes both).
    let plain: &'static str = Box::leak(normalized(text).into_boxed_str());
    let readable = PtxModule { file: name, source: plain };
    let entries = ptx::entries(readable);
    let entry = match (&file.entry, entries.as_slice()) {
        (Some(wanted), _) => entries.iter().copied().find(|e| e == wanted).ok_or_else(|| {
            file.error(format!("has no `.visible .entry {wanted}`; its entry points: {}", listed(&entries)))
        })?,
        (None, [only]) => *only,
        (None, []) => return Err(file.error("has no `.visible .entry`: it holds no kernel")),
        (None, many) => {
            return Err(file.error(format!(
                "has {} entry points ({}); name one as {}:ENTRY or with `// kernelab: entry=NAME`",
                many.len(),
                listed(many),
                file.source.path
            )));
        }
    };
    let (builtin, builtin_entry) = convention(file.op);
    let want = ptx::entry_params(builtin, builtin_entry).unwrap_or_default();
    let have = ptx::entry_params(readable, entry).ok_or_else(|| {
        file.error(format!("the parameters of `{entry}` are not all .u64, .u32 or .f32 (the types kernelab passes)"))
    })?;
    if have != want {
        return Err(file.error(format!(
            "`{entry}` takes ({}), but a {} kernel takes ({}), as the built-in `{builtin_entry}` does",
            types(&have),
            file.op,
            types(&want)
        )));
    }
    let block = file.geometry.block.ok_or_else(|| {
        file.error("a PTX kernel must say its threads per block: add `// kernelab: block=X` or `block=XxY`")
    })?;
    if u64::from(block.0) * u64::from(block.1) > 1024 {
        return Err(file.error(format!("block={}x{} is over CUDA's 1024 threads per block", block.0, block.1)));
    }
    Ok(CheckedPtx { module, entry, block })
}

/// Adds the checked file to `loaded` (the device's loaded kernels) and returns its variant: run
/// like a built-in kernel of its op, with the file's module and entry point, the grid its
/// header's geometry gives and its block. The same file loaded again (same bytes and entry) is
/// the variant it already is; another file of the same name gets `name#2`, `name#3`, ….
pub fn register(loaded: &mut Vec<Entry>, file: &KernelFile, checked: CheckedPtx) -> Result<Variant> {
    let g = file.geometry;
    let missing = |what: &str| file.error(format!("its header lacks the {what} a {} kernel needs", file.op));
    let grid = match file.op.family() {
        OpFamily::Matmul => Grid::Tiles { tile: g.tile.ok_or_else(|| missing("tile=WxH"))?, rows_along_x: false },
        OpFamily::Rowwise if file.op == Op::ColSum => {
            Grid::Columns { per_block: g.rows.ok_or_else(|| missing("rows=N"))? }
        }
        OpFamily::Rowwise => Grid::Rows { per_block: g.rows.ok_or_else(|| missing("rows=N"))? },
        OpFamily::Elementwise => Grid::Elements { per_block: g.items.ok_or_else(|| missing("items=N"))? },
    };
    let same = |e: &&Entry| {
        e.variant.source.as_ref() == Some(&file.source)
            && matches!(e.kernel, CudaKernel::Ptx(k) if k.entry == checked.entry && k.op == file.op)
    };
    if let Some(existing) = loaded.iter().find(same) {
        return Ok(existing.variant.clone());
    }
    let taken = |name: &str| loaded.iter().any(|e| e.variant.name == name);
    let name: &'static str = match (2..).map(|i| format!("{}#{i}", file.name)).find(|n| !taken(n)) {
        Some(other) if taken(file.name) => Box::leak(other.into_boxed_str()),
        _ => file.name,
    };
    let kernel = PtxKernel {
        op: file.op,
        variant: name,
        module: checked.module,
        entry: checked.entry,
        grid,
        block: checked.block,
        summary: "a PTX kernel loaded from a file",
    };
    let variant = Variant { name, ..Variant::from_file(file, kernel.summary) };
    loaded.push(Entry { variant: variant.clone(), kernel: CudaKernel::Ptx(kernel) });
    Ok(variant)
}

/// `text` without its `//` and `/* */` comments, each `.entry` line read as `.visible .entry`.
fn normalized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |end| &rest[l + end..]);
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                out.push(' ');
                rest = rest[b + 2..].find("*/").map_or("", |end| &rest[b + 2 + end + 2..]);
            }
            _ => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out.lines()
        .map(|l| match l.trim_start().strip_prefix(".entry ") {
            Some(after) => format!(".visible .entry {after}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn listed(entries: &[&str]) -> String {
    if entries.is_empty() { "none".into() } else { entries.join(", ") }
}

fn types(params: &[ParamType]) -> String {
    params
        .iter()
        .map(|p| match p {
            ParamType::U64 => ".u64",
            ParamType::U32 => ".u32",
            ParamType::F32 => ".f32",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptx::ROWWISE;

    /// A file holding the built-in `matmul_tiled` under another name, with `header` on top.
    fn write(dir: &tempfile::TempDir, name: &str, header: &str, body: &str) -> KernelFile {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{header}\n{body}")).unwrap();
        KernelFile::open(&path.display().to_string(), Op::Matmul).unwrap()
    }

    fn tiled_as(name: &str) -> String {
        MATMUL_TILED.source.replace(".visible .entry matmul_tiled(", &format!(".visible .entry {name}("))
    }

    #[test]
    fn every_op_has_a_convention_in_the_builtin_ptx() {
        for op in Op::ALL {
            let (module, entry) = convention(op);
            assert!(ptx::entry_params(module, entry).is_some_and(|p| !p.is_empty()), "{op}: {entry}");
        }
    }

    #[test]
    fn a_file_with_the_convention_passes_and_names_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let only = "// kernelab: op=matmul tile=16x16 block=16x16";
        let two = format!("{}\n{}", tiled_as("my_mm"), tiled_as("my_other"));
        let file = write(&dir, "mine.ptx", only, &two);
        // The file has two entries, so it must name one.
        let err = check(&file).unwrap_err().to_string();
        assert!(err.contains("has 2 entry points (my_mm, my_other)"), "{err}");
        let named = write(&dir, "mine.ptx", &format!("{only} entry=my_mm"), &two);
        let checked = check(&named).unwrap();
        assert_eq!((checked.entry, checked.block), ("my_mm", (16, 16)));
    }

    #[test]
    fn a_loaded_file_is_an_entry_with_its_geometry_once_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let head = "// kernelab: op=matmul tile=32x8 block=16x16 entry=my_mm";
        let file = write(&dir, "mine.ptx", head, &tiled_as("my_mm"));
        let mut loaded = Vec::new();
        let v = register(&mut loaded, &file, check(&file).unwrap()).unwrap();
        assert_eq!((v.name, v.source.as_ref().map(|s| s.sha256.len())), ("mine.ptx", Some(64)));
        let CudaKernel::Ptx(k) = loaded[0].kernel else { panic!("a PTX entry") };
        assert_eq!((k.entry, k.block, k.grid), ("my_mm", (16, 16), Grid::Tiles { tile: (32, 8), rows_along_x: false }));
        assert_eq!(register(&mut loaded, &file, check(&file).unwrap()).unwrap().name, "mine.ptx");
        assert_eq!(loaded.len(), 1, "the same file twice is one variant");
        let other = write(&dir, "mine.ptx", &format!("{head}\n// changed"), &tiled_as("my_mm"));
        assert_eq!(register(&mut loaded, &other, check(&other).unwrap()).unwrap().name, "mine.ptx#2");
    }

    #[test]
    fn comments_are_not_code_and_entry_needs_no_visible() {
        let dir = tempfile::tempdir().unwrap();
        let head = "// kernelab: op=matmul tile=16x16 block=16x16";
        let ghost = write(&dir, "g.ptx", &format!("{head} entry=ghost"), "// .visible .entry ghost(.param .u64 a)\n");
        assert!(check(&ghost).unwrap_err().to_string().contains("has no `.visible .entry ghost`"));
        let commented = tiled_as("mine")
            .replace(".param .u64 mine_a,", ".param .u64 mine_a, // A\n")
            .replace(".param .u64 mine_b,", ".param .u64 mine_b, /* B */");
        let file = write(&dir, "c.ptx", &format!("{head} entry=mine"), &commented);
        assert_eq!(check(&file).unwrap().entry, "mine");
        let hidden = write(
            &dir,
            "h.ptx",
            &format!("{head} entry=mine"),
            &tiled_as("mine").replace(".visible .entry mine(", ".entry mine("),
        );
        assert_eq!(check(&hidden).unwrap().entry, "mine");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let head = "// kernelab: op=matmul tile=16x16 block=256 entry=matmul_tiled";
        let missing =
            write(&dir, "a.ptx", "// kernelab: op=matmul tile=16x16 block=256 entry=nope", MATMUL_TILED.source);
        let err = check(&missing).unwrap_err().to_string();
        assert!(err.contains("has no `.visible .entry nope`; its entry points: matmul_tiled"), "{err}");
        let softmax = ROWWISE.source.replace(".visible .entry softmax(", ".visible .entry matmul_tiled(");
        let wrong = write(&dir, "b.ptx", head, &softmax);
        let err = check(&wrong).unwrap_err().to_string();
        assert!(err.contains("but a matmul kernel takes (.u64, .u64, .u64, .u32"), "{err}");
        let no_block =
            write(&dir, "c.ptx", "// kernelab: op=matmul tile=16x16 entry=matmul_tiled", MATMUL_TILED.source);
        assert!(check(&no_block).unwrap_err().to_string().contains("block=X"));
        let huge = write(&dir, "d.ptx", "// kernelab: tile=16x16 block=64x64 entry=matmul_tiled", MATMUL_TILED.source);
        assert!(check(&huge).unwrap_err().to_string().contains("over CUDA's 1024 threads"));
        let empty = write(&dir, "e.ptx", "// kernelab: tile=16x16 block=256", ".version 8.0\n");
        assert!(check(&empty).unwrap_err().to_string().contains("holds no kernel"));
    }
}
