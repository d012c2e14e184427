//! No output destroys an input or another output: every command lists the files it reads and
//! writes, and before any work refuses (status 2, the flags and paths named) two outputs that are
//! one file, an output that is one of its inputs, a file the user may not write, and an existing
//! file of another kind (a log appended to a checkpoint, a checkpoint over a log or a dataset).
//! Each case checks that the file it protects is left as it was.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use common::{cpu_bench, fails_with, ok, tiny_mnist};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `args`, insists on status 2, `message`, a refusal within seconds (before any work), and
/// `kept` unchanged.
fn refused(args: &[&str], message: &str, kept: &Path) {
    let before = std::fs::read(kept).ok();
    let started = Instant::now();
    fails_with(args, 2, message);
    assert!(started.elapsed().as_secs() < 10, "{args:?}: refused before the work");
    assert_eq!(std::fs::read(kept).ok(), before, "{args:?}: {} was changed", kept.display());
}

/// The tiny data set in its own folder under `dir`.
fn data_in(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    tiny_mnist(&data)
}

/// A training command on the tiny data set, with `extra` flags.
fn train<'a>(data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--model", "4-8-3", "--epochs", "1", "--data", arg(data)];
    args.extend_from_slice(extra);
    args
}

#[test]
fn two_outputs_of_one_command_are_never_one_file() {
    let d = dir();
    let out = d.path().join("r.out");
    std::fs::write(&out, "an earlier report").unwrap();
    let relu = |rest: &[&'static str]| cpu_bench("relu", "100", rest);
    let mut args = relu(&["--variant", "default"]);
    args.extend(["--json", arg(&out), "--markdown", arg(&out)]);
    refused(&args, "--json", &out);
    refused(&args, "--markdown", &out);
    // Another spelling of the path, and a symbolic link to it, are the same file.
    let link = d.path().join("link.csv");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let dotted = d.path().join(".").join("r.out");
    let mut args = relu(&["--variant", "default"]);
    args.extend(["--json", arg(&dotted), "--csv", arg(&link)]);
    refused(&args, "are one file", &out);
    // A file not made yet is one file by its folder and name.
    let new = d.path().join("new.out");
    let new_dotted = dotted.with_file_name("new.out");
    let mut args = relu(&["--variant", "default"]);
    args.extend(["--csv", arg(&new), "--markdown", arg(&new_dotted)]);
    refused(&args, "are one file", &new);
    assert!(!new.exists());

    let data = data_in(d.path());
    let log = d.path().join("log.jsonl");
    refused(&train(&data, &["--json", arg(&log), "--save", arg(&log)]), "--json", &log);
    refused(&train(&data, &["--json", arg(&log), "--profile", "--profile-json", arg(&log)]), "are one file", &log);
    assert!(!log.exists(), "nothing was written");
}

#[test]
fn an_output_is_never_one_of_the_commands_inputs() {
    let d = dir();
    let report = d.path().join("r.json");
    ok(&cpu_bench("relu", "100,200", &["--variant", "default", "--budget", "0.01", "--json", arg(&report)]));
    refused(&["plot", arg(&report), "--out", arg(&report)], "--out would overwrite REPORT", &report);
    refused(&["compare", arg(&report), arg(&report), "--json", arg(&report)], "--json would overwrite BASE", &report);

    let data = data_in(d.path());
    for file in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"] {
        let target = data.join(file);
        refused(&train(&data, &["--save", arg(&target)]), "which this command reads", &target);
        refused(&train(&data, &["--profile", "--profile-json", arg(&target)]), "--data", &target);
    }

    let device = kernelab::backends::open_named("cpu").unwrap();
    let teacher = d.path().join("teacher.safetensors");
    kernelab::nn::Mlp::new("4-8-3", 1, &device).unwrap().save(&teacher).unwrap();
    let distill = [
        "distill",
        "--teacher",
        "4-8-3",
        "--student",
        "4-4-3",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--data",
        arg(&data),
        "--teacher-checkpoint",
        arg(&teacher),
        "--save-teacher",
        arg(&teacher),
    ];
    refused(&distill, "--save-teacher would overwrite --teacher-checkpoint", &teacher);
}

