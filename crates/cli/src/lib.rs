//! The `kernelab` command line. Its main job is `kernelab bench`: one op on every backend and
//! variant, one table with time, GFLOP/s, GB/s and the error against an f64 reference.

mod args;
mod bench;
mod check;
mod compare;
mod devices;
pub mod infer;
mod infer_table;
mod isolate;
mod kernels;
mod list;
mod out;
pub mod payoff;
mod plot;
mod profile;
mod report_files;
pub mod sweep;
mod train;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "kernelab",
    version,
    about = "Study compute kernels: benchmark and check them on CPU, WGPU and CUDA",
    after_help = "Examples:
  kernelab bench                                      the default suite on every backend
  kernelab bench --op matmul --shape 64..2048 --pivot variant --json sweep.json
  kernelab compare base.json new.json --threshold 5%
  kernelab plot sweep.json --kind sweep --out sweep.svg
  kernelab train --epochs 1 --profile
  kernelab infer --checkpoint student.safetensors --batch 1,256
  kernelab list"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every backend, whether it is available here, its device and driver, or why not.
    Devices(devices::DevicesArgs),
    /// Time ops on every backend and variant, checked against an f64 reference.
    Bench(bench::BenchArgs),
    /// Run the conformance suite (every op and variant against the f64 reference).
    Check(check::CheckArgs),
    /// Train an MLP on an MNIST-format dataset, printing one JSON line per epoch.
    Train(train::TrainArgs),
    /// Train a teacher, then a student on labels alone and a student distilled from the teacher.
    Distill(train::DistillArgs),
    /// Time a model's forward pass (a checkpoint or a spec) on every backend and batch size:
    /// latency p50/p99, images/s, GFLOP/s, and the test accuracy.
    Infer(infer::InferArgs),
    /// Compare two benchmark reports row by row: ratio, its interval between runs, verdict.
    Compare(compare::CompareArgs),
    /// Plot a benchmark report as SVG: the roofline, or a sweep over sizes.
    Plot(plot::PlotArgs),
    /// List the ops, the backends and every variant with a line on what it does.
    List,
}

/// Mesa's software Vulkan driver prints `error: XDG_RUNTIME_DIR is invalid or not set` whenever
/// the variable is missing (a container, `ssh` without a login session), which reads like an
/// error of kernelab's. It only needs a private directory: give it one when there is none.
fn give_mesa_a_runtime_dir() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if valid {
        return;
    }
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else { return };
    let dir = std::env::temp_dir().join(format!("kernelab-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
    if ours {
        // SAFETY: called first thing in `main`, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

/// Parses a command line as `main` does, without running it (for tests and fuzzing): `Ok` when it
/// is valid, else clap's message.
pub fn parse_args<I, T>(args: I) -> Result<(), String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map(drop).map_err(|e| e.to_string())
}

/// Parses the arguments and runs the command. Exit codes: 0 success, 1 a kernel failed its
/// reference check, 2 an error (bad arguments, unavailable backend, unwritable file).
pub fn main() -> ExitCode {
    out::die_on_broken_pipe();
    kernelab_cpu::prepare_baselines();
    give_mesa_a_runtime_dir();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Devices(a) => devices::run(a).map(|()| 0),
        Command::Bench(a) => bench::run(a),
        Command::Check(a) => check::run(a),
        Command::Train(a) => train::train(a).map(|()| 0),
        Command::Distill(a) => train::distill(a).map(|()| 0),
        Command::Infer(a) => infer::run(a),
        Command::Plot(a) => plot::run(a).map(|()| 0),
        Command::List => list::run().map(|()| 0),
        Command::Compare(a) => match compare::run(a) {
            Ok(0) => Ok(0),
            Ok(status) => return ExitCode::from(status),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("error: {failed} result(s) failed the reference check or could not run");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
