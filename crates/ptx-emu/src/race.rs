//! The sanitizer's shadow of shared memory: for each 2-byte half-word (the narrowest access the
//! kernels make: bf16 and f16 tiles), the last writer and up to two readers in the current barrier
//! interval (an epoch, bumped at every barrier the block passes). Two accesses to one half-word by
//! different threads in one interval, at least one a write, race (two single-byte accesses to one
//! half-word would count as one, a false report no kernel of kernels/ can make).

use crate::FaultKind;

const NONE: u32 = u32::MAX;

/// Bytes per shadow entry.
const GRAIN: u64 = 2;

pub struct Shadow {
    /// The interval now running (from 1; a word's epoch 0 means "never touched").
    pub epoch: u32,
    writer: Vec<(u32, u32)>,
    /// (epoch, first reader, another reader or NONE).
    readers: Vec<(u32, u32, u32)>,
}

impl Shadow {
    pub fn new(bytes: usize) -> Shadow {
        let words = bytes.div_ceil(GRAIN as usize);
        Shadow { epoch: 1, writer: vec![(0, NONE); words], readers: vec![(0, NONE, NONE); words] }
    }

    /// Records an access of thread `tid` to `[offset, offset + width)`, or the race it makes.
    /// `other` in the fault is the linear index of the other thread (the caller makes it x, y, z).
    pub fn access(&mut self, offset: u64, width: usize, tid: u32, write: bool) -> Result<(), FaultKind> {
        let first = (offset / GRAIN) as usize;
        let last = ((offset + width as u64).div_ceil(GRAIN)) as usize;
        for w in first..last.min(self.writer.len()) {
            let race =
                |other: u32| FaultKind::SharedRace { offset: w as u64 * GRAIN, other_thread: [other, NONE, NONE] };
            let (wepoch, writer) = self.writer[w];
            if wepoch == self.epoch && writer != tid {
                return Err(race(writer));
            }
            let (repoch, r1, r2) = self.readers[w];
            let current = repoch == self.epoch;
            if write {
                if current && r1 != tid {
                    return Err(race(r1));
                }
                if current && r2 != NONE {
                    return Err(race(r2));
                }
                self.writer[w] = (self.epoch, tid);
            } else if !current {
                self.readers[w] = (self.epoch, tid, NONE);
            } else if r1 != tid && r2 == NONE {
                self.readers[w].2 = tid;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(r: Result<(), FaultKind>) -> Option<u32> {
        match r {
            Err(FaultKind::SharedRace { other_thread, .. }) => Some(other_thread[0]),
            _ => None,
        }
    }

    #[test]
    fn races_in_one_interval_only() {
        let mut s = Shadow::new(64);
        s.access(0, 4, 1, true).unwrap();
        s.access(0, 4, 1, false).unwrap(); // own write: fine
        assert_eq!(other(s.access(0, 4, 2, false)), Some(1), "read after another's write");
        assert_eq!(other(s.access(0, 16, 3, true)), Some(1), "write after write (a vector over word 0)");
        s.epoch += 1;
        s.access(0, 4, 2, false).unwrap(); // a barrier between: fine
        s.access(0, 4, 3, false).unwrap();
        assert_eq!(other(s.access(0, 4, 2, true)), Some(3), "write after another's read");
        s.access(8, 4, 5, false).unwrap();
        s.access(8, 4, 5, true).unwrap(); // read then write by one thread: fine
        s.access(32, 2, 6, true).unwrap();
        s.access(34, 2, 7, true).unwrap(); // the other half of the word: no race
        assert_eq!(other(s.access(32, 4, 8, false)), Some(6), "a word read over two half-word writes");
    }
}
