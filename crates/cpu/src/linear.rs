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

impl CpuLinear {
    /// The product of `rows` rows of `x`, in host memory, into `y`.
    fn run(&self, x: &[f32], y: &mut dyn DeviceBuffer, rows: usize) -> Result<()> {
        let ep = Epilogue { bias: Some(&self.bias), relu: self.relu };
        gemm_prepacked(x, rows, &self.weight, host_mut(y)?, &ep, true)
    }
}

impl PreparedLinear for CpuLinear {
    fn forward(&self, x: &dyn DeviceBuffer, y: &mut dyn DeviceBuffer, rows: usize) -> Result<()> {
        self.run(host(x)?, y, rows)
    }

    /// A CPU buffer is host memory: `x` is read in place.
    fn reads_host(&self) -> bool {
        true
    }

    fn forward_host(&self, x: &[f32], y: &mut dyn DeviceBuffer, rows: usize) -> Result<()> {
        self.run(x, y, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBuffer;

    fn buffer(values: &[f32]) -> CpuBuffer {
        let mut b = CpuBuffer::try_new(values.len()).unwrap();
        host_mut(&mut b).unwrap().copy_from_slice(values);
        b
    }

    fn bits(buf: &CpuBuffer) -> Vec<u32> {
        host(buf).unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// A batch read in place from host memory gives what the same batch in a CPU buffer gives, bit
    /// for bit and every output written over NaN, on the dot path (3 rows) and the packed order
    /// with `A` in place (300 rows of 784); a batch of the wrong size is refused with the numbers.
    #[test]
    fn a_batch_read_in_place_gives_what_a_buffer_gives() {
        let (outputs, inputs) = (33, 784);
        let w: Vec<f32> = (0..outputs * inputs).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect();
        let b: Vec<f32> = (0..outputs).map(|j| j as f32 / 7.0 - 2.0).collect();
        let layer = CpuLinear::new(&buffer(&w), &buffer(&b), outputs, true).unwrap().unwrap();
        for rows in [3, 300] {
            let x: Vec<f32> = (0..rows * inputs).map(|i| ((i * 104_729) % 1009) as f32 / 1009.0).collect();
            let mut want = buffer(&vec![f32::NAN; rows * outputs]);
            layer.forward(&buffer(&x), &mut want, rows).unwrap();
            let mut got = buffer(&vec![f32::NAN; rows * outputs]);
            layer.forward_host(&x, &mut got, rows).unwrap();
            assert!(bits(&got) == bits(&want), "{rows} rows: the outputs differ");
            assert!(host(&got).unwrap().iter().all(|v| *v >= 0.0), "{rows} rows: every output written");
        }
        let mut y = buffer(&[0.0; 33]);
        assert!(layer.reads_host());
        let err = layer.forward_host(&[0.5; 5], &mut y, 1).unwrap_err().to_string();
        assert!(err.contains("A holds 5 values; a 1-row product with W 33 × 784 needs Some(784)"), "{err}");
    }
}
