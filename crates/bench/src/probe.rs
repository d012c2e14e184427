//! A control for the machine itself: the same fixed piece of work, timed once at the start of
//! every round of every run and kept in the report, so that two reports say whether the machine
//! was slower during one of them — whatever the kernels did.
//!
//! The work does not change with kernelab's kernels, and it loads the machine as they do:
//! multiply-adds in sixteen independent lanes over a block that stays in L1 (throughput, the
//! execution ports a sibling hyperthread shares) and one sum over 2 MiB (the outer cache a
//! neighbour shares, read once untimed first so the caches' state does not matter), on the calling thread, about a tenth of a millisecond. A neighbour
//! on the same core, a frequency drop or a host that lends the VM less time slows it as it slows
//! the rows; an edit to a kernel never does. [`crate::compare`] holds the rows of two runs whose probes differ to that
//! difference (see [`machine_shift`]).

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::record::Report;
use crate::stats::{log_median_se, median};

/// What the probe runs; two probes are compared only when this is the same.
pub const WHAT: &str = "v3: 600 passes of 16-lane f32 multiplies and adds over 1024 values (4 KiB), then one sum over 512 Ki f32 (2 MiB, summed once untimed first), one thread";

/// The values of the L1 block and of the large buffer.
const BLOCK: usize = 1024;
const LARGE: usize = 1 << 19;

/// The probe's samples in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// [`WHAT`] when it was taken.
    pub what: String,
    /// Seconds, one per round, in the order taken.
    pub samples_s: Vec<f64>,
    /// The round of each sample.
    pub rounds: Vec<u32>,
    /// What other processes took of the cores while the rows were timed ([`crate::contention`]);
    /// absent where `/proc` cannot be read and in reports written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<crate::contention::Contention>,
}

/// Takes probe samples, reusing its buffer.
pub struct Prober {
    buffer: Vec<f32>,
    pub probe: Probe,
}

impl Default for Prober {
    fn default() -> Self {
        let buffer = (0..LARGE).map(|i| (i % 7) as f32 * 0.25).collect();
        Self { buffer, probe: Probe { what: WHAT.into(), ..Probe::default() } }
    }
}

impl Prober {
    /// Times the work once, as the sample of `round`.
    pub fn sample(&mut self, round: u32) {
        // One untimed pass first, so that the sample does not depend on what the rows before it
        // left in the caches: it measures the machine, not the last row's footprint.
        black_box(Self::sum(&self.buffer));
        let start = Instant::now();
        let block = black_box(&self.buffer[..BLOCK]);
        let mut lanes = [0.0f32; 16];
        for _ in 0..600 {
            for chunk in block.chunks_exact(16) {
                for (lane, v) in lanes.iter_mut().zip(chunk) {
                    *lane = *lane * 0.999_999 + v;
                }
            }
            black_box(&mut lanes);
        }
        let sums = Self::sum(black_box(&self.buffer));
        black_box((lanes, sums));
        self.probe.samples_s.push(start.elapsed().as_secs_f64());
        self.probe.rounds.push(round);
    }

    /// Sixteen lane sums over `values`.
    fn sum(values: &[f32]) -> [f32; 16] {
        let mut sums = [0.0f32; 16];
        for chunk in values.chunks_exact(16) {
            for (sum, v) in sums.iter_mut().zip(chunk) {
                *sum += v;
            }
        }
        sums
    }
}

/// How much slower the machine ran in `new` than in `base`, on the log scale, beyond what the
/// probes' own noise explains: `max(0, |ln(m_new / m_base)| − Z99·√(se_b² + se_n²))` with `m` the
/// probes' medians and `se` their standard errors (so an idle machine's probes, a percent apart,
/// give 0). `None` when either report has no probe (written before there was one), a probe of
/// other work, or fewer than 3 samples.
pub fn machine_shift(base: &Report, new: &Report) -> Option<(f64, f64)> {
    let usable = |r: &Report| r.probe.as_ref().filter(|p| p.what == WHAT && p.samples_s.len() >= 3).cloned();
    let (b, n) = (usable(base)?, usable(new)?);
    let ratio = median(&mut n.samples_s.clone()) / median(&mut b.samples_s.clone());
    let noise = crate::stats::Z99 * (log_median_se(&b.samples_s).powi(2) + log_median_se(&n.samples_s).powi(2)).sqrt();
    Some((ratio, (ratio.ln().abs() - noise).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::report;

    fn with_probe(samples: Vec<f64>) -> Report {
        let mut r = report(vec![]);
        let rounds = (0..samples.len() as u32).collect();
        r.probe = Some(Probe { what: WHAT.into(), samples_s: samples, rounds, contention: None });
        r
    }

    /// Thirty samples around `t`, a percent apart.
    fn around(t: f64) -> Vec<f64> {
        (0..30).map(|i| t * (1.0 + 0.01 * f64::from(i % 5))).collect()
    }

    #[test]
    fn the_probe_takes_a_sample_a_round() {
        let mut p = Prober::default();
        p.sample(0);
        p.sample(1);
        assert_eq!(p.probe.rounds, [0, 1]);
        assert!(p.probe.samples_s.iter().all(|s| *s > 0.0 && *s < 1.0));
    }

    #[test]
    fn a_machine_as_fast_in_both_runs_shifts_nothing() {
        let (ratio, shift) = machine_shift(&with_probe(around(2e-4)), &with_probe(around(2e-4))).unwrap();
        assert_eq!((ratio, shift), (1.0, 0.0));
    }

    #[test]
    fn a_machine_slower_in_one_run_shifts_by_what_its_noise_does_not_explain() {
        let (ratio, shift) = machine_shift(&with_probe(around(2e-4)), &with_probe(around(3e-4))).unwrap();
        assert!((ratio - 1.5).abs() < 1e-9);
        assert!(shift > 0.35 && shift < 1.5f64.ln(), "{shift}");
    }

    #[test]
    fn reports_without_a_probe_or_with_another_say_nothing() {
        assert!(machine_shift(&report(vec![]), &with_probe(around(2e-4))).is_none());
        let mut other = with_probe(around(2e-4));
        other.probe.as_mut().unwrap().what = "v0".into();
        assert!(machine_shift(&other, &with_probe(around(2e-4))).is_none());
    }
}
