//! WGSL kernels from files, at run time: parsed and validated with naga first (so a compile
//! error names `path:line:column`), their entry point chosen and its bindings held to the op's
//! [convention](crate::convention), then compiled by wgpu and appended to the op's variant table.

use kernelab_tensor::{KernelFile, Op, Result, SourceKind, Variant};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, Module, ShaderStage, StorageAccess};

use crate::WgpuBackend;
use crate::convention::{self, Access};
use crate::shaders::Shader;
use crate::table::{Code, Entry};

fn leak(text: impl Into<String>) -> &'static str {
    Box::leak(text.into().into_boxed_str())
}

/// What [`check_file`] found in a WGSL file: the entry point to run and its workgroup size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub entry: String,
    pub workgroup_size: [u32; 3],
}

/// Everything about a `.wgsl` kernel file that needs no device: it compiles (naga), its entry
/// point is the named one or its only `@compute` one, and the bindings that entry uses follow
/// its op's [convention](crate::convention). Loading it runs this first; a host without an
/// adapter can still check a file with it.
pub fn check_file(file: &KernelFile) -> Result<Checked> {
    if file.kind != SourceKind::Wgsl {
        return Err(file.error("the wgpu backend loads .wgsl files only"));
    }
    let text = file.text()?;
    let (module, info) = parse(file, text)?;
    let index = pick_entry(file, &module)?;
    let point = &module.entry_points[index];
    check_bindings(file.op, &module, &info, index)
        .map_err(|why| file.error(format!("entry `{}`: {why}", point.name)))?;
    Ok(Checked { entry: point.name.clone(), workgroup_size: point.workgroup_size })
}

impl WgpuBackend {
    /// [`Backend::load_kernel`](kernelab_tensor::Backend::load_kernel) for a `.wgsl` file: the
    /// same file (path, bytes and entry point) loaded again is the same variant; another file of
    /// the same name is `NAME#2`, `NAME#3`, ….
    pub(crate) fn load(&self, file: &KernelFile) -> Result<Variant> {
        let Checked { entry, workgroup_size: [x, y, z] } = check_file(file)?;
        let op = file.op;
        let mut tables = self.tables.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let table = &mut tables[op.index()];
        let same = |e: &&Entry| e.variant.source.as_ref() == Some(&file.source) && e.code.entry == entry;
        if let Some(loaded) = table.iter().find(same) {
            return Ok(loaded.variant.clone());
        }
        let code = Code {
            shader: Shader { file: leak(file.source.path.as_str()), source: leak(file.text()?) },
            entry: leak(entry),
            geometry: file.geometry,
        };
        self.pipeline(op, code.shader, code.entry)
            .map_err(|e| file.error(format!("wgpu refused entry `{}`: {e}", code.entry)))?;
        let launch = match code.geometry.tile {
            Some((w, h)) => format!("tile {w}×{h}"),
            None => format!("{} per workgroup", code.geometry.items.or(code.geometry.rows).unwrap_or(1)),
        };
        let summary = leak(format!("{}: entry {}, {launch}, workgroup {x}×{y}×{z}", file.source.path, code.entry));
        let variant = Variant { name: unique_name(table, file.name), ..Variant::from_file(file, summary) };
        table.push(Entry { variant: variant.clone(), code });
        Ok(variant)
    }
}

/// `base`, or `base#2`, `base#3`, … : the first name `table` does not hold.
fn unique_name(table: &[Entry], base: &'static str) -> &'static str {
    let taken = |name: &str| table.iter().any(|e| e.variant.name == name);
    if !taken(base) {
        return base;
    }
    let mut n = 2;
    loop {
        let name = format!("{base}#{n}");
        if !taken(&name) {
            return leak(name);
        }
        n += 1;
    }
}

/// `path:line:column: message` (the line and column 1-based, as editors read them).
fn located(file: &KernelFile, text: &str, at: Option<naga::SourceLocation>, message: &str) -> kernelab_tensor::Error {
    let path = &file.source.path;
    match at {
        Some(at) => {
            let line = text.lines().nth(at.line_number as usize - 1).unwrap_or("").trim_end();
            file.error(format!(
                "does not compile: {path}:{}:{}: {message}\n    {line}\n    {}^",
                at.line_number,
                at.line_position,
                " ".repeat(line.get(..at.line_position as usize - 1).map_or(0, |s| s.chars().count()))
            ))
        }
        None => file.error(format!("does not compile: {path}: {message}")),
    }
}

/// The module and what naga's validator learnt of it (which globals each entry point uses).
fn parse(file: &KernelFile, text: &str) -> Result<(Module, ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(text).map_err(|e| located(file, text, e.location(text), e.message()))?;
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).map_err(|e| {
        let mut message = e.as_inner().to_string();
        let mut cause = std::error::Error::source(e.as_inner());
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        located(file, text, e.location(text), &message)
    })?;
    Ok((module, info))
}

