//! `--kernel PATH[:ENTRY]` as a user runs it: kernel files as rows beside the built-in variants,
//! bad files as error rows that leave the rest of the run standing, and `--watch`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kernelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernelab")).args(args).output().expect("the kernelab binary runs")
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The built-in tiled matmul PTX under a header that declares its launch.
fn tiled_ptx() -> String {
    let ptx = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/matmul/3_tiled.ptx")).unwrap();
    format!("// kernelab: op=matmul tile=16x16 block=16x16 entry=matmul_tiled\n{ptx}")
}

/// `bench` of one small matmul on the CPU's naive rung plus `kernels`, as JSON on stdout:
/// (exit code, the report's rows, stderr).
fn bench(kernels: &[&Path]) -> (i32, Vec<serde_json::Value>, String) {
    let mut args = vec!["bench", "--op", "matmul", "--backend", "cpu", "--variant", "naive"];
    args.extend(["--shape", "16x16x16,9x7x5", "--budget", "0.01", "--repeat", "3", "--json", "-"]);
    let specs: Vec<String> = kernels.iter().map(|k| k.display().to_string()).collect();
    for spec in &specs {
        args.extend(["--kernel", spec.as_str()]);
    }
    let out = kernelab(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let rows = report["records"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), rows, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn rows_of<'r>(rows: &'r [serde_json::Value], variant: &str) -> Vec<&'r serde_json::Value> {
    rows.iter().filter(|r| r["variant"] == variant).collect()
}

#[test]
fn bad_files_are_error_rows_and_the_rest_still_runs() {
    let d = dir();
    let missing = d.path().join("missing.wgsl");
    let wrong_ext = write(d.path(), "kernel.cu", "__global__ void k() {}\n");
    let other_op = write(d.path(), "soft.wgsl", "// kernelab: op=softmax\n");
    let no_tile = write(d.path(), "untiled.wgsl", "@compute @workgroup_size(1) fn main() {}\n");
    let (code, rows, stderr) = bench(&[&missing, &wrong_ext, &other_op, &no_tile]);
    assert_eq!(code, 1, "a file that cannot run is a failure of the run: {stderr}");
    assert_eq!(rows_of(&rows, "naive").len(), 2, "the built-in rows still ran");
    assert!(rows_of(&rows, "naive").iter().all(|r| r["status"] == "ok"));
    for (name, says) in [
        ("missing.wgsl", "cannot read it"),
        ("kernel.cu", "expected .wgsl (wgpu), .ptx (cuda) or .so"),
        ("soft.wgsl", "run it with --op softmax"),
        ("untiled.wgsl", "tile=WxH"),
    ] {
        let these = rows_of(&rows, name);
        assert_eq!(these.len(), 2, "one row per shape for {name}: {rows:?}");
        for row in these {
            let note = row["note"].as_str().unwrap_or_default();
            assert!(row["status"] == "error" && note.contains(says), "{name}: {note}");
        }
    }
}

#[test]
fn a_ptx_file_without_a_cuda_device_is_checked_and_skipped_with_its_hash() {
    let d = dir();
    let good = write(d.path(), "tiled.ptx", &tiled_ptx());
    let (code, rows, stderr) = bench(&[&good]);
    if rows_of(&rows, "tiled.ptx").iter().any(|r| r["status"] == "ok") {
        return; // A CUDA device ran it: nothing to check about skipping.
    }
    assert_eq!(code, 0, "a valid PTX file that cannot run here is no failure: {stderr}");
    let row = rows_of(&rows, "tiled.ptx")[0];
    let note = row["note"].as_str().unwrap_or_default();
    assert!(row["status"] == "skipped" && note.contains("entry `matmul_tiled`"), "{note}");
    let bytes = std::fs::read(&good).unwrap();
    assert_eq!(row["source"]["sha256"], kernelab_tensor::sha256_hex(&bytes), "{row}");
    assert_eq!(row["source"]["path"], good.display().to_string());
}

#[test]
fn a_ptx_file_with_another_ops_parameters_is_an_error_row() {
    let d = dir();
    let rowwise = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/rowwise.ptx")).unwrap();
    let text = format!("// kernelab: op=matmul tile=16x16 block=256 entry=softmax\n{rowwise}");
    let wrong = write(d.path(), "wrong.ptx", &text);
    let (code, rows, _) = bench(&[&wrong]);
    assert_eq!(code, 1);
    let note = rows_of(&rows, "wrong.ptx")[0]["note"].as_str().unwrap_or_default().to_string();
    assert!(note.contains("but a matmul kernel takes"), "{note}");
}

