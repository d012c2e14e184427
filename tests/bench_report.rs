//! The benchmark as an instrument: a self-describing report (schema, settings, machine, ceilings,
//! baselines, raw samples), ceilings that stay put between runs, rows never shown above their
//! ceiling without a flag, and refusals of settings that cannot be honoured.

use std::process::{Command, Output};

/// `kernelab ARGS` with its roofline cache in `cache` (a fresh directory re-measures it).
/// Runs kernelab with its cache in `cache` and `env` added to an environment without OpenBLAS's
/// own variables: a machine may set `OPENBLAS_CORETYPE` (one of ours sets it to `Haswell` on an
/// AVX-512 CPU), which would make every baseline degraded whatever a test means to check.
fn kernelab_in(cache: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kernelab"));
    cmd.args(args).env("KERNELAB_CACHE_DIR", cache);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("OPENBLAS_") || k.starts_with("GOTO_")) {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the kernelab binary runs")
}

fn ok(out: Output) -> (String, String) {
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "kernelab failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// A small run whose JSON goes to stdout.
fn small_report(cache: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "bench",
        "--backend",
        "cpu",
        "--op",
        "matmul,relu",
        "--shape",
        "48x40x33:NT,5000",
        "--repeat",
        "7",
        "--budget",
        "0.2",
        "--json",
        "-",
    ];
    args.extend(extra);
    let (stdout, stderr) = ok(kernelab_in(cache, &args, &[]));
    assert!(stderr.contains("GFLOP/s") && stderr.contains("% roof"), "the table goes to stderr:\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is the JSON report ({e}):\n{stdout}"))
}

