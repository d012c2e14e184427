//! Elementwise kernels: fill, ReLU and its backward, bias add and fused bias+ReLU, add, scale and
//! axpy (the Adam update has its own module, [`crate::adam`]). Variants `avx512`, `avx2`, `portable` (see [`crate::simd`]): one
//! loop body per kernel, compiled for each instruction set; one part per thread of the kernels'
//! pool ([`crate::spin_pool`]) above `PAR_MIN_WORK` (32K) elements.

use crate::parallel;
use crate::simd::{Isa, multiversion};

multiversion! {
    /// `y ← value`.
    pub fn fill_chunk(y: &mut [f32], value: f32) {
        y.iter_mut().for_each(|v| *v = value);
    }
}

multiversion! {
    /// `y ← max(0, x)`; NaN stays NaN, so a poisoned input is never hidden.
    pub fn relu_chunk(x: &[f32], y: &mut [f32]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = if x > 0.0 || x.is_nan() { x } else { 0.0 });
    }
}

multiversion! {
    /// `dx ← dy · [x > 0]`.
    pub fn relu_backward_chunk(x: &[f32], dy: &[f32], dx: &mut [f32]) {
        dx.iter_mut().zip(x).zip(dy).for_each(|((dx, &x), &dy)| *dx = if x > 0.0 { dy } else { 0.0 });
    }
}

multiversion! {
    /// One row of `x + bias`, through ReLU when `relu` is set (NaN stays NaN, as in `relu`).
    pub fn bias_row(x: &[f32], bias: &[f32], y: &mut [f32], relu: bool) {
        if relu {
            y.iter_mut().zip(x).zip(bias).for_each(|((y, &x), &b)| {
                let v = x + b;
                *y = if v > 0.0 || v.is_nan() { v } else { 0.0 };
            });
        } else {
            y.iter_mut().zip(x).zip(bias).for_each(|((y, &x), &b)| *y = x + b);
        }
    }
}

multiversion! {
    /// `y ← a + b`.
    pub fn add_chunk(a: &[f32], b: &[f32], y: &mut [f32]) {
        y.iter_mut().zip(a).zip(b).for_each(|((y, &a), &b)| *y = a + b);
    }
}

multiversion! {
    /// `y ← α·x`.
    pub fn scale_chunk(x: &[f32], alpha: f32, y: &mut [f32]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = alpha * x);
    }
}

multiversion! {
    /// `y ← y + α·x`.
    pub fn axpy_chunk(alpha: f32, x: &[f32], y: &mut [f32]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
    }
}

pub fn fill(isa: Isa, y: &mut [f32], value: f32) {
    parallel::chunks(y, |_, y| fill_chunk(isa, y, value));
}

pub fn relu(isa: Isa, x: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| relu_chunk(isa, &x[at..at + y.len()], y));
}

pub fn relu_backward(isa: Isa, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    parallel::chunks(dx, |at, dx| relu_backward_chunk(isa, &x[at..at + dx.len()], &dy[at..at + dx.len()], dx));
}

/// `y[r, c] ← x[r, c] + bias[c]`, then ReLU when `relu` is set.
pub fn bias_add(isa: Isa, x: &[f32], bias: &[f32], y: &mut [f32], cols: usize, relu: bool) {
    parallel::rows(y, cols, |r, y| bias_row(isa, &x[r * cols..(r + 1) * cols], bias, y, relu));
}

pub fn add(isa: Isa, a: &[f32], b: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| add_chunk(isa, &a[at..at + y.len()], &b[at..at + y.len()], y));
}

pub fn scale(isa: Isa, x: &[f32], alpha: f32, y: &mut [f32]) {
    parallel::chunks(y, |at, y| scale_chunk(isa, &x[at..at + y.len()], alpha, y));
}

pub fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    parallel::chunks(y, |at, y| axpy_chunk(isa, alpha, &x[at..at + y.len()], y));
}
