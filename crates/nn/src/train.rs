//! Training: one step (upload a batch, forward, backward, update; the loss stays on the device),
//! the epoch loop with validation, and evaluation without a tape.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use kernelab_tensor::{Device, Dtype, Error, Grads, Labels, Result, Tape, Tensor};

use crate::MixedAdam;
use crate::data::{Dataset, epoch_order};
use crate::optim::{Adam, Optimizer};
use crate::{Frozen, Mlp};

/// What a step minimizes.
///
/// Cloning shares the teacher of [`Objective::Distill`], which is [`Frozen`]: nothing trains it.
#[derive(Clone, Debug)]
pub enum Objective {
    /// Mean cross-entropy of the logits against the labels.
    CrossEntropy,
    /// Knowledge distillation from a frozen teacher at temperature `T`:
    /// `α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1−α)·CE(student, labels)`.
    Distill { teacher: Frozen, temperature: f32, alpha: f32 },
}

impl Objective {
    /// The scalar loss of `model` on a batch, recorded on `tape` (the teacher runs without one).
    pub fn loss(&self, tape: &mut Tape, model: &Mlp, x: &Tensor, labels: &Labels) -> Result<Tensor> {
        let logits = model.forward(tape, x)?;
        match self {
            Objective::CrossEntropy => tape.cross_entropy(&logits, labels),
            Objective::Distill { teacher, temperature: t, alpha } => {
                let soft_targets = teacher.forward(x)?.scale(1.0 / t)?.softmax()?;
                let kl = tape.kl_div(&logits, &soft_targets, *t)?;
                let ce = tape.cross_entropy(&logits, labels)?;
                let soft = tape.scale(&kl, alpha * t * t)?;
                let hard = tape.scale(&ce, 1.0 - alpha)?;
                tape.add(&soft, &hard)
            }
        }
    }

    /// The same objective with its teacher stored as `dtype` (a student trained in bf16 is
    /// taught by a bf16 teacher: both read the same narrow batch).
    pub fn to_dtype(&self, dtype: Dtype) -> Result<Self> {
        Ok(match self {
            Objective::CrossEntropy => Objective::CrossEntropy,
            Objective::Distill { teacher, temperature, alpha } => {
                Objective::Distill { teacher: teacher.to_dtype(dtype)?, temperature: *temperature, alpha: *alpha }
            }
        })
    }

    /// The same objective with its teacher on `device`.
    pub fn to(&self, device: &Device) -> Result<Self> {
        Ok(match self {
            Objective::CrossEntropy => Objective::CrossEntropy,
            Objective::Distill { teacher, temperature, alpha } => {
                Objective::Distill { teacher: teacher.to(device)?, temperature: *temperature, alpha: *alpha }
            }
        })
    }
}

/// One model, its optimizer and objective on one device.
pub struct Trainer {
    model: Mlp,
    optimizer: Box<dyn Optimizer + Send>,
    objective: Objective,
    tape: Tape,
    /// `Σ rows·loss` over the steps since the last [`Trainer::take_loss_sum`], kept on the device.
    loss_sum: Tensor,
    /// The model's output width, the number of classes its labels index.
    classes: usize,
}

impl Trainer {
    /// A trainer of `model` by `optimizer`, which must have been built on `model.parameters()`.
    pub fn new(model: Mlp, optimizer: Box<dyn Optimizer + Send>, objective: Objective) -> Result<Self> {
        let loss_sum = Tensor::zeros(&[], model.device())?;
        let classes = model.widths().last().copied().unwrap_or(1);
        Ok(Self { model, optimizer, objective, tape: Tape::new(), loss_sum, classes })
    }

    /// A trainer of `model` by Adam at learning rate `lr` over the model's own parameters.
    pub fn adam(model: Mlp, lr: f32, objective: Objective) -> Result<Self> {
        let adam = Adam::new(model.parameters(), lr)?;
        Self::new(model, Box::new(adam), objective)
    }

