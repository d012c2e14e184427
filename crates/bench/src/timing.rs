//! Timing: warm up, synchronize around every run, keep every sample, report order statistics.

use std::time::{Duration, Instant};

use kernelab_tensor::{Device, Result};

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed runs first (caches, JIT, clocks), cut short after a quarter of the budget.
    pub warmup: usize,
    /// The most timed runs.
    pub repeat: usize,
    /// The fewest timed runs, even past the time budget.
    pub min_runs: usize,
    /// Stop timing once this much time was spent (and `min_runs` are done).
    pub budget: Duration,
}

impl Default for Plan {
    fn default() -> Self {
        Self { warmup: 2, repeat: 30, min_runs: 3, budget: Duration::from_secs(2) }
    }
}

/// Wall-clock samples of one kernel, in seconds, sorted.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn from_secs(mut secs: Vec<f64>) -> Self {
        secs.sort_by(f64::total_cmp);
        Self(secs)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics.
    pub fn quantile(&self, q: f64) -> f64 {
        match self.0.len() {
            0 => f64::NAN,
            n => {
                let at = q.clamp(0.0, 1.0) * (n - 1) as f64;
                let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
                self.0[lo] + (self.0[hi] - self.0[lo]) * (at - lo as f64)
            }
        }
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }
}

/// What one row measured: host wall time of every run (submit and wait included), and the device's
/// own clock for the same runs when it has one (GPU timestamp queries around each kernel).
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub host: Samples,
    pub device: Option<Samples>,
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

/// Times `run` on `device`: `plan.warmup` untimed runs, then timed runs each followed by a
/// synchronize, until `plan.repeat` runs or the time budget (after at least `plan.min_runs`).
pub fn measure(device: &Device, plan: &Plan, mut run: impl FnMut() -> Result<()>) -> Result<Measured> {
    // Warm up, but no longer than a quarter of the budget: one run of a slow kernel warms it.
    let warming = Instant::now();
    for _ in 0..plan.warmup {
        run()?;
        device.synchronize()?;
        if warming.elapsed() >= plan.budget / 4 {
            break;
        }
    }
    let timed = device.set_device_timing(true);
    let result = timed_runs(device, plan, &mut run, timed);
    if timed {
        device.set_device_timing(false);
    }
    result
}

fn timed_runs(device: &Device, plan: &Plan, run: &mut impl FnMut() -> Result<()>, timed: bool) -> Result<Measured> {
    device.take_device_seconds()?;
    let started = Instant::now();
    let (mut host, mut on_device) = (Vec::with_capacity(plan.repeat), Vec::new());
    while host.len() < plan.repeat.max(1) {
        let t0 = Instant::now();
        run()?;
        device.synchronize()?;
        host.push(t0.elapsed().as_secs_f64());
        if timed {
            on_device.extend(device.take_device_seconds()?);
        }
        if host.len() >= plan.min_runs && started.elapsed() >= plan.budget {
            break;
        }
    }
    let device = (timed && on_device.len() == host.len()).then(|| Samples::from_secs(on_device));
    Ok(Measured { host: Samples::from_secs(host), device })
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
    }
}
