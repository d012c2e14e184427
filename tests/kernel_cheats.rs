//! The cheating kernels of `tests/kernels/c/` do what their comments say, measured here on the CPU
//! backend itself (the benchmark's checks that catch them are tested where they are wired): each
//! loads as a matmul, and those that are safe to call in this process show their cheat in
//! numbers. The two that are not (one crashes, one never returns) are only loaded.

mod common;

use std::time::{Duration, Instant};

use common::cc;
use kernelab::bench::check::{Check, compare};
use kernelab::bench::reference;
use kernelab::cpu::CpuBackend;
use kernelab::tensor::{DeviceBuffer, Gemm, Kernel, KernelFile};
use kernelab::{Device, Op};

/// A matmul on the CPU with its buffers at hand: inputs from `seed`, the output NaN.
struct Matmul {
    device: Device,
    gemm: Gemm,
    a0: Vec<f32>,
    b0: Vec<f32>,
    a: Box<dyn DeviceBuffer>,
    b: Box<dyn DeviceBuffer>,
    c: Box<dyn DeviceBuffer>,
}

/// `len` values in [-0.9, 1.1) that differ with `seed`.
fn values(len: usize, seed: u64) -> Vec<f32> {
    (0..len as u64).map(|i| ((i * 2_654_435_761 + seed * 40_503) % 1000) as f32 / 500.0 - 0.9).collect()
}

impl Matmul {
    fn new(device: &Device, (m, n, k): (usize, usize, usize), seed: u64) -> Self {
        let (a0, b0) = (values(m * k, seed), values(k * n, seed + 1));
        let (a, b) = (device.upload(&a0).unwrap(), device.upload(&b0).unwrap());
        let c = device.upload(&vec![f32::NAN; m * n]).unwrap();
        Self { device: device.clone(), gemm: Gemm::new(m, n, k), a0, b0, a, b, c }
    }

    fn launch(&mut self, variant: &str) {
        let kernel = Kernel::Matmul { a: &*self.a, b: &*self.b, c: &mut *self.c, gemm: self.gemm };
        self.device.launch(kernel, Some(variant)).unwrap();
    }

    fn output(&self) -> Vec<f32> {
        self.device.download(&*self.c).unwrap()
    }

    /// The output against the f64 reference of the inputs as uploaded.
    fn check(&self) -> Check {
        compare(&[reference::matmul(&self.a0, &self.b0, &[], &self.gemm)], &[self.output()])
    }
}

/// A CPU device with the fixture `name` built and loaded as a matmul kernel, and its variant.
fn loaded(name: &str, dir: &tempfile::TempDir) -> (Device, &'static str) {
    let device = Device::new(CpuBackend::new());
    let library = cc::shared_library(&cc::fixture(name), dir.path(), &[]);
    let file = KernelFile::open(&library.display().to_string(), Op::Matmul).unwrap();
    let variant = device.load_kernel(&file).unwrap();
    assert_eq!(variant.name, format!("{name}.so"));
    (device, variant.name)
}

const SHAPE: (usize, usize, usize) = (13, 21, 9);

#[test]
fn zeros_and_constant_write_every_value_and_compute_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, value) in [("zeros", 0.0), ("constant", 0.5)] {
        let (device, name) = loaded(fixture, &dir);
        let mut run = Matmul::new(&device, SHAPE, 1);
        run.launch(name);
        assert_eq!(run.output(), vec![value; 13 * 21], "{fixture}");
        assert!(run.check().failures > 200, "{fixture}: {:?}", run.check());
    }
}

#[test]
fn unwritten_leaves_the_poison_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (device, name) = loaded("unwritten", &dir);
    let mut run = Matmul::new(&device, SHAPE, 1);
    run.launch(name);
    assert!(run.output().iter().all(|v| v.to_bits() == f32::NAN.to_bits()));
    assert_eq!(run.check().failures, 13 * 21);
}

#[test]
fn modifies_input_is_right_but_zeroes_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let (device, name) = loaded("modifies_input", &dir);
    let mut run = Matmul::new(&device, SHAPE, 1);
    run.launch(name);
    assert!(run.check().ok(), "{:?}", run.check());
    assert_ne!(run.a0, vec![0.0; 13 * 9]);
    assert_eq!(device.download(&*run.a).unwrap(), vec![0.0; 13 * 9], "A as it was left");
    assert_eq!(device.download(&*run.b).unwrap(), run.b0, "B untouched");
}

#[test]
fn caches_returns_its_first_answer_for_fresh_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (device, name) = loaded("caches", &dir);
    let mut first = Matmul::new(&device, SHAPE, 1);
    first.launch(name);
    assert!(first.check().ok(), "{:?}", first.check());
    let mut fresh = Matmul::new(&device, SHAPE, 2);
    assert_ne!(fresh.a0, first.a0);
    fresh.launch(name);
    assert_eq!(fresh.output(), first.output(), "the first answer again");
    assert!(fresh.check().failures > 200, "{:?}", fresh.check());
}

#[test]
fn late_thread_returns_before_its_output_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (device, name) = loaded("late_thread", &dir);
    let mut run = Matmul::new(&device, SHAPE, 1);
    let started = Instant::now();
    run.launch(name);
    let returned = started.elapsed();
    let at_return = run.output();
    // Keep every buffer alive until the thread has written the whole output (the last value
    // last), then a little longer for it to exit; it frees only its own memory.
    while run.output().iter().any(|v| v.is_nan()) {
        assert!(started.elapsed() < Duration::from_secs(20), "the late thread never wrote the output");
        std::thread::sleep(Duration::from_millis(5));
    }
    let written = started.elapsed();
    std::thread::sleep(Duration::from_millis(50));
    assert!(at_return.iter().all(|v| v.is_nan()), "nothing written when the call returned");
    assert!(run.check().ok(), "the late answer is right: {:?}", run.check());
    assert!(written >= Duration::from_millis(50) && returned < written, "{returned:?}, then {written:?}");
}

#[test]
fn segfault_and_hang_load_and_are_never_called_here() {
    // Calling them crashes or blocks this process: the benchmark runs library kernels in a child
    // process, where each fails its row. Here: they build, export their symbols and load.
    let dir = tempfile::tempdir().unwrap();
    for fixture in ["segfault", "hang"] {
        let (device, name) = loaded(fixture, &dir);
        assert_eq!(device.variants(Op::Matmul).last().map(|v| v.name), Some(name));
    }
}
