//! Timing: warm up, synchronize around every sample, keep every sample, report order statistics.
//! The rows of a run are sampled in interleaved rounds ([`crate::rounds`]); this module takes one
//! sample of one row.
//!
//! A kernel shorter than [`BATCH_BELOW`] is timed in batches of launches (one synchronize per
//! batch) so that the launch-and-wait overhead and the clock's resolution do not dominate, and
//! each sample is the batch's time divided by its launches. In a cold run the caches are evicted
//! before every launch (outside the timed region), so each sample is one launch; in a warm run
//! the row is launched once, untimed, before each sample, so its inputs are in cache as they
//! would be after its own previous launch, whatever ran before it in the round.

use std::time::{Duration, Instant};

use kernelab_tensor::{Device, Result};

/// Kernels whose single launch takes less than this are timed in batches.
pub const BATCH_BELOW: Duration = Duration::from_micros(20);

/// A batch lasts about this long.
pub const BATCH_TARGET: Duration = Duration::from_micros(200);

/// The most launches in one batch.
pub const MAX_BATCH: usize = 100_000;

/// A row whose p90/p10 exceeds this is flagged noisy.
pub const NOISY_SPREAD: f64 = 1.2;

/// The seed of the rounds' order unless `--seed` gives another.
pub const DEFAULT_SEED: u64 = 0x6b65_726e_656c_6162;

/// How long and how often to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Untimed runs first (caches, JIT, clocks), cut short after a quarter of the budget.
    pub warmup: usize,
    /// The most timed samples of a row (one a round).
    pub repeat: usize,
    /// The fewest timed samples of a row, even past its time budget.
    pub min_runs: usize,
    /// A row leaves the rounds once this much time was spent on its samples (and it has
    /// `min_runs` of them).
    pub budget: Duration,
    /// Evict the caches before every timed launch.
    pub cold: bool,
    /// Skip a row whose predicted time (its launches for the check, the warm-up and `min_runs`)
    /// exceeds this; `None` runs every row whatever it costs.
    pub max_row: Option<Duration>,
    /// Seeds the shuffled order of the rows in each round.
    pub seed: u64,
}

impl Plan {
    /// Launches a row makes at the least: the reference check, the warm-up, the timed minimum.
    pub fn least_launches(&self) -> usize {
        1 + self.warmup.max(1) + self.min_runs
    }
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            warmup: 2,
            repeat: 30,
            min_runs: 3,
            budget: Duration::from_secs(2),
            cold: false,
            max_row: Some(Duration::from_secs(60)),
            seed: DEFAULT_SEED,
        }
    }
}

/// Samples of one kernel, in seconds per launch: in the order taken, and sorted.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    taken: Vec<f64>,
    sorted: Vec<f64>,
}

impl Samples {
    pub fn from_secs(taken: Vec<f64>) -> Self {
        let mut sorted = taken.clone();
        sorted.sort_by(f64::total_cmp);
        Self { taken, sorted }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The samples in the order they were taken.
    pub fn taken(&self) -> &[f64] {
        &self.taken
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics.
    pub fn quantile(&self, q: f64) -> f64 {
        match self.sorted.len() {
            0 => f64::NAN,
            n => {
                let at = q.clamp(0.0, 1.0) * (n - 1) as f64;
                let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
                self.sorted[lo] + (self.sorted[hi] - self.sorted[lo]) * (at - lo as f64)
            }
        }
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// p90 / p10 above [`NOISY_SPREAD`].
    pub fn noisy(&self) -> bool {
        self.quantile(0.9) / self.quantile(0.1) > NOISY_SPREAD
    }
}

/// Launches per sample for a kernel whose single launch took `single` seconds.
pub fn batch_size(single: f64, cold: bool) -> usize {
    if cold || single.is_nan() || single >= BATCH_BELOW.as_secs_f64() {
        return 1;
    }
    // In whole nanoseconds, so that 200 µs / 10 µs is exactly 20.
    let single_ns = ((single * 1e9).round() as u128).max(1);
    (BATCH_TARGET.as_nanos().div_ceil(single_ns)).clamp(1, MAX_BATCH as u128) as usize
}

/// Warms `run` up on `device`: `plan.warmup` untimed runs (at least one), each followed by a
/// synchronize, cut short after a quarter of the budget (one run of a slow kernel warms it).
/// Returns the shortest run in seconds, which sizes the batch and predicts the row's cost.
pub fn warm_up(device: &Device, plan: &Plan, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    let warming = Instant::now();
    let mut single = f64::INFINITY;
    for _ in 0..plan.warmup.max(1) {
        let t0 = Instant::now();
        run()?;
        device.synchronize()?;
        single = single.min(t0.elapsed().as_secs_f64());
        if warming.elapsed() >= plan.budget / 4 {
            break;
        }
    }
    Ok(single)
}

/// One timed sample of a row: seconds per launch by the host's clock and, where the device
/// times its kernels, by the device's; and the seconds the sample cost in all (its preparation
/// included), which count against the row's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub host: f64,
    pub device: Option<f64>,
    pub spent: f64,
}

/// Takes one sample of `run` on `device`: first, outside the timed region, the caches are
/// evicted (`plan.cold`) or the row is launched once untimed so that its inputs are in cache
/// again after the other rows of the round (warm); then `batch` launches and one synchronize
/// are timed. `timed` says whether the device's own timer is on.
pub fn take_sample(
    device: &Device,
    plan: &Plan,
    batch: usize,
    run: &mut impl FnMut() -> Result<()>,
    evict: &mut impl FnMut() -> Result<()>,
    timed: bool,
) -> Result<Sample> {
    let began = Instant::now();
    if plan.cold {
        evict()?
    } else {
        run()?
    }
    device.synchronize()?;
    device.take_device_seconds()?;
    let t0 = Instant::now();
    for _ in 0..batch {
        run()?;
    }
    device.synchronize()?;
    let host = t0.elapsed().as_secs_f64() / batch as f64;
    let on_device = if timed { device.take_device_seconds()?.map(|s| s / batch as f64) } else { None };
    Ok(Sample { host, device: on_device, spent: began.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let s = Samples::from_secs(vec![4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!(s.median(), 3.0);
        assert_eq!(s.quantile(0.1), 1.4);
        assert_eq!(s.quantile(0.9), 4.6);
        assert_eq!(Samples::from_secs(vec![2.0, 1.0]).median(), 1.5);
        assert!(Samples::from_secs(vec![]).median().is_nan());
        assert_eq!(s.taken(), &[4.0, 1.0, 3.0, 2.0, 5.0], "the order taken is kept");
    }

    #[test]
    fn short_kernels_are_batched_and_cold_ones_never() {
        assert_eq!(batch_size(1e-3, false), 1);
        assert_eq!(batch_size(25e-6, false), 1);
        assert_eq!(batch_size(10e-6, false), 20);
        assert_eq!(batch_size(1e-6, false), 200);
        assert_eq!(batch_size(0.0, false), MAX_BATCH);
        assert_eq!(batch_size(1e-6, true), 1);
    }

    #[test]
    fn a_wide_spread_is_noisy() {
        assert!(!Samples::from_secs(vec![1.0; 10]).noisy());
        let wide: Vec<f64> = (0..10).map(|i| 1.0 + 0.1 * i as f64).collect();
        assert!(Samples::from_secs(wide).noisy());
    }
}
