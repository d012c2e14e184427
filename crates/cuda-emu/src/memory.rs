//! Device memory: allocation against the configured capacity, copies and fills. Every stream is
//! synchronous here, so the `Async` forms do their work at once, like the plain ones, after
//! checking their stream.

use std::ffi::{c_uint, c_void};

use kernelab_ptx_emu::Fault;

use crate::code;
use crate::context::put;
use crate::state::{Answer, Driver, answer, driver, handle};

/// Runs `f` on the current context's memory; a fault becomes its driver code, its text kept.
fn with_memory(driver: &mut Driver, f: impl FnOnce(&mut kernelab_ptx_emu::Memory) -> Result<(), Fault>) -> Answer {
    let device = driver.device()?;
    match f(&mut device.memory) {
        Ok(()) => Ok(()),
        Err(fault) => Err(driver.fault(&fault)),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(address: *mut u64, bytes: usize) -> u32 {
    let mut driver = driver();
    if bytes == 0 {
        return code::INVALID_VALUE;
    }
    let mut allocated = 0;
    if let Err(code) = with_memory(&mut driver, |memory| memory.alloc(bytes).map(|a| allocated = a)) {
        return code;
    }
    // SAFETY: the caller passes a valid pointer or null.
    answer(unsafe { put(address, allocated) })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemFree_v2(address: u64) -> u32 {
    answer(with_memory(&mut driver(), |memory| memory.free(address)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> u32 {
    let mut driver = driver();
    let capacity = driver.config.as_ref().map_or(0, |c| c.memory_bytes);
    let used = match driver.device() {
        Ok(device) => device.memory.used_bytes(),
        Err(code) => return code,
    };
    // SAFETY: as cuMemAlloc_v2.
    answer(unsafe { put(free, capacity.saturating_sub(used) as usize).and_then(|()| put(total, capacity as usize)) })
}

/// A copy between the host and the device of `bytes` bytes: none still needs a current device, a
/// null host pointer (`host_is_null`) is refused, and `copy` runs on the device's memory.
fn host_copy(
    driver: &mut Driver,
    host_is_null: bool,
    bytes: usize,
    copy: impl FnOnce(&mut kernelab_ptx_emu::Memory) -> Result<(), Fault>,
) -> Answer {
    if bytes == 0 {
        return driver.device().map(|_| ());
    }
    if host_is_null {
        return Err(code::INVALID_VALUE);
    }
    with_memory(driver, copy)
}

/// Host → device: `bytes` from `source` to `destination`.
///
/// # Safety
/// `source` is valid for reads of `bytes` bytes (or null, refused).
unsafe fn host_to_device(driver: &mut Driver, destination: u64, source: *const c_void, bytes: usize) -> Answer {
    host_copy(driver, source.is_null(), bytes, |memory| {
        // SAFETY: the caller's buffer holds `bytes` bytes, and is not null (`host_copy` checked).
        memory.write(destination, unsafe { std::slice::from_raw_parts(source.cast::<u8>(), bytes) })
    })
}

/// Device → host: `bytes` from `source` to `destination`.
///
/// # Safety
/// `destination` is valid for writes of `bytes` bytes (or null, refused).
unsafe fn device_to_host(driver: &mut Driver, destination: *mut c_void, source: u64, bytes: usize) -> Answer {
    host_copy(driver, destination.is_null(), bytes, |memory| {
        // SAFETY: the caller's buffer holds `bytes` bytes, and is not null (`host_copy` checked).
        memory.read(source, unsafe { std::slice::from_raw_parts_mut(destination.cast::<u8>(), bytes) })
    })
}

fn device_to_device(driver: &mut Driver, destination: u64, source: u64, bytes: usize) -> Answer {
    with_memory(driver, |memory| memory.copy(destination, source, bytes))
}

fn fill(driver: &mut Driver, destination: u64, value: u32, count: usize) -> Answer {
    with_memory(driver, |memory| memory.fill_u32(destination, value, count))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(destination: u64, source: *const c_void, bytes: usize) -> u32 {
    // SAFETY: the caller's contract is this function's.
    answer(unsafe { host_to_device(&mut driver(), destination, source, bytes) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(destination: *mut c_void, source: u64, bytes: usize) -> u32 {
    // SAFETY: the caller's contract is this function's.
    answer(unsafe { device_to_host(&mut driver(), destination, source, bytes) })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoD_v2(destination: u64, source: u64, bytes: usize) -> u32 {
    answer(device_to_device(&mut driver(), destination, source, bytes))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32_v2(destination: u64, value: c_uint, count: usize) -> u32 {
    answer(fill(&mut driver(), destination, value, count))
}

/// The `Async` forms: `work` done at once, as the plain form does it, once `stream` is checked.
fn on_stream(stream: *mut c_void, work: impl FnOnce(&mut Driver) -> Answer) -> u32 {
    let mut driver = driver();
    answer(driver.check_stream(handle(stream)).and_then(|()| work(&mut driver)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    destination: u64,
    source: *const c_void,
    bytes: usize,
    stream: *mut c_void,
) -> u32 {
    // SAFETY: the caller's contract is this function's.
    on_stream(stream, |driver| unsafe { host_to_device(driver, destination, source, bytes) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    destination: *mut c_void,
    source: u64,
    bytes: usize,
    stream: *mut c_void,
) -> u32 {
    // SAFETY: the caller's contract is this function's.
    on_stream(stream, |driver| unsafe { device_to_host(driver, destination, source, bytes) })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemcpyDtoDAsync_v2(destination: u64, source: u64, bytes: usize, stream: *mut c_void) -> u32 {
    on_stream(stream, |driver| device_to_device(driver, destination, source, bytes))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuMemsetD32Async(destination: u64, value: c_uint, count: usize, stream: *mut c_void) -> u32 {
    on_stream(stream, |driver| fill(driver, destination, value, count))
}
