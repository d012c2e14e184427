//! Timing in interleaved rounds. Every row of a run is checked and warmed up first; then each
//! round takes one sample of every row still timing, in an order shuffled for that round, so that
//! a slow minute of the machine (a neighbour's build, a frequency drop) falls on every row alike
//! and the samples of two rows taken in the same round are a pair.
//!
//! Round `r`'s order is a pure function of the seed and `r`: all rows' indices are shuffled by a
//! generator seeded with `seed + r`, and the rows no longer timing are left out, so a report's
//! seed and each sample's round say the order every sample was taken in.
//!
//! A row leaves the rounds after `plan.repeat` samples, or once it has `plan.min_runs` samples
//! and the time spent on its samples (preparation, launches, synchronizes) reached `plan.budget`;
//! the rounds end when no row is left. A fast row therefore takes part in more rounds than a slow
//! one, and every row costs about what it cost when rows were timed one after another.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use kernelab_tensor::Result;

use crate::timing::{Plan, Sample};

/// What the rounds measured of one row: every sample in the order taken, by the host's clock
/// and (when the device timed every one) by the device's, the round of each, and the seconds
/// spent on them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowTimes {
    pub host: Vec<f64>,
    pub device: Vec<f64>,
    pub rounds: Vec<u32>,
    pub spent: f64,
}

impl RowTimes {
    fn add(&mut self, round: u32, sample: Sample) {
        self.host.push(sample.host);
        self.device.extend(sample.device);
        self.rounds.push(round);
        self.spent += sample.spent;
    }

    /// Has the row what `plan` asks of it?
    fn done(&self, plan: &Plan) -> bool {
        let n = self.host.len();
        n >= plan.repeat.max(1) || (n >= plan.min_runs && self.spent >= plan.budget.as_secs_f64())
    }
}

/// The order of round `round` over `rows` rows: `0..rows` shuffled by a generator seeded with
/// `seed + round`.
pub fn order(seed: u64, round: u32, rows: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(u64::from(round)));
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut rng);
    order
}

/// Runs rounds over `rows` rows until every one is done: `on_round(r, left)` as round `r`
/// starts with `left` rows, `sample(i)` to take one sample of row `i`, and `done(i, times)` once
/// for every row as it leaves, with what it measured or the error that ended it (a row whose
/// launch fails leaves at once; the others go on).
pub fn run(
    plan: &Plan,
    rows: usize,
    mut on_round: impl FnMut(u32, usize),
    mut sample: impl FnMut(usize) -> Result<Sample>,
    mut done: impl FnMut(usize, Result<RowTimes>),
) {
    let mut times: Vec<Option<RowTimes>> = (0..rows).map(|_| Some(RowTimes::default())).collect();
    let mut left = rows;
    let mut round = 0u32;
    while left > 0 {
        on_round(round, left);
        for i in order(plan.seed, round, rows) {
            let Some(row) = times[i].as_mut() else { continue };
            match sample(i) {
                Ok(s) => {
                    row.add(round, s);
                    if row.done(plan) {
                        left -= 1;
                        done(i, Ok(std::mem::take(row)));
                        times[i] = None;
                    }
                }
                Err(e) => {
                    left -= 1;
                    times[i] = None;
                    done(i, Err(e));
                }
            }
        }
        round += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn plan(repeat: usize, min_runs: usize, budget_s: f64) -> Plan {
        Plan { repeat, min_runs, budget: Duration::from_secs_f64(budget_s), ..Plan::default() }
    }

    /// Runs the rounds with rows whose every sample costs `cost[i]` seconds (nothing is timed);
    /// returns the order of the samples as (round, row) and what each row measured.
    fn simulate(plan: &Plan, cost: &[f64]) -> (Vec<(u32, usize)>, Vec<RowTimes>) {
        let taken = std::cell::RefCell::new(Vec::new());
        let round_now = std::cell::Cell::new(0);
        let mut out = vec![RowTimes::default(); cost.len()];
        run(
            plan,
            cost.len(),
            |r, _| round_now.set(r),
            |i| {
                taken.borrow_mut().push((round_now.get(), i));
                Ok(Sample { host: cost[i], device: None, spent: cost[i] })
            },
            |i, t| out[i] = t.unwrap(),
        );
        (taken.into_inner(), out)
    }

    #[test]
    fn every_round_samples_every_row_once_in_a_shuffled_reproducible_order() {
        let (taken, times) = simulate(&plan(6, 3, 100.0), &[1e-3; 5]);
        assert_eq!(taken.len(), 30);
        let rounds: Vec<Vec<usize>> =
            (0..6u32).map(|r| taken.iter().filter(|(round, _)| *round == r).map(|(_, i)| *i).collect()).collect();
        for (r, got) in rounds.iter().enumerate() {
            let mut sorted = got.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4], "round {r}: every row once");
            assert_eq!(*got, order(Plan::default().seed, r as u32, 5), "round {r} follows the seeded order");
        }
        assert!(rounds.windows(2).any(|w| w[0] != w[1]), "the order changes between rounds");
        assert_ne!(order(1, 0, 20), order(2, 0, 20), "another seed, another order");
        assert!(times.iter().all(|t| t.rounds == vec![0, 1, 2, 3, 4, 5] && t.host.len() == 6));
    }

    #[test]
    fn a_row_leaves_at_its_repeat_or_its_budget_after_its_minimum() {
        // Budget 1 s: the 0.4 s row has spent 1.2 s after its third sample (its minimum); the
        // 0.001 s row reaches its repeat of 8 first; the 2 s row is over budget after one sample
        // but still takes its minimum of 3.
        let (taken, times) = simulate(&plan(8, 3, 1.0), &[0.4, 0.001, 2.0]);
        assert_eq!(times[0].rounds, vec![0, 1, 2]);
        assert_eq!(times[1].rounds, (0..8).collect::<Vec<u32>>());
        assert_eq!(times[2].host, vec![2.0; 3]);
        assert!((times[0].spent - 1.2).abs() < 1e-12);
        assert!(taken.iter().filter(|(r, _)| *r >= 3).all(|(_, i)| *i == 1), "only the fast row goes on");
    }

    #[test]
    fn a_failing_row_leaves_and_the_others_go_on() {
        let mut outcomes: Vec<Option<bool>> = vec![None; 3];
        let mut calls = [0; 3];
        run(
            &plan(4, 1, 100.0),
            3,
            |_, _| {},
            |i| {
                calls[i] += 1;
                if i == 1 && calls[i] == 2 {
                    return Err(kernelab_tensor::Error::InvalidArgument { op: "test", why: "boom".into() });
                }
                Ok(Sample { host: 1.0, device: Some(0.5), spent: 1.0 })
            },
            |i, t| outcomes[i] = Some(t.is_ok()),
        );
        assert_eq!(outcomes, vec![Some(true), Some(false), Some(true)]);
        assert_eq!(calls, [4, 2, 4]);
    }
}
