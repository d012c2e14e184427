//! `kernelab infer` through the binary: the table and the report (which `compare` and `plot`
//! read), the accuracy on a data folder, and every refusal (status 2, a message that names the
//! problem, no panic).

mod common;

use std::path::Path;

use common::{fails_with, ok, write_mnist};
use kernelab::nn::{Mlp, checkpoint};
use kernelab::{Device, Tensor};

fn cpu() -> Device {
    Device::new(kernelab::cpu::CpuBackend::new())
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 4-4-3 checkpoint in `dir`, of a model of 2×2 images.
fn student(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("student.safetensors");
    Mlp::new("4-4-3", 1, &cpu()).unwrap().save_for_images(&path, 2, 2).unwrap();
    path
}

/// A short run's flags: one backend, little timing.
const QUICK: [&str; 6] = ["--backend", "cpu", "--budget", "0.02", "--warmup", "2"];

#[test]
fn infer_prints_the_table_and_writes_a_report_that_compare_and_plot_read() {
    let dir = tempfile::tempdir().unwrap();
    let model = student(dir.path());
    write_mnist(dir.path(), 30, (2, 2));
    let (json, csv, md) = (dir.path().join("a.json"), dir.path().join("a.csv"), dir.path().join("a.md"));
    let mut args = vec!["infer", "--checkpoint", arg(&model), "--batch", "1,3", "--data", arg(dir.path())];
    args.extend(QUICK);
    args.extend(["--json", arg(&json), "--csv", arg(&csv), "--markdown", arg(&md)]);
    let (stdout, _) = ok(&args);
    assert!(stdout.contains("forward only, 4-4-3 (35 parameters, 28 multiply-adds an image): no tape"), "{stdout}");
    assert!(
        stdout.contains("weights packed once at load with bias+ReLU applied as it stores C")
            && stdout.contains(
                "prepared layers (matmul threaded's kernels on packed weights, bias+ReLU in its stores): direct, direct"
            ),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["records"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, batch) in rows.iter().zip([1u64, 3]) {
        assert_eq!((row["op"].as_str(), row["variant"].as_str()), (Some("infer"), Some("4-4-3")));
        assert_eq!(row["shape"], serde_json::json!([batch]));
        let samples: Vec<f64> = row["samples_s"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        assert!(samples.len() >= 20 && samples.len() == row["n"].as_u64().unwrap() as usize);
        let (p50, p99) = (row["median_s"].as_f64().unwrap(), row["p99_s"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99 && p99 <= samples.iter().cloned().fold(0.0, f64::max), "{row}");
        // 2 × 28 multiply-adds × batch flops a call.
        assert_eq!(row["flops"].as_f64(), Some(56.0 * batch as f64));
        let note = row["note"].as_str().unwrap();
        assert!(note.contains("test accuracy") && note.contains("on 30 images of"), "{note}");
    }
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);
    assert!(std::fs::read_to_string(&md).unwrap().contains("| cpu | 4-4-3 | 1 |"));

    let other = dir.path().join("b.json");
    let mut args = vec!["infer", "--checkpoint", arg(&model), "--batch", "1,3", "--json", arg(&other)];
    args.extend(QUICK);
    ok(&args);
    let out = common::kernelab(&["compare", arg(&json), arg(&other), "--noise-floor", "5%"]);
    let text = common::text(&out);
    assert!(text.contains("infer") && text.contains("4-4-3") && text.contains("2 rows:"), "{text}");
    let svg = dir.path().join("a.svg");
    ok(&["plot", arg(&json), "--out", arg(&svg)]);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

/// Each timed call follows untimed calls of its own batch size for at least `--settle-ms`: two
/// rows of at least 20 samples at 20 ms each take at least 0.8 s, where without settling the
/// 4-4-3 model's calls take microseconds; the report records the setting.
#[test]
fn infer_settles_each_timed_call_with_untimed_calls_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = student(dir.path());
    let json = dir.path().join("settled.json");
    let mut args = vec!["infer", "--checkpoint", arg(&model), "--batch", "1,3", "--settle-ms", "20"];
    args.extend(QUICK);
    args.extend(["--json", arg(&json)]);
    let started = std::time::Instant::now();
    ok(&args);
    let took = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["settings"]["settle_s"].as_f64(), Some(0.02));
    let samples: u64 = report["records"].as_array().unwrap().iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert!(samples >= 40 && took >= samples as f64 * 0.02, "{samples} samples in {took:.3} s");
}

#[test]
fn infer_refuses_bad_models_batches_data_and_backends() {
    let dir = tempfile::tempdir().unwrap();
    let model = student(dir.path());
    let m = arg(&model);
    let quick = |extra: &[&'static str]| -> Vec<&'static str> { QUICK.iter().chain(extra).copied().collect() };
    let with = |first: &[&str], extra: &[&'static str]| -> Vec<String> {
        first.iter().map(|s| s.to_string()).chain(quick(extra).into_iter().map(String::from)).collect()
    };
    let fails = |args: Vec<String>, message: &str| {
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2, message);
    };
    fails(with(&["infer", "--checkpoint", m, "--batch", "1,0"], &[]), "a batch of 0 images has nothing to answer");
    for settle in ["-1", "NaN", "20000"] {
        fails(
            with(&["infer", "--checkpoint", m, &format!("--settle-ms={settle}")], &[]),
            "must be a number of milliseconds from 0 to 10000",
        );
    }
    fails(
        with(&["infer", "--checkpoint", m, "--batch", "1000000000000000"], &[]),
        "model 4-4-3 at batch 1000000000000000 needs about",
    );
    // Layers that do not chain: 0.weight is 4 × 3, 2.weight takes 5 inputs.
    let broken = dir.path().join("broken.safetensors");
    let t = |dims: &[usize]| Tensor::zeros(dims, &cpu()).unwrap();
    let tensors = [("0.weight", t(&[4, 3])), ("0.bias", t(&[4])), ("2.weight", t(&[2, 5])), ("2.bias", t(&[2]))];
    let tensors: Vec<(String, Tensor)> = tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    checkpoint::save(&broken, &tensors, Default::default()).unwrap();
    fails(with(&["infer", "--checkpoint", arg(&broken)], &[]), "layer 2: weight [2, 5] and bias [2] do not chain");
    // Not a checkpoint, and no file at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not safetensors").unwrap();
    fails(with(&["infer", "--checkpoint", arg(&text)], &[]), "notes.txt");
    fails(with(&["infer", "--checkpoint", "/nonexistent/kernelab.safetensors"], &[]), "/nonexistent/kernelab");
    // Test images of 3 × 3 pixels for a model of 4 inputs.
    let data = dir.path().join("nine");
    std::fs::create_dir(&data).unwrap();
    write_mnist(&data, 12, (3, 3));
    fails(
        with(&["infer", "--checkpoint", m, "--data", arg(&data)], &[]),
        "its test images are 3×3 = 9 pixels, and the model 4-4-3 takes 4 inputs",
    );
    // Test images of 1 × 4 pixels: as many as the model's inputs, but it was trained on 2 × 2.
    let row = dir.path().join("row");
    std::fs::create_dir(&row).unwrap();
    write_mnist(&row, 12, (1, 4));
    fails(
        with(&["infer", "--checkpoint", m, "--data", arg(&row)], &[]),
        "its test images are 1×4 pixels, and the checkpoint's model was trained on 2×2",
    );
    // A backend that cannot run here, and one that does not exist.
    fails(vec!["infer".into(), "--checkpoint".into(), m.into(), "--backend".into(), "cuda".into()], "cuda");
    fails(vec!["infer".into(), "--model".into(), "4-4-3".into(), "--backend".into(), "tpu".into()], "unknown backend");
    // An output over the checkpoint it reads.
    fails(with(&["infer", "--checkpoint", m, "--json", m], &[]), "--checkpoint");
}
