//! The CPU's forward-only Linear layer ([`Backend::prepare_linear`](kernelab_tensor::Backend)):
//! `W` packed once ([`PackedNt`]), and each call one product whose stores add the bias and take
//! the ReLU ([`gemm_prepacked`]) — no packing, no second pass over the output. Its outputs are
//! those of the default `matmul` followed by `bias_relu` (or `bias_add`) bit for bit.

use kernelab_tensor::{DeviceBuffer, Error, PreparedLinear, Result};

use crate::buffer::{host, host_mut};
use crate::gemm::prepacked::{Epilogue, PackedNt, gemm_prepacked};

/// A layer prepared by [`CpuLinear::new`].
#[derive(Debug)]
pub struct CpuLinear {
    weight: PackedNt,
    bias: Vec<f32>,
    relu: bool,
}

impl CpuLinear {
    /// Copies `weight` (`outputs × inputs`) and `bias` (`outputs`), both f32 CPU buffers, and
    /// packs the weight; `None` for narrow storage, which the launches handle.
    pub fn new(weight: &dyn DeviceBuffer, bias: &dyn DeviceBuffer, outputs: usize, relu: bool) -> Result<Option<Self>> {
        if weight.dtype().is_narrow() || bias.dtype().is_narrow() {
            return Ok(None);
        }
        let (w, b) = (host(weight)?, host(bias)?);
        if outputs == 0 || b.len() != outputs || !w.len().is_multiple_of(outputs) {
            return Err(Error::InvalidArgument {
                op: "linear",
                why: format!(
                    "a layer of {outputs} outputs needs a bias of {outputs} values and a weight of a multiple of \
                     {outputs}; got {} and {}",
                    b.len(),
                    w.len()
                ),
            });
        }
        let weight = PackedNt::new(w, outputs, w.len() / outputs)?;
        Ok(Some(Self { weight, bias: b.to_vec(), relu }))
    }
}

impl PreparedLinear for CpuLinear {
    fn forward(&self, x: &dyn DeviceBuffer, y: &mut dyn DeviceBuffer, rows: usize) -> Result<()> {
        let ep = Epilogue { bias: Some(&self.bias), relu: self.relu };
        gemm_prepacked(host(x)?, rows, &self.weight, host_mut(y)?, &ep, true)
    }
}
