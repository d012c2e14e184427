//! The benchmark table as a person reads it: aligned columns, times with units.

use crate::record::Record;

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

/// The header row, then one row per record.
pub const HEADER: [&str; 14] = [
    "op",
    "backend",
    "variant",
    "shape",
    "median",
    "p10–p90",
    "clock",
    "host median",
    "GFLOP/s",
    "GB/s",
    "% roof",
    "% vendor",
    "max rel err",
    "check",
];

/// The cells of one record.
pub fn cells(r: &Record) -> [String; 14] {
    let check = match (&r.note, r.ok) {
        (_, true) => "ok".to_string(),
        (Some(note), false) if r.samples == 0 => note.clone(),
        _ => format!("FAIL ({:.1}× budget)", r.budget_ratio),
    };
    [
        r.op.clone(),
        r.backend.clone(),
        r.variant.clone(),
        {
            let shape = r.shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
            match r.transpose.as_deref() {
                Some(t) if t != "NN" => format!("{shape}:{t}"),
                _ => shape,
            }
        },
        format_time(r.median_s),
        if r.samples == 0 { "-".into() } else { format!("{}–{}", format_time(r.p10_s), format_time(r.p90_s)) },
        r.clock.clone().unwrap_or_else(|| "-".into()),
        format_time(r.host_median_s),
        number(r.gflops, 2),
        number(r.gbps, 2),
        number(100.0 * r.roofline, 1),
        r.of_vendor.map_or_else(|| "-".into(), |f| format!("{:.1}", 100.0 * f)),
        if r.max_rel_err.is_finite() { format!("{:.1e}", r.max_rel_err) } else { "-".into() },
        check,
    ]
}

/// Column widths that fit the header and every row.
pub fn widths(rows: &[[String; 14]]) -> [usize; 14] {
    let mut w = HEADER.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in w.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    w
}

/// One line of the table: text columns left-aligned, numbers right-aligned.
pub fn line(cells: &[String; 14], widths: &[usize; 14]) -> String {
    let mut out = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        let pad = w.saturating_sub(cell.chars().count());
        let right = (4..13).contains(&i) && i != 6;
        if right {
            out.push_str(&" ".repeat(pad));
            out.push_str(cell);
        } else {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad));
            }
        }
        if i + 1 < cells.len() {
            out.push_str("  ");
        }
    }
    out
}

/// The whole table.
pub fn render(records: &[Record]) -> String {
    let rows: Vec<[String; 14]> = records.iter().map(cells).collect();
    let widths = widths(&rows);
    let mut out = line(&HEADER.map(String::from), &widths);
    out.push('\n');
    out.push_str(&widths.iter().map(|&w| "─".repeat(w)).collect::<Vec<_>>().join("  "));
    for row in &rows {
        out.push('\n');
        out.push_str(&line(row, &widths));
    }
    out
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
