//! Bad input gets a typed error with a message a person can act on; nothing panics or hangs.

use kernelab::backends;
use kernelab::cpu::CpuBackend;
use kernelab::tensor::{AdamStep, Kernel, adam_step_};
use kernelab::{Device, Error, Labels, Op, Tape, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

fn t(dims: &[usize], device: &Device) -> Tensor {
    Tensor::zeros(dims, device).unwrap()
}

#[test]
fn shape_mismatch_names_the_op_and_both_shapes() {
    let d = cpu();
    let err = t(&[2, 3], &d).matmul(&t(&[4, 5], &d)).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { op: "matmul", .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3]") && msg.contains("[4, 5]") && msg.contains("3 vs 4"),
        "{msg}"
    );

    let err = t(&[2, 3], &d).add(&t(&[3, 2], &d)).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");

    let err = t(&[2, 3], &d).bias_add(&t(&[2], &d)).unwrap_err().to_string();
    assert!(err.contains("bias must be a vector of 3"), "{err}");

    let err = t(&[2, 3, 4], &d).matmul(&t(&[4, 2], &d)).unwrap_err().to_string();
    assert!(err.contains("expected a matrix (rank 2)"), "{err}");
}

#[test]
fn data_that_does_not_fill_the_shape_is_refused() {
    let err = Tensor::from_slice(&[1.0; 5], &[2, 3], &cpu()).unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { len: 5, expected: 6, .. }), "{err:?}");
    assert!(err.to_string().contains("5 values cannot fill a tensor of shape [2, 3]"), "{err}");
    let err = Tensor::zeros(&[1, 1, 1, 1, 1], &cpu()).unwrap_err().to_string();
    assert!(err.contains("at most 4 dimensions"), "{err}");
    let err = t(&[2, 3], &cpu()).reshape(&[4, 2]).unwrap_err().to_string();
    assert!(err.contains("6 elements cannot become 8"), "{err}");
}

#[test]
fn unknown_names_list_the_known_ones() {
    let err = "softmaxx".parse::<Op>().unwrap_err().to_string();
    assert!(err.contains("unknown op `softmaxx`") && err.contains("log_softmax"), "{err}");

    let err = backends::open_named("tpu").unwrap_err().to_string();
    assert!(err.contains("unknown backend `tpu`") && err.contains("cpu, wgpu, cuda"), "{err}");

    let d = cpu();
    let err = d.variant(Op::Matmul, "fastest").unwrap_err().to_string();
    assert!(err.contains("no variant `fastest` for matmul") && err.contains("blocked, naive"), "{err}");
    assert!(d.prefer_variant(Op::Matmul, "fastest").is_err());
}

/// A variant that exists but cannot run here is refused by name with the reason, by the same
/// lookup a launch makes, and cannot be preferred.
#[cfg(not(feature = "openblas"))]
#[test]
fn a_variant_that_cannot_run_here_says_why() {
    let d = cpu();
    let err = d.variant(Op::Matmul, "openblas").unwrap_err();
    assert!(matches!(err, Error::VariantUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("rebuild with `--features openblas`"), "{err}");
    assert!(d.prefer_variant(Op::Matmul, "openblas").is_err());
    assert_eq!(d.variant(Op::Matmul, "naive").unwrap().name, "naive");
}

#[test]
fn a_variant_can_be_preferred_and_is_then_used() {
    let d = cpu();
    d.prefer_variant(Op::Matmul, "naive").unwrap();
    let a = Tensor::rand_uniform(&[5, 7], -1.0, 1.0, 1, &d).unwrap();
    let b = Tensor::rand_uniform(&[7, 3], -1.0, 1.0, 2, &d).unwrap();
    let naive = a.matmul(&b).unwrap().to_vec().unwrap();
    d.prefer_variant(Op::Matmul, "blocked").unwrap();
    let blocked = a.matmul(&b).unwrap().to_vec().unwrap();
    for (x, y) in naive.iter().zip(&blocked) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

#[test]
fn labels_out_of_range_are_refused() {
    let err = Labels::new(&[0, 9, 10], 10, &cpu()).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 10, index: 2, classes: 10 }), "{err:?}");
    assert!(err.to_string().contains("label 10 at position 2 is out of range for 10 classes"));

    let d = cpu();
    let labels = Labels::new(&[0, 1], 3, &d).unwrap();
    let err = t(&[2, 4], &d).softmax_cross_entropy(&labels).unwrap_err().to_string();
    assert!(err.contains("2 labels over 3 classes"), "{err}");

    // A kernel launched directly with a bad label (bypassing `Labels`) still refuses it.
    let (logits, bad, mut loss, mut grad) =
        (d.upload(&[0.0; 6]).unwrap(), d.upload(&[0.0, 3.0]).unwrap(), d.alloc(2).unwrap(), d.alloc(6).unwrap());
    let kernel = Kernel::SoftmaxCrossEntropy {
        logits: &*logits,
        labels: &*bad,
        loss: &mut *loss,
        grad: &mut *grad,
        rows: 2,
        cols: 3,
    };
    let err = d.launch(kernel, None).unwrap_err();
    assert!(matches!(err, Error::LabelOutOfRange { label: 3, index: 1, classes: 3 }), "{err:?}");
}

