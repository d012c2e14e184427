//! The fused mixed-precision Adam step against the composed one (`widen → scale → adam →
//! narrow`): equal bit for bit on awkward lengths, bf16 and f16, with the unscale, into poisoned
//! working weights; `MixedAdam` runs it on the CPU and composes where a variant is named.

use kernelab::cpu::CpuBackend;
use kernelab::nn::{MixedAdam, Mlp, Optimizer};
use kernelab::tensor::{AdamStep, Dtype, Grads, adam_narrow_step_, adam_step_};
use kernelab::{Device, Op, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

/// `n` values spread over several binades, signs mixed, from `seed`.
fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0).map(|x| x * x * x * scale).collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().into_iter().map(f32::to_bits).collect()
}

/// The third step (bias corrections not 1), PyTorch's defaults.
const STEP: AdamStep = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 3 };

/// Master, m, v (f32) and the narrow gradient of `n` values, with a NaN and a zero gradient.
fn state(n: usize, dtype: Dtype, dev: &Device) -> [Tensor; 4] {
    let mut g = values(n, 1, 3000.0);
    g[n / 2] = 0.0;
    if n > 7 {
        g[7] = f32::NAN;
    }
    let v: Vec<f32> = values(n, 3, 1e-3).iter().map(|x| x.abs()).collect();
    [
        Tensor::from_slice(&values(n, 0, 0.5), &[n], dev).unwrap(),
        Tensor::from_slice(&values(n, 2, 1e-2), &[n], dev).unwrap(),
        Tensor::from_slice(&v, &[n], dev).unwrap(),
        Tensor::from_slice_as(&g, &[n], dtype, dev).unwrap(),
    ]
}

#[test]
fn the_fused_step_equals_widen_scale_adam_narrow_bit_for_bit() {
    let dev = cpu();
    for dtype in [Dtype::Bf16, Dtype::F16] {
        assert!(dev.adam_narrow_variant(dtype).is_some(), "the CPU offers the fused {dtype} step");
        // 1, a vector's tail alone, one vector ± 1, a strip ± 1, and a threaded length with a tail.
        for n in [1, 15, 16, 17, 255, 257, 1000, 40_003] {
            for unscale in [1.0, 2f32.powi(-10)] {
                let [master, m, v, grad] = state(n, dtype, &dev);
                let copy = |t: &Tensor| Tensor::from_slice(&t.to_vec().unwrap(), &[n], &dev).unwrap();
                let composed = [copy(&master), copy(&m), copy(&v)];
                let mut g32 = grad.to_dtype(Dtype::F32).unwrap();
                if unscale != 1.0 {
                    g32 = g32.scale(unscale).unwrap();
                }
                adam_step_(&composed[0], &g32, &composed[1], &composed[2], STEP).unwrap();
                let working_composed = composed[0].to_dtype(dtype).unwrap();

                let working = Tensor::from_slice_as(&vec![f32::NAN; n], &[n], dtype, &dev).unwrap();
                adam_narrow_step_(&master, &grad, &m, &v, &working, STEP, unscale).unwrap();
                let at = format!("{dtype} n={n} unscale={unscale}");
                assert_eq!(bits(&master), bits(&composed[0]), "master, {at}");
                assert_eq!(bits(&m), bits(&composed[1]), "m, {at}");
                assert_eq!(bits(&v), bits(&composed[2]), "v, {at}");
                assert_eq!(bits(&working), bits(&working_composed), "working, {at}");
                // The step moved the masters (a step that wrote nothing would fail above only
                // through the poisoned working weights).
                assert_ne!(bits(&master), bits(&state(n, dtype, &dev)[0]), "{at}");
            }
        }
    }
}

#[test]
fn a_fused_step_refuses_mixed_up_buffers_and_writes_nothing() {
    let dev = cpu();
    let [master, m, v, grad] = state(17, Dtype::Bf16, &dev);
    let before = bits(&master);
    let f16_working = Tensor::from_slice_as(&[f32::NAN; 17], &[17], Dtype::F16, &dev).unwrap();
    let err = adam_narrow_step_(&master, &grad, &m, &v, &f16_working, STEP, 1.0).unwrap_err().to_string();
    assert!(err.contains("grad is bf16, working is f16"), "{err}");
    let short = Tensor::from_slice_as(&[0.0; 16], &[16], Dtype::Bf16, &dev).unwrap();
    assert!(adam_narrow_step_(&master, &grad, &m, &v, &short, STEP, 1.0).is_err());
    assert_eq!(bits(&master), before);
}

/// `steps` MixedAdam steps of `spec` in `dtype` from the same gradients, on `dev`: the masters'
/// and working weights' bits.
fn run(dev: &Device, dtype: Dtype, steps: usize, poison_at: Option<usize>) -> (bool, Vec<u32>, Vec<u32>, f32) {
    let (working, mut adam) = MixedAdam::new(Mlp::new("20-17-3", 4, dev).unwrap(), dtype, 1e-2).unwrap();
    for s in 0..steps {
        let mut grads = Grads::default();
        for (i, p) in working.parameters().iter().enumerate() {
            let mut g = values(p.numel(), s * 10 + i, 2.0);
            if poison_at == Some(s) {
                g[0] = 1e6; // ±∞ in f16
            }
            grads.set(p, Tensor::from_slice_as(&g, p.dims(), dtype, dev).unwrap());
        }
        adam.step(&grads).unwrap();
    }
    let masters = adam.masters().parameters().iter().flat_map(bits).collect();
    (adam.is_fused(), masters, working.parameters().iter().flat_map(bits).collect(), adam.loss_scale())
}

#[test]
fn mixed_adam_runs_fused_on_the_cpu_and_equals_the_composed_run() {
    for (dtype, poison) in [(Dtype::Bf16, None), (Dtype::F16, Some(1))] {
        let fused = run(&cpu(), dtype, 4, poison);
        // Naming the default Adam variant makes the same arithmetic run composed.
        let composed_dev = cpu();
        composed_dev.prefer_variant(Op::Adam, composed_dev.variants(Op::Adam)[0].name).unwrap();
        let composed = run(&composed_dev, dtype, 4, poison);
        assert!(fused.0 && !composed.0, "{dtype}: fused {}, composed {}", fused.0, composed.0);
        assert_eq!(fused.1, composed.1, "{dtype} masters");
        assert_eq!(fused.2, composed.2, "{dtype} working weights");
        assert_eq!(fused.3, composed.3, "{dtype} loss scale");
    }
}
