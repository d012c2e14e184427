//! Per-launch attribution of a device's work, for `kernelab train --profile`: every kernel launch
//! while profiling is on is timed (by the device's own clock where it has one, else by the wall
//! clock around a launch, which on the CPU runs to completion) and added to the entry of its op,
//! variant and shape, with the flops and the least bytes it moved.

use crate::{Kernel, Op};

/// A launch's shape as a person reads it, its floating-point operations and its least traffic
/// (each input read once, each output written once, accumulated outputs read as well).
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    pub shape: String,
    pub flops: f64,
    pub bytes: f64,
}

impl Kernel<'_> {
    /// See [`Cost`]; the flop counts are those of the benchmark (`2·M·N·K` for matmul, an `exp`
    /// counts one).
    pub fn cost(&self) -> Cost {
        let rc = |rows: usize, cols: usize| format!("{rows}x{cols}");
        let n = |len: usize| len.to_string();
        // (shape, flops, values read, values written)
        let (shape, flops, read, written) = match self {
            Kernel::Fill { y, .. } => (n(y.len()), 0.0, 0, y.len()),
            Kernel::Matmul { c, gemm: g, .. } => {
                let layout = match (g.trans_a, g.trans_b) {
                    (false, false) => "",
                    (false, true) => ":NT",
                    (true, false) => ":TN",
                    (true, true) => ":TT",
                };
                let reread = if g.beta == 0.0 { 0 } else { c.len() };
                (format!("{}x{}x{}{layout}", g.m, g.n, g.k), g.flops(), g.m * g.k + g.k * g.n + reread, c.len())
            }
            Kernel::BiasAdd { rows, cols, .. } => {
                (rc(*rows, *cols), (rows * cols) as f64, rows * cols + cols, rows * cols)
            }
            Kernel::BiasRelu { rows, cols, .. } => {
                (rc(*rows, *cols), 2.0 * (rows * cols) as f64, rows * cols + cols, rows * cols)
            }
            Kernel::ColSum { rows, cols, accumulate, .. } => {
                (rc(*rows, *cols), (rows * cols) as f64, rows * cols + if *accumulate { *cols } else { 0 }, *cols)
            }
            Kernel::Relu { x, .. } => (n(x.len()), x.len() as f64, x.len(), x.len()),
            Kernel::ReluBackward { x, .. } => (n(x.len()), x.len() as f64, 2 * x.len(), x.len()),
            Kernel::Softmax { rows, cols, .. } | Kernel::LogSoftmax { rows, cols, .. } => {
                (rc(*rows, *cols), 4.0 * (rows * cols) as f64, rows * cols, rows * cols)
            }
            Kernel::SoftmaxBackward { rows, cols, .. } | Kernel::LogSoftmaxBackward { rows, cols, .. } => {
                (rc(*rows, *cols), 4.0 * (rows * cols) as f64, 2 * rows * cols, rows * cols)
            }
            Kernel::SoftmaxCrossEntropy { rows, cols, .. } => {
                (rc(*rows, *cols), 5.0 * (rows * cols) as f64, rows * cols + rows, rows * cols + rows)
            }
            Kernel::KlDiv { rows, cols, .. } => {
                (rc(*rows, *cols), 8.0 * (rows * cols) as f64, 2 * rows * cols, rows * cols + rows)
            }
            Kernel::Add { a, .. } => (n(a.len()), a.len() as f64, 2 * a.len(), a.len()),
            Kernel::Scale { x, .. } => (n(x.len()), x.len() as f64, x.len(), x.len()),
            Kernel::ScaleBy { x, .. } => (n(x.len()), x.len() as f64, x.len() + 1, x.len()),
            Kernel::Axpy { x, .. } => (n(x.len()), 2.0 * x.len() as f64, 2 * x.len(), x.len()),
            Kernel::Adam { param, .. } => (n(param.len()), 14.0 * param.len() as f64, 4 * param.len(), 3 * param.len()),
        };
        Cost { shape, flops, bytes: 4.0 * (read + written) as f64 }
    }
}

/// The launches of one op, variant and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileEntry {
    pub op: Op,
    pub variant: String,
    pub shape: String,
    pub launches: u64,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
}

/// Everything a device launched while profiling, by op, variant and shape, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub entries: Vec<ProfileEntry>,
    /// Seconds the profiler spent on its own bookkeeping around the timed launches (the cost
    /// and shape of each, finding its row): time that profiling adds to a step.
    pub bookkeeping_seconds: f64,
}

impl Profile {
    /// Adds one launch.
    pub fn record(&mut self, op: Op, variant: &str, cost: Cost, seconds: f64) {
        let found = self.entries.iter_mut().find(|e| e.op == op && e.variant == variant && e.shape == cost.shape);
        let entry = match found {
            Some(e) => e,
            None => {
                self.entries.push(ProfileEntry {
                    op,
                    variant: variant.to_string(),
                    shape: cost.shape.clone(),
                    launches: 0,
                    seconds: 0.0,
                    flops: 0.0,
                    bytes: 0.0,
                });
                let last = self.entries.len() - 1;
                &mut self.entries[last]
            }
        };
        entry.launches += 1;
        entry.seconds += seconds;
        entry.flops += cost.flops;
        entry.bytes += cost.bytes;
    }

    /// Seconds in all recorded launches.
    pub fn kernel_seconds(&self) -> f64 {
        self.entries.iter().map(|e| e.seconds).sum()
    }
}
