//! `kernelab devices`: every backend kernelab knows, whether it is usable here, and why not.

use kernelab_bench::backends;
use kernelab_tensor::{Op, Result};

pub fn run() -> Result<()> {
    for (kind, device) in backends::probe_all() {
        match device {
            Ok(device) => {
                let info = device.info();
                println!("{kind:<5} available    {}", info.name);
                println!("      driver       {}", info.driver);
                for (key, value) in &info.details {
                    println!("      {key:<12} {value}");
                }
                let matmul: Vec<String> = device
                    .variants(Op::Matmul)
                    .iter()
                    .map(|v| if v.is_available() { v.name.to_string() } else { format!("{} (unavailable)", v.name) })
                    .collect();
                println!("      matmul       {}", matmul.join(", "));
                if let Some(r) = device.roofline() {
                    println!("      roofline     {}", kernelab_bench::record::describe_roofline(&r));
                }
            }
            Err(e) => println!("{kind:<5} unavailable  {e}"),
        }
        if kind == kernelab_tensor::BackendKind::Wgpu {
            for (i, adapter) in backends::wgpu_adapters().iter().enumerate() {
                println!("      adapter {i}    {adapter}");
            }
        }
    }
    Ok(())
}
