//! The command line against what a careless or hostile user gives it: sweeps too large to build,
//! sizes that were once cut short, options that were once ignored, and `check`'s output in a build
//! without OpenBLAS.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{cpu_bench, fails_with, ok};

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
        "--variant packed_avx513: no such variant",
    );
}
