//! Timing: warm up, synchronize around every sample, keep every sample, report order statistics.
//!
//! A kernel shorter than [`BATCH_BELOW`] is timed in batches of launches (one synchronize per
//! batch) so that the launch-and-wait overhead and the clock's resolution do not dominate, and
//! each sample is the batch's time divided by its launches. In a cold run the caches are evicted
//! before every launch (outside the timed region), so each sample is one launch.

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

/// How long and how often to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Untimed runs first (caches, JIT, clocks), cut short after a quarter of the budget.
    pub warmup: usize,
    /// The most timed samples.
    pub repeat: usize,
    /// The fewest timed samples, even past the time budget.
    pub min_runs: usize,
    /// Stop timing once this much time was spent (and `min_runs` are done).
    pub budget: Duration,
    /// Evict the caches before every timed launch.
    pub cold: bool,
    /// Skip a row whose predicted time (its launches for the check, the warm-up and `min_runs`)
    /// exceeds this; `None` runs every row whatever it costs.
    pub max_row: Option<Duration>,
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

/// What one row measured: host wall time of every sample (submit and wait included), and the
/// device's own clock for the same samples when it has one (GPU timestamp queries around each
/// kernel); both per launch, and how many launches each sample held.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub host: Samples,
    pub device: Option<Samples>,
    /// Launches per sample (1 unless the kernel was shorter than [`BATCH_BELOW`]).
    pub batch: usize,
}

impl Measured {
    /// The samples GFLOP/s are computed from: the device's clock where there is one.
    pub fn best(&self) -> &Samples {
        self.device.as_ref().unwrap_or(&self.host)
    }

    /// `device` or `host`, saying which clock [`Measured::best`] read.
    pub fn clock(&self) -> &'static str {
        if self.device.is_some() { "device" } else { "host" }
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

/// Times `run` on `device`: `plan.warmup` untimed runs (at least one, which also sizes the batch),
/// then timed samples each followed by a synchronize, until `plan.repeat` samples or the time
/// budget (after at least `plan.min_runs`). In a cold plan `evict` runs before every sample,
/// outside the timed region.
pub fn measure(
    device: &Device,
    plan: &Plan,
    mut run: impl FnMut() -> Result<()>,
    mut evict: impl FnMut() -> Result<()>,
) -> Result<Measured> {
    // Warm up, but no longer than a quarter of the budget: one run of a slow kernel warms it.
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
    let batch = batch_size(single, plan.cold);
    let timed = device.set_device_timing(true);
    let result = timed_runs(device, plan, batch, &mut run, &mut evict, timed);
    if timed {
        device.set_device_timing(false);
    }
    result
}

fn timed_runs(
    device: &Device,
    plan: &Plan,
    batch: usize,
    run: &mut impl FnMut() -> Result<()>,
    evict: &mut impl FnMut() -> Result<()>,
    timed: bool,
) -> Result<Measured> {
    let wanted = plan.repeat.max(1);
    let (mut host, mut on_device) = (Vec::new(), Vec::new());
    host.try_reserve_exact(wanted.min(1 << 20)).map_err(|_| kernelab_tensor::Error::OutOfMemory {
        device: "host".into(),
        bytes: wanted * 8,
        len: wanted,
    })?;
    device.take_device_seconds()?;
    let started = Instant::now();
    while host.len() < wanted {
        if plan.cold {
            evict()?;
            device.synchronize()?;
            device.take_device_seconds()?;
        }
        let t0 = Instant::now();
        for _ in 0..batch {
            run()?;
        }
        device.synchronize()?;
        host.push(t0.elapsed().as_secs_f64() / batch as f64);
        if timed {
            on_device.extend(device.take_device_seconds()?.map(|s| s / batch as f64));
        }
        if host.len() >= plan.min_runs && started.elapsed() >= plan.budget {
            break;
        }
    }
    let device = (timed && on_device.len() == host.len()).then(|| Samples::from_secs(on_device));
    Ok(Measured { host: Samples::from_secs(host), device, batch })
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
