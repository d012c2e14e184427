//! From a [`Kernel`] and the [`PtxKernel`] of its variant to a launch: the entry point, the grid
//! that covers the work, the block, and the arguments in the order the op's entry points declare
//! them. Pure data, so it is tested without a GPU: the argument types of every plan are checked
//! against the `.param` list in the PTX text.

use kernelab_tensor::{DeviceBuffer, Error, Gemm, Kernel, Result};

use crate::ptx::PtxModule;
use crate::variants::{Grid, PtxKernel};

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

/// The kernels index with 32-bit integers below 2³¹.
fn index(v: usize, op: &'static str) -> Result<u32> {
    u32::try_from(v).ok().filter(|&v| v < 1 << 31).ok_or_else(|| Error::InvalidArgument {
        op,
        why: format!("{v} elements exceed the CUDA kernels' 31-bit indices; split the work"),
    })
}

/// The launch of `kernel` by `ptx` (a kernel of the same op); `None` when there is no work.
pub fn plan<'a>(kernel: &'a Kernel<'a>, ptx: &PtxKernel) -> Result<Option<Launch<'a>>> {
    let op = kernel.op();
    if ptx.op != op {
        return Err(Error::InvalidArgument {
            op: op.name(),
            why: format!("the CUDA kernel `{}` ({}) is a {} kernel", ptx.variant, ptx.entry, ptx.op),
        });
    }
    if kernel.work() == 0 {
        return Ok(None);
    }
    let args = args(kernel)?;
    let grid = grid(ptx.grid, &kernel.dims(), op.name())?;
    Ok(Some(Launch { module: ptx.module, entry: ptx.entry, grid, block: ptx.block, args }))
}

/// The blocks along x and y that cover `dims` ([`Kernel::dims`]) by `grid`.
fn grid(grid: Grid, dims: &[usize], op: &'static str) -> Result<(u32, u32)> {
    let dim = |i: usize| dims.get(i).copied().unwrap_or(1);
    let capped = |n: usize, per_block: u32| (n.div_ceil(per_block.max(1) as usize).clamp(1, MAX_BLOCKS), 1);
    let (x, y) = match grid {
        Grid::Elements { per_block } => capped(dims.iter().product(), per_block),
        Grid::Rows { per_block } => capped(dim(0), per_block),
        Grid::Columns { per_block } => capped(dim(1), per_block),
        Grid::Tiles { tile: (w, h), rows_along_x } => {
            let (cols, rows) = (dim(1).div_ceil(w.max(1) as usize), dim(0).div_ceil(h.max(1) as usize));
            if rows_along_x { (rows, cols) } else { (cols, rows) }
        }
    };
    if y > 65_535 || x >= 1 << 31 {
        return Err(Error::InvalidArgument {
            op,
            why: format!("{} needs a grid of ({x}, {y}) blocks; CUDA allows 65535 along y", dims_text(dims)),
        });
    }
    Ok((x as u32, y as u32))
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

/// The arguments of `kernel` in the order its op's entry points declare them: the op's calling
/// convention, the same for every variant of the op (the tests check it against the PTX).
fn args<'a>(kernel: &'a Kernel<'a>) -> Result<Vec<Arg<'a>>> {
    use Arg::{Buffer as B, F32, U32};
    let op = kernel.op().name();
    let u = |v: usize| index(v, op).map(U32);
    Ok(match kernel {
        Kernel::Fill { y, value } => vec![B(&**y), u(y.len())?, F32(*value)],
        Kernel::Relu { x, y } | Kernel::Narrow { x, y } | Kernel::Widen { x, y } => vec![B(*x), B(&**y), u(y.len())?],
        Kernel::ReluBackward { x, dy, dx } => vec![B(*x), B(*dy), B(&**dx), u(dx.len())?],
        Kernel::BiasAdd { x, bias, y, cols, .. } | Kernel::BiasRelu { x, bias, y, cols, .. } => {
            vec![B(*x), B(*bias), B(&**y), u(y.len())?, u(*cols)?]
        }
        Kernel::Add { a, b, y } => vec![B(*a), B(*b), B(&**y), u(y.len())?],
        Kernel::Scale { x, alpha, y } => vec![B(*x), B(&**y), u(y.len())?, F32(*alpha)],
        Kernel::ScaleBy { x, s, alpha, y } => vec![B(*x), B(*s), B(&**y), u(y.len())?, F32(*alpha)],
        Kernel::Axpy { alpha, x, y } => vec![B(*x), B(&**y), u(y.len())?, F32(*alpha)],
        Kernel::Adam { param, grad, m, v, step } => vec![
            B(&**param),
            B(*grad),
            B(&**m),
            B(&**v),
            u(param.len())?,
            F32(step.lr / step.bias_correction1()),
            F32(1.0 / step.bias_correction2().sqrt()),
            F32(step.beta1),
            F32(step.beta2),
            F32(step.eps),
        ],
        Kernel::Softmax { x, y, rows, cols } | Kernel::LogSoftmax { x, y, rows, cols } => {
            vec![B(*x), B(&**y), u(*rows)?, u(*cols)?]
        }
        Kernel::SoftmaxBackward { y, dy, dx, rows, cols } | Kernel::LogSoftmaxBackward { y, dy, dx, rows, cols } => {
            vec![B(*y), B(*dy), B(&**dx), u(*rows)?, u(*cols)?]
        }
        Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, rows, cols } => {
            vec![B(*logits), B(*labels), B(&**loss), B(&**grad), u(*rows)?, u(*cols)?]
        }
        Kernel::KlDiv { logits, target, loss, grad, rows, cols, temperature } => {
            vec![B(*logits), B(*target), B(&**loss), B(&**grad), u(*rows)?, u(*cols)?, F32(*temperature)]
        }
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => {
            vec![B(*x), B(&**y), u(*rows)?, u(*cols)?, F32(*alpha), U32(u32::from(*accumulate))]
        }
        Kernel::Matmul { a, b, c, gemm: g } => {
            for len in [a.len(), b.len(), c.len()] {
                index(len, op)?;
            }
            let (sam, sak, sbk, sbn) = matmul_strides(g);
            vec![
                B(*a),
                B(*b),
                B(&**c),
                u(g.m)?,
                u(g.n)?,
                u(g.k)?,
                u(sam)?,
                u(sak)?,
                u(sbk)?,
                u(sbn)?,
                F32(g.alpha),
                F32(g.beta),
            ]
        }
    })
}

/// The strides `(sam, sak, sbk, sbn)` that let one kernel read every transpose form:
/// `op(A)[i, p] = a[i·sam + p·sak]` and `op(B)[p, j] = b[p·sbk + j·sbn]`.
pub fn matmul_strides(g: &Gemm) -> (usize, usize, usize, usize) {
    let (sam, sak) = if g.trans_a { (1, g.m) } else { (g.k, 1) };
    let (sbk, sbn) = if g.trans_b { (1, g.k) } else { (g.n, 1) };
    (sam, sak, sbk, sbn)
}
