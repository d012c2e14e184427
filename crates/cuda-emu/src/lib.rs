//! An emulated CUDA device behind the CUDA driver API: built as a stand-in `libcuda.so.1`
//! (`scripts/cuda-emu-root.sh`), it answers the driver calls kernelab makes through `cust`, and
//! runs each launched kernel by interpreting its PTX on the CPU (`kernelab-ptx-emu`), with a
//! sanitizer. CUDA code that has never seen a GPU runs for real on it: module loading, parameter
//! marshalling, launch geometry, copies, streams, events — timings aside, which mean nothing.
//!
//! - **One device**, sm_80-like, with `KERNELAB_EMU_MEMORY` bytes of memory (2 GiB by default);
//!   `KERNELAB_EMU_DEVICES=0` makes `cuInit` answer `CUDA_ERROR_NO_DEVICE` ([`config`]).
//! - **Synchronous.** A launch runs its whole grid before `cuLaunchKernel` returns; copies and
//!   fills on any stream happen at once; events hold the host clock at their recording.
//! - **Faults as a GPU's.** A kernel's illegal address, misaligned access, shared-memory race or
//!   divergent barrier (the last two with the sanitizer, on unless `KERNELAB_EMU_SANITIZE=0`) is
//!   printed to stderr as compute-sanitizer prints one, and loses the context: every later call
//!   answers `CUDA_ERROR_ILLEGAL_ADDRESS` (700), `CUDA_ERROR_MISALIGNED_ADDRESS` (716) or
//!   `CUDA_ERROR_LAUNCH_FAILED` (719) until the last context is gone. PTX the interpreter cannot
//!   load answers `CUDA_ERROR_INVALID_PTX` (218) with the line in the JIT error log; a bad
//!   geometry `CUDA_ERROR_INVALID_VALUE` (1); an allocation past the capacity
//!   `CUDA_ERROR_OUT_OF_MEMORY` (2).
//! - **Known to be emulated.** [`kernelab_emu_last_fault`] is exported beside the driver API: a
//!   program finds it with `dlsym` to tell this device from a GPU and to read a fault's text.
//!
//! Every function has the C signature of the driver API's (the `_v2` names, as `cust_raw`
//! links them), and its safety contract: pointers the caller passes are valid for what the CUDA
//! documentation says the function reads or writes. The driver's other functions answer
//! `CUDA_ERROR_NOT_SUPPORTED` ([`unsupported`]).

#![allow(non_snake_case, clippy::missing_safety_doc, clippy::too_many_arguments)]

mod code;
pub mod config;
mod context;
mod memory;
mod module;
mod state;
mod sync;
#[cfg(test)]
mod tests;
pub mod unsupported;

use std::ffi::{c_char, c_int};

/// Copies the text of the last kernel fault or refused launch (empty if none) into `buffer` of
/// `len` bytes, cut to fit and NUL-terminated, and returns the text's full length in bytes. With
/// a null `buffer` or `len` 0 it only returns the length.
///
/// # Safety
/// `buffer` is null or valid for writes of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kernelab_emu_last_fault(buffer: *mut c_char, len: usize) -> usize {
    let text = state::driver().last_fault.clone();
    if !buffer.is_null() && len > 0 {
        // SAFETY: the caller's buffer holds `len` bytes.
        unsafe { context::copy_c_string(&text, buffer, len) };
    }
    text.len()
}

/// `*text` ← the name of `error` (`"CUDA_ERROR_ILLEGAL_ADDRESS"`), a static string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(error: c_int, text: *mut *const c_char) -> u32 {
    // SAFETY: the caller passes a valid pointer or null.
    unsafe { error_text(error, text, code::name) }
}

/// `*text` ← the driver's description of `error` (`"an illegal memory access was encountered"`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(error: c_int, text: *mut *const c_char) -> u32 {
    // SAFETY: the caller passes a valid pointer or null.
    unsafe { error_text(error, text, code::description) }
}

/// # Safety
/// `text` is null or valid for a write.
unsafe fn error_text(
    error: c_int,
    text: *mut *const c_char,
    lookup: fn(u32) -> Option<&'static std::ffi::CStr>,
) -> u32 {
    let found = u32::try_from(error).ok().and_then(lookup);
    // SAFETY: as this function's.
    let written = unsafe { context::put(text, found.map_or(std::ptr::null(), |s| s.as_ptr())) };
    match (written, found) {
        (Err(code), _) => code,
        (Ok(()), Some(_)) => code::SUCCESS,
        (Ok(()), None) => code::INVALID_VALUE,
    }
}
