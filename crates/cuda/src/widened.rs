//! The narrow variants `ptx_bf16` and `ptx_f16` of every op but matmul and the conversions: the
//! op's f32 PTX kernel run between conversions, so that a bf16 or f16 training step launches on
//! CUDA before each op has a fused narrow kernel of its own.
//!
//! One launch of op `f` over narrow buffers is, in stream order:
//! 1. `widen` (`kernels/convert.ptx`) each narrow buffer `f` reads into an f32 scratch buffer
//!    (a written buffer too, where the launch reads it: accumulating, or Adam's in-place update);
//!    an f32 buffer (the `labels` of `softmax_cross_entropy`) is passed as it is;
//! 2. `f`'s f32 kernel on the scratch buffers ([`Kernel::rebind`]), computing in f32;
//! 3. `narrow` each written scratch buffer back into its narrow buffer (to nearest, ties to even).
//!
//! So each value is read exactly, computed in f32 and rounded once, as the CPU's `bf16-portable`
//! does: the two differ only where their f32 kernels sum in another order. The scratch comes from
//! the device's f32 pool and goes back after the launches are queued (reuse is in stream order).

use kernelab_tensor::{DeviceBuffer, Dtype, Kernel, Op, Result};

use crate::backend::CudaBackend;
use crate::driver::device_error;
use crate::plan;
use crate::variants::{CONVERSIONS, PtxKernel};

impl CudaBackend {
    /// Runs `kernel` (bf16 or f16 buffers) through `f32`, the f32 kernel of its op: see the
    /// module doc.
    pub(crate) fn launch_widened(&self, kernel: Kernel<'_>, f32: &PtxKernel) -> Result<()> {
        let inputs = kernel.inputs();
        let mut wide_inputs = Vec::with_capacity(inputs.len());
        for &(_, b) in &inputs {
            wide_inputs.push(if b.dtype().is_narrow() { Some(self.widened(b, true)?) } else { None });
        }
        let mut wide_outputs = Vec::new();
        for (name, b, read) in kernel.outputs() {
            if !b.dtype().is_narrow() {
                return Err(device_error(format!("internal: {} `{name}` is {}, not narrow", kernel.op(), b.dtype())));
            }
            wide_outputs.push(self.widened(b, read)?);
        }
        {
            let ins: Vec<&dyn DeviceBuffer> =
                inputs.iter().zip(&wide_inputs).map(|(&(_, b), wide)| wide.as_deref().unwrap_or(b)).collect();
            let outs: Vec<&mut dyn DeviceBuffer> = wide_outputs.iter_mut().map(|b| &mut **b).collect();
            let rebound = kernel.rebind(&ins, outs)?;
            if let Some(launch) = plan::plan(&rebound, f32)? {
                self.run(launch)?;
            }
        }
        drop(inputs);
        for (narrow, wide) in kernel.into_outputs().into_iter().zip(&wide_outputs) {
            self.convert(Kernel::Narrow { x: &**wide, y: narrow })?;
        }
        Ok(())
    }

    /// An f32 scratch buffer as long as `narrow`, holding its values widened where `copy`.
    fn widened(&self, narrow: &dyn DeviceBuffer, copy: bool) -> Result<Box<dyn DeviceBuffer>> {
        let mut wide = self.allocate(narrow.len(), Dtype::F32)?;
        if copy {
            self.convert(Kernel::Widen { x: narrow, y: &mut *wide })?;
        }
        Ok(wide)
    }

    /// A `narrow` or `widen` launch by the conversion kernel of its 16-bit type.
    fn convert(&self, kernel: Kernel<'_>) -> Result<()> {
        let (op, storage) = (kernel.op(), kernel.storage());
        let conversion = CONVERSIONS
            .iter()
            .find(|c| c.kernel.op == op && c.precision.storage == storage && matches!(op, Op::Narrow | Op::Widen))
            .ok_or_else(|| device_error(format!("internal: no {op} kernel for {storage}")))?;
        match plan::plan(&kernel, &conversion.kernel)? {
            Some(launch) => self.run(launch),
            None => Ok(()),
        }
    }
}
