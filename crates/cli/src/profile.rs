//! `train --profile`: where a training step's time goes, kernel by kernel. Every launch of the
//! training steps is timed on its device (evaluation is left out); the rows are the kernels by op,
//! variant and shape, the all-reduce across processes, and the host's remainder (the tape, buffer
//! recycling, batch gathering and upload, the loss download) — the measured step time minus
//! everything else, so the rows add up to it. The profiler's own bookkeeping around each launch
//! is a row of its own (what profiling adds to the step), not part of the host's remainder.

use serde::Serialize;

use kernelab_bench::table::{format_time, terminal_table};
use kernelab_nn::EpochLog;
use kernelab_tensor::{Device, Profile, Result};

/// One row of the profile.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    /// `matmul`, …, or `all-reduce (MPI)`, `profiler (its own bookkeeping)`,
    /// `host (tape, allocation, data, transfers)`.
    pub what: String,
    pub variant: String,
    pub shape: String,
    /// Launches per training step.
    pub per_step: f64,
    /// Seconds over all the steps.
    pub total_s: f64,
    /// Fraction of the measured step time.
    pub share: f64,
    pub gflops: f64,
    pub gbps: f64,
}

/// The profile of one training run on one device.
#[derive(Clone, Debug, Serialize)]
pub struct StepProfile {
    /// `model`, `teacher`, `student`, `distilled`.
    pub run: String,
    pub device: String,
    pub steps: usize,
    /// The training time measured around the steps, in seconds.
    pub measured_s: f64,
    pub rows: Vec<Row>,
}

/// The rows of `profile` over `steps` steps that took `measured_s` in all, of which `allreduce_s`
/// in all-reduces: the kernels, largest first, then the all-reduce, the profiler's bookkeeping and
/// the host's remainder.
pub fn rows(profile: &Profile, steps: usize, measured_s: f64, allreduce_s: f64) -> Vec<Row> {
    let steps_f = steps.max(1) as f64;
    let mut rows: Vec<Row> = profile
        .entries
        .iter()
        .map(|e| Row {
            what: e.op.name().to_string(),
            variant: e.variant.clone(),
            shape: e.shape.clone(),
            per_step: e.launches as f64 / steps_f,
            total_s: e.seconds,
            share: e.seconds / measured_s,
            gflops: e.flops / e.seconds / 1e9,
            gbps: e.bytes / e.seconds / 1e9,
        })
        .collect();
    rows.sort_by(|a, b| b.total_s.total_cmp(&a.total_s));
    let other = |what: &str, seconds: f64| Row {
        what: what.into(),
        variant: String::new(),
        shape: String::new(),
        per_step: 1.0,
        total_s: seconds,
        share: seconds / measured_s,
        gflops: f64::NAN,
        gbps: f64::NAN,
    };
    if allreduce_s > 0.0 {
        rows.push(other("all-reduce (MPI)", allreduce_s));
    }
    if profile.bookkeeping_seconds > 0.0 {
        rows.push(other("profiler (its own bookkeeping)", profile.bookkeeping_seconds));
    }
    let host = measured_s - profile.kernel_seconds() - allreduce_s - profile.bookkeeping_seconds;
    rows.push(other("host (tape, allocation, data, transfers)", host));
    rows
}

/// The profile as a table, with the step time it adds up to.
pub fn render(p: &StepProfile) -> String {
    let header = ["op", "variant", "shape", "per step", "total", "% of step", "GFLOP/s", "GB/s"];
    let num = |v: f64| if v.is_finite() { format!("{v:.2}") } else { "-".into() };
    let body = p
        .rows
        .iter()
        .map(|r| {
            vec![
                r.what.clone(),
                r.variant.clone(),
                r.shape.clone(),
                if r.per_step.fract() == 0.0 { format!("{:.0}", r.per_step) } else { format!("{:.2}", r.per_step) },
                format_time(r.total_s),
                format!("{:.1}", 100.0 * r.share),
                num(r.gflops),
                num(r.gbps),
            ]
        })
        .collect();
    let right: Vec<bool> = (0..header.len()).map(|i| i >= 3).collect();
    format!(
        "profile of {} on {}: {} steps, {} per step ({} in all)\n{}",
        p.run,
        p.device,
        p.steps,
        format_time(p.measured_s / p.steps.max(1) as f64),
        format_time(p.measured_s),
        terminal_table(header.map(String::from).to_vec(), &right, body)
    )
}

/// Takes each device's profile of the run `name` (`steps` training steps over `logs`' epochs),
/// prints it, and rewrites `json` (when given) with every profile of this process so far.
pub fn report(
    devices: &[Device],
    json: Option<&std::path::Path>,
    name: &str,
    steps: usize,
    logs: &[EpochLog],
) -> Result<()> {
    let measured_s: f64 = logs.iter().map(|l| l.epoch_s).sum();
    let allreduce_s: f64 = logs.iter().map(|l| l.allreduce_s).sum();
    let mut profiles = Vec::new();
    for device in devices {
        let Some(profile) = device.take_profile() else { continue };
        let p = StepProfile {
            run: name.into(),
            device: format!("{} ({})", device.label(), device.info().name),
            steps,
            measured_s,
            rows: rows(&profile, steps, measured_s, allreduce_s),
        };
        eprintln!("\n{}", render(&p));
        profiles.push(p);
    }
    if devices.len() > 1 {
        eprintln!("(several devices run their shares at once: each profile is held against the whole step)");
    }
    // Every run of this process so far (distill has three), rewritten whole each time.
    static ALL: std::sync::Mutex<Vec<StepProfile>> = std::sync::Mutex::new(Vec::new());
    let mut all = ALL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    all.extend(profiles);
    if let Some(path) = json {
        let json = serde_json::to_string_pretty(&*all).unwrap_or_default();
        kernelab_tensor::files::write(path, format!("{json}\n").as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kernelab_tensor::{Cost, Op};

    use super::*;

    #[test]
    fn the_rows_add_up_to_the_measured_time() {
        let mut profile = Profile::default();
        let cost = |shape: &str| Cost { shape: shape.into(), flops: 2e6, bytes: 1e6 };
        for _ in 0..10 {
            profile.record(Op::Matmul, "threaded", cost("64x128x784:NT"), 1e-4);
            profile.record(Op::Adam, "avx512", cost("100352"), 3e-5);
        }
        profile.bookkeeping_seconds = 5e-5;
        let rows = rows(&profile, 10, 2e-3, 1e-4);
        let total: f64 = rows.iter().map(|r| r.total_s).sum();
        assert!((total - 2e-3).abs() < 1e-12);
        assert!((rows.iter().map(|r| r.share).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(rows[0].what, "matmul", "largest first");
        assert_eq!(rows[0].per_step, 1.0);
        assert!((rows[0].gflops - 20.0).abs() < 1e-9, "10 launches of 2 MFLOP in 1 ms: {}", rows[0].gflops);
        assert_eq!(rows[2].what, "all-reduce (MPI)");
        assert_eq!((rows[3].what.as_str(), rows[3].total_s), ("profiler (its own bookkeeping)", 5e-5));
        assert!((rows[4].total_s - (2e-3 - 1e-3 - 3e-4 - 1e-4 - 5e-5)).abs() < 1e-12, "the host's remainder");
    }
}
