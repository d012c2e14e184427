//! Distillation's controls, run through the entry point `kernelab distill` uses
//! ([`kernelab::nn::distill::distill`]): at α = 0 the distilled student is the label-only student
//! bit for bit, on one device and on several; a teacher that is the student itself adds nothing;
//! the teacher is never trained, and neither student sees the other's updates.

mod common;

use std::path::Path;

use common::students::{Recorder, assert_alpha_zero_control, bits};
use kernelab::cpu::CpuBackend;
use kernelab::nn::distill::{Distillation, Teacher, distill};
use kernelab::nn::{Adam, Data, Fit, Frozen, Mlp, Objective, Plan, Trainer};
use kernelab::{Device, Tape, Tensor};

fn cpu() -> Device {
    Device::new(CpuBackend::new())
}

/// The first `limit` training images of Fashion-MNIST and its first 1,000 test images; none
/// (skipped) where the dataset is not installed, which CI must not be.
fn fashion_mnist(limit: usize) -> Option<Data> {
    let dir = Path::new(kernelab::nn::FASHION_MNIST_DIR);
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must install dataset-fashion-mnist");
        eprintln!("skipped: {} is missing (apt-get install dataset-fashion-mnist)", dir.display());
        return None;
    }
    let data = Data::load(dir, 784, 10, Some(limit)).unwrap();
    Some(Data { test: data.test.take(1000), ..data })
}

fn plan<'a>(devices: &'a [Device], split: &'a [f64]) -> Plan<'a> {
    Plan {
        devices,
        split,
        comm: None,
        verify_replicas: false,
        epochs: 2,
        batch: 64,
        lr: 1e-3,
        dtype: kernelab::tensor::Dtype::F32,
        allow_nonfinite: false,
        profile: false,
    }
}

fn experiment(alpha: f32) -> Distillation {
    Distillation {
        teacher: Teacher::Train("784-64-10".into()),
        student: "784-32-10".into(),
        temperature: 2.0,
        alpha,
        seed: 7,
        seeds: 2,
    }
}

