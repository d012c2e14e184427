//! The elementwise ops and the bias and column-sum ops of a training step on narrow storage (bf16
//! or f16 bits), in strips: each strip of at most 256 values (or a block of whole rows) is
//! widened into an f32 buffer in L1 ([`Narrow::widen`]: AVX-512F for bf16, F16C for f16), run
//! through the f32 op's own loop body for the [`Isa`], and rounded back once to nearest even
//! ([`Narrow::narrow`]). So each result is the f32 op's on the widened inputs, rounded once; no
//! whole-buffer copies. Part of the `bf16-avx512` / `f16-avx512` variants ([`crate::narrow_ops`]).
//!
//! | op              | per strip                                             |
//! |-----------------|-------------------------------------------------------|
//! | fill            | the rounded value stored (no arithmetic)              |
//! | bias_add/_relu  | rows widened in blocks, `bias` widened once per launch |
//! | relu_backward   | `x`, `dy` widened                                     |
//! | add             | `a`, `b` widened                                      |
//! | scale, scale_by | `x` widened (`scale_by`: `α·s[0]` with `s` widened)   |
//! | axpy            | `x`, `y` widened (`y` is read)                        |
//! | col_sum         | `x` widened whole into a per-thread buffer, the f32 blocked sum, `y` rounded |
//!
//! Parameters as the f32 ops'; work is split over the kernels' threads as theirs (32K values up).

use std::cell::RefCell;

use crate::convert::Narrow;
use crate::simd::Isa;
use crate::spin_pool::for_each_part;
use crate::{elementwise, parallel, rowwise};

/// Values widened at a time: three 1 KiB f32 buffers.
pub const STRIP: usize = 256;

thread_local! {
    /// A block of rows widened, and its result, per thread (for rows wider than a strip and for
    /// col_sum's whole input).
    static BLOCK: RefCell<(Vec<f32>, Vec<f32>)> = RefCell::new(Default::default());
    /// `bias_add`'s bias widened, on the launching thread (its workers only read it).
    static WIDE_BIAS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `y ← round(value)` everywhere.
pub fn fill(kind: Narrow, y: &mut [u16], value: f32) {
    let h = kind.from_f32(value);
    parallel::chunks(y, |_, y| y.fill(h));
}

/// `y ← round(f(widen(a), widen(b)))` strip by strip (`b` empty when the op has one input: `f`
/// then gets an empty slice).
fn map(kind: Narrow, a: &[u16], b: &[u16], y: &mut [u16], f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync) {
    parallel::chunks(y, |at, y| {
        let (mut wa, mut wb, mut out) = ([0.0f32; STRIP], [0.0f32; STRIP], [0.0f32; STRIP]);
        for (s, ys) in y.chunks_mut(STRIP).enumerate() {
            let r = at + s * STRIP..at + s * STRIP + ys.len();
            let (wa, out) = (&mut wa[..ys.len()], &mut out[..ys.len()]);
            kind.widen(&a[r.clone()], wa);
            let wb = if b.is_empty() {
                &mut wb[..0]
            } else {
                kind.widen(&b[r], &mut wb[..ys.len()]);
                &mut wb[..ys.len()]
            };
            f(wa, wb, out);
            kind.narrow(out, ys);
        }
    });
}

/// `dx ← dy · [x > 0]`.
pub fn relu_backward(kind: Narrow, isa: Isa, x: &[u16], dy: &[u16], dx: &mut [u16]) {
    map(kind, x, dy, dx, |x, dy, dx| elementwise::relu_backward_chunk(isa, x, dy, dx));
}

/// `y ← a + b`.
pub fn add(kind: Narrow, isa: Isa, a: &[u16], b: &[u16], y: &mut [u16]) {
    map(kind, a, b, y, |a, b, y| elementwise::add_chunk(isa, a, b, y));
}

/// `y ← α·x`.
pub fn scale(kind: Narrow, isa: Isa, x: &[u16], alpha: f32, y: &mut [u16]) {
    map(kind, x, &[], y, |x, _, y| elementwise::scale_chunk(isa, x, alpha, y));
}

/// `y ← y + α·x` (`y` read in place: its widened strip is the sum's start).
pub fn axpy(kind: Narrow, isa: Isa, alpha: f32, x: &[u16], y: &mut [u16]) {
    parallel::chunks(y, |at, y| {
        let (mut wx, mut wy) = ([0.0f32; STRIP], [0.0f32; STRIP]);
        for (s, ys) in y.chunks_mut(STRIP).enumerate() {
            let (wx, wy) = (&mut wx[..ys.len()], &mut wy[..ys.len()]);
            kind.widen(&x[at + s * STRIP..at + s * STRIP + ys.len()], wx);
            kind.widen(ys, wy);
            elementwise::axpy_chunk(isa, alpha, wx, wy);
            kind.narrow(wy, ys);
        }
    });
}

/// `y[r, c] ← x[r, c] + bias[c]`, then ReLU when `relu` is set; rows widened a block of whole
/// rows at a time (as many as fit a strip, at least one).
pub fn bias_add(kind: Narrow, isa: Isa, x: &[u16], bias: &[u16], y: &mut [u16], cols: usize, relu: bool) {
    if cols == 0 {
        return;
    }
    WIDE_BIAS.with(|wide_bias| {
        let wide_bias = &mut *wide_bias.borrow_mut();
        wide_bias.resize(cols, 0.0);
        kind.widen(bias, wide_bias);
        let wide_bias = &*wide_bias;
        let block = (STRIP / cols).max(1) * cols;
        for_each_part(y, cols, y.len() >= parallel::PAR_MIN_WORK, |at, part| {
            BLOCK.with(|buffers| {
                let (wide, out) = &mut *buffers.borrow_mut();
                wide.resize(block, 0.0);
                out.resize(block, 0.0);
                for (b, ys) in part.chunks_mut(block).enumerate() {
                    let (wide, out) = (&mut wide[..ys.len()], &mut out[..ys.len()]);
                    kind.widen(&x[at + b * block..at + b * block + ys.len()], wide);
                    for (xr, yr) in wide.chunks(cols).zip(out.chunks_mut(cols)) {
                        elementwise::bias_row(isa, xr, wide_bias, yr, relu);
                    }
                    kind.narrow(out, ys);
                }
            })
        });
    });
}

/// `y[c] ← α·Σ_r x[r, c] (+ y[c] when accumulate)`: the f32 column sum (its blocking, its
/// threads) over `x` widened once into this thread's buffer, `y` rounded.
#[allow(clippy::too_many_arguments)]
pub fn col_sum(
    kind: Narrow,
    isa: Isa,
    x: &[u16],
    y: &mut [u16],
    rows: usize,
    cols: usize,
    alpha: f32,
    accumulate: bool,
) {
    BLOCK.with(|buffers| {
        let (wide, out) = &mut *buffers.borrow_mut();
        wide.resize(x.len(), 0.0);
        out.resize(y.len(), 0.0);
        kind.widen(x, wide);
        if accumulate {
            kind.widen(y, out);
        }
        rowwise::col_sum(isa, wide, out, rows, cols, alpha, accumulate);
        kind.narrow(out, y);
    })
}
