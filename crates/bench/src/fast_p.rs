//! fast_p, KernelBench's summary of a kernel over a set of shapes: the fraction of the shapes on
//! which it is correct *and* at least `p` times as fast as what it would replace.
//!
//! Here a variant (built-in, baseline or loaded from a file) meets `p` at one shape of a run when
//! its row there passed every check (status `ok`, timed) and
//!
//! ```text
//! t_default / t ≥ p   and   t_baseline / t ≥ p
//! ```
//!
//! with `t` its median, `t_default` the median of its backend's default variant at the same work
//! (device, op, shape, layout, mode) and `t_baseline` that of the fastest checked, not degraded
//! baseline of the same work, whatever its threads (the best the machine has). A shape where the
//! default variant has no checked time cannot be met; a shape where no baseline ran asks only the
//! first. `fast_p = met / shapes`, with the shapes those the run benchmarked the variant's op at
//! on its device, so a missing or failing row counts against it.

use serde::{Deserialize, Serialize};

use kernelab_tensor::{Device, Op};

use crate::record::{Record, Status};

/// The `p` of a summary unless told otherwise.
pub const DEFAULT_P: [f64; 3] = [1.0, 1.5, 2.0];

/// What rows are held against: each device's default variant of each op, and the baselines not
/// to compare with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Against {
    /// `(backend, device, op, variant)`: the default variant, as rows name them.
    pub defaults: Vec<(String, String, String, String)>,
    /// Baselines that run code not meant for this machine (see [`kernelab_tensor::Baseline::degraded`]).
    pub degraded: Vec<String>,
}

impl Against {
    /// The defaults of `ops` on `devices` (each one's first registered variant) and their
    /// degraded baselines.
    pub fn of(devices: &[Device], ops: &[Op]) -> Self {
        let mut defaults = Vec::new();
        for device in devices {
            let (backend, name) = (device.kind().name().to_string(), device.info().name);
            for &op in ops {
                if let Some(v) = device.variants(op).first() {
                    defaults.push((backend.clone(), name.clone(), op.name().to_string(), v.name.to_string()));
                }
            }
        }
        let degraded = devices.iter().flat_map(Device::baselines).filter(|b| b.degraded).map(|b| b.variant).collect();
        Self { defaults, degraded }
    }

    fn default_of(&self, r: &Record) -> Option<&str> {
        let found = self.defaults.iter().find(|(b, d, op, _)| (b, d, op) == (&r.backend, &r.device, &r.op));
        found.map(|(.., v)| v.as_str())
    }
}

/// One shape of a variant's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapeResult {
    pub shape: Vec<usize>,
    pub transpose: Option<String>,
    /// The row passed every check and was timed.
    pub correct: bool,
    /// `t_default / t`; `None` without a checked time of both.
    pub vs_default: Option<f64>,
    /// `t_baseline / t` against the fastest baseline; `None` when none ran or the row has no time.
    pub vs_baseline: Option<f64>,
    /// That baseline.
    pub baseline: Option<String>,
}

/// One variant's fast_p over the run's shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub op: String,
    pub backend: String,
    pub device: String,
    pub variant: String,
    pub mode: String,
    /// Loaded from a file (`--kernel`): its path.
    pub file: Option<String>,
    pub baseline: bool,
    pub shapes: Vec<ShapeResult>,
    /// Shapes where its row was correct.
    pub correct: usize,
    /// For each `p`: shapes where it was correct and at least `p×` as fast as both.
    pub met: Vec<usize>,
    /// For each `p`: `met / shapes`.
    pub fast_p: Vec<f64>,
}

/// fast_p of every variant of a run, for each `p`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FastP {
    pub p: Vec<f64>,
    pub variants: Vec<VariantResult>,
}

/// Whether `a` and `b` are rows of the same work in the same mode.
fn same(a: &Record, b: &Record) -> bool {
    a.same_work(b) && a.mode == b.mode
}

/// Checked and timed.
fn good(r: &Record) -> bool {
    r.status == Status::Ok && r.ok && r.timed() && r.median_s > 0.0
}

