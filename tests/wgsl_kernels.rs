//! WGSL kernels loaded from files on the WGPU backend, checked against the f64 reference with
//! their outputs poisoned: the examples of `examples/kernels/wgsl/` pass on awkward shapes, and
//! each cheat of `tests/kernels/wgsl/` gives a wrong result on one (and, where that is the point,
//! a right one on a round shape, which is why the checks must not stop at the timed shape).

use kernelab::bench::case::{Case, Knobs};
use kernelab::bench::check::Check;
use kernelab::bench::conformance::check_case;
use kernelab::tensor::KernelFile;
use kernelab::{BackendKind, Device, Op};

/// A WGPU device, or `None` when there is none and `KERNELAB_REQUIRE` does not ask for wgpu.
fn wgpu_device() -> Option<Device> {
    match kernelab::backends::open(BackendKind::Wgpu) {
        Ok(d) => Some(d),
        Err(e) if BackendKind::Wgpu.is_required() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Loads `relative` (to the repository root) as a kernel of `op`; returns its variant name.
fn load(device: &Device, relative: &str, op: Op) -> &'static str {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    let file = KernelFile::open(&path, op).unwrap_or_else(|e| panic!("{e}"));
    device.load_kernel(&file).unwrap_or_else(|e| panic!("{e}")).name
}

/// `variant` on `op` at `dims` with `knobs`, poisoned, launched once, against the reference.
fn check(device: &Device, op: Op, dims: &[usize], knobs: Knobs, variant: &str) -> Check {
    let case = Case::new(op, dims, knobs, 19).unwrap();
    check_case(device, &case, variant).unwrap_or_else(|e| panic!("{variant} at {dims:?}: {e}"))
}

const NN: Knobs = Knobs { trans_a: false, trans_b: false, alpha: 1.0, beta: 0.0, accumulate: false };
const TT: Knobs = Knobs { trans_a: true, trans_b: true, ..NN };
/// Both transposes, α and an accumulating β: every parameter of the convention matters.
const TT_SCALED: Knobs = Knobs { alpha: -2.0, beta: 0.25, ..TT };

/// A partial tile in every dimension.
const AWKWARD: [usize; 3] = [33, 65, 17];

#[test]
fn the_matmul_example_passes_on_awkward_shapes_and_every_layout() {
    let Some(device) = wgpu_device() else { return };
    let name = load(&device, "examples/kernels/wgsl/matmul_tile32.wgsl", Op::Matmul);
    assert_eq!(name, "matmul_tile32.wgsl");
    for dims in [AWKWARD, [1, 1, 1], [64, 96, 70], [31, 3, 257]] {
        for knobs in [NN, TT, Knobs { trans_b: true, ..NN }, TT_SCALED] {
            let c = check(&device, Op::Matmul, &dims, knobs, name);
            assert!(c.ok(), "{dims:?} {knobs:?}: {c:?}");
        }
    }
}

#[test]
fn the_softmax_example_passes_past_the_workgroup_cap() {
    let Some(device) = wgpu_device() else { return };
    let name = load(&device, "examples/kernels/wgsl/softmax.wgsl", Op::Softmax);
    // 70,000 rows: more than the 65,535 workgroups the host dispatches, so the kernel strides.
    for dims in [[3, 1000], [1, 1], [17, 257], [70_000, 3]] {
        let c = check(&device, Op::Softmax, &dims, Knobs::default(), name);
        assert!(c.ok(), "{dims:?}: {c:?}");
    }
}

#[test]
fn a_zeros_matmul_fails() {
    let Some(device) = wgpu_device() else { return };
    let name = load(&device, "tests/kernels/wgsl/zeros_matmul.wgsl", Op::Matmul);
    for dims in [AWKWARD, [1, 1, 1], [64, 64, 64]] {
        let c = check(&device, Op::Matmul, &dims, NN, name);
        assert!(c.failures > dims[0] * dims[1] / 2, "{dims:?}: zeros passed: {c:?}");
    }
}

#[test]
fn skipping_the_last_partial_k_tile_passes_round_depths_and_fails_awkward_ones() {
    let Some(device) = wgpu_device() else { return };
    let name = load(&device, "tests/kernels/wgsl/skips_last_k_tile.wgsl", Op::Matmul);
    assert!(check(&device, Op::Matmul, &[64, 64, 64], NN, name).ok(), "the cheat is right at k = 64");
    for knobs in [NN, TT] {
        let c = check(&device, Op::Matmul, &AWKWARD, knobs, name);
        assert!(!c.ok(), "k = 17 missed a term and passed: {c:?}");
    }
}

#[test]
fn a_matmul_without_bounds_guard_passes_round_shapes_and_fails_partial_tiles() {
    let Some(device) = wgpu_device() else { return };
    let name = load(&device, "tests/kernels/wgsl/no_bounds_guard.wgsl", Op::Matmul);
    assert!(check(&device, Op::Matmul, &[64, 64, 64], NN, name).ok(), "the cheat is right on whole tiles");
    for knobs in [NN, TT] {
        let c = check(&device, Op::Matmul, &AWKWARD, knobs, name);
        assert!(!c.ok(), "writes past column n - 1 passed: {c:?}");
    }
}

/// A file whose entry point is called `matmul_tiled`, as the built-in rung's is, runs its own
/// code (zeros, so it fails) and leaves the built-in rung's pipeline alone, whichever ran first.
#[test]
fn a_second_matmul_tiled_entry_is_its_own_kernel() {
    let Some(device) = wgpu_device() else { return };
    assert!(check(&device, Op::Matmul, &AWKWARD, NN, "tiled").ok());
    let name = load(&device, "tests/kernels/wgsl/shadows_builtin.wgsl", Op::Matmul);
    let c = check(&device, Op::Matmul, &AWKWARD, NN, name);
    assert!(c.failures > AWKWARD[0] * AWKWARD[1] / 2, "the file ran the built-in kernel: {c:?}");
    assert!(check(&device, Op::Matmul, &AWKWARD, NN, "tiled").ok(), "the built-in rung ran the file's kernel");
    // Loaded before the built-in rung is first run, on a fresh device.
    let Some(fresh) = wgpu_device() else { return };
    let name = load(&fresh, "tests/kernels/wgsl/shadows_builtin.wgsl", Op::Matmul);
    assert!(check(&fresh, Op::Matmul, &AWKWARD, NN, "tiled").ok(), "the built-in rung ran the file's kernel");
    assert!(!check(&fresh, Op::Matmul, &AWKWARD, NN, name).ok());
}
