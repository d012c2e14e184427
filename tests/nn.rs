//! The `nn` crate: data loading and its errors, Adam against hand-computed values, checkpoints,
//! data-parallel equivalence, and convergence on real Fashion-MNIST.

use std::path::{Path, PathBuf};

use kernelab::bench::conformance::devices_under_test;
use kernelab::cpu::CpuBackend;
use kernelab::nn::{
    Adam, Data, DataParallel, Dataset, Fit, FitConfig, Frozen, Mlp, Objective, Optimizer, Split, Trainer, evaluate,
    fit, idx,
};
use kernelab::{Device, Tape, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kernelab-nn-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a small MNIST-format folder: `n` 2×2 images and labels.
fn tiny_dataset(dir: &Path, n: usize, labels: &[u8]) {
    for (images, label_file) in
        [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        let pixels: Vec<u8> = (0..n * 4).map(|i| (i * 37 % 256) as u8).collect();
        idx::write(&dir.join(images), &[n, 2, 2], &pixels).unwrap();
        idx::write(&dir.join(label_file), &[labels.len()], labels).unwrap();
    }
}

#[test]
fn idx_folders_load_raw_and_gzipped() {
    let dir = temp_dir("raw");
    tiny_dataset(&dir, 3, &[0, 2, 1]);
    let raw = Dataset::load(&dir, Split::Train, 3).unwrap();
    assert_eq!((raw.len(), raw.features, raw.labels.clone()), (3, 4, vec![0, 2, 1]));
    assert_eq!(raw.image(0)[1], 37.0 / 255.0);

    let gz = temp_dir("gz");
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &bytes).unwrap();
        std::fs::write(gz.join(format!("{name}.gz")), enc.finish().unwrap()).unwrap();
    }
    assert_eq!(Dataset::load(&gz, Split::Train, 3).unwrap(), raw);
}

#[test]
fn every_idx_error_names_the_file_and_the_problem() {
    let missing = Dataset::load(Path::new("/nonexistent-kernelab"), Split::Train, 10).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent-kernelab is not a directory with MNIST-format files"), "{missing}");
    let empty = temp_dir("empty-folder");
    let absent = Dataset::load(&empty, Split::Train, 10).unwrap_err().to_string();
    assert!(absent.contains("train-images-idx3-ubyte") && absent.contains(".gz exists"), "{absent}");

    let dir = temp_dir("bad-magic");
    tiny_dataset(&dir, 3, &[0, 1, 2]);
    idx::write(&dir.join("train-images-idx3-ubyte"), &[12], &[0; 12]).unwrap();
    let err = Dataset::load(&dir, Split::Train, 10).unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte: bad magic number 0x00000801, expected 0x00000803"), "{err}");

    let dir = temp_dir("truncated");
    tiny_dataset(&dir, 3, &[0, 1, 2]);
    let path = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let err = Dataset::load(&dir, Split::Train, 10).unwrap_err().to_string();
    assert!(err.contains("truncated") && err.contains("the file holds 7"), "{err}");

    let dir = temp_dir("counts");
    tiny_dataset(&dir, 3, &[0, 1]);
    let err = Dataset::load(&dir, Split::Train, 10).unwrap_err().to_string();
    assert!(err.contains("train-labels-idx1-ubyte: 2 labels for 3 images"), "{err}");

    let dir = temp_dir("label-range");
    tiny_dataset(&dir, 3, &[0, 10, 1]);
    let err = Dataset::load(&dir, Split::Train, 10).unwrap_err().to_string();
    assert!(err.contains("label 10 at position 1 is out of range for 10 classes"), "{err}");

    let dir = temp_dir("corrupt-gz");
    tiny_dataset(&dir, 3, &[0, 1, 2]);
    std::fs::remove_file(dir.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let err = Dataset::load(&dir, Split::Train, 10).unwrap_err().to_string();
    assert!(err.contains("corrupt gzip stream"), "{err}");
}

/// Test images are checked against the training images by rows and columns, not by pixel count:
/// 14×56 beside 28×28 is another picture of the same 784 pixels.
#[test]
fn test_images_must_have_the_training_images_rows_and_columns() {
    let dir = temp_dir("dims");
    let pixels = vec![7u8; 3 * 784];
    idx::write(&dir.join("train-images-idx3-ubyte"), &[3, 28, 28], &pixels).unwrap();
    idx::write(&dir.join("t10k-images-idx3-ubyte"), &[3, 14, 56], &pixels).unwrap();
    for labels in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"] {
        idx::write(&dir.join(labels), &[3], &[0, 1, 2]).unwrap();
    }
    let err = Data::load(&dir, 784, 10, None).unwrap_err().to_string();
    let expected = format!("the test images in {} are 14×56 pixels, the training images 28×28", dir.display());
    assert!(err.contains(&expected), "{err}");
    idx::write(&dir.join("t10k-images-idx3-ubyte"), &[3, 28, 28], &pixels).unwrap();
    let data = Data::load(&dir, 784, 10, Some(2)).unwrap();
    assert_eq!((data.train.len(), data.test.len(), data.test.image_rows, data.test.image_cols), (2, 3, 28, 28));
    let err = Data::load(&dir, 100, 10, None).unwrap_err().to_string();
    assert!(err.contains("the model takes 100 inputs") && err.contains("have 784 pixels (28×28)"), "{err}");
}

