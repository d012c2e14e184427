//! The f64 reference of every kernel, with an error budget per output element.
//!
//! Each function computes in f64 from the same f32 inputs the kernel saw and returns an
//! [`Expected`]: the exact-ish value, a magnitude that scales the relative error, and a bound on
//! the error an honest f32 kernel may make. For a dot product of length `K` the bound is the
//! classical `γ_K·Σ|a||b|` with `γ_K ≈ (K+2)·u` and `u = 2⁻²⁴`, which holds for any summation
//! order; row-wise ops get `(cols + c)·u` times their magnitude, plus room for a GPU's `exp`
//! (a few ulp per unit of argument). A wrong kernel misses these bounds by orders of magnitude.
//!
//! ## Budgets per precision
//!
//! A kernel of precision `storage→accumulate` gets inputs already rounded to `storage` (the case
//! rounds them before the reference reads them, as oneDNN's benchdnn does), carries its
//! arithmetic in `accumulate` and rounds each output once to `storage`. Every f32 budget above is
//! `n·U·scale` for the op's count `n` of roundings; with `u_acc`, `u_out` the unit roundoffs of
//! the accumulation and storage types ([`Dtype::unit_roundoff`]) the budget of an element is
//!
//! ```text
//! bound = n·u_acc·scale + u_out·|value| + floor_out          (storage narrower than f32)
//! bound = n·u_acc·scale                                      (f32 storage: today's bound)
//! ```
//!
//! per op family (`K` the reduction length, `C` the row length):
//! - matmul (a dot product of length `K`): `n = K + 3`, `scale = |α|·Σ|a||b| + |β·c₀|`;
//!   so bf16→f32 at `K = 4096` allows `4099·2⁻²⁴·Σ|a||b| + 2⁻⁸·|c|`;
//! - col_sum (a sum of `rows` terms): `n = rows + 3`, `scale = |α|·Σ|x| + |y₀|`;
//! - elementwise ops: `n` = the roundings of the formula (0 for relu, fill and the conversions,
//!   1 for add and bias_add, 2 for scale and axpy, 4–24 for adam's three outputs), `scale` the
//!   magnitude of the terms;
//! - row-wise ops (softmax and its relatives): `n = C + 16 + 4·|arg|` (the row's sum, the
//!   element's roundings and a GPU `exp`), `scale` the output's magnitude (see each function).
//!
//! `narrow`'s budget is the one rounding `u_out·|x|`; `widen` is exact. `floor_out` is half the
//! smallest subnormal spacing of the storage (2⁻²⁵ for f16, where small outputs underflow; 0 for
//! bf16, whose range is f32's). For f32→f32 the second line holds bit for bit: no f32 budget
//! changed when precision became an axis.
//!
//! TF32 (`tf32→f32`, [`Dtype::Tf32`]) stores f32 and the case does not round its inputs: the
//! kernel rounds each operand to TF32 (`u_op = 2⁻¹¹`) as it reads it, so each product
//! `ã·b̃ = a·b·(1 + δ)` with `|δ| ≤ 2·u_op + u_op²`, sums and output are f32's, and
//!
//! ```text
//! bound = n·u_acc·scale + (2·u_op + u_op²)·scale            (tf32→f32: u_acc = 2⁻²⁴, no u_out)
//! ```
//!
//! so tf32→f32 at `K = 4096` allows `(4099·2⁻²⁴ + 2⁻¹⁰ + 2⁻²²)·Σ|a||b|` (matmul is the only op
//! with TF32 kernels).

use rayon::prelude::*;

use kernelab_tensor::{AdamStep, Dtype, Gemm, Precision};

/// The unit roundoff of f32, `2⁻²⁴`.
pub const U: f64 = 1.0 / 16_777_216.0;

/// An absolute floor under every bound, so that values f32 cannot represent (denormals a GPU
/// flushes to zero) do not fail.
const TINY: f64 = 1e-30;

