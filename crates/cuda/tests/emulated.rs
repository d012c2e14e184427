//! The driver's refusals reach kernelab as typed errors: an allocation past the device's memory is
//! [`Error::OutOfMemory`] with the numbers, a launch with a bad geometry is the driver's
//! `CUDA_ERROR_INVALID_VALUE` (on the emulated device with its reason), PTX that does not load
//! names its line. Neither loses the context, so these run in one process beside each other.
//!
//! Where CUDA is unavailable there is nothing to run, unless `KERNELAB_REQUIRE` names cuda.

#![cfg(feature = "cuda")]

mod common;

use common::cuda;

use std::ffi::c_void;

use cust::error::CudaError;
use kernelab_cuda::{emulated, ptx};
use kernelab_tensor::{Backend, Error};

#[test]
fn an_allocation_past_the_memory_is_out_of_memory_with_the_numbers() {
    let Some(cuda) = cuda() else { return };
    let len = 1usize << 40;
    match cuda.alloc(len) {
        Err(Error::OutOfMemory { device, bytes, len: refused }) => {
            assert_eq!((bytes, refused), (len * 4, len));
            assert!(device.starts_with("cuda (") && device.contains(" MiB free"), "{device}");
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    // The device is still usable: the refusal is the call's own, not a lost context.
    let mut small = cuda.alloc(3).unwrap();
    cuda.upload(&[1.0, 2.0, 3.0], &mut *small).unwrap();
    let mut back = [0.0f32; 3];
    cuda.download(&*small, &mut back).unwrap();
    assert_eq!(back, [1.0, 2.0, 3.0]);
}

#[test]
fn a_launch_with_a_bad_geometry_is_invalid_value() {
    let Some(cuda) = cuda() else { return };
    let module = cuda.load_ptx("elementwise.ptx", ptx::ELEMENTWISE.source).unwrap();
    let relu = module.get_function("relu").unwrap();
    // relu(x, y, n): no work (n = 0) at null addresses, refused before it runs anyway.
    let (mut x, mut y, mut n) = (0u64, 0u64, 0u32);
    let mut params = [(&raw mut x).cast::<c_void>(), (&raw mut y).cast(), (&raw mut n).cast()];
    for (grid, block) in [((1, 1, 1), (2048, 1, 1)), ((1, 1, 1), (0, 1, 1)), ((1, 70_000, 1), (32, 1, 1))] {
        // SAFETY: three parameters as relu declares them; the launch is refused or does nothing.
        let result = unsafe {
            cust::sys::cuLaunchKernel(
                relu.to_raw(),
                grid.0,
                grid.1,
                grid.2,
                block.0,
                block.1,
                block.2,
                0,
                std::ptr::null_mut(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(result as u32, CudaError::InvalidValue as u32, "grid {grid:?} block {block:?}");
        if emulated::is_emulated() {
            let why = emulated::last_fault().unwrap_or_default();
            assert!(why.starts_with("invalid launch") && why.contains("relu"), "{why}");
        }
    }
    cuda.synchronize().unwrap();
}

#[test]
fn ptx_that_fails_to_load_names_its_line() {
    let Some(cuda) = cuda() else { return };
    let text = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry bad()\n{\n    frobnicate.f32 %f1;\n    ret;\n}\n";
    let err = cuda.load_ptx("broken.ptx", text).unwrap_err().to_string();
    assert!(err.contains("broken.ptx failed to load") && err.contains("CUDA_ERROR_INVALID_PTX (218)"), "{err}");
    assert!(err.contains("line 6"), "the JIT log names the line: {err}");
}
