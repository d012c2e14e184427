//! `kernelab compare BASE NEW`: rows paired by [`RowKey`] (op, backend, device, variant, shape,
//! layout, threads, mode), each judged by a 99% interval of the ratio of medians `new ÷ base`
//! (above 1 is slower) that allows for what varies between two runs, not only within one.
//!
//! On the log scale the ratio is `d = ln m_new − ln m_base`, and its variance
//! `s² = se_base² + se_new² + 2·σ²`: each run's standard error of its own median
//! ([`log_median_se`], from its samples in the order taken) and twice the noise floor `σ`, the
//! machine's spread of a row's median between runs beyond its samples ([`crate::noise`]). The
//! interval is `exp(d ± t·s)` with `t` the 99% point of Student's t with the floor's degrees of
//! freedom ([`t99`]; [`crate::stats::Z99`] for a floor taken as exact). Two sets of the very same samples are one run
//! read twice: their interval is `[1, 1]`.
//!
//! The machine is a control too: each run times one fixed piece of work once a round
//! ([`crate::probe`]). When the two runs' probes differ beyond their noise, by `δ` on the log
//! scale, the machine itself ran at another speed, and every row's variance grows by `δ²`:
//! identical code on a machine slowed 30% in one run comes out `undecided`, not `slower`.
//!
//! Before anything is judged, each run's drift within itself is taken out of its samples through
//! its rounds ([`crate::drift`]): a slow stretch of the machine that fell on some rows' few rounds
//! is divided out, while a run slower throughout stays slower. Medians below are of those
//! steadied samples.
//!
//! A row whose threads had to share the cores with other processes in either run
//! ([`crate::contention`]: its threads and what the rest of the machine took exceed the cores) was
//! timed at the pace of its descheduled threads, not of its kernel: it is `undecided` whatever
//! its times (unless both runs hold the very same samples), and no gate fails on it.
//!
//! The verdict: `slower` when the interval lies above 1, `faster` below 1, `same` when it lies
//! within `±same_within` (of 1), otherwise `undecided` (the runs cannot tell).
//!
//! The whole run is a control as well ([`crate::run_shift`]): from five judged rows on, the
//! run's common shift (the median of the rows' `ln new/base`) is estimated with its interval,
//! and by default a row is `faster` or `slower` only when it moved *relative to the rest of the
//! run* beyond its noise and the rows' scatter; it is `same` only when it is the same both on its
//! own and relative to the run. A row that moved only as far as the whole run did is `undecided`
//! (its [`Pair::with_run`] set): one pair of runs cannot tell the machine's state from a change
//! every kernel shares. [`Judging::absolute`] judges each row on its own interval instead. A gate
//! of threshold `X` fails exactly the rows whose interval of the verdict (relative, or absolute
//! when asked) lies above `1 + X`, contended rows aside; the run's shift beyond `X` is
//! [`RunShift::slower_beyond`], for the caller to report.

use std::collections::HashMap;

use serde::Serialize;

use crate::contention::Contention;
use crate::noise::{Floor, RowFloor};
use crate::record::{Record, Report, RowKey, Status};
use crate::run_shift::{RowMove, RunShift};
use crate::stats::{log_median_se, robust_sd, t99};

/// The band of [`Verdict::Same`] unless told otherwise: ±5%.
pub const SAME_WITHIN: f64 = 0.05;

/// What one pair of rows says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The whole interval is below 1.
    Faster,
    /// The whole interval is above 1.
    Slower,
    /// The interval holds 1 and lies within the same-band.
    Same,
    /// The interval holds 1 and reaches past the same-band: the runs cannot tell.
    Undecided,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::Same => "same",
            Verdict::Undecided => "undecided",
        }
    }
}

