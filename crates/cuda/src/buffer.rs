//! Device buffers: [`CudaBuffer`], one allocation of f32 values, or of bf16 or f16 ones (2 bytes
//! each), taken from (and returned to) the backend's pool of its width, the host-side conversions
//! of narrow uploads and downloads, and the downcasts from the tensor crate's `dyn DeviceBuffer`.

use std::sync::Arc;

use cust::context::{Context, CurrentContext};
use cust::error::CudaError;
use cust::memory::DeviceBuffer as CuBuffer;

use kernelab_tensor::{DeviceBuffer, Dtype, Error, Pool, Result};

use crate::backend::CudaBackend;
use crate::driver::{code, device_error};

/// The device memory of one allocation: f32 values, or the bits of 16-bit ones (bf16 or f16).
#[derive(Debug)]
pub(crate) enum Words {
    F32(CuBuffer<f32>),
    Half(CuBuffer<u16>),
}

/// One device allocation; freed with its context made current, whichever thread drops it.
#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) words: Words,
    context: Arc<Context>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // The buffer frees itself after this; the free needs the context current on this thread.
        let _ = CurrentContext::set_current(&*self.context);
    }
}

/// A device buffer of `len` values stored as `dtype`, returned to its device's pool of that width
/// when dropped. Reuse is safe in stream order: work launched before the drop runs before work
/// launched after reuse.
#[derive(Debug)]
pub struct CudaBuffer {
    pub(crate) allocation: Option<Allocation>,
    len: usize,
    dtype: Dtype,
    pool: Arc<Pool<Allocation>>,
}

impl CudaBuffer {
    /// The device address of the first value (0 for an empty buffer).
    pub fn device_address(&self) -> u64 {
        self.allocation.as_ref().map_or(0, |a| match &a.words {
            Words::F32(b) => b.as_device_ptr().as_raw(),
            Words::Half(b) => b.as_device_ptr().as_raw(),
        })
    }
}

/// `src` rounded to `dtype` (bf16 or f16, to nearest even; f16 overflows to ±∞), as the bits a
/// narrow buffer stores: the conversion [`Dtype::round`] describes.
pub fn narrow_bits(dtype: Dtype, src: &[f32]) -> Vec<u16> {
    match dtype {
        Dtype::F16 => src.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect(),
        _ => src.iter().map(|&x| half::bf16::from_f32(x).to_bits()).collect(),
    }
}

/// The 16-bit values `bits` of `dtype`, widened exactly into `dst`.
pub fn widen_bits(dtype: Dtype, bits: &[u16], dst: &mut [f32]) {
    for (d, &b) in dst.iter_mut().zip(bits) {
        *d = match dtype {
            Dtype::F16 => half::f16::from_bits(b).to_f32(),
            _ => half::bf16::from_bits(b).to_f32(),
        };
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        if let Some(allocation) = self.allocation.take() {
            self.pool.give(self.len, allocation);
        }
    }
}

impl DeviceBuffer for CudaBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }
}

impl CudaBackend {
    /// A buffer of `len` values stored as `dtype`: from the pool of its width when one of that
    /// length is free, else a fresh device allocation; out of memory is [`Error::OutOfMemory`].
    pub(crate) fn allocate(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        dtype.storable("cuda")?;
        let pool = if dtype.is_narrow() { self.half_pool.clone() } else { self.pool.clone() };
        if len == 0 {
            return Ok(Box::new(CudaBuffer { allocation: None, len, dtype, pool }));
        }
        if let Some(allocation) = pool.take(len) {
            return Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, dtype, pool }));
        }
        self.bind()?;
        let bytes = len * dtype.bytes();
        let refused = |e: CudaError| match e {
            CudaError::OutOfMemory => {
                // The device's free and total memory, as the driver counts them now.
                let free = cust::memory::mem_get_info()
                    .map(|(free, total)| format!("; {} of {} MiB free", free >> 20, total >> 20))
                    .unwrap_or_default();
                Error::OutOfMemory { device: format!("cuda ({}{free})", self.name), bytes, len }
            }
            e => device_error(format!(
                "allocating {len} {dtype} values: {}{}",
                code(e),
                crate::emulated::explain(e as u32)
            )),
        };
        // SAFETY: f32 and u16 have no invalid bit patterns; the contents are unspecified, as
        // `alloc` promises.
        let words = if dtype.is_narrow() {
            Words::Half(unsafe { CuBuffer::<u16>::uninitialized(len) }.map_err(refused)?)
        } else {
            Words::F32(unsafe { CuBuffer::<f32>::uninitialized(len) }.map_err(refused)?)
        };
        let allocation = Allocation { words, context: Arc::clone(&self.context) };
        Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, dtype, pool }))
    }
}

pub(crate) fn own(b: &dyn DeviceBuffer) -> Result<&CudaBuffer> {
    b.as_any()
        .downcast_ref::<CudaBuffer>()
        .ok_or_else(|| device_error(format!("a buffer of another backend was passed to cuda: {b:?}")))
}

pub(crate) fn own_mut(b: &mut dyn DeviceBuffer) -> Result<&mut CudaBuffer> {
    let description = format!("{b:?}");
    b.as_any_mut()
        .downcast_mut::<CudaBuffer>()
        .ok_or_else(|| device_error(format!("a buffer of another backend was passed to cuda: {description}")))
}
