//! [`Labels`]: validated integer class labels, uploaded once per batch.

use crate::{Device, Error, Result, Tensor};

/// Class labels for `len` samples over `classes` classes, each checked `< classes`. On the device
/// they are f32 values (exact for any class count below 2²⁴), so every backend's buffers stay f32.
#[derive(Clone, Debug)]
pub struct Labels {
    tensor: Tensor,
    classes: usize,
}

impl Labels {
    pub fn new(labels: &[u32], classes: usize, device: &Device) -> Result<Self> {
        if classes == 0 || classes >= 1 << 24 {
            return Err(Error::InvalidArgument { op: "labels", why: format!("{classes} classes (need 1 ..= 2^24-1)") });
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            return Err(Error::LabelOutOfRange { label, index, classes });
        }
        let values: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        Ok(Self { tensor: Tensor::from_slice(&values, &[labels.len()], device)?, classes })
    }

    pub fn len(&self) -> usize {
        self.tensor.numel()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The labels as an f32 vector tensor on the device.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }
}
