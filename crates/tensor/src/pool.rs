//! [`Pool`]: freed device allocations kept by length for reuse. A training step allocates the same
//! sizes every step; reusing them saves the allocator, page faults and zeroing on the CPU and
//! buffer creation on a GPU. Every backend's buffers return to their device's pool when dropped.

use std::collections::HashMap;
use std::sync::Mutex;

/// The most bytes a pool keeps by default; beyond it, freed allocations are really freed.
pub const DEFAULT_POOL_BYTES: usize = 256 << 20;

/// Freed allocations of `T` (each holding `len` f32 values), by length.
#[derive(Debug)]
pub struct Pool<T> {
    free: Mutex<FreeLists<T>>,
    max_bytes: usize,
}

#[derive(Debug)]
struct FreeLists<T> {
    by_len: HashMap<usize, Vec<T>>,
    bytes: usize,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new(DEFAULT_POOL_BYTES)
    }
}

impl<T> Pool<T> {
    /// A pool that keeps at most `max_bytes` of freed allocations.
    pub fn new(max_bytes: usize) -> Self {
        Self { free: Mutex::new(FreeLists { by_len: HashMap::new(), bytes: 0 }), max_bytes }
    }

    /// A freed allocation of exactly `len` values (stale contents), if there is one.
    pub fn take(&self, len: usize) -> Option<T> {
        let mut free = self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let item = free.by_len.get_mut(&len)?.pop()?;
        free.bytes -= len * 4;
        Some(item)
    }

    /// Keeps `item` (of `len` values) for reuse while the pool is under its limit; drops it otherwise.
    pub fn give(&self, len: usize, item: T) {
        let mut free = self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if len > 0 && free.bytes + len * 4 <= self.max_bytes {
            free.bytes += len * 4;
            free.by_len.entry(len).or_default().push(item);
        }
    }

    /// Bytes currently kept.
    pub fn bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_by_length_within_the_limit() {
        let pool = Pool::new(40);
        pool.give(5, "a");
        pool.give(5, "b");
        pool.give(3, "too much"); // 20 + 20 + 12 > 40 bytes
        assert_eq!(pool.bytes(), 40);
        assert_eq!(pool.take(3), None);
        assert_eq!(pool.take(5), Some("b"));
        assert_eq!(pool.take(5), Some("a"));
        assert_eq!((pool.take(5), pool.bytes()), (None, 0));
    }
}
