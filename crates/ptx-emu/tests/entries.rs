//! The other entry points of `kernels/` and `examples/kernels/ptx/`, each once against an f64
//! reference (outputs poisoned with NaN, the sanitizer on), so that the interpreter runs every
//! kernel the CUDA backend launches.

mod common;

use common::cases::{Rung, matmul, matmul_wrong};
use common::{Arg, Rng, download, run, source_of, upload};
use kernelab_ptx_emu::Memory;

/// Runs `entry` on `inputs` (uploaded) then `outputs` NaN buffers of the given lengths, then
/// `extra` arguments; returns the outputs.
fn launch(
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[&[f32]],
    outputs: &[usize],
    extra: &[Arg],
) -> Vec<Vec<f32>> {
    let mut mem = Memory::new(1 << 26);
    let mut args: Vec<Arg> = inputs.iter().map(|v| Arg::Ptr(upload(&mut mem, v))).collect();
    let outs: Vec<u64> = outputs.iter().map(|&n| upload(&mut mem, &vec![f32::NAN; n])).collect();
    args.extend(outs.iter().map(|&p| Arg::Ptr(p)));
    args.extend_from_slice(extra);
    run(&source_of(entry), entry, grid, block, &args, &mut mem, true).unwrap_or_else(|f| panic!("{entry}: {f}"));
    outs.iter().zip(outputs).map(|(&p, &n)| download(&mem, p, n)).collect()
}

/// Every element within `tol·(1 + |want|)` of its reference; a NaN reference wants NaN.
fn check(entry: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{entry}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() { g.is_nan() } else { (g as f64 - w).abs() <= tol * (1.0 + w.abs()) };
        assert!(ok, "{entry}: [{i}] = {g}, want {w}");
    }
}

fn softmax_rows(x: &[f32], cols: usize, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut lse) = (Vec::new(), Vec::new());
    for row in x.chunks(cols) {
        let s: Vec<f64> = row.iter().map(|&v| v as f64 * scale).collect();
        let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = s.iter().map(|v| (v - mx).exp()).sum();
        p.extend(s.iter().map(|v| (v - mx).exp() / sum));
        lse.push(mx + sum.ln());
    }
    (p, lse)
}

const ROWS: usize = 5;
const COLS: usize = 70;
/// Two blocks of 256 stride over the 5 rows; the row-wise kernels' last two parameters.
const GRID: [u32; 3] = [2, 1, 1];
const BLOCK: [u32; 3] = [256, 1, 1];
const DIMS: [Arg; 2] = [Arg::U32(ROWS as u32), Arg::U32(COLS as u32)];

/// Logits (5 × 70) and their softmax and log-sum-exp per row.
fn logits(rng: &mut Rng) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let x = rng.vec(ROWS * COLS, -3.0, 3.0);
    let (p, lse) = softmax_rows(&x, COLS, 1.0);
    (x, p, lse)
}

#[test]
fn softmax_backward_pair() {
    let (rows, cols) = (ROWS, COLS);
    let mut rng = Rng::new(11);
    let (x, p, lse) = logits(&mut rng);
    let dy = rng.vec(rows * cols, -1.0, 1.0);
    let y: Vec<f32> = p.iter().map(|&v| v as f32).collect();
    let (g, b, e) = (GRID, BLOCK, DIMS);
    let mut want = Vec::new();
    for r in 0..rows {
        let at = r * cols..(r + 1) * cols;
        let dot: f64 = at.clone().map(|i| y[i] as f64 * dy[i] as f64).sum();
        want.extend(at.map(|i| y[i] as f64 * (dy[i] as f64 - dot)));
    }
    check("softmax_backward", &launch("softmax_backward", g, b, &[&y, &dy], &[rows * cols], &e)[0], &want, 1e-5);
    let ly: Vec<f32> = (0..rows * cols).map(|i| (x[i] as f64 - lse[i / cols]) as f32).collect();
    let mut want = Vec::new();
    for r in 0..rows {
        let tot: f64 = dy[r * cols..(r + 1) * cols].iter().map(|&v| v as f64).sum();
        want.extend((r * cols..(r + 1) * cols).map(|i| dy[i] as f64 - (ly[i] as f64).exp() * tot));
    }
    check(
        "log_softmax_backward",
        &launch("log_softmax_backward", g, b, &[&ly, &dy], &[rows * cols], &e)[0],
        &want,
        1e-5,
    );
}

