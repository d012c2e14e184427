//! `kernelab bench`: one op (or several) on every backend and variant, one table.

use crate::out::outln;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kernelab_bench::backends;
use kernelab_bench::record::{Report, Settings, Status};
use kernelab_bench::runner::{self, Spec, Variants};
use kernelab_bench::table;
use kernelab_bench::timing::{self, Plan};
use kernelab_tensor::{Device, Error, Result};

use crate::report_files::{Format, ReportFiles};
use crate::{args, sweep};

/// `--json`'s help in `bench`.
const JSON_HELP: &str = "Write the report (settings, machine, ceilings, baselines, every row with its raw samples) as \
                         JSON to this file; `-` writes it to stdout and the table to stderr";

#[derive(Args, Debug)]
// The report holds more than `infer`'s: say what, in the one help line `ReportFiles` lets differ.
#[command(mut_arg("json", |a| a.help(JSON_HELP)))]
#[command(after_help = "Examples:
  kernelab bench                                               the default suite, every backend and variant
  kernelab bench --op matmul --shape 1024x1024x1024 --threads 1 --json matmul.json
  kernelab bench --op matmul --shape 64..2048 --variant threaded,packed_avx512,openblas --pivot variant
  kernelab bench --op matmul --preset mlp --threads 1          the seed models' products at batch 64
  kernelab bench --op relu --shape 1024..16777216:x4 --cold    every size after evicting the caches
  kernelab bench --op softmax --shape 4096x1000 --json - | jq '.records[].median_s'
  kernelab bench --op matmul --backend wgpu --kernel my.wgsl   your kernel, checked and timed beside the ladder
  kernelab bench --op softmax --kernel softmax.so --watch     re-check and re-time whenever the file changes")]
pub struct BenchArgs {
    /// Ops to run, comma-separated (matmul, relu, softmax, …; `kernelab bench --op help` lists them).
    /// Without --op and --shape: the default suite.
    #[arg(long, value_delimiter = ',')]
    op: Vec<String>,
    /// Backends, comma-separated (cpu, wgpu, cuda). Default: every available one.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Storage dtypes, comma-separated (f32, bf16, f16, tf32; default f32): the rows of each are
    /// the variants storing it (`bf16→f32`: bf16 buffers, f32 accumulation); a backend with none
    /// has one skipped row saying so. `tf32`: f32 buffers whose operands the kernel rounds to
    /// TF32 (10-bit mantissa, u = 2^-11) with f32 sums, NVIDIA's tensor-core mode (cuda only:
    /// mma_tf32, cublas_tf32), checked against its own budget.
    #[arg(long, value_delimiter = ',')]
    dtype: Vec<String>,
    /// `all` (default), `default` (each backend's default), or variant names, comma-separated.
    #[arg(long, default_value = "all")]
    variant: String,
    /// Shapes: MxNxK for matmul, RxC for row-wise ops, N for elementwise ones; repeat or comma-separate.
    /// A matmul shape may end in `:NT`, `:TN` or `:TT` for transposed operands (64x128x784:NT);
    /// another op refuses a layout. Any dimension may be a range: `64..2048` (powers of two),
    /// `64..2048:x1.5`, `128..1024+128`; a range alone is square for matmul (`64..2048` = 64³ …
    /// 2048³). At most 10000 shapes per op, counted before any is built.
    #[arg(long, value_delimiter = ',', value_parser = sweep::parse)]
    shape: Vec<sweep::ShapeSpec>,
    /// A set of shapes: `mlp`, every matmul product of a training step of 784-128-10 and
    /// 784-512-256-10 at batch 64 (forward NT, weight gradient TN, input gradient NN). Matmul only:
    /// refused beside another --op.
    #[arg(long, value_parser = ["mlp"])]
    preset: Option<String>,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// The most timed samples per row. Rows are timed in interleaved rounds, one sample of every
    /// row a round in a shuffled order.
    #[arg(long, default_value_t = 30)]
    repeat: usize,
    /// Seconds of timing per row, after which a row leaves the rounds early (it still takes 3
    /// samples).
    #[arg(long, visible_alias = "row-budget", default_value_t = 2.0)]
    budget: f64,
    /// Seeds the shuffled order of the rows in each round (kept in the report).
    #[arg(long, default_value_t = timing::DEFAULT_SEED)]
    seed: u64,
    /// Skip a row whose predicted time (from the same variant's last, smaller row, or from its
    /// checked launch) exceeds this many seconds; the row says so.
    #[arg(long, default_value_t = 60.0)]
    max_row_time: f64,
    /// Run every row, however long it is predicted to take.
    #[arg(long)]
    all_sizes: bool,
    /// `variant`: a second table with the shapes as rows and the variants as columns (GFLOP/s).
    #[arg(long, value_parser = ["variant"])]
    pivot: Option<String>,
    /// GPU adapter: the first whose name contains this (case-insensitive); default: the fastest kind.
    #[arg(long)]
    adapter: Option<String>,
    /// Threads for every CPU kernel (and the baselines); default and most: one per logical core.
    #[arg(long)]
    threads: Option<usize>,
    /// Evict the caches before every timed launch (rows are then held against main memory).
    #[arg(long)]
    cold: bool,
    #[command(flatten)]
    files: ReportFiles,
    /// A kernel of yours from a file, as a row beside the built-in variants: `.wgsl` (wgpu), `.ptx`
    /// (cuda) or `.so` (a CPU library exporting the op's C function; run in a child process). Give
    /// one --op; add `:ENTRY` to name the entry point. Repeatable. docs/kernels.md has the calling
    /// conventions and the header line that declares the launch geometry.
    #[arg(long, value_name = "PATH[:ENTRY]")]
    kernel: Vec<String>,
    /// Run again whenever a --kernel file changes (Ctrl-C stops).
    #[arg(long, requires = "kernel")]
    watch: bool,
    /// Seconds a child process running a `.so` kernel may take before it is killed as hung.
    /// Default: 60 plus 3 × --budget + 10 per shape.
    #[arg(long)]
    kernel_timeout: Option<f64>,
    /// KernelBench's fast_p after the table: for each variant, the fraction of the run's shapes
    /// where it passed every check and is at least P× as fast as its backend's default variant
    /// and the fastest baseline. Comma-separated P values; shown (at 1, 1.5, 2) whenever --kernel
    /// is given.
    #[arg(long, value_delimiter = ',', value_name = "P")]
    fast_p: Vec<f64>,
    /// Run only the --kernel files, in this process (what the child process of a `.so` kernel runs).
    #[arg(long, hide = true)]
    isolated: bool,
}

