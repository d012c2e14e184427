//! Checks that need no GPU: every launch plan names an entry point that exists in its PTX module
//! and passes arguments of exactly the types, in exactly the order, that the entry declares.
//! A mismatch here would be a wrong value in a kernel parameter on the GPU, silently.

use std::any::Any;

use kernelab_cuda::plan::{self, Arg, MATMUL_LADDER};
use kernelab_cuda::ptx::{self, ParamType};
use kernelab_tensor::{AdamStep, DeviceBuffer, Gemm, Kernel, Op};

/// A stand-in buffer: plans only read lengths.
#[derive(Debug)]
struct Fake(usize);

impl DeviceBuffer for Fake {
    fn len(&self) -> usize {
        self.0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn types(args: &[Arg<'_>]) -> Vec<ParamType> {
    args.iter()
        .map(|a| match a {
            Arg::Buffer(_) => ParamType::U64,
            Arg::U32(_) => ParamType::U32,
            Arg::F32(_) => ParamType::F32,
        })
        .collect()
}

fn assert_matches(kernel: &Kernel<'_>, variant: &str) {
    let launch = plan::plan(kernel, variant).unwrap().expect("work to do");
    let declared = ptx::entry_params(launch.module, launch.entry)
        .unwrap_or_else(|| panic!("kernels/{} has no entry {}", launch.module.file, launch.entry));
    assert_eq!(types(&launch.args), declared, "{} in kernels/{}", launch.entry, launch.module.file);
    assert!(launch.grid.0 >= 1 && launch.grid.1 >= 1 && launch.block.0 * launch.block.1 <= 1024);
}

#[test]
fn every_plan_matches_its_entry_point() {
    let (rows, cols) = (3, 5);
    let n = rows * cols;
    let (x, z, s, bias, labels) = (Fake(n), Fake(n), Fake(1), Fake(cols), Fake(rows));
    let (y, loss, m, v) = (&mut Fake(n), &mut Fake(rows), &mut Fake(n), &mut Fake(n));
    let step = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    let mut ops = Vec::new();
    let mut check = |kernel: Kernel<'_>| {
        ops.push(kernel.op());
        assert_matches(&kernel, "ptx");
    };
    check(Kernel::Fill { y, value: 1.0 });
    check(Kernel::Relu { x: &x, y });
    check(Kernel::ReluBackward { x: &x, dy: &z, dx: y });
    check(Kernel::BiasAdd { x: &x, bias: &bias, y, rows, cols });
    check(Kernel::BiasRelu { x: &x, bias: &bias, y, rows, cols });
    check(Kernel::ColSum { x: &x, y: loss, rows: cols, cols: rows, alpha: 0.5, accumulate: true });
    check(Kernel::Softmax { x: &x, y, rows, cols });
    check(Kernel::LogSoftmax { x: &x, y, rows, cols });
    check(Kernel::SoftmaxBackward { y: &x, dy: &z, dx: y, rows, cols });
    check(Kernel::LogSoftmaxBackward { y: &x, dy: &z, dx: y, rows, cols });
    check(Kernel::SoftmaxCrossEntropy { logits: &x, labels: &labels, loss, grad: y, rows, cols });
    check(Kernel::KlDiv { logits: &x, target: &z, loss, grad: y, rows, cols, temperature: 2.0 });
    check(Kernel::Add { a: &x, b: &z, y });
    check(Kernel::Scale { x: &x, alpha: 2.0, y });
    check(Kernel::ScaleBy { x: &x, s: &s, alpha: 2.0, y });
    check(Kernel::Axpy { alpha: 2.0, x: &x, y });
    check(Kernel::Adam { param: y, grad: &x, m, v, step });
    for op in Op::ALL.into_iter().filter(|&op| op != Op::Matmul) {
        assert!(ops.contains(&op), "{op:?} has no plan check");
    }
}

#[test]
fn every_matmul_rung_matches_its_entry_point_in_every_transpose_form() {
    let (m, n, k) = (7, 5, 3);
    let (a, b, c) = (Fake(m * k), Fake(k * n), &mut Fake(m * n));
    for variant in MATMUL_LADDER.map(|r| r.variant) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let gemm = Gemm::new(m, n, k).trans(ta, tb).scaled(0.5, 1.0);
            assert_matches(&Kernel::Matmul { a: &a, b: &b, c, gemm }, variant);
        }
    }
}

#[test]
fn matmul_strides_read_every_transpose_form() {
    // op(A)[i, p] = a[i*sam + p*sak]: A stored m x k, or k x m when transposed.
    let g = Gemm::new(4, 6, 5);
    assert_eq!(plan::matmul_strides(&g), (5, 1, 6, 1));
    assert_eq!(plan::matmul_strides(&g.trans(true, false)), (1, 4, 6, 1));
    assert_eq!(plan::matmul_strides(&g.trans(false, true)), (5, 1, 1, 5));
}

#[test]
fn every_entry_point_is_documented_and_takes_passable_parameters() {
    for module in ptx::ALL {
        let entries = ptx::entries(module);
        assert!(!entries.is_empty(), "kernels/{} has no entry points", module.file);
        for entry in entries {
            assert!(
                ptx::entry_params(module, entry).is_some(),
                "kernels/{}: {entry} has a parameter type the plans cannot pass",
                module.file
            );
            assert!(
                module.source.starts_with("//") && module.source.lines().take(40).any(|l| l.contains(entry)),
                "kernels/{}: the header comment does not name {entry}",
                module.file
            );
        }
    }
}

#[test]
fn empty_work_launches_nothing_and_oversized_work_is_refused() {
    let (x, y) = (Fake(0), &mut Fake(0));
    assert!(plan::plan(&Kernel::Relu { x: &x, y }, "ptx").unwrap().is_none());
    let (a, b, c) = (Fake(0), Fake(0), &mut Fake(0));
    assert!(plan::plan(&Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(0, 0, 0) }, "warptile").unwrap().is_none());
    let (big, out) = (Fake(1 << 31), &mut Fake(1 << 31));
    assert!(plan::plan(&Kernel::Relu { x: &big, y: out }, "ptx").is_err());
    let (a, b, c) = (Fake(4), Fake(4), &mut Fake(4));
    let kernel = Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(2, 2, 2) };
    let unknown = plan::plan(&kernel, "strassen").unwrap_err();
    assert!(unknown.to_string().contains("warptile"), "{unknown}");
}