/// Runs the experiment at `alpha` on `devices`; returns what the observer saw.
fn run(devices: &[Device], split: &[f64], data: &Data, alpha: f32) -> Recorder {
    let mut recorder = Recorder::default();
    let finals = distill(&plan(devices, split), data, &experiment(alpha), &mut recorder).unwrap();
    assert_eq!(finals.iter().map(|f| f.seed).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(recorder.pairs.len(), 2);
    for (f, pair) in finals.iter().zip(&recorder.pairs) {
        assert_eq!((f.label_only, f.distilled), (pair.label_only.accuracy(), pair.distilled.accuracy()));
    }
    recorder
}

/// The α = 0 control (see [`assert_alpha_zero_control`]); and at α = 0.5 the teacher changes
/// the distilled student while the label-only one stays as it was (the distillation path ran).
fn alpha_zero_is_label_only(devices: &[Device], split: &[f64]) {
    let Some(data) = fashion_mnist(1000) else { return };
    let control = run(devices, split, &data, 0.0);
    assert_alpha_zero_control(&control.pairs);
    let half = run(devices, split, &data, 0.5);
    for (pair, control) in half.pairs.iter().zip(&control.pairs) {
        assert_eq!(pair.label_only, control.label_only, "seed {}: label-only does not depend on alpha", pair.seed);
        assert_ne!(pair.label_only.parameters, pair.distilled.parameters, "seed {}: alpha 0.5", pair.seed);
    }
    assert_eq!(control.teacher, half.teacher, "one teacher, trained the same way both times");
    assert_payoff(&devices[0], &half);
}

/// The payoff table `kernelab distill` ends with, from this run: each model's size and work from
/// its widths, its accuracy as the run ended it (mean over the seeds), and the accuracy per
/// million multiply-adds, where a student of half the teacher's work is ahead unless it is half
/// as accurate.
fn assert_payoff(device: &Device, run: &Recorder) {
    use kernelab::cli::payoff::{Entry, measure, timing};
    let (teacher, student) = (Mlp::new("784-64-10", 0, device).unwrap(), Mlp::new("784-32-10", 0, device).unwrap());
    let teacher_acc = run.teacher_acc.unwrap();
    let accs = |f: fn(&common::students::Pair) -> f64| run.pairs.iter().map(f).collect::<Vec<f64>>();
    let entries = [
        Entry { run: "teacher", model: &teacher, accuracies: vec![teacher_acc] },
        Entry { run: "student", model: &student, accuracies: accs(|p| p.label_only.accuracy()) },
        Entry { run: "distilled", model: &student, accuracies: accs(|p| p.distilled.accuracy()) },
    ];
    let rows = measure(&entries, &timing()).unwrap();
    // 784-64-10: 64·785 + 10·65 = 50890 parameters, 784·64 + 64·10 = 50816 multiply-adds;
    // 784-32-10: 32·785 + 10·33 = 25450 and 784·32 + 32·10 = 25408.
    let sizes: Vec<(usize, u64)> = rows.iter().map(|r| (r.parameters, r.multiply_adds)).collect();
    assert_eq!(sizes, [(50890, 50816), (25450, 25408), (25450, 25408)]);
    for (row, entry) in rows.iter().zip(&entries) {
        let mean = entry.accuracies.iter().sum::<f64>() / entry.accuracies.len() as f64;
        assert!((row.test_acc_mean - mean).abs() < 1e-9, "{row:?}");
        assert_eq!(row.test_acc_sd.is_some(), entry.accuracies.len() > 1, "{row:?}");
        assert!((row.acc_per_mmac - mean / (row.multiply_adds as f64 / 1e6)).abs() < 1e-9, "{row:?}");
        assert!(row.batch1_p50_s > 0.0 && row.batch256_images_per_s > 0.0, "{row:?}");
    }
    assert!(rows[2].test_acc_mean > 0.5 * teacher_acc, "{rows:?}");
    assert!(rows[2].acc_per_mmac > rows[0].acc_per_mmac, "the distilled student buys more per multiply-add: {rows:?}");
}

#[test]
fn at_alpha_zero_the_distilled_student_is_the_label_only_one_on_one_device() {
    alpha_zero_is_label_only(&[cpu()], &[]);
}

#[test]
fn at_alpha_zero_the_distilled_student_is_the_label_only_one_data_parallel() {
    alpha_zero_is_label_only(&[cpu(), cpu()], &[1.0, 3.0]);
}

/// A batch of `rows` images of 12 values and their labels in 4 classes.
fn batch(rows: usize, step: u32) -> (Vec<f32>, Vec<u32>) {
    let images = (0..rows * 12).map(|i| ((i as u32 * 7 + step * 13) % 17) as f32 / 17.0).collect();
    (images, (0..rows as u32).map(|i| (i + step) % 4).collect())
}

/// A teacher that is the student itself (a frozen copy of its initial parameters) adds nothing:
/// its soft targets are the student's own softmax(z/T), so the KL term is 0 and its gradient is
/// exactly 0 — at α = 1 the first Adam step leaves every parameter as it was, at every T.
#[test]
fn a_teacher_that_is_the_student_itself_adds_nothing() {
    let d = cpu();
    let (images, labels) = batch(10, 0);
    for temperature in [1.0f32, 2.0, 4.0] {
        let student = Mlp::new("12-8-4", 5, &d).unwrap();
        let teacher = Frozen::copy_of(&student).unwrap();
        let x = Tensor::from_slice(&images, &[10, 12], &d).unwrap();
        let mut tape = Tape::new();
        let logits = student.forward(&mut tape, &x).unwrap();
        let targets = teacher.forward(&x).unwrap().scale(1.0 / temperature).unwrap().softmax().unwrap();
        let (kl, grad) = logits.kl_div(&targets, temperature).unwrap();
        let kl = kl.to_vec().unwrap();
        assert!(kl.iter().all(|v| v.abs() <= 1e-6), "T = {temperature}: KL per row {kl:?}");
        let grad = grad.to_vec().unwrap();
        assert!(grad.iter().all(|&g| g == 0.0), "T = {temperature}: ∂KL/∂z = {grad:?}");

        let before = bits(&student);
        let objective = Objective::Distill { teacher, temperature, alpha: 1.0 };
        let mut trainer = Trainer::adam(student, 1e-2, objective).unwrap();
        Fit::step(&mut trainer, &images, &labels).unwrap();
        assert!(bits(trainer.model()) == before, "T = {temperature}: a step toward itself moved the student");
    }
    // The same step on the labels does move it: the check above can fail.
    let student = Mlp::new("12-8-4", 5, &d).unwrap();
    let before = bits(&student);
    let mut trainer = Trainer::adam(student, 1e-2, Objective::CrossEntropy).unwrap();
    Fit::step(&mut trainer, &images, &labels).unwrap();
    assert!(bits(trainer.model()) != before);
}

/// A frozen teacher is a copy that no optimizer accepts and that distillation never changes; a
/// deep copy of a model trains apart from the original.
#[test]
fn the_teacher_stays_frozen_and_copies_do_not_alias() {
    let d = cpu();
    let teacher_model = Mlp::new("12-16-4", 1, &d).unwrap();
    let teacher = Frozen::copy_of(&teacher_model).unwrap();
    let err = Adam::new(teacher.model().parameters(), 1e-3).err().expect("a frozen model is refused").to_string();
    assert!(err.contains("is a constant, not a parameter: a frozen model cannot be trained"), "{err}");
    let frozen = bits(teacher.model());

    // Training the model the teacher was copied from does not move the teacher.
    let mut original = Trainer::adam(teacher_model, 1e-2, Objective::CrossEntropy).unwrap();
    let student = Mlp::new("12-8-4", 5, &d).unwrap();
    let copy = student.deep_copy().unwrap();
    let initial = bits(&copy);
    let objective = Objective::Distill { teacher: teacher.clone(), temperature: 2.0, alpha: 0.7 };
    let mut distilled = Trainer::adam(student, 1e-2, objective).unwrap();
    for step in 0..3 {
        let (images, labels) = batch(10, step);
        Fit::step(&mut original, &images, &labels).unwrap();
        Fit::step(&mut distilled, &images, &labels).unwrap();
    }
    assert!(bits(original.model()) != frozen && bits(distilled.model()) != initial, "both trained");
    assert!(bits(teacher.model()) == frozen, "the teacher moved");
    assert!(bits(&copy) == initial, "the deep copy moved with the model it was copied from");
}
