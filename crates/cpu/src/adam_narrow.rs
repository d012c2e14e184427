//! The fused mixed-precision Adam step ([`kernelab_tensor::AdamNarrow`]): one pass over a
//! parameter that reads its narrow gradient, runs Adam on the f32 master and moments, and writes
//! the master and its narrow working weight, with no f32 copy of the gradient and no separate
//! narrowing pass. Per strip of 256 values (in L1):
//!
//! ```text
//! g ← widen(grad)·unscale                  Narrow::widen (AVX-512F / F16C), one multiply
//! m, v, master ← Adam(master, g, m, v)     the f32 `adam` op's own loop for the ISA
//! working ← round(master)                  Narrow::round, as the `narrow` op rounds
//! ```
//!
//! Variants (by the widest instruction set, [`Isa::best`], as the f32 `adam` default picks it):
//! `bf16-fused-avx512`, `f16-fused-avx512` (Adam's refined-reciprocal loop), and `…-avx2`, `…-portable` (the exact loop). Each is,
//! bit for bit, the composition `widen → scale(unscale) → adam → narrow` with the default
//! variants: the same f32 operations in the same order, the strips a multiple of 16 values from
//! each thread's start, so the AVX-512 loop's vectors are the f32 op's. Parameters: master, grad,
//! m, v, working (all `n` long), unscale, the step; launch shape: the calling thread, split over
//! the kernels' threads from 32K values as the f32 `adam` splits.
//!
//! [`all_finite`] is the check before a dynamic loss scale's step: a scan of the narrow bits for
//! an all-ones exponent (±∞ or NaN), no widening.

use kernelab_tensor::{AdamStep, Dtype};

use crate::adam::{AdamConstants, adam_part};
use crate::convert::Narrow;
use crate::parallel;
use crate::simd::Isa;
use crate::spin_pool::for_each_part;

/// Values widened at a time: a strip of the gradient in f32, 1 KiB.
const STRIP: usize = 256;

/// The name of the fused variant for `dtype` on `isa`; `None` for a dtype that is not narrow.
pub fn variant(isa: Isa, dtype: Dtype) -> Option<&'static str> {
    Some(match (dtype, isa) {
        (Dtype::Bf16, Isa::Avx512) => "bf16-fused-avx512",
        (Dtype::Bf16, Isa::Avx2) => "bf16-fused-avx2",
        (Dtype::Bf16, Isa::Portable) => "bf16-fused-portable",
        (Dtype::F16, Isa::Avx512) => "f16-fused-avx512",
        (Dtype::F16, Isa::Avx2) => "f16-fused-avx2",
        (Dtype::F16, Isa::Portable) => "f16-fused-portable",
        (Dtype::F32 | Dtype::Tf32, _) => return None,
    })
}

/// A base pointer whose disjoint parts the threads write.
struct Base<T>(*mut T);
// SAFETY: each thread writes only its own part, and the call returns before the borrow ends.
unsafe impl<T> Sync for Base<T> {}
impl<T> Base<T> {
    /// `len` values from `at` (a method, so that closures capture the wrapper).
    ///
    /// # Safety
    /// `at + len` is within the buffer and no other thread touches that range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, at: usize, len: usize) -> &mut [T] {
        // SAFETY: per the contract above.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }
}

/// The fused step over one parameter (see the module doc): `master`, `m`, `v` f32, `grad` and
/// `working` narrow `kind` bits, all of one length.
#[allow(clippy::too_many_arguments)]
pub fn adam_narrow(
    isa: Isa,
    kind: Narrow,
    master: &mut [f32],
    grad: &[u16],
    m: &mut [f32],
    v: &mut [f32],
    working: &mut [u16],
    unscale: f32,
    step: &AdamStep,
) {
    let k = AdamConstants::new(step);
    let n = master.len().min(grad.len()).min(m.len()).min(v.len()).min(working.len());
    let (m, v, w) = (Base(m.as_mut_ptr()), Base(v.as_mut_ptr()), Base(working.as_mut_ptr()));
    for_each_part(&mut master[..n], 16, n >= parallel::PAR_MIN_WORK, |at, p| {
        // SAFETY: the parts are disjoint ranges of `master`, and the same ranges of `m`, `v` and
        // `working` (at least `n` long), which outlive this call.
        let (m, v, w) = unsafe { (m.part(at, p.len()), v.part(at, p.len()), w.part(at, p.len())) };
        let g = &grad[at..at + p.len()];
        let mut wide = [0.0f32; STRIP];
        for (i, p) in p.chunks_mut(STRIP).enumerate() {
            let r = i * STRIP..i * STRIP + p.len();
            let wide = &mut wide[..p.len()];
            kind.widen(&g[r.clone()], wide);
            if unscale != 1.0 {
                wide.iter_mut().for_each(|x| *x *= unscale);
            }
            adam_part(isa, p, wide, &mut m[r.clone()], &mut v[r.clone()], k);
            kind.round(p, &mut w[r]);
        }
    });
}

/// Whether no value of the narrow `kind` bits `x` is ±∞ or NaN (exponent all ones).
pub fn all_finite(kind: Narrow, x: &[u16]) -> bool {
    let exponent = match kind {
        Narrow::Bf16 => 0x7F80,
        Narrow::F16 => 0x7C00,
    };
    // A branch-free fold per strip vectorizes; stop at the first strip with a non-finite value.
    !x.chunks(STRIP).any(|strip| strip.iter().fold(false, |any, &h| any | (h & exponent == exponent)))
}
