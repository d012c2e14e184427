//! Device buffers of the WGPU backend and the transfers in and out of them.
//!
//! A buffer holds `len` values of its [`Dtype`]: f32 (4 bytes each) or f16 (2 bytes each; WGSL's
//! `f16`, IEEE binary16). Its size is rounded up to 16 bytes, so that it can be read as
//! `array<vec4<f32>>` or `array<vec4<f16>>` and every storage binding is a multiple of 4 bytes
//! as WebGPU requires; an f16 buffer of odd length has one unused half at its end. bf16 has no
//! WGSL type and is refused.
//!
//! Values cross the bus as f32 on the host's side: an upload into an f16 buffer rounds each
//! value to the nearest f16, ties to even (±∞ beyond 65504, NaN kept), on the host with the
//! `half` crate, then copies 2 bytes per value; a download copies 2 bytes per value and widens
//! them exactly.

use std::sync::Arc;

use kernelab_tensor::{DeviceBuffer, Dtype, Error, Pool, Result};

use crate::{WgpuBackend, device_error, own};

/// A device buffer: a wgpu storage buffer of `len` values stored as `dtype`, returned to its
/// device's pool when dropped. Reuse is safe in queue order: work recorded before the drop runs
/// before any work recorded after the buffer is handed out again.
#[derive(Debug)]
pub struct WgpuBuffer {
    pub(crate) buffer: wgpu::Buffer,
    len: usize,
    dtype: Dtype,
    /// The pool keeps buffers by their size in 4-byte words, whatever their dtype.
    pool: Arc<Pool<wgpu::Buffer>>,
}

impl Drop for WgpuBuffer {
    fn drop(&mut self) {
        self.pool.give(words(self.buffer.size()), self.buffer.clone());
    }
}

impl DeviceBuffer for WgpuBuffer {
    fn len(&self) -> usize {
        self.len
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }
}

/// Bytes of a buffer of `len` values of `dtype`: at least one value, rounded up to 16.
pub fn padded_bytes(len: usize, dtype: Dtype) -> u64 {
    (len.max(1) as u64).saturating_mul(dtype.bytes() as u64).div_ceil(16).saturating_mul(16)
}

fn words(bytes: u64) -> usize {
    (bytes / 4) as usize
}

/// `values` rounded to f16 (to nearest, ties to even), as the bytes an f16 buffer holds, padded
/// with a zero half to a multiple of 4 bytes (a copy's granularity).
pub fn f16_bytes(values: &[f32]) -> Vec<u8> {
    let mut halves: Vec<u16> = values.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
    if halves.len() % 2 == 1 {
        halves.push(0);
    }
    bytemuck::cast_slice(&halves).to_vec()
}

/// The first `out.len()` halves of `bytes`, widened exactly to f32.
pub fn widen_f16(bytes: &[u8], out: &mut [f32]) {
    for (v, h) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *v = half::f16::from_bits(u16::from_le_bytes([h[0], h[1]])).to_f32();
    }
}

impl WgpuBackend {
    /// [`Backend::alloc_as`](kernelab_tensor::Backend::alloc_as): f32 and f16 buffers; bf16 is [`Error::NoStorage`].
    pub(crate) fn allocate(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        dtype.storable("wgpu")?;
        if dtype == Dtype::Bf16 {
            return Err(Error::NoStorage {
                backend: "wgpu".into(),
                dtype,
                why: ": WGSL has no bf16 type (use f16 or f32 on this backend)".into(),
            });
        }
        let bytes = padded_bytes(len, dtype);
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(device_error(format!(
                "a buffer of {} MiB exceeds this adapter's largest storage binding ({} MiB); use a smaller shape",
                bytes >> 20,
                limit >> 20
            )));
        }
        let pool = self.pool.clone();
        if let Some(buffer) = self.pool.take(words(bytes)) {
            return Ok(Box::new(WgpuBuffer { buffer, len, dtype, pool }));
        }
        let buffer = self
            .checked("alloc", || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .map_err(|_| Error::OutOfMemory {
                device: format!("wgpu ({})", self.info.name),
                bytes: bytes as usize,
                len,
            })?;
        Ok(Box::new(WgpuBuffer { buffer, len, dtype, pool }))
    }

    /// [`Backend::upload`](kernelab_tensor::Backend::upload): f32 values as they are, or rounded to f16 for an f16 buffer.
    pub(crate) fn write(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        if src.is_empty() {
            return Ok(());
        }
        self.flush()?;
        let narrow = dst.dtype() == Dtype::F16;
        let dst = own(dst)?;
        let halves;
        let bytes: &[u8] = if narrow {
            halves = f16_bytes(src);
            &halves
        } else {
            bytemuck::cast_slice(src)
        };
        self.checked("upload", || self.queue.write_buffer(dst, 0, bytes))
    }

    /// [`Backend::download`](kernelab_tensor::Backend::download): f32 values as they are, or an f16 buffer's values widened.
    pub(crate) fn read(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        let width = src.dtype().bytes();
        let bytes = (dst.len() * width).next_multiple_of(4) as u64;
        let src = own(src)?;
        self.flush()?;
        let staging = self.checked("download", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("download") });
            encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
            self.queue.submit([encoder.finish()]);
            staging
        })?;
        let bytes = self.read_back(&staging)?;
        if width == 2 {
            widen_f16(&bytes, dst);
        } else {
            dst.copy_from_slice(bytemuck::cast_slice(&bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_padded_to_16_bytes_per_dtype() {
        assert_eq!(padded_bytes(0, Dtype::F16), 16);
        assert_eq!(padded_bytes(7, Dtype::F16), 16);
        assert_eq!(padded_bytes(9, Dtype::F16), 32);
        assert_eq!(padded_bytes(9, Dtype::F32), 48);
    }

    #[test]
    fn f16_bytes_round_to_nearest_even_and_widen_back() {
        // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: the even one, 1, wins; 1 + 3·2⁻¹¹ goes up.
        let values = [1.0 + (-11f32).exp2(), 1.0 + 3.0 * (-11f32).exp2(), 70000.0, -0.0, f32::NAN];
        let bytes = f16_bytes(&values);
        assert_eq!(bytes.len(), 12, "five halves padded to six");
        let mut back = [0f32; 5];
        widen_f16(&bytes, &mut back);
        assert_eq!(back[..3], [1.0, 1.0 + 2.0 * (-10f32).exp2(), f32::INFINITY]);
        assert!(back[3] == 0.0 && back[3].is_sign_negative() && back[4].is_nan());
    }
}
