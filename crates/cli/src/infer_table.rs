//! The table of `kernelab infer`: one line per row as it is timed, and the terminal and Markdown
//! tables of a report's rows (see [`crate::infer`] for the rows).

use kernelab_bench::record::Record;
use kernelab_bench::table::{self, format_time};

use crate::infer::{images_per_s, note};

/// `cpu 784-128-10 batch 1: p50 2.10 µs, p99 3.02 µs, 476190 images/s, 96.8 GFLOP/s`.
pub(crate) fn one_line(r: &Record) -> String {
    format!(
        "{} {} batch {}: p50 {}, p99 {}, {:.0} images/s, {:.1} GFLOP/s",
        r.backend,
        r.variant,
        table::dims_text(&r.shape),
        format_time(r.median_s),
        format_time(r.p99_s.unwrap_or(f64::NAN)),
        images_per_s(r),
        r.gflops
    )
}

const COLUMNS: [(&str, bool); 11] = [
    ("backend", false),
    ("model", false),
    ("batch", true),
    ("threads", true),
    ("p50", true),
    ("p99", true),
    ("p99/p50", true),
    ("images/s", true),
    ("GFLOP/s", true),
    ("% roof", true),
    ("notes", false),
];

fn cells(r: &Record) -> Vec<String> {
    let p99 = r.p99_s.unwrap_or(f64::NAN);
    vec![
        r.backend.clone(),
        r.variant.clone(),
        table::dims_text(&r.shape),
        r.threads.map_or_else(|| "-".into(), |t| t.to_string()),
        format_time(r.median_s),
        format_time(p99),
        format!("{:.2}", p99 / r.median_s),
        format!("{:.0}", images_per_s(r)),
        format!("{:.2}", r.gflops),
        table::roof_text(r),
        note(r),
    ]
}

/// The table for a terminal.
pub fn render(records: &[Record]) -> String {
    let head = COLUMNS.iter().map(|(h, _)| h.to_string()).collect();
    let right: Vec<bool> = COLUMNS.iter().map(|(_, r)| *r).collect();
    table::terminal_table(head, &right, records.iter().map(cells).collect())
}

/// The table as GitHub Markdown.
pub fn markdown(records: &[Record]) -> String {
    let mut out = format!("| {} |\n", COLUMNS.map(|(h, _)| h).join(" | "));
    out += &format!("|{}\n", COLUMNS.map(|(_, right)| if right { "---:|" } else { "---|" }).concat());
    for r in records {
        out += &format!("| {} |\n", cells(r).iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    }
    out
}
