//! The CPU's measured roofline: the FMA peak (independent FMA chains in registers, no memory
//! traffic) and the copy bandwidth (a parallel copy far larger than the caches, counting the bytes
//! read plus the bytes written). `kernelab bench` reports every row against these.

use std::time::Instant;

use rayon::prelude::*;

use kernelab_tensor::Roofline;

/// Independent accumulator chains, enough to cover FMA latency × throughput on current cores.
const CHAINS: usize = 12;

/// Measures both roofs with every rayon thread, and the FMA peak of one thread.
pub fn measure() -> Roofline {
    let threads = rayon::current_num_threads();
    Roofline {
        peak_gflops: fma_peak_gflops(threads),
        peak_gflops_one_thread: fma_peak_gflops(1),
        bandwidth_gbps: copy_bandwidth_gbps(),
        how: format!("{} FMA chains on {threads} threads; parallel copy of 2×128 MiB", fma_isa()),
    }
}

fn fma_isa() -> &'static str {
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
    (0..3).map(|_| fma_trial(threads)).fold(0.0, f64::max)
}

/// One trial: the threads start together at a barrier and are timed until the last one ends.
fn fma_trial(threads: usize) -> f64 {
    let iters = 15_000_000;
    let threads = threads.max(1);
    fma_loop(iters / 20); // warm up, and let the clock settle
    let barrier = std::sync::Barrier::new(threads + 1);
    let (flops, secs) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let (flops, v) = fma_loop(iters);
                    std::hint::black_box(v);
                    flops
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let flops: f64 = handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum();
        (flops, started.elapsed().as_secs_f64())
    });
    flops / secs / 1e9
}

/// GB/s of a parallel copy of 128 MiB (bytes read + bytes written), the median of five.
pub fn copy_bandwidth_gbps() -> f64 {
    let n = 32 << 20;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut secs: Vec<f64> = (0..6)
        .map(|_| {
            let t0 = Instant::now();
            dst.par_chunks_mut(1 << 16).zip(src.par_chunks(1 << 16)).for_each(|(d, s)| d.copy_from_slice(s));
            std::hint::black_box(&dst);
            t0.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    secs.sort_by(f64::total_cmp);
    (2 * 4 * n) as f64 / secs[secs.len() / 2] / 1e9
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