/// Sizes the CPU thread pool to `threads`: at least one, at most the logical cores.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let Some(threads) = threads else { return Ok(()) };
    let cores = kernelab_cpu::topology::logical_cores();
    if threads == 0 || threads > cores {
        return Err(Error::InvalidArgument {
            op: "threads",
            why: format!("--threads {threads}: this machine has {cores} logical cores; use 1 to {cores}"),
        });
    }
    kernelab_cpu::set_threads(threads)
}

/// Runs the benchmark; returns how many rows failed their reference check.
pub fn run(a: &BenchArgs) -> Result<usize> {
    if a.watch {
        return crate::watch::run(&a.kernel);
    }
    set_threads(a.threads)?;
    let mut paths = kernelab_tensor::files::Paths::new();
    a.files.add_to(&mut paths);
    paths.check()?;
    if !a.kernel.is_empty() && a.op.is_empty() {
        return Err(Error::InvalidArgument {
            op: "kernel",
            why: format!("--kernel {} needs --op, the op the file implements (e.g. --op matmul)", a.kernel[0]),
        });
    }
    let mut devices = if a.isolated {
        vec![backends::open(kernelab_tensor::BackendKind::Cpu)?]
    } else {
        open_devices(&a.backend, a.adapter.as_deref())?
    };
    let interpreted = devices.iter().any(kernelab_bench::conformance::interpreted);
    let specs = specs(a, interpreted)?;
    let mut ops: Vec<kernelab_tensor::Op> = specs.iter().map(|s| s.op).collect();
    ops.dedup();
    let loaded = match crate::kernels::the_op(&a.kernel, &ops)? {
        Some(op) => crate::kernels::load(&a.kernel, op, &mut devices, a.adapter.as_deref(), a.isolated),
        None => crate::kernels::Loaded::default(),
    };
    let variants = match a.variant.as_str() {
        _ if a.isolated => Variants::Named(Vec::new()),
        "all" => Variants::All,
        "default" => Variants::Default,
        names => Variants::Named(args::list(&[names.to_string()])),
    };
    if let Variants::Named(names) = &variants {
        check_named_dtypes(names, &specs, &devices)?;
    }
    if !(a.budget >= 0.0 && a.budget.is_finite() && a.budget <= 3600.0) {
        return Err(Error::InvalidArgument {
            op: "bench",
            why: format!("--budget {} must be a number of seconds from 0 to 3600", a.budget),
        });
    }
    if !(a.max_row_time > 0.0 && a.max_row_time.is_finite() && a.max_row_time <= 86_400.0) {
        return Err(Error::InvalidArgument {
            op: "bench",
            why: format!("--max-row-time {} must be a number of seconds above 0, at most a day", a.max_row_time),
        });
    }
    let plan = Plan {
        warmup: a.warmup,
        repeat: a.repeat.max(1),
        min_runs: 3.min(a.repeat.max(1)),
        budget: Duration::from_secs_f64(a.budget),
        cold: a.cold,
        max_row: (!a.all_sizes).then(|| Duration::from_secs_f64(a.max_row_time)),
        seed: a.seed,
    };

    let rows_expected: usize =
        specs.iter().map(|s| devices.iter().map(|d| variants.choose(&d.variants(s.op)).len()).sum::<usize>()).sum();
    // The ceilings are measured (or read from the cache) before the first row, not inside it.
    devices.iter().for_each(|d| drop(d.roofline()));
    let bar = progress(rows_expected as u64);
    let (mut records, probe) = runner::run_probed(
        &devices,
        &specs,
        &variants,
        &plan,
        |next| bar.set_message(next.to_string()),
        |r| {
            bar.println(table::one_line(r));
            bar.inc(1);
        },
    )?;
    for not_run in &loaded.not_run {
        crate::kernels::merge(&mut records, not_run.rows(&specs));
    }
    for (spec, file) in &loaded.isolated {
        bar.set_message(format!("checking and timing {} in a child process", file.name));
        let rows = crate::kernels::in_child(file, &child_args(a, &specs, spec), kernel_timeout(a, specs.len()), &specs);
        rows.iter().for_each(|r| bar.println(table::one_line(r)));
        crate::kernels::merge(&mut records, rows);
    }
    let degraded: Vec<_> = devices.iter().flat_map(Device::baselines).filter(|b| b.degraded).collect();
    kernelab_bench::record::compare_with_baselines(&mut records, &degraded);
    bar.finish_and_clear();
    let settings = Settings {
        warmup: plan.warmup,
        repeat: plan.repeat,
        min_runs: plan.min_runs,
        budget_s: a.budget,
        cold: a.cold,
        threads: kernelab_cpu::threads(),
        batch_below_s: timing::BATCH_BELOW.as_secs_f64(),
        batch_target_s: timing::BATCH_TARGET.as_secs_f64(),
        noisy_spread: timing::NOISY_SPREAD,
        variants: a.variant.clone(),
        round_seed: Some(plan.seed),
        settle_s: 0.0,
    };
    let mut report = Report::new(std::env::args().collect(), settings, &devices, records);
    report.fast_p = fast_p(a, &devices, &ops, &report.records)?;
    report.probe = Some(probe);
    warn_if_cores_were_shared(&report);
    let mut text = format!("{}\n\n{}\n", table::render(&report.records), table::footer(&report));
    if let Some(summary) = &report.fast_p {
        text = format!("{text}\n{}\n", kernelab_bench::fast_p::render(summary));
    }
    if a.pivot.is_some() {
        text = format!("{}\n\n{text}", table::pivot(&report.records));
    }
    if a.isolated {
        // The parent prints these rows in its own table.
    } else if a.files.any_stdout() {
        eprint!("{text}");
    } else {
        outln!("{}", text.trim_end_matches('\n'));
    }
    a.files.write(|format| match format {
        Format::Json => Ok(format!("{}\n", report.to_json()?)),
        Format::Csv => Ok(table::csv(&report.records)),
        Format::Markdown => Ok(table::markdown(&report.records)),
    })?;
    if !a.isolated && !report.records.iter().any(|r| r.timed()) {
        return Err(Error::InvalidArgument {
            op: "bench",
            why: "no row could run (every one was skipped or failed to launch; the table says why)".into(),
        });
    }
    Ok(report.records.iter().filter(|r| matches!(r.status, Status::Fail | Status::Error)).count())
}

