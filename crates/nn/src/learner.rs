//! One training run, on whatever it is given: the learner is chosen here — a [`Trainer`] on one
//! device, [`DataParallel`] on several, a [`Distributed`](crate::distributed::Distributed) rank
//! of an MPI world — and driven by [`fit`]. `kernelab train` is [`train`]; `kernelab distill`
//! runs [`run`] three ways (see [`crate::distill`]).

use kernelab_tensor::{Device, Dtype, Error, Result};

use crate::parallel::check_split;
use crate::train::{EpochLog, Fit, FitConfig, Objective, Trainer, fit};
use crate::world::{Comm, Field, agree, check_same_run, leads, or_abort};
use crate::{Data, DataParallel, Mlp, parse_spec, size};

/// Where and how every run of a command trains.
pub struct Plan<'a> {
    /// This process's devices; several train data-parallel (the first holds the models built).
    pub devices: &'a [Device],
    /// Each device's share of a batch (see [`check_split`]); empty for equal shares.
    pub split: &'a [f64],
    /// The MPI world this process is a rank of, if any.
    pub comm: Option<&'a Comm>,
    /// In a world: all-reduce a parameter checksum after every step and stop if the ranks differ.
    pub verify_replicas: bool,
    pub epochs: usize,
    /// Rows a step (the global batch in a world; the last partial batch of an epoch is kept).
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// The dtype of weights, activations and gradients: f32, or bf16/f16 with f32 masters
    /// ([`crate::mixed`]; one device only).
    pub dtype: Dtype,
    /// Go on when the loss or a parameter becomes NaN or infinite.
    pub allow_nonfinite: bool,
    /// Profile every kernel launch of the training steps on every device (see
    /// `Device::start_profile`); [`Observer::run_ended`] takes the profiles.
    pub profile: bool,
}

impl Plan<'_> {
    /// Whether this process evaluates, logs and writes (see [`leads`]).
    pub fn leads(&self) -> bool {
        leads(self.comm)
    }

    /// The settings every rank must share, for [`check_same_run`].
    pub fn fields(&self, seed: u64) -> Vec<Field> {
        vec![
            Field::count("--batch", self.batch as u64),
            Field::count("--epochs", self.epochs as u64),
            Field::count("--seed", seed),
            Field::real("--lr", self.lr),
        ]
    }

    /// Refuses a model `spec` that cannot train here: a parameter count past 64 bits, or more
    /// memory than is available for a replica on every device ([`size::training_bytes`]) and
    /// `extra` bytes besides (other models held at the same time).
    pub fn check_memory(&self, spec: &str, extra: u64) -> Result<()> {
        let widths = parse_spec(spec)?;
        let copies = self.devices.len().max(1) as u64;
        let need = size::training_bytes(&widths, self.batch)
            .and_then(|b| b.checked_mul(copies))
            .and_then(|b| b.checked_add(extra));
        let what = format!(
            "model {spec} at batch {} on {copies} device{} (parameters, their gradients, Adam's two moments, \
             the batch's activations{})",
            self.batch,
            if copies == 1 { "" } else { "s" },
            if extra > 0 { ", and the other models of the run" } else { "" }
        );
        size::check_fits(&what, &widths, need)
    }

    /// Collective in a world: a fresh model of `spec` seeded with `seed` on the first device,
    /// after the memory to train it is checked; every rank gets one or every rank stops.
    pub fn build(&self, spec: &str, seed: u64) -> Result<Mlp> {
        let built = self.check_memory(spec, 0).and_then(|()| Mlp::new(spec, seed, &self.devices[0]));
        agree(self.comm, built)
    }
}

