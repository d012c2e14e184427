//! `kernelab plot REPORT.json --out FILE.svg [--kind roofline|sweep]`: a benchmark report as SVG,
//! drawn with plotters.
//!
//! - `roofline`: GFLOP/s against arithmetic intensity (FLOP/byte), log-log; every measured ceiling
//!   of every device drawn and labelled (the FMA peak, and each memory level's bandwidth × the
//!   intensity), each timed row a point, coloured by variant and labelled by shape.
//! - `sweep`: GFLOP/s (or the time, for an op without flops) against the size, one line per
//!   backend and variant, the baselines dashed.

use std::path::PathBuf;

use clap::Args;
use plotters::prelude::*;

use kernelab_bench::record::{Record, Report};
use kernelab_bench::table::shape_text;
use kernelab_tensor::{Error, Result};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab bench --op matmul --shape 64..2048 --json sweep.json
  kernelab plot sweep.json --kind sweep --out sweep.svg
  kernelab plot sweep.json --kind roofline --out roofline.svg")]
pub struct PlotArgs {
    /// A report from `kernelab bench --json`.
    report: PathBuf,
    /// The SVG file to write.
    #[arg(long)]
    out: PathBuf,
    /// What to draw.
    #[arg(long, value_parser = ["roofline", "sweep"], default_value = "roofline")]
    kind: String,
    /// The op to draw (a sweep draws one op; default: the op with the most shapes).
    #[arg(long)]
    op: Option<String>,
}

const SIZE: (u32, u32) = (1100, 700);

/// Where TrueType fonts usually are; plotters needs one to lay out its labels.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument { op: "plot", why: e.to_string() }
}

/// Registers a system font as plotters' `sans-serif` (once per process).
fn load_font() -> Result<()> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let chosen = std::env::var("KERNELAB_FONT").ok();
            let candidates = chosen.iter().map(String::as_str).chain(FONTS);
            let bytes = candidates.filter_map(|p| std::fs::read(p).ok()).next().ok_or_else(|| {
                format!(
                    "no TrueType font found to lay out the labels ({}); install fonts-dejavu-core or set KERNELAB_FONT",
                    FONTS.join(", ")
                )
            })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the font file could not be read as TrueType".to_string())
        })
        .clone()
        .map_err(plot_error)
}

/// The kinds of plot a report can make, for the message when the asked one cannot be drawn.
fn kinds(report: &Report) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if report.records.iter().any(|r| r.timed() && r.flops > 0.0) && report.devices.iter().any(|d| d.roofline.is_some())
    {
        kinds.push("roofline");
    }
    if sweep_op(report, None).is_some() {
        kinds.push("sweep");
    }
    kinds
}

pub fn run(a: &PlotArgs) -> Result<()> {
    let report = Report::read(&a.report)?;
    kernelab_tensor::files::check_writable(&a.out)?;
    load_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (chart, side) = root.split_horizontally(SIZE.0 - 280);
        let drawn = match a.kind.as_str() {
            "sweep" => sweep(&chart, &report, a.op.as_deref()),
            _ => roofline(&chart, &report),
        }
        .and_then(|entries| legend(&side, &entries));
        if let Err(why) = drawn {
            let has = kinds(&report);
            let has = if has.is_empty() { "none".to_string() } else { has.join(", ") };
            return Err(Error::InvalidArgument {
                op: "plot",
                why: format!("{}: {why}; the kinds this report can make: {has}", a.report.display()),
            });
        }
        root.present().map_err(plot_error)?;
    }
    kernelab_tensor::files::write(&a.out, svg.as_bytes())?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One entry of the legend: a series' name, colour, and whether it is drawn as a point or a line
/// (dashed for a baseline).
struct Entry {
    name: String,
    color: RGBAColor,
    mark: Mark,
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Point,
    Line,
    Dashed,
}

/// The legend, in its own column right of the chart, so that it never covers a point.
fn legend(area: &Area, entries: &[Entry]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    area.draw(&Text::new("series", (10, 70), ("sans-serif", 15).into_font())).map_err(e)?;
    for (i, entry) in entries.iter().enumerate() {
        let y = 100 + 22 * i as i32;
        let style = entry.color.stroke_width(2);
        match entry.mark {
            Mark::Point => area.draw(&Circle::new((22, y), 5, entry.color.filled())).map_err(e)?,
            Mark::Line => area.draw(&PathElement::new(vec![(10, y), (34, y)], style)).map_err(e)?,
            Mark::Dashed => {
                area.draw(&PathElement::new(vec![(10, y), (18, y)], style)).map_err(e)?;
                area.draw(&PathElement::new(vec![(26, y), (34, y)], style)).map_err(e)?;
            }
        }
        area.draw(&Text::new(entry.name.clone(), (42, y - 7), ("sans-serif", 13).into_font())).map_err(e)?;
    }
    Ok(())
}

