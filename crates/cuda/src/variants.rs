//! The CUDA backend's variants as data: every op's kernels in a table ([`MATMUL_LADDER`] for
//! matmul, [`KERNELS`] for the ops with one kernel each), each entry naming the variant, its PTX
//! entry point, its grid and its threads per block. [`table`] turns them into the rows
//! `variants` lists and `launch` looks up with [`kernelab_tensor::resolve`], the cuBLAS baseline
//! after the ladder: an unknown name is an error listing the known ones, never another kernel.
//! Pure data, so it is tested without a GPU (`tests/plans_match_ptx.rs`).
//!
//! To add a built-in variant, in order:
//! 1. Write its entry point with the op's parameters, in the order [`plan`](crate::plan::plan)
//!    passes every kernel of that op: a matmul rung in a file of its own under `kernels/matmul/`
//!    (`10_NAME.ptx`, headed like the others: what it changes over the rung below and why, its
//!    launch shape, its ptxas lines, which `scripts/check_ptx.py` fills in, and its benchmark
//!    command; a row in that folder's README), any other op in its family's file under
//!    `kernels/` (`elementwise.ptx`, `rowwise.ptx`, `adam.ptx`), named in the file's header
//!    comment with what it does and its launch shape (a test checks that the header names it).
//!    Add a new file's module to [`crate::ptx`] and its `ALL`.
//! 2. Add one [`PtxKernel`] for it: a matmul rung to [`MATMUL_LADDER`] (slowest first; `variants`
//!    lists the ladder from the top rung down, the top one the default), a second variant of
//!    another op to [`KERNELS`] under its own name (the first of an op is its default); its
//!    [`Grid`] and block say how the launch covers the work.
//! 3. The PTX interpreter's tests (`crates/ptx-emu/tests/`) run every kernel on awkward shapes
//!    without a GPU (a matmul rung: add it to the rung list of `kernels.rs`);
//!    `scripts/check_ptx.py` assembles every entry point by itself.
//! 4. Nothing else dispatches by name: `CudaBackend::launch`, `kernelab bench`, `kernelab check`
//!    and the conformance suite pick the entry up. Check it with `cargo test -p kernelab-cuda`
//!    (the parameters against the PTX text, no GPU needed), and `kernelab check --backend cuda
//!    --variant NAME` on the emulated device (README, "CUDA") or a GPU.

use kernelab_tensor::{Dtype, Op, Precision, Variant, VariantEntry};

use crate::plan::BLOCK;
use crate::ptx::{
    ADAM, CONVERT, ELEMENTWISE, MATMUL_COALESCED, MATMUL_MMA_BF16, MATMUL_MMA_F16, MATMUL_MMA_TF32, MATMUL_NAIVE,
    MATMUL_REGBLOCK, MATMUL_TILED, MATMUL_VEC4, MATMUL_WARPTILE, PtxModule, ROWWISE,
};

/// How a kernel's grid of blocks covers its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// `per_block` elements per block along x, at most
    /// [`MAX_BLOCKS`](crate::plan::MAX_BLOCKS) blocks (the kernel strides past them).
    Elements { per_block: u32 },
    /// `per_block` rows per block along x, at most `MAX_BLOCKS` blocks (the kernel strides).
    Rows { per_block: u32 },
    /// `per_block` columns per block along x (col_sum), at most `MAX_BLOCKS` blocks (the kernel
    /// strides).
    Columns { per_block: u32 },
    /// One block per tile of `C` of `tile = (columns, rows)`: blocks along x cover the columns of
    /// `C` and along y its rows, or the other way round where `rows_along_x` (the naive rung).
    Tiles { tile: (u32, u32), rows_along_x: bool },
}

/// One built-in CUDA kernel: a variant of `op`, the PTX entry point that runs it, its grid and its
/// threads per block, and one line on what it does differently. Its parameters are the op's
/// calling convention ([`plan`](crate::plan::plan) passes them), the same for every variant of
/// the op.
#[derive(Clone, Copy, Debug)]
pub struct PtxKernel {
    pub op: Op,
    pub variant: &'static str,
    pub module: PtxModule,
    pub entry: &'static str,
    pub grid: Grid,
    pub block: (u32, u32),
    pub summary: &'static str,
}

/// A rung of the matmul ladder, entry point `entry` of `module` (its own file): `tile × tile` of `C`
/// per block, `block` threads.
const fn rung(
    variant: &'static str,
    module: PtxModule,
    entry: &'static str,
    tile: u32,
    block: (u32, u32),
    summary: &'static str,
) -> PtxKernel {
    let grid = Grid::Tiles { tile: (tile, tile), rows_along_x: false };
    PtxKernel { op: Op::Matmul, variant, module, entry, grid, block, summary }
}

