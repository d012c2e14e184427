//! `kernelab compare BASE.json NEW.json`: did the kernels get faster, slower, or can two runs not
//! tell? And `kernelab compare --calibrate A1.json A2.json …`: how far do identical runs drift
//! apart on this machine (the noise floor every comparison allows for)?

use crate::out::outln;
use std::path::{Path, PathBuf};

use clap::Args;

use kernelab_bench::compare::{
    Comparison, Judging, Pair, Verdict, compare_with, differences, regressions, spread_beyond_floor,
};
use kernelab_bench::contention::Contention;
use kernelab_bench::noise::{self, Floor, Source};
use kernelab_bench::record::Report;
use kernelab_bench::run_shift::RunShift;
use kernelab_bench::table::{format_time, terminal_table};
use kernelab_tensor::{Error, Result};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab bench --op matmul --shape 64..1024 --json base.json
  (change a kernel, rebuild)
  kernelab bench --op matmul --shape 64..1024 --json new.json
  kernelab compare base.json new.json
  kernelab compare base.json new.json --threshold 5%    # exit 1 when a row is surely slower by over 5%

  Exit status: 0 nothing failed; 1 a new row failed its check, or (with --threshold) a row is
  surely slower than the threshold relative to the rest of its run (on its own with --absolute);
  2 an error; 3 (with --threshold, not --absolute) no row stands out but the whole run is surely
  slower than the threshold: the machine's state or a change every kernel shares, which one pair
  of runs cannot tell apart; run both again, and use --absolute if you know every row changed.

  Once per machine, the noise floor: the same command ten times, then
  for i in $(seq 10); do kernelab bench --op matmul --shape 64..1024 --json aa$i.json; done
  kernelab compare --calibrate aa*.json")]
pub struct CompareArgs {
    /// BASE.json and NEW.json (from `kernelab bench --json`); with --calibrate, two or more
    /// reports of one command repeated on one machine.
    #[arg(required = true, value_name = "REPORTS")]
    reports: Vec<PathBuf>,
    /// Exit with status 1 when a row is slower by more than this, e.g. `5%`: when its whole 99%
    /// interval of new/base, relative to the whole run (its own with --absolute), lies above
    /// 1 + this (for CI); exit 3 when only the whole run is (see below). Any value means what it
    /// says; `0%` fails every row that is surely slower.
    #[arg(long, value_parser = parse_percent)]
    threshold: Option<f64>,
    /// The spread of a row's median between two runs on this machine, e.g. `2%`. Default: what
    /// --calibrate measured for the reports' machine, else 5%.
    #[arg(long, value_parser = parse_percent)]
    noise_floor: Option<f64>,
    /// A row is `same` when its whole interval lies within ± this.
    #[arg(long, value_parser = parse_percent, default_value = "5%")]
    same_within: f64,
    /// Judge each row on its own times, not relative to the whole run. By default a row is
    /// faster or slower only when it moved relative to the rest of its run, because two runs of
    /// identical code on one machine often move together by several percent (the machine's
    /// state) and one pair of runs cannot tell that from a change every kernel shares (a compiler
    /// flag). Whether every row really changed is your knowledge, not something the two reports
    /// show: ask for absolute verdicts when you know it. The run's shift is reported either way.
    #[arg(long)]
    absolute: bool,
    /// Also write the comparison as JSON to this file: the floor, the whole run's shift, every
    /// pair with its interval, its interval relative to the run and its verdict, the failed
    /// rows, the rows past the threshold and the exit status.
    #[arg(long, value_name = "FILE", conflicts_with = "calibrate")]
    json: Option<PathBuf>,
    /// Measure the noise floor from REPORTS (the same `kernelab bench` command run several times;
    /// ten is good, five can come out far too low) and keep it for their machine, beside the
    /// roofline ceilings.
    #[arg(long, conflicts_with_all = ["threshold", "noise_floor"])]
    calibrate: bool,
}

