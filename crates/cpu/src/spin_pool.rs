//! The thread pool the CPU kernels split their work over: workers that spin a while before they
//! sleep.
//!
//! A training step at batch 64 is dozens of launches of 1–150 µs each. On rayon's pool every
//! parallel launch woke a sleeping worker (a futex wake, and on a VM an interrupt to a halted
//! vCPU, tens of µs), so on 2 vCPUs the seed model's step ran *slower* on two threads than on one
//! (466 against 415 µs; its two 6.4M-FMA products at 84–95 GFLOP/s inside the step against 190
//! in the benchmark). Here a worker that finishes a job watches for the next one for [`SPIN`]
//! before it parks, so the launches of one step find it awake. While it watches it yields its
//! core after every [`WATCH_SPINS`] checks (about a µs), so whatever else is runnable there (the
//! OS, another process) still runs. A job wakes parked workers only when some are parked, so a
//! job that finds them watching makes no system call.
//!
//! Both matter most to products of a few µs: on the 784-512-256-10 teacher at batch 1, two threads,
//! whose two large layers are split, a yield after every check and a wake-up call per job cost
//! about 1.2 µs of a 16 µs call (14.6 against 16.0 µs; the 512-256 layer alone 3.4 against 3.9).
//!
//! One job runs at a time: [`run`] splits `parts` pieces of work among the caller and the workers,
//! who claim pieces with a compare-and-swap on one word (`generation << 32 | next piece`), so a
//! worker that wakes late can never claim a piece of a later job. A caller that finds the pool
//! busy (another thread's job; a job started from inside a job) runs its pieces itself.
//!
//! The caller always runs piece 0 itself, unclaimed; the workers start at piece 1. Kernels split
//! an array the same way at every launch, so with one worker (two cores) each part of a
//! parameter array, its gradient and its Adam moments stays in one core's cache from step to
//! step, instead of following whichever thread won the race for piece 0. Measured on the
//! 784-128-10 step, two threads: Adam's update 25 → 14 ms an epoch, the epoch 0.200 → 0.190 s.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker keeps watching for work before it parks: longer than the gaps
/// between the parallel launches of a training step, short enough that an idle process soon
/// stops using its cores.
const SPIN: Duration = Duration::from_micros(200);
/// Checks between two yields of a watching worker: about a µs of `pause`s, so that a new job is
/// seen within that, not after a system call's round trip.
const WATCH_SPINS: usize = 64;

/// A job: the pieces to run, lent by [`run`] for as long as the job lasts.
type Piece<'a> = dyn Fn(usize) + Sync + 'a;

struct Pool {
    /// `generation << 32 | next unclaimed piece` of the current job.
    state: AtomicU64,
    /// The current job's generation, its pieces and their number, written before `state`
    /// announces it. A worker joins only the job of the generation it saw announced: one that
    /// saw generation g and reads the slot after the next job was written into it leaves it
    /// alone, instead of claiming its pieces under g's counter (which a job with more pieces
    /// than g's would let it do, so that a piece ran twice).
    job: Mutex<Option<(u64, JobRef, usize)>>,
    /// Pieces of the current job finished.
    done: AtomicUsize,
    /// The first panic of the current job's pieces, raised again on the caller once all finished.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Held by the thread whose job is running.
    running: Mutex<()>,
    /// Where workers park.
    sleep: Mutex<()>,
    /// Workers parked (or about to park) on `wake`: a job notifies only when one is.
    parked: AtomicUsize,
    wake: Condvar,
    workers: usize,
}

/// A job's pieces with the borrow's lifetime erased.
#[derive(Clone, Copy)]
struct JobRef(*const Piece<'static>);
// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every claimed piece has finished
// (a piece can be claimed only while its job's generation is current).
unsafe impl Send for JobRef {}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let workers = crate::topology::logical_cores().saturating_sub(1);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: AtomicU64::new(0),
            job: Mutex::new(None),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            running: Mutex::new(()),
            sleep: Mutex::new(()),
            parked: AtomicUsize::new(0),
            wake: Condvar::new(),
            workers,
        }));
        for i in 0..workers {
            let spawned = std::thread::Builder::new().name(format!("kernelab-cpu-{i}")).spawn(move || pool.work());
            // Without a worker the caller simply runs every piece: slower, never wrong.
            drop(spawned);
        }
        pool
    })
}

