//! The `kernelab` binary, run as a user runs it.

use std::process::{Command, Output};

fn kernelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernelab")).args(args).output().expect("the kernelab binary runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kernelab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn devices_lists_every_backend_with_a_status() {
    let out = kernelab(&["devices"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.lines().any(|l| l.starts_with("cpu") && l.contains("available")), "{stdout}");
    for name in ["wgpu", "cuda"] {
        assert!(stdout.lines().any(|l| l.starts_with(name)), "{name} is not listed:\n{stdout}");
    }
    assert!(stdout.contains("matmul       blocked, naive"), "{stdout}");
}

/// The acceptance command: one matmul row per CPU variant, within budget, as JSON.
#[test]
fn bench_writes_checked_rows_as_json() {
    let json = temp_path("out.json");
    let out = kernelab(&[
        "bench",
        "--op",
        "matmul",
        "--backend",
        "cpu",
        "--shape",
        "256x256x256",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("GFLOP/s") && stdout.contains("max rel err"), "{stdout}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "one row per CPU matmul variant");
    for r in records {
        assert_eq!(r["op"], "matmul");
        assert_eq!(r["backend"], "cpu");
        assert_eq!(r["shape"], serde_json::json!([256, 256, 256]));
        assert_eq!(r["ok"], true, "{r}");
        let (median, gflops) = (r["median_s"].as_f64().unwrap(), r["gflops"].as_f64().unwrap());
        assert!(median > 0.0);
        assert!((gflops - 2.0 * 256f64.powi(3) / median / 1e9).abs() < 1e-6 * gflops, "GFLOP/s counts 2·M·N·K");
        let gbps = r["gbps"].as_f64().unwrap();
        assert!(
            (gbps - 4.0 * 3.0 * 256f64.powi(2) / median / 1e9).abs() < 1e-6 * gbps,
            "GB/s counts A, B read and C written"
        );
        let err = r["max_rel_err"].as_f64().unwrap();
        assert!(err > 0.0 && err < 259.0 * 2f64.powi(-24), "{err}");
        assert!(r["variant"].is_string() && r["p10_s"].as_f64().unwrap() <= median);
    }
    let machine = &report["machine"];
    assert!(
        machine["cpu"].is_string()
            && machine["logical_cores"].as_u64().unwrap() >= 1
            && machine["git_commit"].is_string()
    );
}

#[test]
fn bench_runs_several_ops_at_their_own_shapes() {
    let json = temp_path("several.json");
    let out = kernelab(&[
        "bench",
        "--op",
        "relu,softmax,matmul",
        "--shape",
        "1000,16x10,8x8x8",
        "--variant",
        "default",
        "--repeat",
        "3",
        "--budget",
        "0.05",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows: Vec<(String, serde_json::Value)> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["op"].as_str().unwrap().to_string(), r["shape"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("relu".into(), serde_json::json!([1000])),
            ("softmax".into(), serde_json::json!([16, 10])),
            ("matmul".into(), serde_json::json!([8, 8, 8])),
        ]
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let cases: [(&[&str], &str); 5] = [
        (&["bench", "--op", "matmull"], "unknown op `matmull`"),
        (&["bench", "--backend", "cuda", "--op", "relu", "--shape", "10"], "--features cuda"),
        (&["bench", "--backend", "tpu"], "unknown backend `tpu`"),
        (&["bench", "--op", "softmax", "--shape", "100"], "no --shape fits softmax"),
        (&["bench", "--op", "relu", "--shape", "10", "--variant", "warp9"], "no backend has the variant(s) `warp9`"),
    ];
    for (args, message) in cases {
        let out = kernelab(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = kernelab(&["bench", "--shape", "0x3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("empty dimension"));
}

#[test]
fn check_runs_the_conformance_suite() {
    let out = kernelab(&["check", "--backend", "cpu", "--op", "relu,softmax_cross_entropy"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("relu") && stdout.contains("softmax_cross_entropy") && stdout.contains("all cases passed"),
        "{stdout}"
    );
}
