//! `kernelab devices`: every backend kernelab knows, whether it is usable here, and why not.

use crate::out::outln;
use clap::Args;

use kernelab_bench::backends;
use kernelab_tensor::{Op, Result};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab devices                 backends, adapters, baselines and the cached ceilings
  kernelab devices --remeasure     measure the ceilings again and replace the per-machine cache")]
pub struct DevicesArgs {
    /// Measure the CPU roofline again (FMA peak, bandwidth of every cache level and DRAM) and
    /// replace the per-machine cache that every run reads it from.
    #[arg(long)]
    remeasure: bool,
}

pub fn run(a: &DevicesArgs) -> Result<()> {
    if a.remeasure {
        kernelab_cpu::roofline::renew();
    }
    for (kind, device) in backends::probe_all() {
        match device {
            Ok(device) => {
                let info = device.info();
                match &info.software {
                    Some(what) => outln!("{kind:<5} available    {} — {what}", info.name),
                    None => outln!("{kind:<5} available    {}", info.name),
                }
                outln!("      driver       {}", info.driver);
                for (key, value) in &info.details {
                    outln!("      {key:<12} {value}");
                }
                let matmul: Vec<String> = device
                    .variants(Op::Matmul)
                    .iter()
                    .map(|v| if v.is_available() { v.name.to_string() } else { format!("{} (unavailable)", v.name) })
                    .collect();
                outln!("      matmul       {}", matmul.join(", "));
                for b in device.baselines() {
                    outln!("      baseline     {}", kernelab_bench::table::describe_baseline(&b));
                }
                if let Some(r) = device.roofline() {
                    outln!("      roofline     {}", r.summary());
                    for l in &r.levels {
                        let size = l.capacity_all.map_or_else(|| "everything".into(), |b| format!("{} KiB", b >> 10));
                        outln!(
                            "        {:<5} {:>8.1} GB/s ({:.1} on 1 thread), holds {size}",
                            l.name,
                            l.gbps_all,
                            l.gbps_one_thread
                        );
                    }
                    outln!("      measured     {}", r.how);
                }
            }
            Err(e) => outln!("{kind:<5} unavailable  {e}"),
        }
        if kind == kernelab_tensor::BackendKind::Wgpu {
            for (i, adapter) in backends::wgpu_adapters().iter().enumerate() {
                outln!("      adapter {i}    {adapter}");
            }
        }
    }
    Ok(())
}