/// The index of the entry point to run: the one the file names, else its only `@compute` one.
fn pick_entry(file: &KernelFile, module: &Module) -> Result<usize> {
    let compute: Vec<(usize, &str)> = module
        .entry_points
        .iter()
        .enumerate()
        .filter(|(_, e)| e.stage == ShaderStage::Compute)
        .map(|(i, e)| (i, e.name.as_str()))
        .collect();
    let names = compute.iter().map(|(_, n)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    match (&file.entry, compute.as_slice()) {
        (_, []) => Err(file.error("has no @compute entry point")),
        (Some(want), _) => compute.iter().find(|(_, n)| n == want).map(|(i, _)| *i).ok_or_else(|| {
            file.error(format!("has no @compute entry point `{want}`; its @compute entry points: {names}"))
        }),
        (None, [(i, _)]) => Ok(*i),
        (None, _) => Err(file.error(format!(
            "has {} @compute entry points ({names}); name the one to run: PATH:ENTRY, or `// kernelab: entry=NAME` \
             in its header",
            compute.len()
        ))),
    }
}

/// How a global is declared, as WGSL spells it.
fn declared(space: AddressSpace) -> String {
    match space {
        AddressSpace::Uniform => Access::Uniform.wgsl().into(),
        AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => Access::ReadWrite.wgsl().into(),
        AddressSpace::Storage { .. } => Access::Read.wgsl().into(),
        AddressSpace::Handle => "a texture or sampler".into(),
        other => format!("{other:?}"),
    }
}

/// Checks that every binding entry point `index` of `module` uses sits where `op`'s convention
/// puts one, declared with its access (and the params no larger than eight words); the reason
/// otherwise, naming the binding and what is expected there.
pub fn check_bindings(op: Op, module: &Module, info: &ModuleInfo, index: usize) -> std::result::Result<(), String> {
    let uses = info.get_entry_point(index);
    for (handle, var) in module.global_variables.iter() {
        let Some(at) = &var.binding else { continue };
        if uses[handle].is_empty() {
            continue;
        }
        let name = var.name.as_deref().unwrap_or("?");
        let place = format!("@group({}) @binding({}) `{name}`", at.group, at.binding);
        let slot = convention::slots(op).iter().find(|s| s.binding == at.binding);
        let Some(slot) = slot.filter(|_| at.group == 0) else {
            return Err(format!(
                "{place} is not part of {op}'s calling convention: @group(0) with {}",
                convention::describe(op)
            ));
        };
        if declared(var.space) != slot.access.wgsl() {
            return Err(format!(
                "{place} is declared {}; {op}'s calling convention has `{}` there, declared {}",
                declared(var.space),
                slot.name,
                slot.access.wgsl()
            ));
        }
        let bytes = module.types[var.ty].inner.size(module.to_ctx());
        if slot.access == Access::Uniform && bytes > 32 {
            return Err(format!("{place} is {bytes} bytes; the params are eight 32-bit words (32 bytes)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{MATMUL_LADDER, ONE_ENTRY};
    use crate::table_f16::{CONVERSIONS, F16_ONE_ENTRY, MATMUL_F16_LADDER};

    fn validated(source: &str) -> (Module, ModuleInfo) {
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).unwrap();
        (module, info)
    }

    fn check(op: Op, module: &(Module, ModuleInfo), entry: &str) -> std::result::Result<(), String> {
        let index = module.0.entry_points.iter().position(|e| e.name == entry).expect("the entry exists");
        check_bindings(op, &module.0, &module.1, index)
    }

    /// The built-in shaders pass the check loaded kernels pass: the convention is theirs.
    #[test]
    fn builtin_entries_follow_the_convention() {
        let matmul = validated(crate::shaders::MATMUL.source);
        for rung in MATMUL_LADDER {
            check(Op::Matmul, &matmul, rung.entry).unwrap_or_else(|e| panic!("{}: {e}", rung.entry));
        }
        for (op, shader, entry) in ONE_ENTRY {
            check(op, &validated(shader.source), entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        }
        for rung in MATMUL_F16_LADDER {
            check(Op::Matmul, &validated((rung.shader)().source), rung.entry)
                .unwrap_or_else(|e| panic!("{}: {e}", rung.variant));
        }
        for (op, shader, entry) in F16_ONE_ENTRY {
            check(op, &validated(shader().source), entry).unwrap_or_else(|e| panic!("{entry} f16: {e}"));
        }
        for (op, entry) in CONVERSIONS {
            check(op, &validated(crate::shaders::CONVERT.source), entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        }
    }

    #[test]
    fn a_binding_out_of_place_is_named_with_what_is_expected() {
        let source = "@group(0) @binding(2) var<storage, read> c: array<f32>;
            @group(0) @binding(7) var<storage, read_write> extra: array<f32>;
            @compute @workgroup_size(1) fn reads_c() { let v = c[0]; }
            @compute @workgroup_size(1) fn writes_extra() { extra[0] = 1.0; }";
        let module = validated(source);
        let err = check(Op::Matmul, &module, "reads_c").unwrap_err();
        assert!(
            err.contains("@group(0) @binding(2) `c` is declared var<storage, read>")
                && err.contains("has `c` there, declared var<storage, read_write>"),
            "{err}"
        );
        let err = check(Op::Matmul, &module, "writes_extra").unwrap_err();
        assert!(err.contains("@binding(7) `extra` is not part of matmul's calling convention"), "{err}");
        assert!(err.contains("1 a (var<storage, read>)"), "{err}");
        // Softmax has an output at 2 and nothing at 7: the same entry is judged by its op.
        assert!(check(Op::Softmax, &module, "writes_extra").is_err());
    }

    #[test]
    fn an_input_declared_writable_and_oversized_params_are_refused() {
        let source = "struct Big { w: array<vec4<u32>, 3> }
            @group(0) @binding(0) var<uniform> p: Big;
            @group(0) @binding(1) var<storage, read_write> x: array<f32>;
            @compute @workgroup_size(1) fn writes_x() { x[0] = 0.0; }
            @compute @workgroup_size(1) fn big_params() { let v = p.w[2].x; }";
        let module = validated(source);
        let err = check(Op::Relu, &module, "writes_x").unwrap_err();
        assert!(
            err.contains("`x` is declared var<storage, read_write>") && err.contains("declared var<storage, read>")
        );
        let err = check(Op::Relu, &module, "big_params").unwrap_err();
        assert!(err.contains("is 48 bytes; the params are eight 32-bit words"), "{err}");
    }
}