/// Runs `piece(0)`, …, `piece(parts − 1)`, spread over the calling thread and up to `parts − 1`
/// workers, and returns when all have finished.
pub fn run(parts: usize, piece: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 {
        (0..parts).for_each(piece);
        return;
    }
    let pool = pool();
    let Ok(running) = pool.running.try_lock() else {
        (0..parts).for_each(piece);
        return;
    };
    if pool.workers == 0 {
        (0..parts).for_each(piece);
        return;
    }
    // SAFETY (of the lifetime erasure): this function does not return before `done == parts`,
    // and no piece can be claimed after that (the next piece index is ≥ parts).
    let job = JobRef(unsafe { std::mem::transmute::<&Piece<'_>, *const Piece<'static>>(piece) });
    let generation = ((pool.state.load(Ordering::Relaxed) >> 32) + 1) & 0xFFFF_FFFF;
    *pool.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, job, parts));
    #[cfg(test)]
    tests::stall_between_job_and_announcement();
    pool.done.store(0, Ordering::Relaxed);
    // Piece 0 is the caller's, unclaimed: the workers start at piece 1.
    pool.state.store(generation << 32 | 1, Ordering::SeqCst);
    // A worker counts itself parked before it checks the generation under `sleep` (SeqCst on both
    // sides), so either it sees this job's generation or this load sees it parked.
    if pool.parked.load(Ordering::SeqCst) > 0 {
        let _sleep = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
        pool.wake.notify_all();
    }
    pool.run_piece(job, 0);
    pool.claim_and_run(generation, job, parts);
    while pool.done.load(Ordering::Acquire) < parts {
        std::hint::spin_loop();
    }
    let panic = pool.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(running);
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
}

impl Pool {
    /// Claims pieces of job `generation` one at a time and runs them, until none is left.
    fn claim_and_run(&self, generation: u64, job: JobRef, parts: usize) {
        loop {
            let state = self.state.load(Ordering::Acquire);
            let next = (state & 0xFFFF_FFFF) as usize;
            if state >> 32 != generation || next >= parts {
                return;
            }
            if self.state.compare_exchange_weak(state, state + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                self.run_piece(job, next);
            }
        }
    }

    /// Runs piece `index` of the current job and counts it finished, even when it panics, so that
    /// `run` never returns while another piece runs, nor waits forever; `run` raises the panic
    /// afterwards.
    fn run_piece(&self, job: JobRef, index: usize) {
        // SAFETY: the piece belongs to the running job (the caller's own piece 0, or one claimed
        // under the current generation), so `run` still holds the borrow (see `JobRef`).
        let piece = std::panic::AssertUnwindSafe(|| unsafe { (*job.0)(index) });
        if let Err(payload) = std::panic::catch_unwind(piece) {
            self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        }
        self.done.fetch_add(1, Ordering::Release);
    }

    /// A worker's life: wait for a new generation (spinning, then parked), join its job.
    fn work(&self) {
        let mut seen = 0u64;
        loop {
            let generation = self.next_generation(seen);
            seen = generation;
            let job = *self.job.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, job, parts)) = job.filter(|&(of, _, _)| of == generation) {
                self.claim_and_run(generation, job, parts);
            }
        }
    }

    /// Waits for a generation other than `seen`: watches for [`SPIN`], then parks.
    fn next_generation(&self, seen: u64) -> u64 {
        let current = || self.state.load(Ordering::Acquire) >> 32;
        let started = Instant::now();
        while started.elapsed() < SPIN {
            for _ in 0..WATCH_SPINS {
                if current() != seen {
                    return current();
                }
                std::hint::spin_loop();
            }
            std::thread::yield_now();
        }
        let mut sleep = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.fetch_add(1, Ordering::SeqCst);
        while self.state.load(Ordering::SeqCst) >> 32 == seen {
            sleep = self.wake.wait(sleep).unwrap_or_else(|e| e.into_inner());
        }
        self.parked.fetch_sub(1, Ordering::SeqCst);
        current()
    }
}

/// Runs `f(offset, part)` over consecutive parts of `y`, each a whole number of `unit`s, one part
/// per thread of the current pool size (rayon's, as set by `--threads`) when `parallel`.
pub fn for_each_part<T: Send>(y: &mut [T], unit: usize, parallel: bool, f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = if parallel { crate::threads() } else { 1 };
    let units = y.len().div_ceil(unit.max(1));
    let per_part = units.div_ceil(threads.max(1)).max(1) * unit.max(1);
    let parts = y.len().div_ceil(per_part);
    /// The start of `y`, shared by the pieces (each writes only its own part).
    struct Base<T>(*mut T);
    // SAFETY: as for `SendPtr`: the parts are disjoint, `T: Send`, and `run` returns before the
    // borrow of `y` ends.
    unsafe impl<T: Send> Sync for Base<T> {}
    impl<T> Base<T> {
        /// The pointer (a method, so that closures capture the wrapper, not the raw field).
        fn get(&self) -> *mut T {
            self.0
        }
    }
    let base = Base(y.as_mut_ptr());
    let len = y.len();
    run(parts, &|i| {
        let start = i * per_part;
        let end = (start + per_part).min(len);
        // SAFETY: the parts are disjoint ranges of `y`, which outlives `run`.
        let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
        f(start, part);
    });
}