/// fast_p of every variant in `records` (a run's rows) for each of `p`, in the order the variants
/// first appear.
pub fn summarize(records: &[Record], against: &Against, p: &[f64]) -> FastP {
    let mut variants: Vec<VariantResult> = Vec::new();
    for r in records {
        let key = (&r.op, &r.backend, &r.device, &r.mode, &r.variant);
        if variants.iter().any(|v| (&v.op, &v.backend, &v.device, &v.mode, &v.variant) == key) {
            continue;
        }
        variants.push(summarize_variant(records, r, against, p));
    }
    FastP { p: p.to_vec(), variants }
}

/// The summary of the variant of `first` (its first row) over every shape of its op, device and
/// mode in `records`.
fn summarize_variant(records: &[Record], first: &Record, against: &Against, p: &[f64]) -> VariantResult {
    let mut works: Vec<&Record> = Vec::new();
    let kin =
        |o: &Record| (&o.op, &o.backend, &o.device, &o.mode) == (&first.op, &first.backend, &first.device, &first.mode);
    for o in records.iter().filter(|o| kin(o)) {
        if !works.iter().any(|w| same(w, o)) {
            works.push(o);
        }
    }
    let default = against.default_of(first);
    let shapes: Vec<ShapeResult> = works
        .iter()
        .map(|work| {
            let row = records.iter().find(|o| same(o, work) && o.variant == first.variant).filter(|o| good(o));
            let time = |o: &Record| row.map(|r| o.median_s / r.median_s);
            let default = records.iter().find(|o| same(o, work) && Some(o.variant.as_str()) == default && good(o));
            let baseline = records
                .iter()
                .filter(|o| same(o, work) && o.baseline && good(o) && !against.degraded.contains(&o.variant))
                .min_by(|a, b| a.median_s.total_cmp(&b.median_s));
            ShapeResult {
                shape: work.shape.clone(),
                transpose: work.transpose.clone(),
                correct: row.is_some(),
                vs_default: default.and_then(time),
                vs_baseline: baseline.and_then(time),
                baseline: baseline.map(|b| b.variant.clone()),
            }
        })
        .collect();
    let meets = |s: &ShapeResult, p: f64| {
        s.correct
            && s.vs_default.is_some_and(|x| x >= p)
            && (s.baseline.is_none() || s.vs_baseline.is_some_and(|x| x >= p))
    };
    let met: Vec<usize> = p.iter().map(|&p| shapes.iter().filter(|s| meets(s, p)).count()).collect();
    let n = shapes.len().max(1) as f64;
    VariantResult {
        op: first.op.clone(),
        backend: first.backend.clone(),
        device: first.device.clone(),
        variant: first.variant.clone(),
        mode: first.mode.clone(),
        file: first.source.as_ref().map(|s| s.path.clone()),
        baseline: first.baseline,
        correct: shapes.iter().filter(|s| s.correct).count(),
        fast_p: met.iter().map(|&m| m as f64 / n).collect(),
        met,
        shapes,
    }
}

