//! `kernelab infer`: the latency and throughput of a model's forward pass (no tape, fused
//! bias+ReLU, the device's own matmul choice: [`kernelab_nn::infer`]) on every backend and batch
//! size, and its test-set accuracy.
//!
//! # The report
//!
//! `--json` writes a `kernelab bench` report ([`Report`], the same schema version), so that
//! `kernelab compare` and `kernelab plot` read it as they read a benchmark. One record per backend,
//! model and batch size, with:
//!
//! - `op`: `"infer"`; `variant`: the model spec (`"784-128-10"`); `shape`: `[batch]`;
//!   `transpose`: `null`; `mode`: `"warm"`; `baseline`: `false` (a peer's row, e.g. PyTorch's, is
//!   `true`);
//! - `backend`, `device` (the device's own name, as `kernelab devices` shows it) and `threads`
//!   (the CPU pool's size; `null` on a GPU), as in a bench row;
//! - `clock`: `"host"`, `launches_per_sample`: 1: each sample in `samples_s` is one call's wall
//!   time in seconds — copy the batch to the device, every layer, copy the logits back (which
//!   waits for the device) — in the order taken, after untimed warm-up calls; `n` of them;
//!   `rounds`: the round of each sample, the batch sizes of a backend being timed in interleaved
//!   rounds as bench's rows are ([`time_rows`]; the report's `settings.round_seed` seeds their
//!   order), so that `compare` pairs samples by round;
//! - `median_s` (p50), `p10_s`, `p90_s`, `p99_s` of those samples, `host_median_s` = `median_s`;
//! - `flops`: `2 × multiply-adds per image × batch` (the matmuls only); `bytes`: the least
//!   traffic of one call, `4 × (parameters + batch × (inputs + classes))`; `gflops`, `gbps`,
//!   `ceiling` and `roofline` as in bench (the working set is `bytes`);
//! - `ok`: `true`, `status`: `"ok"`, `max_rel_err` and `budget_ratio`: `null` (a call is not
//!   checked against an f64 reference here; the test suite holds the path to the training
//!   forward's logits bit for bit);
//! - `note`: the matmul variant (and, on the CPU, the path each layer's product takes), and the
//!   test accuracy when the run had data (`test accuracy 84.93% on 10000 images of DIR`).
//!
//! Images per second is `batch / median_s`. Rows pair in `kernelab compare` by op, backend,
//! device, variant, shape, threads and mode, so a peer's report whose rows carry those of
//! kernelab's rows compares with it row by row.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kernelab_bench::record::{Record, Report, Settings, Status};
use kernelab_bench::rounds::{self, RowTimes};
use kernelab_bench::table;
use kernelab_bench::timing::{Plan, Sample, Samples};
use kernelab_nn::infer::{check_batch, multiply_adds};
use kernelab_nn::{Dataset, Inference, Mlp, Split};
use kernelab_tensor::{BackendKind, Error, Op, Result};

use crate::infer_table::{markdown, one_line, render};
use crate::out::outln;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab infer --checkpoint student.safetensors --batch 1,256
  kernelab infer --model 784-512-256-10 --backend cpu --threads 1 --json teacher.json
  kernelab compare pytorch.json kernelab.json          rows pair by backend, model and batch")]
pub struct InferArgs {
    /// A checkpoint to time (kernelab's safetensors, or PyTorch's `nn.Sequential` of Linear and
    /// ReLU saved with safetensors).
    #[arg(long, conflicts_with = "model")]
    checkpoint: Option<PathBuf>,
    /// A model spec with random weights (PyTorch's initialization, from --seed), when no
    /// --checkpoint is given.
    #[arg(long, default_value = "784-128-10")]
    model: String,
    /// Seeds the random weights and the timed images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backends, comma-separated (cpu, wgpu, cuda). Default: every available one.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// GPU adapter: the first whose name contains this (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256,4096")]
    batch: Vec<usize>,
    /// Threads for the CPU's kernels; default and most: one per logical core.
    #[arg(long)]
    threads: Option<usize>,
    /// An MNIST-format folder whose test set (t10k-*) gives the accuracy. Default with
    /// --checkpoint: Debian's Fashion-MNIST where it is installed; with --model: none.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Untimed calls before timing.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// The most timed calls per row.
    #[arg(long, default_value_t = 3000)]
    calls: usize,
    /// Seconds of timed calls per row, after which a row stops (it still takes 20 calls).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// Before each timed call, untimed calls of the same batch size for at least this many
    /// milliseconds (at least one call), so that what the other sizes' calls left in the caches
    /// is gone: a stream of batches of one size.
    #[arg(long, default_value_t = SETTLE_MS)]
    settle_ms: f64,
    #[command(flatten)]
    files: crate::report_files::ReportFiles,
}

