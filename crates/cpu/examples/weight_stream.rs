//! What one core (and two) can stream of a model's weights, call after call: the ceiling a
//! batch-1 forward pass runs against once its weights no longer fit in one core's L2.
//!
//!     cargo run --release -p kernelab-cpu --example weight_stream -- [--passes 2000] [--json OUT]
//!
//! A batch-1 forward reads every weight once per call, front to back, and nothing else of size.
//! This probe reads a buffer of `N` bytes the same way, pass after pass: AVX-512 aligned loads
//! into 8 independent accumulators (`acc[j] += x[64·i + 16·j ..]`, so the adds never wait on each
//! other and the loop is bound by the loads), the sum printed so that nothing is optimized away.
//! Every configuration reports the median pass (µs) and `N / median` (GB/s) over `--passes`
//! passes after as many warm-up passes; a pass over less than 128 KB is timed as a run of
//! repeats of it.
//!
//! Sizes: the 784-128-10 student's f32 weights (0.41 MB), 1 MB (one Zen 4 core's L2), the
//! 784-512-256-10 teacher's (2.14 MB), 8 MB; the controls 16 KB (in L1: about two 64 B loads a
//! cycle) and 256 MB (DRAM). Orders: `forward` (front to back every pass) and `serpentine`
//! (alternate passes backward, so the lines read last are read first on the next pass, which an
//! LRU-like cache still holds). Threads: 1, and 2 each reading its own half, the pass ending when
//! both halves are read (a spinning barrier, as the kernels' pool waits).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// f32 values a step reads: 8 zmm loads (512 B, eight cache lines).
const STEP: usize = 128;

/// The sizes of the header, in bytes, with their names.
const SIZES: [(&str, usize); 6] = [
    ("L1 control 16 KB", 16 << 10),
    ("student 0.41 MB", 101_632 * 4),
    ("1 MB", 1 << 20),
    ("teacher 2.14 MB", 535_040 * 4),
    ("8 MB", 8 << 20),
    ("DRAM control 256 MB", 256 << 20),
];

/// How a configuration reads its buffer.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Forward,
    Serpentine,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::Forward => "forward",
            Order::Serpentine => "serpentine",
        }
    }
}

/// One configuration's result.
struct Row {
    name: &'static str,
    bytes: usize,
    order: Order,
    threads: usize,
    median_us: f64,
    p10_us: f64,
    p90_us: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let passes: usize = value("--passes").and_then(|v| v.parse().ok()).unwrap_or(2000);
    let json = value("--json").cloned();
    #[cfg(target_arch = "x86_64")]
    let has_avx512 = is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let has_avx512 = false;
    if !has_avx512 {
        eprintln!("weight_stream: this probe needs AVX-512F, which this CPU lacks");
        std::process::exit(2);
    }
    println!(
        "{:<22} {:>10} {:>11} {:>3} {:>10} {:>9} {:>17}",
        "buffer", "bytes", "order", "thr", "µs/pass", "GB/s", "p10–p90 µs"
    );
    let mut rows = Vec::new();
    let mut keep = 0.0f32;
    for (name, bytes) in SIZES {
        // Fewer passes of the DRAM control (each takes milliseconds), at least 20.
        let passes = passes.min((4usize << 30) / bytes).max(20);
        for threads in [1, 2] {
            for order in [Order::Forward, Order::Serpentine] {
                let (times, sum) = measure(bytes, order, threads, passes);
                keep += sum;
                let row = summarize(name, bytes, order, threads, times);
                println!(
                    "{:<22} {:>10} {:>11} {:>3} {:>10.3} {:>9.1} {:>8.3}–{:<8.3}",
                    row.name,
                    row.bytes,
                    order.name(),
                    threads,
                    row.median_us,
                    row.bytes as f64 / row.median_us / 1e3,
                    row.p10_us,
                    row.p90_us
                );
                rows.push(row);
            }
        }
    }
    println!("(checksum {keep:e})");
    if let Some(path) = json
        && let Err(e) = std::fs::write(&path, to_json(&rows, passes))
    {
        eprintln!("weight_stream: cannot write {path}: {e}");
        std::process::exit(1);
    }
}

/// The median and the 10th and 90th percentiles of the pass times (µs).
fn summarize(name: &'static str, bytes: usize, order: Order, threads: usize, mut times: Vec<f64>) -> Row {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Row { name, bytes, order, threads, median_us: at(0.5), p10_us: at(0.1), p90_us: at(0.9) }
}