/// Two Adam steps on `p = [1, −2]` with gradients `[0.5, −0.1]` then `[−0.2, 0.4]`, lr 0.1,
/// worked by hand from PyTorch's formulas (m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), p −= lr·m̂/(√v̂+ε)).
#[test]
fn adam_matches_hand_computed_steps() {
    let d = cpu();
    let p = Tensor::from_slice(&[1.0, -2.0], &[2], &d).unwrap().requires_grad();
    let mut adam = Adam::new(vec![p.clone()], 0.1).unwrap();
    let expected: [[f64; 2]; 2] = {
        let (mut m, mut v, mut x) = ([0.0f64; 2], [0.0f64; 2], [1.0f64, -2.0]);
        let mut out = [[0.0; 2]; 2];
        for (t, g) in [[0.5, -0.1], [-0.2, 0.4]].iter().enumerate() {
            for i in 0..2 {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                let (mh, vh) = (m[i] / (1.0 - 0.9f64.powi(t as i32 + 1)), v[i] / (1.0 - 0.999f64.powi(t as i32 + 1)));
                x[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
            out[t] = x;
        }
        out
    };
    // The first step moves each parameter by lr·g/(|g| + ε) ≈ lr against its gradient's sign.
    assert!((expected[0][0] - 0.9).abs() < 1e-6 && (expected[0][1] + 1.9).abs() < 1e-6);
    for (t, grad) in [[0.5f32, -0.1], [-0.2, 0.4]].iter().enumerate() {
        let mut tape = Tape::new();
        let w = Tensor::from_slice(grad, &[2, 1], &d).unwrap();
        let row = tape.reshape(&p, &[1, 2]).unwrap();
        let loss = tape.matmul(&row, &w).unwrap(); // ∂loss/∂p = grad
        adam.step(&tape.backward(&loss).unwrap()).unwrap();
        let got = p.to_vec().unwrap();
        for i in 0..2 {
            assert!((f64::from(got[i]) - expected[t][i]).abs() < 1e-6, "step {}: {got:?} vs {:?}", t + 1, expected[t]);
        }
    }
    assert_eq!(adam.steps(), 2);
}

#[test]
fn pytorch_default_init_bounds() {
    let d = cpu();
    let mlp = Mlp::new("784-128-10", 0, &d).unwrap();
    assert_eq!(mlp.parameter_count(), 784 * 128 + 128 + 128 * 10 + 10);
    let w = mlp.layers()[0].weight().to_vec().unwrap();
    let bound = 1.0 / 784f32.sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(w.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.95 * bound, "U(±1/√fan_in) fills its range");
    assert!(Mlp::new("784-x-10", 0, &d).unwrap_err().to_string().contains("784-x-10"));
    assert!(Mlp::new("784", 0, &d).is_err());
}

#[test]
fn checkpoints_round_trip_and_refuse_garbage() {
    let d = cpu();
    let mlp = Mlp::new("6-5-3", 3, &d).unwrap();
    let path = temp_dir("ckpt").join("model.safetensors");
    mlp.save(&path).unwrap();
    let back = Mlp::load(&path, &d).unwrap();
    assert_eq!(back.spec(), "6-5-3");
    for ((name, a), (_, b)) in mlp.named_parameters().iter().zip(back.named_parameters()) {
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap(), "{name}");
    }
    let metadata = kernelab::nn::checkpoint::load(&path, &d).unwrap().metadata;
    assert_eq!(metadata.get("spec").map(String::as_str), Some("6-5-3"));
    assert!(!path.with_file_name(".model.safetensors.tmp").exists(), "the temporary file is renamed away");

    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = Mlp::load(&path, &d).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

/// The same model saves to the same bytes, whatever order its metadata was built in: the header
/// is written in a fixed order (a hash map's order differed between saves in one process).
#[test]
fn checkpoints_are_byte_stable() {
    let d = cpu();
    let dir = temp_dir("stable");
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let mlp = Mlp::new("6-5-4-3", 3, &d).unwrap();
    let keys: Vec<(String, String)> = (0..12).map(|i| (format!("key{i}"), format!("value \"{i}\""))).collect();
    kernelab::nn::checkpoint::save(&a, &mlp.named_parameters(), keys.iter().cloned().collect()).unwrap();
    let first = std::fs::read(&a).unwrap();
    for round in 0..8 {
        let mut named = mlp.named_parameters();
        let len = named.len();
        named.rotate_left(round % len);
        kernelab::nn::checkpoint::save(&b, &named, keys.iter().rev().cloned().collect()).unwrap();
        assert!(std::fs::read(&b).unwrap() == first, "round {round}: another byte order");
    }
    let back = kernelab::nn::checkpoint::load(&b, &d).unwrap();
    assert_eq!(back.metadata, keys.iter().cloned().collect());
    // The header is safetensors' own: an 8-byte length, JSON padded to 8, the tensors by name.
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&first[8..8 + header_len]).unwrap();
    assert_eq!(header["0.bias"]["data_offsets"], serde_json::json!([0, 20]));
    assert_eq!(header["0.weight"]["shape"], serde_json::json!([5, 6]));
    assert_eq!(first.len(), 8 + header_len + 4 * mlp.parameter_count());
    mlp.save(&a).unwrap();
    let once = std::fs::read(&a).unwrap();
    mlp.save(&a).unwrap();
    assert!(std::fs::read(&a).unwrap() == once, "Mlp::save twice, the same bytes");
}

/// Two CPU replicas with an uneven split take the same steps as one device: the all-reduced
/// gradient is the gradient of the mean over the whole batch.
#[test]
fn data_parallel_matches_one_device() {
    let (d0, d1, d2) = (cpu(), cpu(), cpu());
    let model = Mlp::new("12-8-4", 5, &d0).unwrap();
    let reference = model.to(&d0).unwrap();
    let mut single = Trainer::adam(model, 1e-2, Objective::CrossEntropy).unwrap();
    let mut parallel = DataParallel::new(&reference, &[d1, d2], &[1.0, 2.0], 1e-2, &Objective::CrossEntropy).unwrap();
    assert_eq!(parallel.shares(10), vec![3, 7]);
    for step in 0..6u32 {
        let images: Vec<f32> = (0..10 * 12).map(|i| ((i as u32 * 7 + step * 13) % 17) as f32 / 17.0).collect();
        let labels: Vec<u32> = (0..10).map(|i| (i + step) % 4).collect();
        Fit::step(&mut single, &images, &labels).unwrap();
        Fit::step(&mut parallel, &images, &labels).unwrap();
    }
    for replica in parallel.replicas() {
        for ((name, a), (_, b)) in single.model().named_parameters().iter().zip(replica.model().named_parameters()) {
            for (x, y) in a.to_vec().unwrap().iter().zip(b.to_vec().unwrap()) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + x.abs()), "{name}: {x} vs {y}");
            }
        }
    }
    let (one, two) = (Fit::take_loss_sum(&mut single).unwrap(), Fit::take_loss_sum(&mut parallel).unwrap());
    assert!((one - two).abs() < 1e-4 * one, "{one} vs {two}");
}

