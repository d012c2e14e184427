//! CPU kernels from shared libraries, through `Device::load_kernel`: the C and Rust examples match
//! the f64 reference on awkward shapes (outputs poisoned first); loaded kernels are listed after
//! the built-in ones and run by name; every C signature receives its arguments in the documented
//! order; the guard zones catch a write past an output; and every way a library can fail to load
//! is an error that names the file and says what is expected.

mod common;

use std::path::Path;

use common::cc;
use kernelab::bench::case::{Case, Knobs};
use kernelab::bench::conformance::{check_case, knob_sets};
use kernelab::cpu::CpuBackend;
use kernelab::tensor::{DeviceBuffer, Gemm, Kernel, KernelFile, sha256_hex};
use kernelab::{Device, Op};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

/// Loads `path` (`PATH[:ENTRY]`) as a kernel of `op` on `device`; returns the variant's name.
fn load(device: &Device, path: &str, op: Op) -> kernelab::Result<&'static str> {
    let file = KernelFile::open(path, op)?;
    Ok(device.load_kernel(&file)?.name)
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// Checks `variant` of `op` at `dims` with every knob set in `knobs`: within the reference's
/// budget on every element (the outputs are NaN before each launch).
fn passes(device: &Device, variant: &str, op: Op, dims: &[usize], knobs: &[Knobs]) {
    for (i, &k) in knobs.iter().enumerate() {
        let case = Case::new(op, dims, k, 1000 + i as u64).unwrap();
        let check = check_case(device, &case, variant).unwrap();
        assert!(check.ok(), "{variant} {}: {check:?}", case.label());
        assert!(check.worst_budget_ratio <= 1.0, "{variant} {}: {check:?}", case.label());
    }
}

#[test]
fn the_c_examples_match_the_reference_on_awkward_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let matmul = load(&device, &text(&cc::shared_library(&cc::example("matmul"), dir.path(), &[])), Op::Matmul);
    let matmul = matmul.unwrap();
    assert_eq!(matmul, "matmul.so");
    // NN, NT, TN, TT, and the scaled and accumulating forms (β ≠ 0 reads C).
    let knobs = knob_sets(Op::Matmul);
    assert_eq!(knobs.len(), 7);
    for dims in [[33, 65, 17], [1, 1, 1], [17, 3, 31]] {
        passes(&device, matmul, Op::Matmul, &dims, &knobs);
    }
    let softmax = load(&device, &text(&cc::shared_library(&cc::example("softmax"), dir.path(), &[])), Op::Softmax);
    let softmax = softmax.unwrap();
    // Three rows of 1000, the first of them shifted by +80 (exp without the max overflows).
    for dims in [[3, 1000], [1, 1], [17, 31]] {
        passes(&device, softmax, Op::Softmax, &dims, &[Knobs::default()]);
    }
}

#[test]
fn the_rust_example_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let name = load(&device, &text(&cc::rust_softmax(dir.path())), Op::Softmax).unwrap();
    assert_eq!(name, "libkernelab_rust_softmax.so");
    for dims in [[3, 1000], [1, 1], [127, 257]] {
        passes(&device, name, Op::Softmax, &dims, &[Knobs::default()]);
    }
}

#[test]
fn every_signature_gets_its_arguments_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let ops = text(&cc::shared_library(&cc::fixture("ops"), dir.path(), &[]));
    // One input or two, n values or rows × cols: a swapped pair of pointers or sizes fails these.
    for (op, dims) in [(Op::Relu, vec![1023]), (Op::Add, vec![257]), (Op::LogSoftmax, vec![17, 31])] {
        let name = load(&device, &ops, op).unwrap();
        passes(&device, name, op, &dims, &[Knobs::default()]);
    }
    let name = load(&device, &ops, Op::BiasAdd).unwrap();
    passes(&device, name, Op::BiasAdd, &[31, 17], &[Knobs::default()]);
    // A non-zero return fails the launch, naming the function, the file and the value.
    let refuses = load(&device, &format!("{ops}:relu_refuses"), Op::Relu).unwrap();
    assert_eq!(refuses, "ops.so:relu_refuses");
    let case = Case::new(Op::Relu, &[5], Knobs::default(), 1).unwrap();
    let err = check_case(&device, &case, refuses).unwrap_err().to_string();
    assert_eq!(err, format!("kernel file {ops}: relu_refuses() returned 7: the kernel reports that it failed"));
}

