//! The forward-only inference path ([`kernelab::nn::Inference`]) against the training forward
//! ([`Mlp::forward`] under a tape), on every available backend, and its refusals.

use kernelab::bench::conformance::devices_under_test;
use kernelab::nn::infer::{check_batch, multiply_adds};
use kernelab::nn::{Dataset, Inference, Mlp};
use kernelab::{Device, Tape, Tensor};

/// `rows` images of `inputs` values in [0, 1), varied enough that every unit of a layer sees
/// positive and negative pre-activations.
fn images(rows: usize, inputs: usize) -> Vec<f32> {
    (0..rows * inputs).map(|i| ((i * 7919 + 13) % 1009) as f32 / 1009.0).collect()
}

/// The logits of the training forward: `Mlp::forward` on a tape that records (the model's
/// parameters require gradients, so every op is recorded as in a training step).
fn training_logits(model: &Mlp, x: &[f32], rows: usize) -> Vec<f32> {
    let input = Tensor::from_slice(x, &[rows, model.widths()[0]], model.device()).unwrap();
    let mut tape = Tape::new();
    let logits = model.forward(&mut tape, &input).unwrap();
    assert!(!tape.is_empty(), "the training forward records its ops");
    logits.to_vec().unwrap()
}

/// Equal bit for bit: the same kernels with the same variants on the same operands. The CPU runs
/// prepared layers (weights packed once, bias and ReLU applied as the product is stored), whose
/// arithmetic is the default matmul's and `bias_relu`'s in the same order; the other backends
/// run the launches the training forward makes. So no tolerance is needed on any of them (the
/// CPU's and lavapipe's are checked here).
#[test]
fn the_logits_equal_the_training_forward_bit_for_bit_on_every_backend() {
    let devices = devices_under_test().unwrap();
    for device in &devices {
        for spec in ["784-128-10", "784-512-256-10", "5-3-7-2"] {
            let model = Mlp::new(spec, 11, device).unwrap();
            let mut inference = Inference::new(&model).unwrap();
            let inputs = model.widths()[0];
            if device.kind() == kernelab::BackendKind::Cpu {
                assert!(inference.is_prepared(), "the CPU prepares every layer of {spec}");
            }
            // Batch sizes that take each kernel path (1, 3, 8: dot products; 64: the transposed
            // broadcast; 257 and 1100: the packed GEMM for the first layer, 1100 for all), and a
            // size seen twice (its buffers reused, their old contents ignored).
            for rows in [1, 3, 8, 64, 257, 1100, 3] {
                let x = images(rows, inputs);
                let want = training_logits(&model, &x, rows);
                let got = inference.forward(&x).unwrap().to_vec();
                assert_eq!(got.len(), rows * model.widths().last().unwrap());
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert!(bits(&got) == bits(&want), "{device} {spec} batch {rows}: the logits differ");
                assert!(got.iter().all(|v| v.is_finite()) && got.iter().any(|&v| v != 0.0), "{device} {spec}");
            }
        }
    }
}

/// The CPU's few-row products split the teacher's layers over the threads by the bytes of their
/// weights, reading their groups in alternate directions from call to call: on 1 and on 2
/// threads, over several calls of each batch size (both directions) on images that change from
/// call to call, the logits are still the training forward's bit for bit.
#[test]
fn the_cpu_teacher_at_few_rows_equals_the_training_forward_on_one_and_two_threads() {
    let device = Device::new(kernelab::cpu::CpuBackend::new());
    let model = Mlp::new("784-512-256-10", 12, &device).unwrap();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut inference = Inference::new(&model).unwrap();
            for rows in [1, 2, 1, 3, 1] {
                for call in 0..3 {
                    // Other images at every call, so that an output left unwritten keeps the
                    // previous call's value, which differs.
                    let x: Vec<f32> = images(rows + 1, 784)[(call % 2) * 784..][..rows * 784].to_vec();
                    let want = training_logits(&model, &x, rows);
                    let got = inference.forward(&x).unwrap().to_vec();
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert!(
                        bits(&got) == bits(&want),
                        "{threads} threads, batch {rows}, call {call}: the logits differ"
                    );
                }
            }
        });
    }
}

