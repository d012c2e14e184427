//! The checks a launch must pass before any time of it is shown, built-in and loaded kernels
//! alike, so that a kernel that does not do the work cannot pass:
//!
//! 1. the outputs are poisoned before the launch (NaN, or the initial contents of an output the
//!    kernel reads), so an element left unwritten fails;
//! 2. with `late` set, the outputs are read as soon as the launch returns, and again after a full
//!    synchronize and a wait: a change means work was left running after the launch returned
//!    (on another stream or thread), and the checks use the second reading;
//! 3. every output is compared with the f64 reference ([`crate::check::compare`]);
//! 4. the trust check ([`crate::trust`]): all zeros, a constant or mostly poison where the
//!    reference is not, whatever the error;
//! 5. the inputs read back equal what was uploaded, bit for bit;
//! 6. no guard zone around any buffer of the launch is broken (on devices that keep them).
//!
//! The benchmark applies these at the timed shape, at a few awkward shapes of the op
//! ([`RowConformance`], every layout and partial tiles) and after the timed launches on fresh
//! inputs in the same buffers ([`recheck_fresh`]); `kernelab check` at every case of its suite.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kernelab_tensor::{Device, Op, Precision, Result};

use crate::case::{Case, Prepared, buffer_names};
use crate::check::{Check, compare};
use crate::reference::Expected;

/// How long after a full synchronize the outputs are read again to catch work left running.
pub const LATE: Duration = Duration::from_millis(20);

/// One checked launch: its verdict, and the seconds from the launch to the first reading of its
/// outputs (what one launch costs, for predicting a row's time).
#[derive(Clone, Debug)]
pub struct Checked {
    pub check: Check,
    pub launch_s: f64,
}

/// Runs `variant` once on `p`, which holds `case`'s inputs, with its outputs poisoned first, and
/// applies every check of this module; `late` is the wait of check 2 (`None` skips it). An error
/// is the launch's or a transfer's.
pub fn checked_launch(
    p: &mut Prepared,
    case: &Case,
    expected: &[Expected],
    variant: &str,
    late: Option<Duration>,
) -> Result<Checked> {
    p.reset_outputs_from(case)?;
    launch_and_vet(p, case, expected, variant, late)
}

/// One launch on the outputs as they are, and every check of [`checked_launch`] on its results.
fn launch_and_vet(
    p: &mut Prepared,
    case: &Case,
    expected: &[Expected],
    variant: &str,
    late: Option<Duration>,
) -> Result<Checked> {
    let started = Instant::now();
    p.launch(Some(variant))?;
    let first = p.outputs()?;
    let launch_s = started.elapsed().as_secs_f64();
    let mut findings = Vec::new();
    let got = match late {
        None => first,
        Some(wait) => {
            p.device().synchronize()?;
            std::thread::sleep(wait);
            let then = p.outputs()?;
            findings.extend(changed(&first, &then, buffer_names(case.op).1, wait));
            then
        }
    };
    let mut check = compare(expected, &got);
    findings.extend(crate::trust::distrust(expected, &got, |o| case.initial(o)));
    findings.extend(inputs_changed(case, &p.read_inputs()?));
    findings.extend(p.guard_violations()?.into_iter().map(|v| format!("guard zone broken: {v}")));
    check.findings = findings;
    check.notes = case.overflows().to_vec();
    Ok(Checked { check, launch_s })
}

/// Where two readings of the outputs differ, bit for bit: the first change, as a finding.
fn changed(first: &[Vec<f32>], then: &[Vec<f32>], names: &[&str], wait: Duration) -> Option<String> {
    let outputs = first.iter().zip(then).enumerate();
    let (o, i, was, is) = outputs.into_iter().find_map(|(o, (a, b))| {
        let i = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())?;
        Some((o, i, a[i], b[i]))
    })?;
    let name = names.get(o).copied().unwrap_or("?");
    Some(format!(
        "work left running after the launch returned: {name}[{i}] read {was:e} as the launch returned and {is:e} \
         after a full synchronize and {} ms",
        wait.as_millis()
    ))
}

