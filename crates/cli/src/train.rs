//! `kernelab train` and `kernelab distill`: the seed workloads on real MNIST-format data.

use crate::out::outln;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use kernelab_nn::distill::{Distillation, Finals, Students, Teacher};
use kernelab_nn::world::{self, Comm};
use kernelab_nn::{Data, EpochLog, FASHION_MNIST_DIR, Frozen, Mlp, Observer, Plan, check_split, parse_spec};
use kernelab_tensor::{Device, Dtype, Error, Result};

use crate::bench::open_devices;

/// Flags shared by `train` and `distill`.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Backends to train on; several (`cpu,wgpu`, `cpu,cpu`) train data-parallel.
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    backend: Vec<String>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Mini-batch size (the last partial batch of an epoch is kept).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seeds the initialization and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// An MNIST-format folder (train-images-idx3-ubyte[.gz], …). Default: Debian's Fashion-MNIST.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    limit: Option<usize>,
    /// Data parallel: each --backend device's share of a batch, one weight a device, comma-separated
    /// (default: equal shares; an error with a single device, which has nothing to split).
    #[arg(long, value_delimiter = ',')]
    split: Vec<f64>,
    /// GPU adapter: the first whose name contains this (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Also append each epoch's JSON line to this file (`-`: stdout, where the lines go anyway;
    /// each is written once).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Train across processes and hosts, one rank per process under an MPI launcher
    /// (`mpirun -np 2 kernelab train --distributed`): each global batch is split over the ranks,
    /// then over each rank's --backend devices; rank 0 evaluates, logs and saves. Needs a build
    /// with `--features mpi`.
    #[arg(long)]
    distributed: bool,
    /// With --distributed: all-reduce a checksum of the parameters after every step and stop if
    /// any two ranks differ.
    #[arg(long, requires = "distributed")]
    verify_replicas: bool,
    /// Time every kernel launch of the training steps and print, after each run, where a step's
    /// time goes: op, variant, shape, launches per step, time, share, GFLOP/s, GB/s, and the
    /// host's remainder.
    #[arg(long)]
    profile: bool,
    /// With --profile: also write the profiles as JSON to this file (a file: stdout carries the
    /// epoch lines, and the file is rewritten after each run).
    #[arg(long, requires = "profile")]
    profile_json: Option<PathBuf>,
    /// Go on when the loss or a parameter becomes NaN or infinite (to study divergence); by default
    /// training stops with an error naming the epoch and step.
    #[arg(long)]
    allow_nonfinite: bool,
    /// The dtype of weights, activations and gradients: f32, or bf16/f16 with f32 master weights
    /// in Adam (f16 with dynamic loss scaling); on one device. Checkpoints hold the f32 masters.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Kernel variants to train with, as op=name pairs, comma-separated (e.g.
    /// `matmul=packed_avx2,softmax_cross_entropy=portable`); `kernelab list` shows them.
    #[arg(long, value_delimiter = ',')]
    variant: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab train --epochs 10                                   784-128-10 on Fashion-MNIST
  kernelab train --model 784-512-256-10 --backend cpu,wgpu --split 3,1
  kernelab train --epochs 1 --profile --variant matmul=packed_avx2
  kernelab train --dtype bf16                                  bf16 weights, f32 masters in Adam
  mpirun -np 2 kernelab train --distributed                    (a build with --features mpi)")]
pub struct TrainArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The MLP, as layer widths.
    #[arg(long, default_value = "784-128-10")]
    model: String,
    /// Save the trained model as safetensors (PyTorch `nn.Sequential` names), atomically, to
    /// this file (not stdout).
    #[arg(long)]
    save: Option<PathBuf>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab distill --epochs 10
  kernelab distill --alpha 0              the control: the distilled students equal the label-only ones (+0.00)
  kernelab distill --teacher-checkpoint teacher.safetensors --temperature 2 --alpha 0.5
  kernelab distill --epochs 1 --profile")]