/// `5%` or `5` → 0.05.
fn parse_percent(text: &str) -> std::result::Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 10_000.0)
        .map(|v| v / 100.0)
        .ok_or_else(|| format!("`{text}` is not a percentage like 5%"))
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

/// Exit status 1: rows failed (see the after-help).
const ROWS_FAILED: u8 = 1;
/// Exit status 3: the whole run is slower than the threshold and no row stands out.
const WHOLE_RUN_SLOWER: u8 = 3;

/// Compares (or calibrates); returns the exit status (see the after-help): 1 when rows fail (new
/// rows that failed their check or could not run, and with a threshold the rows slower by more
/// than it), else 3 when the whole run is slower than the threshold, else 0.
pub fn run(a: &CompareArgs) -> Result<u8> {
    if a.calibrate {
        return calibrate(a).map(|()| 0);
    }
    let [base_path, new_path] = a.reports.as_slice() else {
        return Err(Error::InvalidArgument {
            op: "compare",
            why: format!("give two reports, BASE and NEW ({} given); --calibrate takes more", a.reports.len()),
        });
    };
    let mut paths = kernelab_tensor::files::Paths::new();
    paths.input("BASE", Some(base_path)).input("NEW", Some(new_path));
    paths.output("--json", a.json.as_deref(), kernelab_tensor::files::Kind::Replaced).check()?;
    let (base, new) = (Report::read(base_path)?, Report::read(new_path)?);
    let floor = match a.noise_floor {
        Some(f) => Floor::given(f),
        None => Floor::for_report(&noise::path(), &base),
    };
    let judging = Judging { same_within: a.same_within, absolute: a.absolute };
    let found = compare_with(&base, &new, &floor, judging);
    if found.pairs.is_empty() && found.failed.is_empty() {
        return Err(nothing_in_common(&found, base_path, new_path));
    }
    for warning in differences(&base, &new).into_iter().chain(kernel_files(&base, &new, &found)) {
        eprintln!("warning: {warning}");
    }
    outln!("noise floor between runs: {}", describe(&floor));
    print_machine(found.machine);
    print_contention(&found.contention, &found.pairs);
    if let Some((observed, expected)) = spread_beyond_floor(&found.pairs) {
        eprintln!(
            "warning: the rows moved apart by {} (robust spread of ln new/base around their common shift), more \
             than twice the {} their intervals allow: these two runs varied more than the noise floor says; \
             measure it under the conditions you compare in (`--calibrate`)",
            percent(observed),
            percent(expected)
        );
    }
    print_run(found.run.as_ref(), a.absolute);
    print_table(&found);
    print_summary(&found, a, base_path, new_path);
    for (key, status, note) in &found.failed {
        let status = format!("{status:?}").to_lowercase();
        eprintln!("error: {} row {key} is `{status}`: {note}", new_path.display());
    }
    let slow = a.threshold.map_or_else(Vec::new, |t| regressions(&found.pairs, t));
    if let Some(threshold) = a.threshold
        && !slow.is_empty()
    {
        eprintln!(
            "{} rows are slower by more than {} (their whole 99% interval{} lies above {:.3}):",
            slow.len(),
            percent(threshold),
            if found.run.is_some() && !a.absolute { " relative to the whole run" } else { "" },
            1.0 + threshold
        );
        for p in &slow {
            let (low, high) = p.judged_interval();
            let ratio = p.relative.filter(|_| p.judged_relative).unwrap_or(p.ratio);
            eprintln!("  {} {ratio:.3} ({low:.3}–{high:.3})", p.key);
        }
    }
    let status = exit_status(a, &found, slow.len());
    if let Some(path) = &a.json {
        write_json(path, a, &floor, &found, &slow, status)?;
    }
    Ok(status)
}