#[test]
fn kernel_files_need_exactly_one_op() {
    let d = dir();
    let file = write(d.path(), "k.wgsl", "");
    let spec = file.display().to_string();
    let out = kernelab(&["bench", "--op", "matmul,relu", "--kernel", &spec]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("needs exactly one --op"), "{stderr}");
    let out = kernelab(&["check", "--kernel", &spec]);
    assert_eq!(out.status.code(), Some(2), "check without --op: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn watch_runs_again_when_the_file_changes() {
    let d = dir();
    let file = write(d.path(), "tiled.ptx", &tiled_ptx());
    let spec = file.display().to_string();
    let args = ["bench", "--op", "matmul", "--backend", "cpu", "--variant", "naive", "--shape", "8x8x8"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_kernelab"))
        .args(args)
        .args(["--budget", "0.01", "--repeat", "3", "--kernel", &spec, "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |text: &str| {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            match lines.next() {
                Some(Ok(line)) if line.contains(text) => return true,
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
        false
    };
    let first = wait_for("watching");
    std::fs::write(&file, format!("{}\n// edited\n", tiled_ptx())).unwrap();
    let again = first && wait_for("changed; running again") && wait_for("watching");
    let _ = child.kill();
    let _ = child.wait();
    assert!(first, "the first run never finished");
    assert!(again, "an edit did not start a second run");
}

#[test]
fn the_ptx_examples_pass_the_checks_that_need_no_device() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kernels/ptx");
    for (op, file, shape) in [("matmul", "matmul_tiled.ptx", "33x18x5"), ("softmax", "softmax.ptx", "3x300")] {
        let path = root.join(file).display().to_string();
        let args = ["bench", "--op", op, "--backend", "cpu", "--variant", "default", "--shape", shape];
        let out = kernelab(&[&args[..], &["--budget", "0.01", "--kernel", &path, "--json", "-"]].concat());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let rows = report["records"].as_array().cloned().unwrap_or_default();
        let row = rows_of(&rows, file).first().map(|r| (*r).clone()).unwrap_or_default();
        assert!(row["status"] == "ok" || row["status"] == "skipped", "{file}: {row}");
        assert_eq!(out.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `bench --op OP` on the CPU's `variant` plus every file of `kernels`, at `shapes`, as JSON.
fn bench_files(
    op: &str,
    backend: &str,
    variant: &str,
    shapes: &str,
    kernels: &[PathBuf],
) -> (i32, Vec<serde_json::Value>) {
    let mut args: Vec<String> =
        ["bench", "--op", op, "--backend", backend, "--variant", variant, "--shape", shapes].map(String::from).to_vec();
    args.extend(["--budget", "0.02", "--repeat", "3", "--kernel-timeout", "10", "--json", "-"].map(String::from));
    for k in kernels {
        args.extend(["--kernel".to_string(), k.display().to_string()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kernelab")).args(&args).output().expect("kernelab runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.code().unwrap_or(-1), report["records"].as_array().cloned().unwrap_or_default())
}

/// Each row named `file` failed (status fail or error) with a note that says `says`.
fn assert_caught(rows: &[serde_json::Value], file: &str, says: &str) {
    let these = rows_of(rows, file);
    assert!(!these.is_empty(), "no row for {file}");
    for row in these {
        let note = row["note"].as_str().unwrap_or_default();
        let failed = row["status"] == "fail" || row["status"] == "error";
        assert!(failed && note.contains(says), "{file} should fail with `{says}`: {} {note}", row["status"]);
        assert!(row["median_s"].is_null(), "{file}: a failed row shows no time: {row}");
    }
}

/// Every cheat of `tests/kernels/c/` as a `.so` row beside the honest C example: each is caught
/// by the check its comment names, the crash and the hang in the child process that runs them,
/// and the honest rows pass.
#[test]
fn every_cheating_library_is_caught_and_the_honest_one_passes() {
    let d = dir();
    let honest = common::cc::shared_library(&common::cc::example("matmul"), d.path(), &[]);
    let cheats = [
        ("zeros", "untrustworthy: output 0 is all zeros"),
        ("constant", "untrustworthy: output 0 is the constant"),
        ("unwritten", "still holds the poison"),
        ("past_end", "guard zone broken: c: 1 value after the end"),
        ("modifies_input", "an input changed"),
        ("caches", "over budget"),
        ("late_thread", "output 0"),
        ("segfault", "crashed the process running it: signal 11, SIGSEGV"),
        ("hang", "did not finish within 10 s and was killed"),
    ];
    let mut files = vec![honest];
    files.extend(cheats.iter().map(|(name, _)| common::cc::shared_library(&common::cc::fixture(name), d.path(), &[])));
    let (code, rows) = bench_files("matmul", "cpu", "naive", "64x64x64,33x65x17", &files);
    assert_eq!(code, 1, "cheats fail the run");
    for name in ["naive", "matmul.so"] {
        assert!(rows_of(&rows, name).iter().all(|r| r["status"] == "ok"), "{name}: {rows:?}");
        assert_eq!(rows_of(&rows, name).len(), 2, "{name}");
    }
    for (name, says) in cheats {
        assert_caught(&rows, &format!("{name}.so"), says);
    }
}

/// The WGSL cheats of `tests/kernels/wgsl/`, timed at a round shape where the skipped k-tile and
/// the missing bounds guard do no harm: the check shapes catch them before any time is shown.
#[test]
fn every_cheating_shader_is_caught_at_a_round_shape() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/kernels/wgsl/matmul_tile32.wgsl");
    let cheats = ["zeros_matmul", "skips_last_k_tile", "no_bounds_guard", "shadows_builtin"];
    let mut files = vec![example];
    files.extend(cheats.iter().map(|c| root.join(format!("tests/kernels/wgsl/{c}.wgsl"))));
    let (_, rows) = bench_files("matmul", "wgpu", "tiled", "64x64x64", &files);
    let example_row = rows_of(&rows, "matmul_tile32.wgsl").first().map(|r| (*r).clone()).unwrap_or_default();
    let unavailable = example_row["note"].as_str().is_some_and(|n| n.contains("unavailable"));
    if unavailable && !kernelab::BackendKind::Wgpu.is_required() {
        return; // no wgpu adapter here, and none required
    }
    assert_eq!(example_row["status"], "ok", "{example_row}");
    assert!(rows_of(&rows, "tiled").iter().all(|r| r["status"] == "ok"), "the built-in row beside them: {rows:?}");
    for cheat in cheats {
        let name = format!("{cheat}.wgsl");
        let says = if cheat.ends_with("zeros_matmul") || cheat == "shadows_builtin" {
            "untrustworthy"
        } else {
            "conformance matmul"
        };
        assert_caught(&rows, &name, says);
    }
}

#[test]
fn check_runs_a_library_in_a_child_and_fails_a_cheat() {
    let d = dir();
    let softmax = common::cc::shared_library(&common::cc::example("softmax"), d.path(), &[]);
    let zeros = common::cc::shared_library(&common::cc::fixture("zeros"), d.path(), &[]);
    let check = |file: &Path, op: &str| {
        let spec = file.display().to_string();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let out = kernelab(&["check", "--op", op, "--backend", "cpu", "--variant", &name, "--kernel", &spec]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = check(&softmax, "softmax");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("softmax.so") && stdout.contains("all cases passed"), "{stdout}");
    let (code, stdout) = check(&zeros, "matmul");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
}

/// A kernel that prints to stdout still reports its rows (the child's report goes to a file), one
/// that ends the process is told apart from a crash, and a child that dies leaves no private copy
/// of a library behind.
#[test]
fn a_library_that_prints_or_exits_is_told_apart_and_leaves_no_files() {
    let d = dir();
    let head = "#include <stdio.h>\n#include <stdlib.h>\n#include \"kernelab.h\"\n\
                int kernelab_abi_version(void) { return KERNELAB_ABI_VERSION; }\n";
    let relu = "for (uint64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0; return 0;";
    let noisy =
        format!("{head}int kernelab_relu(const float *x, float *y, uint64_t n) {{ printf(\"hi\\n\"); {relu} }}\n");
    let exits = format!("{head}int kernelab_relu(const float *x, float *y, uint64_t n) {{ exit(0); {relu} }}\n");
    let crashes = format!("{head}int kernelab_relu(const float *x, float *y, uint64_t n) {{ abort(); {relu} }}\n");
    let libs: Vec<PathBuf> = [("noisy", noisy), ("exits", exits), ("crashes", crashes)]
        .iter()
        .map(|(name, text)| common::cc::shared_library(&write(d.path(), &format!("{name}.c"), text), d.path(), &[]))
        .collect();
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut args = vec!["bench", "--op", "relu", "--backend", "cpu", "--variant", "default", "--shape", "4096"];
    args.extend(["--budget", "0.02", "--json", "-"]);
    let specs: Vec<String> = libs.iter().map(|l| l.display().to_string()).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kernelab"));
    command.args(&args).env("TMPDIR", &tmp).env("XDG_RUNTIME_DIR", d.path());
    for spec in &specs {
        command.args(["--kernel", spec]);
    }
    let out = command.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let rows = report["records"].as_array().cloned().unwrap_or_default();
    assert!(rows_of(&rows, "noisy.so").iter().all(|r| r["status"] == "ok"), "{rows:?}");
    assert_caught(&rows, "exits.so", "before writing its report");
    assert_caught(&rows, "crashes.so", "SIGABRT");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}
