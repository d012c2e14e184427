//! Mixed-precision training (`kernelab train --dtype bf16|f16`): a narrow step against the f32
//! step, convergence beside f32, f16 loss scaling, refusals, determinism, WGPU f16 against CPU f16.

mod common;

use kernelab::cpu::CpuBackend;
use kernelab::nn::mixed::{MAX_F16_SCALE, check_dtype};
use kernelab::nn::{Data, Dataset, MixedAdam, Mlp, Objective, Optimizer, Trainer, evaluate};
use kernelab::tensor::{Dtype, Grads};
use kernelab::{BackendKind, Device, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

/// `n` samples of `classes` Gaussian blobs in `features` dimensions, as bytes (pixels / 255 is
/// what a model sees): class `c`'s centre is bright on features `≡ c (mod classes)`.
fn blobs(n: usize, features: usize, classes: usize, seed: u64) -> Dataset {
    let noise = Tensor::rand_uniform(&[n * features], -60.0, 60.0, seed, &cpu()).unwrap().to_vec().unwrap();
    let labels: Vec<u32> = (0..n).map(|i| ((i * 7 + seed as usize) % classes) as u32).collect();
    let pixels = (0..n * features)
        .map(|i| {
            let (row, f) = (i / features, i % features);
            let centre = if f % classes == labels[row] as usize { 170.0 } else { 60.0 };
            (centre + noise[i]).clamp(0.0, 255.0) as u8
        })
        .collect();
    Dataset { pixels, labels, features, image_rows: 1, image_cols: features, classes }
}

/// A batch of the first `rows` samples.
fn batch(data: &Dataset, rows: usize) -> (Vec<f32>, Vec<u32>) {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    data.gather(&(0..rows).collect::<Vec<_>>(), &mut images, &mut labels);
    (images, labels)
}

/// `‖a − b‖₂ / ‖b‖₂`.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let n: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (d / n).sqrt()
}

/// The bound of a narrow step against the f32 step: every tensor on the path from the batch to
/// a gradient of this 2-layer model is rounded once to the narrow type — x, W₁, b₁, h, W₂, b₂,
/// the logits, their gradient, dh, and the gradient itself: 10 roundings, each a relative error
/// of at most `u` (bf16: 2⁻⁸), and f32 sums inside every kernel. To first order the norm-wise
/// relative error of a gradient (and of the loss) is at most `10·u` (bf16: 3.9%).
fn step_bound(dtype: Dtype) -> f64 {
    10.0 * dtype.unit_roundoff()
}

#[test]
fn a_bf16_step_matches_the_f32_step_within_ten_unit_roundoffs() {
    let data = blobs(128, 48, 4, 1);
    let (images, labels) = batch(&data, 64);
    let model = Mlp::new("48-32-4", 7, &cpu()).unwrap();
    let mut f32_run = Trainer::adam(model.deep_copy().unwrap(), 1e-3, Objective::CrossEntropy).unwrap();
    let mut bf16_run = Trainer::adam_as(model, Dtype::Bf16, 1e-3, Objective::CrossEntropy).unwrap();
    assert_eq!(bf16_run.model().dtype(), Dtype::Bf16);
    assert_eq!(bf16_run.masters().dtype(), Dtype::F32);
    let g32 = f32_run.gradients(&images, &labels).unwrap();
    let g16 = bf16_run.gradients(&images, &labels).unwrap();
    let bound = step_bound(Dtype::Bf16);
    let pairs = f32_run.model().parameters().into_iter().zip(bf16_run.model().parameters());
    for (i, (p32, p16)) in pairs.enumerate() {
        let (a, b) = (g32.get(&p32).unwrap().to_vec().unwrap(), g16.get(&p16).unwrap().to_vec().unwrap());
        let err = rel_err(&b, &a);
        assert!(err <= bound, "gradient {i}: relative error {err:.4} > 10u = {bound:.4}");
        // The bf16 step really ran in bf16: its gradients are bf16 values and differ from f32's.
        assert!(b.iter().all(|&v| Dtype::Bf16.round(v) == v), "gradient {i} holds values bf16 cannot");
        assert!(err > 0.0, "gradient {i} equals the f32 one bit for bit: the step did not run in bf16");
    }
    let (l32, l16) = (f32_run.take_loss_sum().unwrap(), bf16_run.take_loss_sum().unwrap());
    assert!((l16 - l32).abs() <= bound * l32, "loss {l16} against f32's {l32}");
    // The update: Adam on the f32 masters, then the working weights are the masters rounded.
    bf16_run.apply(&g16).unwrap();
    for (master, working) in bf16_run.masters().parameters().iter().zip(bf16_run.model().parameters()) {
        let (m, w) = (master.to_vec().unwrap(), working.to_vec().unwrap());
        assert!(m.iter().zip(&w).all(|(m, w)| Dtype::Bf16.round(*m) == *w), "working weights ≠ round(masters)");
        assert!(m.iter().any(|m| Dtype::Bf16.round(*m) != *m), "the masters kept only bf16 values: not f32");
    }
}