/// 1 when `slow` rows are past the threshold or new rows failed; else 3 when the whole run is
/// surely slower than the threshold (relative verdicts only), said on stderr; else 0.
fn exit_status(a: &CompareArgs, found: &Comparison, slow: usize) -> u8 {
    if found.failed.len() + slow > 0 {
        return ROWS_FAILED;
    }
    let Some(threshold) = a.threshold.filter(|_| !a.absolute) else { return 0 };
    if !found.run.is_some_and(|run| run.slower_beyond(threshold)) {
        return 0;
    }
    eprintln!(
        "the whole run is slower by more than {} (its 99% interval lies above {:.3}) and no row stands out from it: \
         exit status 3; run both again to tell the machine from the code, or judge with --absolute",
        percent(threshold),
        1.0 + threshold
    );
    WHOLE_RUN_SLOWER
}

/// The machine probes' ratio, in a line, when both reports have one.
fn print_machine(machine: Option<(f64, f64)>) {
    match machine {
        Some((ratio, shift)) if shift > 0.0 => outln!(
            "machine probe: {ratio:.3}× the time in NEW (the same fixed work, timed every round): the machine itself \
             ran at another speed; every interval is widened by {} so that no row is judged closer than that",
            percent(shift.exp() - 1.0)
        ),
        Some((ratio, _)) => {
            outln!("machine probe: {ratio:.3}× the time in NEW, within its noise: the machine ran alike")
        }
        None => {}
    }
}

/// The whole run's shift, in a line, and how rows were judged against it.
fn print_run(run: Option<&RunShift>, absolute: bool) {
    let Some(run) = run else {
        outln!(
            "whole run: too few rows to estimate its shift (fewer than {} judged); each row judged on its own",
            kernelab_bench::run_shift::MIN_ROWS
        );
        return;
    };
    let judged = if absolute {
        "each row judged on its own (--absolute)"
    } else {
        "rows judged relative to it (`vs run`); --absolute judges each on its own"
    };
    outln!(
        "whole run: {:.3}× the time in NEW (99% interval {:.3}–{:.3}, the median of {} rows, which scatter ±{} \
         around it); {judged}",
        run.ratio,
        run.ratio_low,
        run.ratio_high,
        run.rows,
        percent(run.scatter)
    );
    if run.moved() {
        eprintln!(
            "warning: the whole run moved, {:.3}× ({:.3}–{:.3}): the machine's state, or a change every kernel shares \
             (a compiler flag, a common helper); one pair of runs cannot tell which{}",
            run.ratio,
            run.ratio_low,
            run.ratio_high,
            if absolute { "" } else { ", so rows that moved only with it are undecided, not slower or faster" }
        );
    }
}

/// The error of two reports without a row to compare.
fn nothing_in_common(found: &Comparison, base: &Path, new: &Path) -> Error {
    let devices = match found.other_device.first() {
        Some((b, n)) => {
            format!("; {} rows are the same work on another device ({b} and {n})", found.other_device.len())
        }
        None => String::new(),
    };
    Error::InvalidArgument {
        op: "compare",
        why: format!(
            "no ok row of {} matches one of {} (rows pair by op, backend, device, variant, shape, layout, threads and \
             mode; rows that failed, were skipped or could not run are not compared){devices}",
            new.display(),
            base.display(),
        ),
    }
}