#[test]
fn backends_not_compiled_in_say_how_to_get_them() {
    let mut missing = vec!["cuda"];
    if cfg!(not(feature = "wgpu")) {
        missing.push("wgpu");
    }
    for name in missing {
        let err = backends::open_named(name).unwrap_err();
        assert!(matches!(err, Error::BackendUnavailable { .. }), "{err:?}");
        assert!(err.to_string().contains(&format!("--features {name}")), "{err}");
    }
}

#[test]
fn tensors_on_different_devices_do_not_mix() {
    let (d0, d1) = (cpu(), cpu());
    let err = t(&[2, 2], &d0).add(&t(&[2, 2], &d1)).unwrap_err();
    assert!(matches!(err, Error::WrongDevice { op: "add", .. }), "{err:?}");
    assert!(err.to_string().contains("Tensor::to"), "{err}");
    let moved = t(&[2, 2], &d0).to(&d1).unwrap();
    assert!(moved.add(&t(&[2, 2], &d1)).is_ok());
}

#[test]
fn a_kernel_with_wrong_buffer_lengths_is_refused_before_it_runs() {
    let d = cpu();
    let (a, b, mut c) = (d.upload(&[1.0; 6]).unwrap(), d.upload(&[1.0; 6]).unwrap(), d.alloc(3).unwrap());
    let gemm = kernelab::tensor::Gemm::new(2, 2, 3);
    let err = d.launch(Kernel::Matmul { a: &*a, b: &*b, c: &mut *c, gemm }, None).unwrap_err();
    assert!(matches!(err, Error::BufferLength { op: "matmul", buffer: "c", len: 3, expected: 4 }), "{err:?}");
}

#[test]
fn an_allocation_the_system_refuses_is_an_error() {
    let err = cpu().alloc(1 << 60).unwrap_err();
    assert!(matches!(err, Error::OutOfMemory { .. }), "{err:?}");
    assert!(err.to_string().contains("could not allocate"), "{err}");
}

#[test]
fn aliasing_an_in_place_op_is_an_error_not_a_deadlock() {
    let d = cpu();
    let x = t(&[4], &d);
    let err = x.axpy_(1.0, &x).unwrap_err();
    assert!(matches!(err, Error::Borrowed { op: "axpy", .. }), "{err:?}");
    let step = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    assert!(matches!(adam_step_(&x, &x, &t(&[4], &d), &t(&[4], &d), step), Err(Error::Borrowed { .. })));
}

#[test]
fn invalid_scalars_are_refused() {
    let d = cpu();
    let err = t(&[2, 3], &d).kl_div(&t(&[2, 3], &d), 0.0).unwrap_err().to_string();
    assert!(err.contains("temperature 0 must be > 0"), "{err}");
    let (p, g, m, v) = (t(&[3], &d), t(&[3], &d), t(&[3], &d), t(&[3], &d));
    let step = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
    let err = adam_step_(&p, &g, &m, &v, step).unwrap_err().to_string();
    assert!(err.contains("Adam steps count from 1"), "{err}");
    assert!(Tensor::rand_normal(&[3], 0.0, -1.0, 0, &d).is_err());
}

#[test]
fn backward_needs_a_recorded_scalar() {
    let d = cpu();
    let x = Tensor::ones(&[2, 2], &d).unwrap().requires_grad();
    let mut tape = Tape::new();
    let y = tape.relu(&x).unwrap();
    assert!(matches!(tape.backward(&y), Err(Error::NotScalar(_))));

    let untracked = Tensor::ones(&[2, 2], &d).unwrap();
    let s = tape.sum(&untracked).unwrap();
    let err = tape.backward(&s).unwrap_err().to_string();
    assert!(err.contains("not recorded on this tape"), "{err}");
}

/// A GPU kernel cannot return an error mid-dispatch: launched directly with a label ≥ classes
/// (which `Labels` refuses on the host), the fused cross-entropy makes that row NaN, never a
/// plausible number.
#[test]
fn a_bad_label_launched_directly_on_a_gpu_is_nan_not_garbage() {
    let devices = kernelab::bench::conformance::devices_under_test().unwrap();
    for d in devices.iter().filter(|d| d.kind() != kernelab::BackendKind::Cpu) {
        let (logits, labels) = (d.upload(&[0.5, 1.0, 2.0, 0.0, 0.0, 0.0]).unwrap(), d.upload(&[1.0, 7.0]).unwrap());
        let (mut loss, mut grad) = (d.alloc(2).unwrap(), d.alloc(6).unwrap());
        let kernel = Kernel::SoftmaxCrossEntropy {
            logits: &*logits,
            labels: &*labels,
            loss: &mut *loss,
            grad: &mut *grad,
            rows: 2,
            cols: 3,
        };
        d.launch(kernel, None).unwrap();
        let (loss, grad) = (d.download(&*loss).unwrap(), d.download(&*grad).unwrap());
        assert!(loss[0].is_finite() && loss[1].is_nan(), "{d}: {loss:?}");
        assert!(grad[..3].iter().all(|g| g.is_finite()) && grad[3..].iter().all(|g| g.is_nan()), "{d}: {grad:?}");
    }
}
