//! Optimizers: Adam (PyTorch-equivalent, one fused kernel per parameter tensor) and plain SGD.

use kernelab_tensor::{AdamStep, Error, Grads, Result, Tensor, adam_step_};

use crate::Mlp;

/// Refuses a tensor that is not a parameter (`requires_grad` off): a constant such as a frozen
/// teacher's weights (see [`crate::Frozen`]) must never be updated.
fn check_trainable(optimizer: &'static str, params: &[Tensor]) -> Result<()> {
    match params.iter().position(|p| !p.is_requires_grad()) {
        None => Ok(()),
        Some(i) => Err(Error::InvalidArgument {
            op: optimizer,
            why: format!(
                "tensor {i} of {} (shape {}) is a constant, not a parameter: a frozen model cannot be trained",
                params.len(),
                params[i].shape()
            ),
        }),
    }
}

/// Updates parameters from their gradients.
pub trait Optimizer {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &Grads) -> Result<()>;

    /// The factor the loss is multiplied by before the backward pass (mixed precision's loss
    /// scale; 1 by default), which [`Optimizer::step`] divides back out.
    fn loss_scale(&self) -> f32 {
        1.0
    }

    /// Steps skipped for non-finite gradients since the last call (0 by default).
    fn take_skipped_steps(&mut self) -> usize {
        0
    }

    /// The f32 master weights, where the optimizer keeps them apart from the model it trains.
    fn masters(&self) -> Option<&Mlp> {
        None
    }

    /// The masters, the optimizer spent.
    fn into_masters(self: Box<Self>) -> Option<Mlp> {
        None
    }
}

/// Adam with bias correction, as `torch.optim.Adam` (no weight decay, no amsgrad).
pub struct Adam {
    params: Vec<Tensor>,
    /// First and second moments, one pair per parameter, on the parameter's device.
    moments: Vec<(Tensor, Tensor)>,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    steps: u32,
}

impl Adam {
    /// Adam over `params` (each must be a parameter, `requires_grad`) with PyTorch's defaults
    /// `β = (0.9, 0.999)`, `ε = 1e-8`.
    pub fn new(params: Vec<Tensor>, lr: f32) -> Result<Self> {
        check_trainable("adam", &params)?;
        let moments = params
            .iter()
            .map(|p| Ok((Tensor::zeros(p.dims(), p.device())?, Tensor::zeros(p.dims(), p.device())?)))
            .collect::<Result<_>>()?;
        Ok(Self { params, moments, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, steps: 0 })
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Counts one step and returns its constants (the first thing [`Optimizer::step`] does).
    pub(crate) fn next_step(&mut self) -> AdamStep {
        self.steps += 1;
        AdamStep { lr: self.lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps, step: self.steps }
    }

    /// Each parameter with its first and second moments, in the parameters' order.
    pub(crate) fn state(&self) -> impl Iterator<Item = (&Tensor, &Tensor, &Tensor)> {
        self.params.iter().zip(&self.moments).map(|(p, (m, v))| (p, m, v))
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        let step = self.next_step();
        for (param, (m, v)) in self.params.iter().zip(&self.moments) {
            if let Some(grad) = grads.get(param) {
                adam_step_(param, grad, m, v, step)?;
            }
        }
        Ok(())
    }
}

/// `p ← p − lr·g`.
pub struct Sgd {
    params: Vec<Tensor>,
    pub lr: f32,
}

impl Sgd {
    /// SGD over `params`, each of which must be a parameter (`requires_grad`).
    pub fn new(params: Vec<Tensor>, lr: f32) -> Result<Self> {
        check_trainable("sgd", &params)?;
        Ok(Self { params, lr })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        for param in &self.params {
            if let Some(grad) = grads.get(param) {
                param.axpy_(-self.lr, grad)?;
            }
        }
        Ok(())
    }
}
