//! The autograd tape: a Wengert list of the ops that touched a tracked tensor, walked in reverse by
//! [`Tape::backward`]. Every op's backward rule sits in [`Node::backward`], one short arm each,
//! headed by the formula it implements.
//!
//! A tensor is tracked when it [`requires_grad`](Tensor::requires_grad) or is the output of a
//! recorded op. Ops on untracked tensors, and every op on a [`Tape::no_grad`] tape, are computed
//! and not recorded: that is the inference path.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::{Error, Labels, Result, Tensor, TensorId};

/// One recorded op: its inputs, what backward needs saved, and its output.
#[derive(Clone)]
enum Node {
    Matmul {
        a: Tensor,
        b: Tensor,
        trans_a: bool,
        trans_b: bool,
        out: Tensor,
    },
    BiasAdd {
        x: Tensor,
        bias: Tensor,
        out: Tensor,
    },
    BiasRelu {
        x: Tensor,
        bias: Tensor,
        out: Tensor,
    },
    Relu {
        x: Tensor,
        out: Tensor,
    },
    Softmax {
        x: Tensor,
        out: Tensor,
    },
    LogSoftmax {
        x: Tensor,
        out: Tensor,
    },
    /// `grad` is `∂ mean(loss) / ∂ logits`, produced by the fused forward kernel.
    CrossEntropy {
        logits: Tensor,
        grad: Tensor,
        out: Tensor,
    },
    /// `grad` is `∂ mean(KL) / ∂ logits`, produced by the fused forward kernel.
    KlDiv {
        logits: Tensor,
        grad: Tensor,
        out: Tensor,
    },
    Sum {
        x: Tensor,
        out: Tensor,
    },
    Mean {
        x: Tensor,
        out: Tensor,
    },
    Scale {
        x: Tensor,
        alpha: f32,
        out: Tensor,
    },
    Add {
        a: Tensor,
        b: Tensor,
        out: Tensor,
    },
    Reshape {
        x: Tensor,
        out: Tensor,
    },
}

impl Node {
    fn out(&self) -> &Tensor {
        match self {
            Node::Matmul { out, .. }
            | Node::BiasAdd { out, .. }
            | Node::BiasRelu { out, .. }
            | Node::Relu { out, .. }
            | Node::Softmax { out, .. }
            | Node::LogSoftmax { out, .. }
            | Node::CrossEntropy { out, .. }
            | Node::KlDiv { out, .. }
            | Node::Sum { out, .. }
            | Node::Mean { out, .. }
            | Node::Scale { out, .. }
            | Node::Add { out, .. }
            | Node::Reshape { out, .. } => out,
        }
    }

