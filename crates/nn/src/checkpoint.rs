//! Checkpoints in the safetensors format (loadable by PyTorch with `safetensors.torch.load_file`),
//! written atomically: a temporary file beside the target, synced, then renamed over it. The same
//! tensors and metadata always give the same bytes: the header is written here in a fixed order
//! (the metadata by key, then the tensors by name), not through a hash map's order.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

use kernelab_tensor::{Device, Error, Result, Tensor};

use crate::{Linear, Mlp};

fn format_error(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Format { path: path.display().to_string(), why: why.to_string() }
}

/// Writes named tensors (little-endian f32) and string metadata to `path`, atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], metadata: BTreeMap<String, String>) -> Result<()> {
    let mut named: Vec<(&str, Vec<f32>, &[usize])> =
        tensors.iter().map(|(name, t)| Ok((name.as_str(), t.to_vec()?, t.dims()))).collect::<Result<_>>()?;
    named.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = named.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format_error(path, format!("two tensors are named `{}`", pair[0].0)));
    }
    write_atomically(path, &encode(&named, &metadata))
}

/// The safetensors bytes of `tensors` (sorted by name, names unique) and `metadata`: an 8-byte
/// little-endian header length, the JSON header padded with spaces to a multiple of 8, then each
/// tensor's values in the header's order.
fn encode(tensors: &[(&str, Vec<f32>, &[usize])], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let mut entries = Vec::with_capacity(tensors.len() + 1);
    if !metadata.is_empty() {
        let pairs: Vec<String> = metadata.iter().map(|(k, v)| format!("{}:{}", text(k), text(v))).collect();
        entries.push(format!("\"__metadata__\":{{{}}}", pairs.join(",")));
    }
    let mut offset = 0;
    for (name, values, dims) in tensors {
        let end = offset + 4 * values.len();
        let shape: Vec<String> = dims.iter().map(usize::to_string).collect();
        entries.push(format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            text(name),
            shape.join(",")
        ));
        offset = end;
    }
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, values, _) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    bytes
}

/// Writes `bytes` to `path` atomically (see [`kernelab_tensor::files::write`]): a crash or a
/// concurrent writer leaves either the old file or one whole new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    kernelab_tensor::files::write(path, bytes)
}

/// Whether `path` holds a safetensors file, recognised by its start: a little-endian 64-bit
/// header length that fits in the file, then a header that is a JSON object. Only the header is
/// read (at most 100 MB, safetensors' own limit), so a large checkpoint is recognised cheaply.
pub fn is_checkpoint(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut size = [0u8; 8];
    if file.read_exact(&mut size).is_err() {
        return false;
    }
    let header_len = u64::from_le_bytes(size);
    if !(2..=100_000_000).contains(&header_len) || header_len > len.saturating_sub(8) {
        return false;
    }
    let mut header = Vec::new();
    file.take(header_len).read_to_end(&mut header).is_ok()
        && serde_json::from_slice::<serde_json::Value>(&header).is_ok_and(|v| v.is_object())
}

/// The contents of a checkpoint: named tensors (sorted by name) and string metadata.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: BTreeMap<String, String>,
}

/// Reads every tensor of a safetensors file onto `device`, with the file's metadata.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format_error(path, e))?;
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
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

/// The metadata key of the image size a model was trained on, `28x28` (rows × columns).
pub const IMAGE_KEY: &str = "image";

/// The string metadata of a safetensors file, read from its header alone.
pub fn metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format_error(path, e))?;
    Ok(header.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// The image size (rows, columns) a checkpoint's model was trained on, where the checkpoint
/// says ([`Mlp::save_for_images`]); `None` for one that does not (PyTorch's, an older one).
pub fn image_size(path: &Path) -> Result<Option<(usize, usize)>> {
    let Some(text) = metadata(path)?.remove(IMAGE_KEY) else { return Ok(None) };
    let parsed = text.split_once('x').and_then(|(r, c)| Some((r.parse().ok()?, c.parse().ok()?)));
    parsed.map(Some).ok_or_else(|| format_error(path, format!("metadata `{IMAGE_KEY}` is `{text}`, not ROWSxCOLS")))
}

impl Mlp {
    /// Saves the parameters under PyTorch `nn.Sequential` names, with the spec as metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_with(path, None)
    }

    /// [`Mlp::save`], and the size of the images the model reads (`rows × cols` = its inputs) as
    /// metadata, so that a later user of the checkpoint can refuse images of another shape with
    /// as many pixels.
    pub fn save_for_images(&self, path: &Path, rows: usize, cols: usize) -> Result<()> {
        self.save_with(path, Some((rows, cols)))
    }

    fn save_with(&self, path: &Path, image: Option<(usize, usize)>) -> Result<()> {
        let mut metadata =
            BTreeMap::from([("spec".to_string(), self.spec()), ("format".to_string(), "pt".to_string())]);
        if let Some((rows, cols)) = image {
            metadata.insert(IMAGE_KEY.to_string(), format!("{rows}x{cols}"));
        }
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
