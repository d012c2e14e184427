//! Device buffers: [`CudaBuffer`], one allocation of f32 values taken from (and returned to) the
//! backend's pool, and the downcasts from the tensor crate's `dyn DeviceBuffer`.

use std::any::Any;
use std::sync::Arc;

use cust::context::{Context, CurrentContext};
use cust::error::CudaError;
use cust::memory::DeviceBuffer as CuBuffer;

use kernelab_tensor::{DeviceBuffer, Error, Pool, Result};

use crate::backend::CudaBackend;
use crate::driver::{code, device_error};

/// One device allocation; freed with its context made current, whichever thread drops it.
#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) buffer: CuBuffer<f32>,
    context: Arc<Context>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // The buffer frees itself after this; the free needs the context current on this thread.
        let _ = CurrentContext::set_current(&*self.context);
    }
}

/// A device buffer of `len` f32 values, returned to its device's pool when dropped. Reuse is
/// safe in stream order: work launched before the drop runs before work launched after reuse.
#[derive(Debug)]
pub struct CudaBuffer {
    pub(crate) allocation: Option<Allocation>,
    len: usize,
    pool: Arc<Pool<Allocation>>,
}

impl CudaBuffer {
    /// The device address of the first value (0 for an empty buffer).
    pub fn device_address(&self) -> u64 {
        self.allocation.as_ref().map_or(0, |a| a.buffer.as_device_ptr().as_raw())
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

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl CudaBackend {
    /// A buffer of `len` values: from the pool when one of that length is free, else a fresh
    /// device allocation; out of memory is [`Error::OutOfMemory`].
    pub(crate) fn allocate(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        let pool = self.pool.clone();
        if len == 0 {
            return Ok(Box::new(CudaBuffer { allocation: None, len, pool }));
        }
        if let Some(allocation) = self.pool.take(len) {
            return Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, pool }));
        }
        self.bind()?;
        // SAFETY: f32 has no invalid bit patterns; the contents are unspecified, as `alloc` promises.
        let buffer = unsafe { CuBuffer::<f32>::uninitialized(len) }.map_err(|e| match e {
            CudaError::OutOfMemory => {
                // The device's free and total memory, as the driver counts them now.
                let free = cust::memory::mem_get_info()
                    .map(|(free, total)| format!("; {} of {} MiB free", free >> 20, total >> 20))
                    .unwrap_or_default();
                Error::OutOfMemory { device: format!("cuda ({}{free})", self.name), bytes: len * 4, len }
            }
            e => device_error(format!("allocating {len} values: {}", code(e))),
        })?;
        let allocation = Allocation { buffer, context: Arc::clone(&self.context) };
        Ok(Box::new(CudaBuffer { allocation: Some(allocation), len, pool }))
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
