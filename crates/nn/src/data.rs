//! MNIST-format datasets: images and labels from IDX files, shuffled into mini-batches with a
//! seeded generator and scaled to [0, 1] as a batch is gathered.

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

/// A labelled set of flat images (`image_rows × image_cols` pixels, row by row), one label per
/// image.
///
/// The pixels stay bytes, as in the file, and become `byte / 255` in [`Dataset::gather`]: a batch's
/// 64 random rows then read 50 KB instead of 200 KB from a training set (47 MB instead of 188 MB)
/// that no cache holds, which was a tenth of a 784-128-10 step on one thread.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `len × features` bytes, row by row.
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
    /// Pixels an image: `image_rows · image_cols`.
    pub features: usize,
    /// An image's height and width, as the IDX header gives them.
    pub image_rows: usize,
    pub image_cols: usize,
    pub classes: usize,
}

/// Every file of an MNIST-format folder that [`Dataset::load`] may read (`stem` and `stem.gz` of
/// both splits' images and labels) and that exists: what a command must never write over.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    [Split::Train, Split::Test]
        .into_iter()
        .flat_map(|split| <[&str; 2]>::from(split.stems()))
        .flat_map(|stem| [dir.join(stem), dir.join(format!("{stem}.gz"))])
        .filter(|p| p.exists())
        .collect()
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
            pixels: images.data,
            labels: labels.data.iter().map(|&l| u32::from(l)).collect(),
            features,
            image_rows: images.dims[1],
            image_cols: images.dims[2],
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
            pixels: self.pixels[..n * self.features].to_vec(),
            labels: self.labels[..n].to_vec(),
            features: self.features,
            image_rows: self.image_rows,
            image_cols: self.image_cols,
            classes: self.classes,
        }
    }

    /// A fingerprint of everything training reads: the count, the image size, the classes, every
    /// pixel and every label (FNV-1a over their bytes), so that two processes can check they hold
    /// the same data by comparing 8 bytes.
    pub fn digest(&self) -> u64 {
        let sizes = [self.len(), self.image_rows, self.image_cols, self.classes].map(|n| n as u64);
        let labels: Vec<u8> = self.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
        let mut hash =
            crate::fnv::extend(crate::fnv::OFFSET, &sizes.iter().flat_map(|n| n.to_le_bytes()).collect::<Vec<u8>>());
        hash = crate::fnv::extend(hash, &self.pixels);
        crate::fnv::extend(hash, &labels)
    }

    /// Image `i`'s values in [0, 1].
    pub fn image(&self, i: usize) -> Vec<f32> {
        self.row(i).iter().map(|&b| scale(b)).collect()
    }

    /// Copies the samples at `indices` into `images` (as values in [0, 1]) and `labels`, whose
    /// old contents are replaced (a buffer of the batch's size is reused as it is, not cleared).
    pub fn gather(&self, indices: &[usize], images: &mut Vec<f32>, labels: &mut Vec<u32>) {
        images.resize(indices.len() * self.features, 0.0);
        self.scale_rows(indices, images);
        labels.clear();
        labels.extend(indices.iter().map(|&i| self.labels[i]));
    }

    /// The rows at `indices`, scaled, into `out`: the loop compiled for the widest vector unit
    /// this CPU has. Built for the baseline target, its division ran four lanes at a time, and
    /// a batch of 64 rows of 784 took 7.7 µs on one Zen 5 core (5% of a training step); with
    /// AVX-512 2.0 µs, the same quotients.
    fn scale_rows(&self, indices: &[usize], out: &mut [f32]) {
        #[inline(always)]
        fn rows(data: &Dataset, indices: &[usize], out: &mut [f32]) {
            for (&i, out) in indices.iter().zip(out.chunks_exact_mut(data.features)) {
                out.iter_mut().zip(data.row(i)).for_each(|(out, &b)| *out = scale(b));
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512(data: &Dataset, indices: &[usize], out: &mut [f32]) {
                rows(data, indices, out)
            }
            #[target_feature(enable = "avx2")]
            fn avx2(data: &Dataset, indices: &[usize], out: &mut [f32]) {
                rows(data, indices, out)
            }
            // SAFETY (both): the CPU has the instruction set, checked just before the call.
            if is_x86_feature_detected!("avx512f") {
                return unsafe { avx512(self, indices, out) };
            }
            if is_x86_feature_detected!("avx2") {
                return unsafe { avx2(self, indices, out) };
            }
        }
        rows(self, indices, out)
    }

    /// Starts loading the samples at `indices` into the caches without waiting for them: called
    /// with the next batch while this one trains, so that its [`Dataset::gather`] does not wait on
    /// memory. The rows are random and too short for the hardware's prefetcher, and waiting on
    /// each row's misses in turn was a third of the gather.
    pub fn prefetch(&self, indices: &[usize]) {
        for &i in indices {
            prefetch(self.row(i));
        }
    }

    fn row(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.features..(i + 1) * self.features]
    }
}

