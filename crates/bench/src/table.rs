//! The benchmark table as a person reads it (aligned columns, times with units), the same rows as
//! Markdown and CSV, and the footer that says what the ceilings and baselines are.

use kernelab_tensor::Baseline;

use crate::record::{Record, Report, Status};

/// `812 ns`, `3.41 µs`, `12.0 ms`, `1.52 s`.
pub fn format_time(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let (value, unit) = match secs {
        s if s < 1e-6 => (s * 1e9, "ns"),
        s if s < 1e-3 => (s * 1e6, "µs"),
        s if s < 1.0 => (s * 1e3, "ms"),
        s => (s, "s"),
    };
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {unit}")
}

fn number(v: f64, digits: usize) -> String {
    if v.is_finite() { format!("{v:.digits$}") } else { "-".into() }
}

/// The columns: header, and whether the values are numbers (right-aligned).
pub const COLUMNS: [(&str, bool); 16] = [
    ("op", false),
    ("backend", false),
    ("variant", false),
    ("threads", true),
    ("shape", false),
    ("median", true),
    ("p10–p90", true),
    ("clock", false),
    ("host median", true),
    ("GFLOP/s", true),
    ("GB/s", true),
    ("level", false),
    ("% roof", true),
    ("% vendor", true),
    ("max rel err", true),
    ("check", false),
];

/// Dimensions as text, `64x128x784`.
pub fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

/// `1024x1024x1024`, with `:NT` for a transposed layout.
pub fn shape_text(r: &Record) -> String {
    let shape = dims_text(&r.shape);
    match r.transpose.as_deref() {
        Some(t) if t != "NN" => format!("{shape}:{t}"),
        _ => shape,
    }
}

/// `87.3`, or `suspect 124.0` above the ceiling (never a plain figure over 100%).
pub fn roof_text(r: &Record) -> String {
    match (r.roofline.is_finite(), r.suspect) {
        (false, _) => "-".into(),
        (true, false) => format!("{:.1}", 100.0 * r.roofline),
        (true, true) => format!("suspect {:.0}", 100.0 * r.roofline),
    }
}

/// `ok`, `ok, noisy`, `FAIL: <the check and what it found>`, or the reason a row has no numbers.
/// A failed row has no time (its time columns read `-`); a report from before every failure was
/// refused before timing may hold one, `FAIL (2.1× budget)`.
pub fn check_text(r: &Record) -> String {
    let mut text = match (r.status, &r.note) {
        (Status::Ok, _) => "ok".to_string(),
        (Status::Fail, Some(note)) if !r.timed() => format!("FAIL: {note}"),
        (Status::Fail, _) => format!("FAIL ({:.1}× budget)", r.budget_ratio),
        (Status::Skipped | Status::Error, note) => note.clone().unwrap_or_default(),
    };
    if r.timed() && r.noisy {
        text += ", noisy";
    }
    if let (true, Status::Ok, Some(note)) = (r.timed(), r.status, &r.note) {
        text += &format!(" ({note})");
    }
    text
}

/// The cells of one record, in [`COLUMNS`] order.
pub fn cells(r: &Record) -> Vec<String> {
    vec![
        r.op.clone(),
        r.backend.clone(),
        r.variant.clone(),
        r.threads.map_or_else(|| "-".into(), |t| t.to_string()),
        shape_text(r),
        format_time(r.median_s),
        if r.timed() { format!("{}–{}", format_time(r.p10_s), format_time(r.p90_s)) } else { "-".into() },
        r.clock.clone().unwrap_or_else(|| "-".into()),
        format_time(r.host_median_s),
        number(r.gflops, 2),
        number(r.gbps, 2),
        r.ceiling.as_ref().map_or_else(|| "-".into(), |c| c.level.clone()),
        roof_text(r),
        r.of_vendor.map_or_else(|| "-".into(), |f| format!("{:.1}", 100.0 * f)),
        if r.max_rel_err.is_finite() { format!("{:.1e}", r.max_rel_err) } else { "-".into() },
        check_text(r),
    ]
}

