//! `train --profile` on narrow storage: each row names the variant that ran (a bf16 launch's,
//! not the f32 default), the fused Adam step is a row of `adam`, and the narrow training ops run
//! their strip variant.

use kernelab::cpu::CpuBackend;
use kernelab::nn::{MixedAdam, Mlp, Optimizer};
use kernelab::tensor::{Dtype, Grads, Kernel};
use kernelab::{Device, Op, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

/// The variant a launch of `op` on `dtype` buffers runs by default: the first listed of that storage.
fn default_of(dev: &Device, op: Op, dtype: Dtype) -> &'static str {
    dev.variants(op).into_iter().find(|v| v.precision.storage == dtype).unwrap().name
}

#[test]
fn the_profile_names_the_variant_each_launch_ran() {
    let dev = cpu();
    let (working, mut adam) = MixedAdam::new(Mlp::new("5-3", 2, &dev).unwrap(), Dtype::Bf16, 1e-3).unwrap();
    let mut grads = Grads::default();
    for p in working.parameters() {
        grads.set(&p, Tensor::from_slice_as(&vec![0.25; p.numel()], p.dims(), Dtype::Bf16, &dev).unwrap());
    }
    dev.start_profile();
    for dtype in [Dtype::F32, Dtype::Bf16, Dtype::F16] {
        let x = dev.upload_as(&[-1.0, 2.0, 0.5], dtype).unwrap();
        let mut y = dev.upload_as(&[f32::NAN; 3], dtype).unwrap();
        dev.launch(Kernel::Relu { x: &*x, y: &mut *y }, None).unwrap();
        assert_eq!(dev.download(&*y).unwrap(), [0.0, 2.0, 0.5]);
    }
    adam.step(&grads).unwrap();
    let profile = dev.take_profile().unwrap();
    let ran = |op: Op| -> Vec<&str> {
        profile.entries.iter().filter(|e| e.op == op).map(|e| e.variant.as_str()).collect::<Vec<_>>()
    };
    let relu: Vec<&str> = [Dtype::F32, Dtype::Bf16, Dtype::F16].map(|d| default_of(&dev, Op::Relu, d)).to_vec();
    assert_eq!(ran(Op::Relu), relu, "one row per storage, each under its own variant");
    assert!(relu[1].starts_with("bf16-") && relu[2].starts_with("f16-"), "{relu:?}");
    // The fused step: one launch per parameter (weight and bias), under the fused variant.
    let fused = dev.adam_narrow_variant(Dtype::Bf16).unwrap();
    assert_eq!(ran(Op::Adam), [fused, fused], "weight 3x5 and bias 3 are two rows of {fused}");
    assert!(ran(Op::Widen).is_empty() && ran(Op::Narrow).is_empty(), "no composed step: {:?}", profile.entries);
}

#[test]
fn the_narrow_training_ops_run_by_strips_by_default() {
    let dev = cpu();
    for op in [Op::Fill, Op::BiasAdd, Op::BiasRelu, Op::ColSum, Op::ReluBackward, Op::Add, Op::Scale, Op::ScaleBy] {
        for dtype in [Dtype::Bf16, Dtype::F16] {
            let name = default_of(&dev, op, dtype);
            let variant = dev.variants(op).into_iter().find(|v| v.name == name).unwrap();
            if variant.is_available() && name.ends_with("-avx512") {
                assert!(variant.summary.contains("elementwise, bias, col_sum"), "{op} {dtype}: {}", variant.summary);
            }
        }
    }
    // bias_relu in bf16 on an awkward shape: each value the f32 op's on the widened inputs,
    // rounded once (ties to even), written everywhere.
    let (rows, cols) = (5, 37);
    let x: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let bias: Vec<f32> = (0..cols).map(|c| (c as f32 * 0.11).cos()).collect();
    let xb = dev.upload_as(&x, Dtype::Bf16).unwrap();
    let bb = dev.upload_as(&bias, Dtype::Bf16).unwrap();
    let mut y = dev.upload_as(&vec![f32::NAN; rows * cols], Dtype::Bf16).unwrap();
    dev.launch(Kernel::BiasRelu { x: &*xb, bias: &*bb, y: &mut *y, rows, cols }, None).unwrap();
    let got = dev.download(&*y).unwrap();
    for (i, g) in got.iter().enumerate() {
        let want = Dtype::Bf16.round((Dtype::Bf16.round(x[i]) + Dtype::Bf16.round(bias[i % cols])).max(0.0));
        assert_eq!(*g, want, "[{}, {}]", i / cols, i % cols);
    }
}
