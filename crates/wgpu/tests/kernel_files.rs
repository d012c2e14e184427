//! Loading WGSL kernels from files: compile errors at `path:line:column`, the entry point chosen
//! or listed, bindings held to the op's convention, the shared naming contract, and each module
//! run as itself (pipelines cached by source and entry, not by entry name).

mod common;

use common::backend;

use std::path::Path;

use kernelab_tensor::{Backend, Error, Gemm, Kernel, KernelFile, Op};
use kernelab_wgpu::WgpuBackend;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The error of loading `spec` as a kernel of `op`, as text.
fn load_error(b: &WgpuBackend, spec: &str, op: Op) -> String {
    match b.load_kernel(&KernelFile::open(spec, op).unwrap()) {
        Ok(v) => panic!("{spec} loaded as {}", v.name),
        Err(e @ Error::KernelFile { .. }) => e.to_string(),
        Err(e) => panic!("not a kernel-file error: {e:?}"),
    }
}

/// `y ← α·x` under the scale convention, the shader's own factor times α.
fn scale_kernel(factor: &str) -> String {
    format!(
        "// kernelab: op=scale items=64
struct Params {{ n: u32, cols: u32, alpha: f32 }}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {{
    for (var i = gid.x; i < p.n; i += groups.x * 64u) {{
        y[i] = {factor} * p.alpha * x[i];
    }}
}}
"
    )
}

/// Runs scale with `variant` over `x` with α = 2.
fn scale(b: &WgpuBackend, variant: &str, x: &[f32]) -> Vec<f32> {
    let mut xs = b.alloc(x.len()).unwrap();
    b.upload(x, &mut *xs).unwrap();
    let mut y = b.alloc(x.len()).unwrap();
    b.upload(&vec![f32::NAN; x.len()], &mut *y).unwrap();
    b.launch(Kernel::Scale { x: &*xs, alpha: 2.0, y: &mut *y }, Some(variant)).unwrap();
    let mut out = vec![0.0; x.len()];
    b.download(&*y, &mut out).unwrap();
    out
}

#[test]
fn a_compile_error_names_the_file_line_and_column() {
    let Some(b) = backend() else { return };
    let dir = tempfile::tempdir().unwrap();
    let syntax = write(
        dir.path(),
        "syntax.wgsl",
        "// kernelab: op=relu\n\n@compute @workgroup_size(1)\nfn main() {\n    let v = ;\n}\n",
    );
    let err = load_error(&b, &syntax, Op::Relu);
    assert!(err.contains(&format!("does not compile: {syntax}:5:13: expected expression")), "{err}");
    // The line itself beneath, indented by four, and a caret under the column.
    assert!(err.ends_with("\n        let v = ;\n                ^"), "{err}");
    // One that parses but does not validate: a constant index past the end of an array.
    let past = write(
        dir.path(),
        "past.wgsl",
        "@compute @workgroup_size(1)\nfn main() {\n  var a: array<f32, 4>;\n  a[7] = 1.0;\n}\n",
    );
    let err = load_error(&b, &past, Op::Relu);
    assert!(err.contains(&format!("does not compile: {past}:4:3: Entry point main at Compute is invalid")), "{err}");
    assert!(err.contains("index 7 is out of"), "{err}");
}

#[test]
fn the_entry_point_is_the_named_one_or_the_only_one() {
    let Some(b) = backend() else { return };
    let dir = tempfile::tempdir().unwrap();
    let two = "@compute @workgroup_size(1) fn first() {}\n@compute @workgroup_size(1) fn second() {}\n";
    let path = write(dir.path(), "two.wgsl", two);
    let err = load_error(&b, &path, Op::Fill);
    assert!(err.contains("has 2 @compute entry points (`first`, `second`); name the one to run"), "{err}");
    let err = load_error(&b, &format!("{path}:third"), Op::Fill);
    assert!(err.contains("has no @compute entry point `third`; its @compute entry points: `first`, `second`"), "{err}");
    let v = b.load_kernel(&KernelFile::open(&format!("{path}:second"), Op::Fill).unwrap()).unwrap();
    assert_eq!(v.name, "two.wgsl:second");
    let none = write(dir.path(), "none.wgsl", "fn helper() {}\n");
    assert!(load_error(&b, &none, Op::Fill).contains("has no @compute entry point"));
}

