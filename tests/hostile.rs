//! Hostile and careless input against the binary: every class of the hardening issue, each with
//! a case that once produced a panic, an abort, a hang, or an exit 0 with a meaningless result.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{cpu_bench, fails_with, kernelab, ok, text, tiny_mnist, write_mnist};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Class 1: two writers of one checkpoint at once leave one whole model and no temporary file.
#[test]
fn concurrent_checkpoint_writers_leave_one_whole_model() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let save = out.join("model.safetensors");
    let children: Vec<_> = [3u32, 4]
        .iter()
        .map(|seed| {
            Command::new(env!("CARGO_BIN_EXE_kernelab"))
                .args(["train", "--model", "4-64-3", "--epochs", "1", "--data", arg(&data), "--save", arg(&save)])
                .args(["--seed", &seed.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let device = kernelab::backends::open_named("cpu").unwrap();
    let model = kernelab::nn::Mlp::load(&save, &device).expect("a whole checkpoint");
    assert_eq!(model.spec(), "4-64-3");
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 1, "no temporary file is left: {files:?}");
}

/// Class 1: a writer killed with SIGKILL at any moment leaves the old checkpoint or the new one,
/// whole. The child is this test binary itself, writing in a loop.
#[test]
fn a_checkpoint_writer_killed_at_any_moment_leaves_a_whole_file() {
    if let Ok(path) = std::env::var("KERNELAB_TEST_WRITE_LOOP") {
        let device = kernelab::backends::open_named("cpu").unwrap();
        for seed in 0.. {
            kernelab::nn::Mlp::new("64-256-10", seed, &device).unwrap().save(Path::new(&path)).unwrap();
        }
    }
    let d = dir();
    let path = d.path().join("m.safetensors");
    let device = kernelab::backends::open_named("cpu").unwrap();
    kernelab::nn::Mlp::new("64-256-10", 999, &device).unwrap().save(&path).unwrap();
    for round in 0..12u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["a_checkpoint_writer_killed_at_any_moment_leaves_a_whole_file", "--exact", "--nocapture"])
            .env("KERNELAB_TEST_WRITE_LOOP", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(60 + 37 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let model = kernelab::nn::Mlp::load(&path, &device).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(model.spec(), "64-256-10");
    }
}

/// Class 2: an output path that names a device is written through, never replaced.
#[test]
fn a_device_given_as_an_output_is_written_through() {
    ok(&cpu_bench("relu", "100", &["--variant", "default", "--budget", "0.01", "--json", "/dev/null"]));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

/// Class 3: a closed pipe ends the program like any filter; a full disk is an error, not a panic.
#[test]
fn a_closed_or_full_stdout_is_not_a_panic() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kernelab")).arg("list").stdout(full).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writing to standard output") && !stderr.contains("panicked"), "{stderr}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_kernelab"))
        .arg("list")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(out.status.success() || out.status.signal() == Some(13), "{:?}", out.status);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// Class 4: sizes from the command line are checked and bounded before anything is allocated.
#[test]
fn huge_sizes_are_refused_with_the_numbers() {
    fails_with(&["bench", "--backend", "cpu", "--op", "relu", "--shape", "200000000000"], 2, "GB available");
    fails_with(
        &["bench", "--backend", "cpu", "--op", "matmul", "--shape", "4294967296x4294967296x4294967296"],
        2,
        "more values than 64-bit sizes can count",
    );
    fails_with(&["bench", "--budget", "1e300"], 2, "from 0 to 3600");
    ok(&cpu_bench("relu", "100", &["--variant", "default", "--repeat", "1000000000000", "--budget", "0.01"]));
}

/// Class 4 (training): a model spec is sized before any layer is built, the teacher's too.
#[test]
fn huge_models_are_refused_before_anything_is_built() {
    let d = dir();
    write_mnist(d.path(), 30, (28, 28));
    let data = arg(d.path());
    let overflow = "784-18446744073709551615-10";
    fails_with(&["train", "--model", overflow, "--data", data], 2, "model 784-18446744073709551615-10 at batch 64");
    fails_with(&["train", "--model", overflow, "--data", data], 2, "the parameter count overflows 64 bits");
    fails_with(&["distill", "--student", overflow, "--data", data], 2, "the parameter count overflows 64 bits");
    fails_with(&["distill", "--teacher", overflow, "--data", data], 2, "the parameter count overflows 64 bits");
    // 784·3·10⁷ + 3·10⁷ + 10·3·10⁷ + 10 parameters; with their gradients, Adam's moments and a
    // batch of 64 rows' activations, 412.3 GB.
    let big = "784-30000000-10";
    if kernelab::tensor::memory::available().is_some_and(|have| have < 412_000_000_000) {
        let need = "23850000010 parameters need about 412.3 GB, and this machine has";
        fails_with(&["train", "--model", big, "--data", data], 2, need);
        fails_with(&["distill", "--teacher", big, "--student", "784-8-10", "--data", data], 2, "model 784-30000000-10");
    }
}