/// The first input of `case` that `now` (read back after the launch) no longer equals.
fn inputs_changed(case: &Case, now: &[Vec<f32>]) -> Option<String> {
    let names = buffer_names(case.op).0;
    case.inputs().iter().zip(now).enumerate().find_map(|(k, (was, is))| {
        let i = was.iter().zip(is).position(|(x, y)| x.to_bits() != y.to_bits())?;
        let count = was.iter().zip(is).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
        Some(format!(
            "an input changed: {}[{i}] was {:e} and is {:e} after the launch ({count} of {} values changed)",
            names.get(k).copied().unwrap_or("?"),
            was[i],
            is[i],
            was.len()
        ))
    })
}

/// The awkward shapes of each op that every benchmark row is checked at before it is timed
/// ([`crate::conformance::row_cases`]), with their references made once a run, and each
/// variant's verdict kept once it is known (a variant benchmarked at several shapes is checked
/// once).
#[derive(Default)]
pub struct RowConformance {
    cases: HashMap<(Op, Precision), Vec<CheckedCase>>,
    verdicts: HashMap<(u64, Op, &'static str), Verdict>,
}

/// A case and its f64 reference.
type CheckedCase = (Case, Vec<Expected>);

/// A variant's verdict at the row shapes: `None` when it passed, else what failed and its check.
pub type Verdict = Option<(String, Check)>;

impl RowConformance {
    /// Whether `variant` of `op` on `device` has been checked at the row shapes already: its
    /// first row waits for late work ([`LATE`]); a kernel that leaves work running does so at
    /// every shape, so later rows of a sweep need not wait again.
    pub fn seen(&self, device: &Device, op: Op, variant: &'static str) -> bool {
        self.verdicts.contains_key(&(device.id(), op, variant))
    }

    /// Why `variant` of `op` on `device` fails one of the op's row shapes — `conformance OP SHAPE:
    /// what failed` (the first shape only) and its check — or `None` when it passes them all. An
    /// error (a launch's or a transfer's) is described with the shape it happened at.
    /// The cases are those of the variant's `precision` (inputs rounded to its storage).
    pub fn verdict(
        &mut self,
        device: &Device,
        op: Op,
        variant: &'static str,
        precision: Precision,
    ) -> std::result::Result<Verdict, String> {
        if let Some(known) = self.verdicts.get(&(device.id(), op, variant)) {
            return Ok(known.clone());
        }
        let cases = match self.cases.entry((op, precision)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(crate::conformance::row_cases(op, precision).map_err(|e| format!("conformance {op}: {e}"))?)
            }
        };
        let mut verdict = None;
        for (case, expected) in cases.iter() {
            let at = || format!("conformance {op} {}", case.label());
            let checked = case
                .prepare(device)
                .and_then(|mut p| checked_launch(&mut p, case, expected, variant, None))
                .map_err(|e| format!("{}: {e}", at()))?;
            if let Some(why) = checked.check.failure() {
                verdict = Some((format!("{}: {why}", at()), checked.check));
                break;
            }
        }
        self.verdicts.insert((device.id(), op, variant), verdict.clone());
        Ok(verdict)
    }
}

/// After the timed launches: writes `fresh` (the timed case's work with other inputs, see
/// [`Case::reseeded`]) into the same buffers and checks one launch of `variant` against
/// `expected`, the reference of `fresh`, reading the outputs after a full synchronize (with the
/// wait for late work). A kernel that caches its first answer, returns an earlier result or skips
/// work after its first calls fails here.
pub fn recheck_fresh(
    p: &mut Prepared,
    (fresh, expected): (&Case, &[Expected]),
    variant: &str,
    stale: &[Vec<f32>],
    late: Option<Duration>,
) -> Result<Check> {
    p.write_inputs(fresh)?;
    // The outputs hold `stale`, what the timed launches left there (an answer for the old
    // inputs; only those the op reads get their starting values): a kernel that skips its work
    // when its output is not the poison, or answers from memory, leaves the old answer and fails.
    p.reset_outputs_to_stale(fresh, stale)?;
    Ok(launch_and_vet(p, fresh, expected, variant, late)?.check)
}
