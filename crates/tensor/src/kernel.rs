//! [`Kernel`]: one launch of one op, with its buffers and parameters. Backends receive a kernel whose
//! buffer lengths were already checked against its parameters ([`Kernel::check`]), so no backend
//! repeats that plumbing.

use crate::{DeviceBuffer, Error, Op, Result};

/// A read-only device buffer handed to a kernel.
pub type In<'a> = &'a dyn DeviceBuffer;
/// A device buffer a kernel writes (and, for accumulating or in-place kernels, reads).
pub type Out<'a> = &'a mut dyn DeviceBuffer;

/// The dimensions and scalars of `C ← α·op(A)·op(B) + β·C`, all matrices row-major.
///
/// `op(A)` is `m × k` and `op(B)` is `k × n`; with `trans_a` the buffer `A` holds a `k × m` matrix
/// (so `op(A) = Aᵀ`), with `trans_b` the buffer `B` holds `n × k`. `β = 0` overwrites `C` without
/// reading it (a NaN in `C` does not leak through); `β = 1` accumulates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
}

impl Gemm {
    /// `C ← op(A)·op(B)`.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, trans_a: false, trans_b: false, alpha: 1.0, beta: 0.0 }
    }

    pub fn trans(self, trans_a: bool, trans_b: bool) -> Self {
        Self { trans_a, trans_b, ..self }
    }

    pub fn scaled(self, alpha: f32, beta: f32) -> Self {
        Self { alpha, beta, ..self }
    }

    /// `2·m·n·k`: one multiply and one add per term of every dot product ([`Op::cost`]).
    pub fn flops(&self) -> f64 {
        Op::Matmul.cost(&[self.m, self.n, self.k], false).flops
    }
}

/// One step of bias-corrected Adam, as PyTorch computes it (`torch.optim.Adam`, no weight decay):
///
/// ```text
/// m ← β₁·m + (1−β₁)·g
/// v ← β₂·v + (1−β₂)·g²
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// The 1-based step number `t`.
    pub step: u32,
}

impl AdamStep {
    /// `1 − β₁ᵗ`, the first-moment bias correction (computed in f64, then rounded).
    pub fn bias_correction1(&self) -> f32 {
        (1.0 - f64::from(self.beta1).powi(self.step as i32)) as f32
    }

    /// `1 − β₂ᵗ`, the second-moment bias correction.
    pub fn bias_correction2(&self) -> f32 {
        (1.0 - f64::from(self.beta2).powi(self.step as i32)) as f32
    }
}

