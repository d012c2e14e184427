//! When to use threads: rayon only where the work pays for the fork and join (a few µs).

use rayon::prelude::*;

/// Below this many elements of work a kernel stays on the calling thread.
pub const PAR_MIN_WORK: usize = 1 << 15;

/// Elements per parallel task for elementwise kernels.
const CHUNK: usize = 1 << 14;

/// Runs `f(offset, chunk)` over consecutive chunks of `y`, in parallel when `y` is large.
pub fn chunks(y: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if y.len() < PAR_MIN_WORK {
        f(0, y);
    } else {
        y.par_chunks_mut(CHUNK).enumerate().for_each(|(i, chunk)| f(i * CHUNK, chunk));
    }
}

/// Runs `f(row, y_row)` for every row of the `rows × cols` matrix `y`, in parallel when large.
pub fn rows(y: &mut [f32], cols: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if cols == 0 {
        return;
    }
    if y.len() < PAR_MIN_WORK {
        y.chunks_mut(cols).enumerate().for_each(|(r, row)| f(r, row));
    } else {
        y.par_chunks_mut(cols).enumerate().for_each(|(r, row)| f(r, row));
    }
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
    if y.len() < PAR_MIN_WORK {
        y.chunks_mut(cols).zip(z.iter_mut()).enumerate().for_each(|(r, (row, s))| f(r, row, s));
    } else {
        y.par_chunks_mut(cols).zip(z.par_iter_mut()).enumerate().for_each(|(r, (row, s))| f(r, row, s));
    }
}
