//! `kernelab train` and `kernelab distill`: the seed workloads on real MNIST-format data.

use crate::out::outln;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use kernelab_nn::{
    Adam, DataParallel, Dataset, EpochLog, FASHION_MNIST_DIR, Fit, FitConfig, Mlp, Objective, Split, Trainer, fit,
};
use kernelab_tensor::{Device, Error, Result};

use crate::bench::open_devices;
use crate::cluster::{self, Comm};

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
    /// Data parallel: each device's share of a batch, comma-separated (default: equal).
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
    /// T ∈ {1, 2, 4} × alpha ∈ {0.1, …, 0.9} × 3 seeds on Fashion-MNIST (scripts/distill_sweep.sh,
    /// BENCHMARKS.md): T = 1, alpha = 0.3 gained the most over the label-only student.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Weight of the distillation term; 1 − alpha goes to the labels.
    #[arg(long, default_value_t = 0.3)]
    alpha: f32,
    /// Load the teacher instead of training it.
    #[arg(long)]
    teacher_checkpoint: Option<PathBuf>,
    /// Save the trained teacher to this file (safetensors; not stdout).
    #[arg(long)]
    save_teacher: Option<PathBuf>,
    /// Train the two students from this many seeds (--seed, --seed + 1, …) against the one
    /// teacher, and report each student's mean accuracy and the distilled one's gain with their
    /// spread over the seeds.
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

/// Training and test sets, the training set cut to `--limit`.
fn load_data(common: &CommonArgs, inputs: usize, classes: usize) -> Result<(Dataset, Dataset)> {
    let dir = data_dir(&common.data)?;
    let train = Dataset::load(&dir, Split::Train, classes)?;
    let test = Dataset::load(&dir, Split::Test, classes)?;
    if train.features != inputs {
        return Err(Error::InvalidArgument {
            op: "train",
            why: format!(
                "the model takes {inputs} inputs, the images in {} have {} pixels",
                dir.display(),
                train.features
            ),
        });
    }
    if test.features != inputs {
        return Err(Error::InvalidArgument {
            op: "train",
            why: format!(
                "the test images in {} have {} pixels, the training images and the model {inputs}",
                dir.display(),
                test.features
            ),
        });
    }
    let train = match common.limit {
        Some(n) => train.take(n),
        None => train,
    };
    Ok((train, test))
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
        let line = serde_json::to_string(log).unwrap_or_default();
        outln!("{line}");
        if let Some(file) = &mut self.0 {
            // A log line that cannot be written must not stop training; say so once per line.
            if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                eprintln!("warning: could not append to the JSON log: {e}");
            }
        }
    }
}

/// Trains `model` with `objective` on one device, data-parallel on several, or across the ranks
/// of an MPI world (each rank on its own devices).
#[allow(clippy::too_many_arguments)]
fn run_fit(
    model: Mlp,
    devices: &[Device],
    common: &CommonArgs,
    objective: Objective,
    name: &str,
    data: &(Dataset, Dataset),
    logger: &mut Logger,
    comm: Option<&Comm>,
) -> Result<(Mlp, Vec<EpochLog>)> {
    let profiled = if common.profile { devices.to_vec() } else { Vec::new() };
    profiled.iter().for_each(Device::start_profile);
    let config = FitConfig {
        epochs: common.epochs,
        batch: common.batch,
        seed: common.seed,
        name: name.into(),
        profiled,
        allow_nonfinite: common.allow_nonfinite,
    };
    let (model, logs) = fit_on(model, devices, common, objective, data, logger, comm, &config)?;
    if common.profile && cluster::leads(comm) {
        report_profiles(devices, common, name, data.0.len(), &logs)?;
    }
    Ok((model, logs))
}

/// The training itself, on whichever devices and processes.
#[allow(clippy::too_many_arguments)]
fn fit_on(
    model: Mlp,
    devices: &[Device],
    common: &CommonArgs,
    objective: Objective,
    data: &(Dataset, Dataset),
    logger: &mut Logger,
    comm: Option<&Comm>,
    config: &FitConfig,
) -> Result<(Mlp, Vec<EpochLog>)> {
    #[cfg(feature = "mpi")]
    if let Some(comm) = comm {
        let local = DataParallel::new(&model, devices, &common.split, common.lr, &objective)?;
        let mut learner = kernelab_nn::distributed::Distributed::new(local, comm, common.verify_replicas);
        let logs = fit(&mut learner, &data.0, &data.1, config, |l| logger.log(l))
            .unwrap_or_else(|e| cluster::fail_all(comm, e));
        return Ok((learner.model().clone(), logs));
    }
    #[cfg(not(feature = "mpi"))]
    if let Some(comm) = comm {
        match *comm {}
    }
    if devices.len() > 1 {
        let mut parallel = DataParallel::new(&model, devices, &common.split, common.lr, &objective)?;
        let logs = fit(&mut parallel, &data.0, &data.1, config, |l| logger.log(l))?;
        Ok((parallel.model().clone(), logs))
    } else {
        let adam = Adam::new(model.parameters(), common.lr)?;
        let mut trainer = Trainer::new(model, Box::new(adam), objective)?;
        let logs = fit(&mut trainer, &data.0, &data.1, config, |l| logger.log(l))?;
        Ok((trainer.model, logs))
    }
}