    /// Propagates `dy = ∂L/∂out` to the inputs that need it, accumulating into `grads`.
    fn backward(&self, dy: &Tensor, grads: &mut Grads, needs: impl Fn(&Tensor) -> bool) -> Result<()> {
        match self {
            // C = op(A)·op(B):  dA = dC·op(B)ᵀ, dB = op(A)ᵀ·dC, each transposed back when its
            // operand was used transposed; no transpose is ever materialized.
            Node::Matmul { a, b, trans_a, trans_b, .. } => {
                if needs(a) {
                    let da = if *trans_a { b.matmul_t(dy, *trans_b, true)? } else { dy.matmul_t(b, false, !*trans_b)? };
                    grads.accumulate(a, da)?;
                }
                if needs(b) {
                    let db = if *trans_b { dy.matmul_t(a, true, *trans_a)? } else { a.matmul_t(dy, !*trans_a, false)? };
                    grads.accumulate(b, db)?;
                }
            }
            // y = x + 1·biasᵀ:  dx = dy, dbias = Σ_rows dy
            Node::BiasAdd { x, bias, .. } => {
                if needs(bias) {
                    grads.accumulate(bias, dy.col_sum(1.0)?)?;
                }
                if needs(x) {
                    grads.accumulate(x, dy.clone())?;
                }
            }
            // y = max(0, x + bias):  dz = dy·[y > 0], dx = dz, dbias = Σ_rows dz
            Node::BiasRelu { x, bias, out } => {
                let dz = out.relu_backward(dy)?;
                if needs(bias) {
                    grads.accumulate(bias, dz.col_sum(1.0)?)?;
                }
                if needs(x) {
                    grads.accumulate(x, dz)?;
                }
            }
            // y = max(0, x):  dx = dy·[x > 0]
            Node::Relu { x, .. } => grads.accumulate(x, x.relu_backward(dy)?)?,
            // y = softmax(x):  dx = y ⊙ (dy − Σ_c dy·y)
            Node::Softmax { x, out } => grads.accumulate(x, out.softmax_backward(dy)?)?,
            // y = log_softmax(x):  dx = dy − softmax(x)·Σ_c dy = dy − exp(y)·Σ_c dy
            Node::LogSoftmax { x, out } => grads.accumulate(x, out.log_softmax_backward(dy)?)?,
            // L = mean_r −log softmax(z_r)[label_r]:  dz = dL·(softmax(z) − onehot)/rows, saved as G
            Node::CrossEntropy { logits, grad, .. } => grads.accumulate(logits, grad.scale_by(dy, 1.0)?)?,
            // L = mean_r KL(q_r ‖ softmax(z_r/T)):  dz = dL·(softmax(z/T) − q)/(T·rows), saved as G
            Node::KlDiv { logits, grad, .. } => grads.accumulate(logits, grad.scale_by(dy, 1.0)?)?,
            // y = Σ x:  dx = dy·1
            Node::Sum { x, .. } => {
                grads.accumulate(x, Tensor::full_as(x.dims(), 1.0, x.dtype(), x.device())?.scale_by(dy, 1.0)?)?
            }
            // y = Σ x / n:  dx = dy·1/n
            Node::Mean { x, .. } => {
                let n = x.numel() as f32;
                grads.accumulate(x, Tensor::full_as(x.dims(), 1.0, x.dtype(), x.device())?.scale_by(dy, 1.0 / n)?)?
            }
            // y = α·x:  dx = α·dy
            Node::Scale { x, alpha, .. } => grads.accumulate(x, dy.scale(*alpha)?)?,
            // y = a + b:  da = dy, db = dy
            Node::Add { a, b, .. } => {
                if needs(a) {
                    grads.accumulate(a, dy.clone())?;
                }
                if needs(b) {
                    grads.accumulate(b, dy.clone())?;
                }
            }
            // y = x viewed with another shape:  dx = dy viewed with x's shape
            Node::Reshape { x, .. } => grads.accumulate(x, dy.reshape(x.dims())?)?,
        }
        Ok(())
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |t: &Tensor| format!("#{}", t.id());
        let t = |on: bool| if on { "ᵀ" } else { "" };
        match self {
            Node::Matmul { a, b, trans_a, trans_b, .. } => {
                write!(f, "matmul({}{}, {}{})", id(a), t(*trans_a), id(b), t(*trans_b))
            }
            Node::BiasAdd { x, bias, .. } => write!(f, "bias_add({}, {})", id(x), id(bias)),
            Node::BiasRelu { x, bias, .. } => write!(f, "bias_relu({}, {})", id(x), id(bias)),
            Node::Relu { x, .. } => write!(f, "relu({})", id(x)),
            Node::Softmax { x, .. } => write!(f, "softmax({})", id(x)),
            Node::LogSoftmax { x, .. } => write!(f, "log_softmax({})", id(x)),
            Node::CrossEntropy { logits, .. } => write!(f, "cross_entropy({}, labels)", id(logits)),
            Node::KlDiv { logits, .. } => write!(f, "kl_div({}, target)", id(logits)),
            Node::Sum { x, .. } => write!(f, "sum({})", id(x)),
            Node::Mean { x, .. } => write!(f, "mean({})", id(x)),
            Node::Scale { x, alpha, .. } => write!(f, "scale({}, {alpha})", id(x)),
            Node::Add { a, b, .. } => write!(f, "add({}, {})", id(a), id(b)),
            Node::Reshape { x, out } => write!(f, "reshape({}, {})", id(x), out.shape()),
        }
    }
}

/// Gradients by tensor, as [`Tape::backward`] returns them.
#[derive(Clone, Debug, Default)]
pub struct Grads(HashMap<TensorId, Tensor>);

impl Grads {
    /// `∂L/∂t`, if `t` took part in the loss and needed a gradient.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets the gradient of `t` to `g`, replacing any (an all-reduce writes combined gradients so).
    pub fn set(&mut self, t: &Tensor, g: Tensor) {
        self.0.insert(t.id(), g);
    }

    /// Adds `g` to the gradient of `t`. Gradients are never written in place, so one gradient
    /// tensor may safely stand for several inputs (as `add` and `bias_add` hand on `dy` itself).
    fn accumulate(&mut self, t: &Tensor, g: Tensor) -> Result<()> {
        let total = match self.0.remove(&t.id()) {
            Some(prev) => prev.add(&g)?,
            None => g,
        };
        self.0.insert(t.id(), total);
        Ok(())
    }
}

/// Records ops on tracked tensors and computes their gradients.
#[derive(Clone, Default)]
pub struct Tape {
    nodes: Vec<Node>,
    /// Outputs of recorded nodes (leaves are recognized by `requires_grad`).
    tracked: HashSet<TensorId>,
    no_grad: bool,
}

impl Tape {
    /// A recording tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tape that computes and records nothing: the inference path.
    pub fn no_grad() -> Self {
        Self { no_grad: true, ..Self::default() }
    }