/// The matmul ladder, slowest first.
pub const MATMUL_LADDER: [PtxKernel; 6] = [
    PtxKernel {
        // threadIdx.x runs down the columns of C, so blockIdx.x does too.
        grid: Grid::Tiles { tile: (16, 16), rows_along_x: true },
        ..rung(
            "naive",
            MATMUL_NAIVE,
            "matmul_naive",
            16,
            (16, 16),
            "one thread per element, neighbouring threads down a column of C",
        )
    },
    rung(
        "coalesced",
        MATMUL_COALESCED,
        "matmul_coalesced",
        16,
        (16, 16),
        "one thread per element, neighbouring threads along a row of C",
    ),
    rung("tiled", MATMUL_TILED, "matmul_tiled", 16, (16, 16), "16×16 tiles staged in shared memory"),
    rung(
        "regblock",
        MATMUL_REGBLOCK,
        "matmul_regblock",
        64,
        (256, 1),
        "64×64 block tile, 4×4 per thread in registers, scalar global loads",
    ),
    rung(
        "vec4",
        MATMUL_VEC4,
        "matmul_vec4",
        64,
        (256, 1),
        "64×64 block tile, 4×4 per thread, 128-bit global loads where the layout allows",
    ),
    rung(
        "warptile",
        MATMUL_WARPTILE,
        "matmul_warptile",
        128,
        (256, 1),
        "128×128 block tile, 8×8 per thread, double-buffered 8-deep k slices, 128-bit loads",
    ),
];

/// A matmul kernel at a precision of its own: a tensor-core rung or a cuBLAS GemmEx row.
#[derive(Clone, Copy, Debug)]
pub struct AtPrecision<K> {
    pub kernel: K,
    pub precision: Precision,
    /// Why it is listed as unavailable everywhere, if it is.
    pub unavailable: Option<&'static str>,
}

/// `bf16→f32` and `f16→f32`.
pub const BF16: Precision = Precision { storage: Dtype::Bf16, accumulate: Dtype::F32 };
pub const F16: Precision = Precision { storage: Dtype::F16, accumulate: Dtype::F32 };

/// The tensor-core rungs (rungs 7 to 9 of `kernels/matmul/`), each at its own precision: the
/// same parameters as the ladder, strides in elements, A, B and C in the precision's storage type.
pub const MMA_RUNGS: [AtPrecision<PtxKernel>; 3] = [
    AtPrecision {
        kernel: rung(
            "mma_tf32",
            MATMUL_MMA_TF32,
            "matmul_mma_tf32",
            64,
            (128, 1),
            "tensor cores, mma.sync m16n8k8 TF32 on f32 storage, 64×64 block tile, 4 warps of 2×4 mma tiles",
        ),
        precision: Precision::TF32,
        unavailable: None,
    },
    AtPrecision {
        kernel: rung(
            "mma_bf16",
            MATMUL_MMA_BF16,
            "matmul_mma_bf16",
            64,
            (128, 1),
            "tensor cores, mma.sync m16n8k16 on bf16 storage, f32 sums, 64×64 block tile",
        ),
        precision: BF16,
        unavailable: None,
    },
    AtPrecision {
        kernel: rung(
            "mma_f16",
            MATMUL_MMA_F16,
            "matmul_mma_f16",
            64,
            (128, 1),
            "tensor cores, mma.sync m16n8k16 on f16 storage, f32 sums, 64×64 block tile",
        ),
        precision: F16,
        unavailable: None,
    },
];

/// What a `cublasGemmEx` row stores and computes in (every one sums in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmEx {
    /// f32 storage, TF32 products (`CUBLAS_COMPUTE_32F_FAST_TF32`).
    Tf32,
    /// bf16 storage (`CUDA_R_16BF`), `CUBLAS_COMPUTE_32F`.
    Bf16,
    /// f16 storage (`CUDA_R_16F`), `CUBLAS_COMPUTE_32F`.
    F16,
}

impl GemmEx {
    /// The type of A and B as the row's precision names it (TF32 lives in f32 buffers).
    pub fn storage(self) -> Dtype {
        match self {
            GemmEx::Tf32 => Dtype::Tf32,
            GemmEx::Bf16 => Dtype::Bf16,
            GemmEx::F16 => Dtype::F16,
        }
    }
}

