//! `kernelab check`: the conformance suite from the one binary, for machines without a Rust
//! toolchain. Exits non-zero on any failure.

use crate::out::outln;
use clap::Args;

use kernelab_bench::conformance::{Outcome, check_op};
use kernelab_tensor::{Op, Result};

use crate::args;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab check                                   every op and variant on every available backend
  kernelab check --backend cuda                    exit 2 when CUDA is unavailable, 1 when a case fails
  kernelab check --backend cpu --op matmul,softmax")]
pub struct CheckArgs {
    /// Backends to check, comma-separated; each must be available. Default: every available one.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Ops to check, comma-separated. Default: all.
    #[arg(long, value_delimiter = ',')]
    op: Vec<String>,
    /// GPU adapter: the first whose name contains this (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Print every case, not only failures and a summary per op.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs the suite; returns how many cases failed.
pub fn run(a: &CheckArgs) -> Result<usize> {
    let devices = crate::bench::open_devices(&a.backend, a.adapter.as_deref())?;
    let ops = if a.op.is_empty() { Op::ALL.to_vec() } else { args::ops(&a.op)? };
    let mut failed = 0;
    for device in &devices {
        for &op in &ops {
            let outcomes = check_op(device, op);
            let bad: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed() && !o.skipped).collect();
            let skipped = outcomes.iter().filter(|o| o.skipped).count();
            let worst = outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().ok())
                .map(|c| c.worst_budget_ratio)
                .fold(0.0, f64::max);
            outln!(
                "{:<8} {:<22} {:>4} cases  {:>3} failed  {:>3} skipped  worst {:.2} of budget",
                device.label(),
                op.name(),
                outcomes.len(),
                bad.len(),
                skipped,
                worst
            );
            for o in outcomes.iter().filter(|o| a.verbose || (!o.passed())) {
                outln!("    {}", o.describe());
            }
            failed += bad.len();
        }
    }
    outln!("{}", if failed == 0 { "all cases passed".to_string() } else { format!("{failed} cases FAILED") });
    Ok(failed)
}
