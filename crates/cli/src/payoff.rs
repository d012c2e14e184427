//! The payoff table that ends `kernelab distill`: what each model costs per prediction and what
//! it gets right, side by side — the teacher, the label-only student and the distilled student.
//!
//! Per model: its parameters, its multiply-adds per image (`Σᵢ wᵢ·wᵢ₊₁`, the matmuls), its test
//! accuracy (percent; mean ± sample standard deviation over the students' seeds, one value for
//! the one teacher), the p50 latency of one call at batch 1 and the images per second at batch
//! 256 on the training backend (`kernelab infer`'s forward path and timing, a few hundred calls a
//! row), and the accuracy per million multiply-adds (`accuracy / (multiply-adds / 10⁶)`): the
//! accuracy that each unit of compute per prediction buys.

use serde::Serialize;

use kernelab_bench::table::{self, format_time};
use kernelab_nn::Mlp;
use kernelab_nn::infer::multiply_adds;
use kernelab_tensor::{Error, Result};

use crate::infer::{Timing, images_per_s, time_rows};

/// The batch whose latency the table shows, and the one whose throughput it shows.
pub const LATENCY_BATCH: usize = 1;
pub const THROUGHPUT_BATCH: usize = 256;

/// The timing of the table's rows: short, since `distill` runs in the test suite.
pub fn timing() -> Timing {
    Timing {
        warmup: 20,
        calls: 300,
        budget: std::time::Duration::from_millis(150),
        settle: std::time::Duration::from_secs_f64(crate::infer::SETTLE_MS / 1000.0),
    }
}

/// One model of the table: its name (`teacher`, `student`, `distilled`), the model (any instance
/// of its spec times the same), and its final test accuracies in percent, one per seed.
pub struct Entry<'a> {
    pub run: &'static str,
    pub model: &'a Mlp,
    pub accuracies: Vec<f64>,
}

/// One row, as the table shows it and as `distill --json` logs it (one JSON line a row, with
/// `model` = `"payoff"` beside the epoch lines).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub model: &'static str,
    /// `teacher`, `student` (label-only) or `distilled`.
    pub run: &'static str,
    pub spec: String,
    pub backend: String,
    pub parameters: usize,
    pub multiply_adds: u64,
    /// Test accuracy in percent: the mean over the seeds, and its sample standard deviation
    /// (`null` for one value).
    pub test_acc_mean: f64,
    pub test_acc_sd: Option<f64>,
    pub seeds: usize,
    /// p50 seconds of one call at batch [`LATENCY_BATCH`].
    pub batch1_p50_s: f64,
    /// Images per second at batch [`THROUGHPUT_BATCH`] (`batch / p50`).
    pub batch256_images_per_s: f64,
    /// `test_acc_mean / (multiply_adds / 10⁶)`.
    pub acc_per_mmac: f64,
}

/// The rows of `entries`, each timed on its model's device with `timing`.
pub fn measure(entries: &[Entry], timing: &Timing) -> Result<Vec<Row>> {
    entries.iter().map(|e| row(e, timing)).collect()
}

fn row(e: &Entry, timing: &Timing) -> Result<Row> {
    // Both batch sizes in interleaved rounds.
    let timed = time_rows(e.model, &[LATENCY_BATCH, THROUGHPUT_BATCH], 0, timing)?;
    let (latency, throughput) = match timed.as_slice() {
        [latency, throughput] => (latency, throughput),
        _ => return Err(Error::InvalidArgument { op: "distill", why: "internal: two rows were timed".into() }),
    };
    let (mean, sd) = kernelab_bench::stats::mean_and_sd(&e.accuracies);
    let macs = multiply_adds(&e.model.widths());
    Ok(Row {
        model: "payoff",
        run: e.run,
        spec: e.model.spec(),
        backend: e.model.device().kind().name().into(),
        parameters: e.model.parameter_count(),
        multiply_adds: macs,
        test_acc_mean: mean,
        test_acc_sd: sd.is_finite().then_some(sd),
        seeds: e.accuracies.len(),
        batch1_p50_s: latency.median_s,
        batch256_images_per_s: images_per_s(throughput),
        acc_per_mmac: mean / (macs as f64 / 1e6),
    })
}

/// The table for a terminal.
pub fn render(rows: &[Row]) -> String {
    let header = [
        "model",
        "spec",
        "parameters",
        "multiply-adds/image",
        "test accuracy %",
        "batch-1 p50",
        "batch-256 images/s",
        "accuracy per M multiply-adds",
    ];
    let right = [false, false, true, true, true, true, true, true];
    let cells = rows
        .iter()
        .map(|r| {
            let acc = match r.test_acc_sd {
                Some(sd) => format!("{:.2} ± {sd:.2}", r.test_acc_mean),
                None => format!("{:.2}", r.test_acc_mean),
            };
            vec![
                if r.run == "student" { "label-only student".into() } else { r.run.to_string() },
                r.spec.clone(),
                r.parameters.to_string(),
                r.multiply_adds.to_string(),
                acc,
                format_time(r.batch1_p50_s),
                format!("{:.0}", r.batch256_images_per_s),
                format!("{:.1}", r.acc_per_mmac),
            ]
        })
        .collect();
    let backend = rows.first().map_or("", |r| r.backend.as_str());
    format!(
        "payoff on {backend} (forward only, as `kernelab infer` times it; accuracy over the students' seeds, \
         mean ± sd):\n{}",
        table::terminal_table(header.map(String::from).to_vec(), &right, cells)
    )
}
