//! `kernelab plot REPORT.json --out FILE.svg [--kind roofline|sweep]`: a benchmark report as SVG,
//! drawn with plotters.
//!
//! - `roofline`: GFLOP/s against arithmetic intensity (FLOP/byte), log-log; every measured ceiling
//!   of every device drawn and labelled (the FMA peak, and each memory level's bandwidth × the
//!   intensity), each timed row a point, coloured by series (variant, layout, precision, threads) and labelled
//!   by shape.
//! - `sweep`: GFLOP/s (or the time, for an op without flops) against the one quantity the shapes
//!   vary in (a dimension, or `n` of `n×n×n`), one line per backend, variant, layout, precision and
//!   thread count, the baselines dashed (see [`sweep`]).

use std::path::{Path, PathBuf};

use clap::Args;
use plotters::prelude::*;

use kernelab_bench::record::{Record, Report};
use kernelab_bench::table::shape_text;
use kernelab_tensor::{Error, Precision, Result};

mod sweep;
use sweep::sweep;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab bench --op matmul --shape 64..2048 --json sweep.json
  kernelab plot sweep.json --kind sweep --out sweep.svg
  kernelab plot sweep.json --kind roofline --out roofline.svg")]
pub struct PlotArgs {
    /// A report from `kernelab bench --json`.
    report: PathBuf,
    /// The SVG file to write (`-`: stdout).
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

/// The most bytes a font file may have (the largest common TrueType collections are ~20 MB).
const MAX_FONT_BYTES: u64 = 64 << 20;

/// Registers a font as plotters' `sans-serif` (once per process): `KERNELAB_FONT` when it is set
/// (it must be a regular file; no other font is tried in its place), else the first of [`FONTS`].
fn load_font() -> Result<()> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let (name, bytes) = match std::env::var_os("KERNELAB_FONT") {
                Some(chosen) => {
                    let name = format!("KERNELAB_FONT={}", Path::new(&chosen).display());
                    let bytes = read_font(Path::new(&chosen)).map_err(|why| format!("{name}: {why}"))?;
                    (name, bytes)
                }
                None => FONTS
                    .iter()
                    .find_map(|p| read_font(Path::new(p)).ok().map(|b| (p.to_string(), b)))
                    .ok_or_else(|| {
                        format!(
                            "no TrueType font found to lay out the labels ({}); install fonts-dejavu-core or set \
                             KERNELAB_FONT",
                            FONTS.join(", ")
                        )
                    })?,
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{name}: the file could not be read as a TrueType font"))
        })
        .clone()
        .map_err(plot_error)
}

/// A font file's bytes: a regular file of at most [`MAX_FONT_BYTES`], never a directory, a
/// device (`/dev/zero` would be read forever) or a FIFO (which would block).
fn read_font(path: &Path) -> std::result::Result<Vec<u8>, String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    let what = match () {
        () if kind.is_file() => None,
        () if kind.is_dir() => Some("a directory"),
        () if kind.is_char_device() || kind.is_block_device() => Some("a device"),
        () if kind.is_fifo() => Some("a FIFO"),
        () => Some("not a file"),
    };
    if let Some(what) = what {
        return Err(format!("{what}, not a regular file: point it at a TrueType font file (.ttf)"));
    }
    if meta.len() > MAX_FONT_BYTES {
        return Err(format!("{} bytes; a font file has at most {MAX_FONT_BYTES}", meta.len()));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The kinds of plot a report can make, for the message when the asked one cannot be drawn.
fn kinds(report: &Report) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if report.records.iter().any(|r| r.timed() && r.flops > 0.0) && report.devices.iter().any(|d| d.roofline.is_some())
    {
        kinds.push("roofline");
    }
    if sweep::can_sweep(report) {
        kinds.push("sweep");
    }
    kinds
}

pub fn run(a: &PlotArgs) -> Result<()> {
    let font = std::env::var_os("KERNELAB_FONT").map(PathBuf::from);
    let mut paths = kernelab_tensor::files::Paths::new();
    paths.input("REPORT", Some(&a.report)).input("KERNELAB_FONT", font.as_deref());
    paths.output("--out", Some(&a.out), kernelab_tensor::files::Kind::Replaced).check()?;
    let report = Report::read(&a.report)?;
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
    crate::bench::announce(&a.out);
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

/// A series: backend, variant, layout (when not NN), precision (when not f32) and threads, so
/// that the NN and NT rows of one variant, or its bf16 and f32 rows, are two lines, not one
/// zig-zag: `cpu/blocked NT bf16→f32, 1t`.
fn series_key(r: &Record) -> String {
    let threads = r.threads.map_or_else(String::new, |t| format!(", {t}t"));
    let layout = r.transpose.as_deref().filter(|t| *t != "NN").map_or_else(String::new, |t| format!(" {t}"));
    let precision = Some(r.precision).filter(|p| *p != Precision::F32).map_or_else(String::new, |p| format!(" {p}"));
    format!("{}/{}{layout}{precision}{threads}", r.backend, r.variant)
}

/// A row's throughput must be a positive number to sit on a log axis; an error names the row.
fn positive(r: &Record, what: &str, value: f64) -> std::result::Result<f64, String> {
    if value.is_finite() && value > 0.0 {
        return Ok(value);
    }
    Err(format!(
        "the row {}/{} {} {} has {what} {value}, which a log axis cannot show (the report is damaged or edited)",
        r.backend,
        r.variant,
        r.op,
        shape_text(r)
    ))
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
    for r in &rows {
        positive(r, "GFLOP/s", r.gflops)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use kernelab_bench::record::Status;
    use kernelab_tensor::Dtype;

    fn row(variant: &str, precision: Precision, transpose: &str) -> Record {
        Record {
            backend: "cpu".into(),
            variant: variant.into(),
            precision,
            transpose: Some(transpose.into()),
            threads: Some(1),
            ..Record::blank(Status::Ok, None)
        }
    }

    #[test]
    fn rows_of_one_variant_in_two_precisions_are_two_series_named_by_precision() {
        let bf16 = Precision::new(Dtype::Bf16, Dtype::F32);
        let keys = [row("blocked", Precision::F32, "NN"), row("blocked", bf16, "NN"), row("blocked", bf16, "NT")]
            .map(|r| series_key(&r));
        assert_eq!(keys, ["cpu/blocked, 1t", "cpu/blocked bf16→f32, 1t", "cpu/blocked NT bf16→f32, 1t"]);
    }
}
