//! The tape's bookkeeping: what it records, what it skips, how it prints.

use kernelab::cpu::CpuBackend;
use kernelab::{Device, Tape, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

#[test]
fn no_grad_records_nothing_and_computes_the_same() {
    let d = cpu();
    let w = Tensor::rand_uniform(&[3, 4], -1.0, 1.0, 1, &d).unwrap().requires_grad();
    let x = Tensor::rand_uniform(&[2, 4], -1.0, 1.0, 2, &d).unwrap();
    let mut recording = Tape::new();
    let mut inference = Tape::no_grad();
    let y1 = recording.matmul_t(&x, &w, false, true).unwrap();
    let y2 = inference.matmul_t(&x, &w, false, true).unwrap();
    assert_eq!(y1.to_vec().unwrap(), y2.to_vec().unwrap());
    assert_eq!((recording.len(), inference.len()), (1, 0));
}

#[test]
fn ops_on_untracked_tensors_are_not_recorded() {
    let d = cpu();
    let x = Tensor::ones(&[2, 2], &d).unwrap();
    let mut tape = Tape::new();
    let y = tape.relu(&x).unwrap();
    tape.scale(&y, 2.0).unwrap();
    assert!(tape.is_empty());
}

#[test]
fn gradients_are_only_for_leaves_and_skip_untracked_inputs() {
    let d = cpu();
    let w = Tensor::rand_uniform(&[3, 4], -1.0, 1.0, 1, &d).unwrap().requires_grad();
    let x = Tensor::rand_uniform(&[2, 4], -1.0, 1.0, 2, &d).unwrap();
    let mut tape = Tape::new();
    let y = tape.matmul_t(&x, &w, false, true).unwrap();
    let loss = tape.sum(&y).unwrap();
    let grads = tape.backward(&loss).unwrap();
    assert!(grads.get(&w).is_some());
    assert!(grads.get(&x).is_none(), "the data needs no gradient");
    assert!(grads.get(&y).is_none(), "intermediate gradients are dropped");
    // d(Σ x·Wᵀ)/dW[j, k] = Σ_i x[i, k]
    let gw = grads.get(&w).unwrap().to_vec().unwrap();
    let xv = x.to_vec().unwrap();
    for j in 0..3 {
        for k in 0..4 {
            assert!((gw[j * 4 + k] - (xv[k] + xv[4 + k])).abs() < 1e-6);
        }
    }
}

#[test]
fn the_tape_prints_one_line_per_op() {
    let d = cpu();
    let w = Tensor::ones(&[3, 4], &d).unwrap().requires_grad();
    let x = Tensor::ones(&[2, 4], &d).unwrap();
    let mut tape = Tape::new();
    let y = tape.matmul_t(&x, &w, false, true).unwrap();
    tape.mean(&y).unwrap();
    let text = format!("{tape:?}");
    assert!(text.starts_with("Tape (2 ops)"), "{text}");
    assert!(text.contains(&format!("matmul(#{}, #{}ᵀ)", x.id(), w.id())), "{text}");
    assert!(text.contains(&format!("mean(#{})", y.id())), "{text}");
    tape.clear();
    assert!(tape.is_empty());
}

#[test]
fn seeded_fills_repeat_and_differ_by_seed() {
    let d = cpu();
    let a = Tensor::rand_normal(&[1000], 0.0, 1.0, 42, &d).unwrap().to_vec().unwrap();
    let b = Tensor::rand_normal(&[1000], 0.0, 1.0, 42, &d).unwrap().to_vec().unwrap();
    let c = Tensor::rand_normal(&[1000], 0.0, 1.0, 43, &d).unwrap().to_vec().unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mean = a.iter().sum::<f32>() / 1000.0;
    let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 1000.0;
    assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "mean {mean}, var {var}");
    let u = Tensor::rand_uniform(&[1000], 2.0, 3.0, 1, &d).unwrap().to_vec().unwrap();
    assert!(u.iter().all(|&v| (2.0..3.0).contains(&v)));
}
