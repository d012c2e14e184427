//! Per-launch attribution of a device's work, for `kernelab train --profile`: every kernel launch
//! while profiling is on is timed (by the device's own clock where it has one, else by the wall
//! clock around a launch, which on the CPU runs to completion) and added to the entry of its op,
//! variant and shape, with the flops and the least bytes it moved.

use crate::{Kernel, LaunchCost, Op};

/// A launch's shape as a person reads it, its floating-point operations and its least traffic
/// (each input read once, each output written once, accumulated outputs read as well).
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    pub shape: String,
    pub flops: f64,
    pub bytes: f64,
}

impl Kernel<'_> {
    /// See [`Cost`]: the shape is [`Kernel::dims`] joined by `x` (a matmul's transposes after a
    /// colon, `64x128x784:NT`), the flops and bytes are [`Op::cost`](crate::Op::cost)'s, as the
    /// benchmark counts them.
    pub fn cost(&self) -> Cost {
        let dims = self.dims();
        let layout = match self {
            Kernel::Matmul { gemm: g, .. } => match (g.trans_a, g.trans_b) {
                (false, false) => "",
                (false, true) => ":NT",
                (true, false) => ":TN",
                (true, true) => ":TT",
            },
            _ => "",
        };
        let shape = dims.iter().map(usize::to_string).collect::<Vec<_>>().join("x") + layout;
        let LaunchCost { flops, bytes } = self.op().cost_as(&dims, self.accumulates(), self.storage());
        Cost { shape, flops, bytes }
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