    /// A trainer of `model` (f32) in `dtype`: plain [`Trainer::adam`] for f32; for bf16 or f16 a
    /// working copy in that dtype trained by [`MixedAdam`] over `model` as the f32 masters, with
    /// the objective's teacher in `dtype` too (see [`crate::mixed`]).
    pub fn adam_as(model: Mlp, dtype: Dtype, lr: f32, objective: Objective) -> Result<Self> {
        if !dtype.is_narrow() {
            return Self::adam(model, lr, objective);
        }
        crate::mixed::check_dtype(model.device(), dtype)?;
        let (working, mixed) = MixedAdam::new(model, dtype, lr)?;
        Self::new(working, Box::new(mixed), objective.to_dtype(dtype)?)
    }

    pub fn device(&self) -> &Device {
        self.model.device()
    }

    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// The f32 master weights of a mixed-precision run; the model itself otherwise.
    pub fn masters(&self) -> &Mlp {
        self.optimizer.masters().unwrap_or(&self.model)
    }

    /// The model, the trainer (and its optimizer) spent: the f32 masters of a mixed-precision
    /// run (what a checkpoint saves), the model itself otherwise.
    pub fn into_model(self) -> Mlp {
        let Self { model, optimizer, .. } = self;
        optimizer.into_masters().unwrap_or(model)
    }

    /// What the run's precision did since the last call (see [`PrecisionLog`]): the skipped
    /// steps and the masters' values that overflow the working dtype (one download of each).
    pub fn take_precision(&mut self) -> Result<PrecisionLog> {
        let dtype = self.model.dtype();
        let overflows = if dtype.is_narrow() { self.masters().overflows_in(dtype)? } else { 0 };
        let skipped_steps = self.optimizer.take_skipped_steps();
        Ok(PrecisionLog { dtype, skipped_steps, loss_scale: self.optimizer.loss_scale(), overflows })
    }

    /// Forward and backward on one batch, in the model's dtype: the gradients (of the loss times
    /// the optimizer's loss scale), and the rows' loss (widened to f32) added to the running sum.
    pub fn gradients(&mut self, images: &[f32], labels: &[u32]) -> Result<Grads> {
        let rows = labels.len();
        let device = self.device().clone();
        let dtype = self.model.dtype();
        let x = Tensor::from_slice_as(images, &[rows, images.len() / rows.max(1)], dtype, &device)?;
        let labels = Labels::new(labels, self.classes, &device)?;
        self.tape.clear();
        let loss = self.objective.loss(&mut self.tape, &self.model, &x, &labels)?;
        let loss_f32 = if dtype.is_narrow() { loss.to_dtype(Dtype::F32)? } else { loss.clone() };
        self.loss_sum.axpy_(rows as f32, &loss_f32)?;
        let scale = self.optimizer.loss_scale();
        if scale == 1.0 {
            return self.tape.backward(&loss);
        }
        let scaled = self.tape.scale(&loss, scale)?;
        self.tape.backward(&scaled)
    }

    /// Updates the parameters from `grads`.
    pub fn apply(&mut self, grads: &Grads) -> Result<()> {
        self.optimizer.step(grads)
    }

    /// The summed loss since the last call (one download), then zero.
    pub fn take_loss_sum(&mut self) -> Result<f64> {
        let sum = self.loss_sum.item()?;
        self.loss_sum.fill_(0.0)?;
        Ok(f64::from(sum))
    }
}

/// Anything the epoch loop can drive: one device, or several in data parallel.
pub trait Fit {
    /// One optimization step on a host batch.
    fn step(&mut self, images: &[f32], labels: &[u32]) -> Result<()>;
    /// The summed per-sample training loss since the last call.
    fn take_loss_sum(&mut self) -> Result<f64>;
    /// The same sum without resetting it (this process's share of a distributed run), for a
    /// progress display.
    fn peek_loss_sum(&mut self) -> Result<f64> {
        Ok(f64::NAN)
    }
    /// The model to evaluate (replica 0 in data parallel).
    fn model(&self) -> &Mlp;
    /// The trained model (replica 0 in data parallel), the learner spent.
    fn into_model(self: Box<Self>) -> Mlp;
    /// Whether this process evaluates and logs (rank 0 of a distributed run does, the others not).
    fn evaluates(&self) -> bool {
        true
    }
    /// Processes training together (the MPI world size; 1 in one process).
    fn world_size(&self) -> usize {
        1
    }
    /// Seconds spent in gradient all-reduces across processes since the last call.
    fn take_allreduce_seconds(&mut self) -> f64 {
        0.0
    }
    /// What the precision did since the last call (f32, nothing skipped, by default).
    fn take_precision(&mut self) -> Result<PrecisionLog> {
        Ok(PrecisionLog::default())
    }
}