/// The cuBLAS rows beside the tensor-core rungs, at the same precisions.
pub const CUBLAS_EX: [AtPrecision<(&str, GemmEx)>; 3] = [
    AtPrecision { kernel: ("cublas_tf32", GemmEx::Tf32), precision: Precision::TF32, unavailable: None },
    AtPrecision { kernel: ("cublas_bf16", GemmEx::Bf16), precision: BF16, unavailable: None },
    AtPrecision { kernel: ("cublas_f16", GemmEx::F16), precision: F16, unavailable: None },
];

/// The variant name of the ops with one PTX kernel each.
pub const PTX: &str = "ptx";

const ONE_KERNEL: &str = "one hand-written PTX entry point, grid-stride over elements or rows";

/// An elementwise kernel: one thread per element, [`BLOCK`] a block.
const fn elementwise(op: Op, entry: &'static str) -> PtxKernel {
    let grid = Grid::Elements { per_block: BLOCK };
    PtxKernel { op, variant: PTX, module: ELEMENTWISE, entry, grid, block: (BLOCK, 1), summary: ONE_KERNEL }
}

/// A row-wise kernel: one block of [`BLOCK`] threads per row.
const fn rowwise(op: Op, entry: &'static str) -> PtxKernel {
    let grid = Grid::Rows { per_block: 1 };
    PtxKernel { op, variant: PTX, module: ROWWISE, entry, grid, block: (BLOCK, 1), summary: ONE_KERNEL }
}

/// The kernel of every op but matmul (one variant each, [`PTX`]), in [`Op::ALL`]'s order.
pub const KERNELS: [PtxKernel; 17] = [
    elementwise(Op::Fill, "fill"),
    elementwise(Op::BiasAdd, "bias_add"),
    elementwise(Op::BiasRelu, "bias_relu"),
    PtxKernel {
        op: Op::ColSum,
        variant: PTX,
        module: ROWWISE,
        entry: "col_sum",
        grid: Grid::Columns { per_block: 32 },
        block: (32, 8),
        summary: ONE_KERNEL,
    },
    elementwise(Op::Relu, "relu"),
    elementwise(Op::ReluBackward, "relu_backward"),
    rowwise(Op::Softmax, "softmax"),
    rowwise(Op::SoftmaxBackward, "softmax_backward"),
    rowwise(Op::LogSoftmax, "log_softmax"),
    rowwise(Op::LogSoftmaxBackward, "log_softmax_backward"),
    rowwise(Op::SoftmaxCrossEntropy, "softmax_cross_entropy"),
    rowwise(Op::KlDiv, "kl_div"),
    elementwise(Op::Add, "add"),
    elementwise(Op::Scale, "scale"),
    elementwise(Op::ScaleBy, "scale_by"),
    elementwise(Op::Axpy, "axpy"),
    PtxKernel { module: ADAM, ..elementwise(Op::Adam, "adam") },
];

/// A conversion kernel of `op` (`narrow` or `widen`) at the precision of its 16-bit side.
const fn conversion(
    op: Op,
    variant: &'static str,
    entry: &'static str,
    precision: Precision,
) -> AtPrecision<PtxKernel> {
    let grid = Grid::Elements { per_block: BLOCK };
    let summary = "one hand-written PTX entry point, grid-stride over elements";
    let kernel = PtxKernel { op, variant, module: CONVERT, entry, grid, block: (BLOCK, 1), summary };
    AtPrecision { kernel, precision, unavailable: None }
}

/// The `narrow` and `widen` kernels (`kernels/convert.ptx`), one per 16-bit type.
pub const CONVERSIONS: [AtPrecision<PtxKernel>; 4] = [
    conversion(Op::Narrow, "ptx_bf16", "narrow_bf16", BF16),
    conversion(Op::Narrow, "ptx_f16", "narrow_f16", F16),
    conversion(Op::Widen, "ptx_bf16", "widen_bf16", BF16),
    conversion(Op::Widen, "ptx_f16", "widen_f16", F16),
];

/// The narrow variants of every op but matmul and the conversions, one per 16-bit type: the op's
/// f32 PTX kernel between conversions ([`CudaKernel::Widened`]).
pub const WIDENED: [AtPrecision<&str>; 2] = [
    AtPrecision { kernel: "ptx_bf16", precision: BF16, unavailable: None },
    AtPrecision { kernel: "ptx_f16", precision: F16, unavailable: None },
];

const WIDENED_SUMMARY: &str = "the f32 PTX kernel between conversions: narrow inputs widened to f32 scratch (`widen`), \
                               outputs rounded back (`narrow`); f32 arithmetic, one conversion launch per narrow \
                               buffer beside the op's own";

/// The name of the cuBLAS matmul variant.
pub const CUBLAS: &str = "cublas";

