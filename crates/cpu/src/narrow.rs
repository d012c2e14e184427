//! Narrow storage on the CPU: bf16 and f16 buffers, the `narrow` and `widen` conversions, and the
//! portable narrow variant of every other op.
//!
//! Variants (registered in [`crate::registry`], one per dtype, `precision` `bf16→f32` and
//! `f16→f32`):
//! - `bf16-portable`, `f16-portable` (every op but matmul): `narrow` rounds f32 to the narrow type
//!   (nearest, ties to even), `widen` widens exactly; every other op widens its narrow inputs
//!   (and the outputs it reads) to f32, runs the op's f32 loop body compiled for the baseline
//!   target ([`Isa::Portable`]), and rounds its outputs back to the narrow type. One generic
//!   path serves every op: [`launch_widened`], through [`Kernel::inputs`] and
//!   [`Kernel::rebind`], not a copy per op.
//! - `bf16-blocked`, `f16-blocked` (matmul): `A`, `B` (and `C` when `β ≠ 0`) widened to f32,
//!   the `blocked` f32 GEMM (f32 accumulation), `C` rounded back.
//!
//! Conversions: widening through the `half` crate's slice conversions, rounding through
//! [`Narrow::round`](crate::convert::Narrow::round) (`half`'s rounding bit for bit, bf16 on
//! AVX-512F and f16 on F16C where the CPU has them). Parameters: the kernel's buffers, as for f32; launch shape:
//! the calling thread plus whatever the f32 body splits over the kernels' threads.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use kernelab_tensor::{DeviceBuffer, Dtype, Error, Gemm, Kernel, Pool, Result};

use crate::buffer::{CpuBuffer, cpu, cpu_mut};
use crate::simd::Isa;

