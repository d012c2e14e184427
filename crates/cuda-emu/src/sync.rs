//! Streams and events. Work runs when it is launched, so a stream is always idle: synchronizing
//! answers only a kernel fault's sticky error, and an event's time is the host clock when it was
//! recorded, so the elapsed time between two events is the interpreter's time for the work
//! between them (it says nothing of a GPU's).

use std::ffi::{c_int, c_uint, c_void};
use std::time::Instant;

use crate::code;
use crate::context::put;
use crate::state::{Answer, Driver, answer, driver, handle};

/// Creates a stream (its flags and priority change nothing here).
///
/// # Safety
/// `stream` is null or valid for a write.
unsafe fn create_stream(stream: *mut *mut c_void) -> u32 {
    let mut driver = driver();
    let create = |driver: &mut Driver| -> Answer<u64> {
        driver.device()?;
        let h = driver.new_handle();
        driver.device()?.streams.insert(h);
        Ok(h)
    };
    match create(&mut driver) {
        // SAFETY: as this function's.
        Ok(h) => answer(unsafe { put(stream, h as usize as *mut c_void) }),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut *mut c_void, _flags: c_uint) -> u32 {
    // SAFETY: the caller passes a valid pointer or null.
    unsafe { create_stream(stream) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreateWithPriority(stream: *mut *mut c_void, _flags: c_uint, _priority: c_int) -> u32 {
    // SAFETY: the caller passes a valid pointer or null.
    unsafe { create_stream(stream) }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamDestroy_v2(stream: *mut c_void) -> u32 {
    let mut driver = driver();
    let destroy = |driver: &mut Driver| -> Answer {
        if driver.device()?.streams.remove(&handle(stream)) { Ok(()) } else { Err(code::INVALID_HANDLE) }
    };
    answer(destroy(&mut driver))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamSynchronize(stream: *mut c_void) -> u32 {
    answer(driver().check_stream(handle(stream)))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuStreamQuery(stream: *mut c_void) -> u32 {
    cuStreamSynchronize(stream)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, _flags: c_uint) -> u32 {
    let mut driver = driver();
    let create = |driver: &mut Driver| -> Answer<u64> {
        driver.device()?;
        let h = driver.new_handle();
        driver.device()?.events.insert(h, None);
        Ok(h)
    };
    match create(&mut driver) {
        // SAFETY: the caller passes a valid pointer or null.
        Ok(h) => answer(unsafe { put(event, h as usize as *mut c_void) }),
        Err(code) => code,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventRecord(event: *mut c_void, stream: *mut c_void) -> u32 {
    let mut driver = driver();
    let record = |driver: &mut Driver| -> Answer {
        driver.check_stream(handle(stream))?;
        let slot = driver.device()?.events.get_mut(&handle(event)).ok_or(code::INVALID_HANDLE)?;
        *slot = Some(Instant::now());
        Ok(())
    };
    answer(record(&mut driver))
}

/// When `event` was last recorded: `CUDA_ERROR_INVALID_HANDLE` if it was never recorded.
fn recorded(driver: &mut Driver, event: *mut c_void) -> Answer<Instant> {
    driver.device()?.events.get(&handle(event)).copied().flatten().ok_or(code::INVALID_HANDLE)
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventSynchronize(event: *mut c_void) -> u32 {
    let mut driver = driver();
    let wait = |driver: &mut Driver| -> Answer {
        let known = driver.device()?.events.contains_key(&handle(event));
        if known { Ok(()) } else { Err(code::INVALID_HANDLE) }
    };
    answer(wait(&mut driver))
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventQuery(event: *mut c_void) -> u32 {
    cuEventSynchronize(event)
}

/// Milliseconds from `start`'s recording to `end`'s, by the host's clock (negative if `end` was
/// recorded first, as the driver allows).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventElapsedTime(milliseconds: *mut f32, start: *mut c_void, end: *mut c_void) -> u32 {
    let mut driver = driver();
    let times = recorded(&mut driver, start).and_then(|s| Ok((s, recorded(&mut driver, end)?)));
    let (start, end) = match times {
        Ok(times) => times,
        Err(code) => return code,
    };
    let ms = if end >= start {
        end.duration_since(start).as_secs_f64() * 1e3
    } else {
        -(start.duration_since(end).as_secs_f64() * 1e3)
    };
    // SAFETY: the caller passes a valid pointer or null.
    answer(unsafe { put(milliseconds, ms as f32) })
}

#[unsafe(no_mangle)]
pub extern "C" fn cuEventDestroy_v2(event: *mut c_void) -> u32 {
    let mut driver = driver();
    let destroy = |driver: &mut Driver| -> Answer {
        driver.device()?.events.remove(&handle(event)).map(|_| ()).ok_or(code::INVALID_HANDLE)
    };
    answer(destroy(&mut driver))
}
