//! The fused mixed-precision Adam step: one pass per parameter that reads the narrow gradient,
//! runs Adam on the f32 master and moments, and writes the master and its narrow working copy.
//!
//! It is a backend capability, not an op of the catalogue: a backend that offers it names its
//! variant in [`Backend::adam_narrow_variant`](crate::Backend::adam_narrow_variant) and runs it in
//! [`Backend::adam_narrow`](crate::Backend::adam_narrow); elsewhere the caller composes the same
//! step from the `widen`, `scale`, `adam` and `narrow` ops, and the fused step must equal that
//! composition bit for bit (the same f32 arithmetic, the same roundings).

use crate::{AdamStep, Cost, Dtype, Error, In, Op, Out, Result, Tensor};

/// One fused step over one parameter of `n` values, with `g = widen(grad)·unscale`:
///
/// ```text
/// m ← β₁·m + (1−β₁)·g
/// v ← β₂·v + (1−β₂)·g²
/// master ← master − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
/// working ← round(master)            (to nearest, ties to even)
/// ```
///
/// `master`, `m` and `v` are f32; `grad` and `working` hold one narrow dtype (bf16 or f16).
/// `unscale` is `1/S` for a loss scale `S` (a power of two, so the product is exact).
pub struct AdamNarrow<'a> {
    pub master: Out<'a>,
    pub grad: In<'a>,
    pub m: Out<'a>,
    pub v: Out<'a>,
    pub working: Out<'a>,
    pub unscale: f32,
    pub step: AdamStep,
}

impl AdamNarrow<'_> {
    /// The narrow dtype of the gradient and working weight.
    pub fn dtype(&self) -> Dtype {
        self.grad.dtype()
    }

    /// Every buffer `master.len()` long, `master`, `m`, `v` f32 and `grad`, `working` of one
    /// narrow dtype: else a typed error naming the buffer.
    pub fn check(&self) -> Result<()> {
        let n = self.master.len();
        let lengths =
            [("grad", self.grad.len()), ("m", self.m.len()), ("v", self.v.len()), ("working", self.working.len())];
        if let Some(&(buffer, len)) = lengths.iter().find(|(_, len)| *len != n) {
            return Err(Error::BufferLength { op: "adam (fused narrow)", buffer, len, expected: n });
        }
        let wide = [self.master.dtype(), self.m.dtype(), self.v.dtype()];
        let narrow = self.grad.dtype();
        if wide.iter().any(|&d| d != Dtype::F32) || !narrow.is_narrow() || self.working.dtype() != narrow {
            let found = format!(
                "master is {}, m is {}, v is {}, grad is {}, working is {}",
                wide[0],
                wide[1],
                wide[2],
                narrow,
                self.working.dtype()
            );
            let why = "master, m and v are f32; grad and working share one narrow dtype".to_string();
            return Err(Error::DtypeMismatch { op: "adam (fused narrow)", found, why });
        }
        Ok(())
    }

    /// The profile's row: Adam's FLOPs (and one multiply per value for the unscale), the bytes
    /// of one pass (master, m, v read and written in f32; grad read and working written narrow).
    pub fn cost(&self) -> Cost {
        let n = self.master.len();
        let narrow = self.dtype().bytes() as f64;
        let flops = Op::Adam.cost(&[n], false).flops + n as f64;
        Cost { shape: n.to_string(), flops, bytes: (24.0 + 2.0 * narrow) * n as f64 }
    }
}

/// One fused step (see [`AdamNarrow`]) on tensors: the device must offer it for `grad`'s dtype
/// ([`crate::Device::adam_narrow_variant`]); shapes must agree.
pub fn adam_narrow_step_(
    master: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    working: &Tensor,
    step: AdamStep,
    unscale: f32,
) -> Result<()> {
    const OP: &str = "adam (fused narrow)";
    for other in [grad, m, v, working] {
        master.same_shape(OP, other)?;
    }
    let g = grad.read(OP)?;
    let (mut p, mut m, mut v, mut w) = (master.write(OP)?, m.write(OP)?, v.write(OP)?, working.write(OP)?);
    let kernel =
        AdamNarrow { master: &mut **p, grad: &**g, m: &mut **m, v: &mut **v, working: &mut **w, unscale, step };
    master.device().adam_narrow(kernel)
}

/// Whether every value of `x` is finite, read in its own dtype (no widened copy), or `None`
/// where the device has no such pass.
pub fn all_finite(x: &Tensor) -> Result<Option<bool>> {
    let buffer = x.read("all_finite")?;
    x.device().all_finite(&**buffer)
}