#[test]
fn bindings_off_the_convention_are_refused_naming_the_binding() {
    let Some(b) = backend() else { return };
    let dir = tempfile::tempdir().unwrap();
    let writes_input = "@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(1) fn mm() { a[0] = 0.0; }\n";
    let path = write(dir.path(), "writes_a.wgsl", &format!("// kernelab: op=matmul tile=16x16\n{writes_input}"));
    let err = load_error(&b, &path, Op::Matmul);
    assert!(
        err.contains("entry `mm`: @group(0) @binding(1) `a` is declared var<storage, read_write>")
            && err.contains("has `a` there, declared var<storage, read>"),
        "{err}"
    );
    let other_group = "@group(1) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn f() { y[0] = 0.0; }\n";
    let path = write(dir.path(), "group1.wgsl", other_group);
    let err = load_error(&b, &path, Op::Fill);
    assert!(err.contains("@group(1) @binding(2) `y` is not part of fill's calling convention"), "{err}");
}

/// The shared contract: built-ins first, then loaded ones in load order; the same file again is
/// the same variant; another file of the same name is `#2`; each runs its own module although
/// both call their entry point `scale`, as the built-in shader does.
#[test]
fn loaded_variants_follow_the_built_ins_and_each_runs_its_own_module() {
    let Some(b) = backend() else { return };
    let dir = tempfile::tempdir().unwrap();
    let x = [1.0, -2.0, 3.5];
    assert_eq!(scale(&b, "wgsl", &x), [2.0, -4.0, 7.0], "the built-in scale");
    let once = write(dir.path(), "one/k.wgsl", &scale_kernel("1.0"));
    let thrice = write(dir.path(), "three/k.wgsl", &scale_kernel("3.0"));
    let first = b.load_kernel(&KernelFile::open(&once, Op::Scale).unwrap()).unwrap();
    let again = b.load_kernel(&KernelFile::open(&once, Op::Scale).unwrap()).unwrap();
    let second = b.load_kernel(&KernelFile::open(&thrice, Op::Scale).unwrap()).unwrap();
    assert_eq!((first.name, again.name, second.name), ("k.wgsl", "k.wgsl", "k.wgsl#2"));
    assert_eq!(first.source.as_ref().unwrap().path, once);
    assert_eq!(second.source.as_ref().unwrap().path, thrice);
    let names: Vec<&str> = b.variants(Op::Scale).iter().map(|v| v.name).collect();
    assert_eq!(names, ["wgsl", "f16-wgsl", "k.wgsl", "k.wgsl#2"]);
    assert_eq!(scale(&b, "k.wgsl", &x), [2.0, -4.0, 7.0]);
    assert_eq!(scale(&b, "k.wgsl#2", &x), [6.0, -12.0, 21.0]);
    assert_eq!(scale(&b, "wgsl", &x), [2.0, -4.0, 7.0], "the built-in scale after both");
    let unknown = b
        .launch(Kernel::Scale { x: &*b.alloc(1).unwrap(), alpha: 1.0, y: &mut *b.alloc(1).unwrap() }, Some("k"))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("has no variant `k` for scale; it has: wgsl, f16-wgsl, k.wgsl, k.wgsl#2"), "{unknown}");
}

#[test]
fn a_matmul_tile_too_small_for_the_shape_cannot_cover_it() {
    let Some(b) = backend() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = "// kernelab: op=matmul tile=1x1
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(1) fn one(@builtin(workgroup_id) w: vec3<u32>) { c[w.x] = 0.0; }\n";
    let path = write(dir.path(), "one.wgsl", text);
    let v = b.load_kernel(&KernelFile::open(&path, Op::Matmul).unwrap()).unwrap();
    let n = 70_000;
    let (a, bb, mut c) = (b.alloc(n).unwrap(), b.alloc(1).unwrap(), b.alloc(n).unwrap());
    let err = b.launch(Kernel::Matmul { a: &*a, b: &*bb, c: &mut *c, gemm: Gemm::new(1, n, 1) }, Some(v.name));
    let err = err.unwrap_err().to_string();
    assert!(err.contains("one.wgsl with tile=1x1 cannot cover a 1×70000 output: it needs 70000×1 workgroups"), "{err}");
}
