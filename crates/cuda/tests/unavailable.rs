//! Opening the CUDA backend never panics: on a machine with a GPU it opens; elsewhere (no driver,
//! or the stand-in libcuda CI builds against) it is unavailable with the driver's reason.

#![cfg(feature = "cuda")]

use kernelab_cuda::CudaBackend;
use kernelab_tensor::{Backend, Error};

#[test]
fn opens_or_says_why_not() {
    match CudaBackend::new() {
        Ok(cuda) => assert!(!cuda.info().name.is_empty()),
        Err(Error::BackendUnavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(reason.contains("CUDA_ERROR"), "the reason names the driver's error: {reason}");
        }
        Err(other) => panic!("expected BackendUnavailable, got {other}"),
    }
}

/// A PTX module that does not assemble is reported with its file name and the JIT's log.
#[test]
fn a_broken_module_reports_the_jit_log() {
    let Ok(cuda) = CudaBackend::new() else { return };
    let broken = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry bad() { frobnicate.f32 %f1; ret; }\n";
    let err = cuda.load_ptx("broken.ptx", broken).unwrap_err().to_string();
    assert!(err.contains("broken.ptx failed to load") && err.contains("JIT log"), "{err}");
}

/// With `KERNELAB_EMU_DEVICES=0` the emulated driver reports no device, as a machine with a driver
/// and no GPU does, and the backend is unavailable with the driver's code (CI runs this test so).
#[test]
fn no_device_is_unavailable_with_the_drivers_code() {
    if std::env::var("KERNELAB_EMU_DEVICES").as_deref() != Ok("0") {
        return;
    }
    match CudaBackend::new() {
        Err(Error::BackendUnavailable { reason, .. }) => {
            assert!(reason.starts_with("cuInit: CUDA_ERROR_NO_DEVICE (100)"), "{reason}")
        }
        Ok(cuda) => panic!("KERNELAB_EMU_DEVICES=0, yet {} opened", cuda.info().name),
        Err(other) => panic!("expected BackendUnavailable, got {other}"),
    }
}
