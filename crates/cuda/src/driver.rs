//! The driver's errors as ours: a raw `CUresult` or a cust `CudaError` becomes an
//! [`Error::Device`] naming the call and the driver's code (`CUDA_ERROR_NOT_SUPPORTED (801)`), and
//! a module that fails to load brings the JIT's error log.

use std::ffi::{CString, c_void};

use cust::error::CudaError;
use cust::sys;

use kernelab_tensor::{Error, Result};

pub(crate) fn device_error(message: impl std::fmt::Display) -> Error {
    Error::Device { backend: "cuda".into(), message: message.to_string() }
}

/// A raw driver call's result as ours: `Err` names the call and the driver's code.
pub(crate) fn checked(result: sys::CUresult, what: &str) -> Result<()> {
    if result == sys::cudaError_enum::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(device_error(format!("{what}: {result:?} ({}){}", result as u32, crate::emulated::explain(result as u32))))
    }
}

/// `CUDA_ERROR_NOT_SUPPORTED (801)`: the driver's name for an error. (cust's `Display` asks the
/// driver for a description, which a stand-in driver cannot give.)
pub(crate) fn code(e: CudaError) -> String {
    let mut name = String::from("CUDA_ERROR");
    for c in format!("{e:?}").chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    format!("{name} ({})", e as u32)
}

pub(crate) fn driver(what: &str) -> impl FnOnce(CudaError) -> Error + '_ {
    move |e| device_error(format!("{what}: {}{}", code(e), crate::emulated::explain(e as u32)))
}

/// The driver's error log for PTX that failed to load, from a second load with a log buffer.
pub(crate) fn jit_error_log(text: &CString) -> String {
    let mut log = vec![0u8; 1 << 16];
    let mut options =
        [sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER, sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES];
    // cuModuleLoadDataEx takes option values that fit a pointer by value, not by reference.
    let mut values = [log.as_mut_ptr().cast::<c_void>(), log.len() as *mut c_void];
    let mut module: sys::CUmodule = std::ptr::null_mut();
    // SAFETY: the option arrays have two entries each and the log buffer outlives the call.
    let result = unsafe {
        sys::cuModuleLoadDataEx(&mut module, text.as_ptr().cast(), 2, options.as_mut_ptr(), values.as_mut_ptr())
    };
    if result == sys::cudaError_enum::CUDA_SUCCESS {
        // SAFETY: the module was just loaded and nothing else refers to it.
        unsafe { sys::cuModuleUnload(module) };
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    match String::from_utf8_lossy(&log[..end]).trim() {
        "" => "(empty)".into(),
        text => text.to_string(),
    }
}