/// `--json`: the comparison as JSON (see [`CompareArgs::json`]).
fn write_json(
    path: &Path,
    a: &CompareArgs,
    floor: &Floor,
    found: &Comparison,
    slow: &[&Pair],
    status: u8,
) -> Result<()> {
    let failed: Vec<serde_json::Value> = found
        .failed
        .iter()
        .map(|(key, status, note)| serde_json::json!({ "row": key, "status": status, "note": note }))
        .collect();
    let summary = serde_json::json!({
        "base": a.reports[0],
        "new": a.reports[1],
        "noise_floor": floor.pooled,
        "noise_floor_source": describe(floor),
        "machine_probe_ratio": found.machine.map(|(ratio, _)| ratio),
        "machine_shift": found.machine.map(|(_, shift)| shift),
        "contention_base": found.contention[0],
        "contention_new": found.contention[1],
        "run_shift": found.run,
        "absolute": a.absolute,
        "whole_run_slower_than_threshold": status == WHOLE_RUN_SLOWER,
        "same_within": a.same_within,
        "threshold": a.threshold,
        "pairs": found.pairs,
        "failed": failed,
        "slower_than_threshold": slow.iter().map(|p| &p.key).collect::<Vec<_>>(),
        "exit_status": status,
    });
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|e| Error::InvalidArgument { op: "compare", why: format!("cannot write JSON: {e}") })?;
    kernelab_tensor::files::write(path, format!("{text}\n").as_bytes())
}

/// A line for each paired row of a kernel file (`--kernel`) whose file differs between the runs:
/// another path (two files that happened to get one row name), or the same path with other
/// bytes (an edit, which is usually the point; said so that it is never a surprise).
fn kernel_files(base: &Report, new: &Report, found: &Comparison) -> Vec<String> {
    let sources = |r: &Report| -> std::collections::HashMap<_, _> {
        r.records.iter().filter_map(|x| x.source.clone().map(|s| (x.key(), s))).collect()
    };
    let (b, n) = (sources(base), sources(new));
    let mut lines = Vec::new();
    for pair in &found.pairs {
        let (Some(was), Some(is)) = (b.get(&pair.key), n.get(&pair.key)) else { continue };
        if was.path != is.path {
            lines.push(format!("{}: BASE ran {} and NEW ran {}, two different files", pair.key, was.path, is.path));
        } else if was.sha256 != is.sha256 {
            let short = |s: &str| s.chars().take(12).collect::<String>();
            lines.push(format!(
                "{}: {} changed between the runs (SHA-256 {} → {})",
                pair.key,
                is.path,
                short(&was.sha256),
                short(&is.sha256)
            ));
        }
    }
    lines
}

/// Where the floor came from, in a line.
fn describe(floor: &Floor) -> String {
    let rows = if floor.rows.is_empty() {
        String::new()
    } else {
        " (each calibrated row its own, moderated by it)".to_string()
    };
    match &floor.source {
        Source::Given => format!("{} (--noise-floor)", percent(floor.pooled)),
        Source::Measured { path, runs, unix_time } => format!(
            "{}{rows}, measured from {runs} runs at unix time {unix_time} ({})",
            percent(floor.pooled),
            path.display()
        ),
        Source::Assumed(why) => format!(
            "{} assumed: {why}; measure it with `kernelab compare --calibrate` (see --help), or give --noise-floor",
            percent(floor.pooled)
        ),
    }
}

/// What other processes took of the cores in each run, and which rows that made undecided.
fn print_contention(contention: &[Option<Contention>; 2], pairs: &[Pair]) {
    for (run, c) in ["BASE", "NEW"].iter().zip(contention) {
        if let Some(c) = c {
            outln!("cores in {run}: {}", c.describe());
        }
    }
    let mut threads: Vec<usize> = pairs.iter().filter(|p| p.contended).filter_map(|p| p.key.threads).collect();
    threads.dedup();
    if let Some(t) = threads.first() {
        eprintln!(
            "warning: {} rows ran on {t} threads while other processes kept cores busy: their threads waited for a core \
             with the clock running, so their times are not their kernels' alone; they are undecided whatever their \
             times (rerun on a quiet machine, or with --threads 1)",
            pairs.iter().filter(|p| p.contended).count()
        );
    }
}