/// The default of `--settle-ms` (see [`time_rows`]).
pub const SETTLE_MS: f64 = 2.0;

/// The fewest timed calls of a row, whatever the budget.
const MIN_CALLS: usize = 20;

/// How each row is timed.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: usize,
    pub calls: usize,
    pub budget: Duration,
    /// Untimed calls of the row, for at least this long, before each timed call.
    pub settle: Duration,
}

/// Runs `kernelab infer`.
pub fn run(a: &InferArgs) -> Result<usize> {
    crate::bench::set_threads(a.threads)?;
    check_paths(a)?;
    let timing = check_timing(a)?;
    let devices = crate::bench::open_devices(&a.backend, a.adapter.as_deref())?;
    let model = match &a.checkpoint {
        Some(path) => Mlp::load(path, &devices[0])?,
        None => Mlp::new(&a.model, a.seed, &devices[0])?,
    };
    let widths = model.widths();
    if a.batch.is_empty() {
        return Err(Error::InvalidArgument { op: "infer", why: "--batch needs at least one size, e.g. 1,256".into() });
    }
    for &batch in &a.batch {
        check_batch(&widths, batch)?;
    }
    let image = match &a.checkpoint {
        Some(path) => kernelab_nn::checkpoint::image_size(path)?,
        None => None,
    };
    let data = test_set(a, &widths, image)?;
    let bar = progress((devices.len() * a.batch.len()) as u64);
    let mut records = Vec::new();
    for device in &devices {
        let copy;
        let model = if device.same_as(model.device()) {
            &model
        } else {
            copy = model.to(device)?;
            &copy
        };
        let accuracy = match &data {
            Some((dir, set)) => Some((Inference::new(model)?.accuracy(set, 1000)?, set.len(), dir.clone())),
            None => None,
        };
        bar.set_message(format!("{} {} batch {:?}, interleaved", device.kind(), model.spec(), a.batch));
        for mut record in time_rows(model, &a.batch, a.seed, &timing)? {
            if let Some((acc, n, dir)) = &accuracy {
                record.note =
                    Some(format!("{}; test accuracy {:.2}% on {n} images of {dir}", note(&record), 100.0 * acc));
            }
            bar.println(one_line(&record));
            bar.inc(1);
            records.push(record);
        }
    }
    bar.finish_and_clear();
    let report = Report::new(std::env::args().collect(), settings(&timing), &devices, records);
    write_outputs(a, &report, &model)?;
    Ok(0)
}

/// Every output checked writable, none the checkpoint, a data file or another output, before
/// any work.
fn check_paths(a: &InferArgs) -> Result<()> {
    use kernelab_tensor::files::Paths;
    let mut paths = Paths::new();
    paths.input("--checkpoint", a.checkpoint.as_deref());
    if let Some(dir) = data_dir(a) {
        for file in kernelab_nn::data::files(&dir) {
            paths.input("--data", Some(&file));
        }
    }
    a.files.add_to(&mut paths);
    paths.check()
}