fn fashion_mnist() -> Option<(Dataset, Dataset)> {
    let dir = Path::new(kernelab::nn::FASHION_MNIST_DIR);
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must install dataset-fashion-mnist");
        eprintln!("skipped: {} is missing (apt-get install dataset-fashion-mnist)", dir.display());
        return None;
    }
    let train = Dataset::load(dir, Split::Train, 10).unwrap().take(5000);
    let test = Dataset::load(dir, Split::Test, 10).unwrap().take(2000);
    Some((train, test))
}

/// One epoch on 5,000 real images reaches at least 75% test accuracy, on every backend.
#[test]
fn converges_on_a_real_subset() {
    let Some((train, test)) = fashion_mnist() else { return };
    for device in devices_under_test().unwrap() {
        let model = Mlp::new("784-128-10", 0, &device).unwrap();
        let (before, _) = evaluate(&model, &test, 500).unwrap();
        let mut trainer = Trainer::adam(model, 1e-3, Objective::CrossEntropy).unwrap();
        let config =
            FitConfig { epochs: 1, batch: 64, seed: 0, name: "model".into(), profiled: vec![], allow_nonfinite: false };
        let logs = fit(&mut trainer, &train, &test, &config, |_| {}).unwrap();
        let last = &logs[0];
        assert!(last.test_acc >= 0.75, "{device}: {:.1}% after one epoch", 100.0 * last.test_acc);
        assert!(last.test_loss < before && last.train_loss.is_finite(), "{device}: {last:?}");
    }
}

