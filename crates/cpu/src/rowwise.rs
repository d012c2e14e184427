//! Row-wise kernels over a `rows × cols` matrix: column sums, softmax, log-softmax, their
//! backward rules, and the fused losses (softmax cross-entropy, KL against soft targets). One
//! variant each (`portable`); rows run on rayon threads when the matrix is large.
//!
//! Every softmax subtracts the row maximum before exponentiating, so no finite input overflows.

use rayon::prelude::*;

use kernelab_tensor::{Error, Result};

use crate::parallel;

/// Rows summed per task in [`col_sum`] before the partial sums are combined.
const SUM_ROWS: usize = 256;

/// `y[c] ← α·Σ_r x[r, c] (+ y[c])`. Rows are summed in blocks of [`SUM_ROWS`] and the block sums
/// combined, so the rounding error grows with the block count rather than with `rows`.
pub fn col_sum(x: &[f32], y: &mut [f32], rows: usize, cols: usize, alpha: f32, accumulate: bool) {
    let block_sum = |blk: usize| {
        let mut acc = vec![0.0f32; cols];
        for row in x[blk * SUM_ROWS * cols..((blk + 1) * SUM_ROWS).min(rows) * cols].chunks(cols) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        acc
    };
    let add = |mut a: Vec<f32>, b: Vec<f32>| {
        a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
        a
    };
    let blocks = rows.div_ceil(SUM_ROWS);
    let total = if rows * cols < parallel::PAR_MIN_WORK {
        (0..blocks).map(block_sum).fold(vec![0.0; cols], add)
    } else {
        (0..blocks).into_par_iter().map(block_sum).reduce(|| vec![0.0; cols], add)
    };
    for (y, t) in y.iter_mut().zip(total) {
        *y = if accumulate { *y + alpha * t } else { alpha * t };
    }
}

/// Writes `exp(scale·x − max)` into `out` (one `exp` per element) and returns `(max, Σ out)`,
/// where `max` is the row maximum of `scale·x`.
fn exp_shifted(x: &[f32], scale: f32, out: &mut [f32]) -> (f32, f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v * scale - max).exp();
        sum += *o;
    }
    (max, sum)
}

/// `y[r, :] ← softmax(x[r, :])`.
pub fn softmax(x: &[f32], y: &mut [f32], cols: usize) {
    parallel::rows(y, cols, |r, y| {
        let (_, sum) = exp_shifted(&x[r * cols..(r + 1) * cols], 1.0, y);
        let inv = 1.0 / sum;
        y.iter_mut().for_each(|y| *y *= inv);
    });
}

/// `y[r, :] ← x[r, :] − max − ln Σ exp(x[r, :] − max)`.
pub fn log_softmax(x: &[f32], y: &mut [f32], cols: usize) {
    parallel::rows(y, cols, |r, y| {
        let x = &x[r * cols..(r + 1) * cols];
        let (max, sum) = exp_shifted(x, 1.0, y);
        let shift = max + sum.ln();
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = x - shift);
    });
}

/// `dx ← y ⊙ (dy − Σ_c dy·y)` per row.
pub fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32], cols: usize) {
    parallel::rows(dx, cols, |r, dx| {
        let (y, dy) = (&y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
        dx.iter_mut().zip(y).zip(dy).for_each(|((dx, &y), &dy)| *dx = y * (dy - dot));
    });
}

/// `dx ← dy − exp(y)·Σ_c dy` per row, `y` being the log-softmax output.
pub fn log_softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32], cols: usize) {
    parallel::rows(dx, cols, |r, dx| {
        let (y, dy) = (&y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        let total: f32 = dy.iter().sum();
        dx.iter_mut().zip(y).zip(dy).for_each(|((dx, &y), &dy)| *dx = dy - y.exp() * total);
    });
}

/// Fused cross-entropy: `loss[r] ← ln Σ exp(z − max) + max − z[label]` and
/// `grad[r, :] ← (softmax(z[r]) − onehot(label[r])) / rows`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[f32],
    loss: &mut [f32],
    grad: &mut [f32],
    cols: usize,
) -> Result<()> {
    let rows = labels.len();
    if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| !(l >= 0.0 && (l as usize) < cols)) {
        return Err(Error::LabelOutOfRange { label: label as u32, index, classes: cols });
    }
    let inv_rows = 1.0 / rows as f32;
    parallel::rows_with_scalar(grad, loss, cols, |r, grad, loss| {
        let z = &logits[r * cols..(r + 1) * cols];
        let label = labels[r] as usize;
        let (max, sum) = exp_shifted(z, 1.0, grad);
        *loss = sum.ln() + max - z[label];
        let scale = inv_rows / sum;
        grad.iter_mut().for_each(|g| *g *= scale);
        grad[label] -= inv_rows;
    });
    Ok(())
}

/// Fused KL against soft targets at temperature `T`, with `s = z/T` and `p = softmax(s)`:
/// `loss[r] ← Σ_c q·(ln q − ln p)` (terms with `q = 0` contribute 0) and
/// `grad[r, :] ← (p − q) / (T·rows)`.
pub fn kl_div(logits: &[f32], target: &[f32], loss: &mut [f32], grad: &mut [f32], cols: usize, temperature: f32) {
    let rows = loss.len();
    let inv_t = 1.0 / temperature;
    let grad_scale = 1.0 / (temperature * rows as f32);
    parallel::rows_with_scalar(grad, loss, cols, |r, grad, loss| {
        let (z, q) = (&logits[r * cols..(r + 1) * cols], &target[r * cols..(r + 1) * cols]);
        let (max, sum) = exp_shifted(z, inv_t, grad);
        let (inv_sum, log_sum) = (1.0 / sum, sum.ln());
        let mut kl = 0.0f32;
        for ((g, &z), &q) in grad.iter_mut().zip(z).zip(q) {
            if q > 0.0 {
                kl += q * (q.ln() - (z * inv_t - max - log_sum));
            }
            *g = (*g * inv_sum - q) * grad_scale;
        }
        *loss = kl;
    });
}