#[test]
fn the_report_carries_its_schema_settings_machine_ceilings_and_samples() {
    let cache = tempfile::tempdir().unwrap();
    let report = small_report(cache.path(), &[]);
    assert_eq!(report["schema_version"], 1);
    let command: Vec<&str> = report["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(command.ends_with(&["--json", "-"]) && command.contains(&"48x40x33:NT,5000"), "{command:?}");
    let settings = &report["settings"];
    assert_eq!((settings["repeat"].as_u64(), settings["budget_s"].as_f64()), (Some(7), Some(0.2)));
    assert!(settings["threads"].as_u64().unwrap() >= 1 && settings["cold"] == false);
    let machine = &report["machine"];
    for key in ["cpu", "os", "kernel", "arch", "rustc", "kernelab_version", "git_commit"] {
        assert!(machine[key].as_str().is_some_and(|s| !s.is_empty()), "machine.{key}: {machine}");
    }
    assert!(machine["git_dirty"].is_boolean() && machine["caches"].is_array() && machine["features"].is_array());
    let roofline = &report["devices"][0]["roofline"];
    assert!(
        roofline["peak_gflops"].as_f64().unwrap() > 0.0 && roofline["peak_gflops_one_thread"].as_f64().unwrap() > 0.0
    );
    let levels = roofline["levels"].as_array().unwrap();
    assert_eq!(levels.last().unwrap()["name"], "DRAM");
    assert!(levels.iter().all(|l| l["gbps_all"].as_f64().unwrap() > 0.0), "{roofline}");

    let records = report["records"].as_array().unwrap();
    let keys = |r: &serde_json::Value| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for r in records {
        assert_eq!(keys(r), keys(&records[0]), "every row has the same keys");
        if r["status"] == "skipped" {
            assert!(r["median_s"].is_null() && r["samples_s"].as_array().unwrap().is_empty());
            continue;
        }
        let samples: Vec<f64> = r["samples_s"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(samples.len() as u64, r["n"].as_u64().unwrap());
        assert!(samples.len() >= 3 && samples.iter().all(|&s| s > 0.0), "{r}");
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let median = r["median_s"].as_f64().unwrap();
        assert!(sorted[0] <= median && median <= sorted[sorted.len() - 1], "the median is one of the samples' middle");
        assert!(r["threads"].as_u64().unwrap() >= 1 && r["mode"] == "warm");
        assert!(r["launches_per_sample"].as_u64().unwrap() >= 1);
        let ceiling = &r["ceiling"];
        assert!(["L1", "L2", "L3", "DRAM"].contains(&ceiling["level"].as_str().unwrap()), "{r}");
        let fraction = r["roofline"].as_f64().unwrap();
        assert_eq!(r["suspect"], fraction > 1.0, "above the ceiling is suspect, and only then: {r}");
    }
    let relu = records.iter().find(|r| r["op"] == "relu" && r["status"] == "ok").unwrap();
    assert!(relu["launches_per_sample"].as_u64().unwrap() > 1, "a microsecond kernel is timed in batches: {relu}");
}

#[test]
fn two_runs_hold_their_rows_against_the_same_ceilings() {
    let cache = tempfile::tempdir().unwrap();
    let first = small_report(cache.path(), &["--op", "relu", "--shape", "1000"]);
    let second = small_report(cache.path(), &["--op", "relu", "--shape", "1000"]);
    let numbers = |r: &serde_json::Value| {
        let mut roof = r["devices"][0]["roofline"].clone();
        roof.as_object_mut().unwrap().remove("how");
        roof
    };
    assert_eq!(numbers(&first), numbers(&second));
    assert!(second["devices"][0]["roofline"]["how"].as_str().unwrap().contains("cached in"));

    // A corrupt cache is measured again, never trusted.
    let (file, level) = cache_file(cache.path());
    std::fs::write(&file, "{ not json").unwrap();
    let third = small_report(cache.path(), &["--op", "relu", "--shape", "1000"]);
    assert!(third["devices"][0]["roofline"]["how"].as_str().unwrap().contains("unreadable"), "{third}");
    let mut kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();

    // Ceilings a build at another opt-level measured (an unoptimized build's 1.25 GFLOP/s) are
    // measured again by this build, never used.
    assert_eq!(kept["key"]["opt_level"], level.as_str(), "{kept}");
    kept["key"]["opt_level"] = (if level == "0" { "3" } else { "0" }).into();
    kept["roofline"]["peak_gflops"] = 1.25.into();
    std::fs::write(&file, kept.to_string()).unwrap();
    let fourth = small_report(cache.path(), &["--op", "relu", "--shape", "1000"]);
    let roofline = &fourth["devices"][0]["roofline"];
    assert!(roofline["how"].as_str().unwrap().contains("build opt-level"), "{roofline}");
    assert_ne!(roofline["peak_gflops"], 1.25);
    let renewed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(renewed["key"]["opt_level"], level.as_str());
}

/// The one roofline cache file in `dir` and the opt-level its name gives (`roofline-cpu-O3.json`).
fn cache_file(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let level = names[0].strip_prefix("roofline-cpu-O").and_then(|n| n.strip_suffix(".json"));
    let level = level.unwrap_or_else(|| panic!("{names:?}")).to_string();
    (dir.join(&names[0]), level)
}

#[test]
fn cold_runs_evict_and_are_held_against_main_memory() {
    let cache = tempfile::tempdir().unwrap();
    let report = small_report(cache.path(), &["--op", "relu", "--shape", "1000", "--variant", "default", "--cold"]);
    let r = &report["records"][0];
    assert_eq!((r["mode"].as_str(), r["launches_per_sample"].as_u64()), (Some("cold"), Some(1)), "{r}");
    assert_eq!(r["ceiling"]["level"], "DRAM");
    assert_eq!(report["settings"]["cold"], true);
}

#[test]
fn csv_and_markdown_hold_the_same_rows() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (csv, md) = (dir.path().join("rows.csv"), dir.path().join("rows.md"));
    ok(kernelab_in(
        cache.path(),
        &[
            "bench",
            "--backend",
            "cpu",
            "--op",
            "relu",
            "--shape",
            "1000,2000",
            "--variant",
            "default",
            "--budget",
            "0.1",
            "--csv",
            csv.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
        &[],
    ));
    let csv = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two rows:\n{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert!(lines[1..].iter().all(|l| l.split(',').count() == header.len()), "{csv}");
    let median = header.iter().position(|&h| h == "median_s").unwrap();
    assert!(lines[1].split(',').nth(median).unwrap().parse::<f64>().unwrap() > 0.0);
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.starts_with("| op | backend |") && md.lines().count() == 4, "{md}");
}

#[test]
fn impossible_settings_are_refused_before_any_work() {
    let cache = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    let too_many = (cores + 1).to_string();
    for (args, message) in [
        (vec!["bench", "--threads", too_many.as_str()], format!("this machine has {cores} logical cores")),
        (vec!["bench", "--threads", "0"], "use 1 to".to_string()),
        (vec!["bench", "--budget", "1e300"], "from 0 to 3600".to_string()),
        (vec!["bench", "--json", "/nonexistent-kernelab-dir/out.json"], "does not exist".to_string()),
    ] {
        let out = kernelab_in(cache.path(), &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&message), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "{args:?} measured before refusing");
    }
}

/// With OpenBLAS forced onto its generic core, its row says so and no row is compared with it.
#[cfg(feature = "openblas")]
#[test]
fn a_degraded_openblas_is_named_and_not_compared_with() {
    let cache = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--backend",
        "cpu",
        "--op",
        "matmul",
        "--shape",
        "64x64x64",
        "--variant",
        "threaded,openblas",
        "--budget",
        "0.1",
        "--json",
        "-",
    ];
    let (stdout, _) = ok(kernelab_in(cache.path(), &args, &[("OPENBLAS_CORETYPE", "Prescott")]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let baseline = report["baselines"].as_array().unwrap().iter().find(|b| b["variant"] == "openblas").unwrap();
    assert_eq!(baseline["kernel"], "Prescott");
    let isa_has_better = kernelab::cpu::openblas::core_for("Prescott", kernelab::cpu::openblas::CpuIsa::detect());
    if isa_has_better.is_none() {
        return; // a CPU without AVX2: Prescott is what OpenBLAS has for it
    }
    assert_eq!(baseline["degraded"], true, "{baseline}");
    let rows = report["records"].as_array().unwrap();
    let openblas = rows.iter().find(|r| r["variant"] == "openblas").unwrap();
    assert!(openblas["note"].as_str().unwrap().contains("baseline degraded"), "{openblas}");
    let threaded = rows.iter().find(|r| r["variant"] == "threaded").unwrap();
    assert!(threaded["of_vendor"].is_null(), "no ratio against a degraded baseline: {threaded}");

    // Left to itself, OpenBLAS runs (or is re-run with) the core this CPU calls for.
    let (stdout, _) = ok(kernelab_in(cache.path(), &args, &[]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let baseline = report["baselines"].as_array().unwrap().iter().find(|b| b["variant"] == "openblas").unwrap();
    assert_eq!(baseline["degraded"], false, "{baseline}");
}