impl Fit for Trainer {
    fn step(&mut self, images: &[f32], labels: &[u32]) -> Result<()> {
        let grads = self.gradients(images, labels)?;
        self.apply(&grads)
    }

    fn take_loss_sum(&mut self) -> Result<f64> {
        Trainer::take_loss_sum(self)
    }

    fn peek_loss_sum(&mut self) -> Result<f64> {
        Ok(f64::from(self.loss_sum.item()?))
    }

    fn model(&self) -> &Mlp {
        &self.model
    }

    fn into_model(self: Box<Self>) -> Mlp {
        Trainer::into_model(*self)
    }

    fn take_precision(&mut self) -> Result<PrecisionLog> {
        Trainer::take_precision(self)
    }
}

/// Loss and accuracy of `model` on `data`, without a tape, in batches of `batch`.
pub fn evaluate(model: &Mlp, data: &Dataset, batch: usize) -> Result<(f64, f64)> {
    let device = model.device();
    let (mut loss, mut correct) = (0.0f64, 0usize);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        data.gather(chunk, &mut images, &mut labels);
        let x = Tensor::from_slice_as(&images, &[chunk.len(), data.features], model.dtype(), device)?;
        let logits = model.forward(&mut Tape::no_grad(), &x)?;
        let (rows, _) = logits.softmax_cross_entropy(&Labels::new(&labels, data.classes, device)?)?;
        loss += rows.to_vec()?.iter().map(|&l| f64::from(l)).sum::<f64>();
        let z = logits.to_vec()?;
        correct +=
            z.chunks(data.classes).zip(&labels).filter(|(row, label)| argmax(row) == Some(**label as usize)).count();
    }
    let n = data.len().max(1) as f64;
    Ok((loss / n, correct as f64 / n))
}

/// The index of the largest value; none for a row holding NaN (it predicts nothing, so it is never
/// counted as correct).
pub(crate) fn argmax(row: &[f32]) -> Option<usize> {
    if row.iter().any(|v| v.is_nan()) {
        return None;
    }
    Some(row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0)
}

/// One line of the training log, as JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    /// `model` (plain training), or `teacher`, `student`, `distilled` in a distillation run.
    pub model: String,
    /// The run's seed: of the shuffling and the initialization (a distillation's teacher is
    /// initialized from seed + 1000).
    #[serde(default)]
    pub seed: u64,
    pub epoch: usize,
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub epoch_s: f64,
    pub samples_per_s: f64,
    /// Processes that trained together (MPI ranks); 1 in one process.
    #[serde(default = "one")]
    pub world_size: usize,
    /// Seconds of the epoch spent all-reducing gradients across processes (0 in one process).
    #[serde(default)]
    pub allreduce_s: f64,
    /// The dtype of the weights, activations and gradients, the steps it skipped, its loss
    /// scale, its overflows (see [`PrecisionLog`]).
    #[serde(flatten)]
    pub precision: PrecisionLog,
}

/// What a run's precision did in an epoch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrecisionLog {
    /// The dtype of the weights, activations and gradients (f32 masters behind a narrow one).
    #[serde(default = "f32_dtype")]
    pub dtype: Dtype,
    /// Steps skipped for a non-finite gradient (f16's dynamic loss scaling).
    #[serde(default)]
    pub skipped_steps: usize,
    /// The loss scale at the epoch's end (1 unless f16).
    #[serde(default = "one_f32")]
    pub loss_scale: f32,
    /// Master values that are finite but ±∞ in `dtype` (f16 beyond ±65504) at the epoch's end:
    /// the working weights hold ±∞ there, counted here rather than flushed silently.
    #[serde(default)]
    pub overflows: usize,
}

impl Default for PrecisionLog {
    fn default() -> Self {
        Self { dtype: Dtype::F32, skipped_steps: 0, loss_scale: 1.0, overflows: 0 }
    }
}

fn f32_dtype() -> Dtype {
    Dtype::F32
}

fn one_f32() -> f32 {
    1.0
}

fn one() -> usize {
    1
}