/// The path is checked against something other than itself too: a 2-2-2 model whose logits
/// are worked out by hand (ReLU clipping one hidden unit).
#[test]
fn a_hand_computed_model() {
    let device = Device::new(kernelab::cpu::CpuBackend::new());
    let dir = std::env::temp_dir().join(format!("kernelab-infer-hand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hand.safetensors");
    // W1 = [[1, 2], [-1, -1]], b1 = [0.5, 0]; W2 = [[1, 1], [2, -3]], b2 = [0, 1].
    let t = |v: &[f32], dims: &[usize]| Tensor::from_slice(v, dims, &device).unwrap();
    let tensors = vec![
        ("0.weight".to_string(), t(&[1.0, 2.0, -1.0, -1.0], &[2, 2])),
        ("0.bias".to_string(), t(&[0.5, 0.0], &[2])),
        ("2.weight".to_string(), t(&[1.0, 1.0, 2.0, -3.0], &[2, 2])),
        ("2.bias".to_string(), t(&[0.0, 1.0], &[2])),
    ];
    kernelab::nn::checkpoint::save(&path, &tensors, Default::default()).unwrap();
    let model = Mlp::load(&path, &device).unwrap();
    let mut inference = Inference::new(&model).unwrap();
    // x = [1, 1]: h = relu([3.5, -2]) = [3.5, 0]; logits = [3.5, 8].
    // x = [-1, 0]: h = relu([-0.5, 1]) = [0, 1]; logits = [1, -2].
    assert_eq!(inference.forward(&[1.0, 1.0, -1.0, 0.0]).unwrap(), [3.5, 8.0, 1.0, -2.0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accuracy_counts_the_largest_logit_against_the_label() {
    let device = Device::new(kernelab::cpu::CpuBackend::new());
    let model = Mlp::new("4-3", 2, &device).unwrap();
    let mut inference = Inference::new(&model).unwrap();
    let pixels: Vec<u8> = (0..7 * 4).map(|i| (i * 37 % 256) as u8).collect();
    let x: Vec<f32> = pixels.iter().map(|&b| f32::from(b) / 255.0).collect();
    let predicted: Vec<u32> = inference
        .forward(&x)
        .unwrap()
        .chunks(3)
        .map(|r| (0..3).fold(0, |best, i| if r[i] > r[best] { i } else { best }) as u32)
        .collect();
    // Labels: the prediction for the first five images, another class for the last two.
    let labels: Vec<u32> = predicted.iter().enumerate().map(|(i, &p)| if i < 5 { p } else { (p + 1) % 3 }).collect();
    let data = Dataset { pixels, labels, features: 4, image_rows: 2, image_cols: 2, classes: 3 };
    for batch in [1, 3, 7, 100] {
        assert_eq!(inference.accuracy(&data, batch).unwrap(), 5.0 / 7.0, "batch {batch}");
    }
    let wide = Dataset { features: 8, image_rows: 2, image_cols: 4, ..data.clone() };
    let err = inference.accuracy(&wide, 4).unwrap_err().to_string();
    assert!(err.contains("the model takes 4 inputs, the images are 2×4 = 8 pixels"), "{err}");
}

#[test]
fn bad_batches_are_refused_with_the_numbers() {
    let device = Device::new(kernelab::cpu::CpuBackend::new());
    let model = Mlp::new("784-128-10", 0, &device).unwrap();
    let mut inference = Inference::new(&model).unwrap();
    let err = inference.prepare(0).unwrap_err().to_string();
    assert!(err.contains("model 784-128-10: a batch of 0 images has nothing to answer"), "{err}");
    let err = inference.forward(&[0.5; 783]).unwrap_err().to_string();
    assert!(err.contains("783 values are not a whole number of images of 784 values"), "{err}");
    let err = inference.forward(&[]).unwrap_err().to_string();
    assert!(err.contains("0 values are not a whole number"), "{err}");
    // 10¹² images of 784-128-10 need about 7.4 PB of buffers.
    if kernelab::tensor::memory::available().is_some() {
        let err = inference.prepare(1_000_000_000_000).unwrap_err().to_string();
        assert!(err.contains("model 784-128-10 at batch 1000000000000 needs about 7376000.0 GB"), "{err}");
        assert!(err.contains("available; use a smaller --batch"), "{err}");
    }
    let err = check_batch(&[784, 128, 10], usize::MAX).unwrap_err().to_string();
    assert!(err.contains("overflow 64 bits"), "{err}");
    assert!(check_batch(&[784, 128, 10], 4096).is_ok());
    assert_eq!(multiply_adds(&[784, 128, 10]), 101_632);
    assert_eq!(multiply_adds(&[784, 512, 256, 10]), 535_040);
}
