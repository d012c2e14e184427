//! The conformance suite on every available backend (and every backend named in
//! `KERNELAB_REQUIRE`): every op, every variant, awkward shapes, poisoned outputs.

use kernelab::Op;
use kernelab::bench::conformance::{Outcome, check_op, devices_under_test};

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
