//! The re-check on fresh inputs after the timed launches: a spec's rows on a device share their
//! buffers, so each spec's rows are held until the last has left the rounds, then each is checked
//! once more ([`vet::recheck_fresh`]) on inputs from another seed written into those buffers.

use crate::case::{Case, Prepared};
use crate::record::{Record, Status};
use crate::reference::Expected;
use crate::vet;

use super::Pending;

/// The seed of spec `s`'s fresh inputs for the re-check after its timing (its timed inputs come
/// from `0x5eed + s`).
fn fresh_seed(s: usize) -> u64 {
    !(0x5eed + s as u64)
}

/// The records of rows that left the rounds, held by spec until the spec's last row has left and
/// the re-check on fresh inputs has run for each: a spec's rows on a device share their buffers,
/// and a row re-checked while another still times would hand it the fresh inputs early.
pub(super) struct Held {
    /// Rows of each spec still in the rounds.
    left: Vec<usize>,
    /// (device, variant) re-checked already: only the first re-check of each waits for late work.
    waited: std::collections::HashSet<(u64, &'static str)>,
    /// The pending index and timed record of each row of a spec that has left.
    rows: Vec<Vec<(usize, Record)>>,
}

impl Held {
    pub(super) fn new(specs: usize, pending: &[Pending]) -> Self {
        let mut left = vec![0; specs];
        pending.iter().for_each(|p| left[p.spec] += 1);
        Self { left, rows: vec![Vec::new(); specs], waited: Default::default() }
    }

    /// Row `i` left the rounds with `record`; returns the records now final (with their pending
    /// indices): none, or every row of its spec, re-checked.
    pub(super) fn leave<'c>(
        &mut self,
        pending: &[Pending<'c>],
        i: usize,
        record: Record,
        prepared: &mut [Prepared<'c>],
    ) -> Vec<(usize, Record)> {
        let s = pending[i].spec;
        self.rows[s].push((i, record));
        self.left[s] -= 1;
        if self.left[s] > 0 {
            return Vec::new();
        }
        let rows = std::mem::take(&mut self.rows[s]);
        // What the timed launches left in each of the spec's buffers, before any re-check.
        let stale: std::collections::HashMap<usize, Vec<Vec<f32>>> = rows
            .iter()
            .filter_map(|(j, _)| {
                let at = pending[*j].prepared;
                prepared[at].outputs().ok().map(|outputs| (at, outputs))
            })
            .collect();
        let fresh = pending[i].case.reseeded(fresh_seed(s));
        let expected = fresh.as_ref().map(Case::expected).unwrap_or_default();
        let mut recheck = |j: usize, record: Record, prepared: &mut [Prepared<'c>]| match &fresh {
            Ok(fresh) => {
                let stale = stale.get(&pending[j].prepared).map_or(&[][..], Vec::as_slice);
                let first = self.waited.insert((pending[j].row.device.id(), pending[j].row.variant.name));
                let late = first.then_some(vet::LATE);
                recheck(&pending[j], record, (fresh, &expected, stale, late), prepared)
            }
            Err(_) if record.status != Status::Ok => record,
            Err(e) => pending[j].row.record(Status::Error, Some(format!("error: in the re-check's fresh inputs: {e}"))),
        };
        rows.into_iter().map(|(j, record)| (j, recheck(j, record, prepared))).collect()
    }
}

/// The re-check of a timed row on `fresh` inputs ([`vet::recheck_fresh`]), its outputs holding
/// `stale` (what the timing left in its buffers): the record as it was,
/// or a `fail` (an `error`) row without its times that says what the re-check found. A failed row
/// leaves new buffers behind.
///
/// The re-check reuses the buffers the row was timed in, so that a kernel that remembers its
/// answers by buffer is caught too; new ones are made first only when their guard zones are
/// already broken.
fn recheck<'c>(
    p: &Pending<'c>,
    record: Record,
    (fresh, expected, stale, late): (&Case, &[Expected], &[Vec<f32>], Option<std::time::Duration>),
    prepared: &mut [Prepared<'c>],
) -> Record {
    if record.status != Status::Ok {
        return record;
    }
    let buffers = &mut prepared[p.prepared];
    // A guard zone broken during the timed launches of this spec's rows cannot be traced to one
    // of them; the re-check runs on new buffers rather than blame the first row re-checked.
    if buffers.guard_violations().is_ok_and(|v| !v.is_empty())
        && let Ok(new) = p.case.prepare(p.row.device)
    {
        *buffers = new;
    }
    let (n, name) = (record.n, p.row.variant.name);
    let failed = match vet::recheck_fresh(buffers, (fresh, expected), name, stale, late) {
        Ok(check) if check.ok() => return record,
        Ok(check) => {
            let why = check.failure().unwrap_or_default();
            p.row.failed(&check, format!("fresh inputs after {n} timed samples (times dropped): {why}"))
        }
        Err(e) => p.row.record(Status::Error, Some(format!("error: in the re-check on fresh inputs: {e}"))),
    };
    if let Ok(new) = p.case.prepare(p.row.device) {
        *buffers = new;
    }
    failed
}
