//! Elementwise kernels: fill, ReLU and its backward, bias add and fused bias+ReLU, add, scale,
//! scale-by-device-scalar, axpy, and the Adam update. One variant each (`portable`): plain loops
//! the compiler vectorizes, split over rayon threads above [`PAR_MIN_WORK`](crate::parallel).

use kernelab_tensor::AdamStep;

use crate::parallel;

/// `y ← value`.
pub fn fill(y: &mut [f32], value: f32) {
    parallel::chunks(y, |_, y| y.fill(value));
}

/// `y ← max(0, x)`. NaN stays NaN, so a poisoned input is never hidden.
pub fn relu(x: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| {
        y.iter_mut().zip(&x[at..]).for_each(|(y, &x)| *y = if x > 0.0 || x.is_nan() { x } else { 0.0 })
    });
}

/// `dx ← dy · [x > 0]`.
pub fn relu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    parallel::chunks(dx, |at, dx| {
        dx.iter_mut().zip(&x[at..]).zip(&dy[at..]).for_each(|((dx, &x), &dy)| *dx = if x > 0.0 { dy } else { 0.0 })
    });
}

/// `y[r, c] ← x[r, c] + bias[c]`, then ReLU when `relu` is set.
pub fn bias_add(x: &[f32], bias: &[f32], y: &mut [f32], cols: usize, relu: bool) {
    parallel::rows(y, cols, |r, y| {
        let x = &x[r * cols..(r + 1) * cols];
        for ((y, &x), &b) in y.iter_mut().zip(x).zip(bias) {
            let v = x + b;
            *y = if relu && v <= 0.0 { 0.0 } else { v };
        }
    });
}

/// `y ← a + b`.
pub fn add(a: &[f32], b: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| y.iter_mut().zip(&a[at..]).zip(&b[at..]).for_each(|((y, &a), &b)| *y = a + b));
}

/// `y ← α·x`.
pub fn scale(x: &[f32], alpha: f32, y: &mut [f32]) {
    parallel::chunks(y, |at, y| y.iter_mut().zip(&x[at..]).for_each(|(y, &x)| *y = alpha * x));
}

/// `y ← y + α·x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| y.iter_mut().zip(&x[at..]).for_each(|(y, &x)| *y += alpha * x));
}

/// One bias-corrected Adam step, in PyTorch's order of operations (see [`AdamStep`]), in chunks
/// on rayon threads above [`PAR_MIN_WORK`](crate::parallel) elements.
pub fn adam(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 14;
    let k = AdamConstants {
        step_size: s.lr / s.bias_correction1(),
        inv_sqrt_bc2: 1.0 / s.bias_correction2().sqrt(),
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
    };
    if param.len() < parallel::PAR_MIN_WORK {
        adam_chunk(param, grad, m, v, &k);
    } else {
        let chunks = param.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)).zip(m.par_chunks_mut(CHUNK));
        chunks.zip(v.par_chunks_mut(CHUNK)).for_each(|(((p, g), m), v)| adam_chunk(p, g, m, v, &k));
    }
}

/// The per-step constants of Adam: `lr/(1−β₁ᵗ)` and `1/√(1−β₂ᵗ)`.
struct AdamConstants {
    step_size: f32,
    inv_sqrt_bc2: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

/// Adam over equal-length slices: a loop the compiler vectorizes, square root and division too.
fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamConstants) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    for i in 0..n {
        m[i] = k.beta1 * m[i] + (1.0 - k.beta1) * g[i];
        v[i] = k.beta2 * v[i] + (1.0 - k.beta2) * g[i] * g[i];
        p[i] -= k.step_size * m[i] / (v[i].sqrt() * k.inv_sqrt_bc2 + k.eps);
    }
}
