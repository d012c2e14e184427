//! Where the bf16 GEMM's time goes, and how it stands against the f32 GEMM: the `vdpbf16ps` peak
//! probe, the 8 × 32 microkernel alone on packed slivers that stay in cache, the packing of one
//! product's operands alone, and whole products in bf16 (`bf16-dpbf16`) and f32 (the default
//! `threaded` GEMM's choice) on one and two threads.
//!
//!     cargo run --release -p kernelab-cpu --example bf16_profile -- [--rounds 5] [--json OUT] 1024 2048
//!
//! `--peak-only` runs the two peak probes alone (`vdpbf16ps` and f32 FMA, one thread), as
//! `scripts/precision_targets.sh` does between the products it times.
//!
//! Every measurement runs once per round, the rounds one after another, and each figure is the
//! best over the rounds: on a machine shared with other work a figure is only ever lowered, so
//! the best of interleaved rounds is the nearest to what the code does alone, and the ratios
//! compare figures from the same minutes.

use std::time::Instant;

use kernelab_cpu::convert::Narrow;
use kernelab_cpu::gemm::bf16::{self, PairKernel, pack};
use kernelab_cpu::gemm::{self, Strategy};
use kernelab_cpu::roofline::probe;
use kernelab_tensor::Gemm;

/// Seconds of one run of `f` after one untimed run.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let t0 = Instant::now();
    f();
    t0.elapsed().as_secs_f64()
}

/// The best (largest) value each key reached over the rounds.
#[derive(Default)]
struct Best(Vec<(String, f64)>);

impl Best {
    fn offer(&mut self, key: String, value: f64) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = v.max(value),
            None => self.0.push((key, value)),
        }
    }

    fn get(&self, key: &str) -> f64 {
        self.0.iter().find(|(k, _)| k == key).map_or(f64::NAN, |(_, v)| *v)
    }
}

/// The one-thread peaks of `vdpbf16ps` and of the f32 FMA, offered to `best` as GFLOP/s.
fn peaks(best: &mut Best) {
    best.offer("peak dpbf16 1t".into(), probe::dpbf16_peak_gflops(1).unwrap_or(f64::NAN));
    best.offer("peak fma 1t".into(), probe::fma_peak_gflops(1));
}