/// A kernel input the reference reads: f32 as kernels see it, or f64 for finite differences.
pub trait Real: Copy + Into<f64> + Send + Sync {}
impl Real for f32 {}
impl Real for f64 {}

/// Any input or parameter, widened to f64.
#[inline(always)]
fn wide(x: impl Into<f64>) -> f64 {
    x.into()
}

/// One output of a kernel, as the reference sees it.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub value: Vec<f64>,
    /// The size against which the error is relative (`Σ|a||b|` for a dot product, `|value|` for
    /// a rounding of the value itself).
    pub scale: Vec<f64>,
    /// The largest error allowed for each element.
    pub bound: Vec<f64>,
}

impl Expected {
    fn with_capacity(n: usize) -> Self {
        Self { value: Vec::with_capacity(n), scale: Vec::with_capacity(n), bound: Vec::with_capacity(n) }
    }

    fn push(&mut self, value: f64, scale: f64, gamma: f64) {
        self.value.push(value);
        self.scale.push(scale);
        self.bound.push(gamma * scale + TINY);
    }

    fn extend(&mut self, other: Expected) {
        self.value.extend(other.value);
        self.scale.extend(other.scale);
        self.bound.extend(other.bound);
    }

    /// The budget of a kernel of precision `p` whose output is stored as `out` (module doc):
    /// `n·u_acc·scale + u_out·|value| + floor_out`, plus `(2·u_op + u_op²)·scale` where the kernel
    /// rounds its operands itself (TF32); the f32 budget itself for f32.
    pub fn for_precision(mut self, p: Precision, out: Dtype) -> Self {
        let operands = p.storage != p.storage.buffer();
        if (p.accumulate, out) == (Dtype::F32, Dtype::F32) && !operands {
            return self;
        }
        let acc = p.accumulate.unit_roundoff() / U;
        let (u_out, floor) = match out {
            Dtype::F32 | Dtype::Tf32 => (0.0, 0.0),
            Dtype::F16 => (out.unit_roundoff(), (-25f64).exp2()),
            Dtype::Bf16 => (out.unit_roundoff(), 0.0),
        };
        let u_op = if operands { p.storage.unit_roundoff() } else { 0.0 };
        let products = 2.0 * u_op + u_op * u_op;
        for ((bound, value), scale) in self.bound.iter_mut().zip(&self.value).zip(&self.scale) {
            *bound = (*bound - TINY) * acc + products * scale + u_out * value.abs() + floor + TINY;
        }
        self
    }

    /// Builds one expected output from per-row pieces computed in parallel.
    fn from_rows(rows: usize, f: impl Fn(usize) -> Expected + Sync + Send) -> Self {
        (0..rows).into_par_iter().map(f).reduce(Expected::default, |mut a, b| {
            a.extend(b);
            a
        })
    }
}

/// `C = α·op(A)·op(B) + β·C₀` (with `C₀` only when `β ≠ 0`).
pub fn matmul<T: Real>(a: &[T], b: &[T], c0: &[T], g: &Gemm) -> Expected {
    let gamma = (g.k as f64 + 3.0) * U;
    let at_a = |i: usize, p: usize| wide(if g.trans_a { a[p * g.m + i] } else { a[i * g.k + p] });
    let at_b = |p: usize, j: usize| wide(if g.trans_b { b[j * g.k + p] } else { b[p * g.n + j] });
    let (alpha, beta) = (wide(g.alpha), wide(g.beta));
    Expected::from_rows(g.m, |i| {
        let mut row = Expected::with_capacity(g.n);
        for j in 0..g.n {
            let (mut dot, mut mag) = (0.0, 0.0);
            for p in 0..g.k {
                let t = at_a(i, p) * at_b(p, j);
                dot += t;
                mag += t.abs();
            }
            let c = if g.beta == 0.0 { 0.0 } else { beta * wide(c0[i * g.n + j]) };
            row.push(alpha * dot + c, alpha.abs() * mag + c.abs(), gamma);
        }
        row
    })
}