    /// The number of recorded ops.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Forgets every recorded op, keeping the tape's mode (for reuse across training steps).
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.tracked.clear();
    }

    fn is_tracked(&self, t: &Tensor) -> bool {
        t.is_requires_grad() || self.tracked.contains(&t.id())
    }

    /// Records `node` when recording and any of `inputs` is tracked; returns the node's output.
    fn record(&mut self, inputs: &[&Tensor], node: Node) -> Tensor {
        let out = node.out().clone();
        if !self.no_grad && inputs.iter().any(|t| self.is_tracked(t)) {
            self.tracked.insert(out.id());
            self.nodes.push(node);
        }
        out
    }

    /// `a · b`; see [`Tensor::matmul`].
    pub fn matmul(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.matmul_t(a, b, false, false)
    }

    /// `op(a) · op(b)`; see [`Tensor::matmul_t`].
    pub fn matmul_t(&mut self, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        let out = a.matmul_t(b, trans_a, trans_b)?;
        Ok(self.record(&[a, b], Node::Matmul { a: a.clone(), b: b.clone(), trans_a, trans_b, out }))
    }

    pub fn bias_add(&mut self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let out = x.bias_add(bias)?;
        Ok(self.record(&[x, bias], Node::BiasAdd { x: x.clone(), bias: bias.clone(), out }))
    }

    pub fn bias_relu(&mut self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let out = x.bias_relu(bias)?;
        Ok(self.record(&[x, bias], Node::BiasRelu { x: x.clone(), bias: bias.clone(), out }))
    }

    pub fn relu(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = x.relu()?;
        Ok(self.record(&[x], Node::Relu { x: x.clone(), out }))
    }

    pub fn softmax(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = x.softmax()?;
        Ok(self.record(&[x], Node::Softmax { x: x.clone(), out }))
    }

    pub fn log_softmax(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = x.log_softmax()?;
        Ok(self.record(&[x], Node::LogSoftmax { x: x.clone(), out }))
    }

    /// The mean cross-entropy of `logits` (`rows × classes`) against `labels`, a scalar.
    pub fn cross_entropy(&mut self, logits: &Tensor, labels: &Labels) -> Result<Tensor> {
        let (rows, grad) = logits.softmax_cross_entropy(labels)?;
        let out = rows.mean()?;
        Ok(self.record(&[logits], Node::CrossEntropy { logits: logits.clone(), grad, out }))
    }

    /// The mean over rows of `KL(target ‖ softmax(logits / T))`, a scalar; `target` is constant.
    pub fn kl_div(&mut self, logits: &Tensor, target: &Tensor, temperature: f32) -> Result<Tensor> {
        let (rows, grad) = logits.kl_div(target, temperature)?;
        let out = rows.mean()?;
        Ok(self.record(&[logits], Node::KlDiv { logits: logits.clone(), grad, out }))
    }

    pub fn sum(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = x.sum()?;
        Ok(self.record(&[x], Node::Sum { x: x.clone(), out }))
    }

    pub fn mean(&mut self, x: &Tensor) -> Result<Tensor> {
        let out = x.mean()?;
        Ok(self.record(&[x], Node::Mean { x: x.clone(), out }))
    }

    pub fn scale(&mut self, x: &Tensor, alpha: f32) -> Result<Tensor> {
        let out = x.scale(alpha)?;
        Ok(self.record(&[x], Node::Scale { x: x.clone(), alpha, out }))
    }

    pub fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let out = a.add(b)?;
        Ok(self.record(&[a, b], Node::Add { a: a.clone(), b: b.clone(), out }))
    }

    pub fn reshape(&mut self, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        let out = x.reshape(dims)?;
        Ok(self.record(&[x], Node::Reshape { x: x.clone(), out }))
    }

    /// Walks the tape in reverse from the scalar `loss`, returning `∂loss/∂t` for every tracked
    /// tensor `t` that the loss depends on.
    pub fn backward(&self, loss: &Tensor) -> Result<Grads> {
        if loss.numel() != 1 {
            return Err(Error::NotScalar(loss.shape()));
        }
        if !self.is_tracked(loss) {
            return Err(Error::InvalidArgument {
                op: "backward",
                why: "the loss was not recorded on this tape (no input requires a gradient, or the tape is no_grad)"
                    .into(),
            });
        }
        let mut grads = Grads::default();
        grads.0.insert(loss.id(), Tensor::full_as(loss.dims(), 1.0, loss.dtype(), loss.device())?);
        for node in self.nodes.iter().rev() {
            let Some(dy) = grads.get(node.out()).cloned() else {
                continue;
            };
            node.backward(&dy, &mut grads, |t| self.is_tracked(t))?;
        }
        grads.0.retain(|id, _| !self.tracked.contains(id) || *id == loss.id());
        Ok(grads)
    }
}

impl fmt::Debug for Tape {
    /// One line per recorded op: `#12 = matmul(#3, #7ᵀ)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Tape ({} ops{})", self.nodes.len(), if self.no_grad { ", no_grad" } else { "" })?;
        for node in &self.nodes {
            write!(f, "  #{} = ", node.out().id())?;
            node.describe(f)?;
            writeln!(f)?;
        }
        Ok(())
    }
}