pub struct DistillArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[arg(long, default_value = "784-512-256-10")]
    teacher: String,
    #[arg(long, default_value = "784-128-10")]
    student: String,
    /// Softmax temperature of the soft targets. The default and alpha's come from a sweep of
    /// T ∈ {1, 2, 4} × alpha ∈ {0, 0.1, …, 0.9} × 5 seeds on Fashion-MNIST, in kernelab and in
    /// PyTorch from the same teacher (scripts/distill_sweep.sh, BENCHMARKS.md): T = 1, alpha = 0.5
    /// had the largest mean gain over the label-only student in both, and no setting's gain was
    /// larger than its spread over the seeds (this teacher is barely better than its student).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Weight of the distillation term; 1 − alpha goes to the labels. 0 is the control: the
    /// distilled student then equals the label-only one.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Load the teacher instead of training it.
    #[arg(long)]
    teacher_checkpoint: Option<PathBuf>,
    /// Save the trained teacher to this file (safetensors; not stdout).
    #[arg(long)]
    save_teacher: Option<PathBuf>,
    /// Train the two students from this many seeds (--seed, --seed + 1, …) against the one
    /// teacher, and report each student's mean accuracy and the distilled one's gain with their
    /// spread over the seeds. Both students of a seed start from the same initial parameters (the
    /// distilled one from a copy), so at --alpha 0 they end equal: the control.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
}

/// The data folder: `--data`, else Debian's Fashion-MNIST, else an error that says how to get one.
fn data_dir(given: &Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir.clone()),
        None if Path::new(FASHION_MNIST_DIR).is_dir() => Ok(FASHION_MNIST_DIR.into()),
        None => Err(Error::InvalidArgument {
            op: "data",
            why: format!(
                "no --data given and {FASHION_MNIST_DIR} does not exist: install Debian's `dataset-fashion-mnist` \
                 package (apt-get install dataset-fashion-mnist) or pass --data DIR with any MNIST-format folder"
            ),
        }),
    }
}

/// Writes each log line to stdout (and to `--json`) as it comes.
struct Logger(Option<std::fs::File>);

impl Logger {
    /// A logger that writes (rank 0 of a distributed run, or a single process) or stays silent.
    /// `--json -` adds no file: the lines go to stdout anyway.
    fn new(path: &Option<PathBuf>, leads: bool) -> Result<Self> {
        let path = path.as_ref().filter(|p| !kernelab_tensor::files::is_stdout(p));
        if !leads {
            return Ok(Self(None));
        }
        let open = |p: &PathBuf| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| Error::Io { path: p.display().to_string(), source })
        };
        let file = path.map(open).transpose()?;
        Ok(Self(file))
    }

    fn log(&mut self, log: &EpochLog) {
        self.line(&serde_json::to_string(log).unwrap_or_default());
    }

    /// One JSON line to stdout and to `--json`.
    fn line(&mut self, line: &str) {
        outln!("{line}");
        if let Some(file) = &mut self.0 {
            // A log line that cannot be written must not stop training; say so once per line.
            if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                eprintln!("warning: could not append to the JSON log: {e}");
            }
        }
    }
}

/// Prints what training does as it goes (on the leading process only): each epoch's line, the
/// profiles of each run, the teacher and each seed's students.
struct Reporter<'a> {
    logger: Logger,
    common: &'a CommonArgs,
    devices: &'a [Device],
    data: &'a Data,
    /// Where a given teacher was loaded from, and where to save the teacher.
    teacher_from: Option<&'a Path>,
    save_teacher: Option<&'a Path>,
    /// What the payoff table needs: the teacher and its test accuracy (percent), and the first
    /// seed's students (every seed's students have the same cost).
    teacher: Option<(Frozen, f64)>,
    students: Option<(Mlp, Mlp)>,
}

