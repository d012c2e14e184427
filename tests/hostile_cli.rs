//! The command line against what a careless or hostile user gives it: sweeps too large to build,
//! sizes that were once cut short, options that were once ignored, `check`'s output in a build
//! without OpenBLAS, and plots of reports whose rows do not make one sweep.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{cpu_bench, fails_with, kernelab, ok, text};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_sweep_is_counted_before_it_is_built() {
    let started = Instant::now();
    fails_with(
        &cpu_bench("matmul", "1..4096+1x1..4096+1x1..4096+1", &[]),
        2,
        "sweeps 68719476736 shapes; one run sweeps at most 10000",
    );
    fails_with(&cpu_bench("relu", "1..6000+1,1..6000+1", &[]), 2, "give relu 12000 shapes");
    assert!(started.elapsed().as_secs() < 10, "refused at once, nothing built");
}

#[test]
fn every_size_of_a_sweep_is_run() {
    let d = dir();
    let report = d.path().join("r.json");
    let quick = ["--variant", "default", "--budget", "0", "--warmup", "0", "--repeat", "1"];
    let mut args = cpu_bench("relu", "1..5000+1", &quick);
    args.extend(["--json", arg(&report)]);
    ok(&args);
    let report = json(&report);
    let shapes: Vec<u64> =
        report["records"].as_array().unwrap().iter().map(|r| r["shape"][0].as_u64().unwrap()).collect();
    assert_eq!(shapes, (1..=5000).collect::<Vec<u64>>(), "the sizes past 4096 too");
}

#[test]
fn options_that_do_not_apply_are_refused_not_ignored() {
    fails_with(&["bench", "--op", "relu", "--preset", "mlp"], 2, "--preset mlp holds matmul products only");
    fails_with(&["bench", "--op", "matmul,softmax", "--preset", "mlp"], 2, "not shapes for softmax");
    fails_with(&cpu_bench("relu", "64..1024:NT", &[]), 2, "a layout (:NT, :TN, :TT) is for matmul only");
    fails_with(&cpu_bench("matmul,relu", "64..256:TN", &[]), 2, "relu would ignore it");
}

