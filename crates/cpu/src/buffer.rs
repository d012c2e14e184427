//! Host memory as a device buffer, recycled through the device's [`Pool`], with a guard zone on
//! each side.
//!
//! A buffer of `len` values is one allocation of `GUARD + len + GUARD` values: the values a kernel
//! sees are the middle, and the [`GUARD`] values before and after it hold [`GUARD_BITS`], a
//! signalling-NaN bit pattern that no kernel computes. A kernel that writes outside its output (a
//! missing bounds check, an off-by-one, a tile that overhangs the last row) changes a guard, and
//! [`CpuBuffer::guard_violation`] names the side, how many values changed and the changed value
//! nearest the buffer.
//! The guards are filled when the buffer is allocated, new or taken back from the pool, and
//! never again while it lives, so a violation stays visible until the buffer is dropped.
//!
//! A narrow buffer ([`CpuBuffer::try_new_as`], bf16 or f16) holds its values as `u16` bits
//! between guard zones of the same [`GUARD`] values, each the signalling-NaN pattern of its type
//! ([`guard_bits16`]), recycled through the device's pool of `u16` storage
//! ([`CpuBuffer::pooled_as`]).

use std::sync::Arc;

use kernelab_tensor::{DeviceBuffer, Dtype, Error, Pool, Result};

/// Values of guard zone on each side of a buffer (256 bytes, four cache lines).
pub const GUARD: usize = 64;

/// What every guard value holds: a signalling NaN (exponent all ones, quiet bit clear, payload
/// `0x25A5A5`). Arithmetic never produces a signalling NaN and kernels poison with the quiet
/// `f32::NAN`, so a changed bit pattern means a write. Compared as bits, never as floats.
pub const GUARD_BITS: u32 = 0x7FA5_A5A5;

/// The guard value of a narrow buffer of `dtype`: a signalling NaN of that type (exponent all
/// ones, quiet bit clear, payload non-zero), which no conversion or kernel produces.
pub const fn guard_bits16(dtype: Dtype) -> u16 {
    match dtype {
        // bf16: sign 0, exponent 0xFF, quiet bit (0x40) clear, payload 0x25.
        Dtype::Bf16 | Dtype::F32 | Dtype::Tf32 => 0x7FA5,
        // f16: sign 0, exponent 0x1F, quiet bit (0x200) clear, payload 0xA5.
        Dtype::F16 => 0x7CA5,
    }
}

/// `storage` less its `GUARD` values at each end: a buffer's values; empty where `storage` holds
/// no more than the guards (the unused vector of a buffer of the other width).
fn between_guards<T>(storage: &[T]) -> &[T] {
    storage.get(GUARD..storage.len().saturating_sub(GUARD)).unwrap_or(&[])
}

/// [`between_guards`] for writing.
fn between_guards_mut<T>(storage: &mut [T]) -> &mut [T] {
    let end = storage.len().saturating_sub(GUARD);
    storage.get_mut(GUARD..end).unwrap_or(&mut [])
}

/// A CPU "device" buffer: a vector of f32 values (or, narrow, of bf16/f16 bits) between two
/// guard zones; an f32 one returns to its pool when dropped.
#[derive(Debug)]
pub struct CpuBuffer {
    /// `GUARD` guard values, the buffer's values, `GUARD` guard values (empty when narrow).
    data: Vec<f32>,
    /// The same layout in bf16 or f16 bits for a narrow buffer (empty for an f32 one).
    bits: Vec<u16>,
    dtype: Dtype,
    pool: Option<Arc<Pool<Vec<f32>>>>,
    /// Where a pooled narrow buffer's bits return when dropped.
    bits_pool: Option<Arc<Pool<Vec<u16>>>>,
}

impl DeviceBuffer for CpuBuffer {
    fn len(&self) -> usize {
        match self.dtype {
            Dtype::F32 => self.data.len() - 2 * GUARD,
            _ => self.bits.len() - 2 * GUARD,
        }
    }