/// Refuses, before any row runs, `--variant` names that select variants of an op but none in a
/// storage dtype the run asks for (`--variant packed_avx2 --dtype bf16`: that op's bf16 rows
/// would all be left out, and a run of nothing else would fail only at its end). The error names
/// the variants of the op that each device has in that dtype.
fn check_named_dtypes(names: &[String], specs: &[Spec], devices: &[Device]) -> Result<()> {
    for spec in specs {
        let named = |dtype: Option<kernelab_tensor::Dtype>| {
            devices
                .iter()
                .flat_map(|d| d.variants(spec.op))
                .any(|v| names.iter().any(|n| n == v.name) && dtype.is_none_or(|dtype| v.precision.storage == dtype))
        };
        if !named(None) || named(Some(spec.dtype)) {
            continue;
        }
        let (op, dtype) = (spec.op, spec.dtype);
        let existing: Vec<String> = devices
            .iter()
            .map(|d| {
                let of: Vec<&str> =
                    d.variants(op).iter().filter(|v| v.precision.storage == dtype).map(|v| v.name).collect();
                format!("{}: {}", d.label(), if of.is_empty() { "none".to_string() } else { of.join(", ") })
            })
            .collect();
        return Err(Error::InvalidArgument {
            op: "variant",
            why: format!(
                "--variant {} names no {dtype} variant of {op}, and --dtype asks for {dtype}; the {dtype} variants \
                 of {op} are {}",
                names.join(","),
                existing.join("; ")
            ),
        });
    }
    Ok(())
}

