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

/// One bias-corrected Adam step, in PyTorch's order of operations (see [`AdamStep`]).
pub fn adam(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamStep) {
    let step_size = s.lr / s.bias_correction1();
    let sqrt_bc2 = s.bias_correction2().sqrt();
    let update = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        *m = s.beta1 * *m + (1.0 - s.beta1) * g;
        *v = s.beta2 * *v + (1.0 - s.beta2) * g * g;
        *p -= step_size * *m / (v.sqrt() / sqrt_bc2 + s.eps);
    };
    if param.len() < parallel::PAR_MIN_WORK {
        let zipped = param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut());
        zipped.for_each(|(((p, &g), m), v)| update(p, g, m, v));
    } else {
        use rayon::prelude::*;
        let zipped = param.par_iter_mut().zip(grad).zip(m.par_iter_mut()).zip(v.par_iter_mut());
        zipped.with_min_len(1 << 12).for_each(|(((p, &g), m), v)| update(p, g, m, v));
    }
}
