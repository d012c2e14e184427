//! Modules from PTX text, their functions and attributes, and kernel launch: the launch runs the
//! whole grid in the interpreter before it returns.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::Arc;

use kernelab_ptx_emu::{Kernel, Launch, Module};

use crate::code;
use crate::context::put;
use crate::state::{Answer, Driver, answer, driver, fault_code, handle};

/// `CU_JIT_ERROR_LOG_BUFFER` and `CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES`.
const JIT_ERROR_LOG_BUFFER: c_int = 5;
const JIT_ERROR_LOG_BUFFER_SIZE_BYTES: c_int = 6;

/// Parses the NUL-terminated PTX text at `image` into a new module of the current context. A
/// text the interpreter cannot load answers `CUDA_ERROR_INVALID_PTX` with `log` set to the
/// reason, worded as the driver's JIT log (`ptxas application ptx input, line L; error : …`).
///
/// # Safety
/// `image` is null or a NUL-terminated string.
unsafe fn load(driver: &mut Driver, image: *const c_void, log: &mut String) -> Answer<u64> {
    driver.device()?;
    if image.is_null() {
        return Err(code::INVALID_VALUE);
    }
    // SAFETY: the caller's image is NUL-terminated PTX text.
    let text = unsafe { CStr::from_ptr(image.cast::<c_char>()) };
    let text = text.to_str().map_err(|_| {
        *log = "ptxas application ptx input: error   : the PTX text is not UTF-8".into();
        code::INVALID_PTX
    })?;
    let module = Module::parse(text).map_err(|e| {
        *log = format!("ptxas application ptx input, line {}; error   : {}", e.line, e.what);
        code::INVALID_PTX
    })?;
    let h = driver.new_handle();
    driver.device()?.modules.insert(h, Arc::new(module));
    Ok(h)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut *mut c_void, image: *const c_void) -> u32 {
    // SAFETY: the caller's contract is cuModuleLoadDataEx's with no options.
    unsafe { cuModuleLoadDataEx(module, image, 0, std::ptr::null_mut(), std::ptr::null_mut()) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut *mut c_void,
    image: *const c_void,
    options: c_uint,
    keys: *mut c_int,
    values: *mut *mut c_void,
) -> u32 {
    let mut log = String::new();
    // SAFETY: the caller's image is NUL-terminated.
    let loaded = unsafe { load(&mut driver(), image, &mut log) };
    if !log.is_empty() && options > 0 && !keys.is_null() && !values.is_null() {
        // SAFETY: the caller's option arrays hold `options` entries each.
        unsafe { write_log(&log, options as usize, keys, values) };
    }
    match loaded {
        // SAFETY: the caller passes a valid pointer or null.
        Ok(h) => answer(unsafe { put(module, h as usize as *mut c_void) }),
        Err(code) => code,
    }
}

/// Writes `log` into the `CU_JIT_ERROR_LOG_BUFFER` option's buffer, cut to the size its
/// `_SIZE_BYTES` option gives, and sets that option to the bytes written (as the driver does).
///
/// # Safety
/// `keys` and `values` hold `n` entries; the buffer option's value points at as many bytes as the
/// size option's value says.
unsafe fn write_log(log: &str, n: usize, keys: *mut c_int, values: *mut *mut c_void) {
    // SAFETY: the caller's arrays hold n entries.
    let (keys, values) = unsafe { (std::slice::from_raw_parts(keys, n), std::slice::from_raw_parts_mut(values, n)) };
    let find = |key| keys.iter().position(|&k| k == key);
    let (Some(buffer), Some(size)) = (find(JIT_ERROR_LOG_BUFFER), find(JIT_ERROR_LOG_BUFFER_SIZE_BYTES)) else {
        return;
    };
    // The size option's value is the size itself, carried in the pointer.
    let capacity = values[size] as usize;
    if capacity == 0 || values[buffer].is_null() {
        return;
    }
    // SAFETY: the buffer holds `capacity` bytes.
    unsafe { crate::context::copy_c_string(log, values[buffer].cast::<c_char>(), capacity) };
    values[size] = log.len().min(capacity - 1) as *mut c_void;
}

#[unsafe(no_mangle)]
pub extern "C" fn cuModuleUnload(module: *mut c_void) -> u32 {
    let mut driver = driver();
    let unload = |driver: &mut Driver| -> Answer {
        let device = driver.device()?;
        device.modules.remove(&handle(module)).ok_or(code::INVALID_HANDLE)?;
        device.functions.retain(|_, (m, _)| *m != handle(module));
        Ok(())
    };
    answer(unload(&mut driver))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleGetFunction(
    function: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> u32 {
    if name.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller's name is NUL-terminated.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
    let mut driver = driver();
    let lookup = |driver: &mut Driver| -> Answer<u64> {
        let found = driver.device()?.modules.get(&handle(module)).ok_or(code::INVALID_HANDLE)?.kernel(&name).is_some();
        if !found {
            return Err(code::NOT_FOUND);
        }
        let h = driver.new_handle();
        driver.device()?.functions.insert(h, (handle(module), name));
        Ok(h)
    };
    match lookup(&mut driver) {
        // SAFETY: the caller passes a valid pointer or null.
        Ok(h) => answer(unsafe { put(function, h as usize as *mut c_void) }),
        Err(code) => code,
    }
}

/// The module and kernel name of function handle `function`.
fn function(driver: &mut Driver, function: *mut c_void) -> Answer<(Arc<Module>, String)> {
    let device = driver.device()?;
    let (module, name) = device.functions.get(&handle(function)).ok_or(code::INVALID_HANDLE)?;
    let module = device.modules.get(module).ok_or(code::INVALID_HANDLE)?;
    Ok((Arc::clone(module), name.clone()))
}

/// The most shared memory (static + dynamic) one block may use, as `cuDeviceGetAttribute` says.
const MAX_SHARED: usize = 48 << 10;

/// The value of function attribute `which` (the `CUfunction_attribute` numbering).
fn function_attribute(kernel: &Kernel, which: c_int) -> Option<c_int> {
    let clamp = |v: usize| c_int::try_from(v).unwrap_or(c_int::MAX);
    Some(match which {
        0 => 1024,                                                           // MAX_THREADS_PER_BLOCK
        1 => clamp(kernel.static_shared_bytes()),                            // SHARED_SIZE_BYTES
        2 | 3 => 0,                                                          // CONST_, LOCAL_SIZE_BYTES
        4 => clamp(kernel.registers()),                                      // NUM_REGS
        5 | 6 => 80,                                                         // PTX_VERSION, BINARY_VERSION
        7 => 0,                                                              // CACHE_MODE_CA
        8 => clamp(MAX_SHARED.saturating_sub(kernel.static_shared_bytes())), // MAX_DYNAMIC_SHARED_SIZE_BYTES
        9 => -1,                                                             // PREFERRED_SHARED_MEMORY_CARVEOUT
        _ => return None,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuFuncGetAttribute(value: *mut c_int, which: c_int, f: *mut c_void) -> u32 {
    let found = function(&mut driver(), f);
    let (module, name) = match found {
        Ok(found) => found,
        Err(code) => return code,
    };
    let Some(v) = module.kernel(&name).and_then(|k| function_attribute(k, which)) else {
        return code::INVALID_VALUE;
    };
    // SAFETY: the caller passes a valid pointer or null.
    answer(unsafe { put(value, v) })
}

/// Why a launch of `kernel` over `grid` × `block` with `dynamic` bytes of shared memory is
/// refused (`CUDA_ERROR_INVALID_VALUE` on a GPU), if it is.
pub fn refused(kernel: &Kernel, grid: [u32; 3], block: [u32; 3], dynamic: u32) -> Option<String> {
    let threads = u64::from(block[0]) * u64::from(block[1]) * u64::from(block[2]);
    let shared = kernel.static_shared_bytes() + dynamic as usize;
    let limits = [(grid, [i32::MAX as u32, 65_535, 65_535], "grid"), (block, [1024, 1024, 64], "block")];
    for (dims, most, what) in limits {
        if dims.contains(&0) || dims.iter().zip(most).any(|(&d, m)| d > m) {
            return Some(format!(
                "{what} ({},{},{}) of `{}`: every dimension must be at least 1 and at most ({},{},{})",
                dims[0],
                dims[1],
                dims[2],
                kernel.name(),
                most[0],
                most[1],
                most[2]
            ));
        }
    }
    if threads > 1024 {
        return Some(format!("block of {threads} threads for `{}`: at most 1024", kernel.name()));
    }
    if shared > MAX_SHARED {
        return Some(format!(
            "`{}` needs {shared} bytes of shared memory per block: at most {MAX_SHARED}",
            kernel.name()
        ));
    }
    None
}

/// The parameter bytes of `kernel` from `kernelParams`: entry `i` points at parameter `i`'s value.
///
/// # Safety
/// `params` is null or holds one valid pointer per parameter of `kernel`, each to as many bytes
/// as the parameter has.
unsafe fn parameters<'a>(kernel: &Kernel, params: *mut *mut c_void) -> Answer<Vec<&'a [u8]>> {
    if kernel.params().is_empty() {
        return Ok(Vec::new());
    }
    if params.is_null() {
        return Err(code::INVALID_VALUE);
    }
    let mut out = Vec::with_capacity(kernel.params().len());
    for (i, p) in kernel.params().iter().enumerate() {
        // SAFETY: the caller's array holds one pointer per parameter.
        let pointer = unsafe { *params.add(i) };
        if pointer.is_null() {
            return Err(code::INVALID_VALUE);
        }
        // SAFETY: each pointer is to the parameter's bytes.
        out.push(unsafe { std::slice::from_raw_parts(pointer.cast::<u8>(), p.bytes) });
    }
    Ok(out)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuLaunchKernel(
    f: *mut c_void,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    shared_bytes: c_uint,
    stream: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> u32 {
    let mut driver = driver();
    let geometry = Launch {
        grid: [grid_x, grid_y, grid_z],
        block: [block_x, block_y, block_z],
        dynamic_shared_bytes: shared_bytes,
        sanitize: driver.config.as_ref().is_some_and(|c| c.sanitize),
    };
    // SAFETY: the caller's parameter array matches the function's parameters.
    answer(unsafe { run(&mut driver, f, &geometry, stream, params, extra) })
}

/// Checks and runs one launch. A refused launch answers its error at once; a fault while the
/// kernel runs is reported on stderr (as compute-sanitizer does) and makes the device's every
/// later call fail with its code, while the launch itself succeeds: on a GPU the launch is
/// queued, and the fault surfaces at the next call that waits for it.
///
/// # Safety
/// As `cuLaunchKernel`.
unsafe fn run(
    driver: &mut Driver,
    f: *mut c_void,
    geometry: &Launch,
    stream: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> Answer {
    let (module, name) = function(driver, f)?;
    driver.check_stream(handle(stream))?;
    // The text of an earlier fault is not this launch's.
    driver.last_fault.clear();
    let kernel = module.kernel(&name).ok_or(code::INVALID_HANDLE)?;
    if !extra.is_null() {
        driver.last_fault = "cuLaunchKernel's `extra` argument form is not emulated; pass kernelParams".into();
        return Err(code::NOT_SUPPORTED);
    }
    if let Some(why) = refused(kernel, geometry.grid, geometry.block, geometry.dynamic_shared_bytes) {
        driver.last_fault = format!("invalid launch: {why}");
        return Err(code::INVALID_VALUE);
    }
    // SAFETY: as this function's.
    let params = unsafe { parameters(kernel, params)? };
    let device = driver.device()?;
    let Err(fault) = kernelab_ptx_emu::launch(kernel, geometry, &params, &mut device.memory) else {
        return Ok(());
    };
    let code = fault_code(&fault.kind);
    if code == code::INVALID_VALUE {
        return Err(driver.fault(&fault));
    }
    device.sticky = Some(code);
    driver.last_fault = fault.to_string();
    let name = crate::code::name(code).map_or_else(|| code.to_string(), |n| n.to_string_lossy().into_owned());
    eprintln!("========= kernelab emulated CUDA device (compute-sanitizer style report)");
    eprintln!("========= {fault}");
    eprintln!("========= the context is lost: every later call on it answers {name} ({code})");
    Ok(())
}