/// An elementwise result `f(i)` that an f32 kernel rounds `roundings` times.
fn pointwise(n: usize, roundings: f64, f: impl Fn(usize) -> (f64, f64) + Sync + Send) -> Expected {
    let (value, scale): (Vec<f64>, Vec<f64>) = (0..n).into_par_iter().map(f).unzip();
    let bound = scale.iter().map(|s| roundings * U * s + TINY).collect();
    Expected { value, scale, bound }
}

pub fn fill(n: usize, value: f32) -> Expected {
    pointwise(n, 0.0, |_| (wide(value), wide(value).abs()))
}

/// `y = x` of `narrow` and `widen`: the value itself, whose one rounding (to the narrow storage,
/// for `narrow`) the precision's output term budgets.
///
/// A finite `x` past the range of `to` (the narrow type of the conversion) is expected as the ±∞
/// IEEE rounding gives it (and counted by the case, [`Dtype::overflow_note`]).
pub fn convert<T: Real>(x: &[T], to: Dtype) -> Expected {
    pointwise(x.len(), 0.0, |i| {
        let v = wide(x[i]);
        let rounded = f64::from(to.round(v as f32));
        let value = if v.is_finite() && rounded.is_infinite() { rounded } else { v };
        (value, v.abs())
    })
}

/// `max(0, v)` with NaN propagated (IEEE and PyTorch semantics; `f64::max` would drop it).
fn relu_of(v: f64) -> f64 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

pub fn relu<T: Real>(x: &[T]) -> Expected {
    pointwise(x.len(), 0.0, |i| {
        let v = relu_of(wide(x[i]));
        (v, v)
    })
}

pub fn relu_backward<T: Real>(x: &[T], dy: &[T]) -> Expected {
    pointwise(x.len(), 0.0, |i| {
        let v = if wide(x[i]) > 0.0 { wide(dy[i]) } else { 0.0 };
        (v, v.abs())
    })
}

/// `x + bias` by rows, optionally through ReLU.
pub fn bias_add<T: Real>(x: &[T], bias: &[T], cols: usize, relu: bool) -> Expected {
    pointwise(x.len(), 1.0, |i| {
        let (x, b) = (wide(x[i]), wide(bias[i % cols]));
        let v = if relu { relu_of(x + b) } else { x + b };
        (v, x.abs() + b.abs())
    })
}

pub fn add<T: Real>(a: &[T], b: &[T]) -> Expected {
    pointwise(a.len(), 1.0, |i| {
        let (a, b) = (wide(a[i]), wide(b[i]));
        (a + b, a.abs() + b.abs())
    })
}

pub fn scale<T: Real>(x: &[T], alpha: f64) -> Expected {
    pointwise(x.len(), 2.0, |i| {
        let v = alpha * wide(x[i]);
        (v, v.abs())
    })
}

/// `y₀ + α·x`.
pub fn axpy<T: Real>(alpha: f32, x: &[T], y0: &[T]) -> Expected {
    pointwise(x.len(), 2.0, |i| {
        let (t, y) = (wide(alpha) * wide(x[i]), wide(y0[i]));
        (y + t, y.abs() + t.abs())
    })
}

/// `α·Σ_r x[r, c] (+ y₀[c])`.
pub fn col_sum<T: Real>(x: &[T], y0: &[T], rows: usize, cols: usize, alpha: f32, accumulate: bool) -> Expected {
    let gamma = (rows as f64 + 3.0) * U;
    let alpha = wide(alpha);
    let mut out = Expected::with_capacity(cols);
    for c in 0..cols {
        let (mut sum, mut mag) = (0.0, 0.0);
        for r in 0..rows {
            let v = wide(x[r * cols + c]);
            sum += v;
            mag += v.abs();
        }
        let prior = if accumulate { wide(y0[c]) } else { 0.0 };
        out.push(prior + alpha * sum, prior.abs() + alpha.abs() * mag, gamma);
    }
    out
}

