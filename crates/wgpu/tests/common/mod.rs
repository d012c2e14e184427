//! What the WGPU backend's test files share.

use kernelab_wgpu::WgpuBackend;

/// An adapter, or `None` when there is none and `KERNELAB_REQUIRE` does not ask for wgpu.
pub fn backend() -> Option<WgpuBackend> {
    match WgpuBackend::new() {
        Ok(b) => Some(b),
        Err(e) if kernelab_tensor::BackendKind::Wgpu.is_required() => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}
