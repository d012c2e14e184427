//! Every WGSL file parses and validates with naga: no GPU needed.

use std::path::Path;

use kernelab_tensor::{KernelFile, Op};
use kernelab_wgpu::check_file;
use kernelab_wgpu::shaders::{ALL, Shader, all_f16};

#[test]
fn every_shader_validates() {
    for shader in ALL.into_iter().chain(all_f16()) {
        let module = naga::front::wgsl::parse_str(shader.source)
            .unwrap_or_else(|e| panic!("{}: {}", shader.file, e.emit_to_string(shader.source)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        if let Err(e) = validator.validate(&module) {
            panic!("{}: {}", shader.file, e.emit_to_string(shader.source));
        }
        assert!(!module.entry_points.is_empty(), "{} has no entry point", shader.file);
    }
}

#[test]
fn every_shader_file_starts_with_a_header_naming_its_bindings() {
    for shader in ALL.into_iter().chain(all_f16()) {
        let header: String = shader.source.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(header.contains("Bindings") && header.contains("ntry point"), "{} lacks its header", shader.file);
    }
}

/// The f16 modules are the f32 files with their alias lines changed and `enable f16;` after the
/// header: their storage buffers are `array<f16>` (so a replacement that missed would show), the
/// f16→f16 matmul sums in f16, the f16→f32 one in f32, and nothing else differs.
#[test]
fn f16_shaders_are_the_f32_text_narrowed() {
    let [elementwise, rowwise, matmul, matmul_acc] = all_f16();
    let storage_f16 = |s: &Shader| {
        let module = naga::front::wgsl::parse_str(s.source).unwrap();
        let scalars: Vec<naga::Scalar> = module
            .global_variables
            .iter()
            // softmax_cross_entropy's labels are f32 class indices in every precision
            .filter(|(_, v)| {
                matches!(v.space, naga::AddressSpace::Storage { .. }) && v.name.as_deref() != Some("labels")
            })
            .map(|(_, v)| match &module.types[v.ty].inner {
                naga::TypeInner::Array { base, .. } => match module.types[*base].inner {
                    naga::TypeInner::Scalar(s) => s,
                    naga::TypeInner::Vector { scalar, .. } => scalar,
                    ref other => panic!("{}: storage of {other:?}", s.file),
                },
                other => panic!("{}: storage of {other:?}", s.file),
            })
            .collect();
        assert!(!scalars.is_empty(), "{}", s.file);
        scalars.iter().all(|&x| x == naga::Scalar::F16)
    };
    for (shader, f32_twin) in [(elementwise, ALL[0]), (rowwise, ALL[1]), (matmul, ALL[2]), (matmul_acc, ALL[2])] {
        assert!(storage_f16(&shader), "{} keeps f32 storage", shader.file);
        assert!(!storage_f16(&f32_twin), "{} is not f32", f32_twin.file);
        let header = f32_twin.source.lines().take_while(|l| l.starts_with("//")).count();
        let lines: Vec<&str> = shader.source.lines().collect();
        assert_eq!(lines[header], "enable f16;", "{}", shader.file);
        let differing =
            lines.iter().filter(|l| **l != "enable f16;").zip(f32_twin.source.lines()).filter(|(a, b)| a != &b).count();
        assert_eq!(differing, if shader.file.contains("Acc = f16") { 2 } else { 1 }, "{}", shader.file);
    }
    assert!(matmul_acc.source.contains("alias Acc = f16;") && matmul.source.contains("alias Acc = f32;"));
}

/// Every WGSL kernel file of the repository (the examples and the cheats, which are wrong in
/// what they compute, not in how they are called) compiles, has its entry point, and follows its
/// op's calling convention: checked without a device, so a host without an adapter checks them
/// too.
#[test]
fn every_kernel_file_passes_the_checks_that_need_no_device() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = Vec::new();
    for dir in ["examples/kernels/wgsl", "tests/kernels/wgsl"] {
        for item in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = item.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let op = text
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("op=")))
                .unwrap_or_else(|| panic!("{} has no `// kernelab: op=` first line", path.display()));
            let file = KernelFile::open(path.to_str().unwrap(), op.parse::<Op>().unwrap()).unwrap();
            let found = check_file(&file).unwrap_or_else(|e| panic!("{e}"));
            checked.push((file.name, found.entry));
        }
    }
    checked.sort();
    let entries: Vec<(&str, &str)> = checked.iter().map(|(n, e)| (*n, e.as_str())).collect();
    assert_eq!(
        entries,
        [
            ("matmul_tile32.wgsl", "matmul_tile32"),
            ("no_bounds_guard.wgsl", "matmul_unguarded"),
            ("shadows_builtin.wgsl", "matmul_tiled"),
            ("skips_last_k_tile.wgsl", "matmul_whole_tiles"),
            ("softmax.wgsl", "softmax_rows"),
            ("zeros_matmul.wgsl", "matmul_zeros"),
        ]
    );
}
