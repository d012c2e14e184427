//! The sweep plot: GFLOP/s (or the time, for an op without flops) of one op against the one
//! quantity its shapes vary in, a line per series ([`super::series_key`]), the baselines dashed.

use plotters::prelude::*;

use kernelab_bench::record::{Record, Report};
use kernelab_bench::table::shape_text;

use super::{Area, Entry, Mark, padded, positive, series_key};

/// The op a sweep draws: the asked one, or the one with the most distinct shapes (at least two).
pub(super) fn sweep_op(report: &Report, asked: Option<&str>) -> Option<String> {
    let mut ops: Vec<(String, usize)> = Vec::new();
    for r in report.records.iter().filter(|r| r.timed()) {
        let shapes = report
            .records
            .iter()
            .filter(|o| o.timed() && o.op == r.op)
            .map(shape_text)
            .collect::<std::collections::BTreeSet<_>>();
        if !ops.iter().any(|(o, _)| o == &r.op) {
            ops.push((r.op.clone(), shapes.len()));
        }
    }
    ops.into_iter().filter(|(op, n)| *n >= 2 && asked.is_none_or(|a| a == op)).max_by_key(|(_, n)| *n).map(|(op, _)| op)
}

/// The one quantity on a sweep's x axis, read from the shapes of its rows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Axis {
    /// The one dimension that varies (the others are the same in every row).
    Dim(usize),
    /// `n` of matmul shapes that are all cubes `n×n×n`.
    Cube,
}

impl Axis {
    fn x(self, r: &Record) -> f64 {
        match self {
            Axis::Dim(i) => r.shape[i] as f64,
            Axis::Cube => r.shape[0] as f64,
        }
    }
}

/// The names of a shape's `rank` dimensions: M, N, K for a matmul, rows and columns for a matrix,
/// elements for a vector, and `dim 0`, `dim 1`, … for any other rank (an inference report's
/// shapes, say), so that every index into them lies inside.
fn dim_names(rank: usize) -> Vec<String> {
    match rank {
        3 => ["M", "N", "K"].map(String::from).to_vec(),
        2 => ["rows", "columns"].map(String::from).to_vec(),
        1 => vec!["elements".to_string()],
        _ => (0..rank).map(|i| format!("dim {i}")).collect(),
    }
}

/// The x axis of a sweep over `rows` (one op) and its description; an error when the shapes do
/// not vary along one quantity (two dimensions each on their own, say), which no one axis shows.
fn axis(op: &str, rows: &[&Record]) -> std::result::Result<(Axis, String), String> {
    let first = &rows[0].shape;
    let names = dim_names(first.len());
    if rows.iter().any(|r| r.shape.len() != first.len()) {
        return Err(format!("the {op} rows have shapes of different ranks"));
    }
    let varying: Vec<usize> = (0..first.len()).filter(|&i| rows.iter().any(|r| r.shape[i] != first[i])).collect();
    let cubes = first.len() == 3 && rows.iter().all(|r| r.shape[0] == r.shape[1] && r.shape[1] == r.shape[2]);
    match varying.as_slice() {
        [] => Err(format!(
            "every {op} row has the size {}, in different layouts: no size varies to sweep",
            kernelab_bench::table::dims_text(first)
        )),
        [i] => {
            let fixed: Vec<String> =
                (0..first.len()).filter(|j| j != i).map(|j| format!("{} = {}", names[j], first[j])).collect();
            let rest = if fixed.is_empty() { String::new() } else { format!(" ({})", fixed.join(", ")) };
            Ok((Axis::Dim(*i), format!("{}{rest}", names[*i])))
        }
        _ if cubes => Ok((Axis::Cube, "n (matmul n×n×n)".into())),
        many => {
            let mut shapes: Vec<String> = Vec::new();
            for text in rows.iter().map(|r| shape_text(r)) {
                if !shapes.contains(&text) {
                    shapes.push(text);
                }
            }
            let more = if shapes.len() > 5 { ", …" } else { "" };
            Err(format!(
                "the {op} rows vary in {} each on its own ({}{more}), and a sweep's x axis is one quantity: plot \
                 a report whose shapes vary in one dimension, or in all three together as n×n×n",
                many.iter().map(|&i| names[i].as_str()).collect::<Vec<_>>().join(", "),
                shapes[..shapes.len().min(5)].join(", ")
            ))
        }
    }
}

/// Whether the report makes a sweep plot: an op with timed rows at two shapes or more, whose
/// shapes vary along one quantity.
pub(super) fn can_sweep(report: &Report) -> bool {
    sweep_op(report, None).is_some_and(|op| {
        let rows: Vec<&Record> = report.records.iter().filter(|r| r.timed() && r.op == op).collect();
        axis(&op, &rows).is_ok()
    })
}

pub(super) fn sweep(root: &Area, report: &Report, asked: Option<&str>) -> std::result::Result<Vec<Entry>, String> {
    let op = sweep_op(report, asked).ok_or_else(|| match asked {
        Some(op) => format!("no sweep of {op}: it needs timed rows at two shapes or more"),
        None => "no op has timed rows at two shapes or more".to_string(),
    })?;
    let rows: Vec<&Record> = report.records.iter().filter(|r| r.timed() && r.op == op).collect();
    let (axis, x_desc) = axis(&op, &rows)?;
    let by_flops = rows.iter().all(|r| r.flops > 0.0);
    let value = |r: &Record| if by_flops { r.gflops } else { r.median_s };
    for r in &rows {
        positive(r, if by_flops { "GFLOP/s" } else { "a median time of" }, value(r))?;
    }
    let (x0, x1) = padded(rows.iter().map(|r| axis.x(r)), 1.25);
    let (y0, y1) = padded(rows.iter().map(|r| value(r)), 1.6);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{op}: {} against size — {}", if by_flops { "GFLOP/s" } else { "time" }, report.machine.cpu),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .x_labels(8)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(if by_flops { "GFLOP/s (median)" } else { "seconds per launch (median)" })
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut keys: Vec<(String, bool)> = rows.iter().map(|r| (series_key(r), r.baseline)).collect();
    keys.sort();
    keys.dedup();
    let mut entries = Vec::new();
    for (i, (key, baseline)) in keys.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> =
            rows.iter().filter(|r| &series_key(r) == key).map(|r| (axis.x(r), value(r))).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let name = if *baseline { format!("{key} (baseline)") } else { key.clone() };
        if *baseline {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
        } else {
            chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2))).map_err(|e| e.to_string())?;
        }
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| e.to_string())?;
        entries.push(Entry { name, color, mark: if *baseline { Mark::Dashed } else { Mark::Line } });
    }
    Ok(entries)
}