/// The training and the test set of one MNIST-format folder, of the same image size.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub train: Dataset,
    pub test: Dataset,
}

impl Data {
    /// Both splits of `dir` for a model of `inputs` inputs and `classes` outputs, the training set
    /// cut to its first `limit` images. The test images must have the training images' rows and
    /// columns (not only as many pixels: 14×56 is not 28×28), and those must be the model's inputs.
    pub fn load(dir: &Path, inputs: usize, classes: usize, limit: Option<usize>) -> Result<Self> {
        let train = Dataset::load(dir, Split::Train, classes)?;
        let test = Dataset::load(dir, Split::Test, classes)?;
        let bad = |why: String| Err(Error::InvalidArgument { op: "data", why });
        let size = |d: &Dataset| format!("{}×{}", d.image_rows, d.image_cols);
        if train.features != inputs {
            return bad(format!(
                "the model takes {inputs} inputs, the images in {} have {} pixels ({})",
                dir.display(),
                train.features,
                size(&train)
            ));
        }
        if (test.image_rows, test.image_cols) != (train.image_rows, train.image_cols) {
            return bad(format!(
                "the test images in {} are {} pixels, the training images {}",
                dir.display(),
                size(&test),
                size(&train)
            ));
        }
        let train = match limit {
            Some(n) => train.take(n),
            None => train,
        };
        Ok(Self { train, test })
    }

    /// [`Dataset::digest`] of both sets: training, then test.
    pub fn digests(&self) -> (u64, u64) {
        (self.train.digest(), self.test.digest())
    }
}

/// Asks for every cache line of `bytes` without waiting for them.
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is a hint that never faults, and the address is inside `bytes`.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// A pixel byte as a value in [0, 1]: `byte / 255` by division, as the reference frameworks
/// compute it (a multiply by 1/255 differs in the last bit for 126 of the 256 bytes).
fn scale(byte: u8) -> f32 {
    f32::from(byte) / 255.0
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
    fn gather_scales_bytes_and_reuses_its_buffers() {
        let (features, count) = (3, 5);
        let pixels: Vec<u8> = (0..features * count).map(|i| (i * 61 % 256) as u8).collect();
        let data = Dataset {
            pixels: pixels.clone(),
            labels: vec![4, 3, 2, 1, 0],
            features,
            image_rows: 1,
            image_cols: features,
            classes: 5,
        };
        let (mut images, mut labels) = (vec![f32::NAN; 100], vec![9; 7]);
        // Larger, smaller, then larger again than the buffer's last contents.
        for batch in [&[4, 0, 2, 2][..], &[1], &[3, 1, 0]] {
            data.prefetch(batch);
            data.gather(batch, &mut images, &mut labels);
            let expected: Vec<f32> = batch
                .iter()
                .flat_map(|&i| pixels[i * features..(i + 1) * features].iter())
                .map(|&b| b as f32 / 255.0)
                .collect();
            assert_eq!(images, expected);
            assert_eq!(labels, batch.iter().map(|&i| 4 - i as u32).collect::<Vec<_>>());
            assert_eq!(data.image(batch[0]), expected[..features]);
        }
    }

    #[test]
    fn the_digest_sees_every_pixel_label_and_size() {
        let data = Dataset {
            pixels: (0..60).map(|i| (i * 7) as u8).collect(),
            labels: vec![0, 1, 2, 0, 1],
            features: 12,
            image_rows: 3,
            image_cols: 4,
            classes: 3,
        };
        let base = data.digest();
        assert_eq!(base, data.clone().digest(), "the same data, the same digest");
        for at in [0, 7, 8, 59] {
            let mut other = data.clone();
            other.pixels[at] ^= 0x80;
            assert_ne!(other.digest(), base, "pixel {at}");
        }
        let mut other = data.clone();
        other.labels[4] = 2;
        assert_ne!(other.digest(), base, "a label");
        let transposed = Dataset { image_rows: 4, image_cols: 3, ..data.clone() };
        assert_ne!(transposed.digest(), base, "the image size");
        assert_ne!(data.take(4).digest(), base, "the count");
    }

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
