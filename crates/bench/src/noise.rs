//! The noise floor: how far a row's median moves between two runs of the same command on one
//! machine, beyond what each run's own samples show. Nothing inside one run can measure it (a
//! run's placement in memory, its CPU's clock, its neighbours are fixed for the run), so it is
//! measured by repeated identical runs (A/A) and kept per machine, beside the roofline ceilings:
//! `kernelab compare --calibrate A1.json A2.json …` writes it, `kernelab compare` reads it.
//!
//! For a row timed in `k` runs, with `yⱼ = ln(medianⱼ)` and `seⱼ` each run's standard error of
//! it ([`log_median_se`]), the row's floor is `σ_row² = max(0, var(y) − mean(seⱼ²))` (`var` with
//! `d = k − 1` degrees of freedom); the pooled floor `σ₀` is the square root of the median of the
//! rows' `σ_row²` (a typical row, not the noisiest).
//!
//! A row's own estimate from a handful of runs is itself uncertain (five runs that happened to
//! agree say little), so a row is held against its estimate moderated by the pooled one, as
//! empirical-Bayes variance estimates are: `σ̃² = (d₀·σ₀² + d·σ_row²) / (d₀ + d)` with the pooled
//! floor worth [`PRIOR_DF`] degrees of freedom, and its interval uses Student's t with `d₀ + d`
//! degrees of freedom instead of the normal quantile. A row that was not calibrated gets `σ₀`
//! with `d₀`. A measured floor is never taken below [`LEAST_MEASURED`]. A floor given on the
//! command line (or assumed) is taken as exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use kernelab_tensor::{Error, Result};

use crate::record::{Report, RowKey, Status};
use crate::stats::log_median_se;

/// The floor assumed when none was measured for the reports' machine: generous, since the drift
/// between runs on a shared virtual machine reaches tens of percent.
pub const ASSUMED: f64 = 0.05;

/// How much the pooled floor weighs in a row's moderated floor, in degrees of freedom: as much
/// as five runs of the row itself.
pub const PRIOR_DF: f64 = 4.0;

/// The least floor a measured one is taken as: ten runs in one stretch of minutes can agree
/// more closely than the next stretch will. Measured on a 2-vCPU VM: against a floor calibrated
/// under load as 0.0%, later identical pairs under the same load differed by up to 3.4%, and 10
/// of 160 rows were called faster or slower; with 1% none of them would have been.
pub const LEAST_MEASURED: f64 = 0.01;

/// The floor one row is held against: a relative spread between runs and how many degrees of
/// freedom its estimate has (infinite for a floor taken as exact).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowFloor {
    pub sigma: f64,
    pub df: f64,
}

/// The machine a floor was measured on (from the reports' `machine`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseKey {
    pub cpu: String,
    pub logical_cores: usize,
    pub kernel: String,
}

impl NoiseKey {
    pub fn of(report: &Report) -> Self {
        let m = &report.machine;
        Self { cpu: m.cpu.clone(), logical_cores: m.logical_cores, kernel: m.kernel.clone() }
    }
}

/// The noise file's contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseFile {
    pub key: NoiseKey,
    /// Seconds since the Unix epoch when it was calibrated.
    pub measured_unix_time: u64,
    /// The command line of the first of the runs it was measured from.
    pub command: Vec<String>,
    /// How many runs.
    pub runs: usize,
    /// The pooled floor: a relative spread (0.01 is 1%) of a row's median between runs.
    pub floor: f64,
    /// Each calibrated row's own floor, by its [`RowKey`] as text.
    pub rows: BTreeMap<String, f64>,
}

/// Where a floor came from, for the comparison's header.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// `--noise-floor` on the command line.
    Given,
    /// Measured on the reports' machine and kept in this file.
    Measured { path: PathBuf, runs: usize, unix_time: u64 },
    /// Nothing measured for the reports' machine; [`ASSUMED`], and why.
    Assumed(String),
}

/// The floor each row of a comparison is held against.
#[derive(Clone, Debug, PartialEq)]
pub struct Floor {
    pub pooled: f64,
    pub rows: BTreeMap<String, f64>,
    pub source: Source,
}

