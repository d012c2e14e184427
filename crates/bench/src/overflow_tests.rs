//! Finite values that a conversion to a narrow type turns into ±∞ are counted and reported,
//! never flushed silently: by the case (`narrow`'s row and its check), and by the device for
//! every upload to a narrow buffer.

use kernelab_tensor::{BackendKind, Dtype, Op, Precision};

use crate::case::{Case, Knobs};
use crate::check::compare;

const F16: Precision = Precision { storage: Dtype::F16, accumulate: Dtype::F32 };

/// 100 values to narrow, two of them past f16's largest finite value (65504 itself is not).
fn narrow_case() -> Case {
    let case = Case::new(Op::Narrow, &[100], Knobs::default(), 7).unwrap();
    case.with_input(0, 5, 70000.0).with_input(0, 9, -1e6).with_input(0, 11, 65504.0).with_precision(F16)
}

#[test]
fn narrowing_past_f16s_range_is_counted_expected_as_infinity_and_noted_in_the_check() {
    let case = narrow_case();
    let note = "narrow of x: 2 of 100 finite values are beyond f16's range (±65504) and became ±∞";
    assert_eq!(case.overflows(), [note]);
    let expected = case.expected();
    assert_eq!((expected[0].value[5], expected[0].value[9]), (f64::INFINITY, f64::NEG_INFINITY));

    let device = crate::backends::open(BackendKind::Cpu).unwrap();
    let check = crate::conformance::check_case(&device, &case, "f16-portable").unwrap();
    assert!(check.ok(), "{:?}", check.failure());
    assert_eq!(check.notes, [note], "the row's note carries the count");

    // A conversion that saturates to ±65504 instead of giving the IEEE ±∞ fails.
    let mut saturated: Vec<f32> = case.inputs()[0].iter().map(|&x| Dtype::F16.round(x)).collect();
    (saturated[5], saturated[9]) = (65504.0, -65504.0);
    let flushed = compare(&expected, &[saturated]);
    assert_eq!(flushed.failures, 2, "{flushed:?}");
}

#[test]
fn an_input_that_overflows_its_narrow_storage_is_counted_per_buffer() {
    let case = Case::new(Op::Relu, &[10], Knobs::default(), 3).unwrap().with_input(0, 2, 1e5).with_precision(F16);
    assert_eq!(case.overflows(), ["x: 1 of 10 finite values are beyond f16's range (±65504) and became ±∞"]);
    let within = Case::new(Op::Relu, &[10], Knobs::default(), 3).unwrap().with_precision(F16);
    assert!(within.overflows().is_empty());
    let bf16 = Case::new(Op::Relu, &[10], Knobs::default(), 3).unwrap().with_input(0, 2, 1e5);
    assert!(bf16.with_precision(Precision::new(Dtype::Bf16, Dtype::F32)).overflows().is_empty(), "bf16 reaches 3e38");
}

#[test]
fn uploads_to_a_narrow_buffer_count_what_overflowed() {
    let device = crate::backends::open(BackendKind::Cpu).unwrap();
    let buf = device.upload_as(&[1.0, 70000.0, -1e5, 65504.0, f32::INFINITY], Dtype::F16).unwrap();
    assert_eq!(device.download(&*buf).unwrap()[1..3], [f32::INFINITY, f32::NEG_INFINITY]);
    let notes = device.take_overflows();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].ends_with(": 2 of 5 finite values are beyond f16's range (±65504) and became ±∞"), "{notes:?}");
    assert!(notes[0].starts_with(&format!("upload to {}", device.label())), "{notes:?}");
    assert!(device.take_overflows().is_empty(), "taken once");
    device.upload_as(&[1e9], Dtype::F32).unwrap();
    device.upload_as(&[1e9], Dtype::Bf16).unwrap();
    assert!(device.take_overflows().is_empty(), "f32 and bf16 hold 1e9");
    let err = device.alloc_as(4, Dtype::Tf32).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("tf32 values live in f32 buffers"), "{err}");
}