    fn dtype(&self) -> Dtype {
        self.dtype
    }
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give(self.len(), std::mem::take(&mut self.data));
        }
        if let Some(pool) = &self.bits_pool {
            pool.give(self.len(), std::mem::take(&mut self.bits));
        }
    }
}

impl CpuBuffer {
    /// A zero-filled buffer outside any pool, its guards filled; an allocation the system refuses
    /// is [`Error::OutOfMemory`].
    pub fn try_new(len: usize) -> Result<Self> {
        let total = len.checked_add(2 * GUARD);
        let refused = || Error::OutOfMemory { device: "cpu".into(), bytes: len.saturating_mul(4), len };
        let mut data = Vec::new();
        data.try_reserve_exact(total.ok_or_else(refused)?).map_err(|_| refused())?;
        data.resize(len + 2 * GUARD, 0.0);
        let mut buffer = Self { data, bits: Vec::new(), dtype: Dtype::F32, pool: None, bits_pool: None };
        buffer.fill_guards();
        Ok(buffer)
    }

    /// A zero-filled buffer of `len` values stored as `dtype`, its guards filled, outside any
    /// pool; an allocation the system refuses is [`Error::OutOfMemory`].
    pub fn try_new_as(len: usize, dtype: Dtype) -> Result<Self> {
        if dtype == Dtype::F32 {
            return Self::try_new(len);
        }
        let refused = || Error::OutOfMemory { device: "cpu".into(), bytes: len.saturating_mul(2), len };
        let mut bits = Vec::new();
        bits.try_reserve_exact(len.checked_add(2 * GUARD).ok_or_else(refused)?).map_err(|_| refused())?;
        bits.resize(len + 2 * GUARD, 0);
        let mut buffer = Self { data: Vec::new(), bits, dtype, pool: None, bits_pool: None };
        buffer.fill_guards();
        Ok(buffer)
    }

    /// The bf16 or f16 bits of a narrow buffer (the guards excluded); empty for an f32 buffer.
    pub fn bits(&self) -> &[u16] {
        between_guards(&self.bits)
    }

    /// [`CpuBuffer::bits`] for writing.
    pub fn bits_mut(&mut self) -> &mut [u16] {
        between_guards_mut(&mut self.bits)
    }

    /// A buffer of `len` values from `pool` (stale contents, fresh guards) or, failing that, a new
    /// one; either way it returns to `pool` when dropped.
    pub fn pooled(len: usize, pool: &Arc<Pool<Vec<f32>>>) -> Result<Self> {
        let data = match pool.take(len) {
            Some(data) => data,
            None => Self::try_new(len)?.into_storage(),
        };
        let mut buffer = Self { data, bits: Vec::new(), dtype: Dtype::F32, pool: Some(pool.clone()), bits_pool: None };
        buffer.fill_guards();
        Ok(buffer)
    }

    /// A narrow buffer of `len` values from `pool` (stale contents, fresh guards) or, failing
    /// that, a new one; either way its bits return to `pool` when dropped.
    pub fn pooled_as(len: usize, dtype: Dtype, pool: &Arc<Pool<Vec<u16>>>) -> Result<Self> {
        let mut buffer = match pool.take(len) {
            Some(bits) => Self { data: Vec::new(), bits, dtype, pool: None, bits_pool: None },
            None => Self::try_new_as(len, dtype)?,
        };
        buffer.bits_pool = Some(pool.clone());
        buffer.fill_guards();
        Ok(buffer)
    }

    /// The buffer's f32 values (the guards excluded); empty for a narrow buffer (see
    /// [`CpuBuffer::bits`]).
    pub fn values(&self) -> &[f32] {
        between_guards(&self.data)
    }

    /// The buffer's f32 values for writing (the guards excluded); empty for a narrow buffer.
    pub fn values_mut(&mut self) -> &mut [f32] {
        between_guards_mut(&mut self.data)
    }

