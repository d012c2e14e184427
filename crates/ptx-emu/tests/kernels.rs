//! Real kernels of `kernels/` run on the interpreter against f64 references, outputs poisoned
//! with NaN first, with the sanitizer on: every matmul rung on shapes past every tile with k > 32,
//! the row-wise softmax family (shuffles, shared memory, `.func` calls), elementwise ops.

mod common;

use common::cases::{RUNGS, matmul, matmul_wrong, softmax};
use common::{Arg, Rng, download, first_wrong, run, source_of, upload};
use kernelab_ptx_emu::Memory;

#[test]
fn every_matmul_rung_past_every_tile() {
    for rung in &RUNGS {
        let text = source_of(rung.entry);
        for (shape, ta, tb, beta) in [
            ((67, 45, 73), false, false, 0.0),
            ((129, 65, 97), true, true, -1.0),
            ((33, 20, 36), true, false, 0.5),
            ((19, 24, 40), false, true, 0.0),
        ] {
            let (got, want, budget) =
                matmul(&text, rung, shape, ta, tb, beta, true).unwrap_or_else(|f| panic!("{}: {f}", rung.entry));
            if let Some((i, g, w)) = matmul_wrong(&got, &want, &budget) {
                panic!("{} {shape:?} ta={ta} tb={tb} beta={beta}: C[{i}] = {g}, want {w}", rung.entry);
            }
        }
    }
}

#[test]
fn softmax_family_with_shuffles() {
    for (file_entry, entry) in [("softmax", "softmax"), ("log_softmax", "log_softmax"), ("my_softmax", "my_softmax")] {
        let text = source_of(file_entry);
        for (rows, cols, blocks) in [(3, 5, 8), (5, 33, 2), (4, 300, 4), (7, 1030, 3)] {
            let (got, want) =
                softmax(&text, entry, rows, cols, blocks, true).unwrap_or_else(|f| panic!("{entry}: {f}"));
            if let Some((i, g, w)) = first_wrong(&got, &want, 2e-6) {
                panic!("{entry} {rows}x{cols}: y[{i}] = {g}, want {w}");
            }
        }
    }
}

#[test]
fn elementwise_ops_with_nan_and_grid_stride() {
    let text = source_of("relu");
    let n = 700u32;
    let cols = 7u32;
    let mut rng = Rng::new(3);
    let mut x = rng.vec(n as usize, -2.0, 2.0);
    x[3] = f32::NAN;
    x[4] = -0.0;
    let bias = rng.vec(cols as usize, -1.0, 1.0);
    let relu = |v: f64| if v.is_nan() { f64::NAN } else { v.max(0.0) };
    let cases: [(&str, Vec<f64>); 3] = [
        ("relu", x.iter().map(|&v| relu(v as f64)).collect()),
        ("bias_relu", x.iter().enumerate().map(|(i, &v)| relu((v + bias[i % 7]) as f64)).collect()),
        ("bias_add", x.iter().enumerate().map(|(i, &v)| (v + bias[i % 7]) as f64).collect()),
    ];
    for (entry, want) in cases {
        let mut mem = Memory::new(1 << 20);
        let px = upload(&mut mem, &x);
        let pb = upload(&mut mem, &bias);
        let py = upload(&mut mem, &vec![f32::NAN; n as usize]);
        let args: Vec<Arg> = match entry {
            "relu" => vec![Arg::Ptr(px), Arg::Ptr(py), Arg::U32(n)],
            _ => vec![Arg::Ptr(px), Arg::Ptr(pb), Arg::Ptr(py), Arg::U32(n), Arg::U32(cols)],
        };
        run(&text, entry, [2, 1, 1], [256, 1, 1], &args, &mut mem, true).unwrap_or_else(|f| panic!("{entry}: {f}"));
        let got = download(&mem, py, n as usize);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let ok = if w.is_nan() { g.is_nan() } else { g as f64 == w };
            assert!(ok, "{entry}: y[{i}] = {g}, want {w} (x = {})", x[i]);
        }
        if entry == "relu" {
            assert!(got[3].is_nan(), "max.NaN keeps NaN");
        }
    }
}