/// Two runs of one seed save the same checkpoint, byte for byte (the header's metadata once came
/// out in a hash map's order, which differed between runs).
#[test]
fn the_same_seed_saves_the_same_bytes() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let saved: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            let path = d.path().join(format!("run{i}.safetensors"));
            ok(&[
                "train",
                "--model",
                "4-8-3",
                "--epochs",
                "2",
                "--seed",
                "4",
                "--data",
                arg(&data),
                "--save",
                arg(&path),
            ]);
            std::fs::read(&path).unwrap()
        })
        .collect();
    assert!(saved.iter().all(|s| *s == saved[0]), "five runs, more than one byte string");
}

/// `--split` divides a batch between several devices: one weight a device, never one device.
#[test]
fn split_must_match_the_devices() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let train = ["train", "--model", "4-8-3", "--epochs", "1", "--data", arg(&data)];
    let with = |extra: &[&'static str]| train.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    fails_with(&with(&["--split", "2"]), 2, "with one device there is nothing to split");
    fails_with(&with(&["--backend", "cpu", "--split", "1,1"]), 2, "with one device there is nothing to split");
    fails_with(&with(&["--backend", "cpu,cpu", "--split", "1,2,3"]), 2, "--split has 3 weights for 2 devices");
    fails_with(&with(&["--backend", "cpu,cpu", "--split", "1,0"]), 2, "--split weight 0 must be a finite number");
    ok(&with(&["--backend", "cpu,cpu", "--split", "1,3"]));
}

/// Class 5: divergence and meaningless settings are errors, never a plausible-looking log.
#[test]
fn divergence_and_bad_settings_stop_training() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let train = |extra: &[&str]| {
        let mut a = vec!["train", "--model", "4-8-3", "--epochs", "1", "--data", arg(&data)];
        a.extend(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str], message: &str| {
        let args = train(extra);
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2, message);
    };
    run(&["--lr", "1e30"], "training diverged in epoch 1");
    run(&["--lr", "NaN"], "--lr NaN must be a finite number above 0");
    run(&["--lr=-0.001"], "must be a finite number above 0");
    run(&["--split", "1e308,1e308", "--backend", "cpu,cpu"], "--split weight");
    let out = kernelab(&train(&["--lr", "1e30", "--allow-nonfinite"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "--allow-nonfinite goes on: {}", text(&out));

    // A teacher checkpoint with NaN weights.
    let device = kernelab::backends::open_named("cpu").unwrap();
    let teacher = d.path().join("nan-teacher.safetensors");
    let model = kernelab::nn::Mlp::new("4-8-3", 1, &device).unwrap();
    let mut named = model.named_parameters();
    named[0].1 = kernelab::Tensor::from_slice(&[f32::NAN; 32], &[8, 4], &device).unwrap();
    kernelab::nn::checkpoint::save(&teacher, &named, Default::default()).unwrap();
    fails_with(
        &[
            "distill",
            "--teacher",
            "4-8-3",
            "--student",
            "4-4-3",
            "--epochs",
            "1",
            "--data",
            arg(&data),
            "--teacher-checkpoint",
            arg(&teacher),
        ],
        2,
        "NaN or infinite parameters",
    );
    fails_with(&["distill", "--temperature", "1e30", "--data", arg(&data)], 2, "--temperature");
}

/// Class 6: empty work and misspelled names are errors; errored rows fail the run.
#[test]
fn empty_work_and_unknown_names_fail() {
    let d = dir();
    let data = tiny_mnist(d.path());
    fails_with(&["train", "--epochs", "1", "--model", "4-8-3", "--data", arg(&data), "--limit", "0"], 2, "--limit 0");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write_mnist(&empty, 0, (2, 2));
    fails_with(&["train", "--epochs", "1", "--model", "4-8-3", "--data", arg(&empty)], 2, "holds no images");
    fails_with(
        &cpu_bench("matmul", "8x8x8", &["--variant", "threaded,packed_avx513"]),
        2,
        "no backend has a variant `packed_avx513`",
    );
    fails_with(&["bench", "--op", "relu", "--adapter", "no-such-gpu-anywhere"], 2, "no-such-gpu-anywhere");
    if kernelab::BackendKind::Wgpu.is_required() {
        // Over lavapipe's 128 MiB storage binding the wgpu row errors: beside a CPU row that runs,
        // the run fails (1); alone, nothing ran and the run is an error (2).
        let mixed = [
            "bench",
            "--backend",
            "cpu,wgpu",
            "--op",
            "relu",
            "--shape",
            "50000000",
            "--variant",
            "default",
            "--budget",
            "0.01",
        ];
        let out = kernelab(&mixed);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("could not run"), "{}", text(&out));
        fails_with(
            &["bench", "--backend", "wgpu", "--op", "relu", "--shape", "50000000", "--budget", "0.01"],
            2,
            "no row could run",
        );
    }
}