#[test]
fn cross_entropy_and_kl_divergence() {
    let (rows, cols) = (ROWS, COLS);
    let mut rng = Rng::new(12);
    let (x, p, lse) = logits(&mut rng);
    let (g, b, e) = (GRID, BLOCK, DIMS);
    let mut labels: Vec<f32> = (0..rows).map(|r| ((r * 13) % cols) as f32).collect();
    labels[1] = cols as f32; // invalid: that row's loss and gradient are NaN
    let out = launch("softmax_cross_entropy", g, b, &[&x, &labels], &[rows, rows * cols], &e);
    let valid = |r: usize| labels[r] < cols as f32;
    let want_loss: Vec<f64> =
        (0..rows).map(|r| if valid(r) { lse[r] - x[r * cols + labels[r] as usize] as f64 } else { f64::NAN }).collect();
    let want_grad: Vec<f64> = (0..rows * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            if valid(r) { (p[i] - if c == labels[r] as usize { 1.0 } else { 0.0 }) / rows as f64 } else { f64::NAN }
        })
        .collect();
    check("softmax_cross_entropy loss", &out[0], &want_loss, 1e-5);
    check("softmax_cross_entropy grad", &out[1], &want_grad, 1e-6);
    assert!(out[0][1].is_nan() && out[1][cols].is_nan(), "an invalid label gives NaN");

    let t = 2.5f32;
    let mut q = Vec::new();
    for _ in 0..rows {
        let mut w = rng.vec(cols, 0.0, 1.0);
        w[0] = 0.0;
        let s: f32 = w.iter().sum();
        q.extend(w.iter().map(|v| v / s));
    }
    let (pt, lset) = softmax_rows(&x, cols, 1.0 / t as f64);
    let out = launch("kl_div", g, b, &[&x, &q], &[rows, rows * cols], &[e[0], e[1], Arg::F32(t)]);
    let want_kl: Vec<f64> = (0..rows)
        .map(|r| {
            (0..cols)
                .map(|c| (r * cols + c, q[r * cols + c] as f64))
                .filter(|&(_, qv)| qv > 0.0)
                .map(|(i, qv)| qv * (qv.ln() - (x[i] as f64 / t as f64 - lset[r])))
                .sum()
        })
        .collect();
    let want_kg: Vec<f64> = (0..rows * cols).map(|i| (pt[i] - q[i] as f64) / (t as f64 * rows as f64)).collect();
    check("kl_div loss", &out[0], &want_kl, 1e-5);
    check("kl_div grad", &out[1], &want_kg, 1e-6);
}

#[test]
fn column_sums_over_32x8_blocks() {
    let mut rng = Rng::new(13);
    for (rows, cols, acc) in [(20, 40, 0u32), (9, 1, 1), (35, 70, 1)] {
        let x = rng.vec(rows * cols, -1.0, 1.0);
        let y0 = rng.vec(cols, -1.0, 1.0);
        let mut mem = Memory::new(1 << 20);
        let (px, py) =
            (upload(&mut mem, &x), upload(&mut mem, &if acc == 1 { y0.clone() } else { vec![f32::NAN; cols] }));
        let args =
            [Arg::Ptr(px), Arg::Ptr(py), Arg::U32(rows as u32), Arg::U32(cols as u32), Arg::F32(0.5), Arg::U32(acc)];
        run(&source_of("col_sum"), "col_sum", [(cols as u32).div_ceil(32), 1, 1], [32, 8, 1], &args, &mut mem, true)
            .unwrap();
        let want: Vec<f64> = (0..cols)
            .map(|c| {
                0.5 * (0..rows).map(|r| x[r * cols + c] as f64).sum::<f64>() + if acc == 1 { y0[c] as f64 } else { 0.0 }
            })
            .collect();
        check("col_sum", &download(&mem, py, cols), &want, 1e-5);
    }
}

