//! Criterion benches of the CPU kernels, every registered variant. Throughput is counted in
//! floating-point operations as "elements", so criterion's `Melem/s` reads as MFLOP/s
//! (`2·M·N·K` for matmul, see `Case::flops`). `kernelab bench` is the table; this is the
//! statistics-heavy view of the same cases.
//!
//! `cargo bench --bench cpu_kernels [-- FILTER]`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use kernelab::bench::case::{Case, Knobs};
use kernelab::cpu::CpuBackend;
use kernelab::{Device, Op};

fn cases() -> Vec<Case> {
    let shapes: [(Op, &[usize]); 7] = [
        (Op::Matmul, &[256, 256, 256]),
        (Op::Matmul, &[64, 128, 784]),
        (Op::Matmul, &[1024, 1024, 1024]),
        (Op::Relu, &[1 << 24]),
        (Op::Softmax, &[4096, 1000]),
        (Op::SoftmaxCrossEntropy, &[64, 10]),
        (Op::Adam, &[784 * 128]),
    ];
    shapes.iter().map(|(op, dims)| Case::new(*op, dims, Knobs::default(), 1).expect("a valid shape")).collect()
}

fn cpu_kernels(c: &mut Criterion) {
    let device = Device::new(CpuBackend::new());
    for case in cases() {
        let mut group = c.benchmark_group(case.op.name());
        group.throughput(Throughput::Elements(case.flops().max(1.0) as u64));
        if case.flops() > 1e9 {
            group.sample_size(10);
        }
        let mut prepared = case.prepare(&device).expect("inputs fit in memory");
        for variant in device.variants(case.op).iter().filter(|v| v.is_available()) {
            group.bench_function(BenchmarkId::new(variant.name, case.label()), |b| {
                b.iter(|| prepared.launch(Some(variant.name)).expect("the kernel runs"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, cpu_kernels);
criterion_main!(benches);
