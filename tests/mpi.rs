//! Training across processes over MPI (feature `mpi`), run the way a user runs it: `mpirun -np 2
//! kernelab train --distributed`. Needs OpenMPI's `mpirun` on the PATH (CI installs openmpi-bin).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kernelab");

/// `mpirun ARGS` (which may hold several `:`-separated programs), allowed to run as root and to
/// put two ranks on a small machine, killed if it runs past `limit` (a hang fails the test).
fn mpirun(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new("mpirun")
        .args(["--oversubscribe", "--mca", "btl", "self,vader"])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mpirun runs (install openmpi-bin)");
    let started = Instant::now();
    while child.try_wait().expect("mpirun can be waited for").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("mpirun {args:?} still running after {limit:?}: a rank hangs");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("mpirun's output")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn data_dir() -> String {
    kernelab::nn::FASHION_MNIST_DIR.to_string()
}

/// Every parameter of a checkpoint, flattened in order.
fn parameters(path: &Path) -> Vec<f32> {
    let device = kernelab::backends::open_named("cpu").unwrap();
    let model = kernelab::nn::Mlp::load(path, &device).unwrap();
    model.parameters().iter().flat_map(|p| p.to_vec().unwrap()).collect()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kernelab-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// 20 steps of 64 images; two ranks of 32 rows each against one process on the same batches.
#[test]
fn two_ranks_train_the_model_one_process_trains() {
    let data = data_dir();
    let common = ["train", "--epochs", "1", "--limit", "1280", "--seed", "3", "--data", data.as_str()];
    let (two, one, pair) = (temp("two-ranks.safetensors"), temp("one.safetensors"), temp("pair.safetensors"));
    let mut args = vec!["-np", "2", BIN];
    args.extend(common);
    args.extend(["--distributed", "--verify-replicas", "--save", two.to_str().unwrap()]);
    let out = mpirun(&args, Duration::from_secs(300));
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "rank 0 alone logs:\n{log}");
    assert_eq!(lines[0]["world_size"], 2);
    assert!(lines[0]["allreduce_s"].as_f64().unwrap() > 0.0 && log.contains("distributed: 2 ranks"), "{log}");

    let single = |backend: &str, path: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.args(common).args(["--backend", backend, "--save", path.to_str().unwrap()]);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    single("cpu", &one);
    single("cpu,cpu", &pair);
    let (two, one, pair) = (parameters(&two), parameters(&one), parameters(&pair));
    // The same split in one process (two devices, host all-reduce) is the same arithmetic.
    assert!(largest_difference(&two, &pair) <= 1e-6, "{}", largest_difference(&two, &pair));
    // One device sums the batch's gradient in another order: the same model up to rounding.
    assert!(largest_difference(&two, &one) <= 1e-5, "{}", largest_difference(&two, &one));
}

#[test]
fn ranks_that_disagree_are_refused_with_the_values_named() {
    let data = data_dir();
    let run = ["train", "--distributed", "--epochs", "1", "--limit", "640", "--data", data.as_str()];
    let mut args = vec!["-np", "1", BIN];
    args.extend(run);
    args.extend([":", "-np", "1", BIN]);
    args.extend(run);
    args.extend(["--batch", "32"]);
    let out = mpirun(&args, Duration::from_secs(120));
    assert!(!out.status.success());
    assert!(text(&out).contains("the ranks disagree on --batch (rank 0: 64, rank 1: 32)"), "{}", text(&out));
}

#[test]
fn a_rank_that_cannot_start_stops_every_rank() {
    let data = data_dir();
    let mut args = vec!["-np", "1", BIN, "train", "--distributed", "--epochs", "1", "--data", data.as_str()];
    args.extend([":", "-np", "1", BIN, "train", "--distributed", "--epochs", "1", "--data", "/nonexistent-kernelab"]);
    let out = mpirun(&args, Duration::from_secs(120));
    assert!(!out.status.success());
    let log = text(&out);
    assert!(log.contains("rank 1: /nonexistent-kernelab/train-images-idx3-ubyte"), "{log}");
    // Rank 0 learns it in the same collective and stops with "rank 1 could not start" — unless
    // mpirun, seeing rank 1 exit non-zero first, has already ended it; either way it does not wait.
}

#[test]
fn a_rank_killed_mid_training_ends_the_job_instead_of_hanging() {
    let data = data_dir();
    let run = ["train", "--distributed", "--epochs", "20", "--data", data.as_str()];
    let mut args = vec!["-np", "1", BIN];
    args.extend(run);
    args.extend([":", "-np", "1", "timeout", "-s", "KILL", "4", BIN]);
    args.extend(run);
    let started = Instant::now();
    let out = mpirun(&args, Duration::from_secs(120));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(60), "the job ended {:?} after the kill", started.elapsed());
}

#[test]
fn distributed_outside_mpirun_is_a_clear_error() {
    let out = Command::new(BIN).args(["train", "--distributed", "--epochs", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("under an MPI launcher, e.g. `mpirun -np 2"), "{}", text(&out));
}