/// A table in the terminal's style: a rule under the header, numbers right-aligned, wrapped to
/// the terminal's width when there is one.
pub fn terminal_table(header: Vec<String>, right: &[bool], rows: Vec<Vec<String>>) -> String {
    use comfy_table::{CellAlignment, ContentArrangement, Table, TableComponent, presets};
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_style(TableComponent::HeaderLines, '─').set_style(TableComponent::MiddleHeaderIntersections, ' ');
    table.set_header(header);
    for row in rows {
        table.add_row(row);
    }
    for (i, &r) in right.iter().enumerate() {
        if let (true, Some(column)) = (r, table.column_mut(i)) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.to_string()
}

/// The whole table, aligned for a terminal.
pub fn render(records: &[Record]) -> String {
    let header = COLUMNS.iter().map(|(h, _)| h.to_string()).collect();
    let right: Vec<bool> = COLUMNS.iter().map(|(_, r)| *r).collect();
    terminal_table(header, &right, records.iter().map(cells).collect())
}

/// One row as it finishes, for a live listing: `matmul cpu/threaded 2t 1024x1024x1024  12.3 ms
/// 174.6 GFLOP/s  L3 74.6%  ok`.
pub fn one_line(r: &Record) -> String {
    let threads = r.threads.map_or_else(String::new, |t| format!(" {t}t"));
    if !r.timed() {
        return format!("{} {}/{}{threads} {}  {}", r.op, r.backend, r.variant, shape_text(r), check_text(r));
    }
    let level = r.ceiling.as_ref().map_or_else(String::new, |c| format!("  {} {}%", c.level, roof_text(r)));
    format!(
        "{} {}/{}{threads} {}  {}  {} GFLOP/s  {} GB/s{level}  {}",
        r.op,
        r.backend,
        r.variant,
        shape_text(r),
        format_time(r.median_s),
        number(r.gflops, 2),
        number(r.gbps, 2),
        check_text(r)
    )
}

/// Variants as columns, one row per op, backend and shape; each cell the GFLOP/s (or, for an op
/// without flops, the median time).
pub fn pivot(records: &[Record]) -> String {
    let mut variants: Vec<String> = Vec::new();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in records {
        if !variants.contains(&r.variant) {
            variants.push(r.variant.clone());
        }
        let key = (r.op.clone(), r.backend.clone(), shape_text(r));
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let rows = keys
        .iter()
        .map(|(op, backend, shape)| {
            let mut row = vec![op.clone(), backend.clone(), shape.clone()];
            row.extend(variants.iter().map(|v| {
                let found = records
                    .iter()
                    .find(|r| &r.op == op && &r.backend == backend && &shape_text(r) == shape && &r.variant == v);
                match found {
                    Some(r) if r.timed() && r.flops > 0.0 => number(r.gflops, 1),
                    Some(r) if r.timed() => format_time(r.median_s),
                    Some(r) if r.status == Status::Fail => "FAIL".into(),
                    Some(r) if r.status == Status::Error => "error".into(),
                    Some(_) => "skipped".into(),
                    None => String::new(),
                }
            }));
            row
        })
        .collect();
    let mut header = vec!["op".to_string(), "backend".into(), "shape".into()];
    header.extend(variants.iter().cloned());
    let right: Vec<bool> = (0..header.len()).map(|i| i >= 3).collect();
    format!("{}\n(cells: GFLOP/s; time for ops without flops)", terminal_table(header, &right, rows))
}

/// The same table as GitHub Markdown.
pub fn markdown(records: &[Record]) -> String {
    let escape = |c: &str| c.replace('|', "\\|");
    let mut out = format!("| {} |\n", COLUMNS.map(|(h, _)| h).join(" | "));
    out += &format!("|{}\n", COLUMNS.map(|(_, right)| if right { "---:|" } else { "---|" }).concat());
    for r in records {
        out += &format!("| {} |\n", cells(r).iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | "));
    }
    out
}

/// The rows as CSV, one line per record with numbers in SI units (seconds, GFLOP/s, GB/s,
/// fractions); the raw samples stay in the JSON.
pub fn csv(records: &[Record]) -> String {
    const HEADER: &str = "op,backend,device,variant,baseline,shape,transpose,threads,mode,status,clock,\
launches_per_sample,n,median_s,p10_s,p90_s,host_median_s,noisy,flops,bytes,gflops,gbps,ceiling_level,\
ceiling_gflops,ceiling_gbps,roofline,suspect,of_vendor,vendor,max_rel_err,budget_ratio,ok,note";
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
    };
    let num = |v: f64| if v.is_finite() { format!("{v}") } else { String::new() };
    let opt = |v: Option<f64>| v.map_or_else(String::new, num);
    let mut out = format!("{HEADER}\n");
    for r in records {
        let shape = dims_text(&r.shape);
        let fields = [
            quote(&r.op),
            quote(&r.backend),
            quote(&r.device),
            quote(&r.variant),
            r.baseline.to_string(),
            shape,
            r.transpose.clone().unwrap_or_default(),
            r.threads.map_or_else(String::new, |t| t.to_string()),
            r.mode.clone(),
            format!("{:?}", r.status).to_lowercase(),
            r.clock.clone().unwrap_or_default(),
            r.launches_per_sample.to_string(),
            r.n.to_string(),
            num(r.median_s),
            num(r.p10_s),
            num(r.p90_s),
            num(r.host_median_s),
            r.noisy.to_string(),
            num(r.flops),
            num(r.bytes),
            num(r.gflops),
            num(r.gbps),
            r.ceiling.as_ref().map_or_else(String::new, |c| c.level.clone()),
            opt(r.ceiling.as_ref().map(|c| c.gflops)),
            opt(r.ceiling.as_ref().map(|c| c.gbps)),
            num(r.roofline),
            r.suspect.to_string(),
            opt(r.of_vendor),
            r.vendor.clone().unwrap_or_default(),
            num(r.max_rel_err),
            num(r.budget_ratio),
            r.ok.to_string(),
            quote(r.note.as_deref().unwrap_or("")),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

/// One line about a baseline: `openblas: OpenBLAS 0.3.21, core SkylakeX, 2 threads (note)`.
pub fn describe_baseline(b: &Baseline) -> String {
    let threads = b.threads.map_or_else(String::new, |t| format!(", {t} thread{}", if t == 1 { "" } else { "s" }));
    let mut s = format!("{}: {}, {}{threads}", b.variant, b.library, b.kernel);
    if let Some(note) = &b.note {
        s += &format!(" — {note}");
    }
    s
}

/// What the reader needs to trust the table: the machine, the ceilings, the baselines, and
/// what "% roof" and "% vendor" are against.
pub fn footer(report: &Report) -> String {
    let m = &report.machine;
    let dirty = if m.git_dirty { " (uncommitted changes)" } else { "" };
    let mut out = format!("{} · {} cores · commit {}{dirty} · {}\n", m.cpu, m.logical_cores, m.git_commit, m.rustc);
    for d in &report.devices {
        if let Some(r) = &d.roofline {
            out += &format!("ceilings {}: {}\n", d.label, r.summary());
        }
        if let Some(what) = &d.software {
            out += &format!("{}: {what}; its rows are checked, their times are no measure of a GPU\n", d.label);
        }
    }
    out += "% roof: against the FMA peak and the bandwidth of the memory level (column `level`) that holds the \
            row's working set, for the row's threads; above 100% is marked suspect\n";
    let used: Vec<&Baseline> = report
        .baselines
        .iter()
        .filter(|b| report.records.iter().any(|r| r.variant == b.variant && r.timed()))
        .collect();
    for b in &used {
        out += &format!("baseline {}\n", describe_baseline(b));
    }
    if report.records.iter().any(|r| r.of_vendor.is_some()) {
        out += "% vendor: against the fastest baseline of the same shape, layout, threads and mode in this run";
        let mut named: Vec<String> = report.records.iter().filter_map(|r| r.vendor.clone()).collect();
        named.sort();
        named.dedup();
        out += &format!(" (here: {})\n", named.join(", "));
    } else if !used.is_empty() {
        out += "% vendor: no baseline ran at a row's shape, threads and mode, so no row has a ratio\n";
    }
    if report.settings.cold {
        out += "cold: every launch ran after the caches were evicted, so rows are held against main memory\n";
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_units() {
        assert_eq!(format_time(8.12e-7), "812 ns");
        assert_eq!(format_time(3.414e-6), "3.41 µs");
        assert_eq!(format_time(0.012), "12.0 ms");
        assert_eq!(format_time(1.52), "1.52 s");
        assert_eq!(format_time(f64::NAN), "-");
    }
}
