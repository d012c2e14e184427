//! ReLU and softmax reading and writing narrow storage (bf16 or f16 as `u16` bits) and computing
//! in f32 (the elementwise, bias and column-sum ops likewise, in [`crate::narrow_strips`]): each strip of a chunk (or each row) is widened into an f32 buffer in L1 with the SIMD
//! conversions of [`crate::narrow`] (AVX-512F for bf16, F16C `vcvtph2ps` for f16), run through
//! the f32 kernel's own loop body for the chosen [`Isa`] ([`elementwise::relu_chunk`],
//! [`rowwise::softmax_row`]), and rounded back once (`vcvtneps2bf16`, F16C `vcvtps2ph`; nearest
//! even). So each op's arithmetic is the f32 op's, and the narrow result is the f32 result
//! rounded once: for ReLU that is exact (except that `vcvtneps2bf16` flushes bf16 subnormals,
//! below 1.2·10⁻³⁸, to zero), for softmax within the narrow type's unit roundoff (2⁻⁸ bf16,
//! 2⁻¹¹ f16, relative) beyond the f32 kernel's error.
//!
//! Parameters: `x` and `y` of equal length (`rows × cols` for softmax, `cols > 0`); work is split
//! over the kernels' threads as the f32 ops split it (32K elements and up).

use std::cell::RefCell;

use kernelab_tensor::{DeviceBuffer, Dtype, Error, Kernel, Op, Pool, Result};

use crate::buffer::{cpu, cpu_mut};
use crate::convert::Narrow;
use crate::narrow_strips as strips;
use crate::simd::Isa;
use crate::{elementwise, parallel, rowwise};

/// Runs a narrow launch of the `bf16-avx512` / `f16-avx512` variants: ReLU and softmax by strips
/// ([`relu`], [`softmax`]), the elementwise, bias and column-sum ops by strips too
/// ([`crate::narrow_strips`]); the rest (the softmax backward passes, the fused losses, adam)
/// through the widened copies of [`crate::narrow::launch_widened`] with the f32 body for `isa`.
pub fn launch(kernel: Kernel<'_>, isa: Isa, pool: &std::sync::Arc<Pool<Vec<f32>>>) -> Result<()> {
    let kind = |dtype: Dtype| match dtype {
        Dtype::Bf16 => Ok(Narrow::Bf16),
        Dtype::F16 => Ok(Narrow::F16),
        Dtype::F32 | Dtype::Tf32 => {
            Err(Error::Device { backend: "cpu".into(), message: "internal: f32 buffers in a narrow op".into() })
        }
    };
    let op = kernel.op();
    match kernel {
        Kernel::Relu { x, y } => {
            let (x, y) = (cpu(x)?, cpu_mut(y)?);
            relu(kind(y.dtype())?, isa, x.bits(), y.bits_mut());
            Ok(())
        }
        Kernel::Softmax { x, y, cols, .. } => {
            let (x, y) = (cpu(x)?, cpu_mut(y)?);
            softmax(kind(y.dtype())?, isa, x.bits(), y.bits_mut(), cols);
            Ok(())
        }
        Kernel::Fill { y, value } => {
            let y = cpu_mut(y)?;
            strips::fill(kind(y.dtype())?, y.bits_mut(), value);
            Ok(())
        }
        Kernel::BiasAdd { x, bias, y, cols, .. } | Kernel::BiasRelu { x, bias, y, cols, .. } => {
            let relu = op == Op::BiasRelu;
            let (x, bias, y) = (cpu(x)?, cpu(bias)?, cpu_mut(y)?);
            strips::bias_add(kind(y.dtype())?, isa, x.bits(), bias.bits(), y.bits_mut(), cols, relu);
            Ok(())
        }
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => {
            let (x, y) = (cpu(x)?, cpu_mut(y)?);
            strips::col_sum(kind(y.dtype())?, isa, x.bits(), y.bits_mut(), rows, cols, alpha, accumulate);
            Ok(())
        }
        Kernel::ReluBackward { x, dy, dx } => {
            let (x, dy, dx) = (cpu(x)?, cpu(dy)?, cpu_mut(dx)?);
            strips::relu_backward(kind(dx.dtype())?, isa, x.bits(), dy.bits(), dx.bits_mut());
            Ok(())
        }
        Kernel::Add { a, b, y } => {
            let (a, b, y) = (cpu(a)?, cpu(b)?, cpu_mut(y)?);
            strips::add(kind(y.dtype())?, isa, a.bits(), b.bits(), y.bits_mut());
            Ok(())
        }
        Kernel::Scale { x, alpha, y } => {
            let (x, y) = (cpu(x)?, cpu_mut(y)?);
            strips::scale(kind(y.dtype())?, isa, x.bits(), alpha, y.bits_mut());
            Ok(())
        }
        Kernel::ScaleBy { x, s, alpha, y } => {
            let (x, s, y) = (cpu(x)?, cpu(s)?, cpu_mut(y)?);
            let k = kind(y.dtype())?;
            let factor = alpha * s.bits().first().map_or(f32::NAN, |&h| k.to_f32(h));
            strips::scale(k, isa, x.bits(), factor, y.bits_mut());
            Ok(())
        }
        Kernel::Axpy { alpha, x, y } => {
            let (x, y) = (cpu(x)?, cpu_mut(y)?);
            strips::axpy(kind(y.dtype())?, isa, alpha, x.bits(), y.bits_mut());
            Ok(())
        }
        kernel => crate::narrow::launch_widened(kernel, pool, |k| crate::elementwise_or_rowwise(k, isa)),
    }
}