/// Class 9: paths are checked before training, and messages name the file and the flag.
#[test]
fn late_failures_are_early_and_named() {
    let d = dir();
    let data = tiny_mnist(d.path());
    let started = std::time::Instant::now();
    fails_with(
        &["train", "--model", "4-8-3", "--data", arg(&data), "--save", "/nonexistent-kernelab/m.safetensors"],
        2,
        "does not exist",
    );
    assert!(started.elapsed().as_secs() < 20, "refused before training");

    // A test set of another image size names its folder.
    let mixed = d.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    write_mnist(&mixed, 30, (2, 2));
    kernelab::nn::idx::write(&mixed.join("t10k-images-idx3-ubyte"), &[30, 3, 3], &vec![1u8; 270]).unwrap();
    fails_with(&["train", "--model", "4-8-3", "--data", arg(&mixed)], 2, "the test images in");
    // As many pixels, another picture: 14×56 test images beside 28×28 training images.
    write_mnist(&mixed, 30, (28, 28));
    kernelab::nn::idx::write(&mixed.join("t10k-images-idx3-ubyte"), &[30, 14, 56], &vec![1u8; 30 * 784]).unwrap();
    fails_with(
        &["train", "--model", "784-8-3", "--data", arg(&mixed)],
        2,
        "are 14×56 pixels, the training images 28×28",
    );

    // A teacher checkpoint of the wrong shape names the flag and the file.
    let device = kernelab::backends::open_named("cpu").unwrap();
    let wrong = d.path().join("wrong-teacher.safetensors");
    kernelab::nn::Mlp::new("9-8-3", 1, &device).unwrap().save(&wrong).unwrap();
    fails_with(
        &["distill", "--student", "4-4-3", "--data", arg(&data), "--teacher-checkpoint", arg(&wrong)],
        2,
        "--teacher-checkpoint",
    );

    // A checkpoint with a missing middle layer does not load as a smaller model.
    let gap = d.path().join("gap.safetensors");
    let three = kernelab::nn::Mlp::new("4-8-8-3", 1, &device).unwrap();
    let named: Vec<_> = three.named_parameters().into_iter().filter(|(n, _)| !n.starts_with("2.")).collect();
    kernelab::nn::checkpoint::save(&gap, &named, Default::default()).unwrap();
    let err = kernelab::nn::Mlp::load(&gap, &device).unwrap_err().to_string();
    assert!(err.contains("follows a missing layer"), "{err}");

    // A directory where an IDX file should be.
    let odd = d.path().join("odd");
    std::fs::create_dir_all(odd.join("train-images-idx3-ubyte")).unwrap();
    fails_with(&["train", "--data", arg(&odd)], 2, "not a regular file");

    // --json appends, as its help says.
    let log = d.path().join("log.jsonl");
    for _ in 0..2 {
        ok(&["train", "--model", "4-8-3", "--epochs", "1", "--data", arg(&data), "--json", arg(&log)]);
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
}

/// Class 9: a gzip stream that expands past the cap is refused, not decompressed into memory.
#[test]
fn a_gzip_bomb_is_refused() {
    let d = dir();
    let path = d.path().join("bomb.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    gz.finish().unwrap();
    let err = kernelab::nn::idx::read_maybe_gz_up_to(&path, 64 << 10).unwrap_err().to_string();
    assert!(err.contains("gzip bomb"), "{err}");
}
