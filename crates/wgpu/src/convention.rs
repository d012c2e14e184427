//! The calling convention of every op on the WGPU backend: what a WGSL entry point receives, the
//! same for the built-in shaders of `shaders/` and for a kernel loaded from a file.
//!
//! **Bindings.** Everything is in `@group(0)`. `@binding(0)` is a uniform struct of eight 32-bit
//! words, the op's *params* (unused words are 0; a shader may declare fewer, not more). The
//! buffers are `array<f32>` (matmul may also read `A` and `B` as `array<vec4<f32>>`), row-major,
//! each bound whole: its length is the op's length, rounded up to a multiple of four values.
//! Inputs are `var<storage, read>`, outputs `var<storage, read_write>`; an output the op also
//! reads (`y` of axpy, `C` when β ≠ 0, Adam's state) is read_write too. An entry point may leave
//! any binding unused; one it uses must sit where the table below puts it, with that access.
//!
//! **Precision.** A variant of precision `f16→…` gets f16 buffers (`array<f16>`, `enable f16;`,
//! where the adapter offers `shader-f16`), padded like f32 ones to 16 bytes; the labels of
//! softmax_cross_entropy stay f32 class indices. `narrow` writes and `widen` reads its f16 side;
//! the built-in conversions declare that side `array<u32>` (two halves a word, the even index low).
//!
//! | op | bindings (after 0 = params) | params words |
//! |----|-----------------------------|--------------|
//! | matmul | 1 `a` read, 3 `b` read, 2 `c` read_write, 5 `a` as vec4 read, 6 `b` as vec4 read | m, n, k, trans_a, trans_b, alpha (f32), beta (f32) |
//! | fill | 2 `y` | n, cols (1), alpha = the value (f32) |
//! | relu, scale | 1 `x`, 2 `y` | n, cols (1), alpha (f32; scale's factor) |
//! | relu_backward | 1 `x`, 3 `dy`, 2 `dx` | n, cols (1), alpha |
//! | bias_add, bias_relu | 1 `x`, 3 `bias`, 2 `y` | n, cols (the row length), alpha |
//! | add | 1 `a`, 3 `b`, 2 `y` | n, cols (1), alpha |
//! | scale_by | 1 `x`, 3 `s` (one value), 2 `y` | n, cols (1), alpha (f32) |
//! | axpy | 1 `x`, 2 `y` (read_write: `y ← y + α·x`) | n, cols (1), alpha (f32) |
//! | adam | 1 `grad`, 2 `param`, 4 `m`, 5 `v` (the last three read_write) | n, step_size, inv_sqrt_bc2, beta1, beta2, eps (all f32 but n) |
//! | softmax, log_softmax | 1 `x`, 2 `y` | rows, cols, alpha, accumulate |
//! | softmax_backward, log_softmax_backward | 1 `y`, 3 `dy`, 2 `dx` | rows, cols, alpha, accumulate |
//! | softmax_cross_entropy | 1 `logits`, 3 `labels` (class indices as f32), 2 `grad`, 4 `loss` (one per row) | rows, cols, alpha, accumulate |
//! | kl_div | 1 `logits`, 3 `target`, 2 `grad`, 4 `loss` | rows, cols, alpha = temperature (f32), accumulate |
//! | col_sum | 1 `x`, 2 `y` (read_write: read when accumulate) | rows, cols, alpha (f32), accumulate (0/1) |
//!
//! What each op computes is the contract of [`Kernel`] (C ← α·op(A)·op(B) + β·C with β = 0
//! never reading C; a softmax stable for any row maximum; the fused losses' gradient of the mean).
//!
//! **Geometry.** A kernel says how many workgroups cover its output ([`Geometry`], the file's
//! header for a loaded kernel): matmul `tile=W×H` → (⌈n/W⌉, ⌈m/H⌉) workgroups, each writing a
//! W-column × H-row tile of C; above WebGPU's 65,535 per dimension the launch is refused (the
//! geometry cannot cover that output). Elementwise `items=N` → ⌈n/N⌉ workgroups; row-wise
//! `rows=N` → ⌈rows/N⌉ (col_sum: ⌈cols/N⌉, one line per column); both capped at 65,535 along x,
//! so a kernel of those families must grid-stride (`i += num_workgroups.x · N`) to cover any
//! length. The built-in geometry is `items=256` and `rows=1`; their workgroup size is the shader's.

use kernelab_tensor::{DeviceBuffer, Error, Geometry, Kernel, Op, OpFamily, Result};

/// The most workgroups along one dimension WebGPU guarantees.
pub const MAX_GROUPS: usize = 65_535;

/// How an entry point may declare a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<uniform>`: the params at binding 0.
    Uniform,
    /// `var<storage, read>`: an input.
    Read,
    /// `var<storage, read_write>`: an output, or an input the op updates in place.
    ReadWrite,
}

impl Access {
    /// As WGSL spells the declaration.
    pub const fn wgsl(self) -> &'static str {
        match self {
            Access::Uniform => "var<uniform>",
            Access::Read => "var<storage, read>",
            Access::ReadWrite => "var<storage, read_write>",
        }
    }
}

