//! From a [`Kernel`] to a launch: which PTX entry point, which grid and block, and the arguments in
//! the order the entry point declares them. Pure data, so it is tested without a GPU: the argument
//! types of every plan are checked against the `.param` list in the PTX text.

use kernelab_tensor::{DeviceBuffer, Error, Gemm, Kernel, Result};

use crate::ptx::{ADAM, ELEMENTWISE, MATMUL, PtxModule, ROWWISE};

/// Threads per block of the elementwise and row-wise kernels.
pub const BLOCK: u32 = 256;

/// The most blocks an elementwise or row-wise launch uses; the kernels stride past it.
pub const MAX_BLOCKS: usize = 1 << 20;

/// One kernel argument.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// A device buffer, passed as its address (`.u64`).
    Buffer(&'a dyn DeviceBuffer),
    U32(u32),
    F32(f32),
}

/// One launch, ready for `cuLaunchKernel`.
#[derive(Debug)]
pub struct Launch<'a> {
    pub module: PtxModule,
    pub entry: &'static str,
    pub grid: (u32, u32),
    pub block: (u32, u32),
    pub args: Vec<Arg<'a>>,
}

/// One rung of the matmul ladder: its variant name, PTX entry point, block tile (the C elements
/// one block covers along each side), block shape, and one line on what it does differently.
pub struct Rung {
    pub variant: &'static str,
    pub entry: &'static str,
    pub tile: u32,
    pub block: (u32, u32),
    pub summary: &'static str,
}

/// The matmul ladder, slowest first.
pub const MATMUL_LADDER: [Rung; 6] = [
    Rung {
        variant: "naive",
        entry: "matmul_naive",
        tile: 16,
        block: (16, 16),
        summary: "one thread per element, neighbouring threads down a column of C",
    },
    Rung {
        variant: "coalesced",
        entry: "matmul_coalesced",
        tile: 16,
        block: (16, 16),
        summary: "one thread per element, neighbouring threads along a row of C",
    },
    Rung {
        variant: "tiled",
        entry: "matmul_tiled",
        tile: 16,
        block: (16, 16),
        summary: "16×16 tiles staged in shared memory",
    },
    Rung {
        variant: "regblock",
        entry: "matmul_regblock",
        tile: 64,
        block: (256, 1),
        summary: "64×64 block tile, 4×4 per thread in registers, scalar global loads",
    },
    Rung {
        variant: "vec4",
        entry: "matmul_vec4",
        tile: 64,
        block: (256, 1),
        summary: "64×64 block tile, 4×4 per thread, 128-bit global loads where the layout allows",
    },
    Rung {
        variant: "warptile",
        entry: "matmul_warptile",
        tile: 128,
        block: (256, 1),
        summary: "128×128 block tile, 8×8 per thread, double-buffered 8-deep k slices, 128-bit loads",
    },
];

/// The kernels index with 32-bit integers below 2³¹.
fn index(v: usize, op: &'static str) -> Result<u32> {
    u32::try_from(v).ok().filter(|&v| v < 1 << 31).ok_or_else(|| Error::InvalidArgument {
        op,
        why: format!("{v} elements exceed the CUDA kernels' 31-bit indices; split the work"),
    })
}

/// Blocks for `n` elements (or rows) at one per block of work, capped (the kernels stride).
fn blocks(n: usize, per_block: usize) -> (u32, u32) {
    (n.div_ceil(per_block).clamp(1, MAX_BLOCKS) as u32, 1)
}

