//! Calls a model's forward-only path in a tight loop, for profiling (`perf record`) and for the
//! distribution of single-call times, beside controls that take the same timer around less work.
//!
//! ```sh
//! cargo run --release --example infer_loop -- 784-128-10 1 100000 forward
//! ```
//!
//! Arguments: the model spec, the batch, the calls (at least 1000), and what each call is:
//! - `forward`: [`Inference::forward`], as `kernelab infer` times it;
//! - `empty`: nothing (the timer's own cost and the machine's interruptions);
//! - `spin:NS`: a busy wait of `NS` nanoseconds (a tail the machine adds to any work that long);
//! - `stream:BYTES`: a sum over a buffer of `BYTES` bytes (the weights' traffic without their
//!   arithmetic: a tail the memory hierarchy adds, e.g. the shared L3);
//! - `after:B`: one call of batch `B`, then [`AFTER`] calls of the batch timed one by one, over
//!   and over (`calls` ÷ [`AFTER`] times): the p50 of each position, so that what a call of another
//!   size leaves behind (as `kernelab infer`'s interleaved rounds do) shows, and how long it lasts
//!   (what `kernelab infer --settle-ms` must cover);
//! - `ab`: the first layer's product alone on its weights prepared with and without the dot
//!   layout, in alternating blocks of 1000 calls (p50 of each; their outputs compared bit for bit).
//!
//! Prints the minimum, p50, p90, p99, p99.9 and maximum in µs, and a histogram of the calls above
//! 1.5×p50 by where they fall in the loop (so that periodic stalls show).

use std::time::Instant;

use kernelab::nn::{Inference, Mlp};
use kernelab::{Device, cpu::CpuBackend};

fn main() -> kernelab::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let (spec, mode) = (arg(0, "784-128-10"), arg(3, "forward"));
    let batch: usize = arg(1, "1").parse().unwrap_or(1);
    let calls: usize = arg(2, "100000").parse().unwrap_or(100_000).max(1000);
    let device = Device::new(CpuBackend::new());
    let model = Mlp::new(&spec, 0, &device)?;
    let mut inference = Inference::new(&model)?;
    let images: Vec<f32> = (0..batch * inference.inputs()).map(|i| (i % 251) as f32 / 251.0).collect();
    if mode == "ab" {
        return ab(&model, &images, batch, calls);
    }
    if let Some(other) = mode.strip_prefix("after:").and_then(|b| b.parse::<usize>().ok()) {
        return after(&mut inference, &images, other, calls);
    }
    let spin = mode.strip_prefix("spin:").and_then(|ns| ns.parse::<u64>().ok());
    let stream: Vec<f32> = mode
        .strip_prefix("stream:")
        .and_then(|b| b.parse::<usize>().ok())
        .map_or(Vec::new(), |bytes| (0..bytes / 4).map(|i| (i % 7) as f32).collect());
    let mut call = || -> kernelab::Result<()> {
        match (mode.as_str(), spin) {
            ("forward", _) => inference.forward(&images).map(drop),
            _ if !stream.is_empty() => {
                let sums = stream.chunks_exact(16).fold([0.0f32; 16], |mut acc, v| {
                    acc.iter_mut().zip(v).for_each(|(a, x)| *a += x);
                    acc
                });
                std::hint::black_box(sums);
                Ok(())
            }
            (_, Some(ns)) => {
                let t = Instant::now();
                while (t.elapsed().as_nanos() as u64) < ns {}
                Ok(())
            }
            _ => Ok(()),
        }
    };
    for _ in 0..calls / 10 {
        call()?;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        call()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f) as usize];
    let p50 = q(0.5);
    println!(
        "{spec} batch {batch} {mode}: min {:.3} p50 {p50:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.1} µs; p99/p50 {:.2}",
        sorted[0],
        q(0.9),
        q(0.99),
        q(0.999),
        sorted[sorted.len() - 1],
        q(0.99) / p50
    );
    let slow: Vec<usize> = (0..times.len()).filter(|&i| times[i] > 1.5 * p50).collect();
    let tenths: Vec<usize> = (0..10).map(|d| slow.iter().filter(|&&i| i * 10 / times.len() == d).count()).collect();
    println!(
        "calls above 1.5×p50: {} ({:.2}%), by tenth of the loop {tenths:?}",
        slow.len(),
        100.0 * slow.len() as f64 / times.len() as f64
    );
    Ok(())
}

/// The `ab` mode: see the header.
fn ab(model: &Mlp, images: &[f32], batch: usize, calls: usize) -> kernelab::Result<()> {
    use kernelab::cpu::gemm::prepacked::{Epilogue, PackedNt, gemm_prepacked};
    let last = model.layers().len() - 1;
    let mut layers = Vec::new();
    for (i, layer) in model.layers().iter().enumerate() {
        let (n, k) = (layer.outputs(), layer.inputs());
        let w = layer.weight().to_vec()?;
        let packed = [PackedNt::with_dot_panels(&w, n, k, false)?, PackedNt::with_dot_panels(&w, n, k, true)?];
        layers.push((packed, layer.bias().to_vec()?, i < last, n));
    }
    // Each side's own buffers: the input, every layer's output.
    let mut bufs: Vec<Vec<Vec<f32>>> = (0..2)
        .map(|_| {
            let mut b = vec![vec![0.0; images.len()]];
            b.extend(layers.iter().map(|l| vec![f32::NAN; batch * l.3]));
            b
        })
        .collect();
    let mut run = |which: usize| -> kernelab::Result<()> {
        let b = &mut bufs[which];
        b[0].copy_from_slice(images);
        for (i, (packed, bias, relu, _)) in layers.iter().enumerate() {
            let (done, rest) = b.split_at_mut(i + 1);
            let ep = Epilogue { bias: Some(bias), relu: *relu };
            gemm_prepacked(&done[i], batch, &packed[which], &mut rest[0], &ep, true)?;
        }
        Ok(())
    };
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for block in 0..calls / 1000 * 2 + 2 {
        let which = block % 2;
        for _ in 0..1000 {
            let t = Instant::now();
            run(which)?;
            if block >= 2 {
                times[which].push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let same = bufs[0].last() == bufs[1].last() && bufs[0].iter().flatten().all(|v| !v.is_nan());
    let p50 = |t: &mut Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let (plain, dots) = (p50(&mut times[0]), p50(&mut times[1]));
    println!(
        "batch {batch}, every layer: in place {plain:.3} µs, dot layout {dots:.3} µs ({:.3}x); logits equal: {same}",
        dots / plain
    );
    Ok(())
}

/// Calls timed after each call of the other batch size in the `after:B` mode.
const AFTER: usize = 32;

/// The `after:B` mode: see the header.
fn after(inference: &mut Inference, images: &[f32], other: usize, calls: usize) -> kernelab::Result<()> {
    let other_images: Vec<f32> = (0..other * inference.inputs()).map(|i| (i % 241) as f32 / 241.0).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); AFTER];
    for rep in 0..calls / AFTER + 10 {
        inference.forward(&other_images)?;
        for t in &mut times {
            let started = Instant::now();
            inference.forward(images)?;
            if rep >= 10 {
                t.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let p50s: Vec<String> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            format!("{:.2}", t[t.len() / 2])
        })
        .collect();
    println!("after one call of batch {other}, the next {AFTER} calls' p50 (µs): {}", p50s.join(" "));
    Ok(())
}