/// The f64 row maximum of `scale·x` and `ln Σ exp(scale·x − max)`.
fn row_stats<T: Real>(x: &[T], scale: f64) -> (f64, f64) {
    let max = x.iter().map(|&v| wide(v) * scale).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = x.iter().map(|&v| (wide(v) * scale - max).exp()).sum();
    (max, sum.ln())
}

/// The relative budget of one exponential-based element: `cols` roundings in the row's sum, a
/// few more in the element, and a GPU `exp`'s `2·|arg|` ulp.
fn exp_gamma(cols: usize, arg: f64) -> f64 {
    (cols as f64 + 16.0 + 4.0 * arg.abs()) * U
}

pub fn softmax<T: Real>(x: &[T], rows: usize, cols: usize) -> Expected {
    Expected::from_rows(rows, |r| {
        let row = &x[r * cols..(r + 1) * cols];
        let (max, log_sum) = row_stats(row, 1.0);
        let mut out = Expected::with_capacity(cols);
        for &v in row {
            let arg = wide(v) - max;
            let p = (arg - log_sum).exp();
            out.push(p, p, exp_gamma(cols, arg));
        }
        out
    })
}

pub fn log_softmax<T: Real>(x: &[T], rows: usize, cols: usize) -> Expected {
    Expected::from_rows(rows, |r| {
        let row = &x[r * cols..(r + 1) * cols];
        let (max, log_sum) = row_stats(row, 1.0);
        let mut out = Expected::with_capacity(cols);
        for &v in row {
            let v = wide(v);
            out.push(v - max - log_sum, v.abs() + max.abs() + log_sum.abs() + 1.0, cols as f64 * U + 8.0 * U);
        }
        out
    })
}

