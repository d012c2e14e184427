//! Host memory as a device buffer.

use std::any::Any;

use kernelab_tensor::{DeviceBuffer, Error, Result};

/// A CPU "device" buffer: a plain vector of f32 values.
#[derive(Debug)]
pub struct CpuBuffer(pub Vec<f32>);

impl DeviceBuffer for CpuBuffer {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl CpuBuffer {
    /// A zero-filled buffer; an allocation the system refuses is [`Error::OutOfMemory`].
    pub fn try_new(len: usize) -> Result<Self> {
        let mut data = Vec::new();
        data.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
            device: "cpu".into(),
            bytes: len.saturating_mul(4),
            len,
        })?;
        data.resize(len, 0.0);
        Ok(Self(data))
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
    buf.as_any().downcast_ref::<CpuBuffer>().map(|b| b.0.as_slice()).ok_or_else(|| foreign(buf))
}

/// The values of a buffer that must belong to the CPU backend, for writing.
pub fn host_mut(buf: &mut dyn DeviceBuffer) -> Result<&mut [f32]> {
    if !buf.as_any().is::<CpuBuffer>() {
        return Err(foreign(buf));
    }
    let cpu = buf.as_any_mut().downcast_mut::<CpuBuffer>().expect("the type was checked just above");
    Ok(cpu.0.as_mut_slice())
}
