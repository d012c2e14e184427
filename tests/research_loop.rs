//! The researcher's loop from the release binary: sweep shapes, compare two runs, plot, profile a
//! training step, list what there is.

mod common;

use std::path::{Path, PathBuf};

use common::{cpu_bench, fails_with, kernelab, ok, tiny_mnist};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A small sweep: matmul at 8³, 16³, 32³ for two variants.
fn sweep(into: &Path) -> PathBuf {
    let path = into.join("sweep.json");
    ok(&cpu_bench(
        "matmul",
        "8..32",
        &[
            "--variant",
            "naive,packed_portable",
            "--repeat",
            "8",
            "--budget",
            "0.1",
            "--pivot",
            "variant",
            "--json",
            path.to_str().unwrap(),
        ],
    ));
    path
}

#[test]
fn a_range_sweeps_square_matmuls_and_pivots_by_variant() {
    let d = dir();
    let report = json(&sweep(d.path()));
    let shapes: Vec<&serde_json::Value> = report["records"].as_array().unwrap().iter().map(|r| &r["shape"]).collect();
    let want = [[8, 8, 8], [8, 8, 8], [16, 16, 16], [16, 16, 16], [32, 32, 32], [32, 32, 32]];
    assert_eq!(shapes, want.iter().map(|s| serde_json::json!(s)).collect::<Vec<_>>().iter().collect::<Vec<_>>());
    let (stdout, _) =
        ok(&cpu_bench("matmul", "8..16x3x5", &["--variant", "naive", "--budget", "0.05", "--pivot", "variant"]));
    assert!(stdout.contains("8x3x5") && stdout.contains("16x3x5") && stdout.contains("cells: GFLOP/s"), "{stdout}");
}

#[test]
fn the_mlp_preset_benchmarks_the_seed_models_products() {
    let d = dir();
    let path = d.path().join("mlp.json");
    ok(&[
        "bench",
        "--backend",
        "cpu",
        "--op",
        "matmul",
        "--preset",
        "mlp",
        "--variant",
        "threaded",
        "--repeat",
        "3",
        "--budget",
        "0.05",
        "--json",
        path.to_str().unwrap(),
    ]);
    let rows = json(&path)["records"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 13, "five products of 784-128-10 and eight of 784-512-256-10");
    assert!(rows.iter().any(|r| r["shape"] == serde_json::json!([64, 10, 128]) && r["transpose"] == "NT"));
}

#[test]
fn a_row_predicted_to_run_past_the_cap_is_skipped_with_the_reason() {
    let d = dir();
    let path = d.path().join("capped.json");
    ok(&cpu_bench(
        "matmul",
        "16..128",
        &["--variant", "naive", "--budget", "0.05", "--max-row-time", "0.001", "--json", path.to_str().unwrap()],
    ));
    let rows = json(&path)["records"].as_array().unwrap().clone();
    let notes: Vec<&str> = rows.iter().map(|r| r["note"].as_str().unwrap_or("")).collect();
    // The small rows fit in a millisecond; 128³ (about 2M FMAs a launch, five launches) is
    // predicted from the last row that ran and skipped without running.
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["status"], "ok", "{notes:?}");
    let last = notes[3];
    assert_eq!(rows[3]["status"], "skipped");
    assert!(last.contains("predicted") && last.contains("cap per row") && last.contains("--all-sizes"), "{last}");
}

#[test]
fn malformed_ranges_name_the_part_they_could_not_read() {
    fails_with(&["bench", "--shape", "64..2048:x0.5"], 2, "`:x0.5` in `64..2048:x0.5`");
    fails_with(&["bench", "--shape", "64.."], 2, "a range needs an end");
    fails_with(&["bench", "--shape", "64y9"], 2, "`y9` in `64y9`");
}

/// `report` with every row's samples replaced by 12 known ones from `factor(i)` × 10 µs up by
/// 0.1% each, so that verdicts do not depend on this machine's noise.
/// `report` with made-up samples, `factor(i)` times 10 µs for row `i`, as if timed on a quiet
/// machine: the contention the real run measured (tests run beside each other) says nothing of
/// these samples, so it is dropped.
fn with_samples(report: &serde_json::Value, factor: impl Fn(usize) -> f64) -> serde_json::Value {
    let mut report = report.clone();
    if let Some(probe) = report["probe"].as_object_mut() {
        probe.remove("contention");
    }
    for (i, r) in report["records"].as_array_mut().unwrap().iter_mut().enumerate() {
        let f = factor(i);
        let samples: Vec<f64> = (0..12).map(|j| f * 1e-5 * (1.0 + 0.001 * j as f64)).collect();
        r["median_s"] = serde_json::json!(f * 1e-5 * 1.0055);
        r["samples_s"] = serde_json::json!(samples);
        r["rounds"] = serde_json::json!((0..12).collect::<Vec<u32>>());
        r["n"] = serde_json::json!(12);
    }
    report
}

