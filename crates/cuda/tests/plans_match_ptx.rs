//! Checks that need no GPU: every launch plan names an entry point that exists in its PTX module
//! and passes arguments of exactly the types, in exactly the order, that the entry declares.
//! A mismatch here would be a wrong value in a kernel parameter on the GPU, silently.

use kernelab_cuda::plan::{self, Arg};
use kernelab_cuda::ptx::{self, ParamType};
use kernelab_cuda::variants::{self, CONVERSIONS, CudaKernel, MATMUL_LADDER, MMA_RUNGS, PtxKernel};
use kernelab_tensor::{AdamStep, BackendKind, DeviceBuffer, Error, Gemm, Kernel, Op, resolve};

/// A stand-in buffer: plans only read lengths.
#[derive(Debug)]
struct Fake(usize);

impl DeviceBuffer for Fake {
    fn len(&self) -> usize {
        self.0
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

/// The PTX kernel that `launch` runs for `variant` (the default for `None`) of `op`.
fn ptx_kernel(op: Op, variant: Option<&str>) -> PtxKernel {
    let table = variants::table(op, Ok(()));
    match resolve(BackendKind::Cuda, op, &table, variant).unwrap().kernel {
        CudaKernel::Ptx(k) | CudaKernel::Widened(k) => k,
        CudaKernel::Cublas | CudaKernel::CublasEx(_) => panic!("{op} {variant:?} is cuBLAS"),
    }
}

fn assert_matches(kernel: &Kernel<'_>, variant: Option<&str>) {
    let launch = plan::plan(kernel, &ptx_kernel(kernel.op(), variant)).unwrap().expect("work to do");
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
        assert_matches(&kernel, None);
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
    // The conversions have no f32 variant: each 16-bit one is planned by itself.
    for c in &CONVERSIONS {
        let kernel = match c.kernel.op {
            Op::Narrow => Kernel::Narrow { x: &x, y },
            _ => Kernel::Widen { x: &x, y },
        };
        let launch = plan::plan(&kernel, &c.kernel).unwrap().expect("work to do");
        assert_eq!(Some(types(&launch.args)), ptx::entry_params(launch.module, launch.entry), "{}", launch.entry);
        ops.push(c.kernel.op);
    }
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
            assert_matches(&Kernel::Matmul { a: &a, b: &b, c, gemm }, Some(variant));
        }
    }
}

#[test]
fn every_mma_rung_matches_its_entry_point_with_a_64_square_tile_per_block() {
    let (m, n, k) = (130, 65, 17);
    let (a, b, c) = (Fake(m * k), Fake(k * n), &mut Fake(m * n));
    for rung in MMA_RUNGS.map(|r| r.kernel) {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let kernel = Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(m, n, k).trans(ta, tb) };
            let launch = plan::plan(&kernel, &rung).unwrap().expect("work to do");
            let declared = ptx::entry_params(launch.module, launch.entry).expect("the entry point");
            assert_eq!(types(&launch.args), declared, "{}", launch.entry);
            assert_eq!((launch.grid, launch.block), ((2, 3), (128, 1)), "{}", launch.entry);
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
    let (relu, warptile) = (ptx_kernel(Op::Relu, None), ptx_kernel(Op::Matmul, Some("warptile")));
    let (x, y) = (Fake(0), &mut Fake(0));
    assert!(plan::plan(&Kernel::Relu { x: &x, y }, &relu).unwrap().is_none());
    let (a, b, c) = (Fake(0), Fake(0), &mut Fake(0));
    let empty = Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(0, 0, 0) };
    assert!(plan::plan(&empty, &warptile).unwrap().is_none());
    let (big, out) = (Fake(1 << 31), &mut Fake(1 << 31));
    assert!(plan::plan(&Kernel::Relu { x: &big, y: out }, &relu).is_err());
    // 1,100,000 rows of C in 16-row tiles need 68,750 blocks along y.
    let (a, b, c) = (Fake(1_100_000), Fake(16), &mut Fake(1_100_000 * 16));
    let tall = Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(1_100_000, 16, 1) };
    let err = plan::plan(&tall, &ptx_kernel(Op::Matmul, Some("tiled"))).unwrap_err().to_string();
    assert!(err.contains("(1, 68750)") && err.contains("65535"), "{err}");
    // A kernel of another op is refused, not launched with this op's arguments.
    let (x, y) = (Fake(4), &mut Fake(4));
    let err = plan::plan(&Kernel::Relu { x: &x, y }, &warptile).unwrap_err().to_string();
    assert!(err.contains("is a matmul kernel"), "{err}");
}

