//! Mixed-precision training: weights, activations and gradients in a narrow dtype (bf16 or f16),
//! f32 master weights and moments in Adam, and dynamic loss scaling for f16.
//!
//! One step, with masters `W` (f32) and working weights `w = round(W)` (narrow):
//! 1. forward and backward run on `w` in the narrow dtype (every op's narrow variant reads and
//!    writes the narrow type and computes in f32; cross-entropy reads narrow logits), the backward
//!    pass started from `S·loss` where `S` is the loss scale (1 for bf16, whose exponent range is
//!    f32's; dynamic for f16, whose largest finite value is 65504 and smallest normal 2⁻¹⁴);
//! 2. f16: when any gradient holds NaN or ±∞, the step is skipped (no master or moment
//!    changes, Adam's step count stays), `S` halves and the skip is counted; after
//!    [`LossScale::growth_interval`] clean steps in a row `S` doubles, up to [`MAX_F16_SCALE`];
//! 3. each gradient `g` is widened to f32 and multiplied by `1/S` (a power of two: exact);
//! 4. Adam (the f32 arithmetic, as in f32 training) updates `W` from `g·(1/S)`;
//! 5. each master is narrowed (to nearest, ties to even) into its working weight.
//!
//! Steps 3–5 run one of two ways, with results equal bit for bit:
//! - **fused**, where the device offers it ([`Device::adam_narrow_variant`]; the CPU does, for
//!   bf16 and f16): one pass per parameter ([`adam_narrow_step_`]) reads the narrow gradient and
//!   writes master, moments and working weight, with no f32 gradient copy; step 2's check is a
//!   scan of the narrow gradients ([`all_finite`]) before any master changes;
//! - **composed** elsewhere (WGPU's f16, CUDA, or a CPU run that names a variant of `widen`,
//!   `scale`, `adam` or `narrow`): `widen` into f32 buffers kept across steps, `scale`, the
//!   check as one summed scalar, the f32 `adam` op, `narrow`.
//!
//! The masters are what a checkpoint of the run holds (the format stays f32).

use kernelab_tensor::{Device, Dtype, Error, Grads, Op, Result, Tensor, adam_narrow_step_, all_finite, resolve_for};

use crate::Mlp;
use crate::optim::{Adam, Optimizer};

/// The largest f16 loss scale, 2¹⁵: the backward pass starts from `S` itself stored in f16, and
/// 2¹⁶ would overflow it (f16's largest finite value is 65504).
pub const MAX_F16_SCALE: f32 = 32768.0;

/// Clean steps in a row after which an f16 loss scale doubles.
pub const GROWTH_INTERVAL: usize = 1000;

/// The loss scale `S` of a run: fixed at 1, or dynamic (f16), see the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct LossScale {
    scale: f32,
    dynamic: bool,
    /// Clean steps in a row after which a dynamic scale doubles.
    pub growth_interval: usize,
    clean: usize,
    skipped: usize,
}

impl LossScale {
    /// Dynamic from [`MAX_F16_SCALE`] for f16; fixed at 1 for bf16 and f32.
    pub fn for_dtype(dtype: Dtype) -> Self {
        let dynamic = dtype == Dtype::F16;
        let scale = if dynamic { MAX_F16_SCALE } else { 1.0 };
        Self { scale, dynamic, growth_interval: GROWTH_INTERVAL, clean: 0, skipped: 0 }
    }

    /// The current `S`.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Whether gradients are checked and the scale moves (f16).
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// Steps skipped since the last [`LossScale::take_skipped`].
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Returns the skipped steps counted so far and starts again from 0.
    pub fn take_skipped(&mut self) -> usize {
        std::mem::take(&mut self.skipped)
    }

    /// After a step whose gradients were `finite` or not: whether to apply it. A non-finite step
    /// is skipped, counted, and halves `S` (not below 2⁻²⁴, where f16 gradients would all
    /// vanish anyway); the `growth_interval`-th clean step in a row doubles it (to the cap).
    pub fn after_step(&mut self, finite: bool) -> bool {
        if !self.dynamic {
            return true;
        }
        if !finite {
            self.skipped += 1;
            self.clean = 0;
            self.scale = (self.scale * 0.5).max((-24f32).exp2());
            return false;
        }
        self.clean += 1;
        if self.clean >= self.growth_interval.max(1) {
            self.clean = 0;
            self.scale = (self.scale * 2.0).min(MAX_F16_SCALE);
        }
        true
    }
}

/// Adam over f32 masters for a model trained in a narrow dtype (see the module doc).
pub struct MixedAdam {
    masters: Mlp,
    /// The working model's parameters, narrow, in the masters' order.
    working: Vec<Tensor>,
    /// The working model's dtype.
    dtype: Dtype,
    /// The composed step's f32 gradient buffers, one per master, kept across steps (each step
    /// widens the narrow gradients into them); allocated on the first composed step.
    wide: Option<Grads>,
    adam: Adam,
    loss_scale: LossScale,
}

impl MixedAdam {
    /// The working copy of `masters` (an f32 model, kept as the masters) in `dtype`, and the
    /// optimizer that trains it at learning rate `lr`. `dtype` must be narrow.
    pub fn new(masters: Mlp, dtype: Dtype, lr: f32) -> Result<(Mlp, Self)> {
        if !dtype.is_narrow() || masters.dtype() != Dtype::F32 {
            return Err(Error::InvalidArgument {
                op: "mixed precision",
                why: format!("needs f32 masters and a narrow dtype, got {} masters and {dtype}", masters.dtype()),
            });
        }
        let working = masters.to_dtype(dtype)?;
        let adam = Adam::new(masters.parameters(), lr)?;
        let working_params = working.parameters();
        let opt =
            Self { working: working_params, dtype, wide: None, adam, loss_scale: LossScale::for_dtype(dtype), masters };
        Ok((working, opt))
    }