/// Distillation runs the teacher without a tape and trains the student on the combined loss: one
/// epoch on 5,000 images takes the student from chance (10%) well past half way to the teacher.
#[test]
fn distillation_trains_a_student() {
    let Some((train, test)) = fashion_mnist() else { return };
    let d = cpu();
    let teacher = Mlp::new("784-64-10", 1, &d).unwrap();
    let mut t = Trainer::adam(teacher, 1e-3, Objective::CrossEntropy).unwrap();
    let config =
        FitConfig { epochs: 2, batch: 64, seed: 0, name: "teacher".into(), profiled: vec![], allow_nonfinite: false };
    let teacher_acc = fit(&mut t, &train, &test, &config, |_| {}).unwrap()[1].test_acc;
    let student = Mlp::new("784-32-10", 2, &d).unwrap();
    let objective = Objective::Distill { teacher: Frozen::copy_of(t.model()).unwrap(), temperature: 4.0, alpha: 0.9 };
    let mut s = Trainer::adam(student, 1e-3, objective).unwrap();
    let config = FitConfig { epochs: 1, name: "distilled".into(), ..config };
    let log = &fit(&mut s, &train, &test, &config, |_| {}).unwrap()[0];
    eprintln!("teacher {:.1}%, distilled student {:.1}%", 100.0 * teacher_acc, 100.0 * log.test_acc);
    assert!(log.test_acc > 0.6 && teacher_acc > 0.75, "teacher {teacher_acc}, student {log:?}");
}

/// Three Adam steps of a 784-32-10 MLP on every other backend match the same steps on the CPU.
#[test]
fn a_training_step_matches_the_cpu_on_every_backend() {
    let cpu_device = cpu();
    let images: Vec<f32> = (0..48 * 784).map(|i| ((i * 31) % 255) as f32 / 255.0).collect();
    let labels: Vec<u32> = (0..48).map(|i| i % 10).collect();
    let train = |device: &Device| {
        let model = Mlp::new("784-32-10", 3, device).unwrap();
        let adam = Adam::new(model.parameters(), 1e-3).unwrap();
        let mut trainer = Trainer::new(model, Box::new(adam), Objective::CrossEntropy).unwrap();
        for _ in 0..3 {
            Fit::step(&mut trainer, &images, &labels).unwrap();
        }
        let loss = Fit::take_loss_sum(&mut trainer).unwrap();
        (
            trainer.model().named_parameters().into_iter().map(|(n, t)| (n, t.to_vec().unwrap())).collect::<Vec<_>>(),
            loss,
        )
    };
    let (reference, reference_loss) = train(&cpu_device);
    for device in devices_under_test().unwrap().iter().filter(|d| d.kind() != kernelab::BackendKind::Cpu) {
        let (params, loss) = train(device);
        assert!((loss - reference_loss).abs() < 1e-4 * reference_loss, "{device}: loss {loss} vs CPU {reference_loss}");
        for ((name, got), (_, want)) in params.iter().zip(&reference) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "{device} {name}: {g} vs CPU {w}");
            }
        }
    }
}
