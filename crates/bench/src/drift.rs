//! The drift of the machine within one run, measured through its rounds and taken out of the
//! samples before two runs are compared.
//!
//! Every round of a run takes one sample of every row still timing ([`crate::rounds`]), so a slow
//! stretch of the machine (a neighbour's job on the same core, a frequency drop) shows up as a
//! round in which most rows ran slow at once. Model a sample of row `i` in round `r` as
//! `tᵢᵣ = mᵢ · fᵣ · εᵢᵣ`: the row's own time, the round's speed factor, noise. Median polish fits it
//! on the log scale, robustly: alternately `fᵣ = median over i of tᵢᵣ / mᵢ` and
//! `mᵢ = median over r of tᵢᵣ / fᵣ`, the factors scaled to a median of 1 so that the level of the
//! run as a whole stays in the rows (a run slower throughout is still slower). The steadied
//! samples are `tᵢᵣ / fᵣ`.
//!
//! Without it a burst that covers the few rounds of a slow row (it takes its 3 samples and
//! leaves) moves that row's median by the burst's size while the fast rows, spread over many
//! rounds, barely move: identical code then compares as 1.4–2× slower. With it, the fast rows
//! timed in the same rounds measure the burst and it is divided out.
//!
//! Rows are polished per device (a slow CPU minute does not slow a GPU's own clock), and a round
//! is adjusted only when at least [`MIN_ROWS`] rows of the device were timed in it; one row
//! alone cannot tell its own change from the machine's.

use std::collections::HashMap;

use crate::record::{Record, Report};
use crate::stats::median;

/// The fewest rows of one device in a round for its factor to be estimated.
pub const MIN_ROWS: usize = 4;

/// Polish passes: the fit settles in two or three on the runs seen here.
const PASSES: usize = 4;

/// `report` with each timed row's samples divided by its round's speed factor and its median
/// recomputed from them (see the module header); rows without rounds are kept as they are.
pub fn steady(report: &Report) -> Report {
    let mut out = report.clone();
    let mut by_device: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, r) in report.records.iter().enumerate() {
        if r.timed() && r.rounds.len() == r.samples_s.len() && r.samples_s.iter().all(|s| *s > 0.0) {
            by_device.entry((r.backend.as_str(), r.device.as_str())).or_default().push(i);
        }
    }
    for rows in by_device.values() {
        let records: Vec<&Record> = rows.iter().map(|&i| &report.records[i]).collect();
        let factors = round_factors(&records);
        for (&i, record) in rows.iter().zip(&records) {
            let samples: Vec<f64> = record
                .samples_s
                .iter()
                .zip(&record.rounds)
                .map(|(s, r)| s / factors.get(r).copied().unwrap_or(1.0))
                .collect();
            out.records[i].median_s = median(&mut samples.clone());
            out.records[i].samples_s = samples;
        }
    }
    out
}