/// One binding of an op's convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub binding: u32,
    /// The [`Kernel`] field it holds.
    pub name: &'static str,
    pub access: Access,
}

const fn read(binding: u32, name: &'static str) -> Slot {
    Slot { binding, name, access: Access::Read }
}

const fn write(binding: u32, name: &'static str) -> Slot {
    Slot { binding, name, access: Access::ReadWrite }
}

const PARAMS: Slot = Slot { binding: 0, name: "params", access: Access::Uniform };

/// `&'static` slots: the params, then the given ones.
macro_rules! bindings {
    ($($slot:expr),*) => {
        const { &[PARAMS, $($slot),*] }
    };
}

/// The bindings of every op, the params first; [`arguments`] hands over the buffers in this order.
pub fn slots(op: Op) -> &'static [Slot] {
    match op {
        Op::Matmul => bindings![read(1, "a"), read(3, "b"), write(2, "c"), read(5, "a as vec4"), read(6, "b as vec4")],
        Op::Fill => bindings![write(2, "y")],
        Op::Relu | Op::Scale | Op::Narrow | Op::Widen => bindings![read(1, "x"), write(2, "y")],
        Op::ReluBackward => bindings![read(1, "x"), read(3, "dy"), write(2, "dx")],
        Op::BiasAdd | Op::BiasRelu => bindings![read(1, "x"), read(3, "bias"), write(2, "y")],
        Op::Add => bindings![read(1, "a"), read(3, "b"), write(2, "y")],
        Op::ScaleBy => bindings![read(1, "x"), read(3, "s"), write(2, "y")],
        Op::Axpy => bindings![read(1, "x"), write(2, "y")],
        Op::Adam => bindings![read(1, "grad"), write(2, "param"), write(4, "m"), write(5, "v")],
        Op::Softmax | Op::LogSoftmax | Op::ColSum => bindings![read(1, "x"), write(2, "y")],
        Op::SoftmaxBackward | Op::LogSoftmaxBackward => bindings![read(1, "y"), read(3, "dy"), write(2, "dx")],
        Op::SoftmaxCrossEntropy => bindings![read(1, "logits"), read(3, "labels"), write(2, "grad"), write(4, "loss")],
        Op::KlDiv => bindings![read(1, "logits"), read(3, "target"), write(2, "grad"), write(4, "loss")],
    }
}

/// The slots of `op` as one line, for messages: `0 params (var<uniform>), 1 x (var<storage, read>), …`.
pub fn describe(op: Op) -> String {
    slots(op).iter().map(|s| format!("{} {} ({})", s.binding, s.name, s.access.wgsl())).collect::<Vec<_>>().join(", ")
}

/// One launch's arguments under its op's convention.
pub struct Arguments<'a> {
    /// The eight words at binding 0.
    pub params: [u32; 8],
    /// The buffers of [`slots`] after the params, in that order.
    pub buffers: Vec<&'a dyn DeviceBuffer>,
    /// What the geometry covers: `[m, n, k]` (matmul), `[lines, len]` (row-wise: rows, or
    /// columns for col_sum), `[n]` (elementwise).
    pub dims: Vec<usize>,
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn u(v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::InvalidArgument { op: "wgpu", why: format!("{v} exceeds the shaders' 32-bit indices") })
}

