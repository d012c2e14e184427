//! Kernels that pass a check without doing the work must fail the benchmark's checks. A cheating
//! backend wraps the CPU backend and adds one deliberately bad matmul variant; each test runs the
//! benchmark on the honest default and the cheat, and the cheat's row must fail, untimed, with a
//! note that names the check that caught it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernelab_bench::record::{Record, Status};
use kernelab_bench::runner::{self, Spec, Variants};
use kernelab_bench::timing::Plan;
use kernelab_cpu::{CpuBackend, CpuBuffer};
use kernelab_tensor::{
    Backend, BackendKind, Device, DeviceBuffer, DeviceInfo, Error, Gemm, Kernel, Op, Result, Variant,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cheat {
    /// Writes zeros.
    Zeros,
    /// Writes one value everywhere.
    Constant,
    /// Writes the first quarter of C and leaves the rest poisoned.
    PoisonLeft,
    /// Drops the last partial k-tile (of 16): right whenever 16 divides k, as at the timed shape.
    SkipsPartialKTile,
    /// Right, but writes its input `a` (seen when `a` is read back).
    WritesInput,
    /// Computes each problem (shape and layout) once, then answers it from memory.
    CachesFirstAnswer,
    /// Returns at once and leaves the work to a thread that writes C 2 ms later.
    FinishesLater,
    /// Right, but writes one value past the end of C (the device's guard zone reports it).
    BreaksGuard,
    /// Right where 16 divides k; elsewhere the launch fails (a crash, as the device reports it).
    CrashesOnPartialKTile,
    /// Right when C holds the poison (NaN) as it does before a checked launch; returns at once,
    /// leaving C as it is, whenever C already holds numbers (every timed launch after the first).
    SkipsUnlessPoisoned,
}

impl Cheat {
    fn name(self) -> &'static str {
        match self {
            Cheat::Zeros => "zeros",
            Cheat::Constant => "constant",
            Cheat::PoisonLeft => "poison_left",
            Cheat::SkipsPartialKTile => "skips_partial_k_tile",
            Cheat::WritesInput => "writes_input",
            Cheat::CachesFirstAnswer => "caches_first_answer",
            Cheat::FinishesLater => "finishes_later",
            Cheat::BreaksGuard => "breaks_guard",
            Cheat::CrashesOnPartialKTile => "crashes_on_partial_k_tile",
            Cheat::SkipsUnlessPoisoned => "skips_unless_poisoned",
        }
    }
}

/// What the cheats keep between calls, by buffer (the address of the buffer object).
#[derive(Debug, Default)]
struct State {
    /// Inputs the cheat "wrote": they read back with their first value changed until rewritten.
    written: Vec<usize>,
    /// Outputs whose guard zone the cheat broke.
    broken: Vec<usize>,
    /// Answers from memory, by problem.
    cached: HashMap<String, Vec<f32>>,
    /// Outputs a thread is still writing: what it will have written, once it has.
    late: HashMap<usize, Arc<Mutex<Option<Vec<f32>>>>>,
}

#[derive(Debug)]
struct Cheating {
    cpu: CpuBackend,
    cheat: Cheat,
    state: Mutex<State>,
    launches: AtomicUsize,
}

fn at(buf: &dyn DeviceBuffer) -> usize {
    (buf as *const dyn DeviceBuffer).cast::<()>() as usize
}

fn values(buf: &dyn DeviceBuffer) -> &[f32] {
    buf.as_any().downcast_ref::<CpuBuffer>().expect("a CPU buffer").values()
}

fn values_mut(buf: &mut dyn DeviceBuffer) -> &mut [f32] {
    buf.as_any_mut().downcast_mut::<CpuBuffer>().expect("a CPU buffer").values_mut()
}

/// `C = op(A)·op(B)` over the first `depth` terms of each dot product.
fn partial_matmul(a: &[f32], b: &[f32], c: &mut [f32], g: &Gemm, depth: usize) {
    for i in 0..g.m {
        for j in 0..g.n {
            let term = |p: usize| {
                let x = if g.trans_a { a[p * g.m + i] } else { a[i * g.k + p] };
                let y = if g.trans_b { b[j * g.k + p] } else { b[p * g.n + j] };
                x * y
            };
            c[i * g.n + j] = g.alpha * (0..depth).map(term).sum::<f32>();
        }
    }
}