#[test]
fn elementwise_adam_and_the_probe() {
    let n = 700;
    let mut rng = Rng::new(5);
    let (x, z) = (rng.vec(n, -2.0, 2.0), rng.vec(n, -2.0, 2.0));
    let (g, b, un) = ([2, 1, 1], [256, 1, 1], Arg::U32(n as u32));
    let exact = |entry: &str, got: &[f32], want: Vec<f64>| check(entry, got, &want, 0.0);
    exact("fill", &launch("fill", g, b, &[], &[n], &[un, Arg::F32(2.5)])[0], vec![2.5; n]);
    let want = x.iter().zip(&z).map(|(&a, &d)| if a > 0.0 { d as f64 } else { 0.0 }).collect();
    exact("relu_backward", &launch("relu_backward", g, b, &[&x, &z], &[n], &[un])[0], want);
    exact(
        "add",
        &launch("add", g, b, &[&x, &z], &[n], &[un])[0],
        x.iter().zip(&z).map(|(&a, &b)| (a + b) as f64).collect(),
    );
    exact(
        "scale",
        &launch("scale", g, b, &[&x], &[n], &[un, Arg::F32(-0.5)])[0],
        x.iter().map(|&a| (-0.5 * a) as f64).collect(),
    );
    let by = launch("scale_by", g, b, &[&x, &[1.5]], &[n], &[un, Arg::F32(2.0)]);
    exact("scale_by", &by[0], x.iter().map(|&a| (3.0 * a) as f64).collect());
    let mut mem = Memory::new(1 << 20);
    let (px, py) = (upload(&mut mem, &z), upload(&mut mem, &x));
    run(&source_of("axpy"), "axpy", g, b, &[Arg::Ptr(px), Arg::Ptr(py), un, Arg::F32(0.25)], &mut mem, true).unwrap();
    let want: Vec<f64> = x.iter().zip(&z).map(|(&y, &xv)| 0.25f32.mul_add(xv, y) as f64).collect();
    check("axpy", &download(&mem, py, n), &want, 1e-7);

    let n = 300;
    let (p, gr, m) = (rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0));
    let v = rng.vec(n, 0.0, 1.0);
    let (lr, b1, b2, eps, t) = (1e-2f64, 0.9f64, 0.999f64, 1e-8f64, 3);
    let (step, inv) = (lr / (1.0 - b1.powi(t)), 1.0 / (1.0 - b2.powi(t)).sqrt());
    let mut mem = Memory::new(1 << 20);
    let ptrs: Vec<u64> = [&p, &gr, &m, &v].iter().map(|a| upload(&mut mem, a)).collect();
    let mut args: Vec<Arg> = ptrs.iter().map(|&a| Arg::Ptr(a)).collect();
    args.extend([
        Arg::U32(n as u32),
        Arg::F32(step as f32),
        Arg::F32(inv as f32),
        Arg::F32(b1 as f32),
        Arg::F32(b2 as f32),
        Arg::F32(eps as f32),
    ]);
    run(&source_of("adam"), "adam", [1, 1, 1], [256, 1, 1], &args, &mut mem, true).unwrap();
    let wm: Vec<f64> = (0..n).map(|i| b1 * m[i] as f64 + (1.0 - b1) * gr[i] as f64).collect();
    let wv: Vec<f64> = (0..n).map(|i| b2 * v[i] as f64 + (1.0 - b2) * (gr[i] as f64).powi(2)).collect();
    let wp: Vec<f64> = (0..n).map(|i| p[i] as f64 - step * wm[i] / (wv[i].sqrt() * inv + eps)).collect();
    check("adam m", &download(&mem, ptrs[2], n), &wm, 1e-6);
    check("adam v", &download(&mem, ptrs[3], n), &wv, 1e-6);
    check("adam param", &download(&mem, ptrs[0], n), &wp, 1e-6);

    // fma_peak: 8 chains x = x*mul + add from x = thread + 1 + c/128, 4 FMAs per chain and
    // iteration; with mul = 0.5 and add = 1 each chain converges to 2 (after 30 iterations, 120
    // halvings leave nothing of the start in f32), so
    // every thread's sum of its 8 chains is 16, and with no iteration it is 8·thread + 8.21875.
    let mut mem = Memory::new(1 << 20);
    let out = upload(&mut mem, &[f32::NAN; 512]);
    let probe = |mem: &mut Memory, iterations: u32| {
        let args = [Arg::Ptr(out), Arg::U32(iterations), Arg::F32(0.5), Arg::F32(1.0)];
        run(&source_of("fma_peak"), "fma_peak", [2, 1, 1], [256, 1, 1], &args, mem, true).unwrap();
        download(mem, out, 512)
    };
    assert!(probe(&mut mem, 30).iter().all(|&v| v == 16.0));
    let start = probe(&mut mem, 0);
    assert!((0..512).all(|t| start[t] == 8.0 * t as f32 + 8.21875), "{:?}", &start[..4]);
}

#[test]
fn the_example_matmul_past_its_tiles() {
    let rung = Rung { entry: "my_matmul_tiled", block: [16, 16, 1], tile: 16, rows_along_x: false };
    let text = source_of("my_matmul_tiled");
    for (shape, ta, tb) in [((19, 23, 21), false, false), ((33, 18, 37), true, true)] {
        let (got, want, budget) = matmul(&text, &rung, shape, ta, tb, -1.0, true).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(matmul_wrong(&got, &want, &budget), None, "{shape:?}");
    }
}
