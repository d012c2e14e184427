//! A frozen model: a distillation teacher that nothing can train.

use std::path::Path;
use std::sync::Arc;

use kernelab_tensor::{Device, Result, Tape, Tensor};

use crate::Mlp;

/// A model whose values never change: made from a copy of its own (so no optimizer built on the
/// original holds its storage), with tensors that are constants rather than parameters (so
/// [`crate::Adam`] and [`crate::Sgd`] refuse them, and no tape tracks them). Cloning it shares
/// the one immutable copy, which is safe for that reason: students distilled from the same
/// teacher see the same teacher.
#[derive(Clone, Debug)]
pub struct Frozen(Arc<Mlp>);

impl Frozen {
    /// A frozen copy of `model` as it is now, on the same device.
    pub fn copy_of(model: &Mlp) -> Result<Self> {
        Ok(Self(Arc::new(model.constant_copy(model.device())?)))
    }

    /// A frozen model from a checkpoint written by [`Mlp::save`] (or PyTorch).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::copy_of(&Mlp::load(path, device)?)
    }

    /// The same frozen values on `device` (this teacher itself when it already lives there).
    pub fn to(&self, device: &Device) -> Result<Self> {
        if self.0.device().same_as(device) {
            return Ok(self.clone());
        }
        Ok(Self(Arc::new(self.0.constant_copy(device)?)))
    }

    /// The same frozen values stored as `dtype` (this teacher itself when already stored so).
    pub fn to_dtype(&self, dtype: kernelab_tensor::Dtype) -> Result<Self> {
        if self.0.dtype() == dtype {
            return Ok(self.clone());
        }
        Self::copy_of(&self.0.to_dtype(dtype)?)
    }

    /// The model, to read: evaluate, save, describe. Its tensors are constants (see above).
    pub fn model(&self) -> &Mlp {
        &self.0
    }

    /// The logits for a batch `x`, without a tape: `x ↦ W_L·relu(…relu(W_1·x + b_1)…) + b_L`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(&mut Tape::no_grad(), x)
    }
}