/// Times `passes` passes (after as many warm-up ones) over a fresh buffer of `bytes` bytes (a
/// multiple of [`STEP`] values), split into `threads` halves; returns each pass's µs and the sum
/// read.
fn measure(bytes: usize, order: Order, threads: usize, passes: usize) -> (Vec<f64>, f32) {
    let values = bytes / 4 / STEP * STEP;
    let buffer = Aligned::new(values);
    // A pass shorter than ~2 µs (a buffer in L1 or L2 under 128 KB) is timed as `repeats`
    // passes in a row.
    let repeats = if bytes < 128 << 10 { (2 << 20) / bytes.max(1) } else { 1 };
    let part = values / threads / STEP * STEP;
    let arrived = AtomicUsize::new(0);
    let mut times = Vec::with_capacity(passes);
    let mut total = 0.0f32;
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|t| {
                let (buffer, arrived) = (&buffer, &arrived);
                scope.spawn(move || {
                    let slice = &buffer.values()[t * part..(t + 1) * part];
                    let mut sum = 0.0f32;
                    for pass in 0..2 * passes {
                        wait(arrived, threads * pass);
                        for r in 0..repeats {
                            sum += read(slice, backward(order, pass * repeats + r));
                        }
                        arrived.fetch_add(1, Ordering::AcqRel);
                    }
                    sum
                })
            })
            .collect();
        let slice = &buffer.values()[..if threads == 1 { values } else { part }];
        for pass in 0..2 * passes {
            wait(&arrived, threads * pass);
            let start = Instant::now();
            for r in 0..repeats {
                total += read(slice, backward(order, pass * repeats + r));
            }
            arrived.fetch_add(1, Ordering::AcqRel);
            wait(&arrived, threads * (pass + 1));
            if pass >= passes {
                times.push(start.elapsed().as_secs_f64() * 1e6 / repeats as f64);
            }
        }
        for helper in helpers {
            total += helper.join().unwrap_or(0.0);
        }
    });
    (times, total)
}

/// Whether read number `index` of a configuration goes backward.
fn backward(order: Order, index: usize) -> bool {
    order == Order::Serpentine && index % 2 == 1
}

/// Spins until `arrived` reaches `count`.
fn wait(arrived: &AtomicUsize, count: usize) {
    while arrived.load(Ordering::Acquire) < count {
        std::hint::spin_loop();
    }
}

/// The sum of `x` (a multiple of [`STEP`] values, 64-byte aligned), read front to back or back
/// to front in steps of [`STEP`].
fn read(x: &[f32], backward: bool) -> f32 {
    debug_assert!(x.len().is_multiple_of(STEP) && (x.as_ptr() as usize).is_multiple_of(64));
    // SAFETY: main checked AVX-512F; the slice's layout is asserted above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::read(x, backward)
    }
    #[cfg(not(target_arch = "x86_64"))]
    x.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::STEP;

    /// See [`super::read`].
    ///
    /// # Safety
    /// AVX-512F; `x` holds a multiple of [`STEP`] values from a 64-byte boundary.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn read(x: &[f32], backward: bool) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 8];
        let steps = x.len() / STEP;
        let mut step = |s: usize| {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: step s < steps lies inside x, aligned.
                *a = _mm512_add_ps(*a, unsafe { _mm512_load_ps(x.as_ptr().add(s * STEP + 16 * j)) });
            }
        };
        if backward {
            (0..steps).rev().for_each(&mut step);
        } else {
            (0..steps).for_each(&mut step);
        }
        let mut total = _mm512_setzero_ps();
        for a in acc {
            total = _mm512_add_ps(total, a);
        }
        _mm512_reduce_add_ps(total)
    }
}

/// A 64-byte-aligned buffer of f32 values in [0, 1), written once (so its pages are mapped).
struct Aligned {
    raw: Vec<f32>,
    offset: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let mut raw = vec![0.0f32; len + 16];
        let offset = raw.as_ptr().align_offset(64);
        for (i, v) in raw[offset..offset + len].iter_mut().enumerate() {
            *v = (i % 1021) as f32 / 1021.0;
        }
        Self { raw, offset, len }
    }

    fn values(&self) -> &[f32] {
        &self.raw[self.offset..self.offset + self.len]
    }
}

/// The rows as JSON: the command line, then one object per configuration.
fn to_json(rows: &[Row], passes: usize) -> String {
    let command: Vec<String> = std::env::args().map(|a| format!("{a:?}")).collect();
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"buffer\":{:?},\"bytes\":{},\"order\":\"{}\",\"threads\":{},\"median_us\":{:.4},\
                 \"p10_us\":{:.4},\"p90_us\":{:.4},\"gbps\":{:.2}}}",
                r.name,
                r.bytes,
                r.order.name(),
                r.threads,
                r.median_us,
                r.p10_us,
                r.p90_us,
                r.bytes as f64 / r.median_us / 1e3
            )
        })
        .collect();
    format!(
        "{{\"probe\":\"weight_stream\",\"command\":[{}],\"passes\":{passes},\"rows\":[\n{}\n]}}\n",
        command.join(","),
        items.join(",\n")
    )
}
