//! The forward-only inference path: an [`Mlp`]'s logits for a batch of images, with no tape, no
//! per-call allocation once warm, and the device's own kernels.
//!
//! Layer `i` of `L` computes `Hᵢ = max(0, Hᵢ₋₁·Wᵢᵀ + 1·bᵢᵀ)`, or `Hᵢ₋₁·Wᵢᵀ + 1·bᵢᵀ` for the last
//! layer, whose output is the logits. Where the backend prepares layers
//! ([`Device::prepare_linear`], the CPU), each layer's `W` is packed once, when the runner is made,
//! into the layout the GEMM reads, and a call is one product per layer whose stores add the bias
//! and take the ReLU: no packing and no second pass over the output. Elsewhere (or with a
//! preferred variant set) a layer is two launches, the matmul `Zᵢ = Hᵢ₋₁·Wᵢᵀ` (`rows × outᵢ ×
//! inᵢ`, `Wᵢ` read in place as `Bᵀ`: the NT layout) and a fused `bias_relu` (`bias_add` last).
//! Either way the arithmetic is that of [`Mlp::forward`] under a tape, with the same variant
//! choice (the device's preferred variant, else its default: on the CPU the `threaded` matmul's
//! choice of kernel for the shape), so on one device the logits are the training forward's bit
//! for bit. What differs is the plumbing: the training forward allocates each output from the
//! device's pool and records nothing on a `no_grad` tape, while [`Inference`] writes into buffers
//! it owns, one set per batch size, made on the first call of that size (or by
//! [`Inference::prepare`]).
//!
//! One call ([`Inference::forward`]) is what a server answering requests does: copy the batch to
//! the device, run the layers, copy the logits back (which waits for the device), so its time is
//! the latency a caller sees. On the CPU, whose buffers are host memory, a prepared first layer
//! reads the batch where the caller holds it ([`PreparedLinear::forward_host`]; the copy of a
//! batch of 256 images, 800 KB, was 4–5% of that call), and a warm call takes nothing from the
//! allocator.

use kernelab_tensor::{Device, DeviceBuffer, Error, Gemm, Kernel, PreparedLinear, Result, Tensor};

use crate::data::Dataset;
use crate::{Mlp, size};

/// One layer's parameters: `W` (`out × in`) and `b` (`out`), handles to the model's storage, and
/// the backend's packed copy of them where it prepares layers.
#[derive(Debug)]
struct Layer {
    weight: Tensor,
    bias: Tensor,
    inputs: usize,
    outputs: usize,
    prepared: Option<Box<dyn PreparedLinear>>,
}

/// The device buffers of one batch size: the input (none where the first layer reads the batch
/// in host memory), each layer's pre-activation `Zᵢ` (for the layers run as two launches) and
/// output `Hᵢ`, and the logits on the host.
#[derive(Debug)]
struct Buffers {
    rows: usize,
    input: Option<Box<dyn DeviceBuffer>>,
    pre: Vec<Option<Box<dyn DeviceBuffer>>>,
    out: Vec<Box<dyn DeviceBuffer>>,
    logits: Vec<f32>,
}

/// A model ready to answer batches: see the module header.
#[derive(Debug)]
pub struct Inference {
    device: Device,
    layers: Vec<Layer>,
    /// One set of buffers per batch size seen, in the order first seen.
    sizes: Vec<Buffers>,
}

/// The multiply-adds of one image through layers of `widths`: `Σᵢ wᵢ·wᵢ₊₁` (the matmuls; the bias
/// and ReLU are not counted).
pub fn multiply_adds(widths: &[usize]) -> u64 {
    widths.windows(2).map(|w| w[0] as u64 * w[1] as u64).sum()
}