fn print_table(found: &Comparison) {
    let header = [
        "op",
        "backend",
        "variant",
        "threads",
        "shape",
        "base",
        "new",
        "new/base",
        "99% interval",
        "vs run",
        "floor",
        "verdict",
    ];
    let rows = found
        .pairs
        .iter()
        .map(|p| {
            let shape = kernelab_bench::table::dims_text(&p.key.shape);
            let layout = p.key.transpose.as_deref().filter(|t| *t != "NN").map_or(String::new(), |t| format!(":{t}"));
            vec![
                p.key.op.clone(),
                p.key.backend.clone(),
                p.key.variant.clone(),
                p.key.threads.map_or_else(|| "-".into(), |t| t.to_string()),
                format!("{shape}{layout}"),
                format_time(p.base_median_s),
                format_time(p.new_median_s),
                format!("{:.3}", p.ratio),
                format!("{:.3}–{:.3}", p.ratio_low, p.ratio_high),
                p.relative.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
                percent(p.floor),
                verdict_text(p, found.run.as_ref()),
            ]
        })
        .collect();
    let right: Vec<bool> = (0..header.len()).map(|i| (5..11).contains(&i) || i == 3).collect();
    outln!("{}", terminal_table(header.map(String::from).to_vec(), &right, rows));
}

/// A pair's verdict, with why it is undecided where the reason is not the row's own noise.
fn verdict_text(p: &Pair, run: Option<&RunShift>) -> String {
    match run {
        _ if p.contended => "undecided (cores shared)".into(),
        Some(run) if p.with_run => format!("undecided (whole run moved {:.3}×)", run.ratio),
        _ => p.verdict.name().into(),
    }
}

fn print_summary(found: &Comparison, a: &CompareArgs, base: &Path, new: &Path) {
    let count = |v: Verdict| found.pairs.iter().filter(|p| p.verdict == v).count();
    outln!(
        "\n{} rows: {} faster, {} slower, {} same, {} undecided (a 99% interval of new/base from each run's samples \
         and the noise floor between runs; same: within ±{})",
        found.pairs.len(),
        count(Verdict::Faster),
        count(Verdict::Slower),
        count(Verdict::Same),
        count(Verdict::Undecided),
        percent(a.same_within)
    );
    let with_run = found.pairs.iter().filter(|p| p.with_run).count();
    if with_run > 0 {
        outln!("{with_run} of the undecided rows moved only as far as the whole run did");
    }
    if found.unmatched > 0 {
        outln!("{} ok rows of {} have no ok partner in {}", found.unmatched, base.display(), new.display());
    }
    if let Some((b, n)) = found.other_device.first() {
        outln!(
            "{} of them are the same work on another device ({b} and {n}): rows of different devices are never paired",
            found.other_device.len()
        );
    }
    let (base_not_ok, new_not_ok) = found.not_ok;
    if base_not_ok + new_not_ok > 0 {
        outln!(
            "not compared: {base_not_ok} rows of {} and {new_not_ok} of {} that failed, were skipped or could not run",
            base.display(),
            new.display()
        );
    }
}

/// `--calibrate`: the floor from the reports, kept for their machine.
fn calibrate(a: &CompareArgs) -> Result<()> {
    let reports =
        a.reports.iter().map(|p| Report::read(p).map(|r| (p.display().to_string(), r))).collect::<Result<Vec<_>>>()?;
    let file = noise::calibrate(&reports)?;
    let path = noise::path();
    noise::store(&path, &file)?;
    let mut rows: Vec<(&String, &f64)> = file.rows.iter().collect();
    rows.sort_by(|x, y| y.1.total_cmp(x.1));
    let table = rows.iter().map(|(k, f)| vec![(*k).clone(), percent(**f)]).collect();
    outln!("{}", terminal_table(vec!["row".into(), "floor".into()], &[false, true], table));
    outln!(
        "\nnoise floor of {} ({} logical cores, kernel {}): {} between runs, the root mean square of {} rows over {} \
         runs; kept in {}",
        file.key.cpu,
        file.key.logical_cores,
        file.key.kernel,
        percent(file.floor),
        file.rows.len(),
        file.runs,
        path.display()
    );
    Ok(())
}