/// Prints each device's profile of the run `name` (and appends it to `--profile-json`).
fn report_profiles(devices: &[Device], common: &CommonArgs, name: &str, rows: usize, logs: &[EpochLog]) -> Result<()> {
    let steps = rows.div_ceil(common.batch.max(1)) * logs.len();
    let measured_s: f64 = logs.iter().map(|l| l.epoch_s).sum();
    let allreduce_s: f64 = logs.iter().map(|l| l.allreduce_s).sum();
    let mut profiles = Vec::new();
    for device in devices {
        let Some(profile) = device.take_profile() else { continue };
        let p = crate::profile::StepProfile {
            run: name.into(),
            device: format!("{} ({})", device.label(), device.info().name),
            steps,
            measured_s,
            rows: crate::profile::rows(&profile, steps, measured_s, allreduce_s),
        };
        eprintln!("\n{}", crate::profile::render(&p));
        profiles.push(p);
    }
    if devices.len() > 1 {
        eprintln!("(several devices run their shares at once: each profile is held against the whole step)");
    }
    // Every run of this process so far (distill has three), rewritten whole each time.
    static ALL: std::sync::Mutex<Vec<crate::profile::StepProfile>> = std::sync::Mutex::new(Vec::new());
    let mut all = ALL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    all.extend(profiles);
    if let Some(path) = &common.profile_json {
        let json = serde_json::to_string_pretty(&*all).unwrap_or_default();
        kernelab_tensor::files::write(path, format!("{json}\n").as_bytes())?;
    }
    Ok(())
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
/// distilled student's gain, as `mean ± sample standard deviation`.
fn distill_verdict(finals: &[(f64, f64)], temperature: f32, alpha: f32) -> String {
    let stats = |values: Vec<f64>| {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        (mean, sd)
    };
    let (plain, plain_sd) = stats(finals.iter().map(|f| f.0).collect());
    let (distilled, distilled_sd) = stats(finals.iter().map(|f| f.1).collect());
    let (gain, gain_sd) = stats(finals.iter().map(|f| f.1 - f.0).collect());
    let over = match finals.len() {
        1 => "one seed (--seeds N gives a spread)".to_string(),
        n => format!("{n} seeds, mean ± sd"),
    };
    format!(
        "students at T = {temperature}, alpha = {alpha}, {over}: label-only {plain:.2} ± {plain_sd:.2}%, \
         distilled {distilled:.2} ± {distilled_sd:.2}%, distilled − label-only {gain:+.2} ± {gain_sd:.2} points"
    )
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
    if let Some(w) = common.split.iter().find(|w| !(w.is_finite() && **w > 0.0 && **w <= 1e6)) {
        return bad(format!("--split weight {w} must be a finite number above 0 (at most 1e6)"));
    }
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
    if let (Some(world), true) = (cluster::describe(comm), cluster::leads(comm)) {
        let local: Vec<&str> = devices.iter().map(|d| d.kind().name()).collect();
        eprintln!("distributed: {world}, each on {} ({}); global batch {batch}", local.len(), local.join(","));
    }
}

pub fn train(a: &TrainArgs) -> Result<()> {
    check_common(&a.common, &[("--save", &a.save)], &[])?;
    let comm = cluster::start(a.common.distributed)?;
    let comm = comm.as_ref();
    let setup = (|| {
        let devices = open_devices(&a.common.backend, a.common.adapter.as_deref())?;
        prefer_variants(&devices, &a.common.variant)?;
        let model = Mlp::new(&a.model, a.common.seed, &devices[0])?;
        let widths = model.widths();
        let data = load_data(&a.common, widths[0], widths[widths.len() - 1])?;
        let logger = Logger::new(&a.common.json, cluster::leads(comm))?;
        Ok((devices, model, data, logger))
    })();
    let (devices, model, data, mut logger) = cluster::agree(comm, setup)?;
    let c = &a.common;
    cluster::check_same_run(comm, &model, c.batch, c.epochs, c.seed, c.lr, data.0.len(), data.1.len(), &[])?;
    announce_world(comm, &devices, c.batch);
    let (model, logs) =
        run_fit(model, &devices, &a.common, Objective::CrossEntropy, "model", &data, &mut logger, comm)?;
    if !cluster::leads(comm) {
        return Ok(());
    }
    summary("model", &model, &logs);
    if let Some(path) = &a.save {
        model.save(path)?;
        eprintln!("saved {}", path.display());
    }
    Ok(())
}

pub fn distill(a: &DistillArgs) -> Result<()> {
    check_common(
        &a.common,
        &[("--save-teacher", &a.save_teacher)],
        &[("--teacher-checkpoint", &a.teacher_checkpoint)],
    )?;
    if !(a.temperature.is_finite() && a.temperature > 0.0 && a.temperature <= 1e4 && (0.0..=1.0).contains(&a.alpha)) {
        return Err(Error::InvalidArgument {
            op: "distill",
            why: format!(
                "--temperature {} and --alpha {}: need a finite temperature in (0, 10000] and 0 ≤ alpha ≤ 1",
                a.temperature, a.alpha
            ),
        });
    }
    if !(1..=1000).contains(&a.seeds) {
        return Err(Error::InvalidArgument {
            op: "distill",
            why: format!("--seeds {}: train the students from 1 to 1000 seeds", a.seeds),
        });
    }
    let comm = cluster::start(a.common.distributed)?;
    let comm = comm.as_ref();
    let leads = cluster::leads(comm);
    let setup = (|| {
        let devices = open_devices(&a.common.backend, a.common.adapter.as_deref())?;
        prefer_variants(&devices, &a.common.variant)?;
        let student = Mlp::new(&a.student, a.common.seed, &devices[0])?;
        let widths = student.widths();
        let data = load_data(&a.common, widths[0], widths[widths.len() - 1])?;
        let logger = Logger::new(&a.common.json, leads)?;
        let loaded = a.teacher_checkpoint.as_ref().map(|path| Mlp::load(path, &devices[0])).transpose()?;
        if let (Some(teacher), Some(path)) = (&loaded, &a.teacher_checkpoint) {
            let (t, s) = (teacher.widths(), student.widths());
            if t.first() != s.first() || t.last() != s.last() {
                return Err(Error::InvalidArgument {
                    op: "distill",
                    why: format!(
                        "--teacher-checkpoint {} is a {} model; the student {} and the data need {} inputs and {} classes",
                        path.display(),
                        teacher.spec(),
                        student.spec(),
                        s[0],
                        s[s.len() - 1]
                    ),
                });
            }
        }
        Ok((devices, student, data, logger, loaded))
    })();
    let (devices, student, data, mut logger, loaded) = cluster::agree(comm, setup)?;
    let c = &a.common;
    let settings = [("--temperature", a.temperature), ("--alpha", a.alpha), ("--seeds", a.seeds as f32)];
    cluster::check_same_run(comm, &student, c.batch, c.epochs, c.seed, c.lr, data.0.len(), data.1.len(), &settings)?;
    announce_world(comm, &devices, c.batch);

    let teacher = match (loaded, &a.teacher_checkpoint) {
        (Some(teacher), Some(path)) => {
            cluster::check_same_run(comm, &teacher, c.batch, c.epochs, c.seed, c.lr, data.0.len(), data.1.len(), &[])?;
            if leads {
                let (loss, acc) = kernelab_nn::evaluate(&teacher, &data.1, 1000)?;
                eprintln!(
                    "teacher    {:<16} loaded from {}: test loss {loss:.4}, accuracy {:.2}%",
                    teacher.spec(),
                    path.display(),
                    100.0 * acc
                );
            }
            teacher
        }
        _ => {
            let teacher = Mlp::new(&a.teacher, a.common.seed.wrapping_add(1000), &devices[0])?;
            let (teacher, logs) =
                run_fit(teacher, &devices, &a.common, Objective::CrossEntropy, "teacher", &data, &mut logger, comm)?;
            if leads {
                summary("teacher", &teacher, &logs);
            }
            teacher
        }
    };
    if let (Some(path), true) = (&a.save_teacher, leads) {
        teacher.save(path)?;
    }
    let mut finals = Vec::new();
    for seed in (0..a.seeds).map(|i| a.common.seed.wrapping_add(i)) {
        let common = CommonArgs { seed, ..a.common.clone() };
        let student = Mlp::new(&a.student, seed, &devices[0])?;
        let (plain, plain_logs) =
            run_fit(student.clone(), &devices, &common, Objective::CrossEntropy, "student", &data, &mut logger, comm)?;
        let objective = Objective::Distill { teacher: teacher.clone(), temperature: a.temperature, alpha: a.alpha };
        let (distilled, distilled_logs) =
            run_fit(student, &devices, &common, objective, "distilled", &data, &mut logger, comm)?;
        if leads {
            eprintln!("seed {seed}:");
            summary("student", &plain, &plain_logs);
            summary("distilled", &distilled, &distilled_logs);
        }
        let last = |logs: &[EpochLog]| logs.last().map_or(f64::NAN, |l| 100.0 * l.test_acc);
        finals.push((last(&plain_logs), last(&distilled_logs)));
    }
    if leads {
        eprintln!("{}", distill_verdict(&finals, a.temperature, a.alpha));
    }
    Ok(())
}