/// The speed factor of every round that at least [`MIN_ROWS`] of `rows` were timed in, by median
/// polish (see the module header); rounds with fewer rows are left out (factor 1).
pub fn round_factors(rows: &[&Record]) -> HashMap<u32, f64> {
    let logs: Vec<Vec<(u32, f64)>> =
        rows.iter().map(|r| r.rounds.iter().copied().zip(r.samples_s.iter().map(|s| s.ln())).collect()).collect();
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for row in &logs {
        for (round, _) in row {
            *counts.entry(*round).or_default() += 1;
        }
    }
    let mut factor: HashMap<u32, f64> =
        counts.iter().filter(|(_, n)| **n >= MIN_ROWS).map(|(round, _)| (*round, 0.0)).collect();
    if factor.is_empty() {
        return HashMap::new();
    }
    let at = |factor: &HashMap<u32, f64>, round: &u32| factor.get(round).copied().unwrap_or(0.0);
    for _ in 0..PASSES {
        let level: Vec<f64> = logs
            .iter()
            .map(|row| median(&mut row.iter().map(|(r, y)| y - at(&factor, r)).collect::<Vec<f64>>()))
            .collect();
        let mut residuals: HashMap<u32, Vec<f64>> = HashMap::new();
        for (row, m) in logs.iter().zip(&level) {
            for (round, y) in row.iter().filter(|(r, _)| factor.contains_key(r)) {
                residuals.entry(*round).or_default().push(y - m);
            }
        }
        for (round, mut res) in residuals {
            factor.insert(round, median(&mut res));
        }
        let centre = median(&mut factor.values().copied().collect::<Vec<f64>>());
        factor.values_mut().for_each(|f| *f -= centre);
    }
    factor.into_iter().map(|(round, f)| (round, f.exp())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::report;
    use crate::record::tests::row;

    /// A row timed in `rounds` with a base time `t`, each sample multiplied by `burst` in the
    /// rounds below `burst_until`, and a small deterministic jitter.
    fn timed(name: &str, t: f64, rounds: std::ops::Range<u32>, burst: f64, burst_until: u32) -> Record {
        let rounds: Vec<u32> = rounds.collect();
        let samples = rounds
            .iter()
            .map(|&r| {
                t * if r < burst_until { burst } else { 1.0 }
                    * (1.0 + 0.01 * f64::from((r * 7 + name.len() as u32) % 5))
            })
            .collect::<Vec<_>>();
        let mut record = row(name, median(&mut samples.clone()), &[64, 64, 64], 1);
        record.samples_s = samples;
        record.n = rounds.len();
        record.rounds = rounds;
        record
    }

    /// Twelve fast rows timed in 30 rounds and six slow rows timed in the first 3; `burst` slows
    /// the machine 1.8× through the first 3 rounds.
    fn run(burst: f64) -> Report {
        let mut rows: Vec<Record> =
            (0..12).map(|i| timed(&format!("fast{i}"), 1e-4 * f64::from(i + 1), 0..30, burst, 3)).collect();
        rows.extend((0..6).map(|i| timed(&format!("slow{i}"), 0.5 + 0.1 * f64::from(i), 0..3, burst, 3)));
        report(rows)
    }

    #[test]
    fn a_burst_over_the_slow_rows_rounds_is_divided_out() {
        let (calm, burst) = (run(1.0), run(1.8));
        let slow = |r: &Report| r.records.iter().find(|r| r.variant == "slow3").map(|r| r.median_s).unwrap();
        // Raw, the slow row looks 1.8× slower; steadied, it is within its jitter of the calm run.
        assert!((slow(&burst) / slow(&calm) - 1.8).abs() < 0.05);
        let ratio = slow(&steady(&burst)) / slow(&steady(&calm));
        assert!((ratio - 1.0).abs() < 0.03, "steadied ratio {ratio}");
    }

    #[test]
    fn a_run_slower_throughout_stays_slower() {
        let mut slower = run(1.0);
        for r in &mut slower.records {
            r.samples_s.iter_mut().for_each(|s| *s *= 1.1);
            r.median_s *= 1.1;
        }
        let (a, b) = (steady(&run(1.0)), steady(&slower));
        for (x, y) in a.records.iter().zip(&b.records) {
            assert!((y.median_s / x.median_s - 1.1).abs() < 1e-9, "{}: {}", x.variant, y.median_s / x.median_s);
        }
    }

    #[test]
    fn one_row_slower_in_every_round_is_not_taken_for_the_machine() {
        let base = run(1.0);
        let mut new = run(1.0);
        let slowed = new.records.iter_mut().find(|r| r.variant == "fast4").unwrap();
        slowed.samples_s.iter_mut().for_each(|s| *s *= 1.1);
        let ratio = |r: &Report| r.records.iter().find(|r| r.variant == "fast4").map(|r| r.median_s).unwrap();
        let found = ratio(&steady(&new)) / ratio(&steady(&base));
        assert!((found - 1.1).abs() < 0.01, "{found}");
    }

    #[test]
    fn rounds_with_too_few_rows_are_left_alone() {
        let rows = [timed("a", 1e-3, 0..10, 2.0, 5), timed("b", 2e-3, 0..10, 2.0, 5)];
        assert!(round_factors(&rows.iter().collect::<Vec<_>>()).is_empty());
    }
}