    /// Whether a guard value changed since the buffer was allocated: for each side that did, how
    /// many values changed and the changed one nearest the buffer: before it, the last, as an
    /// offset from its first value (`-1` is the value just before it); after it, the first, as an
    /// offset from its end (`+0` is the value just past its last one). `None` when both guards
    /// are intact.
    pub fn guard_violation(&self) -> Option<String> {
        let (before, after) = match self.dtype {
            Dtype::F32 => changed_guards(&self.data, |v| v.to_bits() == GUARD_BITS),
            dtype => changed_guards(&self.bits, |&v| v == guard_bits16(dtype)),
        };
        let plural = |n: usize| if n == 1 { "value" } else { "values" };
        let mut sides = Vec::new();
        if let Some(&last) = before.last() {
            let n = before.len();
            sides.push(format!("{n} {} before the start changed (last at -{})", plural(n), GUARD - last));
        }
        if let Some(&first) = after.first() {
            let n = after.len();
            sides.push(format!("{n} {} after the end changed (first at +{first})", plural(n)));
        }
        (!sides.is_empty()).then(|| {
            format!(
                "{} of a buffer of {} values (guard zones of {GUARD} values each side)",
                sides.join(" and "),
                self.len()
            )
        })
    }

    fn fill_guards(&mut self) {
        if self.dtype.is_narrow() {
            let end = self.bits.len() - GUARD;
            let guard = guard_bits16(self.dtype);
            self.bits[..GUARD].fill(guard);
            self.bits[end..].fill(guard);
            return;
        }
        let end = self.data.len() - GUARD;
        let guard = f32::from_bits(GUARD_BITS);
        self.data[..GUARD].fill(guard);
        self.data[end..].fill(guard);
    }

    fn into_storage(mut self) -> Vec<f32> {
        std::mem::take(&mut self.data)
    }
}

/// The positions of the changed guard values of `all` (guards, values, guards): those before
/// the values and those after them, each counted from the start of its zone.
fn changed_guards<T>(all: &[T], intact: impl Fn(&T) -> bool) -> (Vec<usize>, Vec<usize>) {
    let changed =
        |zone: &[T]| -> Vec<usize> { zone.iter().enumerate().filter(|(_, v)| !intact(v)).map(|(i, _)| i).collect() };
    let end = all.len().saturating_sub(GUARD);
    (changed(&all[..GUARD.min(all.len())]), changed(&all[end..]))
}

fn foreign(what: &dyn DeviceBuffer) -> Error {
    Error::Device {
        backend: "cpu".into(),
        message: format!("a buffer of another backend was passed to the CPU: {what:?}"),
    }
}

/// The CPU buffer behind `buf`, which must belong to the CPU backend.
pub fn cpu(buf: &dyn DeviceBuffer) -> Result<&CpuBuffer> {
    buf.as_any().downcast_ref::<CpuBuffer>().ok_or_else(|| foreign(buf))
}

/// A narrow buffer handed to code that reads f32.
fn not_f32(buf: &dyn DeviceBuffer) -> Error {
    Error::DtypeMismatch {
        op: "cpu",
        found: format!("a {} buffer of {} values where f32 is read", buf.dtype(), buf.len()),
        why: "an f32 kernel cannot read narrow storage; pick a variant of its dtype".into(),
    }
}

/// The f32 values of a buffer that must belong to the CPU backend.
pub fn host(buf: &dyn DeviceBuffer) -> Result<&[f32]> {
    let cpu = cpu(buf)?;
    if cpu.dtype.is_narrow() {
        return Err(not_f32(buf));
    }
    Ok(cpu.values())
}

/// The CPU buffer behind `buf`, for writing.
pub fn cpu_mut(buf: &mut dyn DeviceBuffer) -> Result<&mut CpuBuffer> {
    if !buf.as_any().is::<CpuBuffer>() {
        return Err(foreign(buf));
    }
    buf.as_any_mut().downcast_mut::<CpuBuffer>().ok_or_else(|| Error::Device {
        backend: "cpu".into(),
        message: "internal: a CPU buffer could not be borrowed for writing".into(),
    })
}