/// The fast_p summary the run asks for (`--fast-p`, or the default p's when it has kernel files).
fn fast_p(
    a: &BenchArgs,
    devices: &[Device],
    ops: &[kernelab_tensor::Op],
    records: &[kernelab_bench::record::Record],
) -> Result<Option<kernelab_bench::fast_p::FastP>> {
    use kernelab_bench::fast_p::{Against, DEFAULT_P, summarize};
    if let Some(p) = a.fast_p.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
        return Err(Error::InvalidArgument { op: "bench", why: format!("--fast-p {p}: a speedup must be above 0") });
    }
    let p = match (a.fast_p.is_empty(), a.kernel.is_empty() || a.isolated) {
        (false, _) => a.fast_p.clone(),
        (true, false) => DEFAULT_P.to_vec(),
        (true, true) => return Ok(None),
    };
    Ok(Some(summarize(records, &Against::of(devices, ops), &p)))
}

/// How long a child process running a `.so` kernel over `shapes` shapes may take.
fn kernel_timeout(a: &BenchArgs, shapes: usize) -> Duration {
    let default = 60.0 + shapes as f64 * (3.0 * a.budget + 10.0);
    Duration::from_secs_f64(a.kernel_timeout.filter(|t| *t > 0.0 && t.is_finite()).unwrap_or(default).min(86_400.0))
}

/// The command line of the child process that checks and times the kernel `kernel` (as given)
/// over `specs` with this run's plan (the caller adds where its report goes).
fn child_args(a: &BenchArgs, specs: &[Spec], kernel: &str) -> Vec<String> {
    let mut args: Vec<String> = ["bench", "--isolated", "--kernel", kernel].map(String::from).to_vec();
    let numbers = [
        ("--warmup", a.warmup.to_string()),
        ("--repeat", a.repeat.to_string()),
        ("--budget", a.budget.to_string()),
        ("--seed", a.seed.to_string()),
        ("--max-row-time", a.max_row_time.to_string()),
    ];
    for (flag, value) in numbers {
        args.extend([flag.to_string(), value]);
    }
    if let Some(threads) = a.threads {
        args.extend(["--threads".to_string(), threads.to_string()]);
    }
    args.extend(a.all_sizes.then(|| "--all-sizes".to_string()));
    args.extend(a.cold.then(|| "--cold".to_string()));
    if let Some(first) = specs.first() {
        args.extend(["--op".to_string(), first.op.name().to_string()]);
    }
    for spec in specs {
        let layout = if spec.trans_a || spec.trans_b { format!(":{}", spec.transpose()) } else { String::new() };
        args.extend(["--shape".to_string(), format!("{}{layout}", table::dims_text(&spec.dims))]);
    }
    args
}

/// Says where a file went (on stderr, so stdout stays the table or the data).
pub(crate) fn announce(path: &std::path::Path) {
    if !kernelab_tensor::files::is_stdout(path) {
        eprintln!("wrote {}", path.display());
    }
}

/// The op × shape list: the default suite, or the requested ops at the requested (or default)
/// shapes, the preset's shapes first. A preset is refused beside an op it holds no shapes for.
/// With an `interpreted` device in the run (the emulated CUDA device, thousands of times slower
/// than a GPU), the defaults are [`args::interpreted_default_shapes`], and it says so. Each spec
/// comes once per requested storage type (`--dtype`).
fn specs(a: &BenchArgs, interpreted: bool) -> Result<Vec<Spec>> {
    let dtypes = args::dtypes(&a.dtype)?;
    let specs = specs_f32(a, interpreted)?;
    Ok(specs.into_iter().flat_map(|s| dtypes.iter().map(move |&d| s.clone().with_dtype(d))).collect())
}