#[test]
fn grids_cover_the_work_as_their_kernels_expect() {
    let (m, n, k) = (33, 70, 5);
    let (a, b, c) = (Fake(m * k), Fake(k * n), &mut Fake(m * n));
    let kernel = Kernel::Matmul { a: &a, b: &b, c, gemm: Gemm::new(m, n, k) };
    let grid = |variant| plan::plan(&kernel, &ptx_kernel(Op::Matmul, Some(variant))).unwrap().unwrap().grid;
    // 16×16 tiles: 5 along the 70 columns, 3 along the 33 rows; naive runs x down the rows.
    assert_eq!((grid("tiled"), grid("naive"), grid("regblock"), grid("warptile")), ((5, 3), (3, 5), (2, 1), (1, 1)));
    let (x, y) = (Fake(257 * 3), &mut Fake(257 * 3));
    let softmax = Kernel::Softmax { x: &x, y, rows: 257, cols: 3 };
    assert_eq!(plan::plan(&softmax, &ptx_kernel(Op::Softmax, None)).unwrap().unwrap().grid, (257, 1));
    let (x, y) = (Fake(257 * 3), &mut Fake(257 * 3));
    assert_eq!(plan::plan(&Kernel::Relu { x: &x, y }, &ptx_kernel(Op::Relu, None)).unwrap().unwrap().grid, (4, 1));
    let (x, y) = (Fake(3 * 65), &mut Fake(65));
    let col_sum = Kernel::ColSum { x: &x, y, rows: 3, cols: 65, alpha: 1.0, accumulate: false };
    assert_eq!(plan::plan(&col_sum, &ptx_kernel(Op::ColSum, None)).unwrap().unwrap().grid, (3, 1));
    let (x, y) = (Fake(1 << 30), &mut Fake(1 << 30));
    let capped = plan::plan(&Kernel::Relu { x: &x, y }, &ptx_kernel(Op::Relu, None)).unwrap().unwrap().grid;
    assert_eq!(capped, (plan::MAX_BLOCKS as u32, 1), "the elementwise kernels stride past the cap");
}

#[test]
fn an_unknown_name_is_an_error_listing_the_ladder() {
    let table = variants::table(Op::Matmul, Ok(()));
    let err = resolve(BackendKind::Cuda, Op::Matmul, &table, Some("strassen")).unwrap_err();
    assert!(matches!(err, Error::UnknownVariant { .. }), "{err:?}");
    assert!(err.to_string().contains("warptile, vec4, regblock, tiled, coalesced, naive, mma_tf32"), "{err}");
    let table = variants::table(Op::Softmax, Ok(()));
    let err = resolve(BackendKind::Cuda, Op::Softmax, &table, Some("warptile")).unwrap_err().to_string();
    assert!(err.contains("`warptile`") && err.contains("it has: ptx"), "{err}");
}

/// The backend caches modules and functions by the identity of a module's text: a second text
/// under the same file name (a loaded file called `matmul/3_tiled.ptx`, say) is another module.
#[test]
fn module_ids_tell_texts_apart_whatever_their_names() {
    let text: &'static str = Box::leak(ptx::MATMUL_TILED.source.to_string().into_boxed_str());
    let same_name = ptx::PtxModule { file: ptx::MATMUL_TILED.file, source: text };
    assert_ne!(same_name.id(), ptx::MATMUL_TILED.id());
    assert_eq!(same_name.id(), ptx::PtxModule { file: "elsewhere.ptx", ..same_name }.id());
}
