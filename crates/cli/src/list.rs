//! `kernelab list`: every op, every backend, and each backend's variants with their summaries.

use crate::out::outln;
use kernelab_bench::backends;
use kernelab_tensor::{Op, Result};

pub fn run() -> Result<()> {
    outln!("ops: {}", Op::ALL.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "));
    for (kind, device) in backends::probe_all() {
        let device = match device {
            Ok(d) => d,
            Err(e) => {
                outln!("\n{kind}: unavailable ({e})");
                continue;
            }
        };
        outln!("\n{kind}: {}", device.info().name);
        for op in Op::ALL {
            let variants = device.variants(op);
            // Elementwise and row-wise ops share one variant list per backend: print it once.
            if !matches!(op, Op::Matmul | Op::Relu | Op::Narrow) || variants.is_empty() {
                continue;
            }
            let heading = match op {
                Op::Matmul => "matmul",
                Op::Narrow => "narrow and widen",
                _ => "every other op",
            };
            outln!("  {heading}:");
            for (i, v) in variants.iter().enumerate() {
                let default = if i == 0 { " (default)" } else { "" };
                let state = v.unavailable.as_ref().map_or_else(String::new, |why| format!(" — unavailable: {why}"));
                let precision = match v.precision {
                    kernelab_tensor::Precision::F32 => String::new(),
                    p => format!(" [{p}]"),
                };
                outln!("    {:<16} {}{precision}{default}{state}", v.name, v.summary);
            }
        }
    }
    Ok(())
}