impl Observer for Reporter<'_> {
    fn epoch(&mut self, log: &EpochLog) {
        self.logger.log(log);
    }

    fn run_ended(&mut self, name: &str, _model: &Mlp, logs: &[EpochLog]) -> Result<()> {
        if !self.common.profile {
            return Ok(());
        }
        let steps = self.data.train.len().div_ceil(self.common.batch.max(1)) * logs.len();
        crate::profile::report(self.devices, self.common.profile_json.as_deref(), name, steps, logs)
    }

    fn teacher(&mut self, teacher: &Frozen, logs: Option<&[EpochLog]>) -> Result<()> {
        let accuracy = match (logs, self.teacher_from) {
            (Some(logs), _) => {
                summary("teacher", teacher.model(), logs);
                logs.last().map_or(f64::NAN, |l| 100.0 * l.test_acc)
            }
            (None, from) => {
                let (loss, acc) = kernelab_nn::evaluate(teacher.model(), &self.data.test, 1000)?;
                let from = from.map_or(String::new(), |p| format!(" loaded from {}", p.display()));
                let spec = teacher.model().spec();
                eprintln!("teacher    {spec:<16}{from}: test loss {loss:.4}, accuracy {:.2}%", 100.0 * acc);
                100.0 * acc
            }
        };
        self.teacher = Some((teacher.clone(), accuracy));
        if let Some(path) = self.save_teacher {
            teacher.model().save_for_images(path, self.data.train.image_rows, self.data.train.image_cols)?;
        }
        Ok(())
    }

    fn students(&mut self, s: &Students) -> Result<()> {
        eprintln!("seed {}:", s.seed);
        summary("student", &s.label_only, &s.label_only_logs);
        summary("distilled", &s.distilled, &s.distilled_logs);
        if self.students.is_none() {
            self.students = Some((s.label_only.deep_copy()?, s.distilled.deep_copy()?));
        }
        Ok(())
    }
}

fn summary(name: &str, model: &Mlp, logs: &[EpochLog]) {
    if let Some(last) = logs.last() {
        let mean_epoch = logs.iter().map(|l| l.epoch_s).sum::<f64>() / logs.len() as f64;
        eprintln!(
            "{name:<10} {:<16} test accuracy {:.2}% after {} epochs, {:.3} s/epoch ({:.0} samples/s)",
            model.spec(),
            100.0 * last.test_acc,
            last.epoch,
            mean_epoch,
            last.samples_per_s
        );
    }
}

/// The students' test accuracies (label-only, distilled; percent) over the seeds, and the
/// distilled student's gain, each as `mean ± sample standard deviation` (the mean alone for one
/// seed, which has no spread).
fn distill_verdict(finals: &[Finals], temperature: f32, alpha: f32) -> String {
    let stats = |f: fn(&Finals) -> f64| {
        let (mean, sd) = kernelab_bench::stats::mean_and_sd(&finals.iter().map(f).collect::<Vec<_>>());
        if finals.len() < 2 {
            (format!("{mean:.2}"), format!("{mean:+.2}"))
        } else {
            (format!("{mean:.2} ± {sd:.2}"), format!("{mean:+.2} ± {sd:.2}"))
        }
    };
    let (plain, distilled) = (stats(|f| f.label_only).0, stats(|f| f.distilled).0);
    let gain = stats(|f| f.distilled - f.label_only).1;
    let over = match finals.len() {
        1 => "one seed (--seeds N gives a spread)".to_string(),
        n => format!("{n} seeds, mean ± sd"),
    };
    format!(
        "students at T = {temperature}, alpha = {alpha}, {over}: label-only {plain}%, distilled {distilled}%, \
         distilled − label-only {gain} points"
    )
}

/// Applies `--variant op=name,…` to every device (each must exist and be available there).
fn prefer_variants(devices: &[Device], pairs: &[String]) -> Result<()> {
    for pair in crate::args::list(pairs) {
        let (op, name) = pair.split_once('=').ok_or_else(|| Error::InvalidArgument {
            op: "variant",
            why: format!("`{pair}`: --variant takes op=name pairs, e.g. matmul=packed_avx2"),
        })?;
        let op: kernelab_tensor::Op = op.trim().parse()?;
        for device in devices {
            device.prefer_variant(op, name.trim())?;
        }
    }
    Ok(())
}

/// A path given by a flag, and the flag's name.
type Flagged<'a> = (&'a str, &'a Option<PathBuf>);