/// One paired row.
#[derive(Clone, Debug, Serialize)]
pub struct Pair {
    pub key: RowKey,
    pub base_median_s: f64,
    pub new_median_s: f64,
    /// `new_median_s / base_median_s`.
    pub ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    /// The noise floor the row was held against.
    pub floor: f64,
    /// The quantile its interval used: Student's t with the floor's degrees of freedom.
    pub quantile: f64,
    pub verdict: Verdict,
    /// Its threads shared the cores with other processes in one of the runs: `undecided`, and
    /// never a regression.
    pub contended: bool,
    /// `ratio` over the whole run's shift ([`Comparison::run`]) and its 99% interval, when the
    /// shift was estimated and the row judged (not contended, samples not identical).
    pub relative: Option<f64>,
    pub relative_low: Option<f64>,
    pub relative_high: Option<f64>,
    /// On its own the row is faster or slower, but relative to the run it is not: `undecided`
    /// because the whole run moved.
    pub with_run: bool,
    /// The verdict and the gate used the relative interval (not `--absolute`, shift estimated).
    pub judged_relative: bool,
}

impl Pair {
    /// The interval the verdict and the gate used: relative to the run, or the row's own.
    pub fn judged_interval(&self) -> (f64, f64) {
        match (self.judged_relative, self.relative_low, self.relative_high) {
            (true, Some(low), Some(high)) => (low, high),
            _ => (self.ratio_low, self.ratio_high),
        }
    }

    /// `ln ratio` with its standard deviation, for the run's shift; `None` for a row whose
    /// samples are identical, whose interval is unbounded, or that shared its cores.
    fn movement(&self) -> Option<RowMove> {
        let sd = (self.ratio_high / self.ratio).ln() / self.quantile;
        let judged = !self.contended && self.ratio_high > self.ratio_low && sd.is_finite();
        judged.then(|| RowMove { d: self.ratio.ln(), sd, floor: self.floor, quantile: self.quantile })
    }
}

/// How rows are judged: the same-band, and whether on their own (`absolute`) or relative to the
/// whole run's shift (the default; see the module header).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judging {
    pub same_within: f64,
    pub absolute: bool,
}

impl Judging {
    /// Relative to the run, with `same_within` as the same-band.
    pub fn relative(same_within: f64) -> Self {
        Self { same_within, absolute: false }
    }

    /// Each row on its own.
    pub fn absolute(same_within: f64) -> Self {
        Self { same_within, absolute: true }
    }
}

/// The ratio of medians, its 99% interval and the verdict for samples `base` and `new` (seconds,
/// in the order taken) of one row, with a noise floor `floor` and a same-band `same_within`
/// (see the module header).
pub fn judge(base: &[f64], new: &[f64], floor: RowFloor, same_within: f64) -> (f64, (f64, f64), Verdict) {
    let med = |v: &[f64]| crate::stats::median(&mut v.to_vec());
    let ratio = med(new) / med(base);
    let interval = if base == new {
        (ratio, ratio)
    } else {
        let (se_b, se_n) = (log_median_se(base), log_median_se(new));
        let sigma = floor.sigma;
        let half = t99(floor.df) * (se_b * se_b + se_n * se_n + 2.0 * sigma * sigma).sqrt();
        (ratio * (-half).exp(), ratio * half.exp())
    };
    (ratio, interval, verdict(interval, same_within))
}

/// `floor` with a measured change of the machine between the runs, `shift` on the log scale,
/// added to its variance: the interval's `2σ²` grows by `shift²`, so no row is judged closer than
/// the machine itself moved.
fn widened(floor: RowFloor, shift: f64) -> RowFloor {
    RowFloor { sigma: (floor.sigma * floor.sigma + shift * shift / 2.0).sqrt(), ..floor }
}

/// The verdict of an interval of `new ÷ base`.
pub fn verdict((low, high): (f64, f64), same_within: f64) -> Verdict {
    if low > 1.0 {
        Verdict::Slower
    } else if high < 1.0 {
        Verdict::Faster
    } else if low >= 1.0 / (1.0 + same_within) && high <= 1.0 + same_within {
        Verdict::Same
    } else {
        Verdict::Undecided
    }
}