impl Cheating {
    fn new(cheat: Cheat) -> Self {
        Self { cpu: CpuBackend::new(), cheat, state: Mutex::default(), launches: AtomicUsize::new(0) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The honest answer in a buffer of its own.
    fn honest(&self, a: &dyn DeviceBuffer, b: &dyn DeviceBuffer, gemm: Gemm) -> Result<Vec<f32>> {
        let mut c = self.cpu.alloc(gemm.m * gemm.n)?;
        self.cpu.launch(Kernel::Matmul { a, b, c: &mut *c, gemm }, None)?;
        Ok(values(&*c).to_vec())
    }

    fn cheat(&self, a: &dyn DeviceBuffer, b: &dyn DeviceBuffer, c: &mut dyn DeviceBuffer, gemm: Gemm) -> Result<()> {
        let right = self.honest(a, b, gemm)?;
        let out = values_mut(c);
        match self.cheat {
            Cheat::Zeros => out.fill(0.0),
            Cheat::Constant => out.fill(0.25),
            Cheat::PoisonLeft => out[..right.len() / 4].copy_from_slice(&right[..right.len() / 4]),
            Cheat::SkipsPartialKTile => partial_matmul(values(a), values(b), out, &gemm, gemm.k - gemm.k % 16),
            Cheat::WritesInput => {
                out.copy_from_slice(&right);
                self.state().written.push(at(a));
            }
            Cheat::CachesFirstAnswer => {
                let problem = format!("{gemm:?}");
                out.copy_from_slice(self.state().cached.entry(problem).or_insert(right));
            }
            Cheat::FinishesLater => {
                let slot = Arc::new(Mutex::new(None));
                self.state().late.insert(at(c), slot.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(right);
                });
            }
            Cheat::BreaksGuard => {
                out.copy_from_slice(&right);
                self.state().broken.push(at(c));
            }
            Cheat::CrashesOnPartialKTile if !gemm.k.is_multiple_of(16) => {
                return Err(Error::Device { backend: "cpu".into(), message: "illegal address".into() });
            }
            Cheat::CrashesOnPartialKTile => out.copy_from_slice(&right),
            Cheat::SkipsUnlessPoisoned if !out[0].is_nan() => {}
            Cheat::SkipsUnlessPoisoned => out.copy_from_slice(&right),
        }
        Ok(())
    }
}

impl Backend for Cheating {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo { name: format!("CPU with a cheating matmul ({})", self.cheat.name()), ..DeviceInfo::default() }
    }
    fn variants(&self, op: Op) -> Vec<Variant> {
        let mut all = self.cpu.variants(op);
        if op == Op::Matmul {
            all.push(Variant::available(self.cheat.name(), "a deliberately bad kernel"));
        }
        all
    }
    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        let buf = self.cpu.alloc(len)?;
        let mut state = self.state();
        let here = at(&*buf);
        state.written.retain(|&b| b != here);
        state.broken.retain(|&b| b != here);
        state.late.remove(&here);
        Ok(buf)
    }
    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        let mut state = self.state();
        let here = at(dst);
        state.written.retain(|&b| b != here);
        state.late.remove(&here);
        self.cpu.upload(src, dst)
    }
    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        self.cpu.download(src, dst)?;
        let state = self.state();
        if let (true, Some(first)) = (state.written.contains(&at(src)), dst.first_mut()) {
            *first += 1.0;
        }
        if let Some(slot) = state.late.get(&at(src))
            && let Some(done) = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref()
        {
            dst.copy_from_slice(done);
        }
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn guard_violation(&self, buffer: &dyn DeviceBuffer) -> Result<Option<String>> {
        let broken = self.state().broken.contains(&at(buffer));
        Ok(broken.then(|| "1 value after the end changed (first at +0)".to_string()))
    }
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        match (kernel, variant) {
            (Kernel::Matmul { a, b, c, gemm }, Some(v)) if v == self.cheat.name() => {
                self.launches.fetch_add(1, Ordering::Relaxed);
                self.cheat(a, b, c, gemm)
            }
            (kernel, variant) => self.cpu.launch(kernel, variant),
        }
    }
}

/// Benchmarks the honest default matmul and `cheat` at 64×64×64; returns both rows.
fn bench(cheat: Cheat) -> (Record, Record) {
    let device = Device::new(Cheating::new(cheat));
    let default = device.variants(Op::Matmul)[0].name.to_string();
    let plan = Plan { warmup: 1, repeat: 3, min_runs: 2, budget: Duration::from_millis(5), ..Plan::default() };
    let chosen = Variants::Named(vec![default, cheat.name().into()]);
    let rows = runner::run(&[device], &[Spec::new(Op::Matmul, &[64, 64, 64])], &chosen, &plan, |_| {})
        .expect("the run itself succeeds");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    (rows[0].clone(), rows[1].clone())
}

