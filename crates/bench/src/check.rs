//! Comparing a kernel's outputs with the f64 reference, element by element, and what the other
//! checks of a launch found (see [`crate::vet`]).

use crate::reference::Expected;

/// The verdict on one launch: every element within its budget, or the first one that was not;
/// and what the checks beyond the error found (a result not to be trusted, an input written,
/// a guard zone broken, work left running after the launch returned).
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// `max |got − ref| / scale` over all elements (NaN and ∞ count as infinite).
    pub max_rel_err: f64,
    /// `max |got − ref| / bound`: at most 1 when the kernel is within budget.
    pub worst_budget_ratio: f64,
    /// How many elements missed their bound.
    pub failures: usize,
    /// The first element that missed, described for a person.
    pub first_failure: Option<String>,
    /// Each failed check beyond the error, named, with what it found
    /// (`untrustworthy: output 0 is all zeros …`).
    pub findings: Vec<String>,
    /// What a person should know that is no failure: finite values the conversions of the
    /// precision turned into ±∞, counted ([`crate::case::Case::overflows`]).
    pub notes: Vec<String>,
}

impl Check {
    /// Every element within its budget and no other check failed.
    pub fn ok(&self) -> bool {
        self.failures == 0 && self.findings.is_empty()
    }

    /// What failed, for a person: every finding, then the first element over budget with the
    /// worst ratio (`over budget (3.1× budget): output 0[4]: got …`); `None` when it passed.
    pub fn failure(&self) -> Option<String> {
        let mut parts = self.findings.clone();
        if let Some(first) = &self.first_failure {
            parts.push(format!("over budget ({:.1}× budget): {first}", self.worst_budget_ratio));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Compares every output (`got[o]`) with its reference (`expected[o]`).
pub fn compare(expected: &[Expected], got: &[Vec<f32>]) -> Check {
    let mut check = Check {
        max_rel_err: 0.0,
        worst_budget_ratio: 0.0,
        failures: 0,
        first_failure: None,
        findings: Vec::new(),
        notes: Vec::new(),
    };
    if expected.len() != got.len() {
        check.failures = 1;
        check.first_failure = Some(format!("{} outputs, expected {}", got.len(), expected.len()));
        return check;
    }
    for (o, (exp, got)) in expected.iter().zip(got).enumerate() {
        if exp.value.len() != got.len() {
            check.failures += 1;
            check.first_failure.get_or_insert(format!(
                "output {o}: {} values, expected {}",
                got.len(),
                exp.value.len()
            ));
            continue;
        }
        for (i, &g) in got.iter().enumerate() {
            // Equal values have no error, ±∞ where ±∞ is expected included.
            let err = if f64::from(g) == exp.value[i] { 0.0 } else { (f64::from(g) - exp.value[i]).abs() };
            let (rel, ratio) = if err.is_finite() {
                (err / exp.scale[i].max(f64::MIN_POSITIVE), err / exp.bound[i])
            } else {
                (f64::INFINITY, f64::INFINITY)
            };
            check.max_rel_err = check.max_rel_err.max(rel);
            check.worst_budget_ratio = check.worst_budget_ratio.max(ratio);
            if ratio > 1.0 {
                check.failures += 1;
                check.first_failure.get_or_insert_with(|| {
                    format!(
                        "output {o}[{i}]: got {g:e}, expected {:e} ± {:.1e} (error {err:.1e})",
                        exp.value[i], exp.bound[i]
                    )
                });
            }
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(values: &[f64]) -> Expected {
        Expected {
            value: values.to_vec(),
            scale: values.iter().map(|v| v.abs()).collect(),
            bound: vec![1e-6; values.len()],
        }
    }

    #[test]
    fn within_budget_passes() {
        let check = compare(&[expected(&[1.0, -2.0])], &[vec![1.0, -2.0000005]]);
        assert!(check.ok(), "{check:?}");
        assert!(check.max_rel_err > 0.0 && check.max_rel_err < 1e-6);
    }

    #[test]
    fn nan_fails_even_though_max_ignores_it() {
        let check = compare(&[expected(&[1.0, 2.0])], &[vec![1.0, f32::NAN]]);
        assert_eq!(check.failures, 1);
        assert!(check.max_rel_err.is_infinite());
        assert!(check.first_failure.unwrap().contains("output 0[1]: got NaN"));
    }

    #[test]
    fn a_finding_fails_a_launch_within_budget_and_is_named_first() {
        let mut check = compare(&[expected(&[1.0])], &[vec![1.1]]);
        check.findings.push("inputs changed: input 0".into());
        assert!(!check.ok());
        let failure = check.failure().unwrap();
        assert!(failure.starts_with("inputs changed: input 0; over budget ("), "{failure}");
        let mut within = compare(&[expected(&[1.0])], &[vec![1.0]]);
        assert_eq!(within.failure(), None);
        within.findings.push("guard zone of c: broken".into());
        assert!(!within.ok());
        assert_eq!(within.failure().as_deref(), Some("guard zone of c: broken"));
    }

    #[test]
    fn wrong_value_and_wrong_length_fail() {
        assert_eq!(compare(&[expected(&[1.0])], &[vec![1.1]]).failures, 1);
        assert_eq!(compare(&[expected(&[1.0])], &[vec![1.0, 2.0]]).failures, 1);
        assert_eq!(compare(&[expected(&[1.0])], &[]).failures, 1);
    }
}
