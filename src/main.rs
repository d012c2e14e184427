//! The `kernelab` binary; everything lives in the `kernelab-cli` crate.

fn main() -> std::process::ExitCode {
    kernelab_cli::main()
}
