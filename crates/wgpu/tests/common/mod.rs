//! What the WGPU backend's test files share.

use kernelab_wgpu::WgpuBackend;

/// An adapter, or `None` when there is none and `KERNELAB_REQUIRE` does not ask for wgpu.
pub fn backend() -> Option<WgpuBackend> {
    match WgpuBackend::new() {
        Ok(b) => Some(b),
        Err(e) if std::env::var("KERNELAB_REQUIRE").unwrap_or_default().contains("wgpu") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}