/// Values widened at a time by [`relu`]: two 1 KiB f32 buffers, well inside L1.
const STRIP: usize = 256;

/// `y ← max(0, x)` on narrow values (NaN stays NaN).
pub fn relu(kind: Narrow, isa: Isa, x: &[u16], y: &mut [u16]) {
    parallel::chunks(y, |at, y| {
        let (mut wide, mut out) = ([0.0f32; STRIP], [0.0f32; STRIP]);
        for (xs, ys) in x[at..at + y.len()].chunks(STRIP).zip(y.chunks_mut(STRIP)) {
            let (wide, out) = (&mut wide[..xs.len()], &mut out[..xs.len()]);
            kind.widen(xs, wide);
            elementwise::relu_chunk(isa, wide, out);
            kind.narrow(out, ys);
        }
    });
}

thread_local! {
    /// One row widened, and its softmax in f32, per thread.
    static ROW: RefCell<(Vec<f32>, Vec<f32>)> = RefCell::new(Default::default());
}

/// Softmax of each row of the `rows × cols` matrix `x` (narrow), into `y` (narrow).
pub fn softmax(kind: Narrow, isa: Isa, x: &[u16], y: &mut [u16], cols: usize) {
    parallel::rows(y, cols, |r, y| {
        ROW.with(|row| {
            let (wide, out) = &mut *row.borrow_mut();
            wide.resize(cols, 0.0);
            out.resize(cols, 0.0);
            kind.widen(&x[r * cols..(r + 1) * cols], wide);
            rowwise::softmax_row(isa, wide, out);
            kind.narrow(out, y);
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: Narrow, len: usize) -> Vec<u16> {
        (0..len).map(|i| kind.from_f32(((i * 7919) % 1013) as f32 / 50.0 - 9.0)).collect()
    }

    #[test]
    fn narrow_relu_is_exact_and_keeps_nan() {
        for kind in [Narrow::Bf16, Narrow::F16] {
            // Long enough to be threaded, with a tail shorter than a strip and a vector.
            let mut x = input(kind, 40_000 + 3);
            x[17] = kind.from_f32(f32::NAN);
            let mut y = vec![0x5555u16; x.len()];
            relu(kind, Isa::best(), &x, &mut y);
            for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
                let v = kind.to_f32(xi);
                let want = if v.is_nan() { f32::NAN } else { v.max(0.0) };
                let got = kind.to_f32(yi);
                assert!(got == want || (got.is_nan() && want.is_nan()), "{kind:?} [{i}] {v} → {got}");
            }
        }
    }

    #[test]
    fn narrow_softmax_is_the_f64_softmax_to_the_narrow_unit_roundoff() {
        for kind in [Narrow::Bf16, Narrow::F16] {
            for (rows, cols) in [(1, 1), (3, 10), (5, 17), (64, 1023), (40, 1000)] {
                let x = input(kind, rows * cols);
                let mut y = vec![kind.from_f32(f32::NAN); rows * cols];
                softmax(kind, Isa::best(), &x, &mut y, cols);
                // The narrow type's unit roundoff (half an ulp relative: 2⁻⁸ bf16, 2⁻¹¹ f16) plus the
                // f32 kernel's own error over the row (a few ulp of f32 per term, relative).
                let unit = if kind == Narrow::Bf16 { 2f64.powi(-8) } else { 2f64.powi(-11) };
                for (r, (xr, yr)) in x.chunks(cols).zip(y.chunks(cols)).enumerate() {
                    let v: Vec<f64> = xr.iter().map(|&h| f64::from(kind.to_f32(h))).collect();
                    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = v.iter().map(|&t| (t - max).exp()).sum();
                    for (c, (&t, &h)) in v.iter().zip(yr).enumerate() {
                        let want = (t - max).exp() / sum;
                        let got = f64::from(kind.to_f32(h));
                        let budget = want * (unit + (cols as f64 + 8.0) * 2f64.powi(-23)) + 1e-37;
                        let below_f16 = kind == Narrow::F16 && want < 6.1e-5;
                        let budget = if below_f16 { budget + 2f64.powi(-25) } else { budget };
                        assert!((got - want).abs() <= budget, "{kind:?} {rows}x{cols} [{r},{c}]: {got} vs {want}");
                    }
                }
            }
        }
    }
}
