//! The device's global address space: separate allocations at 256-aligned addresses with unmapped
//! gaps between them, so an access that runs off the end of one buffer lands in no buffer and
//! faults instead of reading its neighbour (or host memory).

use crate::error::{Fault, FaultKind};

/// The first address handed out (never 0, so a null pointer is never a live address).
const BASE: u64 = 1 << 32;
/// The unmapped gap after each allocation, and the alignment of every address.
const GAP: u64 = 4096;
const ALIGN: u64 = 256;

struct Allocation {
    base: u64,
    data: Vec<u8>,
}

/// The global memory of one emulated device: a capacity, the live allocations, a bump pointer.
/// Addresses are never reused, so a stale pointer into freed memory faults.
pub struct Memory {
    capacity: u64,
    used: u64,
    next: u64,
    /// Sorted by base address.
    allocations: Vec<Allocation>,
}

impl Memory {
    /// An empty device memory of `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Memory {
        Memory { capacity: capacity_bytes, used: 0, next: BASE, allocations: Vec::new() }
    }

    /// Allocates `bytes` (zero-filled); the address is non-zero and 256-aligned. A zero-byte
    /// allocation gets an address too (no access inside it is valid).
    pub fn alloc(&mut self, bytes: usize) -> Result<u64, Fault> {
        let requested = bytes as u64;
        let free = self.capacity - self.used;
        if requested > free {
            return Err(Fault::host(FaultKind::OutOfMemory { requested, free }));
        }
        let base = self.next;
        self.next = (base + requested + GAP).div_ceil(ALIGN) * ALIGN;
        self.used += requested;
        self.allocations.push(Allocation { base, data: vec![0; bytes] });
        Ok(base)
    }

    /// Frees the allocation that starts at `addr`.
    pub fn free(&mut self, addr: u64) -> Result<(), Fault> {
        let i = self
            .allocations
            .binary_search_by_key(&addr, |a| a.base)
            .map_err(|_| Fault::host(FaultKind::InvalidAddress { addr, bytes: 0 }))?;
        let gone = self.allocations.remove(i);
        self.used -= gone.data.len() as u64;
        Ok(())
    }

    /// Bytes allocated and not freed.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// The allocation index and offset of `[addr, addr + bytes)`, which must lie inside one
    /// allocation; `None` otherwise.
    pub(crate) fn locate(&self, addr: u64, bytes: usize) -> Option<(usize, usize)> {
        let i = self.allocations.partition_point(|a| a.base <= addr).checked_sub(1)?;
        let a = &self.allocations[i];
        let offset = addr - a.base;
        let end = offset.checked_add(bytes as u64)?;
        (end <= a.data.len() as u64).then_some((i, offset as usize))
    }

    fn host_range(&self, addr: u64, bytes: usize) -> Result<(usize, usize), Fault> {
        self.locate(addr, bytes).ok_or(Fault::host(FaultKind::InvalidAddress { addr, bytes }))
    }

    /// The base address and length of allocation `i`, if there is one.
    pub(crate) fn span(&self, i: usize) -> Option<(u64, u64)> {
        self.allocations.get(i).map(|a| (a.base, a.data.len() as u64))
    }

    pub(crate) fn bytes_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.allocations[i].data
    }

    /// Host → device: `data` at `addr`, inside one allocation.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let (i, at) = self.host_range(addr, data.len())?;
        self.allocations[i].data[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// Device → host: `out.len()` bytes from `addr`, inside one allocation.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), Fault> {
        let (i, at) = self.host_range(addr, out.len())?;
        out.copy_from_slice(&self.allocations[i].data[at..at + out.len()]);
        Ok(())
    }

    /// Device → device: `bytes` from `src` to `dst` (each inside one allocation; they may overlap).
    pub fn copy(&mut self, dst: u64, src: u64, bytes: usize) -> Result<(), Fault> {
        let (si, sat) = self.host_range(src, bytes)?;
        let (di, dat) = self.host_range(dst, bytes)?;
        if si == di {
            self.allocations[si].data.copy_within(sat..sat + bytes, dat);
        } else {
            let tmp = self.allocations[si].data[sat..sat + bytes].to_vec();
            self.allocations[di].data[dat..dat + bytes].copy_from_slice(&tmp);
        }
        Ok(())
    }

    /// `count` copies of the 32-bit `value` (little-endian) from `addr` (`cuMemsetD32`).
    pub fn fill_u32(&mut self, addr: u64, value: u32, count: usize) -> Result<(), Fault> {
        let bytes = count.checked_mul(4).ok_or(Fault::host(FaultKind::InvalidAddress { addr, bytes: usize::MAX }))?;
        if !addr.is_multiple_of(4) {
            return Err(Fault::host(FaultKind::Misaligned { addr, bytes: 4 }));
        }
        let (i, at) = self.host_range(addr, bytes)?;
        for word in self.allocations[i].data[at..at + bytes].chunks_exact_mut(4) {
            word.copy_from_slice(&value.to_le_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_separate_and_bounded() {
        let mut m = Memory::new(1000);
        let a = m.alloc(100).unwrap();
        let b = m.alloc(100).unwrap();
        assert!(a != 0 && a.is_multiple_of(256) && b.is_multiple_of(256) && b >= a + 100 + GAP);
        assert_eq!(m.used_bytes(), 200);
        assert!(m.write(a + 96, &[1, 2, 3, 4]).is_ok());
        assert_eq!(
            m.write(a + 97, &[1, 2, 3, 4]).unwrap_err().kind,
            FaultKind::InvalidAddress { addr: a + 97, bytes: 4 }
        );
        let err = m.alloc(801).unwrap_err();
        assert_eq!(err.kind, FaultKind::OutOfMemory { requested: 801, free: 800 });
        m.fill_u32(b, 0x7fc0_0000, 25).unwrap();
        m.copy(a, b, 8).unwrap();
        let mut out = [0u8; 8];
        m.read(a, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0xc0, 0x7f, 0, 0, 0xc0, 0x7f]);
        m.free(a).unwrap();
        assert_eq!(m.used_bytes(), 100);
        assert!(m.read(a, &mut out).is_err(), "freed memory is not readable");
        assert!(m.free(a).is_err(), "double free");
    }
}
