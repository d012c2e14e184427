//! Whether the CUDA driver is kernelab's emulated device (`crates/cuda-emu`, a stand-in
//! `libcuda.so.1` interpreting the PTX), and the text of its last fault. The emulated driver
//! exports `kernelab_emu_last_fault` beside the driver API; a real driver has no such symbol.

use std::ffi::c_char;
use std::sync::OnceLock;

/// `kernelab_emu_last_fault(buffer, len) -> full length`: the last fault's text, NUL-terminated.
type LastFault = unsafe extern "C" fn(*mut c_char, usize) -> usize;

/// What `kernelab devices` and the reports say of the emulated device.
pub const EMULATED: &str = "emulated (PTX interpreter, timings mean nothing)";

/// The emulated driver's `kernelab_emu_last_fault`, if the loaded libcuda is the emulated one.
fn last_fault_fn() -> Option<LastFault> {
    static FOUND: OnceLock<Option<LastFault>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let this = libloading::os::unix::Library::this();
        // SAFETY: the symbol, where it exists, is the emulated driver's, of exactly this type.
        let symbol = unsafe { this.get::<LastFault>(b"kernelab_emu_last_fault\0") };
        // The process's own handle stays open for its life; the function pointer with it.
        symbol.ok().map(|s| *s)
    })
}

/// Whether the driver is the emulated device.
pub fn is_emulated() -> bool {
    last_fault_fn().is_some()
}

/// The emulated device's account of its last kernel fault or refused launch (which kernel, which
/// instruction, which thread and block), if the driver is the emulated one and has one.
pub fn last_fault() -> Option<String> {
    let f = last_fault_fn()?;
    // SAFETY: a null buffer asks only for the length.
    let len = unsafe { f(std::ptr::null_mut(), 0) };
    if len == 0 {
        return None;
    }
    let mut buffer = vec![0u8; len + 1];
    // SAFETY: the buffer holds len + 1 bytes, room for the text and its NUL.
    unsafe { f(buffer.as_mut_ptr().cast(), buffer.len()) };
    buffer.truncate(len);
    Some(String::from_utf8_lossy(&buffer).into_owned())
}

/// `"; the emulated device says: …"` for an error with driver code `code` that a kernel fault or a
/// refused launch causes (illegal or misaligned address, launch failure, invalid value), where
/// the driver is the emulated one; empty otherwise.
pub fn explain(code: u32) -> String {
    const FAULTS: [u32; 4] = [1, 700, 716, 719];
    match last_fault() {
        Some(text) if FAULTS.contains(&code) => format!("; the emulated device says: {text}"),
        _ => String::new(),
    }
}
