//! One NaN semantics on every backend (IEEE propagation, as PyTorch has it): NaN in, NaN out;
//! infinities follow the arithmetic; a row of −∞ through softmax is NaN, not a silent number.
//! Fed to every available backend (`KERNELAB_REQUIRE` makes a missing one fail).

use kernelab::bench::conformance::devices_under_test;
use kernelab::tensor::{Device, Kernel};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;

/// The same bit pattern class: both NaN, or equal.
fn same(got: f32, want: f32) -> bool {
    (got.is_nan() && want.is_nan()) || got == want
}

fn check(device: &Device, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(same(*g, *w), "{device} {what}[{i}]: got {g}, want {w} (all: {got:?})");
    }
}

#[test]
fn non_finite_values_propagate_alike_on_every_backend() {
    let devices = devices_under_test().unwrap_or_else(|e| panic!("a required backend is missing: {e}"));
    let x = [NAN, INF, -INF, -1.0, 2.0, 0.0];
    for device in &devices {
        let upload = |v: &[f32]| device.upload(v).unwrap();
        let sentinel = |n: usize| {
            let mut b = device.alloc(n).unwrap();
            device.write(&mut *b, &vec![12345.0; n]).unwrap();
            b
        };
        // relu: NaN stays NaN, ∞ stays, −∞ is 0.
        let (xs, mut y) = (upload(&x), sentinel(x.len()));
        device.launch(Kernel::Relu { x: &*xs, y: &mut *y }, None).unwrap();
        check(device, "relu", &device.download(&*y).unwrap(), &[NAN, INF, 0.0, 0.0, 2.0, 0.0]);
        // bias + relu, fused: the same semantics as relu after the add.
        let (bias, mut y) = (upload(&[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]), sentinel(x.len()));
        device.launch(Kernel::BiasRelu { x: &*xs, bias: &*bias, y: &mut *y, rows: 1, cols: 6 }, None).unwrap();
        check(device, "bias_relu", &device.download(&*y).unwrap(), &[NAN, INF, 0.0, 0.0, 2.0, 0.0]);
        // add: ∞ + (−∞) is NaN.
        let (b, mut y) = (upload(&[1.0, -INF, -INF, 1.0, NAN, 0.0]), sentinel(x.len()));
        device.launch(Kernel::Add { a: &*xs, b: &*b, y: &mut *y }, None).unwrap();
        check(device, "add", &device.download(&*y).unwrap(), &[NAN, NAN, -INF, 0.0, NAN, 0.0]);
        // softmax: a row with a NaN is NaN; a row of −∞ has no distribution (NaN); a finite row
        // beside them is unaffected.
        let z = [NAN, 0.0, 1.0, -INF, -INF, -INF, 0.0, 0.0, 0.0];
        let (zs, mut y) = (upload(&z), sentinel(z.len()));
        device.launch(Kernel::Softmax { x: &*zs, y: &mut *y, rows: 3, cols: 3 }, None).unwrap();
        let got = device.download(&*y).unwrap();
        assert!(got[..6].iter().all(|v| v.is_nan()), "{device} softmax: {got:?}");
        assert!(got[6..].iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6), "{device} softmax: {got:?}");
    }
}

/// Adam's special lanes, on every variant: a NaN or infinite gradient makes the parameter NaN
/// (∞/∞), a gradient whose square overflows makes `v` infinite and so the step `m/∞ = 0`, and a
/// zero gradient leaves the parameter alone. Twenty lanes: one full vector of 16 and a tail.
#[test]
fn adam_steps_through_infinities_alike_on_every_variant() {
    use kernelab::tensor::{AdamStep, Op};
    let devices = devices_under_test().unwrap_or_else(|e| panic!("a required backend is missing: {e}"));
    let mut grad = vec![0.0; 20];
    for (at, g) in [(0, NAN), (1, INF), (2, 1e30), (3, -1e30), (16, -1e30), (17, 1e30), (18, INF), (19, NAN)] {
        grad[at] = g;
    }
    let want_param: Vec<f32> = grad.iter().map(|g| if g.is_finite() { 1.0 } else { NAN }).collect();
    let step = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    for device in &devices {
        for variant in device
            .variants(Op::Adam)
            .iter()
            .filter(|v| v.unavailable.is_none() && !v.baseline && v.precision.storage == kernelab::tensor::Dtype::F32)
        {
            let (mut param, grads) = (device.upload(&[1.0; 20]).unwrap(), device.upload(&grad).unwrap());
            let (mut m, mut v) = (device.upload(&[0.0; 20]).unwrap(), device.upload(&[0.0; 20]).unwrap());
            let kernel = Kernel::Adam { param: &mut *param, grad: &*grads, m: &mut *m, v: &mut *v, step };
            device.launch(kernel, Some(variant.name)).unwrap();
            let what = format!("adam/{}", variant.name);
            check(device, &what, &device.download(&*param).unwrap(), &want_param);
            let v = device.download(&*v).unwrap();
            assert!(
                grad.iter().zip(&v).all(|(g, v)| g.abs() < 1e20 || v.is_nan() || *v == INF),
                "{device} {what}: {v:?}"
            );
        }
    }
}

/// Every op with an input: a NaN in its first data input reaches the outputs that depend on it
/// (for ReLU's backward, `dy·[x > 0]` with a NaN `x` is 0, as in PyTorch), on every backend.
#[test]
fn a_nan_input_reaches_the_outputs_of_every_op() {
    use kernelab::Op;
    use kernelab::bench::case::{Case, Knobs};
    let devices = devices_under_test().unwrap_or_else(|e| panic!("a required backend is missing: {e}"));
    for op in Op::ALL {
        let dims: &[usize] = match op.family() {
            kernelab::tensor::OpFamily::Matmul => &[3, 4, 5],
            kernelab::tensor::OpFamily::Rowwise => &[3, 4],
            kernelab::tensor::OpFamily::Elementwise => &[12],
        };
        if op == Op::Fill {
            continue;
        }
        // The NaN goes into the first element of the first input (ScaleBy's scalar and the
        // labels of softmax_cross_entropy are other inputs).
        let case = Case::new(op, dims, Knobs::default(), 7).unwrap().with_input(0, 0, f32::NAN);
        // The conversions exist in narrow storage only: NaN must survive the trip to bf16.
        let bf16 = kernelab::tensor::Precision::new(kernelab::tensor::Dtype::Bf16, kernelab::tensor::Dtype::F32);
        let case = if matches!(op, Op::Narrow | Op::Widen) { case.with_precision(bf16) } else { case };
        for device in &devices {
            if !device.variants(op).iter().any(|v| v.precision == case.precision) {
                continue;
            }
            let mut prepared = case.prepare(device).unwrap();
            prepared.launch(None).unwrap_or_else(|e| panic!("{device} {op}: {e}"));
            let outputs = prepared.outputs().unwrap();
            let first = outputs.iter().map(|o| o[0]).collect::<Vec<_>>();
            match op {
                Op::ReluBackward => assert_eq!(first, vec![0.0], "{device} {op}"),
                // Adam's first input is the gradient: param, m and v all become NaN.
                _ => assert!(first.iter().all(|v| v.is_nan()), "{device} {op}: outputs start {first:?}"),
            }
        }
    }
}