#[test]
fn loaded_kernels_follow_the_built_ins_and_run_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let built_in: Vec<&str> = device.variants(Op::Matmul).iter().map(|v| v.name).collect();
    let honest = cc::shared_library(&cc::example("matmul"), dir.path(), &[]);
    // Another library of the same file name: a constant 0.5 everywhere, easy to tell apart.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let constant = cc::shared_library(&cc::fixture("constant"), &other, &[]);
    let renamed = other.join("matmul.so");
    std::fs::rename(&constant, &renamed).unwrap();

    let first = device.load_kernel(&KernelFile::open(&text(&honest), Op::Matmul).unwrap()).unwrap();
    let again = device.load_kernel(&KernelFile::open(&text(&honest), Op::Matmul).unwrap()).unwrap();
    let second = device.load_kernel(&KernelFile::open(&text(&renamed), Op::Matmul).unwrap()).unwrap();
    assert_eq!(first, again, "the same bytes and symbol are the same variant");
    assert_eq!((first.name, second.name), ("matmul.so", "matmul.so#2"));
    let source = first.source.as_ref().unwrap();
    assert_eq!(
        (source.path.as_str(), source.sha256.clone()),
        (text(&honest).as_str(), sha256_hex(&std::fs::read(&honest).unwrap()))
    );
    let names: Vec<&str> = device.variants(Op::Matmul).iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [built_in.as_slice(), &["matmul.so", "matmul.so#2"]].concat(),
        "built-ins first, then load order"
    );
    assert_eq!(device.variants(Op::Softmax).iter().filter(|v| v.source.is_some()).count(), 0, "one op's only");

    // Each name runs its own library: the honest one passes, the constant one writes 0.5.
    passes(&device, first.name, Op::Matmul, &[9, 10, 11], &[Knobs::default()]);
    let (a, b) = (device.upload(&[1.0; 6]).unwrap(), device.upload(&[2.0; 6]).unwrap());
    let mut c = device.alloc(4).unwrap();
    device
        .launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(2, 2, 3) }, Some("matmul.so#2"))
        .unwrap();
    assert_eq!(device.download(&*c).unwrap(), [0.5; 4]);
    device.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(2, 2, 3) }, Some("matmul.so")).unwrap();
    assert_eq!(device.download(&*c).unwrap(), [6.0; 4]);
}

#[test]
fn a_library_rebuilt_in_place_runs_its_new_code() {
    // The edit–measure loop: the same path, new bytes written over the old file (same inode).
    // The loader hands back the library it already has for a path it has seen; the private copy
    // per hash is what makes the new code run.
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let path = dir.path().join("mine.so");
    let build = |fixture: &str| {
        let built = cc::shared_library(&cc::fixture(fixture), &dir.path().join(fixture), &[]);
        std::fs::write(&path, std::fs::read(built).unwrap()).unwrap();
    };
    let (a, b) = (device.upload(&[1.0; 6]).unwrap(), device.upload(&[2.0; 6]).unwrap());
    let mut c = device.alloc(4).unwrap();
    let mut outputs = Vec::new();
    for fixture in ["constant", "zeros"] {
        std::fs::create_dir_all(dir.path().join(fixture)).unwrap();
        build(fixture);
        let name = load(&device, &text(&path), Op::Matmul).unwrap();
        device.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm: Gemm::new(2, 2, 3) }, Some(name)).unwrap();
        outputs.push((name, device.download(&*c).unwrap()));
    }
    assert_eq!(outputs, [("mine.so", vec![0.5; 4]), ("mine.so#2", vec![0.0; 4])]);
}