/// [`specs`] in f32.
fn specs_f32(a: &BenchArgs, interpreted: bool) -> Result<Vec<Spec>> {
    use kernelab_tensor::Op;
    let defaults = a.shape.is_empty() && a.preset.is_none();
    if defaults && interpreted {
        eprintln!(
            "note: an interpreted device (the emulated CUDA device) is in this run: the default shapes are small ones \
             ({}); give --shape for others",
            args::describe_shapes(&args::interpreted_default_shapes)
        );
    }
    if a.op.is_empty() && defaults {
        if interpreted {
            return Ok([Op::Matmul, Op::Relu, Op::Softmax]
                .into_iter()
                .flat_map(|op| args::interpreted_default_shapes(op).into_iter().map(move |dims| Spec::new(op, &dims)))
                .collect());
        }
        return Ok(runner::default_suite());
    }
    let ops = if a.op.is_empty() { vec![Op::Matmul] } else { args::ops(&a.op)? };
    let others: Vec<&str> = ops.iter().filter(|&&op| op != Op::Matmul).map(|op| op.name()).collect();
    if let (Some(preset), false) = (&a.preset, others.is_empty()) {
        return Err(Error::InvalidArgument {
            op: "bench",
            why: format!(
                "--preset {preset} holds matmul products only (the seed models' training step), not shapes for {}: \
                 run it with --op matmul, and give the other ops a --shape in a run of their own",
                others.join(", ")
            ),
        });
    }
    let mut specs = Vec::new();
    for op in ops {
        let preset = if a.preset.is_some() { sweep::mlp_preset() } else { vec![] };
        let given = match (a.shape.is_empty(), preset.is_empty()) {
            (true, false) => vec![],
            (true, true) if interpreted => args::interpreted_default_shapes(op)
                .into_iter()
                .map(|dims| sweep::Shape { dims, trans_a: false, trans_b: false })
                .collect(),
            _ => args::shapes_for(op, &a.shape)?,
        };
        for shape in preset.into_iter().chain(given) {
            let spec = Spec { trans_a: shape.trans_a, trans_b: shape.trans_b, ..Spec::new(op, &shape.dims) };
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// The requested backends (each must open), or every available one; GPU backends on the adapter
/// whose name contains `adapter`, when given.
pub fn open_devices(names: &[String], adapter: Option<&str>) -> Result<Vec<Device>> {
    let names = args::list(names);
    if names.is_empty() {
        let Some(adapter) = adapter else { return Ok(backends::available()) };
        let gpus: Vec<Device> = [kernelab_tensor::BackendKind::Wgpu, kernelab_tensor::BackendKind::Cuda]
            .into_iter()
            .filter_map(|k| backends::open_with(k, Some(adapter)).ok())
            .collect();
        if gpus.is_empty() {
            return Err(Error::BackendUnavailable {
                backend: "wgpu/cuda".into(),
                reason: format!("no GPU adapter matches --adapter `{adapter}` (`kernelab devices` lists them)"),
            });
        }
        let cpu = backends::open(kernelab_tensor::BackendKind::Cpu)?;
        return Ok(std::iter::once(cpu).chain(gpus).collect());
    }
    names.iter().map(|n| backends::open_with(backends::kind(n)?, adapter)).collect()
}

/// A progress bar on stderr (hidden when stderr is not a terminal): the row being checked or the
/// round being timed, a clock that keeps ticking, and an ETA over the planned rows; finished rows
/// print above it (skipped ones as they are checked, timed ones as they leave the rounds).
fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {elapsed_precise}  eta {eta}  now: {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Says so when the rows' threads had to share the cores with other processes during the run
/// ([`kernelab_bench::contention`]).
fn warn_if_cores_were_shared(report: &Report) {
    let threads = report.settings.threads;
    let cpu_rows = report.records.iter().any(|r| r.threads.is_some());
    if let Some(c) = report.probe.as_ref().and_then(|p| p.contention.as_ref()).filter(|c| c.oversubscribes(threads))
        && cpu_rows
    {
        eprintln!(
            "warning: {}: the CPU rows' {threads} threads shared the cores with them and waited for a core with the \
             clock running, so their times are not their kernels' alone (`compare` calls such rows undecided)",
            c.describe()
        );
    }
}
