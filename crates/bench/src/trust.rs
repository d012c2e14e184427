//! The trust check (benchdnn's "mistrusted"): a result that shows the kernel did not do the work
//! is refused whatever its error. For each output, with reference `e` (bound `b` per element) and
//! result `g`:
//!
//! - **all zeros**: every `g[i] = 0` while somewhere `|e[i]| > b[i]` — the reference is not zero
//!   there (a ReLU of all-negative inputs is legitimately all zeros, and passes);
//! - **constant**: `n ≥ 2`, every `g[i]` the same finite value, while somewhere
//!   `|e[i] − e[0]| > b[i] + b[0]` — the reference is not constant (a fill is, and passes);
//! - **mostly poison**: more than half of the elements where the reference differs from the
//!   poison (NaN, or the initial contents of an output the kernel reads) by more than `b[i]`
//!   still hold the poison, bit for bit — the kernel left them unwritten.
//!
//! An honest kernel within its budget can meet none of these: each needs some element off by
//! more than its bound. The check names what the kernel did instead of only how far it missed.

use crate::reference::Expected;

/// Why output `got[o]` is not to be trusted, one line per output that fails; `poison(o)` is the
/// initial contents of output `o`, `None` when it was NaN-filled.
pub fn distrust<'p>(
    expected: &[Expected],
    got: &[Vec<f32>],
    poison: impl Fn(usize) -> Option<&'p [f32]>,
) -> Vec<String> {
    let mut found = Vec::new();
    for (o, (e, g)) in expected.iter().zip(got).enumerate() {
        if e.value.len() != g.len() || g.is_empty() {
            continue;
        }
        let why = all_zeros(e, g).or_else(|| constant(e, g)).or_else(|| mostly_poison(e, g, poison(o)));
        if let Some(why) = why {
            found.push(format!("untrustworthy: output {o} {why}"));
        }
    }
    found
}

/// `is all zeros where the reference is not (e.g. [3] = 0.52)`.
fn all_zeros(e: &Expected, g: &[f32]) -> Option<String> {
    if g.iter().any(|&v| v != 0.0) {
        return None;
    }
    let i = (0..g.len()).find(|&i| e.value[i].abs() > e.bound[i])?;
    Some(format!("is all zeros where the reference is not (e.g. [{i}] = {:.3e})", e.value[i]))
}

/// `is the constant 1.5 where the reference is not (e.g. [0] = …, [7] = …)`.
fn constant(e: &Expected, g: &[f32]) -> Option<String> {
    let first = g[0];
    if g.len() < 2 || !first.is_finite() || g.iter().any(|&v| v.to_bits() != first.to_bits()) {
        return None;
    }
    let i = (1..g.len()).find(|&i| (e.value[i] - e.value[0]).abs() > e.bound[i] + e.bound[0])?;
    Some(format!(
        "is the constant {first:e} everywhere where the reference is not (e.g. [0] = {:.3e}, [{i}] = {:.3e})",
        e.value[0], e.value[i]
    ))
}

/// `still holds the poison (NaN) in 75% of the 128 elements it had to change`.
fn mostly_poison(e: &Expected, g: &[f32], initial: Option<&[f32]>) -> Option<String> {
    let poison = |i: usize| initial.map_or(f32::NAN, |p| p.get(i).copied().unwrap_or(f32::NAN));
    let (mut to_change, mut left) = (0usize, 0usize);
    for (i, &v) in g.iter().enumerate() {
        let p = poison(i);
        let differs = if p.is_nan() { !e.value[i].is_nan() } else { (e.value[i] - f64::from(p)).abs() > e.bound[i] };
        if differs {
            to_change += 1;
            left += usize::from(v.to_bits() == p.to_bits() || (p.is_nan() && v.is_nan()));
        }
    }
    (2 * left > to_change).then(|| {
        let what = if initial.is_some() { "its initial contents" } else { "the poison (NaN)" };
        format!(
            "still holds {what} in {:.0}% of the {to_change} elements it had to change",
            100.0 * left as f64 / to_change as f64
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference with the values given and a bound of `1e-6` each.
    fn reference(values: &[f64]) -> Expected {
        Expected {
            value: values.to_vec(),
            scale: values.iter().map(|v| v.abs()).collect(),
            bound: vec![1e-6; values.len()],
        }
    }

    fn none(_: usize) -> Option<&'static [f32]> {
        None
    }

    #[test]
    fn zeros_are_refused_only_where_the_reference_is_not_zero() {
        let found = distrust(&[reference(&[0.0, 0.52, 0.0])], &[vec![0.0; 3]], none);
        assert_eq!(
            found,
            vec!["untrustworthy: output 0 is all zeros where the reference is not (e.g. [1] = 5.200e-1)"]
        );
        // A ReLU of all-negative inputs: the reference is all zeros, and so is an honest result.
        assert!(distrust(&[reference(&[0.0, 0.0, 0.0])], &[vec![0.0; 3]], none).is_empty());
        // One non-zero value is not "all zeros" (the error check judges it).
        assert!(distrust(&[reference(&[0.0, 0.52, 0.0])], &[vec![0.0, 0.52, 0.0]], none).is_empty());
    }

    #[test]
    fn a_constant_is_refused_only_where_the_reference_is_not_constant() {
        let found = distrust(&[reference(&[1.0, 2.0, 3.0])], &[vec![1.5; 3]], none);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("output 0 is the constant 1.5e0 everywhere") && found[0].contains("[1] = 2.000e0"));
        // A fill, or a softmax over one column: the reference is constant too.
        assert!(distrust(&[reference(&[1.0, 1.0, 1.0])], &[vec![1.0; 3]], none).is_empty());
        // Within each other's bounds is constant enough.
        assert!(distrust(&[reference(&[1.0, 1.0 + 1e-7])], &[vec![1.0; 2]], none).is_empty());
        // One element cannot be told from a constant.
        assert!(distrust(&[reference(&[1.0])], &[vec![7.0]], none).is_empty());
    }

    #[test]
    fn an_output_left_mostly_poisoned_is_refused_and_half_is_not_mostly() {
        let e = [reference(&[1.0, 2.0, 3.0, 4.0])];
        let found = distrust(&e, &[vec![1.0, f32::NAN, f32::NAN, f32::NAN]], none);
        assert_eq!(
            found,
            vec!["untrustworthy: output 0 still holds the poison (NaN) in 75% of the 4 elements it had to change"]
        );
        assert!(distrust(&e, &[vec![1.0, 2.0, f32::NAN, f32::NAN]], none).is_empty());
        // An output the kernel reads (axpy's y): its initial contents are its poison.
        let y0 = [5.0f32, 6.0, 3.0, 8.0];
        let found = distrust(&e, &[y0.to_vec()], |_| Some(&y0[..]));
        assert_eq!(
            found,
            vec!["untrustworthy: output 0 still holds its initial contents in 100% of the 3 elements it had to change"]
        );
        assert!(distrust(&e, &[vec![1.0, 2.0, 3.0, 4.0]], |_| Some(&y0[..])).is_empty());
    }

    #[test]
    fn every_output_is_judged_and_named() {
        let expected = [reference(&[1.0, 2.0]), reference(&[3.0, 4.0])];
        let found = distrust(&expected, &[vec![1.0, 2.0], vec![0.0, 0.0]], none);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("untrustworthy: output 1 is all zeros"), "{found:?}");
    }
}
