//! The `kernelab` command line. Its main job is `kernelab bench`: one op on every backend and
//! variant, one table with time, GFLOP/s, GB/s and the error against an f64 reference.

mod args;
mod bench;
mod check;
mod devices;
mod output;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "kernelab", version, about = "Study compute kernels: benchmark and check them on CPU, WGPU and CUDA")]
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
}

/// Parses the arguments and runs the command. Exit codes: 0 success, 1 a kernel failed its
/// reference check, 2 an error (bad arguments, unavailable backend, unwritable file).
pub fn main() -> ExitCode {
    kernelab_cpu::prepare_baselines();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Devices(a) => devices::run(a).map(|()| 0),
        Command::Bench(a) => bench::run(a),
        Command::Check(a) => check::run(a),
        Command::Train(a) => train::train(a).map(|()| 0),
        Command::Distill(a) => train::distill(a).map(|()| 0),
    };
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("error: {failed} result(s) failed the reference check");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
