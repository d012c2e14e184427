//! `kernelab compare BASE.json NEW.json`: did the kernels get faster, slower, or is it noise?

use crate::out::outln;
use std::path::{Path, PathBuf};

use clap::Args;

use kernelab_bench::compare::{Verdict, differences, pair};
use kernelab_bench::record::{Report, SCHEMA_VERSION};
use kernelab_bench::table::{format_time, terminal_table};
use kernelab_tensor::{Error, Result};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab bench --op matmul --shape 64..1024 --json base.json
  (change a kernel, rebuild)
  kernelab bench --op matmul --shape 64..1024 --json new.json
  kernelab compare base.json new.json
  kernelab compare base.json new.json --threshold 5%    # exit 1 on a significant slowdown over 5%")]
pub struct CompareArgs {
    /// The report to compare against (from `kernelab bench --json`).
    base: PathBuf,
    /// The newer report.
    new: PathBuf,
    /// Exit with status 1 when a row is significantly slower by more than this, e.g. `5%` (for CI).
    #[arg(long, value_parser = parse_percent)]
    threshold: Option<f64>,
}

/// `5%` or `5` → 0.05.
fn parse_percent(text: &str) -> std::result::Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v / 100.0)
        .ok_or_else(|| format!("`{text}` is not a percentage like 5%"))
}

fn read(path: &Path) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Format { path: path.display().to_string(), why: format!("not JSON: {e}") })?;
    match value.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(Error::Format {
                path: path.display().to_string(),
                why: format!("schema version {v}; this kernelab reads version {SCHEMA_VERSION}: re-run its benchmark"),
            });
        }
        None => {
            return Err(Error::Format {
                path: path.display().to_string(),
                why: format!(
                    "no schema_version: not a `kernelab bench --json` report of schema {SCHEMA_VERSION} (an older one?)"
                ),
            });
        }
    }
    serde_json::from_value(value).map_err(|e| Error::Format { path: path.display().to_string(), why: e.to_string() })
}

/// Compares; returns the rows slower than the threshold (0 without one).
pub fn run(a: &CompareArgs) -> Result<usize> {
    let (base, new) = (read(&a.base)?, read(&a.new)?);
    let pairs = pair(&base, &new);
    if pairs.is_empty() {
        return Err(Error::InvalidArgument {
            op: "compare",
            why: format!(
                "no timed row of {} matches one of {} (rows pair by op, backend, variant, shape, layout, threads \
                 and mode; {} and {} timed rows)",
                a.new.display(),
                a.base.display(),
                new.records.iter().filter(|r| r.timed()).count(),
                base.records.iter().filter(|r| r.timed()).count()
            ),
        });
    }
    for warning in differences(&base, &new) {
        eprintln!("warning: {warning}");
    }
    let header =
        ["op", "backend", "variant", "threads", "shape", "base", "new", "new/base", "95% interval", "p", "verdict"];
    let rows = pairs
        .iter()
        .map(|p| {
            vec![
                p.op.clone(),
                p.backend.clone(),
                p.variant.clone(),
                p.threads.map_or_else(|| "-".into(), |t| t.to_string()),
                p.shape.clone(),
                format_time(p.base_median_s),
                format_time(p.new_median_s),
                format!("{:.3}", p.ratio),
                format!("{:.3}–{:.3}", p.ratio_low, p.ratio_high),
                if p.p_value < 1e-4 { "<1e-4".into() } else { format!("{:.4}", p.p_value) },
                format!("{:?}", p.verdict).to_lowercase(),
            ]
        })
        .collect();
    let right: Vec<bool> = (0..header.len()).map(|i| (5..10).contains(&i) || i == 3).collect();
    outln!("{}", terminal_table(header.map(String::from).to_vec(), &right, rows));
    let count = |v: Verdict| pairs.iter().filter(|p| p.verdict == v).count();
    outln!(
        "\n{} rows: {} faster, {} slower, {} same, {} noisy (Mann-Whitney U on the raw samples, p < 0.01 and a \
         bootstrap interval of the ratio of medians that excludes 1; within 2% is the same)",
        pairs.len(),
        count(Verdict::Faster),
        count(Verdict::Slower),
        count(Verdict::Same),
        count(Verdict::Noisy)
    );
    let unmatched = base.records.iter().filter(|r| r.timed()).count() - pairs.len();
    if unmatched > 0 {
        outln!("{unmatched} timed rows of {} have no partner in {}", a.base.display(), a.new.display());
    }
    let Some(threshold) = a.threshold else { return Ok(0) };
    let regressions = pairs.iter().filter(|p| p.verdict == Verdict::Slower && p.ratio > 1.0 + threshold).count();
    if regressions > 0 {
        eprintln!("{regressions} rows are significantly slower by more than {:.1}%", 100.0 * threshold);
    }
    Ok(regressions)
}
