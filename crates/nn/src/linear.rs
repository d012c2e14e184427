//! `Linear` and the MLP built from a spec string such as `784-512-256-10`.

use std::fmt;

use kernelab_tensor::{Device, Dtype, Error, Result, Tape, Tensor};

/// `y = x·Wᵀ + b` with `W` of shape `out × in` (PyTorch's layout, so checkpoints load there).
///
/// Not `Clone`: a parameter is a handle to storage that an optimizer updates in place, so a clone
/// would silently move with the original. [`Mlp::deep_copy`] makes an independent copy.
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// PyTorch's default initialization: Kaiming-uniform weights with `a = √5`, which is
    /// `U(−1/√in, 1/√in)`, and the bias drawn from the same range.
    pub fn new(inputs: usize, outputs: usize, seed: u64, device: &Device) -> Result<Self> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let weight = Tensor::rand_uniform(&[outputs, inputs], -bound, bound, seed, device)?.requires_grad();
        let bias = Tensor::rand_uniform(&[outputs], -bound, bound, seed ^ 0xb1a5, device)?.requires_grad();
        Ok(Self { weight, bias })
    }

    /// A layer of the given tensors (shapes `out × in` and `out`, checked by the caller).
    pub(crate) fn from_parts(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    /// `W`, `out × in`: a handle to the parameter itself, which an optimizer given it updates.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `b`, of length `out`: a handle to the parameter itself.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// A copy of this layer on `device`, with storage of its own; `trainable` marks the copies as
    /// parameters (`requires_grad`) or leaves them constants.
    fn copy_to(&self, device: &Device, trainable: bool) -> Result<Self> {
        let (weight, bias) = (self.weight.to(device)?, self.bias.to(device)?);
        weight.set_requires_grad(trainable);
        bias.set_requires_grad(trainable);
        Ok(Self { weight, bias })
    }

    /// A copy of this layer stored as `dtype` (same device), still a parameter.
    fn copy_as(&self, dtype: Dtype) -> Result<Self> {
        let (weight, bias) = (self.weight.to_dtype(dtype)?, self.bias.to_dtype(dtype)?);
        weight.set_requires_grad(true);
        bias.set_requires_grad(true);
        Ok(Self { weight, bias })
    }

    pub fn inputs(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn outputs(&self) -> usize {
        self.weight.dims()[0]
    }

    /// `x·Wᵀ + b`, through ReLU when `relu` is set (one fused kernel for bias and ReLU).
    pub fn forward(&self, tape: &mut Tape, x: &Tensor, relu: bool) -> Result<Tensor> {
        let z = tape.matmul_t(x, &self.weight, false, true)?;
        if relu { tape.bias_relu(&z, &self.bias) } else { tape.bias_add(&z, &self.bias) }
    }
}

/// A multilayer perceptron: Linear layers with ReLU between them, logits out.
///
/// Not `Clone`, for the reason [`Linear`] is not: two models that shared parameters would train
/// as one. [`Mlp::deep_copy`] and [`Mlp::to`] copy; [`Mlp::parameters`] hands out the shared
/// handles an optimizer needs, and says so.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

/// Parses `784-128-10` into layer widths (at least an input and an output, none zero).
pub fn parse_spec(spec: &str) -> Result<Vec<usize>> {
    let bad = |why: &str| Error::InvalidArgument { op: "mlp", why: format!("model spec `{spec}`: {why}") };
    let widths: Vec<usize> = spec
        .split('-')
        .map(|w| w.trim().parse::<usize>().map_err(|_| bad("expected widths joined by '-', e.g. 784-128-10")))
        .collect::<Result<_>>()?;
    if widths.len() < 2 {
        return Err(bad("needs at least an input and an output width"));
    }
    if widths.contains(&0) {
        return Err(bad("a width of 0"));
    }
    Ok(widths)
}

impl Mlp {
    /// A freshly initialized MLP; layer `i` is seeded with `seed + i`. The parameter count and
    /// the memory to build it are checked first (see [`crate::size`]).
    pub fn new(spec: &str, seed: u64, device: &Device) -> Result<Self> {
        let widths = parse_spec(spec)?;
        crate::size::check_fits(&format!("model {spec}"), &widths, crate::size::build_bytes(&widths))?;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(w[0], w[1], seed.wrapping_add(i as u64), device))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// A model of the given layers (which the caller has checked chain).
    pub(crate) fn from_layers(layers: Vec<Linear>) -> Self {
        Self { layers }
    }

    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        self.layers[0].weight.device()
    }

    /// The dtype the parameters are stored in (inputs are uploaded in it).
    pub fn dtype(&self) -> Dtype {
        self.layers[0].weight.dtype()
    }

    /// An independent copy stored as `dtype` on the same device (each value rounded to nearest,
    /// ties to even; see [`Mlp::overflows_in`] for values that become ±∞).
    pub fn to_dtype(&self, dtype: Dtype) -> Result<Self> {
        let layers = self.layers.iter().map(|l| l.copy_as(dtype)).collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// How many parameter values are finite here but ±∞ once rounded to `dtype` (f16 beyond
    /// ±65504; [`Dtype::count_overflows`]): one download of every parameter.
    pub fn overflows_in(&self, dtype: Dtype) -> Result<usize> {
        self.parameters().iter().try_fold(0, |n, p| Ok(n + dtype.count_overflows(&p.to_vec()?)))
    }

    /// An independent copy on the same device: the same values in storage of its own, so that
    /// training one leaves the other as it was.
    pub fn deep_copy(&self) -> Result<Self> {
        self.to(self.device())
    }

    /// The widths, `[784, 128, 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.layers[0].inputs()];
        w.extend(self.layers.iter().map(Linear::outputs));
        w
    }

    pub fn spec(&self) -> String {
        self.widths().iter().map(usize::to_string).collect::<Vec<_>>().join("-")
    }

    /// The logits for a batch `x` (`rows × inputs`).
    pub fn forward(&self, tape: &mut Tape, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(tape, &h, i < last)?;
        }
        Ok(h)
    }

    /// Every parameter, named as in PyTorch's `nn.Sequential(Linear, ReLU, Linear, …)`:
    /// `0.weight`, `0.bias`, `2.weight`, …
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [(format!("{}.weight", 2 * i), l.weight.clone()), (format!("{}.bias", 2 * i), l.bias.clone())]
            })
            .collect()
    }

    /// Handles to every parameter, in order: they share the model's storage, so an optimizer built
    /// on them updates this model (and only it should be given them).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    /// The number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// An independent copy of this model on `device` (a new copy even on its own device).
    pub fn to(&self, device: &Device) -> Result<Self> {
        let layers = self.layers.iter().map(|l| l.copy_to(device, true)).collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// A copy on `device` whose tensors are constants, not parameters (for [`crate::Frozen`]).
    pub(crate) fn constant_copy(&self, device: &Device) -> Result<Self> {
        let layers = self.layers.iter().map(|l| l.copy_to(device, false)).collect::<Result<_>>()?;
        Ok(Self { layers })
    }
}

impl fmt::Display for Mlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MLP {} ({} parameters)", self.spec(), self.parameter_count())
    }
}