/// A pointer into a buffer that a job's pieces write in disjoint parts (slices of `for_each_part`,
/// column blocks of a GEMM's `C`).
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);
// SAFETY: every user writes only its own piece's disjoint part, and `run` returns only after
// every piece has finished, before the buffer's borrow ends.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the wrapper, not the raw field).
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microseconds [`run`] sleeps between writing its job and announcing it, standing in for
    /// the caller being preempted there (0: no stall).
    static STALL_US: AtomicU64 = AtomicU64::new(0);

    pub(super) fn stall_between_job_and_announcement() {
        let us = STALL_US.load(Ordering::Relaxed);
        if us > 0 {
            std::thread::sleep(Duration::from_micros(us));
        }
    }

    /// A worker that saw one job announced and reads the job slot only after the caller wrote
    /// the next job there (here: the caller stalls 300 µs between writing and announcing) must
    /// leave that job alone: jobs of 2 and 6 pieces alternate, and every piece runs exactly once.
    #[test]
    fn a_late_worker_never_runs_a_piece_of_the_next_job() {
        STALL_US.store(300, Ordering::Relaxed);
        let mut wrong = 0;
        for i in 0..2000 {
            let parts = if i % 2 == 0 { 2 } else { 6 };
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            run(parts, &|p| {
                hits[p].fetch_add(1, Ordering::Relaxed);
            });
            wrong += usize::from(hits.iter().any(|h| h.load(Ordering::Relaxed) != 1));
        }
        STALL_US.store(0, Ordering::Relaxed);
        assert_eq!(wrong, 0, "jobs with a piece run other than once");
    }

    #[test]
    fn every_piece_runs_once_whatever_the_split() {
        for parts in [0, 1, 2, 3, 17] {
            for _ in 0..200 {
                let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                run(parts, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{parts} pieces");
            }
        }
    }

    /// A worker that has parked (no job for longer than [`SPIN`]) is woken by the next job: the
    /// caller's piece 0 waits a while for piece 1 to start, which only a worker can do meanwhile.
    /// Twenty rounds, each after the workers parked. A round whose piece 1 ran on the caller
    /// (another test's job held the pool, or the wait ran out) is tried again, up to 100 times,
    /// so a lost wake-up fails this test within seconds.
    #[test]
    fn a_parked_worker_wakes_for_the_next_job() {
        if pool().workers == 0 {
            return; // one core: the caller runs every piece, nothing parks
        }
        let caller = std::thread::current().id();
        for round in 0..20 {
            let woke = (0..100).any(|_| {
                std::thread::sleep(SPIN * 3);
                let ran_on = Mutex::new(None);
                run(2, &|i| {
                    if i == 1 {
                        *ran_on.lock().unwrap() = Some(std::thread::current().id());
                        return;
                    }
                    let deadline = Instant::now() + Duration::from_millis(20);
                    while ran_on.lock().unwrap().is_none() && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                });
                ran_on.into_inner().unwrap().is_some_and(|id| id != caller)
            });
            assert!(woke, "round {round}: no parked worker took a piece in 100 jobs");
        }
    }

    #[test]
    fn a_panicking_piece_reaches_the_caller_after_every_piece_finished() {
        let finished = AtomicUsize::new(0);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(4, &|i| {
                if i == 1 {
                    panic!("piece 1");
                }
                std::thread::sleep(Duration::from_millis(20));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(outcome.is_err());
        // No piece is still running once `run` has unwound (when the pool was busy with another
        // test's job, the caller ran the pieces itself and stopped at the panic).
        let at_return = finished.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(finished.load(Ordering::Relaxed), at_return);
        // The pool still works.
        let total = AtomicUsize::new(0);
        run(2, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_job_started_inside_a_job_runs_on_its_caller() {
        let total = AtomicUsize::new(0);
        run(2, &|_| {
            run(3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn parts_cover_the_slice_in_whole_units() {
        let mut y = vec![0.0f32; 1003];
        for_each_part(&mut y, 10, true, |offset, part| {
            assert_eq!(offset % 10, 0);
            part.iter_mut().enumerate().for_each(|(i, v)| *v += (offset + i) as f32);
        });
        assert!(y.iter().enumerate().all(|(i, &v)| v == i as f32));
    }
}