/// Trains `spec` in `dtype` for `epochs` over `train`, returning the test accuracy and the masters.
fn train(spec: &str, dtype: Dtype, train: &Dataset, test: &Dataset, steps: usize) -> (f64, Mlp, usize) {
    let model = Mlp::new(spec, 3, &cpu()).unwrap();
    let mut trainer = Trainer::adam_as(model, dtype, 3e-3, Objective::CrossEntropy).unwrap();
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let order: Vec<usize> = (0..train.len()).collect();
    for chunk in order.chunks(32).cycle().take(steps) {
        train.gather(chunk, &mut images, &mut labels);
        let grads = trainer.gradients(&images, &labels).unwrap();
        trainer.apply(&grads).unwrap();
    }
    let skipped = trainer.take_precision().unwrap().skipped_steps;
    let (_, acc) = evaluate(trainer.model(), test, 500).unwrap();
    (acc, trainer.into_model(), skipped)
}

/// Fashion-MNIST's first 2,000 training and 1,000 test images, or separable blobs where it is
/// not installed.
fn convergence_data() -> (Dataset, Dataset, &'static str) {
    let dir = std::path::Path::new(kernelab::nn::FASHION_MNIST_DIR);
    if dir.is_dir() {
        let data = Data::load(dir, 784, 10, Some(2000)).unwrap();
        return (data.train, data.test.take(1000), "784-64-10");
    }
    (blobs(2000, 784, 10, 5), blobs(1000, 784, 10, 6), "784-64-10")
}

#[test]
fn three_hundred_bf16_and_f16_steps_reach_the_accuracy_of_f32() {
    let (train_set, test_set, spec) = convergence_data();
    let (acc32, _, _) = train(spec, Dtype::F32, &train_set, &test_set, 300);
    assert!(acc32 > 0.70, "the f32 control reached only {acc32}");
    for dtype in [Dtype::Bf16, Dtype::F16] {
        let (acc, masters, skipped) = train(spec, dtype, &train_set, &test_set, 300);
        assert_eq!(masters.dtype(), Dtype::F32, "the run ends with its f32 masters");
        assert!((acc - acc32).abs() <= 0.03, "{dtype} reached {acc:.4}, f32 {acc32:.4}");
        assert!(skipped == 0 || dtype == Dtype::F16, "{dtype} skipped {skipped} steps");
    }
}

