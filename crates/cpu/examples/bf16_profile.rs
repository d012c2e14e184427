//! Where the bf16 GEMM's time goes, one thread: the `vdpbf16ps` peak probe, the 8 × 32
//! microkernel alone on packed slivers that stay in cache, the packing of one product's operands
//! alone, and the whole product — beside the f32 GEMM at the same size.
//!
//!     cargo run --release -p kernelab-cpu --example bf16_profile -- 1024 2048
//!
//! Each figure is the best of 5 timings (a ceiling-like measure: a shared machine only ever makes
//! a run slower).

use std::time::Instant;

use kernelab_cpu::convert::Narrow;
use kernelab_cpu::gemm::bf16::{self, PairKernel, pack};
use kernelab_cpu::gemm::{self, MicroKernel, Strategy};
use kernelab_cpu::roofline::probe;
use kernelab_tensor::Gemm;

/// The best of 5 runs of `f`, in seconds.
fn best(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1024, 2048] } else { sizes };
    let Ok(kernel) = PairKernel::detect() else {
        eprintln!("this CPU has no vdpbf16ps: nothing to profile");
        return;
    };
    let peak = probe::dpbf16_peak_gflops(1).unwrap_or(f64::NAN);
    let fma = probe::fma_peak_gflops(1);
    println!("peaks, one thread: vdpbf16ps {peak:.0} GFLOP/s, f32 FMA {fma:.0} GFLOP/s");

    // The microkernel alone: one A sliver and one B sliver of a full depth pass, in L1/L2.
    let pairs = kernel.kc / 2;
    let a = vec![0x3f80_3f80u32; pairs * kernel.mr];
    let b = vec![0x3f80_3f80u32; pairs * kernel.nr];
    let mut c = vec![0.0f32; kernel.mr * kernel.nr];
    let calls = 2000;
    let seconds = best(|| {
        for _ in 0..calls {
            // SAFETY: the slivers and the tile have the kernel's sizes; the kernel was detected.
            unsafe { (kernel.run)(pairs, a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), kernel.nr, 1.0) };
        }
    });
    let flops = (calls * 2 * kernel.mr * kernel.nr * kernel.kc) as f64;
    let micro = flops / seconds / 1e9;
    println!(
        "microkernel {} alone (kc = {}): {micro:.0} GFLOP/s = {:.0}% of the peak",
        kernel.name,
        kernel.kc,
        100.0 * micro / peak
    );

    for n in sizes {
        let g = Gemm::new(n, n, n);
        let ab: Vec<u16> = (0..n * n).map(|i| Narrow::Bf16.from_f32((i % 17) as f32 / 17.0 - 0.4)).collect();
        let ab32: Vec<f32> = ab.iter().map(|&h| Narrow::Bf16.to_f32(h)).collect();
        let mut c = vec![0.0f32; n * n];
        let total = best(|| bf16::gemm_dpbf16(&ab, &ab, &mut c, &g, kernel, false));
        let f32_total = best(|| gemm::gemm(&ab32, &ab32, &mut c, &g, Strategy::Packed(MicroKernel::best()), false));
        // Packing alone, as the one-thread product does it: B once per depth pass, A once per
        // MC-row block per pass.
        let panel = pack::Panel { data: &ab, lane_stride: n, depth_stride: 1 };
        let b_panel = pack::Panel { data: &ab, lane_stride: 1, depth_stride: n };
        let (mut pa, mut pb) = (pack::Packed::default(), pack::Packed::default());
        let packing = best(|| {
            for pc in (0..n).step_by(kernel.kc) {
                let depth = pc..(pc + kernel.kc).min(n);
                pack::pack(b_panel, 0..n, depth.clone(), kernel.nr, &mut pb);
                for ic in (0..n).step_by(gemm::MC) {
                    pack::pack(panel, ic..(ic + gemm::MC).min(n), depth.clone(), kernel.mr, &mut pa);
                }
            }
        });
        let gf = |s: f64| g.flops() / s / 1e9;
        println!(
            "{n}³: bf16 {:.0} GFLOP/s ({:.0}% of peak; {:.1} ms, packing {:.1} ms = {:.0}%), f32 {:.0} GFLOP/s, bf16/f32 {:.2}x",
            gf(total),
            100.0 * gf(total) / peak,
            total * 1e3,
            packing * 1e3,
            100.0 * packing / total,
            gf(f32_total),
            f32_total / total
        );
    }
}
