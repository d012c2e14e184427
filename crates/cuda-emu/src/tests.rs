//! The driver's life cycle through its C entry points, in one test (the driver is one per
//! process): a context, memory, a module, a launch that computes, the refusals that leave the
//! context usable, a kernel fault that loses it, and a fresh context after the last release.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr::{null, null_mut};

use crate::context::*;
use crate::memory::*;
use crate::module::*;
use crate::sync::*;
use crate::{code, kernelab_emu_last_fault};

/// `y[i] = 2 * x[i] + offset` for `i < n`, one thread per element.
const TWICE: &str = "
.version 8.0
.target sm_80
.address_size 64
.visible .entry twice(.param .u64 x, .param .u64 y, .param .u32 n, .param .u32 offset)
{
    .reg .pred %p;
    .reg .b32 %i, %n, %off;
    .reg .b64 %a, %b, %at;
    .reg .f32 %v;
    ld.param.u64 %a, [x];
    ld.param.u64 %b, [y];
    ld.param.u32 %n, [n];
    ld.param.u32 %off, [offset];
    mov.u32 %i, %tid.x;
    setp.ge.u32 %p, %i, %n;
    @%p bra DONE;
    mul.wide.u32 %at, %i, 4;
    add.s64 %a, %a, %at;
    ld.global.f32 %v, [%a];
    add.f32 %v, %v, %v;
    add.u32 %i, %i, %off;
    mul.wide.u32 %at, %i, 4;
    add.s64 %b, %b, %at;
    st.global.f32 [%b], %v;
DONE:
    ret;
}
";