#[test]
fn f16_loss_scaling_skips_a_step_on_overflow_and_recovers() {
    let (working, mut adam) = MixedAdam::new(Mlp::new("6-4-3", 1, &cpu()).unwrap(), Dtype::F16, 1e-2).unwrap();
    adam.loss_scale_state().growth_interval = 2;
    assert_eq!(adam.loss_scale(), MAX_F16_SCALE);
    let masters_before: Vec<Vec<f32>> = adam.masters().parameters().iter().map(|p| p.to_vec().unwrap()).collect();
    let grads_of = |value: f32, poison: bool| {
        let mut grads = Grads::default();
        for p in working.parameters() {
            let mut g = vec![value; p.numel()];
            if poison {
                g[0] = 1e6; // beyond 65504: ±∞ in f16
            }
            grads.set(&p, Tensor::from_slice_as(&g, p.dims(), Dtype::F16, p.device()).unwrap());
        }
        grads
    };
    adam.step(&grads_of(1.0, true)).unwrap();
    assert_eq!(adam.take_skipped_steps(), 1, "the overflowing step is counted");
    assert_eq!(adam.loss_scale(), MAX_F16_SCALE / 2.0, "and halves the scale");
    let masters_now: Vec<Vec<f32>> = adam.masters().parameters().iter().map(|p| p.to_vec().unwrap()).collect();
    assert_eq!(masters_now, masters_before, "a skipped step leaves the masters as they were");
    for _ in 0..2 {
        adam.step(&grads_of(1.0, false)).unwrap();
    }
    assert_eq!(adam.take_skipped_steps(), 0);
    assert_eq!(adam.loss_scale(), MAX_F16_SCALE, "two clean steps double it back");
    let masters_now: Vec<Vec<f32>> = adam.masters().parameters().iter().map(|p| p.to_vec().unwrap()).collect();
    assert_ne!(masters_now, masters_before, "clean steps update the masters");
    for (master, w) in adam.masters().parameters().iter().zip(working.parameters()) {
        let expect: Vec<f32> = master.to_vec().unwrap().iter().map(|&m| Dtype::F16.round(m)).collect();
        assert_eq!(w.to_vec().unwrap(), expect, "the working weights are the masters rounded to f16");
    }
}

#[test]
fn the_same_seed_twice_gives_bit_identical_bf16_runs() {
    let data = blobs(256, 48, 4, 2);
    let bits = |m: &Mlp| -> Vec<u32> {
        m.parameters().iter().flat_map(|p| p.to_vec().unwrap()).map(f32::to_bits).collect::<Vec<_>>()
    };
    let runs: Vec<Vec<u32>> = (0..2).map(|_| bits(&train("48-32-4", Dtype::Bf16, &data, &data, 20).1)).collect();
    assert_eq!(runs[0], runs[1]);
    let other = bits(&train("48-32-4", Dtype::F32, &data, &data, 20).1);
    assert_ne!(runs[0], other, "the control: an f32 run of the same seed differs");
}

#[test]
fn dtype_refusals_are_clear_errors() {
    common::fails_with(
        &["train", "--dtype", "fp8", "--epochs", "1"],
        2,
        "unknown dtype `fp8`; known dtypes: f32, bf16, f16",
    );
    let two = [cpu(), cpu()];
    let plan = kernelab::nn::Plan {
        devices: &two,
        split: &[],
        comm: None,
        verify_replicas: false,
        epochs: 1,
        batch: 8,
        lr: 1e-3,
        dtype: Dtype::Bf16,
        allow_nonfinite: false,
        profile: false,
    };
    let model = Mlp::new("4-3", 0, &two[0]).unwrap();
    let err = kernelab::nn::learner::learner(&plan, model, Objective::CrossEntropy).err().unwrap().to_string();
    assert!(err.contains("--dtype bf16 trains on one device"), "{err}");
    let Some(gpu) = wgpu() else { return };
    let err = check_dtype(&gpu, Dtype::Bf16).unwrap_err().to_string();
    assert!(err.contains("--dtype bf16 cannot train on") && err.contains("WGSL has no bf16"), "{err}");
    let model = Mlp::new("4-3", 0, &gpu).unwrap();
    let err = Trainer::adam_as(model, Dtype::Bf16, 1e-3, Objective::CrossEntropy).err().unwrap().to_string();
    assert!(err.contains("WGSL has no bf16"), "{err}");
}

/// The WGPU device, or none (skipped) unless `KERNELAB_REQUIRE` names wgpu.
fn wgpu() -> Option<Device> {
    common::open_or_skip(BackendKind::Wgpu)
}