/// Every setting checked, and every output path found writable, before anything is loaded or
/// trained (a model is never lost to a path that turns out unwritable at the end), and no output
/// allowed to destroy an input (a dataset file, `inputs`), another output, or a file of another
/// kind: `checkpoints` replace only checkpoints, `--json` appends only to JSON lines.
fn check_common(common: &CommonArgs, checkpoints: &[Flagged], inputs: &[Flagged]) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidArgument { op: "train", why });
    if common.batch == 0 || common.epochs == 0 {
        return bad("--batch and --epochs must be at least 1".into());
    }
    if common.epochs > 100_000 {
        return bad(format!("--epochs {} is more than 100000", common.epochs));
    }
    if !(common.lr.is_finite() && common.lr > 0.0) {
        return bad(format!("--lr {} must be a finite number above 0", common.lr));
    }
    if common.limit == Some(0) {
        return bad("--limit 0 leaves no training images".into());
    }
    Dtype::parse(&common.dtype)?;
    use kernelab_tensor::files::{Kind, Paths};
    let mut paths = Paths::new();
    for file in data_dir(&common.data).map(|dir| kernelab_nn::data::files(&dir)).unwrap_or_default() {
        paths.input("--data", Some(&file));
    }
    for (flag, path) in inputs {
        paths.input(flag, path.as_deref());
    }
    let checkpoint =
        Kind::ReplacedIf { what: "a checkpoint (safetensors)", is: kernelab_nn::checkpoint::is_checkpoint };
    for (flag, path) in checkpoints {
        paths.file_output(flag, path.as_deref(), checkpoint, "a checkpoint is binary safetensors");
    }
    // `-` is stdout, which carries the epoch lines: `--json -` is those lines, written once.
    paths.output("--json", common.json.as_deref(), Kind::JsonLines);
    let rewritten = "standard output carries the epoch lines, and the profiles are rewritten after each run";
    paths.file_output("--profile-json", common.profile_json.as_deref(), Kind::Replaced, rewritten);
    paths.check()
}

/// The start-up line of a distributed run (rank 0): the world and each rank's devices.
fn announce_world(comm: Option<&Comm>, devices: &[Device], batch: usize) {
    if let (Some(world), true) = (world::describe(comm), world::leads(comm)) {
        let local: Vec<&str> = devices.iter().map(|d| d.kind().name()).collect();
        eprintln!("distributed: {world}, each on {} ({}); global batch {batch}", local.len(), local.join(","));
    }
}

/// Everything a run needs that can fail on one rank alone, agreed on by every rank: the devices
/// (with `--variant` applied and `--split` checked against them), the data for a model of
/// `widths`, the log.
fn setup(common: &CommonArgs, widths: &[usize], comm: Option<&Comm>) -> Result<(Vec<Device>, Data, Logger)> {
    let setup = (|| {
        let devices = open_devices(&common.backend, common.adapter.as_deref())?;
        prefer_variants(&devices, &common.variant)?;
        let dtype = Dtype::parse(&common.dtype)?;
        devices.iter().try_for_each(|d| kernelab_nn::mixed::check_dtype(d, dtype))?;
        check_split(devices.len(), &common.split)?;
        let data = Data::load(&data_dir(&common.data)?, widths[0], widths[widths.len() - 1], common.limit)?;
        let logger = Logger::new(&common.json, world::leads(comm))?;
        Ok((devices, data, logger))
    })();
    let setup = world::agree(comm, setup)?;
    announce_world(comm, &setup.0, common.batch);
    Ok(setup)
}

/// The nn crate's plan of a run from the flags.
fn plan<'a>(c: &'a CommonArgs, devices: &'a [Device], comm: Option<&'a Comm>) -> Plan<'a> {
    Plan {
        devices,
        split: &c.split,
        comm,
        verify_replicas: c.verify_replicas,
        epochs: c.epochs,
        batch: c.batch,
        lr: c.lr,
        dtype: Dtype::parse(&c.dtype).unwrap_or(Dtype::F32),
        allow_nonfinite: c.allow_nonfinite,
        profile: c.profile,
    }
}

