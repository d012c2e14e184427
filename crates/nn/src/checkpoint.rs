//! Checkpoints in the safetensors format (loadable by PyTorch with `safetensors.torch.load_file`),
//! written atomically: a temporary file beside the target, synced, then renamed over it.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use kernelab_tensor::{Device, Error, Result, Tensor};

use crate::{Linear, Mlp};

fn format_error(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Format { path: path.display().to_string(), why: why.to_string() }
}

/// Writes named tensors (little-endian f32) and string metadata to `path`, atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    let bytes: Vec<(String, Vec<f32>, Vec<usize>)> =
        tensors.iter().map(|(name, t)| Ok((name.clone(), t.to_vec()?, t.dims().to_vec()))).collect::<Result<_>>()?;
    let raw: Vec<Vec<u8>> = bytes.iter().map(|(_, v, _)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = bytes
        .iter()
        .zip(&raw)
        .map(|((name, _, dims), data)| {
            TensorView::new(Dtype::F32, dims.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| format_error(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let encoded = safetensors::serialize(views, Some(metadata)).map_err(|e| format_error(path, e))?;
    write_atomically(path, &encoded)
}

/// Writes `bytes` to `path` atomically (see [`kernelab_tensor::files::write`]): a crash or a
/// concurrent writer leaves either the old file or one whole new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    kernelab_tensor::files::write(path, bytes)
}

/// The contents of a checkpoint: named tensors (sorted by name) and string metadata.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

/// Reads every tensor of a safetensors file onto `device`, with the file's metadata.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format_error(path, e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format_error(path, e))?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format_error(path, format!("tensor `{name}` is {:?}; only F32 is supported", view.dtype())));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.push((name, Tensor::from_slice(&values, view.shape(), device)?));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { tensors, metadata })
}

impl Mlp {
    /// Saves the parameters under PyTorch `nn.Sequential` names, with the spec as metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let metadata = HashMap::from([("spec".to_string(), self.spec()), ("format".to_string(), "pt".to_string())]);
        save(path, &self.named_parameters(), metadata)
    }

    /// Loads an MLP saved by [`Mlp::save`] (or by PyTorch from an `nn.Sequential` of Linear and
    /// ReLU layers), checking that consecutive layers fit.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let tensors = load(path, device)?.tensors;
        let find = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
        let mut layers: Vec<Linear> = Vec::new();
        while let Some(weight) = find(&format!("{}.weight", 2 * layers.len())) {
            let i = 2 * layers.len();
            let bias = find(&format!("{i}.bias"))
                .ok_or_else(|| format_error(path, format!("`{i}.weight` has no `{i}.bias`")))?;
            let fits = weight.shape().rank() == 2
                && bias.dims() == [weight.dims()[0]]
                && layers.last().is_none_or(|prev| prev.outputs() == weight.dims()[1]);
            if !fits {
                return Err(format_error(
                    path,
                    format!("layer {i}: weight {} and bias {} do not chain", weight.shape(), bias.shape()),
                ));
            }
            layers.push(Linear::from_parts(weight.requires_grad(), bias.requires_grad()));
        }
        if layers.is_empty() {
            return Err(format_error(path, "no `0.weight`: not an MLP checkpoint"));
        }
        // Every tensor must belong to a loaded layer: a gap (a missing middle layer) would
        // otherwise load as a smaller model.
        let used = 2 * layers.len();
        if let Some((name, _)) = tensors
            .iter()
            .find(|(n, _)| n.split_once('.').and_then(|(i, _)| i.parse::<usize>().ok()).is_none_or(|i| i >= used))
        {
            return Err(format_error(
                path,
                format!("`{name}` follows a missing layer (the layers found end at `{}.weight`)", used - 2),
            ));
        }
        for layer in &layers {
            let finite = layer.weight().to_vec()?.iter().chain(&layer.bias().to_vec()?).all(|v| v.is_finite());
            if !finite {
                return Err(format_error(path, "holds NaN or infinite parameters; a diverged run?"));
            }
        }
        Ok(Self::from_layers(layers))
    }
}
