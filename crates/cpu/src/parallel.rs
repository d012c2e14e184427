//! When to use threads: the kernels' pool ([`crate::spin_pool`]) only where the work pays for
//! handing it out (a few µs).

use crate::spin_pool::{SendPtr, for_each_part};

/// Below this many elements of work a kernel stays on the calling thread.
pub const PAR_MIN_WORK: usize = 1 << 15;

/// Runs `f(offset, chunk)` over consecutive chunks of `y`, one per thread when `y` is large.
pub fn chunks<T: Send>(y: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    for_each_part(y, 16, y.len() >= PAR_MIN_WORK, f);
}

/// Runs `f(row, y_row)` for every row of the `rows × cols` matrix `y`, in parallel when large.
pub fn rows<T: Send>(y: &mut [T], cols: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if cols == 0 {
        return;
    }
    for_each_part(y, cols, y.len() >= PAR_MIN_WORK, |offset, part| {
        part.chunks_mut(cols).enumerate().for_each(|(r, row)| f(offset / cols + r, row));
    });
}

/// Runs `f(row, y_row, z_value)` for every row of `y` (`rows × cols`) beside one value per row of `z`.
pub fn rows_with_scalar(
    y: &mut [f32],
    z: &mut [f32],
    cols: usize,
    f: impl Fn(usize, &mut [f32], &mut f32) + Sync + Send,
) {
    if cols == 0 {
        return;
    }
    let z_base = SendPtr(z.as_mut_ptr());
    let rows = z.len();
    for_each_part(y, cols, y.len() >= PAR_MIN_WORK, |offset, part| {
        let first = offset / cols;
        let count = (part.len() / cols).min(rows.saturating_sub(first));
        // SAFETY: each part's rows are disjoint, so are their values of `z`, which outlives this.
        let z_part = unsafe { std::slice::from_raw_parts_mut(z_base.get().add(first), count) };
        part.chunks_mut(cols).zip(z_part).enumerate().for_each(|(r, (row, s))| f(first + r, row, s));
    });
}
