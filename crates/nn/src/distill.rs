//! Knowledge distillation as an experiment with its control: a teacher (trained once, or loaded),
//! then, for each seed, two students from the same initial parameters — one trained on the labels
//! alone, one distilled (`α·T²·KL(p_T(teacher) ‖ p_T(student)) + (1−α)·CE`) — so that the
//! distilled student's gain is measured against the run that differs from it only by the teacher.
//!
//! The two students are independent copies: the distilled one starts from a [`Mlp::deep_copy`] of
//! the label-only one's initial parameters, taken before either trains, and the teacher is
//! [`Frozen`]. At `α = 0` the distilled student is therefore trained exactly as the label-only one
//! and ends bit for bit equal to it, whatever the learner (one device, data parallel, MPI).

use kernelab_tensor::{Error, Result};

use crate::learner::{Observer, Plan, Run, run};
use crate::train::{EpochLog, Objective};
use crate::world::{Field, agree, check_same_run, or_abort};
use crate::{Data, Frozen, Mlp, parse_spec, size};

/// Where the teacher comes from.
#[derive(Clone, Debug)]
pub enum Teacher {
    /// Trained on the labels from a model of this spec, initialized from the first seed + 1000.
    Train(String),
    /// Given, already trained (e.g. [`Frozen::load`] from a checkpoint).
    Given(Frozen),
}

/// A distillation experiment.
#[derive(Clone, Debug)]
pub struct Distillation {
    pub teacher: Teacher,
    /// The students' spec, e.g. `784-128-10`.
    pub student: String,
    /// `T` of the soft targets `softmax(teacher/T)`.
    pub temperature: f32,
    /// The distillation term's weight; `1 − α` goes to the labels.
    pub alpha: f32,
    /// The first seed: of the teacher's shuffling and of the first pair of students.
    pub seed: u64,
    /// Pairs of students, seeded `seed`, `seed + 1`, ….
    pub seeds: u64,
}

/// The two students of one seed, trained.
pub struct Students {
    pub seed: u64,
    pub label_only: Mlp,
    pub label_only_logs: Vec<EpochLog>,
    pub distilled: Mlp,
    pub distilled_logs: Vec<EpochLog>,
}

/// The students' final test accuracies (percent) of one seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finals {
    pub seed: u64,
    pub label_only: f64,
    pub distilled: f64,
}

impl Distillation {
    /// Refuses settings that cannot mean anything: a temperature outside (0, 10⁴], α outside
    /// [0, 1], a number of seeds outside 1..=1000.
    pub fn check_settings(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument { op: "distill", why });
        let (t, alpha) = (self.temperature, self.alpha);
        if !(t.is_finite() && t > 0.0 && t <= 1e4 && (0.0..=1.0).contains(&alpha)) {
            return bad(format!(
                "--temperature {t} and --alpha {alpha}: need a finite temperature in (0, 10000] and 0 ≤ alpha ≤ 1"
            ));
        }
        if !(1..=1000).contains(&self.seeds) {
            return bad(format!("--seeds {}: train the students from 1 to 1000 seeds", self.seeds));
        }
        Ok(())
    }

    /// [`Distillation::check_settings`], and refuses a teacher whose inputs or classes differ from
    /// the students'.
    pub fn check(&self) -> Result<()> {
        self.check_settings()?;
        let bad = |why: String| Err(Error::InvalidArgument { op: "distill", why });
        let student = parse_spec(&self.student)?;
        let teacher = match &self.teacher {
            Teacher::Train(spec) => parse_spec(spec)?,
            Teacher::Given(frozen) => frozen.model().widths(),
        };
        if teacher.first() != student.first() || teacher.last() != student.last() {
            let spec = |w: &[usize]| w.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
            return bad(format!(
                "the teacher {} and the student {} differ in inputs or classes",
                spec(&teacher),
                self.student
            ));
        }
        Ok(())
    }

    /// The seeds of the pairs of students.
    pub fn student_seeds(&self) -> impl Iterator<Item = u64> + use<> {
        let seed = self.seed;
        (0..self.seeds).map(move |i| seed.wrapping_add(i))
    }

    fn settings(&self, plan: &Plan) -> Vec<Field> {
        let mut fields = plan.fields(self.seed);
        fields.extend([
            Field::real("--temperature", self.temperature),
            Field::real("--alpha", self.alpha),
            Field::count("--seeds", self.seeds),
        ]);
        fields
    }
}