/// Refuses a batch of `rows` that is 0, or whose buffers for a model of `widths` (the parameters,
/// the batch's input and every layer's two outputs, see [`size::inference_bytes`]) do not fit in
/// the memory this machine has available, with the numbers.
pub fn check_batch(widths: &[usize], rows: usize) -> Result<()> {
    let spec = widths.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    let refuse = |why: String| Err(Error::InvalidArgument { op: "infer", why });
    if rows == 0 {
        return refuse(format!("model {spec}: a batch of 0 images has nothing to answer; give 1 or more"));
    }
    let need = size::inference_bytes(widths, rows);
    match (need, kernelab_tensor::memory::available()) {
        (None, _) => refuse(format!("model {spec} at batch {rows}: the bytes it needs overflow 64 bits")),
        (Some(need), Some(have)) if need > have => refuse(format!(
            "model {spec} at batch {rows} needs about {} (parameters, the batch's input, every layer's output), \
             and this machine has {} available; use a smaller --batch",
            kernelab_tensor::memory::human(need),
            kernelab_tensor::memory::human(have)
        )),
        _ => Ok(()),
    }
}

impl Inference {
    /// A runner for `model` on the model's device, its layers prepared now where the backend
    /// prepares them (a copy: make a new runner for a model trained further); it allocates no
    /// batch buffers until a batch size is used. A distillation teacher runs as
    /// `Inference::new(frozen.model())`.
    pub fn new(model: &Mlp) -> Result<Self> {
        let (device, last) = (model.device(), model.layers().len().saturating_sub(1));
        let layers = model
            .layers()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (weight, bias) = (l.weight().read("infer")?, l.bias().read("infer")?);
                let prepared = device.prepare_linear(&**weight, &**bias, l.outputs(), i < last)?;
                Ok(Layer {
                    weight: l.weight().clone(),
                    bias: l.bias().clone(),
                    inputs: l.inputs(),
                    outputs: l.outputs(),
                    prepared,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { device: device.clone(), layers, sizes: Vec::new() })
    }

    /// Whether every layer runs as one prepared call (packed weights, fused epilogue) rather than
    /// two launches.
    pub fn is_prepared(&self) -> bool {
        self.layers.iter().all(|l| l.prepared.is_some())
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The widths, `[784, 128, 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.inputs()];
        w.extend(self.layers.iter().map(|l| l.outputs));
        w
    }

    /// Values one image has.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Logits one image gets.
    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Allocates the buffers of batches of `rows` images now (so that the first call of that size
    /// is not the one that allocates); a batch of 0 or one past the memory available is refused
    /// ([`check_batch`]).
    pub fn prepare(&mut self, rows: usize) -> Result<()> {
        self.buffers(rows).map(drop)
    }

    /// Whether the first layer reads a batch where the caller holds it ([`PreparedLinear::reads_host`]).
    fn first_reads_host(&self) -> bool {
        self.layers.first().and_then(|l| l.prepared.as_ref()).is_some_and(|p| p.reads_host())
    }

    /// The buffers of batches of `rows`, made on first use.
    fn buffers(&mut self, rows: usize) -> Result<usize> {
        if let Some(at) = self.sizes.iter().position(|b| b.rows == rows) {
            return Ok(at);
        }
        check_batch(&self.widths(), rows)?;
        let alloc = |len: usize| self.device.alloc(len);
        let input = if self.first_reads_host() { None } else { Some(alloc(rows * self.inputs())?) };
        let pre = self
            .layers
            .iter()
            .map(|l| if l.prepared.is_some() { Ok(None) } else { alloc(rows * l.outputs).map(Some) })
            .collect::<Result<_>>()?;
        let out = self.layers.iter().map(|l| alloc(rows * l.outputs)).collect::<Result<_>>()?;
        self.sizes.push(Buffers { rows, input, pre, out, logits: vec![0.0; rows * self.classes()] });
        Ok(self.sizes.len() - 1)
    }

    /// The logits (`rows × classes`, row-major) of `images` (`rows × inputs` values, row by row,
    /// `rows ≥ 1`): uploads the batch (or reads it in place), runs every layer (see the module
    /// header for both), and downloads the logits, which waits for the device. The slice is this runner's and is overwritten by the
    /// next call of the same batch size.
    pub fn forward(&mut self, images: &[f32]) -> Result<&[f32]> {
        let inputs = self.inputs();
        if images.is_empty() || !images.len().is_multiple_of(inputs) {
            return Err(Error::InvalidArgument {
                op: "infer",
                why: format!("{} values are not a whole number of images of {inputs} values", images.len()),
            });
        }
        let at = self.buffers(images.len() / inputs)?;
        let Self { device, layers, sizes } = self;
        let b = &mut sizes[at];
        // The first layer reads the batch in place where its backend can (it then has no input
        // buffer); else the batch is copied in.
        let first = match (&mut b.input, layers[0].prepared.as_ref()) {
            (Some(input), _) => device.write(&mut **input, images).map(|()| 0)?,
            (None, Some(prepared)) => prepared.forward_host(images, &mut *b.out[0], b.rows).map(|()| 1)?,
            (None, None) => {
                let why = "internal: no input buffer for a first layer that reads device buffers".into();
                return Err(Error::InvalidArgument { op: "infer", why });
            }
        };
        let last = layers.len() - 1;
        for (i, layer) in layers.iter().enumerate().skip(first) {
            let (done, rest) = b.out.split_at_mut(i);
            let x: &dyn DeviceBuffer = match i {
                0 => b.input.as_deref().ok_or_else(|| Error::InvalidArgument {
                    op: "infer",
                    why: "internal: the first layer has no input buffer".into(),
                })?,
                _ => &*done[i - 1],
            };
            let (z, h) = match (&layer.prepared, &mut b.pre[i]) {
                (Some(prepared), _) => {
                    prepared.forward(x, &mut *rest[0], b.rows)?;
                    continue;
                }
                (None, Some(z)) => (&mut **z, &mut *rest[0]),
                (None, None) => {
                    let why = "internal: no buffer for Z of a layer run as two launches".into();
                    return Err(Error::InvalidArgument { op: "infer", why });
                }
            };
            let (weight, bias) = (layer.weight.read("infer")?, layer.bias.read("infer")?);
            let gemm = Gemm::new(b.rows, layer.outputs, layer.inputs).trans(false, true);
            device.launch(Kernel::Matmul { a: x, b: &**weight, c: &mut *z, gemm }, None)?;
            let (rows, cols) = (b.rows, layer.outputs);
            let epilogue = if i < last {
                Kernel::BiasRelu { x: &*z, bias: &**bias, y: h, rows, cols }
            } else {
                Kernel::BiasAdd { x: &*z, bias: &**bias, y: h, rows, cols }
            };
            device.launch(epilogue, None)?;
        }
        device.backend().download(&*b.out[last], &mut b.logits)?;
        Ok(&b.logits)
    }

    /// The fraction of `data`'s images whose largest logit is their label, in batches of `batch`
    /// (the last one shorter); a row holding NaN counts as wrong. The images must have the model's
    /// inputs, which the caller checks with the image size in hand (rows × columns).
    pub fn accuracy(&mut self, data: &Dataset, batch: usize) -> Result<f64> {
        if data.features != self.inputs() {
            return Err(Error::InvalidArgument {
                op: "infer",
                why: format!(
                    "the model takes {} inputs, the images are {}×{} = {} pixels",
                    self.inputs(),
                    data.image_rows,
                    data.image_cols,
                    data.features
                ),
            });
        }
        let classes = self.classes();
        let (mut images, mut labels, mut correct) = (Vec::new(), Vec::new(), 0usize);
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(batch.max(1)) {
            data.gather(chunk, &mut images, &mut labels);
            let logits = self.forward(&images)?;
            correct += logits
                .chunks(classes)
                .zip(&labels)
                .filter(|(row, label)| crate::train::argmax(row) == Some(**label as usize))
                .count();
        }
        Ok(correct as f64 / data.len().max(1) as f64)
    }
}
