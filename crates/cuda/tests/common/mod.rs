//! What the CUDA backend's test files share.

use kernelab_cuda::CudaBackend;
use kernelab_tensor::BackendKind;

/// The CUDA device (a GPU, or the emulated device of `scripts/cuda-emu-root.sh`), or `None` where
/// none opens; where `KERNELAB_REQUIRE` names cuda, none opening fails the test with the reason.
pub fn cuda() -> Option<CudaBackend> {
    match CudaBackend::new() {
        Ok(cuda) => Some(cuda),
        Err(e) => {
            assert!(!BackendKind::Cuda.is_required(), "KERNELAB_REQUIRE names cuda: {e}");
            None
        }
    }
}
