//! The probes behind the CPU roofline.
//!
//! - FMA peak: independent FMA chains in registers on every thread at once, no memory traffic.
//! - Stream bandwidth: each thread streams over its own buffers of a given size again and again,
//!   all threads started together at a barrier; four patterns — read (a sum), copy, add
//!   (`y = a + b`) and update (`y += x`, where every line written was just read, so no extra
//!   read-for-ownership traffic goes uncounted) — whose bytes read + written per second differ
//!   with the level (reads are cheaper than writes in DRAM, stores are the bottleneck in L1), and
//!   the level's ceiling is the best of the four: no streaming kernel was seen to move bytes
//!   faster there.

use std::sync::Barrier;
use std::time::Instant;

use crate::simd::{Isa, multiversion};

/// Independent accumulator chains, enough to cover FMA latency × throughput on current cores.
pub const CHAINS: usize = 12;

pub fn fma_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "AVX-512F";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "AVX2+FMA";
        }
    }
    "portable"
}

/// Runs `iters` iterations of the FMA loop; returns (flops, a value that keeps the loop alive).
fn fma_loop(iters: usize) -> (f64, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return (iters as f64 * (CHAINS * 16 * 2) as f64, unsafe { x86::fma_avx512(iters) });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return (iters as f64 * (CHAINS * 8 * 2) as f64, unsafe { x86::fma_avx2(iters) });
        }
    }
    let mut acc = [1.0f32; CHAINS * 4];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = *a * 1.000_000_1 + 1e-7;
        }
        acc = std::hint::black_box(acc);
    }
    (iters as f64 * (CHAINS * 4 * 2) as f64, acc.iter().sum())
}

/// GFLOP/s of `threads` threads each running the FMA loop at once: the best of three trials (a
/// peak is a maximum; a virtual CPU that is briefly shared only ever lowers a trial).
pub fn fma_peak_gflops(threads: usize) -> f64 {
    (0..3).map(|_| peak_trial(threads, fma_loop)).fold(0.0, f64::max)
}

/// The bf16 dot-product peak: GFLOP/s of `threads` threads each running [`CHAINS`] independent
/// `vdpbf16ps` chains (each instruction 16 lanes × 2 multiply-adds = 64 flops), the best of three
/// trials; `None` where the CPU lacks AVX512-BF16.
pub fn dpbf16_peak_gflops(threads: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::convert::has_avx512_bf16() {
        // SAFETY: the CPU has AVX-512F and AVX512-BF16, checked just above.
        let body = |iters: usize| (iters as f64 * (CHAINS * 64) as f64, unsafe { x86::dpbf16_avx512(iters) });
        return Some((0..3).map(|_| peak_trial(threads, body)).fold(0.0, f64::max));
    }
    let _ = threads;
    None
}

/// One trial of `body` (iterations → flops done, a value that keeps the loop alive): the threads
/// start together at a barrier and each times its own loop; the trial lasts from the first start
/// to the last end ([`span`]).
fn peak_trial(threads: usize, body: impl Fn(usize) -> (f64, f32) + Sync) -> f64 {
    let iters = 15_000_000;
    let threads = threads.max(1);
    body(iters / 20); // warm up, and let the clock settle
    let barrier = Barrier::new(threads);
    let runs: Vec<(f64, Run)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    let (flops, v) = body(iters);
                    std::hint::black_box(v);
                    (flops, Run { start, end: Instant::now() })
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let flops: f64 = runs.iter().map(|(flops, _)| flops).sum();
    flops / span(runs.iter().map(|(_, run)| *run)) / 1e9
}

/// When one thread's part of a trial started and ended.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: Instant,
    end: Instant,
}

/// Seconds from the earliest start to the latest end of `runs` (infinite for none).
///
/// Not the slowest thread's own time, nor a clock read by a thread that does not take part: on a
/// machine with as many cores as threads, a thread released late by the barrier (or an observer
/// scheduled late) makes the threads overlap less than the count assumes, and the figure came out
/// above what the cores can do (two Zen 5 vCPUs: FMA 663 GFLOP/s on two threads beside 268 on one).
/// The span can only understate a peak, never overstate it.
fn span(runs: impl Iterator<Item = Run>) -> f64 {
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for run in runs {
        first = Some(first.map_or(run.start, |t| t.min(run.start)));
        last = Some(last.map_or(run.end, |t| t.max(run.end)));
    }
    match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64().max(1e-9),
        _ => f64::INFINITY,
    }
}

/// Trials of each stream measurement; the best is kept (a ceiling is a maximum, and a virtual CPU
/// that is briefly shared only ever lowers a trial).
const STREAM_TRIALS: usize = 9;

/// Each trial streams at least this long on one thread, so timer resolution does not matter.
const STREAM_TRIAL_SECONDS: f64 = 10e-3;