#[test]
fn a_wgpu_f16_step_matches_the_cpu_f16_step() {
    let Some(gpu) = wgpu() else { return };
    if let Err(e) = check_dtype(&gpu, Dtype::F16) {
        assert!(e.to_string().contains("shader-f16"), "{e}");
        eprintln!("skipped: {e}");
        return;
    }
    let data = blobs(64, 48, 4, 3);
    let (images, labels) = batch(&data, 64);
    let model = Mlp::new("48-32-4", 9, &cpu()).unwrap();
    let on_gpu = model.to(&gpu).unwrap();
    let mut cpu_run = Trainer::adam_as(model, Dtype::F16, 1e-3, Objective::CrossEntropy).unwrap();
    let mut gpu_run = Trainer::adam_as(on_gpu, Dtype::F16, 1e-3, Objective::CrossEntropy).unwrap();
    let (gc, gg) = (cpu_run.gradients(&images, &labels).unwrap(), gpu_run.gradients(&images, &labels).unwrap());
    // Both round the same tensors to f16; they differ only in the order of their f32 sums and in
    // which of two neighbours a value near a tie rounds to: within the f16 step bound of each
    // other (gradients of the scaled loss, S = 2¹⁵ on both).
    let bound = step_bound(Dtype::F16);
    for (i, (pc, pg)) in cpu_run.model().parameters().into_iter().zip(gpu_run.model().parameters()).enumerate() {
        let (a, b) = (gc.get(&pc).unwrap().to_vec().unwrap(), gg.get(&pg).unwrap().to_vec().unwrap());
        let err = rel_err(&b, &a);
        assert!(err <= bound, "gradient {i}: WGPU against CPU {err:.5} > {bound:.5}");
    }
    cpu_run.apply(&gc).unwrap();
    gpu_run.apply(&gg).unwrap();
    for (mc, mg) in cpu_run.masters().parameters().iter().zip(gpu_run.masters().parameters()) {
        let err = rel_err(&mg.to_vec().unwrap(), &mc.to_vec().unwrap());
        assert!(err <= 1e-3, "masters after the step differ by {err}");
    }
}

/// One step of a 16-8-4 model on 32 samples in `dtype` on `device`, from the same CPU-made
/// weights: the gradients, the loss sum, and the f32 masters and working weights after the update.
struct Step {
    grads: Vec<Vec<f32>>,
    loss: f64,
    masters: Vec<Vec<f32>>,
    working: Vec<Vec<f32>>,
}

fn one_step(device: &Device, dtype: Dtype) -> Step {
    let data = blobs(32, 16, 4, 4);
    let (images, labels) = batch(&data, 32);
    let model = Mlp::new("16-8-4", 11, &cpu()).unwrap().to(device).unwrap();
    let mut run = Trainer::adam_as(model, dtype, 1e-2, Objective::CrossEntropy).unwrap();
    let g = run.gradients(&images, &labels).unwrap();
    let grads = run.model().parameters().iter().map(|p| g.get(p).unwrap().to_vec().unwrap()).collect();
    let loss = run.take_loss_sum().unwrap();
    run.apply(&g).unwrap();
    let values = |m: &Mlp| m.parameters().iter().map(|p| p.to_vec().unwrap()).collect();
    Step { grads, loss, masters: values(run.masters()), working: values(run.model()) }
}