#[test]
fn a_write_past_the_output_is_caught_by_its_guard_zone() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let name = load(&device, &text(&cc::shared_library(&cc::fixture("past_end"), dir.path(), &[])), Op::Matmul);
    let name = name.unwrap();
    let (m, n, k) = (5, 7, 3);
    let a = device.upload(&(0..m * k).map(|i| i as f32).collect::<Vec<_>>()).unwrap();
    let b = device.upload(&(0..k * n).map(|i| 1.0 - i as f32).collect::<Vec<_>>()).unwrap();
    let mut c = device.alloc(m * n).unwrap();
    let run = |c: &mut Box<dyn DeviceBuffer>, variant| {
        device.write(&mut **c, &vec![f32::NAN; m * n]).unwrap();
        device.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut **c, gemm: Gemm::new(m, n, k) }, Some(variant)).unwrap();
        device.download(&**c).unwrap()
    };
    // The control: a built-in variant writes the same values and leaves every guard as it was.
    let expected = run(&mut c, "naive");
    assert_eq!(device.guard_violation(&*c).unwrap(), None);
    assert_eq!(run(&mut c, name), expected, "every value it should write is right");
    let violation = device.guard_violation(&*c).unwrap();
    assert_eq!(
        violation.as_deref(),
        Some(
            "1 value after the end changed (first at +0) of a buffer of 35 values (guard zones of 64 values each side)"
        )
    );
    assert_eq!((device.guard_violation(&*a).unwrap(), device.guard_violation(&*b).unwrap()), (None, None));
}

/// The error `load` gives, as text; it must name the file.
fn load_error(device: &Device, spec: &str, op: Op, file: &Path) -> String {
    let err = load(device, spec, op).unwrap_err().to_string();
    assert!(err.starts_with(&format!("kernel file {}: ", file.display())), "{err}");
    err
}

#[test]
fn a_library_that_cannot_run_its_op_is_an_error_naming_the_file_and_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let softmax = cc::shared_library(&cc::example("softmax"), dir.path(), &[]);
    let err = load_error(&device, &text(&softmax), Op::Matmul, &softmax);
    assert!(err.contains("it exports no function `kernelab_matmul`; expected `int kernelab_matmul(const float *a, const float *b, float *c, const struct kernelab_gemm *g);` (see examples/kernels/kernelab.h)"), "{err}");
    assert!(err.ends_with("; the kernelab_ functions it exports: kernelab_abi_version, kernelab_softmax"), "{err}");
    let err = load_error(&device, &format!("{}:softmax_fast", softmax.display()), Op::Softmax, &softmax);
    assert!(err.contains("it exports no function `softmax_fast`; expected `int kernelab_softmax("), "{err}");

    let err = load_error(&device, &text(&softmax), Op::Fill, &softmax);
    assert!(err.contains("a CPU library cannot implement fill"), "{err}");
    assert!(err.ends_with("the ops that have one: matmul, bias_add, bias_relu, relu, relu_backward, softmax, softmax_backward, log_softmax, log_softmax_backward, add"), "{err}");
}

#[test]
fn a_library_that_does_not_load_is_an_error_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let device = cpu();
    let no_version = cc::shared_library(&cc::fixture("no_version"), dir.path(), &[]);
    let err = load_error(&device, &text(&no_version), Op::Relu, &no_version);
    assert!(err.contains("it exports no kernelab_abi_version, so it is not a kernelab kernel library; define `int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }`"), "{err}");
    assert!(err.ends_with("; the kernelab_ functions it exports: kernelab_relu"), "{err}");

    let wrong = cc::shared_library(&cc::fixture("wrong_version"), dir.path(), &[]);
    let err = load_error(&device, &text(&wrong), Op::Relu, &wrong);
    assert!(err.ends_with("its kernelab_abi_version() returns 2; this kernelab speaks ABI 1: rebuild it against examples/kernels/kernelab.h"), "{err}");

    // Bound at load time: the missing symbol is named now, not a crash at the first call.
    let unlinked = cc::shared_library(&cc::fixture("undefined_symbol"), dir.path(), &[]);
    let err = load_error(&device, &text(&unlinked), Op::Relu, &unlinked);
    assert!(
        err.contains("the loader cannot load it: ") && err.contains("undefined symbol: helper_never_linked"),
        "{err}"
    );

    // Not a library at all: the loader's own words, about the user's path (not the private copy).
    let text_file = dir.path().join("notes.so");
    std::fs::write(&text_file, "not an ELF file\n").unwrap();
    let err = load_error(&device, &text(&text_file), Op::Relu, &text_file);
    assert!(err.contains("the loader cannot load it: ") && err.contains(&text(&text_file)), "{err}");
    assert!(!err.contains("kernelab-cpu-kernels-"), "the private copy's path leaks into the message: {err}");
    assert_eq!(device.variants(Op::Relu).iter().filter(|v| v.source.is_some()).count(), 0, "no failed load is listed");
}