/// One launch of one op: buffers and parameters. Matrices are row-major with the stated shapes;
/// "rows × cols" ops treat every row independently.
pub enum Kernel<'a> {
    /// `y ← value` everywhere.
    Fill { y: Out<'a>, value: f32 },
    /// `C ← α·op(A)·op(B) + β·C` (see [`Gemm`]).
    Matmul { a: In<'a>, b: In<'a>, c: Out<'a>, gemm: Gemm },
    /// `y[r, c] ← x[r, c] + bias[c]`.
    BiasAdd { x: In<'a>, bias: In<'a>, y: Out<'a>, rows: usize, cols: usize },
    /// `y[r, c] ← max(0, x[r, c] + bias[c])`, the fused Linear epilogue.
    BiasRelu { x: In<'a>, bias: In<'a>, y: Out<'a>, rows: usize, cols: usize },
    /// `y[c] ← α·Σ_r x[r, c] (+ y[c] when accumulate)`; a full sum is `rows = n, cols = 1`.
    ColSum { x: In<'a>, y: Out<'a>, rows: usize, cols: usize, alpha: f32, accumulate: bool },
    /// `y ← max(0, x)`.
    Relu { x: In<'a>, y: Out<'a> },
    /// `dx ← dy · [x > 0]`.
    ReluBackward { x: In<'a>, dy: In<'a>, dx: Out<'a> },
    /// `y[r, :] ← exp(x[r, :] − max) / Σ exp(x[r, :] − max)`.
    Softmax { x: In<'a>, y: Out<'a>, rows: usize, cols: usize },
    /// `dx ← y ⊙ (dy − Σ_c dy·y)` per row, from the softmax output `y`.
    SoftmaxBackward { y: In<'a>, dy: In<'a>, dx: Out<'a>, rows: usize, cols: usize },
    /// `y[r, :] ← x[r, :] − max − ln Σ exp(x[r, :] − max)`.
    LogSoftmax { x: In<'a>, y: Out<'a>, rows: usize, cols: usize },
    /// `dx ← dy − exp(y) · Σ_c dy` per row, from the log-softmax output `y`.
    LogSoftmaxBackward { y: In<'a>, dy: In<'a>, dx: Out<'a>, rows: usize, cols: usize },
    /// Fused cross-entropy from logits: `loss[r] ← −log softmax(z[r])[label[r]]` and
    /// `grad[r, :] ← (softmax(z[r]) − onehot(label[r])) / rows`, the gradient of the mean loss.
    /// Labels are class indices stored as f32 (exact below 2²⁴) and were checked `< cols`.
    SoftmaxCrossEntropy { logits: In<'a>, labels: In<'a>, loss: Out<'a>, grad: Out<'a>, rows: usize, cols: usize },
    /// Fused KL divergence against soft targets `q` at temperature `T`, with `p = softmax(z/T)`:
    /// `loss[r] ← Σ_c q·(ln q − ln p)` (0·ln 0 = 0) and `grad[r, :] ← (p − q) / (T·rows)`, the
    /// gradient of the mean loss with respect to the logits `z`.
    KlDiv { logits: In<'a>, target: In<'a>, loss: Out<'a>, grad: Out<'a>, rows: usize, cols: usize, temperature: f32 },
    /// `y ← a + b`.
    Add { a: In<'a>, b: In<'a>, y: Out<'a> },
    /// `y ← α·x`.
    Scale { x: In<'a>, alpha: f32, y: Out<'a> },
    /// `y ← α·s[0]·x`, scaling by a scalar that lives on the device (an upstream gradient).
    ScaleBy { x: In<'a>, s: In<'a>, alpha: f32, y: Out<'a> },
    /// `y ← y + α·x`.
    Axpy { alpha: f32, x: In<'a>, y: Out<'a> },
    /// One Adam step over one parameter tensor (see [`AdamStep`]), updating `param`, `m`, `v`.
    Adam { param: Out<'a>, grad: In<'a>, m: Out<'a>, v: Out<'a>, step: AdamStep },
    /// `y ← round(x)`: f32 `x` to the narrow dtype of `y`, to nearest, ties to even (f16 overflow
    /// gives ±∞, NaN stays NaN).
    Narrow { x: In<'a>, y: Out<'a> },
    /// `y ← x`: the narrow `x` widened to f32 `y`, exactly.
    Widen { x: In<'a>, y: Out<'a> },
}

impl Kernel<'_> {
    pub fn op(&self) -> Op {
        match self {
            Kernel::Fill { .. } => Op::Fill,
            Kernel::Matmul { .. } => Op::Matmul,
            Kernel::BiasAdd { .. } => Op::BiasAdd,
            Kernel::BiasRelu { .. } => Op::BiasRelu,
            Kernel::ColSum { .. } => Op::ColSum,
            Kernel::Relu { .. } => Op::Relu,
            Kernel::ReluBackward { .. } => Op::ReluBackward,
            Kernel::Softmax { .. } => Op::Softmax,
            Kernel::SoftmaxBackward { .. } => Op::SoftmaxBackward,
            Kernel::LogSoftmax { .. } => Op::LogSoftmax,
            Kernel::LogSoftmaxBackward { .. } => Op::LogSoftmaxBackward,
            Kernel::SoftmaxCrossEntropy { .. } => Op::SoftmaxCrossEntropy,
            Kernel::KlDiv { .. } => Op::KlDiv,
            Kernel::Add { .. } => Op::Add,
            Kernel::Scale { .. } => Op::Scale,
            Kernel::ScaleBy { .. } => Op::ScaleBy,
            Kernel::Axpy { .. } => Op::Axpy,
            Kernel::Adam { .. } => Op::Adam,
            Kernel::Narrow { .. } => Op::Narrow,
            Kernel::Widen { .. } => Op::Widen,
        }
    }

    /// How many output elements the launch writes (columns for `col_sum`); 0 means it has nothing
    /// to do, and backends launch nothing.
    pub fn work(&self) -> usize {
        match self {
            Kernel::Fill { y, .. } | Kernel::Relu { y, .. } | Kernel::Scale { y, .. } | Kernel::ScaleBy { y, .. } => {
                y.len()
            }
            Kernel::Axpy { y, .. } | Kernel::Add { y, .. } | Kernel::BiasAdd { y, .. } | Kernel::BiasRelu { y, .. } => {
                y.len()
            }
            Kernel::ReluBackward { dx, .. } => dx.len(),
            Kernel::Narrow { y, .. } | Kernel::Widen { y, .. } => y.len(),
            Kernel::Matmul { c, .. } => c.len(),
            Kernel::Adam { param, .. } => param.len(),
            Kernel::ColSum { cols, .. } => *cols,
            Kernel::Softmax { rows, cols, .. }
            | Kernel::LogSoftmax { rows, cols, .. }
            | Kernel::SoftmaxBackward { rows, cols, .. }
            | Kernel::LogSoftmaxBackward { rows, cols, .. }
            | Kernel::SoftmaxCrossEntropy { rows, cols, .. }
            | Kernel::KlDiv { rows, cols, .. } => rows * cols,
        }
    }

    /// The launch's shape as the benchmark writes it ([`Op::cost`]): `[m, n, k]` for matmul,
    /// `[rows, cols]` for the row-wise ops, `[len]` for the elementwise ones.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Kernel::Matmul { gemm, .. } => vec![gemm.m, gemm.n, gemm.k],
            Kernel::BiasAdd { rows, cols, .. }
            | Kernel::BiasRelu { rows, cols, .. }
            | Kernel::ColSum { rows, cols, .. }
            | Kernel::Softmax { rows, cols, .. }
            | Kernel::LogSoftmax { rows, cols, .. }
            | Kernel::SoftmaxBackward { rows, cols, .. }
            | Kernel::LogSoftmaxBackward { rows, cols, .. }
            | Kernel::SoftmaxCrossEntropy { rows, cols, .. }
            | Kernel::KlDiv { rows, cols, .. } => vec![*rows, *cols],
            Kernel::Fill { y, .. } => vec![y.len()],
            Kernel::Relu { x, .. }
            | Kernel::ReluBackward { x, .. }
            | Kernel::Scale { x, .. }
            | Kernel::ScaleBy { x, .. }
            | Kernel::Axpy { x, .. }
            | Kernel::Narrow { x, .. }
            | Kernel::Widen { x, .. } => vec![x.len()],
            Kernel::Add { a, .. } => vec![a.len()],
            Kernel::Adam { param, .. } => vec![param.len()],
        }
    }

    /// Whether the launch adds into its output (matmul with `β ≠ 0`, col_sum with `accumulate`),
    /// as [`Op::cost`] takes it.
    pub fn accumulates(&self) -> bool {
        match self {
            Kernel::Matmul { gemm, .. } => gemm.beta != 0.0,
            Kernel::ColSum { accumulate, .. } => *accumulate,
            _ => false,
        }
    }

    /// Checks every buffer's length against the parameters and their dtypes against each other
    /// ([`Kernel::check_dtypes`]), so that backends may index freely.
    pub fn check(&self) -> Result<()> {
        self.check_dtypes()?;
        let op = self.op().name();
        let want = |buffer: &'static str, buf: &dyn DeviceBuffer, expected: usize| {
            if buf.len() == expected {
                Ok(())
            } else {
                Err(Error::BufferLength { op, buffer, len: buf.len(), expected })
            }
        };
        match self {
            Kernel::Fill { .. } => Ok(()),
            Kernel::Matmul { a, b, c, gemm: g } => {
                want("a", *a, g.m * g.k)?;
                want("b", *b, g.k * g.n)?;
                want("c", &**c, g.m * g.n)
            }
            Kernel::BiasAdd { x, bias, y, rows, cols } | Kernel::BiasRelu { x, bias, y, rows, cols } => {
                want("x", *x, rows * cols)?;
                want("bias", *bias, *cols)?;
                want("y", &**y, rows * cols)
            }
            Kernel::ColSum { x, y, rows, cols, .. } => {
                want("x", *x, rows * cols)?;
                want("y", &**y, *cols)
            }
            Kernel::Relu { x, y } | Kernel::Narrow { x, y } | Kernel::Widen { x, y } => want("y", &**y, x.len()),
            Kernel::ReluBackward { x, dy, dx } => {
                want("dy", *dy, x.len())?;
                want("dx", &**dx, x.len())
            }
            Kernel::Softmax { x, y, rows, cols } | Kernel::LogSoftmax { x, y, rows, cols } => {
                want("x", *x, rows * cols)?;
                want("y", &**y, rows * cols)
            }
            Kernel::SoftmaxBackward { y, dy, dx, rows, cols }
            | Kernel::LogSoftmaxBackward { y, dy, dx, rows, cols } => {
                want("y", *y, rows * cols)?;
                want("dy", *dy, rows * cols)?;
                want("dx", &**dx, rows * cols)
            }
            Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, rows, cols } => {
                want("logits", *logits, rows * cols)?;
                want("labels", *labels, *rows)?;
                want("loss", &**loss, *rows)?;
                want("grad", &**grad, rows * cols)
            }
            Kernel::KlDiv { logits, target, loss, grad, rows, cols, temperature } => {
                if !(*temperature > 0.0 && temperature.is_finite()) {
                    return Err(Error::InvalidArgument { op, why: format!("temperature {temperature} must be > 0") });
                }
                want("logits", *logits, rows * cols)?;
                want("target", *target, rows * cols)?;
                want("loss", &**loss, *rows)?;
                want("grad", &**grad, rows * cols)
            }
            Kernel::Add { a, b, y } => {
                want("b", *b, a.len())?;
                want("y", &**y, a.len())
            }
            Kernel::Scale { x, y, .. } => want("y", &**y, x.len()),
            Kernel::ScaleBy { x, s, y, .. } => {
                want("s", *s, 1)?;
                want("y", &**y, x.len())
            }
            Kernel::Axpy { x, y, .. } => want("y", &**y, x.len()),
            Kernel::Adam { param, grad, m, v, step } => {
                if step.step == 0 {
                    return Err(Error::InvalidArgument { op, why: "Adam steps count from 1".into() });
                }
                want("grad", *grad, param.len())?;
                want("m", &**m, param.len())?;
                want("v", &**v, param.len())
            }
        }
    }
}