fn check_timing(a: &InferArgs) -> Result<Timing> {
    if !(a.budget.is_finite() && a.budget > 0.0 && a.budget <= 3600.0) {
        return Err(Error::InvalidArgument {
            op: "infer",
            why: format!("--budget {} must be a number of seconds above 0, at most 3600", a.budget),
        });
    }
    if a.calls < MIN_CALLS || a.calls > 10_000_000 {
        return Err(Error::InvalidArgument {
            op: "infer",
            why: format!("--calls {} must be from {MIN_CALLS} to 10000000", a.calls),
        });
    }
    if !(a.settle_ms.is_finite() && (0.0..=10_000.0).contains(&a.settle_ms)) {
        return Err(Error::InvalidArgument {
            op: "infer",
            why: format!("--settle-ms {} must be a number of milliseconds from 0 to 10000", a.settle_ms),
        });
    }
    Ok(Timing {
        warmup: a.warmup,
        calls: a.calls,
        budget: Duration::from_secs_f64(a.budget),
        settle: Duration::from_secs_f64(a.settle_ms / 1000.0),
    })
}

/// `--data`, else (with a checkpoint) Debian's Fashion-MNIST where it is installed.
fn data_dir(a: &InferArgs) -> Option<PathBuf> {
    let default = std::path::Path::new(kernelab_nn::FASHION_MNIST_DIR);
    match (&a.data, &a.checkpoint) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(_)) if default.is_dir() => Some(default.to_path_buf()),
        _ => None,
    }
}

/// The test set of the data folder, whose images must have the model's inputs; none without one.
/// The default folder (not asked for) that does not fit the model gives no accuracy, and says so.
fn test_set(a: &InferArgs, widths: &[usize], image: Option<(usize, usize)>) -> Result<Option<(String, Dataset)>> {
    let Some(dir) = data_dir(a) else { return Ok(None) };
    match (fitting_test_set(&dir, widths, image), &a.data) {
        (Err(e), None) => {
            eprintln!("no test accuracy: the default data does not fit this model ({e}); give --data");
            Ok(None)
        }
        (set, _) => set.map(|set| Some((dir.display().to_string(), set))),
    }
}

/// The test split of `dir`, refused unless its images have the inputs of a model of `widths`,
/// and the rows and columns of `image` (the size the checkpoint says it was trained on) where
/// known: 14×56 images have the pixels of a 28×28 model, not its rows.
fn fitting_test_set(dir: &std::path::Path, widths: &[usize], image: Option<(usize, usize)>) -> Result<Dataset> {
    let (inputs, classes) = (widths[0], widths[widths.len() - 1]);
    let set = Dataset::load(dir, Split::Test, classes)?;
    if set.features != inputs {
        return Err(Error::InvalidArgument {
            op: "infer",
            why: format!(
                "--data {}: its test images are {}×{} = {} pixels, and the model {} takes {inputs} inputs",
                dir.display(),
                set.image_rows,
                set.image_cols,
                set.features,
                widths.iter().map(usize::to_string).collect::<Vec<_>>().join("-"),
            ),
        });
    }
    if let Some((rows, cols)) = image.filter(|&size| size != (set.image_rows, set.image_cols)) {
        return Err(Error::InvalidArgument {
            op: "infer",
            why: format!(
                "--data {}: its test images are {}×{} pixels, and the checkpoint's model was trained on {rows}×{cols}",
                dir.display(),
                set.image_rows,
                set.image_cols
            ),
        });
    }
    Ok(set)
}

