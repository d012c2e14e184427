//! Host memory as a device buffer, recycled through the device's [`Pool`].

use std::any::Any;
use std::sync::Arc;

use kernelab_tensor::{DeviceBuffer, Error, Pool, Result};

/// A CPU "device" buffer: a vector of f32 values, returned to its pool when dropped.
#[derive(Debug)]
pub struct CpuBuffer {
    data: Vec<f32>,
    pool: Option<Arc<Pool<Vec<f32>>>>,
}

impl DeviceBuffer for CpuBuffer {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give(self.data.len(), std::mem::take(&mut self.data));
        }
    }
}

impl CpuBuffer {
    /// A zero-filled buffer outside any pool; an allocation the system refuses is
    /// [`Error::OutOfMemory`].
    pub fn try_new(len: usize) -> Result<Self> {
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
            device: "cpu".into(),
            bytes: len.saturating_mul(4),
            len,
        })?;
        data.resize(len, 0.0);
        Ok(Self { data, pool: None })
    }

    /// A buffer of `len` values from `pool` (stale contents) or, failing that, a new one; either
    /// way it returns to `pool` when dropped.
    pub fn pooled(len: usize, pool: &Arc<Pool<Vec<f32>>>) -> Result<Self> {
        let data = match pool.take(len) {
            Some(data) => data,
            None => Self::try_new(len)?.into_values(),
        };
        Ok(Self { data, pool: Some(pool.clone()) })
    }

    pub fn values(&self) -> &[f32] {
        &self.data
    }

    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    fn into_values(mut self) -> Vec<f32> {
        std::mem::take(&mut self.data)
    }
}

fn foreign(what: &dyn DeviceBuffer) -> Error {
    Error::Device {
        backend: "cpu".into(),
        message: format!("a buffer of another backend was passed to the CPU: {what:?}"),
    }
}

/// The values of a buffer that must belong to the CPU backend.
pub fn host(buf: &dyn DeviceBuffer) -> Result<&[f32]> {
    buf.as_any().downcast_ref::<CpuBuffer>().map(CpuBuffer::values).ok_or_else(|| foreign(buf))
}

/// The values of a buffer that must belong to the CPU backend, for writing.
pub fn host_mut(buf: &mut dyn DeviceBuffer) -> Result<&mut [f32]> {
    if !buf.as_any().is::<CpuBuffer>() {
        return Err(foreign(buf));
    }
    let cpu = buf.as_any_mut().downcast_mut::<CpuBuffer>().expect("the type was checked just above");
    Ok(cpu.values_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_buffers_are_reused_by_length() {
        let pool = Arc::new(Pool::default());
        let mut a = CpuBuffer::pooled(1000, &pool).unwrap();
        a.values_mut()[0] = 7.0;
        let address = a.values().as_ptr();
        drop(a);
        let b = CpuBuffer::pooled(1000, &pool).unwrap();
        assert_eq!((b.values().as_ptr(), b.values()[0]), (address, 7.0), "the same memory, contents stale");
        let c = CpuBuffer::pooled(999, &pool).unwrap();
        assert_ne!(c.values().as_ptr(), address);
    }
}