/// The cheat's row failed with a note that starts with `says`, untimed, and the honest row passed.
fn caught(cheat: Cheat, says: &str) -> String {
    let (honest, row) = bench(cheat);
    assert_eq!((honest.status, honest.note.as_deref()), (Status::Ok, None), "the honest default: {honest:#?}");
    assert!(honest.timed());
    assert_eq!(row.variant, cheat.name());
    let note = row.note.clone().unwrap_or_default();
    assert_eq!(row.status, Status::Fail, "{cheat:?} passed: {note}");
    assert!(note.starts_with(says), "{cheat:?}: the note should start `{says}`: {note}");
    assert!(!row.timed() && row.samples_s.is_empty() && row.median_s.is_nan() && !row.ok, "{row:#?}");
    note
}

#[test]
fn zeros_are_refused_as_untrustworthy() {
    let note = caught(Cheat::Zeros, "untrustworthy: output 0 is all zeros where the reference is not");
    assert!(note.contains("over budget ("), "the error is named too: {note}");
}

#[test]
fn a_constant_is_refused_as_untrustworthy() {
    caught(Cheat::Constant, "untrustworthy: output 0 is the constant 2.5e-1 everywhere");
}

#[test]
fn an_output_left_mostly_poisoned_is_refused_as_untrustworthy() {
    caught(Cheat::PoisonLeft, "untrustworthy: output 0 still holds the poison (NaN) in 75% of the 4096 elements");
}

#[test]
fn a_kernel_wrong_only_on_partial_tiles_fails_the_conformance_shapes() {
    // Right at the timed shape (16 divides 64), wrong where the last k-tile is partial: at
    // 1×1×1, the first row shape, that tile is the only one.
    let (_, row) = bench(Cheat::SkipsPartialKTile);
    let note = caught(Cheat::SkipsPartialKTile, "conformance matmul 1x1x1: ");
    assert!(note.contains("over budget ("), "{note}");
    assert!(row.budget_ratio > 1.0, "the error columns are those of the failing shape: {row:#?}");
}

#[test]
fn a_launch_that_fails_at_a_row_shape_is_the_rows_error_naming_the_shape() {
    let (honest, row) = bench(Cheat::CrashesOnPartialKTile);
    assert_eq!(honest.status, Status::Ok);
    assert_eq!(row.status, Status::Error, "{row:#?}");
    let note = row.note.clone().unwrap_or_default();
    assert!(note.starts_with("error: conformance matmul 1x1x1: cpu device error"), "{note}");
    assert!(note.contains("illegal address") && !row.timed(), "{note}");
}

#[test]
fn a_kernel_that_writes_its_input_is_caught() {
    caught(Cheat::WritesInput, "an input changed: a[0] was");
}

#[test]
fn a_kernel_that_answers_from_memory_fails_the_re_check_on_fresh_inputs() {
    let note = caught(Cheat::CachesFirstAnswer, "fresh inputs after ");
    assert!(note.contains("timed samples (times dropped): over budget ("), "{note}");
}

#[test]
fn a_kernel_that_skips_its_work_unless_its_output_is_poisoned_fails_the_re_check() {
    // Its checked launches all start from the poison, so only the re-check, whose outputs keep
    // the old inputs' answer, sees it return that answer for the fresh inputs.
    let note = caught(Cheat::SkipsUnlessPoisoned, "fresh inputs after ");
    assert!(note.contains("over budget"), "{note}");
}

#[test]
fn work_left_running_after_the_launch_returned_is_caught() {
    caught(
        Cheat::FinishesLater,
        "work left running after the launch returned: c[0] read NaN as the launch returned and",
    );
}

#[test]
fn a_broken_guard_zone_is_caught_and_the_buffer_named() {
    caught(Cheat::BreaksGuard, "guard zone broken: c: 1 value after the end changed (first at +0)");
}

#[test]
fn the_table_shows_a_failed_row_without_a_time_and_with_the_check() {
    let (honest, row) = bench(Cheat::Zeros);
    let (ok, failed) = (kernelab_bench::table::cells(&honest), kernelab_bench::table::cells(&row));
    assert_ne!(ok[5], "-", "the honest row has a median");
    assert!(failed[5..12].iter().all(|c| c == "-"), "no time, rate or ceiling for a failed row: {failed:?}");
    assert!(failed[15].starts_with("FAIL: untrustworthy: output 0 is all zeros"), "{}", failed[15]);
}