/// Times `model` on its device at each of `batches` in interleaved rounds
/// ([`kernelab_bench::rounds`], as `bench` times its rows): every batch size is warmed up first
/// (`timing.warmup` untimed calls, cut short after a quarter of the budget); then each round
/// takes one timed call of every row still timing, in a shuffled order, each right after
/// untimed calls of the same size lasting `timing.settle` (at least one), as for a server
/// answering a stream of batches of one size. One untimed call is not enough: after one call of
/// batch 256, the 784-512-256-10 teacher's next batch-1 calls on one thread took 150, 70, 57,
/// 50… µs, back to their steady 30 µs only after about 20 calls (0.8 ms; `examples/infer_loop.rs`
/// `after:256`), which put every round's batch-1 sample that followed a batch-256 call at twice
/// its p50, and the row's p99 at 2.4–2.7× its p50 against 1.2–1.3× with batch 1 alone. A row leaves after
/// `timing.calls` samples, or once it has [`MIN_CALLS`] and spent `timing.budget` (its untimed
/// calls included). One record per batch size, in order, with the round of each sample.
pub fn time_rows(model: &Mlp, batches: &[usize], seed: u64, timing: &Timing) -> Result<Vec<Record>> {
    let mut inference = Inference::new(model)?;
    let inputs = inference.inputs();
    let images: Vec<Vec<f32>> =
        batches.iter().map(|&batch| (0..batch * inputs).map(|i| pixel(seed, i)).collect()).collect();
    for x in &images {
        inference.prepare(x.len() / inputs)?;
        warm_up(&mut inference, x, timing)?;
    }
    let plan = Plan {
        warmup: timing.warmup,
        repeat: timing.calls,
        min_runs: MIN_CALLS,
        budget: timing.budget,
        ..Plan::default()
    };
    let mut times: Vec<Option<Result<RowTimes>>> = batches.iter().map(|_| None).collect();
    let sample = |i: usize| -> Result<Sample> {
        let started = Instant::now();
        inference.forward(&images[i])?;
        while started.elapsed() < timing.settle {
            inference.forward(&images[i])?;
        }
        let t0 = Instant::now();
        inference.forward(&images[i])?;
        let host = t0.elapsed().as_secs_f64();
        Ok(Sample { host, device: None, spent: started.elapsed().as_secs_f64() })
    };
    rounds::run(&plan, batches.len(), |_, _| {}, sample, |i, t| times[i] = Some(t));
    batches
        .iter()
        .zip(times)
        .map(|(&batch, t)| {
            let t =
                t.ok_or_else(|| Error::InvalidArgument { op: "infer", why: "internal: a row left untimed".into() })??;
            let mut r = record(model, batch, &Samples::from_secs(t.host), inference.is_prepared());
            r.rounds = t.rounds;
            Ok(r)
        })
        .collect()
}

/// `timing.warmup` untimed calls (at least one), cut short after a quarter of the budget.
fn warm_up(inference: &mut Inference, images: &[f32], timing: &Timing) -> Result<()> {
    let warming = Instant::now();
    for _ in 0..timing.warmup.max(1) {
        inference.forward(images)?;
        if warming.elapsed() > timing.budget / 4 {
            break;
        }
    }
    Ok(())
}

/// A pixel value in [0, 1) for image value `i`: a hash of the seed and `i` (splitmix64's
/// finalizer), in steps of 1/255 as a real image's bytes are.
fn pixel(seed: u64, i: usize) -> f32 {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % 255) as f32 / 255.0
}

/// The record of `model` at `batch` timed as `samples` (see the module header).
fn record(model: &Mlp, batch: usize, samples: &Samples, prepared: bool) -> Record {
    let device = model.device();
    let widths = model.widths();
    let threads = (device.kind() == BackendKind::Cpu).then(kernelab_cpu::threads);
    let median = samples.median();
    let flops = 2.0 * multiply_adds(&widths) as f64 * batch as f64;
    let values = model.parameter_count() + batch * (widths[0] + widths[widths.len() - 1]);
    let bytes = 4.0 * values as f64;
    let (gflops, gbps) = (flops / median / 1e9, bytes / median / 1e9);
    let ceiling = device.roofline().and_then(|r| r.ceiling(threads, bytes, false));
    let roofline = ceiling.as_ref().map_or(f64::NAN, |c| c.fraction(gflops, gbps));
    Record {
        op: "infer".into(),
        backend: device.kind().name().into(),
        device: device.info().name,
        variant: model.spec(),
        shape: vec![batch],
        threads,
        clock: Some("host".into()),
        launches_per_sample: 1,
        n: samples.len(),
        samples_s: samples.taken().to_vec(),
        median_s: median,
        p10_s: samples.quantile(0.1),
        p90_s: samples.quantile(0.9),
        p99_s: Some(samples.quantile(0.99)),
        host_median_s: median,
        noisy: samples.noisy(),
        flops,
        bytes,
        gflops,
        gbps,
        ceiling,
        roofline,
        suspect: roofline > 1.0,
        ok: true,
        ..Record::blank(Status::Ok, Some(path_of(model, batch, prepared)))
    }
}