#[test]
fn a_file_the_user_may_not_write_is_refused_though_a_rename_could_replace_it() {
    let d = dir();
    let frozen = d.path().join("frozen.json");
    std::fs::write(&frozen, "keep me").unwrap();
    std::fs::set_permissions(&frozen, std::fs::Permissions::from_mode(0o444)).unwrap();
    let args = cpu_bench("relu", "100", &["--variant", "default", "--json", arg(&frozen)]);
    refused(&args, "mode 0444", &frozen);

    let data = data_in(d.path());
    let model = d.path().join("frozen.safetensors");
    let device = kernelab::backends::open_named("cpu").unwrap();
    kernelab::nn::Mlp::new("4-8-3", 1, &device).unwrap().save(&model).unwrap();
    std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused(&train(&data, &["--save", arg(&model)]), "does not let you write it", &model);
    let log = d.path().join("frozen.jsonl");
    std::fs::write(&log, "{\"epoch\":1}\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused(&train(&data, &["--json", arg(&log)]), "mode 0444", &log);
    // Writable again, the same file is replaced as before.
    std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&train(&data, &["--save", arg(&model)]));
    assert_eq!(std::fs::metadata(&model).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn a_log_is_never_appended_to_a_checkpoint_nor_a_checkpoint_written_over_a_log() {
    let d = dir();
    let data = data_in(d.path());
    let model = d.path().join("model.safetensors");
    ok(&train(&data, &["--save", arg(&model)]));
    refused(&train(&data, &["--json", arg(&model)]), "--json appends JSON lines", &model);
    refused(&train(&data, &["--json", arg(&model)]), "first line is not a JSON object", &model);

    let log = d.path().join("log.jsonl");
    ok(&train(&data, &["--json", arg(&log)]));
    refused(&train(&data, &["--save", arg(&log)]), "not a checkpoint (safetensors)", &log);
    let notes = d.path().join("notes.txt");
    std::fs::write(&notes, "results of the week\n").unwrap();
    refused(&train(&data, &["--json", arg(&notes)]), "not a JSON-lines log", &notes);
    refused(&train(&data, &["--save", arg(&notes)]), "not a checkpoint", &notes);

    // What each flag writes is still written over or appended to its own kind.
    ok(&train(&data, &["--json", arg(&log), "--save", arg(&model)]));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    let device = kernelab::backends::open_named("cpu").unwrap();
    assert_eq!(kernelab::nn::Mlp::load(&model, &device).unwrap().spec(), "4-8-3");
}

#[test]
fn a_dash_is_standard_output_or_refused_never_a_file_called_dash() {
    let d = dir();
    let data = data_in(d.path());
    let run = |extra: &[&str]| {
        let args = train(&data, extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_kernelab")).args(&args).current_dir(d.path()).output().unwrap()
    };
    let dash = d.path().join("-");
    // `--json -` is the epoch lines on stdout, where they go anyway: each once, and no file.
    let out = run(&["--json", "-"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", common::text(&out));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "one epoch, one line:\n{stdout}");
    assert_eq!(lines[0]["epoch"], 1);
    assert!(!dash.exists(), "`-` is not a file");
    // The outputs that cannot be stdout refuse `-` before any work.
    for (extra, message) in [
        (&["--save", "-"][..], "--save cannot write to standard output (a checkpoint is binary"),
        (&["--profile", "--profile-json", "-"][..], "--profile-json cannot write to standard output"),
    ] {
        let out = run(extra);
        let all = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {all}");
        assert!(all.contains(message) && all.contains("`./-` for a file called -"), "{extra:?}: {all}");
        assert!(out.stdout.is_empty() && !dash.exists(), "{extra:?} trained or wrote a file");
    }
    // `./-` names a file called `-`.
    assert!(run(&["--json", "./-"]).status.success());
    assert_eq!(std::fs::read_to_string(&dash).unwrap().lines().count(), 1);
}
