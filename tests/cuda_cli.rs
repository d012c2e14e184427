//! The CUDA backend through the command line, as on a GPU: `devices`, `bench` (every rung checked
//! and timed, the `cublas` row unavailable with its reason), `check` of the example PTX kernels,
//! and `train` on cuda alone (in f32, bf16 and f16, with `--profile`) and data parallel beside
//! the CPU. On the emulated device the report says its timings mean nothing and quotes no ceiling.
//!
//! Where CUDA is unavailable the tests have nothing to run, unless `KERNELAB_REQUIRE` names cuda.

#![cfg(feature = "cuda")]

mod common;

use common::{cuda_here, ok, tiny_mnist};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kernelab-cuda-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn devices_names_the_emulated_device_and_measures_no_ceiling() {
    let Some(emulated) = cuda_here() else { return };
    let (stdout, _) = ok(&["devices"]);
    let cuda: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("cuda")).collect();
    assert!(cuda[0].contains("available"), "{stdout}");
    if emulated {
        assert!(cuda[0].ends_with("emulated (PTX interpreter, timings mean nothing)"), "{stdout}");
        assert!(!cuda.iter().any(|l| l.trim_start().starts_with("roofline")), "no ceiling:\n{stdout}");
    }
}

#[test]
fn bench_checks_and_times_every_rung_and_cublas_says_why_not() {
    let Some(emulated) = cuda_here() else { return };
    let json = temp("bench.json");
    let args = ["bench", "--backend", "cuda", "--op", "matmul", "--shape", "33x17x65", "--budget", "0.05"];
    let (stdout, _) = ok(&[&args[..], &["--repeat", "3", "--json", json.to_str().unwrap()]].concat());
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let records = report["records"].as_array().unwrap();
    for rung in ["naive", "coalesced", "tiled", "regblock", "vec4", "warptile"] {
        let row = records.iter().find(|r| r["variant"] == rung).unwrap_or_else(|| panic!("no {rung} row"));
        assert_eq!((&row["status"], &row["ok"]), (&serde_json::json!("ok"), &serde_json::json!(true)), "{row}");
        assert!(row["median_s"].as_f64().is_some_and(|s| s > 0.0), "{row}");
    }
    let cublas = records.iter().find(|r| r["variant"] == "cublas").unwrap();
    if cublas["status"] == "skipped" {
        assert!(cublas["note"].as_str().is_some_and(|n| n.contains("libcublas")), "the reason: {cublas}");
    }
    if emulated {
        let device = &report["devices"][0];
        assert!(device["software"].as_str().is_some_and(|s| s.contains("timings mean nothing")), "{device}");
        assert!(device["roofline"].is_null(), "{device}");
        assert!(records.iter().all(|r| r["roofline"].is_null() && r["ceiling"].is_null()), "no % of a ceiling");
        assert!(stdout.contains("their times are no measure of a GPU"), "{stdout}");
    }
}

#[test]
fn check_runs_the_example_ptx_kernels_on_cuda() {
    let Some(_) = cuda_here() else { return };
    for (op, file) in [("softmax", "softmax.ptx"), ("matmul", "matmul_tiled.ptx")] {
        let path = common::cc::root().join("examples/kernels/ptx").join(file);
        let path = path.to_str().unwrap();
        let (stdout, _) = ok(&["check", "--backend", "cuda", "--op", op, "--kernel", path, "--variant", file]);
        assert!(stdout.contains("0 failed") && stdout.contains("all cases passed"), "{stdout}");
    }
}

#[test]
fn train_on_cuda_alone_with_a_profile_and_beside_the_cpu() {
    let Some(_) = cuda_here() else { return };
    let dir = temp("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let data = tiny_mnist(&dir);
    let data = data.to_str().unwrap();
    let common = ["train", "--model", "4-8-3", "--batch", "16", "--lr", "0.05", "--data", data];
    for (backend, epochs) in [("cuda", "3"), ("cpu,cuda", "3")] {
        let (stdout, _) = ok(&[&common[..], &["--backend", backend, "--epochs", epochs]].concat());
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert!(last["test_acc"].as_f64().unwrap() > 0.9, "{backend}: the classes are separable: {last}");
    }
    // Narrow: every op of the step has a bf16 and an f16 variant on CUDA, and the run says its dtype.
    for dtype in ["bf16", "f16"] {
        let (stdout, _) = ok(&[&common[..], &["--backend", "cuda", "--epochs", "3", "--dtype", dtype]].concat());
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(last["dtype"], dtype, "{last}");
        assert!(last["test_acc"].as_f64().unwrap() > 0.9, "{dtype}: the classes are separable: {last}");
    }
    let profile = temp("profile.json");
    let args = ["--backend", "cuda", "--epochs", "1", "--profile", "--profile-json", profile.to_str().unwrap()];
    ok(&[&common[..], &args[..]].concat());
    let text = std::fs::read_to_string(&profile).unwrap();
    let profiles: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = &profiles[0];
    assert!(first["device"].as_str().is_some_and(|d| d.starts_with("cuda")), "{first}");
    let rows = first["rows"].as_array().unwrap();
    for op in ["matmul", "adam"] {
        assert!(rows.iter().any(|r| r["what"] == op && r["total_s"].as_f64().is_some_and(|t| t > 0.0)), "{op}: {text}");
    }
}