/// Decades that hold every value of `v`, for a log axis.
fn decades(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        v.filter(|x| x.is_finite() && *x > 0.0).fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(x), h.max(x)));
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()).max(10f64.powf(lo.log10().floor() + 1.0)))
}

/// The smallest and largest of `v`, divided and multiplied by `pad`, for a tight log axis.
fn padded(v: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) =
        v.filter(|x| x.is_finite() && *x > 0.0).fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(x), h.max(x)));
    if !lo.is_finite() { (0.1, 10.0) } else { (lo / pad, hi * pad) }
}

fn series_key(r: &Record) -> String {
    let threads = r.threads.map_or_else(String::new, |t| format!(", {t}t"));
    format!("{}/{}{threads}", r.backend, r.variant)
}

fn roofline(root: &Area, report: &Report) -> std::result::Result<Vec<Entry>, String> {
    let roofs: Vec<(&str, &kernelab_tensor::Roofline)> =
        report.devices.iter().filter_map(|d| d.roofline.as_ref().map(|r| (d.label.as_str(), r))).collect();
    // Only rows of devices with measured ceilings: a point means something against its own roof.
    let measured = |r: &Record| {
        report.devices.iter().any(|d| d.roofline.is_some() && d.backend == r.backend && d.name == r.device)
    };
    let rows: Vec<&Record> =
        report.records.iter().filter(|r| r.timed() && r.flops > 0.0 && r.bytes > 0.0 && measured(r)).collect();
    if rows.is_empty() || roofs.is_empty() {
        return Err("no timed row with flops, or no device with measured ceilings".into());
    }
    let intensity = |r: &Record| r.flops / r.bytes;
    // From 0.005 FLOP/byte: the empty decades at the left hold the legend.
    let (x0, x1) = decades(rows.iter().map(|r| intensity(r)).chain([0.005, 200.0]));
    let peaks = roofs.iter().map(|(_, r)| r.peak_gflops);
    let (y0, y1) = decades(rows.iter().map(|r| r.gflops).chain(peaks));
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Roofline — {} ({} cores)", report.machine.cpu, report.machine.logical_cores),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1 * 1.5).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (FLOP/byte, least traffic)")
        .y_desc("GFLOP/s")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    for (label, roof) in &roofs {
        let grey = RGBColor(90, 90, 90);
        chart
            .draw_series(LineSeries::new([(x0, roof.peak_gflops), (x1, roof.peak_gflops)], grey.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series([Text::new(
                format!("{label} FMA peak {:.0} GFLOP/s ({} threads)", roof.peak_gflops, roof.threads),
                (x0 * 1.15, roof.peak_gflops * 1.3),
                ("sans-serif", 13).into_font().color(&grey),
            )])
            .map_err(|e| e.to_string())?;
        if roof.threads > 1 {
            let one = roof.peak_gflops_one_thread;
            chart
                .draw_series(DashedLineSeries::new([(x0, one), (x1, one)], 6, 4, grey.stroke_width(1)))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series([Text::new(
                    format!("FMA peak, 1 thread {one:.0} GFLOP/s"),
                    (x0 * 1.15, one * 0.93),
                    ("sans-serif", 12).into_font().color(&grey),
                )])
                .map_err(|e| e.to_string())?;
        }
        for (i, level) in roof.levels.iter().enumerate() {
            // bandwidth × intensity up to the ridge, where it meets the peak.
            let ridge = roof.peak_gflops / level.gbps_all;
            let start = x0.max(y0 / level.gbps_all);
            let line = [
                (start, level.gbps_all * start),
                (ridge.min(x1), (level.gbps_all * ridge.min(x1)).min(roof.peak_gflops)),
            ];
            chart.draw_series(DashedLineSeries::new(line, 6, 4, grey.stroke_width(1))).map_err(|e| e.to_string())?;
            // The label sits on its line, each level further right than the last, so that the
            // labels of neighbouring levels (nearly parallel lines) never meet.
            let at = x0 * 1.5 * 3f64.powi(i as i32);
            chart
                .draw_series([Text::new(
                    format!("{} {:.0} GB/s", level.name, level.gbps_all),
                    (at * 1.15, level.gbps_all * at),
                    ("sans-serif", 12).into_font().color(&grey),
                )])
                .map_err(|e| e.to_string())?;
        }
    }
    let mut keys: Vec<String> = rows.iter().map(|r| series_key(r)).collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    let mut entries = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mine: Vec<&&Record> = rows.iter().filter(|r| &series_key(r) == key).collect();
        chart
            .draw_series(mine.iter().map(|r| Circle::new((intensity(r), r.gflops), 5, color.filled())))
            .map_err(|e| e.to_string())?;
        entries.push(Entry { name: key.clone(), color, mark: Mark::Point });
    }
    // One label per shape, beside its fastest point (the variants of a shape share an intensity).
    let mut shapes: Vec<(String, f64, f64)> = Vec::new();
    for r in &rows {
        let shape = match r.shape.as_slice() {
            [m, n, k] if m == n && n == k && r.transpose.as_deref() == Some("NN") => format!("{m}³"),
            _ => shape_text(r),
        };
        let (name, x) = (format!("{} {shape}", r.op), intensity(r));
        match shapes.iter_mut().find(|(n, sx, _)| n == &name && (sx / x - 1.0).abs() < 1e-9) {
            Some(s) => s.2 = s.2.max(r.gflops),
            None => shapes.push((name, x, r.gflops)),
        }
    }
    // Labels start right of their point; one that would run into a label already placed (its
    // point less than a factor 5 to the left, at a similar height) moves below its point instead.
    shapes.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut placed: Vec<(String, f64, f64)> = Vec::new();
    for (name, x, y) in &shapes {
        let mut at = *y * 1.15;
        for drop in [0.72, 0.5, 0.35] {
            let crowded = placed.iter().any(|(_, px, py)| x / (px / 1.1) < 5.0 && (at / py).ln().abs() < 0.35);
            if !crowded {
                break;
            }
            at = *y * drop;
        }
        placed.push((name.clone(), *x * 1.1, at));
    }
    chart
        .draw_series(
            placed
                .iter()
                .map(|(name, x, y)| Text::new(name.clone(), (*x, *y), ("sans-serif", 12).into_font().color(&BLACK))),
        )
        .map_err(|e| e.to_string())?;
    Ok(entries)
}