/// The matmul variant the forward runs with, and on the CPU whether the layers are prepared and
/// the path of each layer's product: `prepared layers (…): direct, direct`, where a prepared
/// layer that the matmul would pack reads `A` in place in the packed path's order (`packed order,
/// A in place`, see `kernelab_cpu::gemm::prepacked`).
fn path_of(model: &Mlp, batch: usize, prepared: bool) -> String {
    let device = model.device();
    let variant = device.variants(Op::Matmul).first().map_or("?", |v| v.name);
    if device.kind() != BackendKind::Cpu {
        return format!("matmul {variant}");
    }
    let paths: Vec<&str> = model
        .layers()
        .iter()
        .map(|l| {
            let g = kernelab_tensor::Gemm::new(batch, l.outputs(), l.inputs()).trans(false, true);
            if kernelab_cpu::gemm::prefers_direct(&g) {
                "direct"
            } else if prepared && kernelab_cpu::gemm::direct::supports(&g) {
                "packed order, A in place"
            } else {
                "packed"
            }
        })
        .collect();
    if prepared {
        format!(
            "prepared layers (matmul {variant}'s kernels on packed weights, bias+ReLU in its stores): {}",
            paths.join(", ")
        )
    } else {
        format!("matmul {variant}: {}", paths.join(", "))
    }
}

/// A record's note without the accuracy.
pub(crate) fn note(r: &Record) -> String {
    r.note.clone().unwrap_or_default()
}

fn settings(timing: &Timing) -> Settings {
    Settings {
        warmup: timing.warmup,
        repeat: timing.calls,
        min_runs: MIN_CALLS,
        budget_s: timing.budget.as_secs_f64(),
        cold: false,
        threads: kernelab_cpu::threads(),
        batch_below_s: 0.0,
        batch_target_s: 0.0,
        noisy_spread: kernelab_bench::timing::NOISY_SPREAD,
        variants: "infer".into(),
        round_seed: Some(Plan::default().seed),
        settle_s: timing.settle.as_secs_f64(),
    }
}

/// Images per second of a row: `batch / p50`.
pub fn images_per_s(r: &Record) -> f64 {
    r.shape.first().map_or(f64::NAN, |&b| b as f64 / r.median_s)
}

/// What the path does, for the line above the table.
fn header(model: &Mlp) -> String {
    format!(
        "forward only, {} ({} parameters, {} multiply-adds an image): no tape; per layer, where the backend \
         prepares layers (cpu), one product on weights packed once at load with bias+ReLU applied as it stores \
         C, else one matmul (NT, the weights read in place) and one fused bias+ReLU (bias add on the last); \
         buffers owned per batch size; a call = copy the batch in (cpu: read in place), every layer, copy the logits out \
         (synchronized); p50/p99 of single calls, batch sizes timed in interleaved rounds",
        model.spec(),
        model.parameter_count(),
        multiply_adds(&model.widths())
    )
}

fn write_outputs(a: &InferArgs, report: &Report, model: &Mlp) -> Result<()> {
    let text = format!("{}\n{}\n\n{}", header(model), render(&report.records), table::footer(report));
    if a.files.any_stdout() {
        eprintln!("{text}");
    } else {
        outln!("{text}");
    }
    use crate::report_files::Format;
    a.files.write(|format| match format {
        Format::Json => Ok(format!("{}\n", report.to_json()?)),
        Format::Csv => Ok(table::csv(&report.records)),
        Format::Markdown => Ok(format!("{}\n\n{}", header(model), markdown(&report.records))),
    })
}

/// A progress bar on stderr (hidden when stderr is not a terminal), a row a tick.
fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {elapsed_precise}  now: {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