impl Floor {
    /// The same floor for every row.
    pub fn given(floor: f64) -> Self {
        Self { pooled: floor, rows: BTreeMap::new(), source: Source::Given }
    }

    /// A row's floor: measured, its own moderated by the pooled one (see the module header);
    /// given or assumed, the larger of the two, taken as exact.
    pub fn for_row(&self, key: &RowKey) -> RowFloor {
        let own = self.rows.get(&key.to_string()).copied();
        match (&self.source, own) {
            (Source::Measured { runs, .. }, Some(own)) => {
                let d = runs.saturating_sub(1) as f64;
                let df = PRIOR_DF + d;
                let sigma = ((PRIOR_DF * self.pooled.powi(2) + d * own * own) / df).sqrt();
                RowFloor { sigma: sigma.max(LEAST_MEASURED), df }
            }
            (Source::Measured { .. }, None) => RowFloor { sigma: self.pooled.max(LEAST_MEASURED), df: PRIOR_DF },
            (_, own) => RowFloor { sigma: own.map_or(self.pooled, |own| own.max(self.pooled)), df: f64::INFINITY },
        }
    }

    /// The floor kept for `report`'s machine in `path`, or [`ASSUMED`] with the reason.
    pub fn for_report(path: &Path, report: &Report) -> Self {
        let assumed = |why: String| Self { pooled: ASSUMED, rows: BTreeMap::new(), source: Source::Assumed(why) };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return assumed(format!("none measured yet ({} does not exist)", path.display()));
            }
            Err(e) => return assumed(format!("{}: {e}", path.display())),
        };
        let file: NoiseFile = match serde_json::from_str(&text) {
            Ok(file) => file,
            Err(e) => return assumed(format!("{} is unreadable: {e}", path.display())),
        };
        let sane = |v: f64| v.is_finite() && v >= 0.0;
        if !sane(file.floor) || !file.rows.values().all(|&v| sane(v)) {
            return assumed(format!("{} holds a floor that is not a number ≥ 0", path.display()));
        }
        if file.key != NoiseKey::of(report) {
            return assumed(format!("{} was measured on another machine ({})", path.display(), file.key.cpu));
        }
        let source = Source::Measured { path: path.to_path_buf(), runs: file.runs, unix_time: file.measured_unix_time };
        Self { pooled: file.floor, rows: file.rows, source }
    }
}

/// The noise file in the per-machine cache directory (where the roofline is kept).
pub fn path() -> PathBuf {
    kernelab_cpu::roofline::cache::dir().join("noise.json")
}

