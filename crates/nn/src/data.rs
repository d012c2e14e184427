//! MNIST-format datasets: images and labels from IDX files, scaled to [0, 1], shuffled into
//! mini-batches with a seeded generator.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use kernelab_tensor::{Error, Result};

use crate::idx;

/// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Which half of an MNIST-format folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn stems(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }
}

/// A labelled set of flat images: `len × features` values in [0, 1], one label per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    pub features: usize,
    pub classes: usize,
}

/// `stem` or `stem.gz` in `dir`, or an error naming both.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if let Some(found) = [&raw, &gz].into_iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let why = if !dir.is_dir() {
        format!("{} is not a directory with MNIST-format files", dir.display())
    } else if let Some(p) = [&raw, &gz].into_iter().find(|p| p.exists()) {
        format!("{} exists but is not a regular file (a directory?)", p.display())
    } else {
        format!("neither it nor {} exists", gz.display())
    };
    Err(Error::Io { path: raw.display().to_string(), source: std::io::Error::new(std::io::ErrorKind::NotFound, why) })
}

impl Dataset {
    /// Loads one split of an MNIST-format folder (`train-images-idx3-ubyte[.gz]`, …), checking that
    /// image and label counts agree and that every label is `< classes`.
    pub fn load(dir: &Path, split: Split, classes: usize) -> Result<Self> {
        let (image_stem, label_stem) = split.stems();
        let (image_path, label_path) = (find(dir, image_stem)?, find(dir, label_stem)?);
        let images = idx::read(&image_path, 3)?;
        let labels = idx::read(&label_path, 1)?;
        let (count, features) = (images.dims[0], images.dims[1] * images.dims[2]);
        if count == 0 || features == 0 {
            return Err(Error::Format {
                path: image_path.display().to_string(),
                why: format!(
                    "holds no images ({count} of {}x{} pixels): there is nothing to train or test on",
                    images.dims[1], images.dims[2]
                ),
            });
        }
        if labels.dims[0] != count {
            return Err(Error::Format {
                path: label_path.display().to_string(),
                why: format!("{} labels for {count} images in {}", labels.dims[0], image_path.display()),
            });
        }
        if let Some((index, &label)) = labels.data.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
            return Err(Error::Format {
                path: label_path.display().to_string(),
                why: format!("label {label} at position {index} is out of range for {classes} classes"),
            });
        }
        Ok(Self {
            images: images.data.iter().map(|&v| f32::from(v) / 255.0).collect(),
            labels: labels.data.iter().map(|&l| u32::from(l)).collect(),
            features,
            classes,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` samples (all of them when `n ≥ len`).
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            images: self.images[..n * self.features].to_vec(),
            labels: self.labels[..n].to_vec(),
            features: self.features,
            classes: self.classes,
        }
    }

    /// Copies the samples at `indices` into `images` and `labels` (cleared first).
    pub fn gather(&self, indices: &[usize], images: &mut Vec<f32>, labels: &mut Vec<u32>) {
        images.clear();
        labels.clear();
        for &i in indices {
            images.extend_from_slice(&self.images[i * self.features..(i + 1) * self.features]);
            labels.push(self.labels[i]);
        }
    }
}

/// The sample order of one epoch: shuffled by a generator seeded with `(seed, epoch)`, so every
/// epoch differs and every run repeats.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_permutations_that_differ_and_repeat() {
        let a = epoch_order(100, 7, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_eq!(a, epoch_order(100, 7, 0));
    }
}
