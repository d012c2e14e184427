//! What the distillation tests record of a run: every student's parameters and epochs, bit for bit.

use kernelab::nn::distill::Students;
use kernelab::nn::{EpochLog, Frozen, Mlp, Observer};

/// Every parameter's bits, in order.
pub fn bits(model: &Mlp) -> Vec<u32> {
    model.parameters().iter().flat_map(|p| p.to_vec().unwrap()).map(f32::to_bits).collect()
}

/// What a student ended with: its parameters' bits, and each epoch's number, training loss, test
/// loss and test accuracy (the bits of each; the timing is left out).
#[derive(Clone, Debug, PartialEq)]
pub struct Ended {
    pub parameters: Vec<u32>,
    pub epochs: Vec<[u64; 4]>,
}

impl Ended {
    pub fn new(model: &Mlp, logs: &[EpochLog]) -> Self {
        let epochs = logs
            .iter()
            .map(|l| [l.epoch as u64, l.train_loss.to_bits(), l.test_loss.to_bits(), l.test_acc.to_bits()])
            .collect();
        Self { parameters: bits(model), epochs }
    }

    /// The last epoch's test accuracy, in percent.
    pub fn accuracy(&self) -> f64 {
        100.0 * f64::from_bits(self.epochs.last().unwrap()[3])
    }
}

/// The two students of one seed.
#[derive(Clone, Debug)]
pub struct Pair {
    pub seed: u64,
    pub label_only: Ended,
    pub distilled: Ended,
}

/// An observer that keeps the teacher's parameters and every pair of students.
#[derive(Default)]
pub struct Recorder {
    pub teacher: Option<Vec<u32>>,
    /// The teacher's last test accuracy in percent, when it was trained.
    pub teacher_acc: Option<f64>,
    pub pairs: Vec<Pair>,
}

impl Observer for Recorder {
    fn teacher(&mut self, teacher: &Frozen, logs: Option<&[EpochLog]>) -> kernelab::Result<()> {
        self.teacher = Some(bits(teacher.model()));
        self.teacher_acc = logs.and_then(|l| l.last()).map(|l| 100.0 * l.test_acc);
        Ok(())
    }

    fn students(&mut self, s: &Students) -> kernelab::Result<()> {
        self.pairs.push(Pair {
            seed: s.seed,
            label_only: Ended::new(&s.label_only, &s.label_only_logs),
            distilled: Ended::new(&s.distilled, &s.distilled_logs),
        });
        Ok(())
    }
}

/// The α = 0 control on `pairs`: each distilled student equals its label-only student in every
/// parameter bit and every epoch's figures; the label-only students of two seeds differ (so the
/// equality is not that of two empty or constant runs).
pub fn assert_alpha_zero_control(pairs: &[Pair]) {
    assert!(pairs.len() >= 2, "two seeds or more: {}", pairs.len());
    for p in pairs {
        assert!(!p.label_only.epochs.is_empty());
        assert_eq!(p.label_only.epochs, p.distilled.epochs, "seed {}: the epochs' losses and accuracies", p.seed);
        let differing = p.label_only.parameters.iter().zip(&p.distilled.parameters).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "seed {}: parameters of the distilled student differ at alpha 0", p.seed);
        assert_eq!(p.label_only.parameters.len(), p.distilled.parameters.len());
    }
    assert_ne!(pairs[0].label_only.parameters, pairs[1].label_only.parameters, "two seeds, two students");
}