/// `kernelab train --dtype bf16|f16 --backend cuda`: every op of a step has a narrow CUDA variant
/// (matmul on the tensor-core rung, the others through their f32 kernels between conversions), and
/// a narrow step on CUDA matches the CPU's. Both round the same tensors to the narrow type and
/// differ only in the order of their f32 sums, and so in which neighbour a value near a tie
/// rounds to: within the step bound (10u, see [`step_bound`]) of each other, as each is of the f32
/// step. The control: the f32 step on CUDA matches the CPU's to f32's own accuracy, and the narrow
/// step on CUDA really ran narrow (its gradients are narrow values, unlike the f32 step's).
#[test]
fn a_cuda_bf16_and_f16_step_matches_the_cpu_step() {
    let Some(gpu) = common::open_or_skip(BackendKind::Cuda) else { return };
    let (on_cpu, on_gpu) = (one_step(&cpu(), Dtype::F32), one_step(&gpu, Dtype::F32));
    for (i, (c, g)) in on_cpu.grads.iter().zip(&on_gpu.grads).enumerate() {
        let err = rel_err(g, c);
        assert!(err <= 1e-5, "f32 control, gradient {i}: CUDA against CPU {err:.2e}");
    }
    for dtype in [Dtype::Bf16, Dtype::F16] {
        check_dtype(&gpu, dtype).unwrap_or_else(|e| panic!("{e}"));
        let (cpu_step, gpu_step) = (one_step(&cpu(), dtype), one_step(&gpu, dtype));
        let bound = step_bound(dtype);
        for (i, ((c, g), f)) in cpu_step.grads.iter().zip(&gpu_step.grads).zip(&on_gpu.grads).enumerate() {
            let err = rel_err(g, c);
            assert!(err <= bound, "{dtype} gradient {i}: CUDA against CPU {err:.5} > {bound:.5}");
            assert!(g.iter().all(|&v| dtype.round(v) == v), "{dtype} gradient {i} holds values {dtype} cannot");
            // f16 gradients are of the loss scaled by 2¹⁵ on both devices; bf16's scale is 1.
            let scale = if dtype == Dtype::F16 { MAX_F16_SCALE } else { 1.0 };
            let unscaled: Vec<f32> = g.iter().map(|v| v / scale).collect();
            let against_f32 = rel_err(&unscaled, f);
            assert!(against_f32 > 0.0 && against_f32 <= bound, "{dtype} gradient {i} against f32: {against_f32}");
        }
        let loss_err = (gpu_step.loss - cpu_step.loss).abs() / cpu_step.loss.abs();
        assert!(loss_err <= bound, "{dtype} loss {} against the CPU's {}", gpu_step.loss, cpu_step.loss);
        for (i, (mc, mg)) in cpu_step.masters.iter().zip(&gpu_step.masters).enumerate() {
            let err = rel_err(mg, mc);
            assert!(err <= 1e-3, "{dtype} masters {i} after the step: CUDA against CPU {err}");
        }
        for (m, w) in gpu_step.masters.iter().zip(&gpu_step.working) {
            assert!(m.iter().zip(w).all(|(m, w)| dtype.round(*m) == *w), "{dtype}: working weights ≠ round(masters)");
        }
    }
}

/// An f32 checkpoint into a bf16 run and back: a bf16 run saves its f32 masters and says so, and
/// a bf16 distillation from that checkpoint converts the teacher and says how many values
/// overflowed (none here); the checkpoint is still an f32 one another run reads.
#[test]
fn an_f32_checkpoint_goes_into_a_bf16_run_and_back_and_each_conversion_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::tiny_mnist(dir.path());
    let (data, teacher) = (data.to_str().unwrap(), dir.path().join("teacher.safetensors"));
    let teacher = teacher.to_str().unwrap();
    let common = ["--epochs", "1", "--batch", "16", "--data", data, "--dtype", "bf16"];
    let saved = common::kernelab(&[&["train", "--model", "4-8-3", "--save", teacher][..], &common].concat());
    let said = String::from_utf8_lossy(&saved.stderr);
    assert!(saved.status.success(), "{said}");
    assert!(said.contains("the f32 master weights of this bf16 run (checkpoints hold f32)"), "{said}");
    let args =
        [&["distill", "--teacher-checkpoint", teacher, "--student", "4-4-3", "--seeds", "1"][..], &common].concat();
    let distilled = common::kernelab(&args);
    let said = String::from_utf8_lossy(&distilled.stderr);
    assert!(distilled.status.success(), "{said}");
    assert!(
        said.contains("converting the f32 checkpoint to bf16") && said.contains("0 values overflow bf16"),
        "{said}"
    );
    // Back to f32: the same checkpoint teaches an f32 run without a conversion.
    let f32_args =
        [&["distill", "--teacher-checkpoint", teacher, "--student", "4-4-3", "--seeds", "1"][..], &common[..6]]
            .concat();
    let plain = common::kernelab(&f32_args);
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(plain.status.success() && !said.contains("converting"), "{said}");
}