/// The params, buffers and covered sizes of `kernel`: the one mapping from a [`Kernel`] to what
/// its entry point receives, for built-in and loaded kernels alike.
pub fn arguments<'a>(kernel: &'a Kernel<'a>) -> Result<Arguments<'a>> {
    let ew = |n: usize, cols: usize, alpha: f32, buffers| -> Result<Arguments<'a>> {
        Ok(Arguments { params: [u(n)?, u(cols)?, f(alpha), 0, 0, 0, 0, 0], buffers, dims: vec![n] })
    };
    let rw = |rows: usize, cols: usize, alpha: f32, accumulate: bool, buffers| -> Result<Arguments<'a>> {
        let params = [u(rows)?, u(cols)?, f(alpha), accumulate as u32, 0, 0, 0, 0];
        Ok(Arguments { params, buffers, dims: vec![rows, cols] })
    };
    match kernel {
        Kernel::Matmul { a, b, c, gemm: g } => Ok(Arguments {
            params: [u(g.m)?, u(g.n)?, u(g.k)?, g.trans_a as u32, g.trans_b as u32, f(g.alpha), f(g.beta), 0],
            buffers: vec![*a, *b, &**c, *a, *b],
            dims: vec![g.m, g.n, g.k],
        }),
        Kernel::Fill { y, value } => ew(y.len(), 1, *value, vec![&**y]),
        Kernel::Relu { x, y } | Kernel::Narrow { x, y } | Kernel::Widen { x, y } => ew(y.len(), 1, 0.0, vec![*x, &**y]),
        Kernel::Scale { x, alpha, y } => ew(y.len(), 1, *alpha, vec![*x, &**y]),
        Kernel::ReluBackward { x, dy, dx } => ew(dx.len(), 1, 0.0, vec![*x, *dy, &**dx]),
        Kernel::BiasAdd { x, bias, y, cols, .. } | Kernel::BiasRelu { x, bias, y, cols, .. } => {
            ew(y.len(), *cols, 0.0, vec![*x, *bias, &**y])
        }
        Kernel::Add { a, b, y } => ew(y.len(), 1, 0.0, vec![*a, *b, &**y]),
        Kernel::ScaleBy { x, s, alpha, y } => ew(y.len(), 1, *alpha, vec![*x, *s, &**y]),
        Kernel::Axpy { alpha, x, y } => ew(y.len(), 1, *alpha, vec![*x, &**y]),
        Kernel::Adam { param, grad, m, v, step } => Ok(Arguments {
            params: [
                u(param.len())?,
                f(step.lr / step.bias_correction1()),
                f(1.0 / step.bias_correction2().sqrt()),
                f(step.beta1),
                f(step.beta2),
                f(step.eps),
                0,
                0,
            ],
            buffers: vec![*grad, &**param, &**m, &**v],
            dims: vec![param.len()],
        }),
        Kernel::Softmax { x, y, rows, cols } | Kernel::LogSoftmax { x, y, rows, cols } => {
            rw(*rows, *cols, 0.0, false, vec![*x, &**y])
        }
        Kernel::SoftmaxBackward { y, dy, dx, rows, cols } | Kernel::LogSoftmaxBackward { y, dy, dx, rows, cols } => {
            rw(*rows, *cols, 0.0, false, vec![*y, *dy, &**dx])
        }
        Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, rows, cols } => {
            rw(*rows, *cols, 0.0, false, vec![*logits, *labels, &**grad, &**loss])
        }
        Kernel::KlDiv { logits, target, loss, grad, rows, cols, temperature } => {
            rw(*rows, *cols, *temperature, false, vec![*logits, *target, &**grad, &**loss])
        }
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => {
            let mut args = rw(*rows, *cols, *alpha, *accumulate, vec![*x, &**y])?;
            args.dims = vec![*cols, *rows];
            Ok(args)
        }
    }
}

/// Workgroups along x and y for a launch of `op` over `dims` ([`Arguments::dims`]) with
/// `geometry`: elementwise and row-wise counts capped at [`MAX_GROUPS`] (their kernels
/// grid-stride); a matmul that needs more is refused, naming `variant` and the shape.
pub fn groups(op: Op, geometry: &Geometry, dims: &[usize], variant: &str) -> Result<(u32, u32)> {
    let (x, y) = geometry.groups(op, dims).ok_or_else(|| Error::InvalidArgument {
        op: op.name(),
        why: format!("variant {variant} declares no launch geometry for a {:?} op", op.family()),
    })?;
    if op.family() != OpFamily::Matmul {
        return Ok((x.clamp(1, MAX_GROUPS) as u32, 1));
    }
    if x > MAX_GROUPS || y > MAX_GROUPS {
        let (w, h) = geometry.tile.unwrap_or_default();
        return Err(Error::InvalidArgument {
            op: op.name(),
            why: format!(
                "variant {variant} with tile={w}x{h} cannot cover a {}×{} output: it needs {x}×{y} workgroups and \
                 WebGPU allows {MAX_GROUPS} per dimension; use a larger tile or a smaller shape",
                dims[0], dims[1]
            ),
        });
    }
    Ok((x as u32, y as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_and_rowwise_counts_are_capped_and_matmul_is_refused() {
        let items = Geometry { items: Some(1), ..Geometry::default() };
        assert_eq!(groups(Op::Relu, &items, &[70_000], "r").unwrap(), (65_535, 1));
        assert_eq!(groups(Op::Relu, &items, &[1000], "r").unwrap(), (1000, 1));
        let rows = Geometry { rows: Some(4), ..Geometry::default() };
        assert_eq!(groups(Op::Softmax, &rows, &[9, 3], "s").unwrap(), (3, 1));
        let tile = Geometry { tile: Some((32, 16)), ..Geometry::default() };
        assert_eq!(groups(Op::Matmul, &tile, &[33, 65, 17], "t").unwrap(), (3, 3));
        let err = groups(Op::Matmul, &Geometry { tile: Some((1, 1)), ..tile }, &[1, 70_000, 1], "one").unwrap_err();
        let err = err.to_string();
        assert!(err.contains("one with tile=1x1 cannot cover a 1×70000 output") && err.contains("70000×1"), "{err}");
    }

    #[test]
    fn every_op_has_params_at_zero_and_distinct_bindings() {
        for op in Op::ALL {
            let s = slots(op);
            assert_eq!(s[0], PARAMS, "{op}");
            let mut bindings: Vec<u32> = s.iter().map(|s| s.binding).collect();
            bindings.sort_unstable();
            bindings.dedup();
            assert_eq!(bindings.len(), s.len(), "{op} binds one number twice");
            assert!(s[1..].iter().any(|s| s.access == Access::ReadWrite), "{op} has no output");
        }
    }
}
