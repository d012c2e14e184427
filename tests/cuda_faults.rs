//! Faults on the CUDA device give the driver's typed errors, and kernelab reports them as on a
//! GPU: a PTX file that fails to load names its line, and a kernel's illegal address is the
//! driver's `CUDA_ERROR_ILLEGAL_ADDRESS` — on the emulated device (`crates/cuda-emu`) with the
//! sanitizer's account of it (kernel, instruction, thread, block). Each runs the binary: a kernel
//! fault loses the device's context for the rest of its process, as on a GPU.
//!
//! Where CUDA is unavailable the tests have nothing to run, unless `KERNELAB_REQUIRE` names cuda.

#![cfg(feature = "cuda")]

mod common;

use common::{cuda_here as cuda, kernelab, text};

/// The example softmax kernel (`examples/kernels/ptx/softmax.ptx`) with `from` replaced by `to`,
/// written to a file of its own; and the 1-based line of the replacement.
fn mutated_softmax(name: &str, from: &str, to: &str) -> (std::path::PathBuf, usize) {
    let source = std::fs::read_to_string(common::cc::root().join("examples/kernels/ptx/softmax.ptx")).unwrap();
    let at = source.find(from).unwrap_or_else(|| panic!("the example has no `{from}`"));
    let line = source[..at].matches('\n').count() + 1;
    let dir = std::env::temp_dir().join(format!("kernelab-cuda-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source.replacen(from, to, 1)).unwrap();
    (path, line)
}

#[test]
fn a_ptx_file_that_fails_to_load_names_its_line() {
    let Some(_) = cuda() else { return };
    let (path, line) = mutated_softmax("bad.ptx", "ld.global.nc.f32 %v, [%at];", "frobnicate.f32 %v, [%at];");
    let out = kernelab(&["check", "--backend", "cuda", "--op", "softmax", "--kernel", path.to_str().unwrap()]);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("CUDA_ERROR_INVALID_PTX (218)"), "{all}");
    assert!(all.contains(&format!("line {line}")), "the JIT log names line {line}:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn an_illegal_address_is_the_drivers_error_with_the_sanitizers_account() {
    let Some(emulated) = cuda() else { return };
    // The store of the row's result, 1 GiB past it.
    let (path, line) =
        mutated_softmax("oob.ptx", "st.global.f32 [%base], %t;", "st.global.f32 [%base+1073741824], %t;");
    let out = kernelab(&["check", "--backend", "cuda", "--op", "softmax", "--kernel", path.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "a failed case, not a crash:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
    // The file's first case: the copy that waits for the kernel answers the driver's error.
    let row = all.lines().find(|l| l.contains("softmax/oob.ptx")).unwrap_or_default();
    assert!(row.contains("ERROR") && row.contains("CUDA_ERROR_ILLEGAL_ADDRESS (700)"), "{row}\n{all}");
    if emulated {
        let account = row.split("the emulated device says: ").nth(1).unwrap_or_default();
        assert!(account.starts_with("invalid __global__ write"), "{row}");
        for part in ["my_softmax", &format!("line {line}"), "[%base+1073741824]", "by thread (", "in block ("] {
            assert!(account.contains(part), "the fault's account lacks `{part}`: {account}");
        }
        assert!(all.contains("========="), "the sanitizer's report goes to stderr:\n{all}");
    }
}
