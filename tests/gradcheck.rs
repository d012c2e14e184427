//! Finite-difference checks of every backward rule on the tape, on every available backend.
//!
//! Each check builds a scalar loss on the tape from f32 inputs, takes the tape's gradient, and
//! compares it with central differences `(L(x+h) − L(x−h)) / 2h` of the same loss evaluated in
//! f64 by the reference (`kernelab::bench::reference`), at the same (f32-representable) points.
//! Non-scalar ops are reduced to a scalar by a fixed random projection `Σ w ⊙ y`, so every output
//! element carries a different weight and a rule that mixes elements up cannot pass.

use kernelab::bench::conformance::devices_under_test;
use kernelab::bench::reference;
use kernelab::tensor::Gemm;
use kernelab::{Device, Labels, Result, Tape, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Step of the central difference; the f64 loss is smooth at this scale.
const H: f64 = 1e-5;

/// An input: its shape and f32-representable values, kept in f64.
struct Input {
    dims: Vec<usize>,
    values: Vec<f64>,
}

/// Values from `U(-1, 1)`, pushed at least `gap` away from zero (ReLU's kink).
fn input(dims: &[usize], seed: u64, gap: f32) -> Input {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = dims.iter().product();
    let values = (0..n)
        .map(|_| {
            let v: f32 = rng.random_range(-1.0..1.0);
            f64::from(if v.abs() < gap { v.signum() * gap + v } else { v })
        })
        .collect();
    Input { dims: dims.to_vec(), values }
}

fn f32s(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// `Σ w ⊙ y` on the tape, for a constant weight column `w` of `y.numel()` values.
fn project(tape: &mut Tape, y: &Tensor, w: &Tensor) -> Result<Tensor> {
    let flat = tape.reshape(y, &[1, y.numel()])?;
    tape.matmul(&flat, w)
}

/// `Σ w ⊙ y` in f64.
fn project_f64(y: &[f64], w: &[f64]) -> f64 {
    y.iter().zip(w).map(|(y, w)| y * w).sum()
}

/// Compares the tape's gradient of `tape_loss` with central differences of `f64_loss` for every
/// element of every input, on `device`.
fn gradcheck(
    name: &str,
    device: &Device,
    inputs: &[Input],
    tape_loss: impl Fn(&mut Tape, &[Tensor]) -> Result<Tensor>,
    f64_loss: impl Fn(&[Vec<f64>]) -> f64,
) {
    let tensors: Vec<Tensor> =
        inputs.iter().map(|i| Tensor::from_slice(&f32s(&i.values), &i.dims, device).unwrap().requires_grad()).collect();
    let mut tape = Tape::new();
    let loss = tape_loss(&mut tape, &tensors).unwrap_or_else(|e| panic!("{name} on {device}: forward failed: {e}"));
    let grads = tape.backward(&loss).unwrap_or_else(|e| panic!("{name} on {device}: backward failed: {e}"));

    let mut point: Vec<Vec<f64>> = inputs.iter().map(|i| i.values.clone()).collect();
    let value = f64_loss(&point);
    let got = f64::from(loss.item().unwrap());
    assert!((got - value).abs() <= 1e-4 * (1.0 + value.abs()), "{name} on {device}: loss {got}, f64 reference {value}");

    for (which, tensor) in tensors.iter().enumerate() {
        let analytic = grads
            .get(tensor)
            .unwrap_or_else(|| panic!("{name} on {device}: no gradient for input {which}"))
            .to_vec()
            .unwrap();
        let numeric: Vec<f64> = (0..inputs[which].values.len())
            .map(|j| {
                let x = point[which][j];
                point[which][j] = x + H;
                let up = f64_loss(&point);
                point[which][j] = x - H;
                let down = f64_loss(&point);
                point[which][j] = x;
                (up - down) / (2.0 * H)
            })
            .collect();
        let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (j, (&a, &n)) in analytic.iter().zip(&numeric).enumerate() {
            let tolerance = 2e-3 * n.abs() + 1e-4 * scale + 1e-7;
            assert!(
                (f64::from(a) - n).abs() <= tolerance,
                "{name} on {device}: ∂L/∂input{which}[{j}] = {a} from the tape, {n} by central differences"
            );
        }
    }
}

/// Runs `check` on every device under test.
fn on_every_device(check: impl Fn(&Device)) {
    let devices = devices_under_test().expect("a required backend is missing");
    assert!(!devices.is_empty());
    devices.iter().for_each(check);
}

fn weights(n: usize, seed: u64, device: &Device) -> (Tensor, Vec<f64>) {
    let w = input(&[n, 1], seed, 0.0).values;
    (Tensor::from_slice(&f32s(&w), &[n, 1], device).unwrap(), w)
}

fn check_matmul(trans_a: bool, trans_b: bool) {
    let (m, n, k) = (3, 4, 5);
    let a_dims = if trans_a { [k, m] } else { [m, k] };
    let b_dims = if trans_b { [n, k] } else { [k, n] };
    let gemm = Gemm::new(m, n, k).trans(trans_a, trans_b);
    on_every_device(|device| {
        let (w, wv) = weights(m * n, 9, device);
        gradcheck(
            &format!("matmul (Aᵀ {trans_a}, Bᵀ {trans_b})"),
            device,
            &[input(&a_dims, 1, 0.0), input(&b_dims, 2, 0.0)],
            |tape, t| {
                let c = tape.matmul_t(&t[0], &t[1], trans_a, trans_b)?;
                project(tape, &c, &w)
            },
            |x| project_f64(&reference::matmul(&x[0], &x[1], &[], &gemm).value, &wv),
        );
    });
}

#[test]
fn matmul() {
    check_matmul(false, false);
}

#[test]
fn matmul_b_transposed() {
    check_matmul(false, true);
}

#[test]
fn matmul_a_transposed() {
    check_matmul(true, false);
}

#[test]
fn matmul_both_transposed() {
    check_matmul(true, true);
}

#[test]
fn bias_add() {
    on_every_device(|device| {
        let (w, wv) = weights(20, 9, device);
        gradcheck(
            "bias_add",
            device,
            &[input(&[4, 5], 1, 0.0), input(&[5], 2, 0.0)],
            |tape, t| {
                let y = tape.bias_add(&t[0], &t[1])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::bias_add(&x[0], &x[1], 5, false).value, &wv),
        );
    });
}

#[test]
fn bias_relu() {
    on_every_device(|device| {
        let (w, wv) = weights(20, 9, device);
        // |x| ≥ 0.2 and |bias| < 0.1 keep x + bias clear of the kink.
        let bias = Input { dims: vec![5], values: input(&[5], 2, 0.0).values.iter().map(|v| v * 0.1).collect() };
        gradcheck(
            "bias_relu",
            device,
            &[input(&[4, 5], 1, 0.2), bias],
            |tape, t| {
                let y = tape.bias_relu(&t[0], &t[1])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::bias_add(&x[0], &x[1], 5, true).value, &wv),
        );
    });
}

#[test]
fn relu() {
    on_every_device(|device| {
        let (w, wv) = weights(12, 9, device);
        gradcheck(
            "relu",
            device,
            &[input(&[3, 4], 1, 0.1)],
            |tape, t| {
                let y = tape.relu(&t[0])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::relu(&x[0]).value, &wv),
        );
    });
}

#[test]
fn softmax() {
    on_every_device(|device| {
        let (w, wv) = weights(18, 9, device);
        gradcheck(
            "softmax",
            device,
            &[input(&[3, 6], 1, 0.0)],
            |tape, t| {
                let y = tape.softmax(&t[0])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::softmax(&x[0], 3, 6).value, &wv),
        );
    });
}

#[test]
fn log_softmax() {
    on_every_device(|device| {
        let (w, wv) = weights(18, 9, device);
        gradcheck(
            "log_softmax",
            device,
            &[input(&[3, 6], 1, 0.0)],
            |tape, t| {
                let y = tape.log_softmax(&t[0])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::log_softmax(&x[0], 3, 6).value, &wv),
        );
    });
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

const LABELS: [u32; 4] = [2, 0, 4, 2];

#[test]
fn cross_entropy() {
    on_every_device(|device| {
        let labels = Labels::new(&LABELS, 5, device).unwrap();
        let label_f32 = LABELS.map(|l| l as f32);
        gradcheck(
            "cross_entropy",
            device,
            &[input(&[4, 5], 1, 0.0)],
            |tape, t| tape.cross_entropy(&t[0], &labels),
            |x| mean(&reference::softmax_cross_entropy(&x[0], &label_f32, 4, 5).0.value),
        );
    });
}

/// Rows of soft targets (each a distribution, one entry exactly zero).
fn soft_targets(rows: usize, cols: usize) -> Vec<f32> {
    let raw = input(&[rows, cols], 7, 0.0).values;
    let mut q = Vec::new();
    for row in raw.chunks(cols) {
        let mut p: Vec<f64> = row.iter().map(|v| v.exp()).collect();
        p[0] = 0.0;
        let s: f64 = p.iter().sum();
        q.extend(p.iter().map(|v| (v / s) as f32));
    }
    q
}

#[test]
fn kl_div() {
    const T: f32 = 2.5;
    on_every_device(|device| {
        let q = soft_targets(4, 5);
        let target = Tensor::from_slice(&q, &[4, 5], device).unwrap();
        gradcheck(
            "kl_div",
            device,
            &[input(&[4, 5], 1, 0.0)],
            |tape, t| tape.kl_div(&t[0], &target, T),
            |x| mean(&reference::kl_div(&x[0], &widen(&q), 4, 5, T).0.value),
        );
    });
}

#[test]
fn sum_and_mean() {
    on_every_device(|device| {
        gradcheck("sum", device, &[input(&[3, 4], 1, 0.0)], |tape, t| tape.sum(&t[0]), |x| x[0].iter().sum());
        gradcheck("mean", device, &[input(&[3, 4], 1, 0.0)], |tape, t| tape.mean(&t[0]), |x| mean(&x[0]));
    });
}

#[test]
fn scale() {
    on_every_device(|device| {
        let (w, wv) = weights(12, 9, device);
        gradcheck(
            "scale",
            device,
            &[input(&[3, 4], 1, 0.0)],
            |tape, t| {
                let y = tape.scale(&t[0], -1.7)?;
                project(tape, &y, &w)
            },
            |x| project_f64(&x[0].iter().map(|v| -1.7f32 as f64 * v).collect::<Vec<_>>(), &wv),
        );
    });
}

#[test]
fn add_and_a_tensor_used_twice() {
    on_every_device(|device| {
        let (w, wv) = weights(12, 9, device);
        gradcheck(
            "add",
            device,
            &[input(&[3, 4], 1, 0.0), input(&[3, 4], 2, 0.0)],
            |tape, t| {
                let y = tape.add(&t[0], &t[1])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::add(&x[0], &x[1]).value, &wv),
        );
        // y = x + x: both paths must accumulate into one gradient, 2·w.
        gradcheck(
            "add(x, x)",
            device,
            &[input(&[3, 4], 1, 0.0)],
            |tape, t| {
                let y = tape.add(&t[0], &t[0])?;
                project(tape, &y, &w)
            },
            |x| project_f64(&reference::add(&x[0], &x[0]).value, &wv),
        );
    });
}

/// The forward pass of a 6-4-3 MLP in f64: `relu(x·W₁ᵀ + b₁)·W₂ᵀ + b₂`.
fn mlp_f64(x: &[f64], w1: &[f64], b1: &[f64], w2: &[f64], b2: &[f64]) -> Vec<f64> {
    let h = reference::matmul(x, w1, &[], &Gemm::new(4, 4, 6).trans(false, true)).value;
    let h = reference::bias_add(&h, b1, 4, true).value;
    let z = reference::matmul(&h, w2, &[], &Gemm::new(4, 3, 4).trans(false, true)).value;
    reference::bias_add(&z, b2, 3, false).value
}

fn mlp_inputs() -> Vec<Input> {
    vec![
        input(&[4, 6], 1, 0.0),
        input(&[4, 6], 2, 0.0),
        input(&[4], 3, 0.0),
        input(&[3, 4], 4, 0.0),
        input(&[3], 5, 0.0),
    ]
}

fn mlp_tape(tape: &mut Tape, t: &[Tensor]) -> Result<Tensor> {
    let h = tape.matmul_t(&t[0], &t[1], false, true)?;
    let h = tape.bias_relu(&h, &t[2])?;
    let z = tape.matmul_t(&h, &t[3], false, true)?;
    tape.bias_add(&z, &t[4])
}

#[test]
fn mlp_with_cross_entropy() {
    on_every_device(|device| {
        let labels = Labels::new(&[1, 0, 2, 2], 3, device).unwrap();
        gradcheck(
            "mlp + cross_entropy",
            device,
            &mlp_inputs(),
            |tape, t| {
                let z = mlp_tape(tape, t)?;
                tape.cross_entropy(&z, &labels)
            },
            |x| {
                let z = mlp_f64(&x[0], &x[1], &x[2], &x[3], &x[4]);
                mean(&reference::softmax_cross_entropy(&z, &[1.0, 0.0, 2.0, 2.0], 4, 3).0.value)
            },
        );
    });
}

/// The distillation loss `α·T²·KL(q ‖ softmax(z/T)) + (1−α)·CE(z, labels)`: two paths into the
/// same logits, combined with scale and add.
#[test]
fn distillation_loss() {
    const T: f32 = 4.0;
    const ALPHA: f32 = 0.9;
    on_every_device(|device| {
        let labels = Labels::new(&[1, 0, 2, 2], 3, device).unwrap();
        let q = soft_targets(4, 3);
        let target = Tensor::from_slice(&q, &[4, 3], device).unwrap();
        gradcheck(
            "distillation",
            device,
            &mlp_inputs(),
            |tape, t| {
                let z = mlp_tape(tape, t)?;
                let kl = tape.kl_div(&z, &target, T)?;
                let ce = tape.cross_entropy(&z, &labels)?;
                let soft = tape.scale(&kl, ALPHA * T * T)?;
                let hard = tape.scale(&ce, 1.0 - ALPHA)?;
                tape.add(&soft, &hard)
            },
            |x| {
                let z = mlp_f64(&x[0], &x[1], &x[2], &x[3], &x[4]);
                let kl = mean(&reference::kl_div(&z, &widen(&q), 4, 3, T).0.value);
                let ce = mean(&reference::softmax_cross_entropy(&z, &[1.0, 0.0, 2.0, 2.0], 4, 3).0.value);
                f64::from(ALPHA * T * T) * kl + f64::from(1.0 - ALPHA) * ce
            },
        );
    });
}
