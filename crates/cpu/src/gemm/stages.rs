//! Where a packed GEMM's time goes, thread by thread: wall-clock nanoseconds summed per
//! [`Stage`] and per thread, recorded only while [`record`] is on (off, each timed region costs
//! one relaxed load of a flag).
//!
//! The regions are coarse on purpose — one packing of a `B` panel, one packing of an `A` block,
//! one block's microkernel calls — so that timing them (two clock reads, tens of ns) stays below
//! 0.1% of what they time at the sizes profiled. A thread's waiting is what its pieces leave of
//! the caller's parallel section: `wait = Parallel(caller) − Piece(thread)`, which counts a
//! worker's wake-up and the time either thread idles while the other finishes (see
//! `examples/gemm_stages.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// A timed region of a GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Serial work on `C` before the parallel section: β·C, and a narrow `C` widened or zeroed.
    Prologue,
    /// Packing `α·op(A)` blocks (loop 3).
    PackA,
    /// Packing `op(B)` panels (loop 4).
    PackB,
    /// The microkernel calls of a block, edge tiles included (loops 2 and 1).
    Kernel,
    /// One thread's share of the parallel section: its pieces from start to end.
    Piece,
    /// The caller's parallel section, from the fork to the last piece's end.
    Parallel,
    /// Serial work on `C` after it: a narrow `C` rounded from the f32 result.
    Epilogue,
}

/// Every stage, in the order of [`Stage`]'s discriminants.
pub const STAGES: [Stage; 7] =
    [Stage::Prologue, Stage::PackA, Stage::PackB, Stage::Kernel, Stage::Piece, Stage::Parallel, Stage::Epilogue];

/// Threads recorded at most; a later thread's time is dropped.
const MAX_THREADS: usize = 16;

static ON: AtomicBool = AtomicBool::new(false);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ROW: [AtomicU64; 7] = [ZERO; 7];
static NANOS: [[AtomicU64; 7]; MAX_THREADS] = [ROW; MAX_THREADS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's row of [`NANOS`], taken the first time it records.
    static SLOT: usize = {
        let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        let name = std::thread::current().name().unwrap_or("unnamed").to_string();
        NAMES.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        slot
    };
}

/// Turns recording on or off (for every thread).
pub fn record(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Runs `f`, adding its wall-clock time to this thread's `stage` while recording is on.
#[inline]
pub fn timed<R>(stage: Stage, f: impl FnOnce() -> R) -> R {
    if !ON.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let result = f();
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    SLOT.with(|&slot| {
        if let Some(row) = NANOS.get(slot) {
            row[stage as usize].fetch_add(nanos, Ordering::Relaxed);
        }
    });
    result
}

/// One thread's recorded time.
#[derive(Clone, Debug)]
pub struct ThreadStages {
    /// The thread's name (`main`, `kernelab-cpu-0`, …).
    pub name: String,
    /// Nanoseconds per stage, indexed as [`STAGES`].
    pub nanos: [u64; 7],
}

impl ThreadStages {
    /// Nanoseconds of `stage`.
    pub fn get(&self, stage: Stage) -> u64 {
        self.nanos[stage as usize]
    }
}

/// Every thread's time since the last call (threads that recorded nothing left out), and zeroes it.
pub fn take() -> Vec<ThreadStages> {
    let names = NAMES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let rows = NANOS
        .iter()
        .zip(names)
        .map(|(row, name)| ThreadStages { name, nanos: std::array::from_fn(|s| row[s].swap(0, Ordering::Relaxed)) });
    rows.filter(|t| t.nanos.iter().any(|&n| n > 0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded time lands on the stage and thread that spent it, is zeroed by `take`, and nothing
    /// is recorded while recording is off.
    #[test]
    fn time_lands_on_its_stage_and_thread_only_while_recording() {
        let sleep = || std::thread::sleep(std::time::Duration::from_millis(3));
        let pack_b_on_a_thread_named = |name: &str| {
            let thread = std::thread::Builder::new().name(name.into());
            thread.spawn(move || timed(Stage::PackB, sleep)).unwrap().join().unwrap()
        };
        record(true);
        pack_b_on_a_thread_named("stages-test");
        record(false);
        pack_b_on_a_thread_named("stages-off");
        let taken = take();
        let mine: Vec<_> = taken.iter().filter(|t| t.name.starts_with("stages-")).collect();
        assert_eq!(mine.len(), 1, "{taken:?}");
        assert_eq!(mine[0].name, "stages-test");
        assert!(mine[0].get(Stage::PackB) >= 3_000_000, "{mine:?}");
        assert_eq!(mine[0].nanos.iter().sum::<u64>(), mine[0].get(Stage::PackB));
        assert!(take().iter().all(|t| !t.name.starts_with("stages-")), "take zeroes");
    }
}