/// A matmul over CPU buffers of one narrow dtype (`CpuBuffer::bits`): `C ← α·op(A)·op(B) + β·C`
/// (see [`Gemm`]); the buffers' lengths and dtypes were checked.
pub type NarrowMatmulFn = fn(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()>;

/// What a narrow variant runs.
#[derive(Clone, Copy, Debug)]
pub enum NarrowKernel {
    /// `narrow` or `widen` (which one the kernel says).
    Convert,
    /// Any op but matmul: widen, the f32 body compiled for this instruction set, narrow.
    Widened(Isa),
    /// A matmul reading and writing narrow buffers.
    Matmul(NarrowMatmulFn),
    /// ReLU and softmax converting strips with SIMD ([`crate::narrow_ops`]); other ops as
    /// `Widened`.
    Strips(Isa),
}

/// `dst ← round(src)`: f32 values into a narrow buffer, to nearest, ties to even.
pub fn store(src: &[f32], dst: &mut CpuBuffer) -> Result<()> {
    let dtype = dst.dtype();
    let bits = dst.bits_mut();
    if bits.len() != src.len() {
        return Err(Error::BufferLength { op: "narrow", buffer: "dst", len: bits.len(), expected: src.len() });
    }
    match dtype {
        Dtype::Bf16 => crate::convert::Narrow::Bf16.round(src, bits),
        Dtype::F16 => crate::convert::Narrow::F16.round(src, bits),
        Dtype::F32 | Dtype::Tf32 => return Err(internal("store into an f32 buffer")),
    }
    Ok(())
}

/// `dst ← src` widened exactly: a narrow buffer's values as f32.
pub fn load(src: &CpuBuffer, dst: &mut [f32]) -> Result<()> {
    let bits = src.bits();
    if src.len() != dst.len() {
        return Err(Error::BufferLength { op: "widen", buffer: "dst", len: dst.len(), expected: src.len() });
    }
    match src.dtype() {
        Dtype::Bf16 => bytemuck::cast_slice::<u16, bf16>(bits).convert_to_f32_slice(dst),
        Dtype::F16 => bytemuck::cast_slice::<u16, f16>(bits).convert_to_f32_slice(dst),
        Dtype::F32 | Dtype::Tf32 => dst.copy_from_slice(src.values()),
    }
    Ok(())
}

fn internal(what: &str) -> Error {
    Error::Device { backend: "cpu".into(), message: format!("internal: {what}") }
}

/// An f32 copy of `buf` (narrow: widened), from `pool`.
fn widened(buf: &dyn DeviceBuffer, pool: &std::sync::Arc<Pool<Vec<f32>>>) -> Result<CpuBuffer> {
    let mut wide = CpuBuffer::pooled(buf.len(), pool)?;
    load(cpu(buf)?, wide.values_mut())?;
    Ok(wide)
}

/// Runs a narrow launch: `narrow` and `widen` convert; every other op goes through
/// [`launch_widened`] or the variant's matmul.
pub fn launch(kernel: Kernel<'_>, run: NarrowKernel, pool: &std::sync::Arc<Pool<Vec<f32>>>) -> Result<()> {
    match (run, kernel) {
        (NarrowKernel::Convert, Kernel::Narrow { x, y }) => store(crate::buffer::host(x)?, cpu_mut(y)?),
        (NarrowKernel::Convert, Kernel::Widen { x, y }) => load(cpu(x)?, crate::buffer::host_mut(y)?),
        (NarrowKernel::Matmul(f), Kernel::Matmul { a, b, c, gemm }) => f(cpu(a)?, cpu(b)?, cpu_mut(c)?, &gemm),
        (NarrowKernel::Strips(isa), kernel) if !matches!(kernel, Kernel::Matmul { .. }) => {
            crate::narrow_ops::launch(kernel, isa, pool)
        }
        (NarrowKernel::Widened(isa), kernel) if !matches!(kernel, Kernel::Matmul { .. }) => {
            launch_widened(kernel, pool, |k| crate::elementwise_or_rowwise(k, isa))
        }
        (run, kernel) => Err(internal(&format!("the narrow kernel {run:?} cannot run {}", kernel.op()))),
    }
}

/// Runs `kernel` (narrow buffers) through `f32_kernel`: every buffer it reads widened to an f32
/// copy (its written buffers too, so that what it leaves unwritten stays as it was), the launch
/// rebound to the copies, and every written buffer rounded back from its copy.
pub fn launch_widened(
    kernel: Kernel<'_>,
    pool: &std::sync::Arc<Pool<Vec<f32>>>,
    f32_kernel: impl FnOnce(Kernel<'_>) -> Result<()>,
) -> Result<()> {
    let inputs = kernel.inputs().into_iter().map(|(_, b)| widened(b, pool)).collect::<Result<Vec<_>>>()?;
    let mut outputs = kernel.outputs().into_iter().map(|(_, b, _)| widened(b, pool)).collect::<Result<Vec<_>>>()?;
    {
        let ins: Vec<&dyn DeviceBuffer> = inputs.iter().map(|b| b as &dyn DeviceBuffer).collect();
        let outs: Vec<&mut dyn DeviceBuffer> = outputs.iter_mut().map(|b| b as &mut dyn DeviceBuffer).collect();
        f32_kernel(kernel.rebind(&ins, outs)?)?;
    }
    for (dst, wide) in kernel.into_outputs().into_iter().zip(&outputs) {
        let dst = cpu_mut(dst)?;
        match dst.dtype() {
            Dtype::F32 => dst.values_mut().copy_from_slice(wide.values()),
            _ => store(wide.values(), dst)?,
        }
    }
    Ok(())
}

/// The portable narrow matmul: operands widened to f32, the `blocked` GEMM (f32 accumulation),
/// `C` rounded back to its narrow type.
pub fn blocked(a: &CpuBuffer, b: &CpuBuffer, c: &mut CpuBuffer, g: &Gemm) -> Result<()> {
    let wide = |buf: &CpuBuffer| -> Result<Vec<f32>> {
        let mut v = vec![0.0; buf.len()];
        load(buf, &mut v)?;
        Ok(v)
    };
    let (a, b) = (wide(a)?, wide(b)?);
    let mut out = if g.beta == 0.0 { vec![0.0; c.len()] } else { wide(c)? };
    crate::matmul::blocked(&a, &b, &mut out, g);
    store(&out, c)
}

#[cfg(test)]
mod tests {
    use kernelab_tensor::{Device, Kernel};

    use super::*;
    use crate::CpuBackend;

    /// 1 + 2⁻⁸ and 1 + 3·2⁻⁸ are ties in bf16 (to 1 and 1 + 2⁻⁶), 70000 overflows f16.
    const AWKWARD: [f32; 4] = [1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, 70000.0, -0.1];

    #[test]
    fn upload_rounds_to_nearest_even_and_download_widens() {
        let cpu = Device::new(CpuBackend::new());
        let bf16 = cpu.upload_as(&AWKWARD, Dtype::Bf16).unwrap();
        assert_eq!(bf16.dtype(), Dtype::Bf16);
        let got = cpu.download(&*bf16).unwrap();
        assert_eq!(&got[..3], &[1.0, 1.0 + 1.0 / 64.0, 70144.0]);
        assert_eq!(got[3], Dtype::Bf16.round(-0.1));
        let f16 = cpu.download(&*cpu.upload_as(&AWKWARD, Dtype::F16).unwrap()).unwrap();
        assert_eq!(&f16[..3], &[1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, f32::INFINITY]);
    }

    #[test]
    fn narrow_and_widen_convert_and_a_mix_of_dtypes_is_refused() {
        let cpu = Device::new(CpuBackend::new());
        let x = cpu.upload(&AWKWARD).unwrap();
        let mut y = cpu.upload_as(&[f32::NAN; 4], Dtype::Bf16).unwrap();
        cpu.launch(Kernel::Narrow { x: &*x, y: &mut *y }, None).unwrap();
        let mut back = cpu.upload(&[f32::NAN; 4]).unwrap();
        cpu.launch(Kernel::Widen { x: &*y, y: &mut *back }, None).unwrap();
        assert_eq!(cpu.download(&*back).unwrap(), AWKWARD.map(|v| Dtype::Bf16.round(v)));
        // relu over a bf16 x into an f32 y: named, refused, nothing written.
        let err = cpu.launch(Kernel::Relu { x: &*y, y: &mut *back }, None).unwrap_err().to_string();
        assert!(err.contains("x is bf16, y is f32"), "{err}");
        // an f32 variant asked to run bf16 buffers says which stores what.
        let mut z = cpu.upload_as(&[f32::NAN; 4], Dtype::Bf16).unwrap();
        let err = cpu.launch(Kernel::Relu { x: &*y, y: &mut *z }, Some("portable")).unwrap_err().to_string();
        assert!(err.contains("variant portable stores f32, the buffers hold bf16"), "{err}");
        assert!(cpu.download(&*z).unwrap().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn every_op_runs_in_bf16_through_the_widened_f32_body() {
        let cpu = Device::new(CpuBackend::new());
        let x = cpu.upload_as(&[-1.5, 2.25, 0.1, -0.0], Dtype::Bf16).unwrap();
        let mut y = cpu.upload_as(&[f32::NAN; 4], Dtype::Bf16).unwrap();
        cpu.launch(Kernel::Scale { x: &*x, alpha: 3.0, y: &mut *y }, None).unwrap();
        let want = [-4.5, 6.75, Dtype::Bf16.round(3.0 * Dtype::Bf16.round(0.1)), -0.0];
        assert_eq!(cpu.download(&*y).unwrap(), want);
        // matmul: [1 2; 3 4]·[1 1; 1 1] in f16.
        let a = cpu.upload_as(&[1.0, 2.0, 3.0, 4.0], Dtype::F16).unwrap();
        let b = cpu.upload_as(&[1.0; 4], Dtype::F16).unwrap();
        let mut c = cpu.upload_as(&[f32::NAN; 4], Dtype::F16).unwrap();
        let gemm = Gemm::new(2, 2, 2);
        cpu.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm }, None).unwrap();
        assert_eq!(cpu.download(&*c).unwrap(), [3.0, 3.0, 7.0, 7.0]);
        for buf in [&*x, &*y, &*a, &*c] {
            assert_eq!(cpu.guard_violation(buf).unwrap(), None);
        }
    }
}