/// What a caller sees of training as it goes; on the leading process only (see [`leads`]). Every
/// method does nothing unless overridden.
pub trait Observer {
    /// An epoch's log line, as it is made.
    fn epoch(&mut self, _log: &EpochLog) {}
    /// Run `name` ended with `model` after `logs` (where a caller takes the devices' profiles).
    fn run_ended(&mut self, _name: &str, _model: &Mlp, _logs: &[EpochLog]) -> Result<()> {
        Ok(())
    }
    /// A distillation's teacher is ready: trained (with its logs) or loaded (none).
    fn teacher(&mut self, _teacher: &crate::Frozen, _logs: Option<&[EpochLog]>) -> Result<()> {
        Ok(())
    }
    /// A distillation's two students of one seed are trained.
    fn students(&mut self, _students: &crate::distill::Students) -> Result<()> {
        Ok(())
    }
}

/// An observer that sees nothing.
impl Observer for () {}

/// One run: `model` trained for `objective`, its epochs logged as `name` with the shuffling
/// seeded by `seed`.
pub struct Run {
    pub name: &'static str,
    pub seed: u64,
    pub model: Mlp,
    pub objective: Objective,
}

/// The learner for `plan`: a rank of its world (splitting its share of each batch over its own
/// devices), else [`DataParallel`] over several devices, else a [`Trainer`] on the one. Each
/// learner owns its model and builds its optimizer on that model's parameters alone.
pub fn learner<'c>(plan: &Plan<'c>, model: Mlp, objective: Objective) -> Result<Box<dyn Fit + 'c>> {
    check_split(plan.devices.len(), plan.split)?;
    if plan.dtype.is_narrow() && (plan.devices.len() > 1 || plan.comm.is_some()) {
        return Err(Error::InvalidArgument {
            op: "train",
            why: format!(
                "--dtype {} trains on one device in one process; data-parallel and distributed training run f32 only",
                plan.dtype
            ),
        });
    }
    #[cfg(feature = "mpi")]
    if let Some(comm) = plan.comm {
        let local = DataParallel::new(&model, plan.devices, plan.split, plan.lr, &objective)?;
        return Ok(Box::new(crate::distributed::Distributed::new(local, comm, plan.verify_replicas)));
    }
    #[cfg(not(feature = "mpi"))]
    if let Some(comm) = plan.comm {
        match *comm {}
    }
    if plan.devices.len() > 1 {
        return Ok(Box::new(DataParallel::new(&model, plan.devices, plan.split, plan.lr, &objective)?));
    }
    Ok(Box::new(Trainer::adam_as(model, plan.dtype, plan.lr, objective)?))
}

/// Trains `run` as `plan` says, on `data`: the trained model and every epoch's log (logs of a
/// rank other than 0 carry no test figures). In a world, a failure ends every rank.
pub fn run(plan: &Plan, data: &Data, run: Run, observer: &mut dyn Observer) -> Result<(Mlp, Vec<EpochLog>)> {
    let Run { name, seed, model, objective } = run;
    let mut learner = or_abort(plan.comm, learner(plan, model, objective))?;
    let profiled = if plan.profile { plan.devices.to_vec() } else { Vec::new() };
    profiled.iter().for_each(Device::start_profile);
    let config = FitConfig {
        epochs: plan.epochs,
        batch: plan.batch,
        seed,
        name: name.into(),
        profiled,
        allow_nonfinite: plan.allow_nonfinite,
    };
    let logs = or_abort(plan.comm, fit(learner.as_mut(), &data.train, &data.test, &config, |l| observer.epoch(l)))?;
    let model = learner.into_model();
    if plan.leads() {
        or_abort(plan.comm, observer.run_ended(name, &model, &logs))?;
    }
    Ok((model, logs))
}

/// `kernelab train`: a model of `spec` initialized from `seed` (every rank of a world checked to
/// train the same run), trained on `data` with cross-entropy, logged as `model`.
pub fn train(
    plan: &Plan,
    data: &Data,
    spec: &str,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<(Mlp, Vec<EpochLog>)> {
    let model = plan.build(spec, seed)?;
    check_same_run(plan.comm, &model, data, plan.fields(seed))?;
    run(plan, data, Run { name: "model", seed, model, objective: Objective::CrossEntropy }, observer)
}