/// How to run the epoch loop.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    /// The `model` field of the logs.
    pub name: String,
    /// Devices whose launch profile (see `Device::start_profile`) should hold the training steps
    /// only: profiling pauses while the epoch is evaluated.
    pub profiled: Vec<Device>,
    /// Go on when the loss or a parameter is NaN or infinite (for studying divergence); otherwise
    /// training stops with [`Error::Diverged`](kernelab_tensor::Error) naming the epoch and step.
    pub allow_nonfinite: bool,
}

/// Steps between checks of the running loss (one scalar download each).
const CHECK_EVERY: usize = 50;

/// Trains for `config.epochs` epochs over `train` (shuffled, the last partial batch included),
/// evaluating on `test` after each; `on_epoch` receives every log line as it is made.
pub fn fit(
    learner: &mut dyn Fit,
    train: &Dataset,
    test: &Dataset,
    config: &FitConfig,
    mut on_epoch: impl FnMut(&EpochLog),
) -> Result<Vec<EpochLog>> {
    let mut logs = Vec::new();
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for epoch in 1..=config.epochs {
        let order = epoch_order(train.len(), config.seed, epoch);
        let label = format!("{} epoch {epoch}/{}", config.name, config.epochs);
        let bar = if learner.evaluates() { progress_bar(order.len() as u64, &label) } else { ProgressBar::hidden() };
        let started = Instant::now();
        let (mut seen, mut steps) = (0usize, 0usize);
        let mut batches = order.chunks(config.batch.max(1)).peekable();
        while let Some(chunk) = batches.next() {
            train.gather(chunk, &mut images, &mut labels);
            if let Some(next) = batches.peek() {
                train.prefetch(next);
            }
            learner.step(&images, &labels)?;
            bar.inc(chunk.len() as u64);
            (seen, steps) = (seen + chunk.len(), steps + 1);
            // The running loss costs one scalar download: every CHECK_EVERY steps.
            if steps % CHECK_EVERY == 0 && (!bar.is_hidden() || !config.allow_nonfinite) {
                let running = learner.peek_loss_sum()? / seen as f64;
                bar.set_message(format!("{label}  loss {running:.4}"));
                if !running.is_finite() && !config.allow_nonfinite {
                    let at =
                        format!("in epoch {epoch} by step {steps} of {}", order.len().div_ceil(config.batch.max(1)));
                    return Err(Error::Diverged { at, what: format!("the running training loss is {running}") });
                }
            }
        }
        let train_loss = learner.take_loss_sum()? / train.len().max(1) as f64;
        if !config.allow_nonfinite {
            let bad_parameter = learner
                .model()
                .parameters()
                .iter()
                .try_fold(false, |bad, p| Ok::<_, Error>(bad || p.to_vec()?.iter().any(|v| !v.is_finite())))?;
            if !train_loss.is_finite() || bad_parameter {
                let what = if bad_parameter {
                    format!("a parameter is NaN or infinite (training loss {train_loss})")
                } else {
                    format!("the training loss is {train_loss}")
                };
                return Err(Error::Diverged { at: format!("in epoch {epoch} (at its end, step {steps})"), what });
            }
        }
        let epoch_s = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let allreduce_s = learner.take_allreduce_seconds();
        let precision = learner.take_precision()?;
        config.profiled.iter().for_each(|d| d.pause_profile(true));
        let (test_loss, test_acc) =
            if learner.evaluates() { evaluate(learner.model(), test, 1000)? } else { (f64::NAN, f64::NAN) };
        config.profiled.iter().for_each(|d| d.pause_profile(false));
        let log = EpochLog {
            model: config.name.clone(),
            seed: config.seed,
            epoch,
            train_loss,
            test_loss,
            test_acc,
            epoch_s,
            samples_per_s: train.len() as f64 / epoch_s,
            world_size: learner.world_size(),
            allreduce_s,
            precision,
        };
        if learner.evaluates() {
            on_epoch(&log);
        }
        logs.push(log);
    }
    Ok(logs)
}

/// A progress bar over an epoch's samples on stderr, whenever stderr is a terminal (whatever
/// stdout is: the JSON lines may go to a file while a person watches): samples/s, the running
/// loss, the epoch's ETA.
fn progress_bar(samples: u64, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(samples), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} samples  {rate}  eta {eta}") {
        bar.set_style(style.with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} samples/s", state.per_sec());
        }));
    }
    bar.set_message(label.to_string());
    bar
}