/// A streaming pattern and the arrays it touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `s += x[i]`: one array read.
    Read,
    /// `y[i] = x[i]`: one read, one written.
    Copy,
    /// `y[i] = a[i] + b[i]`: two read, one written.
    Add,
    /// `y[i] += x[i]`: two read, one written in place.
    Update,
    /// `y[i] += x[i]; z[i] += w[i]; v[i] += u[i]`: six streams at once, three written in place
    /// (the shape of an optimizer step; more concurrent streams keep more lines in flight).
    Update3,
}

impl Stream {
    pub const ALL: [Stream; 5] = [Stream::Read, Stream::Copy, Stream::Add, Stream::Update, Stream::Update3];

    /// Arrays the pattern touches.
    fn arrays(self) -> usize {
        match self {
            Stream::Read => 1,
            Stream::Copy | Stream::Update => 2,
            Stream::Add => 3,
            Stream::Update3 => 6,
        }
    }

    /// Arrays it reads or writes, counted once each way (bytes moved per element ÷ 4).
    fn streams(self) -> usize {
        match self {
            Stream::Read => 1,
            Stream::Copy => 2,
            Stream::Add | Stream::Update => 3,
            Stream::Update3 => 9,
        }
    }
}

multiversion! {
    /// `Σ x` with 128 independent lanes, so that loads, not the add latency, set the pace.
    pub fn read_pass(x: &[f32]) -> f32 {
        let mut acc = [0.0f32; 128];
        for chunk in x.chunks_exact(128) {
            let chunk: &[f32; 128] = chunk.try_into().unwrap_or(&[0.0; 128]);
            for i in 0..128 {
                acc[i] += chunk[i];
            }
        }
        acc.iter().sum()
    }
}

multiversion! {
    /// `y ← a + b`.
    pub fn add_pass(a: &[f32], b: &[f32], y: &mut [f32]) {
        for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
            *y = a + b;
        }
    }
}

multiversion! {
    /// `y ← y + x`.
    pub fn update_pass(x: &[f32], y: &mut [f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y += x;
        }
    }
}

multiversion! {
    /// `y ← y + x`, `z ← z + w`, `v ← v + u` in one loop.
    pub fn update3_pass(x: &[f32], y: &mut [f32], w: &[f32], z: &mut [f32], u: &[f32], v: &mut [f32]) {
        for (((((y, x), z), w), v), u) in y.iter_mut().zip(x).zip(z.iter_mut()).zip(w).zip(v.iter_mut()).zip(u) {
            *y += x;
            *z += w;
            *v += u;
        }
    }
}

/// How far apart a [`Layout::Skewed`] pattern's arrays start in their shared buffer, beyond a
/// whole number of 4 KiB pages: 320 bytes, five cache lines, so that no two arrays start the same
/// distance from a page boundary.
///
/// Allocated one by one, the arrays of an L1-sized pattern often did, and a store to one and a
/// load from another at the same index then looked like the same address to the core: one Zen 5
/// thread read 243–275 GB/s for L1 one run and 435 another, beside 505–642 on two threads (skewed:
/// 355–363 and 684–720). L2-sized patterns measured faster allocated one by one (291–311 against
/// 248–279 on one thread), so each pattern runs both ways and the ceiling is the best.
const SKEW: usize = 80;

/// Where a pattern's arrays live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Each array allocated on its own.
    Separate,
    /// One buffer, each array a whole number of pages plus [`SKEW`] after the one before.
    Skewed,
}

/// A pattern's arrays, `n` values each.
struct Arrays {
    buffers: Vec<Vec<f32>>,
    n: usize,
    stride: usize,
}

impl Arrays {
    fn new(stream: Stream, n: usize, layout: Layout) -> Self {
        let count = stream.arrays();
        let (buffers, stride) = match layout {
            Layout::Separate => ((0..count).map(|i| vec![1.0 + i as f32; n]).collect(), n),
            Layout::Skewed => {
                let stride = n.next_multiple_of(1024) + SKEW;
                let mut buffer = vec![0.0f32; count * stride];
                for (i, array) in buffer.chunks_mut(stride).enumerate() {
                    array.fill(1.0 + i as f32);
                }
                (vec![buffer], stride)
            }
        };
        Self { buffers, n, stride }
    }

    fn views(&mut self) -> Vec<&mut [f32]> {
        let (n, stride) = (self.n, self.stride);
        self.buffers.iter_mut().flat_map(|b| b.chunks_mut(stride)).map(|array| &mut array[..n]).collect()
    }
}

/// One pass of `stream` over `arrays` (an [`Arrays`]' views); returns a value that keeps it alive.
fn pass(stream: Stream, arrays: &mut [&mut [f32]]) -> f32 {
    let isa = Isa::best();
    match (stream, arrays) {
        (Stream::Read, [x]) => read_pass(isa, x),
        (Stream::Copy, [x, y]) => {
            y.copy_from_slice(x);
            y[0]
        }
        (Stream::Add, [a, b, y]) => {
            add_pass(isa, a, b, y);
            y[0]
        }
        (Stream::Update, [x, y]) => {
            update_pass(isa, x, y);
            y[0]
        }
        (Stream::Update3, [x, y, w, z, u, v]) => {
            update3_pass(isa, x, y, w, z, u, v);
            y[0]
        }
        _ => 0.0,
    }
}

