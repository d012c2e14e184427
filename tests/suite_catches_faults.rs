//! The conformance suite must fail broken kernels: a test that cannot fail is a defect. A faulty
//! backend wraps the CPU backend and breaks it in one way at a time; the suite must reject it.

use kernelab::bench::conformance::check_op;
use kernelab::cpu::CpuBackend;
use kernelab::tensor::{Backend, BackendKind, DeviceBuffer, DeviceInfo, Dtype, Kernel, Variant};
use kernelab::{Device, Op, Result};

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// ReLU writes every element but the last, which keeps whatever the buffer held.
    ReluSkipsLast,
    /// Every download returns the first value off by 5% (plus 1e-3).
    PerturbFirst,
}

#[derive(Debug)]
struct Faulty(CpuBackend, Fault);

impl Backend for Faulty {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo { name: format!("faulty CPU ({:?})", self.1), ..DeviceInfo::default() }
    }
    fn variants(&self, op: Op) -> Vec<Variant> {
        self.0.variants(op)
    }
    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        self.0.alloc(len)
    }
    fn alloc_as(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        self.0.alloc_as(len, dtype)
    }
    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        self.0.upload(src, dst)
    }
    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        self.0.download(src, dst)?;
        if let (Fault::PerturbFirst, Some(first)) = (self.1, dst.first_mut()) {
            *first += 0.05 * first.abs() + 1e-3;
        }
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        match (self.1, kernel) {
            // Whatever the storage: the last element keeps what it held before the launch.
            (Fault::ReluSkipsLast, Kernel::Relu { x, y }) => {
                let mut before = vec![0.0; y.len()];
                self.0.download(y, &mut before)?;
                self.0.launch(Kernel::Relu { x, y: &mut *y }, variant)?;
                let mut after = vec![0.0; y.len()];
                self.0.download(y, &mut after)?;
                if let (Some(last), Some(&held)) = (after.last_mut(), before.last()) {
                    *last = held;
                }
                self.0.upload(&after, y)
            }
            (_, kernel) => self.0.launch(kernel, variant),
        }
    }
}

#[test]
fn an_unwritten_element_fails_every_case() {
    let device = Device::new(Faulty(CpuBackend::new(), Fault::ReluSkipsLast));
    let outcomes = check_op(&device, Op::Relu);
    assert!(!outcomes.is_empty());
    for o in &outcomes {
        assert!(!o.passed(), "the poisoned last element went unnoticed: {}", o.describe());
        assert!(o.describe().contains("got NaN"), "{}", o.describe());
    }
}

#[test]
fn a_five_percent_error_fails_every_case_of_every_op() {
    let device = Device::new(Faulty(CpuBackend::new(), Fault::PerturbFirst));
    for op in Op::ALL {
        let outcomes = check_op(&device, op);
        let passed: Vec<String> = outcomes.iter().filter(|o| o.passed()).map(|o| o.describe()).collect();
        assert!(passed.is_empty(), "{op}: a 5% error passed:\n{}", passed.join("\n"));
    }
}

#[test]
fn the_honest_cpu_passes_the_same_cases() {
    let device = Device::new(CpuBackend::new());
    for op in [Op::Relu, Op::Matmul, Op::Softmax] {
        let outcomes = check_op(&device, op);
        assert!(outcomes.iter().any(|o| !o.skipped), "{op}: every case was skipped");
        let failed: Vec<String> = outcomes.iter().filter(|o| !o.passed() && !o.skipped).map(|o| o.describe()).collect();
        assert!(failed.is_empty(), "{op}:\n{}", failed.join("\n"));
    }
}