    /// Whether the step runs fused (see the module doc) on the model's device (read from the working
    /// weights' handles, which every step has at hand: no list of the masters is built per step).
    pub fn is_fused(&self) -> bool {
        self.working.first().is_some_and(|w| w.device().adam_narrow_variant(self.dtype).is_some())
    }

    /// The fused step: the check (f16) over the narrow gradients, then one pass per parameter.
    /// `None` where the device has no narrow check (the caller then composes the step).
    fn step_fused(&mut self, grads: &Grads) -> Result<Option<()>> {
        let mut finite = true;
        if self.loss_scale.is_dynamic() {
            for g in self.working.iter().filter_map(|w| grads.get(w)) {
                match all_finite(g)? {
                    Some(f) => finite &= f,
                    None => return Ok(None),
                }
            }
        }
        if !self.loss_scale.after_step(finite) {
            return Ok(Some(()));
        }
        let unscale = 1.0 / self.loss_scale.scale();
        let step = self.adam.next_step();
        for ((master, m, v), w) in self.adam.state().zip(&self.working) {
            if let Some(g) = grads.get(w) {
                adam_narrow_step_(master, g, m, v, w, step, unscale)?;
            }
        }
        Ok(Some(()))
    }

    /// The composed step: widen, scale, the check as one summed scalar (f16), `adam`, `narrow`.
    fn step_composed(&mut self, grads: &Grads) -> Result<()> {
        let unscale = 1.0 / self.loss_scale.scale();
        let masters = self.masters.parameters();
        if self.wide.is_none() {
            let mut wide = Grads::default();
            for master in &masters {
                wide.set(master, master.to_dtype(Dtype::F32)?);
            }
            self.wide = Some(wide);
        }
        let kept_all = self.wide.as_ref().ok_or_else(|| Error::InvalidArgument {
            op: "mixed precision",
            why: "internal: the f32 gradient buffers were not allocated".into(),
        })?;
        // This step's f32 gradients: handles on the kept buffers (no device allocation), only for
        // the parameters that have a gradient, as the narrow `grads` has them.
        let mut wide = Grads::default();
        let mut total: Option<Tensor> = None;
        for (w, master) in self.working.iter().zip(&masters) {
            let (Some(g), Some(kept)) = (grads.get(w), kept_all.get(master)) else { continue };
            g.convert_into_(kept)?;
            // Loss scaling (f16 only) unscales into a fresh tensor for this step.
            let g32 = if unscale != 1.0 { kept.scale(unscale)? } else { kept.clone() };
            if self.loss_scale.is_dynamic() {
                // NaN and ±∞ survive a sum, so one scalar download checks every gradient.
                let s = g32.sum()?;
                total = Some(match total {
                    Some(t) => t.add(&s)?,
                    None => s,
                });
            }
            wide.set(master, g32);
        }
        let finite = match &total {
            Some(t) => t.item()?.is_finite(),
            None => true,
        };
        if !self.loss_scale.after_step(finite) {
            return Ok(());
        }
        self.adam.step(&wide)?;
        for (w, master) in self.working.iter().zip(&masters) {
            master.convert_into_(w)?;
        }
        Ok(())
    }

    /// The f32 masters.
    pub fn masters(&self) -> &Mlp {
        &self.masters
    }

    pub fn loss_scale_state(&mut self) -> &mut LossScale {
        &mut self.loss_scale
    }
}

impl Optimizer for MixedAdam {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        if self.is_fused() && self.step_fused(grads)?.is_some() {
            return Ok(());
        }
        self.step_composed(grads)
    }

    fn loss_scale(&self) -> f32 {
        self.loss_scale.scale()
    }

    fn take_skipped_steps(&mut self) -> usize {
        self.loss_scale.take_skipped()
    }

    fn masters(&self) -> Option<&Mlp> {
        Some(&self.masters)
    }

    fn into_masters(self: Box<Self>) -> Option<Mlp> {
        Some(self.masters)
    }
}

/// The ops a training step launches in its storage dtype (`narrow` and `widen` store the narrow
/// side as theirs).
const TRAINING_OPS: [Op; 12] = [
    Op::Fill,
    Op::Matmul,
    Op::BiasAdd,
    Op::BiasRelu,
    Op::ColSum,
    Op::ReluBackward,
    Op::SoftmaxCrossEntropy,
    Op::Add,
    Op::Scale,
    Op::ScaleBy,
    Op::Narrow,
    Op::Widen,
];

/// Refuses to train in `dtype` on `device` unless it stores `dtype` and has an available variant
/// of that storage for every op a step launches: the error names the device and what is missing
/// (e.g. WGSL's lack of bf16, or an adapter without `shader-f16`).
pub fn check_dtype(device: &Device, dtype: Dtype) -> Result<()> {
    if !dtype.is_narrow() {
        return Ok(());
    }
    let refuse = |e: Error| Error::InvalidArgument {
        op: "train",
        why: format!("--dtype {dtype} cannot train on {device}: {e}"),
    };
    device.alloc_as(1, dtype).map_err(refuse)?;
    for op in TRAINING_OPS {
        resolve_for(device.kind(), op, &device.variants(op), None, Some(dtype)).map_err(refuse)?;
    }
    Ok(())
}