/// One round of every measurement, offered to `best` as GFLOP/s (packing as ms, negated).
fn round(kernel: PairKernel, sizes: &[usize], best: &mut Best) {
    peaks(best);
    let pairs = kernel.kc / 2;
    let (a, b) = (vec![0x3f80_3f80u32; pairs * kernel.mr], vec![0x3f80_3f80u32; pairs * kernel.nr]);
    let mut c = vec![0.0f32; kernel.mr * kernel.nr];
    let calls = 4000;
    let seconds = time(|| {
        for _ in 0..calls {
            // SAFETY: the slivers and the tile have the kernel's sizes; the kernel was detected.
            unsafe { (kernel.run)(pairs, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), kernel.nr, 1.0, false) };
        }
    });
    best.offer("microkernel 1t".into(), (calls * 2 * kernel.mr * kernel.nr * kernel.kc) as f64 / seconds / 1e9);
    for &n in sizes {
        let g = Gemm::new(n, n, n);
        let ab: Vec<u16> = (0..n * n).map(|i| Narrow::Bf16.from_f32((i % 17) as f32 / 17.0 - 0.4)).collect();
        let ab32: Vec<f32> = ab.iter().map(|&h| Narrow::Bf16.to_f32(h)).collect();
        let mut c = vec![0.0f32; n * n];
        let gf = |s: f64| g.flops() / s / 1e9;
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            pool.install(|| {
                let t = time(|| bf16::gemm_dpbf16(&ab, &ab, &mut c, &g, kernel, true));
                best.offer(format!("{n} bf16 {threads}t"), gf(t));
                let t = time(|| gemm::gemm(&ab32, &ab32, &mut c, &g, Strategy::choose(&g), true));
                best.offer(format!("{n} f32 {threads}t"), gf(t));
            });
        }
        // Packing alone, as the one-thread product does it: B once per depth pass, A once per
        // MC-row block per pass.
        let a_panel = pack::Panel { data: &ab, lane_stride: n, depth_stride: 1 };
        let b_panel = pack::Panel { data: &ab, lane_stride: 1, depth_stride: n };
        let (mut pa, mut pb) = (pack::Packed::default(), pack::Packed::default());
        let t = time(|| {
            for pc in (0..n).step_by(kernel.kc) {
                let depth = pc..(pc + kernel.kc).min(n);
                pack::pack(b_panel, 0..n, depth.clone(), kernel.nr, &mut pb);
                for ic in (0..n).step_by(gemm::MC) {
                    pack::pack(a_panel, ic..(ic + gemm::MC).min(n), depth.clone(), kernel.mr, &mut pa);
                }
            }
        });
        best.offer(format!("{n} packing ms (negated)"), -t * 1e3);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut json, mut sizes, mut peak_only) = (5, None, Vec::new(), false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--peak-only" => peak_only = true,
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--json" => json = args.next(),
            size => sizes.extend(size.parse::<usize>().ok()),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1024, 2048];
    }
    let Ok(kernel) = PairKernel::detect() else {
        eprintln!("this CPU has no vdpbf16ps: nothing to profile");
        return;
    };
    let mut best = Best::default();
    for r in 0..rounds {
        if peak_only {
            peaks(&mut best);
        } else {
            round(kernel, &sizes, &mut best);
        }
        eprintln!("round {} of {rounds} done", r + 1);
    }
    let peak = best.get("peak dpbf16 1t");
    println!("peaks, one thread: vdpbf16ps {peak:.0} GFLOP/s, f32 FMA {:.0} GFLOP/s", best.get("peak fma 1t"));
    if peak_only {
        write_json(json, rounds, &[], kernel, &best);
        return;
    }
    let micro = best.get("microkernel 1t");
    println!(
        "microkernel {} alone (kc = {}): {micro:.0} GFLOP/s = {:.0}% of the bf16 peak",
        kernel.name,
        kernel.kc,
        100.0 * micro / peak
    );
    for &n in &sizes {
        let packing = -best.get(&format!("{n} packing ms (negated)"));
        let bf1 = best.get(&format!("{n} bf16 1t"));
        let product_ms = 2.0 * (n as f64).powi(3) / bf1 / 1e6;
        println!(
            "{n}³: packing alone {packing:.2} ms = {:.1}% of the one-thread bf16 product ({product_ms:.1} ms)",
            100.0 * packing / product_ms
        );
        for t in [1, 2] {
            let (bf, f) = (best.get(&format!("{n} bf16 {t}t")), best.get(&format!("{n} f32 {t}t")));
            println!(
                "  {t} thread(s): bf16 {bf:.0} GFLOP/s, f32 {f:.0} GFLOP/s, bf16/f32 {:.2}x{}",
                bf / f,
                if t == 1 { format!(", {:.0}% of the bf16 peak", 100.0 * bf / peak) } else { String::new() }
            );
        }
    }
    write_json(json, rounds, &sizes, kernel, &best);
}

/// Every best figure as `{"best_gflops": {key: value}, …}` to `path`, when one was given.
fn write_json(path: Option<String>, rounds: usize, sizes: &[usize], kernel: PairKernel, best: &Best) {
    let Some(path) = path else { return };
    let values: serde_json::Map<String, serde_json::Value> =
        best.0.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
    let doc = serde_json::json!({"rounds": rounds, "sizes": sizes, "kernel": kernel.name, "best_gflops": values,
        "cpu": kernelab_cpu::cpu_model(), "note": "best over interleaved rounds on a machine shared with other builds"});
    if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
        eprintln!("cannot write {path}: {e}");
    }
}
