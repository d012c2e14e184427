//! Criterion benches of every kernel variant on every available backend (the CPU always, wgpu
//! when an adapter is found). Throughput is counted in floating-point operations as "elements",
//! so criterion's `Melem/s` reads as MFLOP/s (`2·M·N·K` for matmul, see `Case::flops`).
//! `kernelab bench` is the table; this is the statistics-heavy view of the same cases. On a
//! software adapter (lavapipe) the wgpu numbers measure a CPU emulating a GPU.
//!
//! `cargo bench --bench kernels [-- FILTER]`, e.g. `-- wgpu/matmul`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use kernelab::bench::backends;
use kernelab::bench::case::{Case, Knobs};
use kernelab::{BackendKind, Device, Op};

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

fn bench_device(c: &mut Criterion, device: &Device) {
    for case in cases() {
        // A software GPU takes seconds per GFLOP; keep its runs short.
        if device.kind() != BackendKind::Cpu && case.flops() > 1e9 {
            continue;
        }
        let mut group = c.benchmark_group(format!("{}/{}", device.kind(), case.op));
        group.throughput(Throughput::Elements(case.flops().max(1.0) as u64));
        if case.flops() > 1e9 || device.kind() != BackendKind::Cpu {
            group.sample_size(10);
        }
        let mut prepared = case.prepare(device).expect("inputs fit on the device");
        for variant in device.variants(case.op).iter().filter(|v| v.is_available()) {
            group.bench_function(BenchmarkId::new(variant.name, case.label()), |b| {
                b.iter(|| {
                    prepared.launch(Some(variant.name)).expect("the kernel runs");
                    device.synchronize().expect("the device finishes");
                })
            });
        }
        group.finish();
    }
}

fn kernels(c: &mut Criterion) {
    for device in backends::available() {
        bench_device(c, &device);
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
