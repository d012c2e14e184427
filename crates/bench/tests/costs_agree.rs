//! The benchmark's FLOPs and bytes of a case and the profiler's of the launch it makes are one
//! count ([`Op::cost`]): for every op, with and without an accumulated output, in every matmul
//! layout, the row of `kernelab bench` and the row of `train --profile` say the same.

use kernelab_bench::case::{Case, Knobs};
use kernelab_cpu::CpuBackend;
use kernelab_tensor::{Device, Dtype, Op, OpFamily, Precision};

/// The shapes and knobs each op is counted at: awkward sizes, and every setting that changes what
/// a launch reads.
fn cases(op: Op) -> Vec<(Vec<usize>, Knobs)> {
    let plain = Knobs::default();
    match op.family() {
        OpFamily::Matmul => [(false, false, 0.0), (false, true, 0.0), (true, false, 1.0), (true, true, 0.5)]
            .into_iter()
            .map(|(trans_a, trans_b, beta)| (vec![17, 3, 31], Knobs { trans_a, trans_b, beta, ..plain }))
            .collect(),
        OpFamily::Rowwise => {
            vec![(vec![5, 7], plain), (vec![1, 33], plain), (vec![5, 7], Knobs { accumulate: true, ..plain })]
        }
        OpFamily::Elementwise => vec![(vec![1], plain), (vec![1023], plain)],
    }
}

#[test]
fn the_benchmark_and_the_profiler_count_every_launch_alike() {
    let cpu = Device::new(CpuBackend::new());
    for op in Op::ALL {
        for (dims, knobs) in cases(op) {
            let case = Case::new(op, &dims, knobs, 7).unwrap();
            // The conversions have no f32 form: they run between f32 and a narrow type.
            let narrow = Precision::new(Dtype::Bf16, Dtype::F32);
            let case = if matches!(op, Op::Narrow | Op::Widen) { case.with_precision(narrow) } else { case };
            let mut prepared = case.prepare(&cpu).unwrap();
            cpu.start_profile();
            prepared.launch(None).unwrap();
            let profile = cpu.take_profile().unwrap();
            let [entry] = profile.entries.as_slice() else { panic!("{op}: {:?}", profile.entries) };
            let label = case.label();
            assert_eq!((entry.flops, entry.bytes), (case.flops(), case.bytes()), "{op} {label}");
            assert!(entry.shape.starts_with(&kernelab_bench::table::dims_text(&dims)), "{op} {label}: {}", entry.shape);
        }
    }
    // The counts themselves, for a case of each kind: 2·M·N·K, and A, B and C (read, as β ≠ 0,
    // and written) for matmul; x and y (read, as it accumulates, and written) for col_sum.
    let matmul = Case::new(Op::Matmul, &[17, 3, 31], Knobs { beta: 1.0, ..Knobs::default() }, 1).unwrap();
    assert_eq!(
        (matmul.flops(), matmul.bytes()),
        (2.0 * 17.0 * 3.0 * 31.0, 4.0 * (17.0 * 31.0 + 31.0 * 3.0 + 2.0 * 51.0))
    );
    let col_sum = Case::new(Op::ColSum, &[5, 7], Knobs { accumulate: true, ..Knobs::default() }, 1).unwrap();
    assert_eq!((col_sum.flops(), col_sum.bytes()), (35.0, 4.0 * (35.0 + 7.0 + 7.0)));
}