pub fn train(a: &TrainArgs) -> Result<()> {
    check_common(&a.common, &[("--save", &a.save)], &[])?;
    let widths = parse_spec(&a.model)?;
    let comm = world::start(a.common.distributed)?;
    let comm = comm.as_ref();
    let (devices, data, logger) = setup(&a.common, &widths, comm)?;
    let mut reporter = Reporter {
        logger,
        common: &a.common,
        devices: &devices,
        data: &data,
        teacher_from: None,
        save_teacher: None,
        teacher: None,
        students: None,
    };
    let plan = plan(&a.common, &devices, comm);
    let (model, logs) = kernelab_nn::learner::train(&plan, &data, &a.model, a.common.seed, &mut reporter)?;
    if !plan.leads() {
        return Ok(());
    }
    summary("model", &model, &logs);
    if let Some(path) = &a.save {
        model.save_for_images(path, data.train.image_rows, data.train.image_cols)?;
        match plan.dtype {
            Dtype::F32 => eprintln!("saved {}", path.display()),
            d => eprintln!("saved {}: the f32 master weights of this {d} run (checkpoints hold f32)", path.display()),
        }
    }
    Ok(())
}

pub fn distill(a: &DistillArgs) -> Result<()> {
    check_common(
        &a.common,
        &[("--save-teacher", &a.save_teacher)],
        &[("--teacher-checkpoint", &a.teacher_checkpoint)],
    )?;
    let mut d = Distillation {
        teacher: Teacher::Train(a.teacher.clone()),
        student: a.student.clone(),
        temperature: a.temperature,
        alpha: a.alpha,
        seed: a.common.seed,
        seeds: a.seeds,
    };
    d.check_settings()?;
    let widths = parse_spec(&a.student)?;
    let comm = world::start(a.common.distributed)?;
    let comm = comm.as_ref();
    let (devices, data, logger) = setup(&a.common, &widths, comm)?;
    if let Some(path) = &a.teacher_checkpoint {
        let loaded = Frozen::load(path, &devices[0]).and_then(|teacher| {
            announce_conversion(path, teacher.model(), Dtype::parse(&a.common.dtype)?)?;
            d.teacher = Teacher::Given(teacher);
            d.check().map_err(|e| Error::InvalidArgument {
                op: "distill",
                why: format!("--teacher-checkpoint {}: {e}", path.display()),
            })
        });
        world::agree(comm, loaded)?;
    }
    let mut reporter = Reporter {
        logger,
        common: &a.common,
        devices: &devices,
        data: &data,
        teacher_from: a.teacher_checkpoint.as_deref(),
        save_teacher: a.save_teacher.as_deref(),
        teacher: None,
        students: None,
    };
    let plan = plan(&a.common, &devices, comm);
    let finals = kernelab_nn::distill::distill(&plan, &data, &d, &mut reporter)?;
    if plan.leads() {
        eprintln!("{}", distill_verdict(&finals, a.temperature, a.alpha));
        payoff(&mut reporter, &finals)?;
    }
    Ok(())
}

/// Says on stderr that the f32 checkpoint at `path` will run converted to a narrow `dtype`, and
/// how many of its values overflow that type (±∞ in it: counted, never flushed silently).
fn announce_conversion(path: &Path, model: &Mlp, dtype: Dtype) -> Result<()> {
    if dtype.is_narrow() {
        let overflows = model.overflows_in(dtype)?;
        eprintln!(
            "{}: converting the f32 checkpoint to {dtype} for this run (round to nearest even); \
             {overflows} values overflow {dtype} and become ±∞",
            path.display()
        );
    }
    Ok(())
}

/// The payoff table (see [`crate::payoff`]) on stderr, and its rows as JSON lines on stdout and
/// in `--json`.
fn payoff(reporter: &mut Reporter, finals: &[Finals]) -> Result<()> {
    let (Some((teacher, teacher_acc)), Some((label_only, distilled))) = (&reporter.teacher, &reporter.students) else {
        return Ok(());
    };
    use crate::payoff::{Entry, measure, render, timing};
    let entries = [
        Entry { run: "teacher", model: teacher.model(), accuracies: vec![*teacher_acc] },
        Entry { run: "student", model: label_only, accuracies: finals.iter().map(|f| f.label_only).collect() },
        Entry { run: "distilled", model: distilled, accuracies: finals.iter().map(|f| f.distilled).collect() },
    ];
    let rows = measure(&entries, &timing())?;
    eprintln!("{}", render(&rows));
    for row in &rows {
        reporter.logger.line(&serde_json::to_string(row).unwrap_or_default());
    }
    Ok(())
}