/// What a CUDA variant runs.
#[derive(Clone, Copy, Debug)]
pub enum CudaKernel {
    /// A PTX entry point, launched by [`plan`](crate::plan::plan).
    Ptx(PtxKernel),
    /// cuBLAS SGEMM, the vendor baseline (matmul).
    Cublas,
    /// `cublasGemmEx` at a precision of a tensor-core rung, its baseline.
    CublasEx(GemmEx),
    /// A narrow launch of an op's f32 PTX kernel: its bf16 or f16 buffers widened into f32
    /// scratch, the kernel run on those, its outputs narrowed back
    /// (`CudaBackend::launch_widened`).
    Widened(PtxKernel),
}

/// One row of an op's table: the variant and what runs it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub variant: Variant,
    pub kernel: CudaKernel,
}

impl VariantEntry for Entry {
    fn variant(&self) -> &Variant {
        &self.variant
    }
}

/// The variants of `op`, the default first: for matmul the f32 ladder from the top rung down,
/// the tensor-core rungs at their precisions, then `cublas` and its GemmEx rows (unavailable for
/// the reason `cublas` gives, where it could not be loaded); for the conversions one kernel per
/// 16-bit type; for every other op its one PTX kernel, then that kernel widened ([`WIDENED`]) at
/// bf16 and at f16. A launch picks the first variant of its buffers' storage by default, so the f32
/// default stays the top f32 rung.
pub fn table(op: Op, cublas: Result<(), &str>) -> Vec<Entry> {
    let ptx = |k: &PtxKernel| Entry { variant: Variant::available(k.variant, k.summary), kernel: CudaKernel::Ptx(*k) };
    let no_cublas = cublas.err().map(str::to_string);
    match op {
        Op::Matmul => {
            let mut table: Vec<Entry> = MATMUL_LADDER.iter().rev().map(ptx).collect();
            table.extend(MMA_RUNGS.iter().map(|r| {
                Entry {
                    variant: Variant::available(r.kernel.variant, r.kernel.summary)
                        .with_precision(r.precision)
                        .unavailable_if(r.unavailable.map(str::to_string)),
                    kernel: CudaKernel::Ptx(r.kernel),
                }
            }));
            table.push(Entry {
                variant: Variant::available(
                    CUBLAS,
                    "cuBLAS SGEMM (FP32, TF32 off), loaded at run time: the vendor baseline",
                )
                .as_baseline()
                .unavailable_if(no_cublas.clone()),
                kernel: CudaKernel::Cublas,
            });
            table.extend(CUBLAS_EX.iter().map(|r| {
                Entry {
                    variant: Variant::available(
                        r.kernel.0,
                        "cublasGemmEx at the precision of the tensor-core rung beside it",
                    )
                    .as_baseline()
                    .with_precision(r.precision)
                    .unavailable_if(r.unavailable.map(str::to_string).or_else(|| no_cublas.clone())),
                    kernel: CudaKernel::CublasEx(r.kernel.1),
                }
            }));
            table
        }
        Op::Narrow | Op::Widen => CONVERSIONS
            .iter()
            .filter(|c| c.kernel.op == op)
            .map(|c| Entry {
                variant: Variant::available(c.kernel.variant, c.kernel.summary).with_precision(c.precision),
                kernel: CudaKernel::Ptx(c.kernel),
            })
            .collect(),
        _ => {
            let kernels = KERNELS.iter().filter(|k| k.op == op);
            let widened = kernels.clone().flat_map(|k| {
                WIDENED.iter().map(|w| Entry {
                    variant: Variant::available(w.kernel, WIDENED_SUMMARY).with_precision(w.precision),
                    kernel: CudaKernel::Widened(*k),
                })
            });
            kernels.map(ptx).chain(widened).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_a_table_the_default_first() {
        for op in Op::ALL {
            let table = table(op, Ok(()));
            let names: Vec<&str> = table.iter().map(|e| e.variant.name).collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{op}: {names:?}");
            match op {
                Op::Matmul => assert_eq!(
                    names,
                    [
                        "warptile",
                        "vec4",
                        "regblock",
                        "tiled",
                        "coalesced",
                        "naive",
                        "mma_tf32",
                        "mma_bf16",
                        "mma_f16",
                        CUBLAS,
                        "cublas_tf32",
                        "cublas_bf16",
                        "cublas_f16"
                    ]
                ),
                Op::Narrow | Op::Widen => assert_eq!(names, ["ptx_bf16", "ptx_f16"], "{op}"),
                _ => assert_eq!(names, [PTX, "ptx_bf16", "ptx_f16"], "{op}"),
            }
            for entry in &table {
                match entry.kernel {
                    CudaKernel::Ptx(k) => assert_eq!((k.op, k.variant), (op, entry.variant.name)),
                    // A narrow variant runs the op's own f32 kernel, and stores its 16-bit type.
                    CudaKernel::Widened(k) => {
                        assert_eq!((k.op, k.variant), (op, PTX));
                        assert!(entry.variant.precision.storage.is_narrow(), "{}", entry.variant.name);
                    }
                    CudaKernel::Cublas | CudaKernel::CublasEx(_) => {}
                }
            }
        }
    }

    /// The `ptx` kernel of every op but matmul and the conversions is the entry point named after
    /// the op (the calling convention a loaded PTX file is held to), in a module that has it; a
    /// conversion's entry points are named after the op and the 16-bit type.
    #[test]
    fn every_op_but_matmul_has_a_ptx_kernel_named_after_it() {
        for c in &CONVERSIONS {
            assert_eq!(c.kernel.entry, format!("{}_{}", c.kernel.op, c.precision.storage));
        }
        for op in Op::ALL.into_iter().filter(|&op| !matches!(op, Op::Matmul | Op::Narrow | Op::Widen)) {
            let ptx: Vec<&PtxKernel> = KERNELS.iter().filter(|k| k.op == op && k.variant == PTX).collect();
            assert!(matches!(ptx.as_slice(), [k] if k.entry == op.name()), "{op}: {ptx:?}");
        }
        let at_precision = MMA_RUNGS.iter().chain(&CONVERSIONS).map(|r| &r.kernel);
        for k in KERNELS.iter().chain(&MATMUL_LADDER).chain(at_precision) {
            assert!(crate::ptx::entries(k.module).contains(&k.entry), "{} in {}", k.entry, k.module.file);
        }
    }

    #[test]
    fn cublas_is_listed_with_the_reason_it_cannot_load() {
        let table = table(Op::Matmul, Err("libcublas not found"));
        let cublas: Vec<&Entry> = table.iter().filter(|e| e.variant.name.starts_with(CUBLAS)).collect();
        assert_eq!(cublas.len(), 4);
        assert!(matches!(cublas[0].kernel, CudaKernel::Cublas) && cublas.iter().all(|e| e.variant.baseline));
        for e in &cublas {
            assert_eq!(e.variant.unavailable.as_deref(), Some("libcublas not found"), "{}", e.variant.name);
        }
        let table = self::table(Op::Matmul, Ok(()));
        assert!(table.iter().all(|e| e.variant.is_available()), "TF32 has its precision and budget now");
        let tf32: Vec<&str> =
            table.iter().filter(|e| e.variant.precision == Precision::TF32).map(|e| e.variant.name).collect();
        assert_eq!(tf32, ["mma_tf32", "cublas_tf32"]);
    }

    /// A launch picks the first variant of its storage: the top f32 rung for f32 buffers, the
    /// tensor-core rung for bf16 and f16 ones; a named variant of another storage is refused.
    #[test]
    fn each_storage_defaults_to_its_own_rung() {
        use kernelab_tensor::{BackendKind, Error, resolve_for};
        let table = table(Op::Matmul, Ok(()));
        let pick =
            |dtype| resolve_for(BackendKind::Cuda, Op::Matmul, &table, None, Some(dtype)).map(|e| e.variant.name);
        assert_eq!(
            [pick(Dtype::F32).unwrap(), pick(Dtype::Bf16).unwrap(), pick(Dtype::F16).unwrap()],
            ["warptile", "mma_bf16", "mma_f16"]
        );
        let wrong = resolve_for(BackendKind::Cuda, Op::Matmul, &table, Some("mma_bf16"), Some(Dtype::F16));
        assert!(matches!(wrong, Err(Error::DtypeMismatch { .. })), "{wrong:?}");
        // TF32 runs on f32 buffers when named, and is never the f32 default.
        let named = resolve_for(BackendKind::Cuda, Op::Matmul, &table, Some("mma_tf32"), Some(Dtype::F32));
        assert_eq!(named.map(|e| e.variant.name).ok(), Some("mma_tf32"));
        let wrong = resolve_for(BackendKind::Cuda, Op::Matmul, &table, Some("mma_tf32"), Some(Dtype::Bf16));
        assert!(matches!(wrong, Err(Error::DtypeMismatch { .. })), "{wrong:?}");
        for r in &MMA_RUNGS {
            let e = table.iter().find(|e| e.variant.name == r.kernel.variant).unwrap();
            assert_eq!(e.variant.precision, r.precision);
        }
        for r in &CUBLAS_EX {
            assert_eq!(r.precision.storage, r.kernel.1.storage(), "{}", r.kernel.0);
        }
    }
}