/// GB/s (bytes read + written) of `threads` threads each streaming over its own `bytes_per_thread`
/// bytes: the best of [`Stream::ALL`] in both [`Layout`]s, each the best of [`STREAM_TRIALS`].
pub fn stream_gbps(threads: usize, bytes_per_thread: u64) -> f64 {
    let patterns = Stream::ALL.into_iter().flat_map(|s| [(s, Layout::Separate), (s, Layout::Skewed)]);
    patterns.map(|(s, layout)| stream_pattern_gbps(s, threads.max(1), bytes_per_thread, layout)).fold(0.0, f64::max)
}

/// GB/s of one pattern: `passes` passes per trial, chosen so one thread's trial lasts
/// [`STREAM_TRIAL_SECONDS`]; a trial lasts from the first thread's start to the last one's end ([`span`]).
pub fn stream_pattern_gbps(stream: Stream, threads: usize, bytes_per_thread: u64, layout: Layout) -> f64 {
    let n = ((bytes_per_thread / 4) as usize / stream.arrays() / 128 * 128).max(128);
    let fresh = || Arrays::new(stream, n, layout);
    let passes = {
        let mut arrays = fresh();
        let mut arrays = arrays.views();
        pass(stream, &mut arrays);
        let t0 = Instant::now();
        std::hint::black_box(pass(stream, &mut arrays));
        (STREAM_TRIAL_SECONDS / t0.elapsed().as_secs_f64().max(1e-9)).ceil().clamp(1.0, 1e6) as usize
    };
    let barrier = Barrier::new(threads);
    let per_thread: Vec<Vec<Run>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut arrays = fresh();
                    let mut arrays = arrays.views();
                    pass(stream, &mut arrays);
                    (0..STREAM_TRIALS)
                        .map(|_| {
                            barrier.wait();
                            let start = Instant::now();
                            for _ in 0..passes {
                                std::hint::black_box(pass(stream, std::hint::black_box(&mut arrays[..])));
                            }
                            Run { start, end: Instant::now() }
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let bytes = (threads * passes * n * stream.streams() * 4) as f64;
    if per_thread.len() < threads {
        return 0.0;
    }
    (0..STREAM_TRIALS)
        .map(|t| span(per_thread.iter().filter_map(|runs| runs.get(t).copied())))
        .map(|secs| bytes / secs / 1e9)
        .fold(0.0, f64::max)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub fn fma_avx512(iters: usize) -> f32 {
        let (a, b) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for r in acc.iter_mut() {
                *r = _mm512_fmadd_ps(*r, a, b);
            }
        }
        acc.iter().map(|&r| _mm512_reduce_add_ps(r)).sum()
    }

    /// [`CHAINS`] independent `vdpbf16ps` accumulators, `iters` steps each: every step adds
    /// 1·1 + 2⁻⁸·1 (bf16 pairs) to each lane, no memory traffic.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub fn dpbf16_avx512(iters: usize) -> f32 {
        // SAFETY (both): plain 64-byte vectors; every bit pattern is valid in each.
        let a: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(0x3b80_3f80)) };
        let b: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(0x3f80_3f80)) };
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..iters {
            for r in acc.iter_mut() {
                *r = _mm512_dpbf16_ps(*r, a, b);
            }
        }
        acc.iter().map(|&r| _mm512_reduce_add_ps(r)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn fma_avx2(iters: usize) -> f32 {
        let (a, b) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for r in acc.iter_mut() {
                *r = _mm256_fmadd_ps(*r, a, b);
            }
        }
        let mut out = [0.0f32; 8];
        let total = acc.iter().fold(_mm256_setzero_ps(), |s, &r| _mm256_add_ps(s, r));
        // SAFETY: `out` holds 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), total) };
        out.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Run, span};

    fn run(t0: Instant, from_ms: u64, to_ms: u64) -> Run {
        Run { start: t0 + Duration::from_millis(from_ms), end: t0 + Duration::from_millis(to_ms) }
    }

    #[test]
    fn a_trial_lasts_from_the_first_start_to_the_last_end() {
        let t0 = Instant::now();
        // Threads that ran one after the other did not share the time: 20 ms, not the 10 of either.
        let seconds = span([run(t0, 0, 10), run(t0, 10, 20)].into_iter());
        assert!((seconds - 0.020).abs() < 1e-9, "{seconds}");
        // A thread released late stretches the trial to its end.
        let seconds = span([run(t0, 0, 10), run(t0, 3, 13)].into_iter());
        assert!((seconds - 0.013).abs() < 1e-9, "{seconds}");
        assert_eq!(span(std::iter::empty()), f64::INFINITY);
    }
}
