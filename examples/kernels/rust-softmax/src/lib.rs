//! A CPU softmax kernel for kernelab, in Rust, exporting the C ABI of `../kernelab.h`.
//!
//! `y[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max)` for every row of a `rows × cols`
//! row-major matrix, in two passes over each row instead of three: the first keeps a running
//! maximum `m` and a running sum `s = Σ exp(x − m)`, rescaling `s` by `exp(m_old − m_new)`
//! whenever the maximum grows (the "online softmax" of Milakov and Gimelshein, 2018); the second
//! writes `exp(x − m) / s`. One thread.

use std::os::raw::c_int;

/// The version of `kernelab.h` this library is written against (`KERNELAB_ABI_VERSION`).
#[unsafe(no_mangle)]
pub extern "C" fn kernelab_abi_version() -> c_int {
    1
}

/// `int kernelab_softmax(const float *x, float *y, uint64_t rows, uint64_t cols);`
///
/// # Safety
/// `x` and `y` point to `rows × cols` values each, `x` readable and `y` writable, not
/// overlapping (kernelab's calling convention).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kernelab_softmax(x: *const f32, y: *mut f32, rows: u64, cols: u64) -> c_int {
    let (Ok(rows), Ok(cols)) = (usize::try_from(rows), usize::try_from(cols)) else { return 1 };
    let Some(len) = rows.checked_mul(cols) else { return 1 };
    if len == 0 {
        return 0;
    }
    // SAFETY: as the caller promised.
    let (x, y) = unsafe { (std::slice::from_raw_parts(x, len), std::slice::from_raw_parts_mut(y, len)) };
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        // Pass 1: the running maximum and the sum of exponentials relative to it.
        let (mut max, mut sum) = (f32::NEG_INFINITY, 0.0f32);
        for &v in xr {
            if v > max {
                sum *= (max - v).exp();
                max = v;
            }
            sum += (v - max).exp();
        }
        // Pass 2: normalize.
        let inv = 1.0 / sum;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - max).exp() * inv;
        }
    }
    0
}