/// Everything a comparison found.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The rows `ok` in both reports, paired, in the base report's order.
    pub pairs: Vec<Pair>,
    /// Rows of the new report that failed their check or could not run, with their note: they
    /// fail the gate.
    pub failed: Vec<(RowKey, Status, String)>,
    /// Rows of the base and of the new report that were not compared because they are not `ok`
    /// (failed, skipped or could not run), how many.
    pub not_ok: (usize, usize),
    /// `ok` base rows without an `ok` partner in the new report.
    pub unmatched: usize,
    /// `ok` rows of the new report that match a base row in everything but the device, as
    /// (base device, new device): never paired.
    pub other_device: Vec<(String, String)>,
    /// The machine probes' ratio `new ÷ base` and the shift beyond their noise that every
    /// interval was widened by ([`crate::probe::machine_shift`]), when both reports have one.
    pub machine: Option<(f64, f64)>,
    /// What other processes took of the cores in the base and in the new run, where measured.
    pub contention: [Option<Contention>; 2],
    /// The whole run's shift, from [`crate::run_shift::MIN_ROWS`] judged pairs on.
    pub run: Option<RunShift>,
}

/// Pairs the `ok` rows of `base` and `new` and judges each pair on their steadied samples (see
/// the module header). Rows are
/// matched through a hash of their keys, so the cost is that of the samples' sorting,
/// `O(n log n)` in a row's samples.
pub fn compare(base: &Report, new: &Report, floor: &Floor, same_within: f64) -> Comparison {
    compare_with(base, new, floor, Judging::relative(same_within))
}

/// [`compare`], judging as `judging` says.
pub fn compare_with(base: &Report, new: &Report, floor: &Floor, judging: Judging) -> Comparison {
    let same_within = judging.same_within;
    let machine = crate::probe::machine_shift(base, new);
    let shift = machine.map_or(0.0, |(_, shift)| shift);
    let contention = [base, new].map(|r| r.probe.as_ref().and_then(|p| p.contention.clone()));
    let contended =
        |threads: Option<usize>| threads.is_some_and(|t| contention.iter().flatten().any(|c| c.oversubscribes(t)));
    let (base, new) = (&crate::drift::steady(base), &crate::drift::steady(new));
    let ok = |r: &&Record| r.status == Status::Ok && r.timed();
    let new_rows: HashMap<RowKey, &Record> = new.records.iter().filter(ok).map(|r| (r.key(), r)).collect();
    let without_device = |k: &RowKey| RowKey { device: String::new(), ..k.clone() };
    let new_by_work: HashMap<RowKey, &Record> = new_rows.iter().map(|(k, r)| (without_device(k), *r)).collect();
    let mut out = Comparison { machine, contention: contention.clone(), ..Comparison::default() };
    for b in base.records.iter().filter(ok) {
        let key = b.key();
        let Some(n) = new_rows.get(&key) else {
            out.unmatched += 1;
            if let Some(other) = new_by_work.get(&without_device(&key)) {
                out.other_device.push((b.device.clone(), other.device.clone()));
            }
            continue;
        };
        let f = widened(floor.for_row(&key), shift);
        let (ratio, (low, high), verdict) = judge(&b.samples_s, &n.samples_s, f, same_within);
        // One run read twice is the same samples, shared cores or not: nothing to doubt.
        let contended = contended(key.threads) && b.samples_s != n.samples_s;
        let verdict = if contended { Verdict::Undecided } else { verdict };
        out.pairs.push(Pair {
            key,
            base_median_s: b.median_s,
            new_median_s: n.median_s,
            ratio,
            ratio_low: low,
            ratio_high: high,
            floor: f.sigma,
            quantile: t99(f.df),
            verdict,
            contended,
            relative: None,
            relative_low: None,
            relative_high: None,
            with_run: false,
            judged_relative: false,
        });
    }
    out.run = judge_against_run(&mut out.pairs, judging);
    for r in &new.records {
        if matches!(r.status, Status::Fail | Status::Error) {
            out.failed.push((r.key(), r.status, r.note.clone().unwrap_or_default()));
        }
    }
    let not_ok = |r: &Report| r.records.iter().filter(|r| !ok(r)).count();
    out.not_ok = (not_ok(base), not_ok(new));
    out
}