/// Runs the experiment `d` as `plan` says, on `data`: the teacher, then both students of every
/// seed, each run logged (`teacher`, `student`, `distilled`) and shown to `observer` as it ends.
/// Returns each seed's final accuracies (NaN on a rank other than 0, which does not evaluate). In
/// a world the settings, the memory and the run are checked on every rank together first.
pub fn distill(plan: &Plan, data: &Data, d: &Distillation, observer: &mut dyn Observer) -> Result<Vec<Finals>> {
    agree(plan.comm, d.check().and_then(|()| check_memory(plan, d)))?;
    let first = plan.build(&d.student, d.seed)?;
    check_same_run(plan.comm, &first, data, d.settings(plan))?;
    drop(first);
    let teacher = teacher(plan, data, d, observer)?;
    let mut finals = Vec::new();
    for seed in d.student_seeds() {
        let students = students(plan, data, d, &teacher, seed, observer)?;
        let last = |logs: &[EpochLog]| logs.last().map_or(f64::NAN, |l| 100.0 * l.test_acc);
        finals.push(Finals {
            seed,
            label_only: last(&students.label_only_logs),
            distilled: last(&students.distilled_logs),
        });
    }
    Ok(finals)
}

/// The memory of the run at its peak: the teacher frozen (and first trained, when it is) beside
/// the two students of a seed.
fn check_memory(plan: &Plan, d: &Distillation) -> Result<()> {
    plan.check_memory(&d.student, 0)?;
    let student = parse_spec(&d.student)?;
    let held = |widths: &[usize]| size::inference_bytes(widths, plan.batch).unwrap_or(u64::MAX);
    let teacher = match &d.teacher {
        Teacher::Train(spec) => {
            plan.check_memory(spec, held(&student))?;
            parse_spec(spec)?
        }
        Teacher::Given(frozen) => frozen.model().widths(),
    };
    let extra = held(&teacher).saturating_add(held(&student));
    plan.check_memory(&d.student, extra)
}

/// The teacher: given, or trained with cross-entropy from the first seed + 1000 (its shuffling
/// from the first seed), then frozen. Every rank checks it holds the same one.
fn teacher(plan: &Plan, data: &Data, d: &Distillation, observer: &mut dyn Observer) -> Result<Frozen> {
    match &d.teacher {
        Teacher::Given(frozen) => {
            check_same_run(plan.comm, frozen.model(), data, plan.fields(d.seed))?;
            if plan.leads() {
                or_abort(plan.comm, observer.teacher(frozen, None))?;
            }
            Ok(frozen.clone())
        }
        Teacher::Train(spec) => {
            let model = plan.build(spec, d.seed.wrapping_add(1000))?;
            let objective = Objective::CrossEntropy;
            let (model, logs) = run(plan, data, Run { name: "teacher", seed: d.seed, model, objective }, observer)?;
            let frozen = or_abort(plan.comm, Frozen::copy_of(&model))?;
            if plan.leads() {
                or_abort(plan.comm, observer.teacher(&frozen, Some(&logs)))?;
            }
            Ok(frozen)
        }
    }
}

/// The two students of `seed`: one initialization, deep-copied before either trains; the first
/// copy trained on the labels, the second distilled from `teacher`.
fn students(
    plan: &Plan,
    data: &Data,
    d: &Distillation,
    teacher: &Frozen,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<Students> {
    let student = plan.build(&d.student, seed)?;
    let twin = or_abort(plan.comm, student.deep_copy())?;
    let plain = Run { name: "student", seed, model: student, objective: Objective::CrossEntropy };
    let (label_only, label_only_logs) = run(plan, data, plain, observer)?;
    let objective = Objective::Distill { teacher: teacher.clone(), temperature: d.temperature, alpha: d.alpha };
    let (distilled, distilled_logs) =
        run(plan, data, Run { name: "distilled", seed, model: twin, objective }, observer)?;
    let students = Students { seed, label_only, label_only_logs, distilled, distilled_logs };
    if plan.leads() {
        or_abort(plan.comm, observer.students(&students))?;
    }
    Ok(students)
}
