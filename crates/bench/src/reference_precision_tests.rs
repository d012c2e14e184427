//! The budgets per precision ([`crate::reference`]'s module doc) tell an honest kernel from one a
//! roundoff worse: at `K = 4096` a matmul accumulating in its 16-bit storage type instead of f32
//! misses the budget of its precision, while the honest one (exact sum, one rounding to the
//! storage) stays within it.

use kernelab_tensor::{Dtype, Op, Precision};

use crate::case::{Case, Knobs};
use crate::check::compare;

const K: usize = 4096;

/// `C = A·B` of the case's (rounded) inputs, each dot product summed by `add` from 0, the result
/// rounded to `out`.
fn product(case: &Case, add: impl Fn(f32, f32) -> f32, out: Dtype) -> Vec<f32> {
    let (m, n) = (case.dims[0], case.dims[1]);
    let (a, b) = (&case.inputs()[0], &case.inputs()[1]);
    let mut c = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let dot = (0..K).fold(0.0, |acc, p| add(acc, a[i * K + p] * b[p * n + j]));
            c.push(out.round(dot));
        }
    }
    c
}

/// The honest kernel sums exactly (f64) and rounds once; the worse one rounds every partial sum
/// to `worse` (the storage type; bf16 for f32 storage).
fn honest_and_worse(p: Precision, worse: Dtype) -> (f64, f64) {
    let case = Case::new(Op::Matmul, &[8, 8, K], Knobs::default(), 21).unwrap().with_precision(p);
    let expected = case.expected();
    let exact = |acc: f32, t: f32| (f64::from(acc) + f64::from(t)) as f32;
    let honest = compare(&expected, &[product(&case, exact, p.storage)]);
    let worse = compare(&expected, &[product(&case, |acc, t| worse.round(acc + t), p.storage)]);
    assert!(honest.ok(), "{p}: the honest kernel failed: {:?}", honest.first_failure);
    assert!(!worse.ok(), "{p}: accumulating in {worse:?} passed ({} of budget)", worse.worst_budget_ratio);
    (honest.worst_budget_ratio, worse.worst_budget_ratio)
}

#[test]
fn f32_accumulating_in_bf16_misses_the_f32_budget() {
    honest_and_worse(Precision::F32, Dtype::Bf16);
}

#[test]
fn bf16_accumulating_in_bf16_misses_the_bf16_to_f32_budget() {
    let (honest, worse) = honest_and_worse(Precision::new(Dtype::Bf16, Dtype::F32), Dtype::Bf16);
    assert!(worse > 4.0 * honest.max(0.25), "{honest} vs {worse}");
}

#[test]
fn f16_accumulating_in_f16_misses_the_f16_to_f32_budget() {
    honest_and_worse(Precision::new(Dtype::F16, Dtype::F32), Dtype::F16);
}

#[test]
fn f32_budgets_are_unchanged_and_narrow_ones_add_the_output_rounding() {
    let case = Case::new(Op::Matmul, &[3, 5, 7], Knobs::default(), 3).unwrap();
    let f32_bound = case.expected()[0].bound.clone();
    let bf16 = case.clone().with_precision(Precision::new(Dtype::Bf16, Dtype::F32)).expected();
    let value = &bf16[0].value;
    let scale = &bf16[0].scale;
    for i in 0..f32_bound.len() {
        // (K + 3)·2⁻²⁴·Σ|a||b| + 2⁻⁸·|c| (the inputs differ by their rounding, so the scale too).
        let want = 10.0 * (-24f64).exp2() * scale[i] + (-8f64).exp2() * value[i].abs();
        assert!((bf16[0].bound[i] - want).abs() <= 1e-12 * want, "{i}: {} vs {want}", bf16[0].bound[i]);
        assert!(f32_bound[i] < bf16[0].bound[i]);
    }
    let again = Case::new(Op::Matmul, &[3, 5, 7], Knobs::default(), 3).unwrap().with_precision(Precision::F32);
    assert_eq!(again.expected()[0].bound, f32_bound, "f32 with_precision changes nothing");
}

/// `C = A·B` at the case's own depth with each operand rounded by `operand` first (a TF32 kernel
/// reads `Dtype::Tf32.round` of each), the products summed exactly and rounded once to f32.
fn rounded_operands_product(case: &Case, operand: impl Fn(f32) -> f32) -> Vec<f32> {
    let (m, n, k) = (case.dims[0], case.dims[1], case.dims[2]);
    let (a, b) = (&case.inputs()[0], &case.inputs()[1]);
    let dot = |i: usize, j: usize| {
        (0..k).map(|p| f64::from(operand(a[i * k + p])) * f64::from(operand(b[p * n + j]))).sum::<f64>() as f32
    };
    (0..m * n).map(|e| dot(e / n, e % n)).collect()
}

/// TF32 has a budget of its own: an honest TF32 kernel (operands rounded to 2⁻¹¹, f32 sums) is
/// within it and outside f32's; one that rounds its operands to bf16 (2⁻⁸) misses it. Shallow
/// products (K = 4), where the rounding of each operand is most of the error, show it.
#[test]
fn tf32_has_its_own_budget_between_f32_and_bf16() {
    let f32_case = Case::new(Op::Matmul, &[16, 16, 4], Knobs::default(), 5).unwrap();
    let tf32_case = f32_case.clone().with_precision(Precision::TF32);
    assert_eq!(tf32_case.inputs(), f32_case.inputs(), "TF32 inputs stay f32: the kernel rounds them");
    let tf32 = rounded_operands_product(&tf32_case, |x| Dtype::Tf32.round(x));
    let within = compare(&tf32_case.expected(), std::slice::from_ref(&tf32));
    assert!(within.ok(), "the honest TF32 kernel failed: {:?}", within.first_failure);
    let as_f32 = compare(&f32_case.expected(), &[tf32]);
    assert!(!as_f32.ok() && as_f32.worst_budget_ratio > 10.0, "TF32 passed f32's budget: {as_f32:?}");
    let bf16_operands = rounded_operands_product(&tf32_case, |x| Dtype::Bf16.round(x));
    let worse = compare(&tf32_case.expected(), &[bf16_operands]);
    assert!(!worse.ok(), "bf16 operands passed TF32's budget ({} of it)", worse.worst_budget_ratio);
    let exact = rounded_operands_product(&tf32_case, |x| x);
    assert!(compare(&tf32_case.expected(), &[exact]).ok(), "an f32 kernel is within TF32's budget too");
}

#[test]
fn the_tf32_budget_adds_the_products_rounding_to_the_f32_one() {
    let case = Case::new(Op::Matmul, &[3, 5, 7], Knobs::default(), 3).unwrap();
    let f32_bound = case.expected()[0].bound.clone();
    let tf32 = case.with_precision(Precision::TF32).expected();
    let u = (-11f64).exp2();
    for (i, (bound, scale)) in tf32[0].bound.iter().zip(&tf32[0].scale).enumerate() {
        // (K + 3)·2⁻²⁴·Σ|a||b| + (2·2⁻¹¹ + 2⁻²²)·Σ|a||b|, no output rounding (C stays f32).
        let want = 10.0 * (-24f64).exp2() * scale + (2.0 * u + u * u) * scale;
        assert!((bound - want).abs() <= 1e-12 * want, "{i}: {bound} vs {want}");
        assert!(f32_bound[i] < *bound);
    }
}