/// Estimates the run's shift from `pairs` and, unless `judging` is absolute, judges each
/// judged pair relative to it: `faster`/`slower` from the relative interval, `same` only when
/// both intervals say so, otherwise `undecided` (see the module header).
fn judge_against_run(pairs: &mut [Pair], judging: Judging) -> Option<RunShift> {
    let run = RunShift::estimate(&pairs.iter().filter_map(Pair::movement).collect::<Vec<_>>())?;
    for p in pairs.iter_mut() {
        let Some(row) = p.movement() else { continue };
        let (ratio, (low, high)) = run.relative(&row);
        (p.relative, p.relative_low, p.relative_high) = (Some(ratio), Some(low), Some(high));
        if judging.absolute {
            continue;
        }
        let own = p.verdict;
        p.judged_relative = true;
        p.verdict = match (verdict((low, high), judging.same_within), own) {
            (v @ (Verdict::Faster | Verdict::Slower), _) => v,
            (Verdict::Same, Verdict::Same) => Verdict::Same,
            _ => Verdict::Undecided,
        };
        p.with_run = p.verdict == Verdict::Undecided && matches!(own, Verdict::Faster | Verdict::Slower);
    }
    Some(run)
}

/// The pairs slower by more than `threshold` (0.05 is 5%): those whose whole interval of the
/// verdict ([`Pair::judged_interval`]) lies above `1 + threshold`, except rows that shared their
/// cores with other processes.
pub fn regressions(pairs: &[Pair], threshold: f64) -> Vec<&Pair> {
    pairs.iter().filter(|p| !p.contended && p.judged_interval().0 > 1.0 + threshold).collect()
}

/// Do the pairs spread around their common shift more than their intervals allow? On the log
/// scale each pair's `dᵢ = ln ratioᵢ` should scatter around the rows' common shift `median(d)`
/// by about its own `sᵢ` (the interval's half-width over its quantile). When the robust spread of
/// the `dᵢ` ([`robust_sd`]) exceeds twice the median `sᵢ`, the machine varied between these two
/// runs more than the noise floor says (measured under other conditions, or not at all), and
/// the verdicts deserve less trust: returns (observed, expected). Needs 8 pairs whose samples
/// differ; a few rows that really changed barely move the median absolute deviation.
pub fn spread_beyond_floor(pairs: &[Pair]) -> Option<(f64, f64)> {
    let judged: Vec<&Pair> = pairs.iter().filter(|p| !p.contended && p.ratio_high > p.ratio).collect();
    if judged.len() < 8 {
        return None;
    }
    let d: Vec<f64> = judged.iter().map(|p| p.ratio.ln()).collect();
    let mut s: Vec<f64> = judged.iter().map(|p| (p.ratio_high / p.ratio).ln() / p.quantile).collect();
    let (observed, expected) = (robust_sd(&d), crate::stats::median(&mut s));
    (observed > 2.0 * expected).then_some((observed, expected))
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
    if base.settings.settle_s != new.settings.settle_s {
        out.push(format!(
            "different settling: each timed call followed {} ms and {} ms of untimed calls of its own row \
             (infer --settle-ms; 0: one call), so a row's times after the other rows' calls differ by protocol",
            base.settings.settle_s * 1e3,
            new.settings.settle_s * 1e3
        ));
    }
    out
}

#[cfg(test)]
#[path = "compare_tests.rs"]
pub(crate) mod tests;
