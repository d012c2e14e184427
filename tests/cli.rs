//! The `kernelab` binary, run as a user runs it.

use std::process::{Command, Output};

fn kernelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernelab")).args(args).output().expect("the kernelab binary runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The JSON report `kernelab bench --json` wrote to `path`.
fn read_report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `kernelab` and insists on success; returns (stdout, stderr).
fn kernelab_ok(args: &[&str]) -> (String, String) {
    let out = kernelab(args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "kernelab {args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
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
    let matmul = stdout.lines().find(|l| l.trim_start().starts_with("matmul")).unwrap_or_default();
    assert!(matmul.contains("threaded") && matmul.contains("blocked") && matmul.contains("naive"), "{stdout}");
}

/// The acceptance command: one matmul row per CPU variant, within budget, as JSON.
#[test]
fn bench_writes_checked_rows_as_json() {
    let json = temp_path("out.json");
    let (stdout, _) = kernelab_ok(&[
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
    assert!(stdout.contains("GFLOP/s") && stdout.contains("max rel err"), "{stdout}");

    let report = read_report(&json);
    let records = report["records"].as_array().unwrap();
    // The default --dtype is f32: the variants that store bf16 or f16 have rows of their own only
    // with --dtype bf16/f16.
    let variants: Vec<_> = kernelab::cpu::registry::variants(kernelab::Op::Matmul)
        .into_iter()
        .filter(|v| v.precision.storage == kernelab::tensor::Dtype::F32)
        .collect();
    assert_eq!(records.len(), variants.len(), "one row per CPU f32 matmul variant");
    for (r, v) in records.iter().zip(&variants) {
        assert_eq!(r["variant"], v.name);
        if let Some(reason) = &v.unavailable {
            assert_eq!(r["ok"], false);
            assert_eq!(r["note"], format!("skipped: {reason}"), "a path this CPU lacks is a skipped row, named");
            continue;
        }
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
    kernelab_ok(&[
        "bench",
        "--backend",
        "cpu",
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
    let report = read_report(&json);
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
    // Without the `cuda` feature the reason is the missing feature; with it (and no GPU, or the
    // emulated device told to report none), the driver's.
    let no_cuda = if cfg!(feature = "cuda") { "CUDA_ERROR_NO_DEVICE" } else { "--features cuda" };
    let cases: [(&[&str], &str); 5] = [
        (&["bench", "--op", "matmull"], "unknown op `matmull`"),
        (&["bench", "--backend", "cuda", "--op", "relu", "--shape", "10"], no_cuda),
        (&["bench", "--backend", "tpu"], "unknown backend `tpu`"),
        (&["bench", "--op", "softmax", "--shape", "100"], "no --shape fits softmax"),
        (&["bench", "--op", "relu", "--shape", "10", "--variant", "warp9"], "no backend has a variant `warp9`"),
    ];
    for (args, message) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kernelab"))
            .args(args)
            .env("KERNELAB_EMU_DEVICES", "0")
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = kernelab(&["bench", "--shape", "0x3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("empty dimension"));
}

/// `--distributed` in a build without MPI says how to get it.
#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_training_without_mpi_says_how_to_build_it() {
    let out = kernelab(&["train", "--distributed", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("rebuild with `--features mpi`"), "{:?}", text(&out));
}

#[test]
fn check_runs_the_conformance_suite() {
    let (stdout, _) = kernelab_ok(&["check", "--backend", "cpu", "--op", "relu,softmax_cross_entropy"]);
    assert!(
        stdout.contains("relu") && stdout.contains("softmax_cross_entropy") && stdout.contains("all cases passed"),
        "{stdout}"
    );
}

/// `check --dtype` runs the variants of each dtype against their budget, and a dtype a backend has
/// no variant of is one skipped line naming what is missing.
#[test]
fn check_by_dtype_runs_narrow_variants_and_names_what_a_backend_lacks() {
    let (stdout, _) = kernelab_ok(&["check", "--backend", "cpu", "--op", "relu", "--dtype", "f16,tf32"]);
    assert!(stdout.contains("f16-portable") && stdout.contains("all cases passed"), "{stdout}");
    assert!(
        stdout.contains(
            "relu: skipped (the CPU backend has no tf32 variant of relu: TF32 is a mode of NVIDIA's tensor cores"
        ),
        "{stdout}"
    );
    assert_eq!(stdout.matches("no tf32 variant").count(), 1, "one line, not one per case: {stdout}");
}

/// `bench --variant` naming only f32 variants of an op beside `--dtype bf16` is refused before any
/// row runs (no table), naming the bf16 variants of that op that exist; the control: with one of
/// those named too, the same run has its bf16 row.
#[test]
fn bench_refuses_variants_of_another_dtype_up_front_naming_those_that_exist() {
    let args =
        ["bench", "--backend", "cpu", "--op", "matmul", "--shape", "8x8x8", "--dtype", "bf16", "--budget", "0.01"];
    let out = kernelab(&[&args[..], &["--variant", "packed_portable"]].concat());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "no row ran: {stdout}");
    assert!(stderr.contains("--variant packed_portable names no bf16 variant of matmul"), "{stderr}");
    assert!(stderr.contains("the bf16 variants of matmul are cpu:0: ") && stderr.contains("bf16-blocked"), "{stderr}");
    let (stdout, _) = kernelab_ok(&[&args[..], &["--variant", "packed_portable,bf16-blocked"]].concat());
    assert!(stdout.contains("bf16-blocked"), "{stdout}");
}

/// A small MNIST-format folder of 2×2 images in 3 classes, the class readable from the pixels.
fn tiny_mnist() -> std::path::PathBuf {
    let dir = temp_path("tiny-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let n = 90;
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let pixels: Vec<u8> =
        labels.iter().flat_map(|&l| (0..4).map(move |p| if p == l as usize { 250 } else { 20 })).collect();
    for (images, label_file) in
        [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    {
        kernelab::nn::idx::write(&dir.join(images), &[n, 2, 2], &pixels).unwrap();
        kernelab::nn::idx::write(&dir.join(label_file), &[n], &labels).unwrap();
    }
    dir
}

#[test]
fn train_prints_one_json_line_per_epoch_and_saves_a_checkpoint() {
    let data = tiny_mnist();
    let (json, save) = (temp_path("train.jsonl"), temp_path("tiny.safetensors"));
    let (stdout, stderr) = kernelab_ok(&[
        "train",
        "--model",
        "4-8-3",
        "--epochs",
        "3",
        "--batch",
        "16",
        "--lr",
        "0.05",
        "--data",
        data.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["epoch"], i + 1);
        assert_eq!(line["model"], "model");
        for field in ["train_loss", "test_loss", "test_acc", "epoch_s", "samples_per_s"] {
            assert!(line[field].as_f64().is_some_and(f64::is_finite), "{field} in {line}");
        }
    }
    assert!(lines[2]["test_acc"].as_f64().unwrap() > 0.9, "the classes are separable: {}", lines[2]);
    assert_eq!(std::fs::read_to_string(&json).unwrap().lines().count(), 3);
    assert!(save.is_file() && stderr.contains("saved"), "{stderr}");

    // Two CPU devices, data parallel, same flags.
    kernelab_ok(&[
        "train",
        "--model",
        "4-8-3",
        "--epochs",
        "1",
        "--backend",
        "cpu,cpu",
        "--split",
        "1,3",
        "--data",
        data.to_str().unwrap(),
    ]);
}

#[test]
fn distill_reports_teacher_student_and_distilled() {
    let data = tiny_mnist();
    let (stdout, stderr) = kernelab_ok(&[
        "distill",
        "--teacher",
        "4-16-3",
        "--student",
        "4-4-3",
        "--epochs",
        "2",
        "--batch",
        "16",
        "--lr",
        "0.05",
        "--seeds",
        "2",
        "--seed",
        "5",
        "--data",
        data.to_str().unwrap(),
    ]);
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (payoff, epochs): (Vec<_>, Vec<_>) = lines.iter().partition(|v| v["model"] == "payoff");
    let runs: Vec<(String, u64)> =
        epochs.iter().map(|v| (v["model"].as_str().unwrap().to_string(), v["seed"].as_u64().unwrap())).collect();
    let expected: Vec<(String, u64)> =
        [("teacher", 5), ("teacher", 5), ("student", 5), ("student", 5), ("distilled", 5), ("distilled", 5)]
            .into_iter()
            .chain([("student", 6), ("student", 6), ("distilled", 6), ("distilled", 6)])
            .map(|(m, s)| (m.to_string(), s))
            .collect();
    assert_eq!(runs, expected);
    assert!(stderr.contains("distilled") && stderr.contains("test accuracy"), "{stderr}");
    assert!(stderr.contains("2 seeds, mean ± sd") && stderr.contains("distilled − label-only"), "{stderr}");
    assert_payoff(&payoff, &epochs, &stderr);
}

/// The payoff table's rows (JSON lines after the epochs): the teacher's and each student's size
/// and work, worked out from their widths, their accuracy from the last epoch of each run (the
/// teacher's one value; the students' mean and spread over the seeds), and positive timings.
fn assert_payoff(payoff: &[&serde_json::Value], epochs: &[&serde_json::Value], stderr: &str) {
    let last_acc = |run: &str| -> Vec<f64> {
        let of_run: Vec<&&serde_json::Value> = epochs.iter().filter(|v| v["model"] == run).collect();
        of_run.chunks(2).map(|seed| 100.0 * seed[1]["test_acc"].as_f64().unwrap()).collect()
    };
    // 4-16-3: 16·(4+1) + 3·(16+1) = 131 parameters, 4·16 + 16·3 = 112 multiply-adds; 4-4-3: 35, 28.
    let expected = [("teacher", "4-16-3", 131, 112), ("student", "4-4-3", 35, 28), ("distilled", "4-4-3", 35, 28)];
    assert_eq!(payoff.len(), 3, "{payoff:?}");
    for (row, (run, spec, parameters, macs)) in payoff.iter().zip(expected) {
        assert_eq!((row["run"].as_str(), row["spec"].as_str()), (Some(run), Some(spec)), "{row}");
        assert_eq!((row["parameters"].as_u64(), row["multiply_adds"].as_u64()), (Some(parameters), Some(macs)));
        let accs = last_acc(run);
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        assert_eq!(row["seeds"].as_u64(), Some(accs.len() as u64), "{row}");
        assert!((row["test_acc_mean"].as_f64().unwrap() - mean).abs() < 1e-9, "{row} vs {accs:?}");
        assert_eq!(row["test_acc_sd"].is_null(), run == "teacher", "{row}");
        let per_mmac = row["acc_per_mmac"].as_f64().unwrap();
        assert!((per_mmac - mean / (macs as f64 / 1e6)).abs() < 1e-6 * per_mmac, "{row}");
        assert!(row["batch1_p50_s"].as_f64().unwrap() > 0.0 && row["batch256_images_per_s"].as_f64().unwrap() > 0.0);
    }
    assert!(stderr.contains("payoff on cpu") && stderr.contains("label-only student"), "{stderr}");
}

/// The α = 0 control through the binary, on real data with the default models: the distilled
/// student is trained exactly as the label-only one, so every epoch line agrees and the gain is
/// +0.00 (it was +4.76 points when the two students shared their parameters).
#[test]
fn distill_at_alpha_zero_reports_no_gain() {
    if !std::path::Path::new(kernelab::nn::FASHION_MNIST_DIR).is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must install dataset-fashion-mnist");
        return;
    }
    let (stdout, stderr) =
        kernelab_ok(&["distill", "--epochs", "1", "--seeds", "1", "--alpha", "0", "--limit", "2000"]);
    assert!(
        stderr.contains("alpha = 0, one seed (--seeds N gives a spread)")
            && stderr.contains("distilled − label-only +0.00 points"),
        "{stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let figures = |run: &str| -> Vec<String> {
        let of =
            |l: &serde_json::Value| format!("{} {} {} {}", l["epoch"], l["train_loss"], l["test_loss"], l["test_acc"]);
        lines.iter().filter(|l| l["model"] == run).map(of).collect()
    };
    assert_eq!(figures("student").len(), 1, "{stdout}");
    assert_eq!(figures("student"), figures("distilled"), "{stdout}");
    assert_ne!(figures("student"), figures("teacher"), "{stdout}");
}

#[test]
fn training_input_errors_are_clear() {
    let out = kernelab(&["train", "--data", "/nonexistent-kernelab-data", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("/nonexistent-kernelab-data/train-images-idx3-ubyte"), "{:?}", text(&out));
    let data = tiny_mnist();
    let out = kernelab(&["train", "--model", "784-10", "--data", data.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("the model takes 784 inputs") && text(&out).1.contains("have 4 pixels"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn gpu_adapters_are_listed_and_chosen_by_name() {
    let required = kernelab::BackendKind::Wgpu.is_required();
    if cfg!(feature = "wgpu") && required {
        let (stdout, _) = kernelab_ok(&["devices"]);
        assert!(stdout.contains("adapter 0"), "every adapter is listed:\n{stdout}");
    }
    let out = kernelab(&["check", "--backend", "wgpu", "--adapter", "no-such-gpu", "--op", "relu"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("wgpu is unavailable"), "{stderr}");
    if cfg!(feature = "wgpu") && required {
        assert!(stderr.contains("no adapter matches `no-such-gpu`; found:"), "{stderr}");
    }
}

/// Rows say which clock they used: the CPU's wall clock, a GPU's timestamps when it has them,
/// and the host wall time is always there beside it.
#[test]
fn bench_rows_name_their_clock() {
    let json = temp_path("clock.json");
    let mut args = vec!["bench", "--op", "relu", "--shape", "100000", "--variant", "default", "--budget", "0.2"];
    let gpu = cfg!(feature = "wgpu") && kernelab::BackendKind::Wgpu.is_required();
    if !gpu {
        args.extend(["--backend", "cpu"]);
    }
    args.extend(["--json", json.to_str().unwrap()]);
    kernelab_ok(&args);
    let report = read_report(&json);
    for r in report["records"].as_array().unwrap() {
        let (median, host) = (r["median_s"].as_f64().unwrap(), r["host_median_s"].as_f64().unwrap());
        match (r["backend"].as_str().unwrap(), r["clock"].as_str().unwrap()) {
            ("cpu", clock) => assert_eq!((clock, median), ("host", host), "{r}"),
            (_, "device") => {
                assert!(median > 0.0 && median <= host * 1.5, "kernel time within the wall time around it: {r}")
            }
            (_, clock) => assert_eq!(clock, "host", "{r}"),
        }
    }
}