/// `dx = y ⊙ (dy − Σ dy·y)`.
pub fn softmax_backward<T: Real>(y: &[T], dy: &[T], rows: usize, cols: usize) -> Expected {
    Expected::from_rows(rows, |r| {
        let (y, dy) = (&y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        let dot: f64 = y.iter().zip(dy).map(|(&y, &d)| wide(y) * wide(d)).sum();
        let mag: f64 = y.iter().zip(dy).map(|(&y, &d)| (wide(y) * wide(d)).abs()).sum();
        let mut out = Expected::with_capacity(cols);
        for (&y, &d) in y.iter().zip(dy) {
            let (y, d) = (wide(y), wide(d));
            out.push(y * (d - dot), y.abs() * (d.abs() + mag), (cols as f64 + 4.0) * U);
        }
        out
    })
}

/// `dx = dy − exp(y)·Σ dy`.
pub fn log_softmax_backward<T: Real>(y: &[T], dy: &[T], rows: usize, cols: usize) -> Expected {
    Expected::from_rows(rows, |r| {
        let (y, dy) = (&y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        let total: f64 = dy.iter().map(|&d| wide(d)).sum();
        let mag: f64 = dy.iter().map(|&d| wide(d).abs()).sum();
        let mut out = Expected::with_capacity(cols);
        for (&y, &d) in y.iter().zip(dy) {
            let (y, d) = (wide(y), wide(d));
            out.push(d - y.exp() * total, d.abs() + y.exp() * mag, exp_gamma(cols, y));
        }
        out
    })
}

/// Fused cross-entropy: per-row losses, and the gradient of their mean.
pub fn softmax_cross_entropy<T: Real>(z: &[T], labels: &[f32], rows: usize, cols: usize) -> (Expected, Expected) {
    let mut loss = Expected::with_capacity(rows);
    for r in 0..rows {
        let row = &z[r * cols..(r + 1) * cols];
        let (max, log_sum) = row_stats(row, 1.0);
        let zl = wide(row[labels[r] as usize]);
        loss.push(log_sum + max - zl, log_sum.abs() + max.abs() + zl.abs() + 1.0, (cols as f64 + 8.0) * U);
    }
    let inv_rows = 1.0 / rows as f64;
    let grad = Expected::from_rows(rows, |r| {
        let row = &z[r * cols..(r + 1) * cols];
        let (max, log_sum) = row_stats(row, 1.0);
        let mut out = Expected::with_capacity(cols);
        for (c, &v) in row.iter().enumerate() {
            let arg = wide(v) - max;
            let p = (arg - log_sum).exp();
            let hot = if c == labels[r] as usize { 1.0 } else { 0.0 };
            out.push((p - hot) * inv_rows, (p + hot) * inv_rows, exp_gamma(cols, arg));
        }
        out
    });
    (loss, grad)
}

/// Fused KL against soft targets at temperature `t`: per-row losses, and the gradient of their
/// mean with respect to the logits.
pub fn kl_div<T: Real>(z: &[T], q: &[T], rows: usize, cols: usize, t: f32) -> (Expected, Expected) {
    let inv_t = 1.0 / wide(t);
    let mut loss = Expected::with_capacity(rows);
    for r in 0..rows {
        let (row, q) = (&z[r * cols..(r + 1) * cols], &q[r * cols..(r + 1) * cols]);
        let (max, log_sum) = row_stats(row, inv_t);
        let (mut kl, mut mag) = (0.0, 0.0);
        for (&v, &q) in row.iter().zip(q) {
            let (s, q) = (wide(v) * inv_t, wide(q));
            if q > 0.0 {
                kl += q * (q.ln() - (s - max - log_sum));
                mag += q * (q.ln().abs() + s.abs() + max.abs() + log_sum.abs() + 1.0);
            }
        }
        loss.push(kl, mag, (cols as f64 + 16.0) * U);
    }
    let grad_scale = inv_t / rows as f64;
    let grad = Expected::from_rows(rows, |r| {
        let (row, q) = (&z[r * cols..(r + 1) * cols], &q[r * cols..(r + 1) * cols]);
        let (max, log_sum) = row_stats(row, inv_t);
        let mut out = Expected::with_capacity(cols);
        for (&v, &q) in row.iter().zip(q) {
            let s = wide(v) * inv_t;
            let arg = s - max;
            let (p, q) = ((arg - log_sum).exp(), wide(q));
            // Scaling by 1/T rounds s, and s − logsumexp carries that absolute error into the
            // exponent: a relative error of about u·(|s| + |logsumexp|) in p, beyond softmax's.
            let scaling = 2.0 * (s.abs() + (max + log_sum).abs()) * U;
            out.push((p - q) * grad_scale, (p + q) * grad_scale, exp_gamma(cols, arg) + scaling);
        }
        out
    });
    (loss, grad)
}

/// One Adam step: the new parameters, first and second moments.
pub fn adam<T: Real>(p: &[T], g: &[T], m: &[T], v: &[T], s: &AdamStep) -> [Expected; 3] {
    let (b1, b2, eps, lr) = (wide(s.beta1), wide(s.beta2), wide(s.eps), wide(s.lr));
    let bc1 = 1.0 - b1.powi(s.step as i32);
    let bc2 = 1.0 - b2.powi(s.step as i32);
    let n = p.len();
    let m_new = pointwise(n, 4.0, |i| {
        let (a, b) = (b1 * wide(m[i]), (1.0 - b1) * wide(g[i]));
        (a + b, a.abs() + b.abs())
    });
    let v_new = pointwise(n, 5.0, |i| {
        let g = wide(g[i]);
        let (a, b) = (b2 * wide(v[i]), (1.0 - b2) * g * g);
        (a + b, a.abs() + b.abs())
    });
    let p_new = pointwise(n, 24.0, |i| {
        let denom = v_new.value[i].sqrt() / bc2.sqrt() + eps;
        let (step, step_mag) = (lr / bc1 * m_new.value[i] / denom, lr / bc1 * m_new.scale[i] / denom);
        let p = wide(p[i]);
        (p - step, p.abs() + step_mag)
    });
    [p_new, m_new, v_new]
}