/// The op a sweep draws: the asked one, or the one with the most distinct shapes (at least two).
fn sweep_op(report: &Report, asked: Option<&str>) -> Option<String> {
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

/// The size a sweep row sits at: `n` of a square matmul or an elementwise op, else the product of
/// its dimensions.
fn size_of(r: &Record) -> f64 {
    match r.shape.as_slice() {
        [n] => *n as f64,
        [m, n, k] if m == n && n == k => *m as f64,
        dims => dims.iter().product::<usize>() as f64,
    }
}

fn sweep(root: &Area, report: &Report, asked: Option<&str>) -> std::result::Result<Vec<Entry>, String> {
    let op = sweep_op(report, asked).ok_or_else(|| match asked {
        Some(op) => format!("no sweep of {op}: it needs timed rows at two shapes or more"),
        None => "no op has timed rows at two shapes or more".to_string(),
    })?;
    let rows: Vec<&Record> = report.records.iter().filter(|r| r.timed() && r.op == op).collect();
    let by_flops = rows.iter().all(|r| r.flops > 0.0);
    let value = |r: &Record| if by_flops { r.gflops } else { r.median_s };
    let (x0, x1) = padded(rows.iter().map(|r| size_of(r)), 1.25);
    let (y0, y1) = padded(rows.iter().map(|r| value(r)), 1.6);
    let squares = rows.iter().all(|r| r.shape.len() != 3 || (r.shape[0] == r.shape[1] && r.shape[1] == r.shape[2]));
    let x_desc = match (rows[0].shape.len(), squares) {
        (3, true) => "n (matmul n×n×n)",
        (1, _) => "elements",
        _ => "elements of the shape (product of its dimensions)",
    };
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
        .x_desc(x_desc)
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
            rows.iter().filter(|r| &series_key(r) == key).map(|r| (size_of(r), value(r))).collect();
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