/// Measures the floor from `reports` (name, report) of one command repeated on one machine: every
/// row that is `ok` in all of them (see the module header). At least two reports, from one
/// machine, with a row in common.
pub fn calibrate(reports: &[(String, Report)]) -> Result<NoiseFile> {
    let refuse = |why: String| Err(Error::InvalidArgument { op: "compare --calibrate", why });
    let Some((first_name, first)) = reports.first() else {
        return refuse("no reports given".into());
    };
    if reports.len() < 2 {
        return refuse("the floor is the spread between runs: give two reports or more (five is better)".into());
    }
    let key = NoiseKey::of(first);
    if let Some((name, _)) = reports.iter().find(|(_, r)| NoiseKey::of(r) != key) {
        return refuse(format!("{name} is from another machine than {first_name}; calibrate one machine at a time"));
    }
    let steadied: Vec<Report> = reports.iter().map(|(_, r)| crate::drift::steady(r)).collect();
    let indexed: Vec<std::collections::HashMap<RowKey, &crate::record::Record>> = steadied
        .iter()
        .map(|r| r.records.iter().filter(|o| o.status == Status::Ok && o.timed()).map(|o| (o.key(), o)).collect())
        .collect();
    if let Some((a, b)) = same_samples(reports) {
        return refuse(format!("{a} and {b} hold the very same samples: one run given twice measures no spread"));
    }
    let mut rows = BTreeMap::new();
    for base in steadied[0].records.iter().filter(|r| r.status == Status::Ok && r.timed()) {
        let k = base.key();
        let runs: Option<Vec<(f64, f64)>> =
            indexed.iter().map(|index| index.get(&k).map(|o| (o.median_s.ln(), log_median_se(&o.samples_s)))).collect();
        // A row missing from a run, or with too few samples to say its own error, says nothing.
        let Some(runs) = runs.filter(|runs| runs.iter().all(|(y, se)| y.is_finite() && se.is_finite())) else {
            continue;
        };
        let n = runs.len() as f64;
        let mean = runs.iter().map(|(y, _)| y).sum::<f64>() / n;
        let between = runs.iter().map(|(y, _)| (y - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let within = runs.iter().map(|(_, se)| se * se).sum::<f64>() / n;
        rows.insert(k.to_string(), (between - within).max(0.0).sqrt());
    }
    if rows.is_empty() {
        return refuse(format!(
            "no row is ok, with two samples or more, in all {} reports (rows pair by op, backend, device, variant, \
             shape, layout, threads and mode); run the same `kernelab bench` command each time",
            reports.len()
        ));
    }
    let mut variances: Vec<f64> = rows.values().map(|s| s * s).collect();
    let floor = crate::stats::median(&mut variances).sqrt();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Ok(NoiseFile { key, measured_unix_time: now, command: first.command.clone(), runs: reports.len(), floor, rows })
}

/// The names of two reports whose timed rows hold the very same samples, if any.
fn same_samples(reports: &[(String, Report)]) -> Option<(&str, &str)> {
    let samples = |r: &Report| r.records.iter().map(|o| o.samples_s.clone()).collect::<Vec<_>>();
    let all: Vec<_> = reports.iter().map(|(_, r)| samples(r)).collect();
    (0..reports.len())
        .flat_map(|i| (i + 1..reports.len()).map(move |j| (i, j)))
        .find(|&(i, j)| all[i] == all[j])
        .map(|(i, j)| (reports[i].0.as_str(), reports[j].0.as_str()))
}

/// Writes `file` to `path` atomically (the directory is made when missing).
pub fn store(path: &Path, file: &NoiseFile) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.display().to_string(), source })?;
    }
    let json = serde_json::to_string_pretty(file).map_err(|e| Error::InvalidArgument {
        op: "compare --calibrate",
        why: format!("the noise floor cannot be written as JSON: {e}"),
    })?;
    kernelab_tensor::files::write(path, format!("{json}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::{report, row};

    #[test]
    fn the_floor_is_the_spread_between_runs_beyond_the_samples() {
        // One row whose samples are all alike within each run (no within-run error) and whose
        // median is 1.00, 1.02, 0.98 ms in three runs: var(ln) ≈ 0.02², so the floor is 2%.
        let runs: Vec<(String, Report)> = [1.00, 1.02, 0.98]
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("run{i}.json"), report(vec![row("naive", &[m * 1e-3; 9])])))
            .collect();
        let file = calibrate(&runs).unwrap();
        assert!((file.floor - 0.02).abs() < 2e-4, "{}", file.floor);
        assert_eq!((file.runs, file.rows.len()), (3, 1));

        // Samples spread within each run by as much as the medians move between runs: nothing
        // is left for the floor.
        let spread = |m: f64| -> Vec<f64> { (0..9).map(|i| m * (1.0 + 0.1 * (i as f64 - 4.0))).collect() };
        let runs: Vec<(String, Report)> =
            [1.0, 1.01].iter().map(|&m| (format!("{m}"), report(vec![row("naive", &spread(m * 1e-3))]))).collect();
        assert_eq!(calibrate(&runs).unwrap().floor, 0.0);
    }

    #[test]
    fn a_given_floor_is_exact_and_a_measured_one_is_moderated_by_the_pooled_floor() {
        let key = row("naive", &[1e-3; 3]).key();
        let mut floor = Floor::given(0.01);
        assert_eq!(floor.for_row(&key), RowFloor { sigma: 0.01, df: f64::INFINITY });
        floor.rows.insert(key.to_string(), 0.03);
        assert_eq!(floor.for_row(&key).sigma, 0.03);

        // Measured from 13 runs (12 degrees of freedom) beside a pooled 4% (worth 4): a row that
        // moved 0% is held against √(4·0.04²/16) = 2% with t of 16 degrees of freedom; one that
        // moved 8% against √((4·0.04² + 12·0.08²)/16) = 7.2%; one not calibrated against 4% with 4.
        let measured = Source::Measured { path: PathBuf::new(), runs: 13, unix_time: 0 };
        let mut floor = Floor { pooled: 0.04, rows: BTreeMap::new(), source: measured };
        floor.rows.insert(key.to_string(), 0.0);
        let quiet = floor.for_row(&key);
        assert!((quiet.sigma - 0.02).abs() < 1e-12 && quiet.df == 16.0, "{quiet:?}");
        floor.rows.insert(key.to_string(), 0.08);
        let loud = floor.for_row(&key);
        assert!((loud.sigma - (0.0832f64 / 16.0).sqrt()).abs() < 1e-12 && loud.df == 16.0, "{loud:?}");
        let other = row("packed", &[1e-3; 3]).key();
        assert_eq!(floor.for_row(&other), RowFloor { sigma: 0.04, df: PRIOR_DF });
        // A machine and a row that measured no spread at all are still held against 1%.
        floor.pooled = 0.0;
        floor.rows.insert(key.to_string(), 0.0);
        assert_eq!(floor.for_row(&key), RowFloor { sigma: LEAST_MEASURED, df: 16.0 });
        assert_eq!(floor.for_row(&other).sigma, LEAST_MEASURED);
    }

    #[test]
    fn the_pooled_floor_is_a_typical_row_and_one_run_given_twice_is_refused() {
        // Three rows over three runs that moved 0%, 2% and 30%: the pooled floor is the middle
        // one, not the root mean square (17%) that the noisiest row would set.
        let runs: Vec<(String, Report)> = [(1.00, 1.0), (1.02, 1.3), (0.98, 0.7)]
            .iter()
            .enumerate()
            .map(|(i, &(m, loud))| {
                let rows =
                    vec![row("quiet", &[1e-3; 9]), row("middle", &[m * 1e-3; 9]), row("loud", &[loud * 1e-3; 9])];
                (format!("run{i}.json"), report(rows))
            })
            .collect();
        let file = calibrate(&runs).unwrap();
        assert!((file.floor - 0.02).abs() < 2e-4, "{}", file.floor);
        let twice = [runs[0].clone(), runs[1].clone(), runs[0].clone()];
        let err = calibrate(&twice).unwrap_err().to_string();
        assert!(err.contains("run0.json and run0.json hold the very same samples"), "{err}");
    }

    #[test]
    fn calibration_needs_two_runs_of_one_machine_and_the_file_reads_back_for_that_machine_only() {
        let one = report(vec![row("naive", &[1e-3; 3])]);
        let err = calibrate(&[("a.json".into(), one.clone())]).unwrap_err().to_string();
        assert!(err.contains("two reports or more"), "{err}");
        let mut other = one.clone();
        other.machine.cpu = "Other CPU".into();
        let err = calibrate(&[("a.json".into(), one.clone()), ("b.json".into(), other.clone())]).unwrap_err();
        assert!(err.to_string().contains("b.json is from another machine"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("noise.json");
        assert!(
            matches!(Floor::for_report(&path, &one).source, Source::Assumed(ref why) if why.contains("none measured"))
        );
        let again = report(vec![row("naive", &[1.01e-3; 3])]);
        let file = calibrate(&[("a.json".into(), one.clone()), ("b.json".into(), again)]).unwrap();
        store(&path, &file).unwrap();
        let floor = Floor::for_report(&path, &one);
        assert!(matches!(floor.source, Source::Measured { runs: 2, .. }), "{floor:?}");
        assert!((floor.pooled - 0.01f64.ln_1p() / 2f64.sqrt()).abs() < 1e-4, "{floor:?}");
        let elsewhere = Floor::for_report(&path, &other);
        assert_eq!(elsewhere.pooled, ASSUMED);
        assert!(matches!(elsewhere.source, Source::Assumed(ref why) if why.contains("another machine")));
        std::fs::write(&path, "{\"key\": 1").unwrap();
        assert!(
            matches!(Floor::for_report(&path, &one).source, Source::Assumed(ref why) if why.contains("unreadable"))
        );
    }
}