fn c_text(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

fn last_fault() -> String {
    let mut buffer = [0 as c_char; 512];
    // SAFETY: the buffer holds 512 bytes.
    unsafe { kernelab_emu_last_fault(buffer.as_mut_ptr(), buffer.len()) };
    // SAFETY: the driver NUL-terminates what it writes.
    unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
}

/// Launches `twice` over one block of `threads` threads.
///
/// # Safety
/// `x` and `y` are device addresses (or anything, for a fault).
unsafe fn launch(f: *mut c_void, threads: u32, (x, y, n, offset): (u64, u64, u32, u32)) -> u32 {
    let (mut x, mut y, mut n, mut offset) = (x, y, n, offset);
    let mut params =
        [(&raw mut x).cast::<c_void>(), (&raw mut y).cast(), (&raw mut n).cast(), (&raw mut offset).cast()];
    // SAFETY: four parameters, as `twice` declares.
    unsafe { cuLaunchKernel(f, 1, 1, 1, threads, 1, 1, 0, null_mut(), params.as_mut_ptr(), null_mut()) }
}

#[test]
fn a_context_computes_refuses_faults_and_starts_afresh() {
    // SAFETY: every pointer passed below is a live local of the right type and size.
    unsafe {
        let mut count: c_int = -1;
        assert_eq!(cuDeviceGetCount(&mut count), code::NOT_INITIALIZED, "before cuInit");
        assert_eq!(cuInit(0), code::SUCCESS);
        assert_eq!((cuDeviceGetCount(&mut count), count), (code::SUCCESS, 1));
        let mut ctx = null_mut();
        assert_eq!(cuDevicePrimaryCtxRetain(&mut ctx, 0), code::SUCCESS);
        let mut x = 0u64;
        assert_eq!(cuMemAlloc_v2(&mut x, 16), code::INVALID_CONTEXT, "no current context yet");
        assert_eq!(cuCtxSetCurrent(ctx), code::SUCCESS);

        let (mut x, mut y) = (0u64, 0u64);
        assert_eq!(cuMemAlloc_v2(&mut x, 16), code::SUCCESS);
        assert_eq!(cuMemAlloc_v2(&mut y, 16), code::SUCCESS);
        let input = [1.0f32, 2.0, 3.0, 4.0];
        assert_eq!(cuMemcpyHtoD_v2(x, input.as_ptr().cast(), 16), code::SUCCESS);
        assert_eq!(cuMemsetD32_v2(y, 0x7fc0_0000, 4), code::SUCCESS);

        let mut module = null_mut();
        let image = c_text(TWICE);
        assert_eq!(cuModuleLoadData(&mut module, image.as_ptr().cast()), code::SUCCESS);
        let mut f = null_mut();
        assert_eq!(cuModuleGetFunction(&mut f, module, c"nothing".as_ptr()), code::NOT_FOUND);
        assert_eq!(cuModuleGetFunction(&mut f, module, c"twice".as_ptr()), code::SUCCESS);

        let (mut start, mut end) = (null_mut(), null_mut());
        assert_eq!(cuEventCreate(&mut start, 0) | cuEventCreate(&mut end, 0), code::SUCCESS);
        assert_eq!(cuEventRecord(start, null_mut()), code::SUCCESS);
        assert_eq!(launch(f, 32, (x, y, 3, 0)), code::SUCCESS);
        assert_eq!(cuEventRecord(end, null_mut()), code::SUCCESS);
        let mut ms = -1.0f32;
        assert_eq!((cuEventElapsedTime(&mut ms, start, end), ms >= 0.0), (code::SUCCESS, true));
        let mut out = [0.0f32; 4];
        assert_eq!(cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), y, 16), code::SUCCESS);
        assert_eq!(out[..3], [2.0, 4.0, 6.0]);
        assert!(out[3].is_nan(), "the fourth value was not written");

        // The Async forms do their work at once on a live stream and refuse an unknown one.
        let (values, mut back) = ([5.0f32, 6.0, 7.0, 8.0], [0.0f32; 4]);
        assert_eq!(cuMemcpyHtoDAsync_v2(y, values.as_ptr().cast(), 16, null_mut()), code::SUCCESS);
        assert_eq!(cuMemcpyDtoDAsync_v2(x, y, 16, null_mut()), code::SUCCESS);
        assert_eq!(cuMemsetD32Async(x, 1.0f32.to_bits(), 2, null_mut()), code::SUCCESS);
        assert_eq!(cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), x, 16, null_mut()), code::SUCCESS);
        assert_eq!(back, [1.0, 1.0, 7.0, 8.0]);
        let unknown = 0xdead as *mut c_void;
        assert_eq!(cuMemsetD32Async(x, 0, 4, unknown), code::INVALID_HANDLE);
        assert_eq!(cuMemcpyHtoDAsync_v2(x, input.as_ptr().cast(), 16, unknown), code::INVALID_HANDLE);
        assert_eq!(cuMemcpyDtoDAsync_v2(x, y, 16, unknown), code::INVALID_HANDLE);
        assert_eq!(cuMemcpyDtoHAsync_v2(back.as_mut_ptr().cast(), y, 16, unknown), code::INVALID_HANDLE);
        assert_eq!(back, [1.0, 1.0, 7.0, 8.0], "a refused copy writes nothing");
        assert_eq!(cuMemcpyDtoH_v2(back.as_mut_ptr().cast(), x, 16), code::SUCCESS);
        assert_eq!(back, [1.0, 1.0, 7.0, 8.0], "a refused fill or copy leaves the device memory as it was");

        // Refusals: the call fails, the context stays usable.
        assert_eq!(launch(f, 2048, (x, y, 3, 0)), code::INVALID_VALUE);
        assert!(last_fault().contains("2048"), "{}", last_fault());
        let (mut free, mut total) = (0usize, 0usize);
        assert_eq!(cuMemGetInfo_v2(&mut free, &mut total), code::SUCCESS);
        let mut huge = 0u64;
        assert_eq!(cuMemAlloc_v2(&mut huge, total + 1), code::OUT_OF_MEMORY);
        assert_eq!(cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), y + 8, 16), code::INVALID_VALUE, "past the end");
        let (mut broken, mut log) = (null_mut(), [0u8; 256]);
        let mut keys = [5, 6];
        let mut values = [log.as_mut_ptr().cast::<c_void>(), log.len() as *mut c_void];
        let bad = c_text(&TWICE.replace("add.f32 %v, %v, %v;", "frobnicate.f32 %v;"));
        let loaded = cuModuleLoadDataEx(&mut broken, bad.as_ptr().cast(), 2, keys.as_mut_ptr(), values.as_mut_ptr());
        let log = CStr::from_bytes_until_nul(&log).unwrap().to_string_lossy().into_owned();
        assert_eq!(loaded, code::INVALID_PTX);
        assert!(log.contains("line 21"), "{log}");
        assert_eq!(cuCtxSynchronize(), code::SUCCESS);

        // A store one past y's end: the launch is queued (succeeds), the context is lost.
        assert_eq!(launch(f, 32, (x, y, 4, 1)), code::SUCCESS);
        assert!(last_fault().contains("twice") && last_fault().contains("thread (3,0,0)"), "{}", last_fault());
        assert_eq!(cuCtxSynchronize(), code::ILLEGAL_ADDRESS);
        assert_eq!(cuMemcpyDtoH_v2(out.as_mut_ptr().cast(), y, 16), code::ILLEGAL_ADDRESS);
        assert_eq!(cuMemAlloc_v2(&mut huge, 4), code::ILLEGAL_ADDRESS);

        // The last release ends the context; a new one starts clean.
        assert_eq!(cuDevicePrimaryCtxRelease_v2(0), code::SUCCESS);
        assert_eq!(cuCtxSynchronize(), code::INVALID_CONTEXT);
        assert_eq!(cuDevicePrimaryCtxRetain(&mut ctx, 0), code::SUCCESS);
        assert_eq!(cuCtxSetCurrent(ctx), code::SUCCESS);
        assert_eq!(cuCtxSynchronize(), code::SUCCESS);
        assert_eq!(cuMemAlloc_v2(&mut x, 16), code::SUCCESS);
        assert_eq!(cuMemFree_v2(x), code::SUCCESS);
        assert_eq!(cuMemFree_v2(x), code::INVALID_VALUE, "freed twice");
        let mut name: *const c_char = null();
        assert_eq!(crate::cuGetErrorName(700, &mut name), code::SUCCESS);
        assert_eq!(CStr::from_ptr(name), c"CUDA_ERROR_ILLEGAL_ADDRESS");
        assert_eq!(cuDevicePrimaryCtxRelease_v2(0), code::SUCCESS);
    }
}
