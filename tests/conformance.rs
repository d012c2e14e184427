//! The conformance suite on every available backend (and every backend named in
//! `KERNELAB_REQUIRE`): every op, every variant, awkward shapes, poisoned outputs.

use kernelab::Op;
use kernelab::bench::backends::no_variant_reason;
use kernelab::bench::conformance::{Outcome, check_op, devices_under_test};
use kernelab::tensor::{BackendKind, Dtype};

fn assert_conforms(op: Op) {
    let devices = devices_under_test().unwrap_or_else(|e| panic!("a required backend is missing: {e}"));
    let outcomes: Vec<Outcome> = devices.iter().flat_map(|d| check_op(d, op)).collect();
    assert!(!outcomes.is_empty(), "no case ran for {op}");
    for skipped in outcomes.iter().filter(|o| o.skipped) {
        eprintln!("{}", skipped.describe());
    }
    let failed: Vec<String> = outcomes.iter().filter(|o| !o.passed() && !o.skipped).map(Outcome::describe).collect();
    let ran = outcomes.iter().filter(|o| !o.skipped).count();
    assert!(failed.is_empty(), "{} of {ran} {op} cases failed:\n{}", failed.len(), failed.join("\n"));
    assert!(ran > 0, "every {op} case was skipped");
}

macro_rules! conformance {
    ($($test:ident: $op:expr),* $(,)?) => {
        $(#[test] fn $test() { assert_conforms($op) })*
    };
}

conformance! {
    fill: Op::Fill,
    matmul: Op::Matmul,
    bias_add: Op::BiasAdd,
    bias_relu: Op::BiasRelu,
    col_sum: Op::ColSum,
    relu: Op::Relu,
    relu_backward: Op::ReluBackward,
    softmax: Op::Softmax,
    softmax_backward: Op::SoftmaxBackward,
    log_softmax: Op::LogSoftmax,
    log_softmax_backward: Op::LogSoftmaxBackward,
    softmax_cross_entropy: Op::SoftmaxCrossEntropy,
    kl_div: Op::KlDiv,
    add: Op::Add,
    scale: Op::Scale,
    scale_by: Op::ScaleBy,
    axpy: Op::Axpy,
    adam: Op::Adam,
    narrow: Op::Narrow,
    widen: Op::Widen,
}

/// Every op of the catalogue has a test above (the list cannot silently fall behind `Op::ALL`).
#[test]
fn every_op_is_covered() {
    let source = include_str!("conformance.rs");
    for op in Op::ALL {
        let variant = format!("{op:?}");
        assert!(source.contains(&format!("Op::{variant},")), "Op::{variant} has no conformance test");
    }
}

/// The suite above runs every variant a device lists, so every op in every precision a backend
/// offers is in it: the CPU stores bf16 and f16 for every op, WGPU f16 (listed unavailable with
/// the reason where the adapter lacks `shader-f16`), CUDA bf16 and f16 for every op (the
/// tensor-core rungs for matmul, the f32 kernels between conversions for the others) and TF32
/// for matmul. A dtype a backend lacks has a reason naming what is missing.
#[test]
fn every_precision_each_backend_offers_is_in_the_suite() {
    use Dtype::{Bf16, F16, F32, Tf32};
    let devices = devices_under_test().unwrap_or_else(|e| panic!("a required backend is missing: {e}"));
    for device in &devices {
        for op in Op::ALL {
            let mut stored: Vec<Dtype> = device.variants(op).iter().map(|v| v.precision.storage).collect();
            stored.sort();
            stored.dedup();
            let conversion = matches!(op, Op::Narrow | Op::Widen);
            let want: &[Dtype] = match device.kind() {
                BackendKind::Cpu if conversion => &[Bf16, F16],
                BackendKind::Cpu => &[F32, Bf16, F16],
                BackendKind::Wgpu if conversion => &[F16],
                BackendKind::Wgpu => &[F32, F16],
                BackendKind::Cuda if op == Op::Matmul => &[F32, Bf16, F16, Tf32],
                BackendKind::Cuda if conversion => &[Bf16, F16],
                BackendKind::Cuda => &[F32, Bf16, F16],
            };
            assert_eq!(stored, want, "{} {op}", device.label());
            for dtype in Dtype::ALL.into_iter().filter(|d| !stored.contains(d)) {
                let why = no_variant_reason(device.kind(), op, dtype);
                assert!(why.contains(&format!("no {dtype} variant of {op}")), "{why}");
            }
        }
    }
    let wgpu_bf16 = no_variant_reason(BackendKind::Wgpu, Op::Relu, Bf16);
    assert!(wgpu_bf16.ends_with("WGSL has no bf16 type"), "{wgpu_bf16}");
}