/// The f32 values of a buffer that must belong to the CPU backend, for writing.
pub fn host_mut(buf: &mut dyn DeviceBuffer) -> Result<&mut [f32]> {
    if buf.dtype().is_narrow() {
        return Err(not_f32(buf));
    }
    Ok(cpu_mut(buf)?.values_mut())
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

    /// Writes `value` at `offset` from the first value of `buf` (negative: into the guard before
    /// it; `len` and beyond: into the guard after it).
    fn poke(buf: &mut CpuBuffer, offset: isize, value: f32) {
        let at = GUARD.checked_add_signed(offset).unwrap();
        buf.data[at] = value;
    }

    #[test]
    fn writes_outside_the_values_are_named_by_side_count_and_nearest_offset() {
        let mut buf = CpuBuffer::try_new(10).unwrap();
        buf.values_mut().fill(f32::NAN);
        assert_eq!((buf.len(), buf.guard_violation()), (10, None), "writing every value touches no guard");
        poke(&mut buf, 12, 0.0);
        poke(&mut buf, 10 + GUARD as isize - 1, 1.0);
        assert_eq!(
            buf.guard_violation().as_deref(),
            Some(
                "2 values after the end changed (first at +2) of a buffer of 10 values (guard zones of 64 values each side)"
            )
        );
        poke(&mut buf, -3, f32::NAN);
        poke(&mut buf, -(GUARD as isize), 5.0);
        let message = buf.guard_violation().unwrap();
        assert!(message.starts_with("2 values before the start changed (last at -3) and 2 values after"), "{message}");
    }

    #[test]
    fn pooled_buffers_get_fresh_guards_when_reused() {
        let pool = Arc::new(Pool::default());
        let mut a = CpuBuffer::pooled(100, &pool).unwrap();
        poke(&mut a, 100, 0.0);
        assert!(a.guard_violation().unwrap().starts_with("1 value after the end changed (first at +0)"));
        let address = a.values().as_ptr();
        drop(a);
        let b = CpuBuffer::pooled(100, &pool).unwrap();
        assert_eq!((b.values().as_ptr(), b.guard_violation()), (address, None), "the same memory, guards refilled");
    }

    #[test]
    fn pooled_narrow_buffers_are_reused_with_fresh_guards() {
        let pool = Arc::new(Pool::default());
        let mut a = CpuBuffer::pooled_as(100, Dtype::Bf16, &pool).unwrap();
        a.bits[GUARD + 100] = 0;
        assert!(a.guard_violation().unwrap().starts_with("1 value after the end changed (first at +0)"));
        let address = a.bits().as_ptr();
        drop(a);
        let b = CpuBuffer::pooled_as(100, Dtype::F16, &pool).unwrap();
        assert_eq!((b.bits().as_ptr(), b.guard_violation()), (address, None), "the same memory, guards refilled");
        assert_eq!(b.dtype(), Dtype::F16);
        assert_ne!(CpuBuffer::pooled_as(100, Dtype::Bf16, &pool).unwrap().bits().as_ptr(), address, "b holds it");
    }

    #[test]
    fn a_write_past_a_narrow_buffer_is_caught_by_its_guard() {
        for dtype in [Dtype::Bf16, Dtype::F16] {
            let mut buf = CpuBuffer::try_new_as(10, dtype).unwrap();
            buf.bits_mut().fill(0x7FFF);
            assert_eq!((buf.len(), buf.dtype(), buf.guard_violation()), (10, dtype, None), "every value written");
            buf.bits[GUARD + 10] = 0x3C00;
            let message = buf.guard_violation().unwrap();
            assert!(message.starts_with("1 value after the end changed (first at +0) of a buffer of 10"), "{message}");
            buf.bits[GUARD - 2] = 0;
            assert!(buf.guard_violation().unwrap().starts_with("1 value before the start changed (last at -2)"));
        }
    }
}