/// The launch for `kernel`; `variant` picks the matmul rung (the other ops have one variant,
/// `ptx`). `None` when there is no work.
pub fn plan<'a>(kernel: &'a Kernel<'a>, variant: &str) -> Result<Option<Launch<'a>>> {
    use Arg::{Buffer as B, F32, U32};
    if kernel.work() == 0 {
        return Ok(None);
    }
    let op = kernel.op().name();
    let elementwise = |entry, n: usize, args: Vec<Arg<'a>>| Launch {
        module: ELEMENTWISE,
        entry,
        grid: blocks(n, BLOCK as usize),
        block: (BLOCK, 1),
        args,
    };
    let rowwise = |entry, rows: usize, args: Vec<Arg<'a>>| Launch {
        module: ROWWISE,
        entry,
        grid: blocks(rows, 1),
        block: (BLOCK, 1),
        args,
    };
    let launch = match kernel {
        Kernel::Fill { y, value } => {
            let n = index(y.len(), op)?;
            elementwise("fill", y.len(), vec![B(&**y), U32(n), F32(*value)])
        }
        Kernel::Relu { x, y } => elementwise("relu", y.len(), vec![B(*x), B(&**y), U32(index(y.len(), op)?)]),
        Kernel::ReluBackward { x, dy, dx } => {
            elementwise("relu_backward", dx.len(), vec![B(*x), B(*dy), B(&**dx), U32(index(dx.len(), op)?)])
        }
        Kernel::BiasAdd { x, bias, y, cols, .. } => elementwise(
            "bias_add",
            y.len(),
            vec![B(*x), B(*bias), B(&**y), U32(index(y.len(), op)?), U32(index(*cols, op)?)],
        ),
        Kernel::BiasRelu { x, bias, y, cols, .. } => elementwise(
            "bias_relu",
            y.len(),
            vec![B(*x), B(*bias), B(&**y), U32(index(y.len(), op)?), U32(index(*cols, op)?)],
        ),
        Kernel::Add { a, b, y } => elementwise("add", y.len(), vec![B(*a), B(*b), B(&**y), U32(index(y.len(), op)?)]),
        Kernel::Scale { x, alpha, y } => {
            elementwise("scale", y.len(), vec![B(*x), B(&**y), U32(index(y.len(), op)?), F32(*alpha)])
        }
        Kernel::ScaleBy { x, s, alpha, y } => {
            elementwise("scale_by", y.len(), vec![B(*x), B(*s), B(&**y), U32(index(y.len(), op)?), F32(*alpha)])
        }
        Kernel::Axpy { alpha, x, y } => {
            elementwise("axpy", y.len(), vec![B(*x), B(&**y), U32(index(y.len(), op)?), F32(*alpha)])
        }
        Kernel::Adam { param, grad, m, v, step } => Launch {
            module: ADAM,
            entry: "adam",
            grid: blocks(param.len(), BLOCK as usize),
            block: (BLOCK, 1),
            args: vec![
                B(&**param),
                B(*grad),
                B(&**m),
                B(&**v),
                U32(index(param.len(), op)?),
                F32(step.lr / step.bias_correction1()),
                F32(1.0 / step.bias_correction2().sqrt()),
                F32(step.beta1),
                F32(step.beta2),
                F32(step.eps),
            ],
        },
        Kernel::Softmax { x, y, rows, cols } => {
            rowwise("softmax", *rows, vec![B(*x), B(&**y), U32(index(*rows, op)?), U32(index(*cols, op)?)])
        }
        Kernel::LogSoftmax { x, y, rows, cols } => {
            rowwise("log_softmax", *rows, vec![B(*x), B(&**y), U32(index(*rows, op)?), U32(index(*cols, op)?)])
        }
        Kernel::SoftmaxBackward { y, dy, dx, rows, cols } => rowwise(
            "softmax_backward",
            *rows,
            vec![B(*y), B(*dy), B(&**dx), U32(index(*rows, op)?), U32(index(*cols, op)?)],
        ),
        Kernel::LogSoftmaxBackward { y, dy, dx, rows, cols } => rowwise(
            "log_softmax_backward",
            *rows,
            vec![B(*y), B(*dy), B(&**dx), U32(index(*rows, op)?), U32(index(*cols, op)?)],
        ),
        Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, rows, cols } => rowwise(
            "softmax_cross_entropy",
            *rows,
            vec![B(*logits), B(*labels), B(&**loss), B(&**grad), U32(index(*rows, op)?), U32(index(*cols, op)?)],
        ),
        Kernel::KlDiv { logits, target, loss, grad, rows, cols, temperature } => rowwise(
            "kl_div",
            *rows,
            vec![
                B(*logits),
                B(*target),
                B(&**loss),
                B(&**grad),
                U32(index(*rows, op)?),
                U32(index(*cols, op)?),
                F32(*temperature),
            ],
        ),
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => Launch {
            module: ROWWISE,
            entry: "col_sum",
            grid: blocks(*cols, 32),
            block: (32, 8),
            args: vec![
                B(*x),
                B(&**y),
                U32(index(*rows, op)?),
                U32(index(*cols, op)?),
                F32(*alpha),
                U32(*accumulate as u32),
            ],
        },
        Kernel::Matmul { a, b, c, gemm } => return matmul(*a, *b, &**c, gemm, variant),
    };
    Ok(Some(launch))
}

/// The strides `(sam, sak, sbk, sbn)` that let one kernel read every transpose form:
/// `op(A)[i, p] = a[i·sam + p·sak]` and `op(B)[p, j] = b[p·sbk + j·sbn]`.
pub fn matmul_strides(g: &Gemm) -> (usize, usize, usize, usize) {
    let (sam, sak) = if g.trans_a { (1, g.m) } else { (g.k, 1) };
    let (sbk, sbn) = if g.trans_b { (1, g.k) } else { (g.n, 1) };
    (sam, sak, sbk, sbn)
}

fn matmul<'a>(
    a: &'a dyn DeviceBuffer,
    b: &'a dyn DeviceBuffer,
    c: &'a dyn DeviceBuffer,
    g: &Gemm,
    variant: &str,
) -> Result<Option<Launch<'a>>> {
    let rung = MATMUL_LADDER.iter().find(|r| r.variant == variant).ok_or_else(|| Error::UnknownVariant {
        backend: "cuda".into(),
        op: "matmul",
        name: variant.into(),
        known: MATMUL_LADDER.map(|r| r.variant).join(", "),
    })?;
    let (entry, tile, block) = (rung.entry, rung.tile, rung.block);
    for len in [a.len(), b.len(), c.len()] {
        index(len, "matmul")?;
    }
    let (rows, cols) = (g.m.div_ceil(tile as usize), g.n.div_ceil(tile as usize));
    // The naive rung runs threadIdx.x down the columns of C, so its grid is (rows, cols).
    let grid = if entry == "matmul_naive" { (rows, cols) } else { (cols, rows) };
    if grid.1 > 65_535 || grid.0 >= 1 << 31 {
        return Err(Error::InvalidArgument {
            op: "matmul",
            why: format!("{}×{} needs a grid of {grid:?} blocks; CUDA allows 65535 along y", g.m, g.n),
        });
    }
    let (sam, sak, sbk, sbn) = matmul_strides(g);
    let u = |v: usize| Arg::U32(v as u32);
    Ok(Some(Launch {
        module: MATMUL,
        entry,
        grid: (grid.0 as u32, grid.1 as u32),
        block,
        args: vec![
            Arg::Buffer(a),
            Arg::Buffer(b),
            Arg::Buffer(c),
            u(g.m),
            u(g.n),
            u(g.k),
            u(sam),
            u(sak),
            u(sbk),
            u(sbn),
            Arg::F32(g.alpha),
            Arg::F32(g.beta),
        ],
    }))
}