/// The summary as a table for a person: a row per variant, `met/shapes` and the fraction for
/// each `p`, and a line that says what is counted.
pub fn render(f: &FastP) -> String {
    let mut header: Vec<String> = ["op", "backend", "variant", "mode", "shapes", "correct"].map(String::from).to_vec();
    header.extend(f.p.iter().map(|p| format!("fast_{p}")));
    let rows = f
        .variants
        .iter()
        .map(|v| {
            let name = if v.file.is_some() { format!("{} (file)", v.variant) } else { v.variant.clone() };
            let mut row = vec![v.op.clone(), v.backend.clone(), name, v.mode.clone()];
            row.extend([v.shapes.len().to_string(), v.correct.to_string()]);
            row.extend(v.met.iter().zip(&v.fast_p).map(|(m, x)| format!("{m}/{} {x:.2}", v.shapes.len())));
            row
        })
        .collect();
    let right: Vec<bool> = (0..header.len()).map(|i| i >= 4).collect();
    let no_default = f.variants.iter().any(|v| v.shapes.iter().any(|s| s.correct && s.vs_default.is_none()));
    format!(
        "{}\nfast_p: the fraction of the shapes where the row passed every check and is at least p× as fast as its \
         backend's default variant and as the fastest baseline of the same work{}",
        crate::table::terminal_table(header, &right, rows),
        if no_default {
            "\nnote: some shapes had no checked row of their backend's default variant, so nothing there counts; \
             run with --variant all (or default, or name the default)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::row;

    fn against(degraded: &[&str]) -> Against {
        let defaults = vec![("cpu".into(), "cpu".into(), "matmul".into(), "threaded".into())];
        Against { defaults, degraded: degraded.iter().map(|s| s.to_string()).collect() }
    }

    /// Three shapes: the default at 1 s everywhere; the baseline at 0.8 s, 2 s and not at the
    /// third; `mine` at 0.5 s, 0.4 s, and failing at the third.
    fn run() -> Vec<Record> {
        let (a, b, c) = (&[8, 8, 8][..], &[16, 16, 16][..], &[32, 32, 32][..]);
        let mut failed = row("mine", f64::NAN, c, 2);
        (failed.status, failed.ok, failed.n, failed.samples_s) = (Status::Fail, false, 0, Vec::new());
        vec![
            row("threaded", 1.0, a, 2),
            row("openblas", 0.8, a, 2),
            row("mine", 0.5, a, 2),
            row("threaded", 1.0, b, 2),
            row("openblas", 2.0, b, 2),
            row("mine", 0.4, b, 2),
            row("threaded", 1.0, c, 2),
            failed,
        ]
    }

    fn of<'f>(f: &'f FastP, variant: &str) -> &'f VariantResult {
        f.variants.iter().find(|v| v.variant == variant).unwrap()
    }

    #[test]
    fn a_shape_counts_when_correct_and_p_times_as_fast_as_the_default_and_the_fastest_baseline() {
        let f = summarize(&run(), &against(&[]), &DEFAULT_P);
        let names: Vec<&str> = f.variants.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(names, ["threaded", "openblas", "mine"]);
        let mine = of(&f, "mine");
        assert_eq!((mine.shapes.len(), mine.correct), (3, 2));
        // 8³: 2× the default, 1.6× the baseline; 16³: 2.5× and 5×; 32³: failed.
        assert_eq!(mine.shapes[0].vs_default, Some(2.0));
        assert_eq!(mine.shapes[0].vs_baseline, Some(1.6));
        assert_eq!((mine.shapes[2].correct, mine.shapes[2].vs_default), (false, None));
        assert_eq!(mine.met, vec![2, 2, 1]);
        assert_eq!(mine.fast_p, vec![2.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0]);
        // The default: as fast as itself; slower than the baseline at 8³; no baseline at 32³.
        let default = of(&f, "threaded");
        assert_eq!(default.met, vec![2, 0, 0]);
        assert_eq!(default.shapes[2].baseline, None);
    }

    #[test]
    fn a_degraded_baseline_is_not_held_against_and_a_shape_without_the_default_is_not_met() {
        let f = summarize(&run(), &against(&["openblas"]), &DEFAULT_P);
        assert_eq!(of(&f, "mine").met, vec![2, 2, 2]);
        let without_default: Vec<Record> =
            run().into_iter().filter(|r| !(r.variant == "threaded" && r.shape == [16; 3])).collect();
        let f = summarize(&without_default, &against(&["openblas"]), &[1.0]);
        let mine = of(&f, "mine");
        assert_eq!((mine.met.clone(), mine.shapes[1].vs_default), (vec![1], None));
    }

    #[test]
    fn the_table_gives_counts_and_fractions_and_the_summary_serializes() {
        let f = summarize(&run(), &against(&[]), &DEFAULT_P);
        let text = render(&f);
        assert!(text.contains("fast_1.5") && text.contains("fast_2"), "{text}");
        let mine = text.lines().find(|l| l.contains("mine")).unwrap();
        assert!(mine.contains("2/3 0.67") && mine.contains("1/3 0.33"), "{mine}");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["variants"][2]["met"], serde_json::json!([2, 2, 1]));
        assert_eq!(serde_json::from_value::<FastP>(json).unwrap(), f);
    }
}
