//! Data-parallel training: replicas of one model on several devices of any kinds. Each batch is
//! split between them (equally or by a weight per device), each replica computes the gradient of
//! the mean loss over its shard, the gradients are combined as `g = Σ_r (n_r/n)·g_r` (the gradient
//! of the mean over the whole batch), and every replica applies the same update.

use kernelab_tensor::{Device, Error, Grads, Result, Tensor};

use crate::Mlp;
use crate::train::{Fit, Objective, Trainer};

pub struct DataParallel {
    replicas: Vec<Trainer>,
    /// Relative share of each batch per replica.
    weights: Vec<f64>,
}

impl DataParallel {
    /// Copies `model` (and the objective's teacher) onto every device, each with its own Adam;
    /// `weights` are each device's share of a batch (see [`check_split`]; empty: equal shares).
    pub fn new(model: &Mlp, devices: &[Device], weights: &[f64], lr: f32, objective: &Objective) -> Result<Self> {
        check_split(devices.len(), weights)?;
        let weights = if weights.is_empty() { vec![1.0; devices.len()] } else { weights.to_vec() };
        let replicas =
            devices.iter().map(|d| Trainer::adam(model.to(d)?, lr, objective.to(d)?)).collect::<Result<_>>()?;
        Ok(Self { replicas, weights })
    }

    pub fn replicas(&self) -> &[Trainer] {
        &self.replicas
    }

    /// How many of `rows` each replica takes: proportional to its weight, the rounding remainder
    /// to the last replicas.
    pub fn shares(&self, rows: usize) -> Vec<usize> {
        let total: f64 = self.weights.iter().sum();
        let mut shares: Vec<usize> = self.weights.iter().map(|w| (rows as f64 * w / total).floor() as usize).collect();
        let mut left = rows - shares.iter().sum::<usize>();
        for s in shares.iter_mut().rev() {
            if left == 0 {
                break;
            }
            *s += 1;
            left -= 1;
        }
        shares
    }
}

impl DataParallel {
    /// Values in all parameters together: the length of a flat gradient.
    pub fn parameter_count(&self) -> usize {
        self.replicas[0].model().parameters().iter().map(Tensor::numel).sum()
    }

    /// Forward and backward on every replica at once (each on its share of the batch); returns
    /// `Σ_r (n_r/n)·g_r`, the gradient of the mean loss over the batch, flattened over the
    /// parameters in order (what one all-reduce sends).
    pub fn flat_gradient(&mut self, images: &[f32], labels: &[u32]) -> Result<Vec<f32>> {
        let rows = labels.len();
        let features = images.len() / rows.max(1);
        let shares = self.shares(rows);
        let mut offsets = vec![0];
        shares.iter().for_each(|s| offsets.push(offsets.last().unwrap_or(&0) + s));
        let grads: Vec<Option<Grads>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .replicas
                .iter_mut()
                .enumerate()
                .map(|(r, replica)| {
                    let (lo, hi) = (offsets[r], offsets[r + 1]);
                    let (x, y) = (&images[lo * features..hi * features], &labels[lo..hi]);
                    scope.spawn(move || if hi > lo { replica.gradients(x, y).map(Some) } else { Ok(None) })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(replica_panicked())))
                .collect::<Result<Vec<_>>>()
        })?;
        let params: Vec<Vec<Tensor>> = self.replicas.iter().map(|r| r.model().parameters()).collect();
        let mut flat = Vec::with_capacity(self.parameter_count());
        for (p, first) in params[0].iter().enumerate() {
            let mut sum = vec![0.0f32; first.numel()];
            for (r, g) in grads.iter().enumerate() {
                let Some(g) = g.as_ref().and_then(|g| g.get(&params[r][p])) else { continue };
                let w = shares[r] as f32 / rows as f32;
                sum.iter_mut().zip(g.to_vec()?).for_each(|(s, v)| *s += w * v);
            }
            flat.extend_from_slice(&sum);
        }
        Ok(flat)
    }

    /// Every replica takes the same optimizer step with the flat gradient `flat`.
    pub fn apply_flat(&mut self, flat: &[f32]) -> Result<()> {
        for replica in &mut self.replicas {
            let mut grads = Grads::default();
            let mut at = 0;
            for param in replica.model().parameters() {
                let n = param.numel();
                let slice = flat.get(at..at + n).ok_or_else(|| Error::InvalidArgument {
                    op: "data_parallel",
                    why: format!("a flat gradient of {} values for {} parameters", flat.len(), at + n),
                })?;
                grads.set(&param, Tensor::from_slice(slice, param.dims(), param.device())?);
                at += n;
            }
            replica.apply(&grads)?;
        }
        Ok(())
    }
}

impl Fit for DataParallel {
    fn step(&mut self, images: &[f32], labels: &[u32]) -> Result<()> {
        // All-reduce through the host: g = Σ_r (n_r/n)·g_r, the same sum on every replica.
        let flat = self.flat_gradient(images, labels)?;
        self.apply_flat(&flat)
    }

    fn take_loss_sum(&mut self) -> Result<f64> {
        self.replicas.iter_mut().map(|r| r.take_loss_sum()).sum()
    }

    fn peek_loss_sum(&mut self) -> Result<f64> {
        self.replicas.iter_mut().map(|r| r.peek_loss_sum()).sum()
    }

    fn model(&self) -> &Mlp {
        self.replicas[0].model()
    }

    fn into_model(self: Box<Self>) -> Mlp {
        // `new` refuses an empty device list: replica 0 exists.
        let mut replicas = self.replicas;
        replicas.swap_remove(0).into_model()
    }
}

/// Checks `--split`-style weights for `devices` devices: none (equal shares), or one weight a
/// device, each finite, above 0 and at most 10⁶, on two devices or more (one device has nothing
/// to split).
pub fn check_split(devices: usize, weights: &[f64]) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidArgument { op: "split", why });
    if devices == 0 {
        return bad("no devices to train on".into());
    }
    if weights.is_empty() {
        return Ok(());
    }
    if devices == 1 {
        return bad(format!(
            "--split {weights:?} divides each batch between several --backend devices; with one device there is \
             nothing to split (give as many backends as weights, e.g. --backend cpu,cpu --split 1,3)"
        ));
    }
    if weights.len() != devices {
        return bad(format!("--split has {} weights for {devices} devices; give one a device", weights.len()));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0 && **w <= 1e6)) {
        return bad(format!("--split weight {w} must be a finite number above 0 (at most 1e6)"));
    }
    Ok(())
}

fn replica_panicked() -> Error {
    Error::Device { backend: "data_parallel".into(), message: "a replica's thread panicked".into() }
}