#[test]
fn check_says_once_what_it_skips_and_sums_up_each_variant() {
    let (stdout, _) = ok(&["check", "--backend", "cpu", "--op", "matmul,relu", "--variant", "openblas,naive,portable"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() <= 10, "a line per op, skipped variant and variant:\n{stdout}");
    assert!(!stdout.contains(": skipped ("), "no line per skipped case:\n{stdout}");
    let per_variant = |name: &str| lines.iter().filter(|l| l.trim_start().starts_with(name)).count();
    assert_eq!((per_variant("naive"), per_variant("portable"), per_variant("openblas")), (1, 1, 1), "{stdout}");
    if !cfg!(feature = "openblas") {
        let skipped: Vec<&&str> = lines.iter().filter(|l| l.contains("matmul/openblas: skipped")).collect();
        assert_eq!(skipped.len(), 1, "{stdout}");
        assert!(skipped[0].contains("cases (not compiled in"), "{stdout}");
    }
    assert!(!stdout.contains("packed_avx2") && !stdout.contains("avx512"), "only the chosen variants:\n{stdout}");
    fails_with(
        &["check", "--backend", "cpu", "--variant", "packed_avx513"],
        2,
        "--variant packed_avx513: no backend has a variant `packed_avx513`",
    );
}

/// A report of naive matmul at `shapes` (one --shape item each).
fn matmul_report(into: &Path, name: &str, shapes: &str) -> PathBuf {
    let path = into.join(name);
    let mut args = cpu_bench("matmul", shapes, &["--variant", "naive", "--budget", "0.02", "--repeat", "3"]);
    args.extend(["--json", arg(&path)]);
    ok(&args);
    path
}

fn plot(report: &Path, kind: &str) -> (std::process::Output, String) {
    let out = report.with_extension(format!("{kind}.svg"));
    let run = kernelab(&["plot", arg(report), "--kind", kind, "--out", arg(&out)]);
    (run, std::fs::read_to_string(&out).unwrap_or_default())
}

#[test]
fn a_sweep_plot_draws_one_line_per_layout_against_one_quantity() {
    let d = dir();
    let layouts = matmul_report(d.path(), "layouts.json", "8..32,8..32:NT");
    let (run, svg) = plot(&layouts, "sweep");
    assert!(run.status.success(), "{}", text(&run));
    assert!(svg.contains("cpu/naive, 1t") && svg.contains("cpu/naive NT, 1t"), "NN and NT are two series");
    assert!(svg.contains("n (matmul n×n×n)"));

    let thin = matmul_report(d.path(), "thin.json", "8..32x3x5");
    let (run, svg) = plot(&thin, "sweep");
    assert!(run.status.success(), "{}", text(&run));
    assert!(svg.contains("M (N = 3, K = 5)"), "the x axis is M, the fixed sizes named");

    let mixed = matmul_report(d.path(), "mixed.json", "8..32,8..16x3x5");
    let (run, _) = plot(&mixed, "sweep");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let says = "the matmul rows vary in M, N, K each on its own (8x8x8, 16x16x16, 32x32x32, 8x3x5, 16x3x5)";
    assert!(text(&run).contains(says), "{}", text(&run));
    assert!(text(&run).contains("the kinds this report can make: roofline\n"), "not sweep: {}", text(&run));
}

#[test]
fn a_row_without_a_positive_throughput_is_named() {
    let d = dir();
    let path = matmul_report(d.path(), "zero.json", "8..32");
    let mut report = json(&path);
    report["records"][1]["gflops"] = serde_json::json!(0.0);
    std::fs::write(&path, report.to_string()).unwrap();
    for kind in ["sweep", "roofline"] {
        let (run, _) = plot(&path, kind);
        assert_eq!(run.status.code(), Some(2), "{kind}: {}", text(&run));
        assert!(text(&run).contains("the row cpu/naive matmul 16x16x16 has GFLOP/s 0"), "{kind}: {}", text(&run));
    }
}

#[test]
fn a_font_that_is_not_a_regular_file_is_refused() {
    let d = dir();
    let report = matmul_report(d.path(), "r.json", "8..16");
    let fifo = d.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (font, says) in [
        (d.path().to_path_buf(), "a directory, not a regular file"),
        (PathBuf::from("/dev/zero"), "a device, not a regular file"),
        (fifo, "a FIFO, not a regular file"),
        (d.path().join("missing.ttf"), "No such file"),
        (report.clone(), "could not be read as a TrueType font"),
    ] {
        let out = d.path().join("font.svg");
        let started = Instant::now();
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_kernelab"))
            .args(["plot", arg(&report), "--kind", "sweep", "--out", arg(&out)])
            .env("KERNELAB_FONT", &font)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{}: {}", font.display(), text(&run));
        assert!(text(&run).contains(&format!("KERNELAB_FONT={}", font.display())), "{}", text(&run));
        assert!(text(&run).contains(says), "{}: {}", font.display(), text(&run));
        assert!(started.elapsed().as_secs() < 10 && !out.exists(), "refused at once, nothing written");
    }
}

/// A report whose shapes have four dimensions (here the kept inference report's batch sizes with
/// the model's widths beside them) once indexed past the three names a sweep knows and panicked;
/// the varying dimension is now drawn, the fixed ones named by position.
#[test]
fn a_sweep_of_four_dimensional_shapes_is_drawn() {
    let d = dir();
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/infer/kernelab.json");
    let mut report = json(&kept);
    let records = report["records"].as_array_mut().unwrap();
    for r in records.iter_mut() {
        let batch = r["shape"][0].clone();
        r["shape"] = serde_json::json!([batch, 784, 128, 10]);
    }
    let path = d.path().join("four.json");
    std::fs::write(&path, report.to_string()).unwrap();
    let (run, svg) = plot(&path, "sweep");
    assert!(run.status.success(), "{}", text(&run));
    assert!(svg.contains("dim 0 (dim 1 = 784, dim 2 = 128, dim 3 = 10)"), "the x axis is the batch dimension");
}
