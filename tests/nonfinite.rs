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
