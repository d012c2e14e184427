//! `kernelab compare BASE NEW`: rows paired by op, backend, variant, shape, layout, threads and
//! mode; for each, the ratio of medians (new ÷ base time, above 1 is slower), a 95% bootstrap
//! interval of it, the Mann-Whitney p-value from the raw samples, and a verdict.

use serde::Serialize;

use crate::record::{Record, Report};
use crate::stats::{mann_whitney_p, ratio_interval};

/// A difference below this many percent is "same" even when it is significant.
pub const NEGLIGIBLE: f64 = 0.02;

/// The p-value below which a difference counts as real.
pub const SIGNIFICANCE: f64 = 0.01;

/// What one pair of rows says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Faster,
    Slower,
    Same,
    /// The samples are too spread to tell.
    Noisy,
}

/// One paired row.
#[derive(Clone, Debug, Serialize)]
pub struct Pair {
    pub op: String,
    pub backend: String,
    pub variant: String,
    pub shape: String,
    pub threads: Option<usize>,
    pub base_median_s: f64,
    pub new_median_s: f64,
    /// `new_median_s / base_median_s`.
    pub ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    pub p_value: f64,
    pub verdict: Verdict,
}

/// The verdict from a ratio, its interval and the p-value (see the module header).
pub fn verdict(base: &[f64], new: &[f64]) -> (f64, (f64, f64), f64, Verdict) {
    let mut sorted_base = base.to_vec();
    let mut sorted_new = new.to_vec();
    let ratio = crate::stats::median(&mut sorted_new) / crate::stats::median(&mut sorted_base);
    if sorted_base == sorted_new {
        return (ratio, (ratio, ratio), 1.0, Verdict::Same);
    }
    let interval = ratio_interval(base, new, 2000);
    let p = mann_whitney_p(base, new);
    let excludes_one = interval.0 > 1.0 || interval.1 < 1.0;
    let verdict = if p < SIGNIFICANCE && excludes_one {
        if (ratio - 1.0).abs() <= NEGLIGIBLE {
            Verdict::Same
        } else if ratio > 1.0 {
            Verdict::Slower
        } else {
            Verdict::Faster
        }
    } else if interval.0 >= 1.0 - 2.5 * NEGLIGIBLE && interval.1 <= 1.0 + 2.5 * NEGLIGIBLE {
        Verdict::Same
    } else {
        Verdict::Noisy
    };
    (ratio, interval, p, verdict)
}

fn key(r: &Record) -> (String, String, String, Vec<usize>, Option<String>, Option<usize>, String) {
    (
        r.op.clone(),
        r.backend.clone(),
        r.variant.clone(),
        r.shape.clone(),
        r.transpose.clone(),
        r.threads,
        r.mode.clone(),
    )
}

/// Every row timed in both reports, paired, in the base report's order.
pub fn pair(base: &Report, new: &Report) -> Vec<Pair> {
    let timed_new: std::collections::HashMap<_, &Record> =
        new.records.iter().filter(|n| n.timed()).map(|n| (key(n), n)).collect();
    base.records
        .iter()
        .filter(|b| b.timed())
        .filter_map(|b| {
            let n = *timed_new.get(&key(b))?;
            let (ratio, (lo, hi), p, verdict) = verdict(&b.samples_s, &n.samples_s);
            Some(Pair {
                op: b.op.clone(),
                backend: b.backend.clone(),
                variant: b.variant.clone(),
                shape: crate::table::shape_text(b),
                threads: b.threads,
                base_median_s: b.median_s,
                new_median_s: n.median_s,
                ratio,
                ratio_low: lo,
                ratio_high: hi,
                p_value: p,
                verdict,
            })
        })
        .collect()
}

/// What differs between the two runs' circumstances, one line each (empty when nothing does).
pub fn differences(base: &Report, new: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let (b, n) = (&base.machine, &new.machine);
    if (b.cpu.as_str(), b.logical_cores) != (n.cpu.as_str(), n.logical_cores) {
        out.push(format!(
            "different machines: {} ({} cores) and {} ({} cores)",
            b.cpu, b.logical_cores, n.cpu, n.logical_cores
        ));
    }
    if (b.git_commit.as_str(), b.git_dirty) != (n.git_commit.as_str(), n.git_dirty) {
        let show = |c: &str, d: bool| format!("{c}{}", if d { " (uncommitted changes)" } else { "" });
        out.push(format!(
            "different commits: {} and {}",
            show(&b.git_commit, b.git_dirty),
            show(&n.git_commit, n.git_dirty)
        ));
    }
    let roofs = |r: &Report| r.devices.iter().map(|d| d.roofline.as_ref().map(|r| r.summary())).collect::<Vec<_>>();
    if roofs(base) != roofs(new) {
        out.push("different ceilings (rooflines): % roof is not comparable between the two".into());
    }
    if base.settings.threads != new.settings.threads || base.settings.cold != new.settings.cold {
        out.push(format!(
            "different settings: threads {} and {}, cold {} and {}",
            base.settings.threads, new.settings.threads, base.settings.cold, new.settings.cold
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(center: f64, spread: f64, n: usize) -> Vec<f64> {
        // Deterministic, skewed a little: what timing samples look like.
        (0..n).map(|i| center * (1.0 + spread * ((i * 7919 % n) as f64 / n as f64))).collect()
    }

    #[test]
    fn identical_samples_are_the_same() {
        let a = samples(1e-3, 0.3, 30);
        assert_eq!(verdict(&a, &a).3, Verdict::Same);
    }

    #[test]
    fn a_twofold_slowdown_is_slower_and_a_speedup_faster() {
        let a = samples(1e-3, 0.05, 30);
        let slow: Vec<f64> = a.iter().map(|v| 2.0 * v).collect();
        let (ratio, (lo, hi), p, v) = verdict(&a, &slow);
        assert_eq!(v, Verdict::Slower);
        assert!((ratio - 2.0).abs() < 1e-9 && lo > 1.8 && hi < 2.2 && p < 1e-6, "{ratio} {lo} {hi} {p}");
        assert_eq!(verdict(&slow, &a).3, Verdict::Faster);
    }

    #[test]
    fn a_one_percent_shift_is_the_same_and_wide_overlapping_samples_are_noisy() {
        let a = samples(1e-3, 0.01, 30);
        let shifted: Vec<f64> = a.iter().map(|v| 1.01 * v).collect();
        assert_eq!(verdict(&a, &shifted).3, Verdict::Same);
        let wide = samples(1e-3, 1.0, 8);
        let wide_other: Vec<f64> = samples(1.05e-3, 1.0, 8).into_iter().rev().collect();
        assert_eq!(verdict(&wide, &wide_other).3, Verdict::Noisy);
    }
}
