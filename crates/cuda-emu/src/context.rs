//! Initialisation, the device and its attributes, and contexts (the primary one that `cust`
//! retains, and created ones; all share the one device's state).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void};

use crate::code;
use crate::config::Config;
use crate::state::{Answer, CURRENT, answer, driver, handle};

/// What `cuDeviceGetName` answers.
pub const DEVICE_NAME: &str = "kernelab emulated CUDA device (PTX interpreter)";

/// The driver API version reported: 12.4.
const DRIVER_VERSION: c_int = 12040;

/// Writes `value` through `out`, or answers `CUDA_ERROR_INVALID_VALUE` for a null pointer.
///
/// # Safety
/// `out` is null or valid for a write of a `T`.
pub unsafe fn put<T>(out: *mut T, value: T) -> Answer {
    if out.is_null() {
        return Err(code::INVALID_VALUE);
    }
    // SAFETY: non-null, and valid for the write by the caller's contract.
    unsafe { out.write(value) };
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn cuInit(flags: c_uint) -> u32 {
    if flags != 0 {
        return code::INVALID_VALUE;
    }
    let mut driver = driver();
    if driver.config.is_none() {
        match Config::from_env() {
            Ok(config) => driver.config = Some(config),
            Err(why) => {
                eprintln!("kernelab emulated CUDA driver: {why}");
                return code::INVALID_VALUE;
            }
        }
    }
    match driver.config() {
        Ok(config) if config.devices == 0 => code::NO_DEVICE,
        Ok(_) => code::SUCCESS,
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> u32 {
    // SAFETY: the caller passes a valid pointer or null.
    answer(unsafe { put(version, DRIVER_VERSION) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> u32 {
    let devices = match driver().config() {
        Ok(config) => config.devices as c_int,
        Err(code) => return code,
    };
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(count, devices) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> u32 {
    if let Err(code) = driver().check_device(ordinal) {
        return code;
    }
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(device, ordinal) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, device: c_int) -> u32 {
    if let Err(code) = driver().check_device(device) {
        return code;
    }
    if name.is_null() || len <= 0 {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller's buffer holds `len` bytes.
    unsafe { copy_c_string(DEVICE_NAME, name, len as usize) };
    code::SUCCESS
}

/// Copies `text` into `buffer` of `len` bytes (`len` ≥ 1), cut to fit and NUL-terminated.
///
/// # Safety
/// `buffer` is valid for writes of `len` bytes.
pub unsafe fn copy_c_string(text: &str, buffer: *mut c_char, len: usize) {
    let n = text.len().min(len - 1);
    // SAFETY: n + 1 ≤ len bytes are written, inside the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buffer, n);
        buffer.add(n).write(0);
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, device: c_int) -> u32 {
    let driver = driver();
    if let Err(code) = driver.check_device(device) {
        return code;
    }
    let total = driver.config.as_ref().map_or(0, |c| c.memory_bytes as usize);
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(bytes, total) })
}

/// The value of device attribute `attribute` (the `CUdevice_attribute` numbering): an sm_80-like
/// device of one multiprocessor and no cache; attributes not listed read 0, as an absent feature.
fn attribute(attribute: c_int) -> Option<c_int> {
    Some(match attribute {
        1 => 1024,          // MAX_THREADS_PER_BLOCK
        2 | 3 => 1024,      // MAX_BLOCK_DIM_X, _Y
        4 => 64,            // MAX_BLOCK_DIM_Z
        5 => i32::MAX,      // MAX_GRID_DIM_X
        6 | 7 => 65_535,    // MAX_GRID_DIM_Y, _Z
        8 | 97 => 48 << 10, // MAX_SHARED_MEMORY_PER_BLOCK (and _OPTIN)
        10 => 32,           // WARP_SIZE
        12 => 65_536,       // MAX_REGISTERS_PER_BLOCK
        16 => 1,            // MULTIPROCESSOR_COUNT
        39 => 2048,         // MAX_THREADS_PER_MULTIPROCESSOR
        75 => 8,            // COMPUTE_CAPABILITY_MAJOR
        76 => 0,            // COMPUTE_CAPABILITY_MINOR
        a if (1..=150).contains(&a) => 0,
        _ => return None,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetAttribute(value: *mut c_int, which: c_int, device: c_int) -> u32 {
    if let Err(code) = driver().check_device(device) {
        return code;
    }
    let Some(v) = attribute(which) else { return code::INVALID_VALUE };
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(value, v) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(context: *mut *mut c_void, device: c_int) -> u32 {
    let mut driver = driver();
    let retain = |driver: &mut crate::state::Driver| -> Answer<u64> {
        driver.check_device(device)?;
        driver.open_device()?;
        let (h, refs) = match driver.primary {
            Some((h, refs)) => (h, refs + 1),
            None => (driver.new_handle(), 1),
        };
        driver.primary = Some((h, refs));
        Ok(h)
    };
    match retain(&mut driver) {
        // SAFETY: as cuDriverGetVersion.
        Ok(h) => answer(unsafe { put(context, h as usize as *mut c_void) }),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuDevicePrimaryCtxRelease_v2(device: c_int) -> u32 {
    let mut driver = driver();
    if let Err(code) = driver.check_device(device) {
        return code;
    }
    match driver.primary {
        Some((h, refs)) if refs > 1 => driver.primary = Some((h, refs - 1)),
        Some(_) => {
            driver.primary = None;
            driver.close_device_if_unused();
        }
        None => return code::INVALID_CONTEXT,
    }
    code::SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxCreate_v2(context: *mut *mut c_void, _flags: c_uint, device: c_int) -> u32 {
    let mut driver = driver();
    let create = |driver: &mut crate::state::Driver| -> Answer<u64> {
        driver.check_device(device)?;
        driver.open_device()?;
        let h = driver.new_handle();
        driver.created.insert(h);
        Ok(h)
    };
    match create(&mut driver) {
        Ok(h) => {
            CURRENT.with(|c| c.set(h));
            // SAFETY: as cuDriverGetVersion.
            answer(unsafe { put(context, h as usize as *mut c_void) })
        }
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxDestroy_v2(context: *mut c_void) -> u32 {
    let mut driver = driver();
    if !driver.created.remove(&handle(context)) {
        return code::INVALID_CONTEXT;
    }
    if CURRENT.with(Cell::get) == handle(context) {
        CURRENT.with(|c| c.set(0));
    }
    driver.close_device_if_unused();
    code::SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSetCurrent(context: *mut c_void) -> u32 {
    let driver = driver();
    if let Err(code) = driver.config() {
        return code;
    }
    let h = handle(context);
    if h != 0 && !driver.is_context(h) {
        return code::INVALID_CONTEXT;
    }
    CURRENT.with(|c| c.set(h));
    code::SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetCurrent(context: *mut *mut c_void) -> u32 {
    if let Err(code) = driver().config() {
        return code;
    }
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(context, CURRENT.with(Cell::get) as usize as *mut c_void) })
}

/// The emulated driver keeps one current context per thread, not a stack: pushing makes the
/// context current, popping answers it and leaves none current.
#[unsafe(no_mangle)]
pub extern "C" fn cuCtxPushCurrent_v2(context: *mut c_void) -> u32 {
    cuCtxSetCurrent(context)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(context: *mut *mut c_void) -> u32 {
    let current = CURRENT.with(|c| c.replace(0));
    if current == 0 {
        return code::INVALID_CONTEXT;
    }
    if context.is_null() {
        return code::SUCCESS;
    }
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(context, current as usize as *mut c_void) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetDevice(device: *mut c_int) -> u32 {
    if let Err(code) = driver().device() {
        return code;
    }
    // SAFETY: as cuDriverGetVersion.
    answer(unsafe { put(device, 0) })
}

/// Work runs when it is launched, so synchronizing only reports a kernel fault's sticky error.
#[unsafe(no_mangle)]
pub extern "C" fn cuCtxSynchronize() -> u32 {
    answer(driver().device().map(|_| ()))
}