fn write(path: &Path, value: &serde_json::Value) -> String {
    std::fs::write(path, value.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn compare_says_same_for_one_file_and_slower_for_a_twofold_slowdown() {
    let d = dir();
    let base = sweep(d.path());
    let (stdout, _) = ok(&["compare", base.to_str().unwrap(), base.to_str().unwrap()]);
    assert!(stdout.contains("0 faster, 0 slower, 6 same, 0 undecided"), "{stdout}");

    let report = json(&base);
    let base = write(&d.path().join("base.json"), &with_samples(&report, |_| 1.0));
    let slow = write(&d.path().join("slow.json"), &with_samples(&report, |_| 2.0));
    // Every row twice as slow: each row on its own (--absolute) is slower and fails the gate.
    let out = kernelab(&["compare", &base, &slow, "--threshold", "5%", "--noise-floor", "1%", "--absolute"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 faster, 6 slower") && stdout.contains("1.0% (--noise-floor)"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "a slowdown past the threshold fails");
    let out = kernelab(&["compare", &slow, &base, "--threshold", "5%", "--noise-floor", "1%", "--absolute"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 faster"));
    assert_eq!(out.status.code(), Some(0));
    // Judged relative to the run, no row stands out from the rest: the whole run moved, 2×, and
    // the gate says so with its own exit status, 3; faster, it fails nothing.
    let out = kernelab(&["compare", &base, &slow, "--threshold", "5%", "--noise-floor", "1%"]);
    let all = common::text(&out);
    assert!(all.contains("0 faster, 0 slower, 0 same, 6 undecided") && all.contains("whole run: 2.000×"), "{all}");
    assert!(all.contains("undecided (whole run moved 2.000×)") && all.contains("exit status 3"), "{all}");
    assert_eq!(out.status.code(), Some(3), "{all}");
    let out = kernelab(&["compare", &slow, &base, "--threshold", "5%", "--noise-floor", "1%"]);
    assert!(common::text(&out).contains("whole run: 0.500×"));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_threshold_means_what_it_says_at_one_and_at_fifty_percent() {
    let d = dir();
    let report = json(&sweep(d.path()));
    // Every row 3% slower, the first one twice as slow, on a machine whose floor is 0.2%.
    let base = write(&d.path().join("base.json"), &with_samples(&report, |_| 1.0));
    let new = write(&d.path().join("new.json"), &with_samples(&report, |i| if i == 0 { 2.0 } else { 1.03 }));
    let gate = |threshold: &str| {
        let out = kernelab(&["compare", &base, &new, "--threshold", threshold, "--noise-floor", "0.2%", "--absolute"]);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = gate("1%");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("6 rows are slower by more than 1.0%"), "{stderr}");
    let (code, stderr) = gate("50%");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("1 rows are slower by more than 50.0%"), "{stderr}");
    let (code, _) = gate("150%");
    assert_eq!(code, Some(0), "nothing is 2.5 times slower");
    // Relative to the run (1.03×, the median row), only the twofold row stands out.
    let out = kernelab(&["compare", &base, &new, "--threshold", "1%", "--noise-floor", "0.2%"]);
    let all = common::text(&out);
    assert!(all.contains("1 rows are slower by more than 1.0%") && all.contains("whole run: 1.030×"), "{all}");
    assert_eq!(out.status.code(), Some(1));
    // The same 3% with a floor of 5%: the runs cannot tell, and a 1% gate does not fail them.
    let out = kernelab(&["compare", &base, &new, "--threshold", "1%", "--noise-floor", "5%"]);
    let all = common::text(&out);
    assert!(all.contains("5 undecided") && all.contains("1 rows are slower by more than 1.0%"), "{all}");
}

#[test]
fn calibrate_keeps_the_floor_of_identical_runs_and_compare_reads_it() {
    let d = dir();
    let report = json(&sweep(d.path()));
    let runs: Vec<String> = [1.0, 1.02, 0.98]
        .iter()
        .enumerate()
        .map(|(i, &f)| write(&d.path().join(format!("aa{i}.json")), &with_samples(&report, |_| f)))
        .collect();
    let cache = d.path().join("cache");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kernelab"))
            .args(args)
            .env("KERNELAB_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let out = run(&["compare", "--calibrate", &runs[0], &runs[1], &runs[2]]);
    let all = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    // Medians 1.00, 1.02, 0.98 and the same 12 samples each: a spread of 2.00% between runs,
    // less the samples' own error of the median (0.16%): √(0.0200² − 0.0016²) = 1.99%.
    assert!(all.contains("2.0% between runs, the root mean square of 6 rows over 3 runs"), "{all}");
    let out = run(&["compare", &runs[0], &runs[1], "--threshold", "5%"]);
    let all = common::text(&out);
    assert!(all.contains("noise floor between runs: 2.0%") && all.contains("measured from 3 runs"), "{all}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    let out = run(&["compare", "--calibrate", &runs[0]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("give two reports or more"));
}

#[test]
fn compare_refuses_other_schemas_and_files_without_common_rows() {
    let d = dir();
    let base = sweep(d.path());
    let mut other = json(&base);
    other["schema_version"] = serde_json::json!(99);
    let other_path = d.path().join("v99.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    fails_with(&["compare", base.to_str().unwrap(), other_path.to_str().unwrap()], 2, "schema version 99");
    let mut disjoint = json(&base);
    for (i, r) in disjoint["records"].as_array_mut().unwrap().iter_mut().enumerate() {
        r["variant"] = serde_json::json!(format!("other{i}"));
    }
    let disjoint_path = d.path().join("disjoint.json");
    std::fs::write(&disjoint_path, disjoint.to_string()).unwrap();
    fails_with(&["compare", base.to_str().unwrap(), disjoint_path.to_str().unwrap()], 2, "no ok row of");
    // The same rows from another device are never paired, and the message says why.
    let mut elsewhere = json(&base);
    elsewhere["records"].as_array_mut().unwrap().iter_mut().for_each(|r| r["device"] = serde_json::json!("Other CPU"));
    let elsewhere_path = d.path().join("elsewhere.json");
    std::fs::write(&elsewhere_path, elsewhere.to_string()).unwrap();
    fails_with(
        &["compare", base.to_str().unwrap(), elsewhere_path.to_str().unwrap()],
        2,
        "6 rows are the same work on another device",
    );
}

#[test]
fn plots_are_svg_with_a_series_per_variant() {
    let d = dir();
    let report = sweep(d.path());
    for kind in ["sweep", "roofline"] {
        let out = d.path().join(format!("{kind}.svg"));
        ok(&["plot", report.to_str().unwrap(), "--kind", kind, "--out", out.to_str().unwrap()]);
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{kind}: not an SVG document");
        for series in ["cpu/naive, 1t", "cpu/packed_portable, 1t"] {
            assert!(svg.contains(series), "{kind}: no `{series}` in the legend");
        }
        assert!(svg.contains("GFLOP/s"), "{kind}: the axis carries its unit");
    }
    let roofline = std::fs::read_to_string(d.path().join("roofline.svg")).unwrap();
    assert!(roofline.contains("FMA peak") && roofline.contains("DRAM"), "every ceiling is drawn and labelled");

    // One shape only: there is no sweep, and the message says what there is.
    let single = d.path().join("single.json");
    ok(&cpu_bench("relu", "1000", &["--variant", "default", "--budget", "0.05", "--json", single.to_str().unwrap()]));
    let out = d.path().join("none.svg");
    fails_with(
        &["plot", single.to_str().unwrap(), "--kind", "sweep", "--out", out.to_str().unwrap()],
        2,
        "the kinds this report can make: roofline",
    );
}

#[test]
fn the_profile_of_a_training_step_adds_up_to_the_step() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let profile = d.path().join("profile.json");
    let (_, stderr) = ok(&[
        "train",
        "--model",
        "4-8-3",
        "--epochs",
        "2",
        "--batch",
        "16",
        "--data",
        data.to_str().unwrap(),
        "--profile",
        "--profile-json",
        profile.to_str().unwrap(),
        "--variant",
        "matmul=packed_portable",
    ]);
    assert!(stderr.contains("profile of model") && stderr.contains("host (tape"), "{stderr}");
    let runs = json(&profile);
    let run = &runs.as_array().unwrap()[0];
    assert_eq!(run["steps"], 12, "96 images in batches of 16, two epochs");
    let rows = run["rows"].as_array().unwrap();
    let total: f64 = rows.iter().map(|r| r["total_s"].as_f64().unwrap()).sum();
    let measured = run["measured_s"].as_f64().unwrap();
    assert!((total - measured).abs() <= 1e-9 * measured.max(1.0), "{total} vs {measured}");
    // What profiling itself adds is a row of its own, not part of the host's remainder.
    let bookkeeping = rows.iter().find(|r| r["what"] == "profiler (its own bookkeeping)").expect("a bookkeeping row");
    assert!(bookkeeping["total_s"].as_f64().unwrap() > 0.0, "{bookkeeping:?}");
    let matmuls: Vec<&serde_json::Value> = rows.iter().filter(|r| r["what"] == "matmul").collect();
    assert!(!matmuls.is_empty() && matmuls.iter().all(|r| r["variant"] == "packed_portable"), "{rows:?}");
    let forward = matmuls.iter().find(|r| r["shape"] == "16x8x4:NT").expect("the first layer's forward product");
    assert_eq!(forward["per_step"], 1.0);
    fails_with(&["train", "--epochs", "1", "--data", data.to_str().unwrap(), "--variant", "matmul=warp9"], 2, "warp9");
}

#[test]
fn list_names_every_op_backend_and_variant() {
    let (stdout, _) = ok(&["list"]);
    assert!(stdout.contains("softmax_cross_entropy") && stdout.contains("cpu:"), "{stdout}");
    for variant in kernelab::cpu::registry::variants(kernelab::Op::Matmul) {
        assert!(stdout.contains(variant.name) && stdout.contains(variant.summary), "{} is not listed", variant.name);
    }
    let (help, _) = ok(&["bench", "--help"]);
    assert!(help.contains("Examples:") && help.contains("--preset mlp"), "{help}");
}
