//! CPU kernels from shared libraries run in a child process: the same `kernelab` binary with
//! `--isolated`, which loads the library, checks and times its rows, and prints them as a JSON
//! report. A library that crashes (a segmentation fault, an abort) or hangs (past a time limit,
//! then killed) fails its own rows with the reason; the parent's run goes on.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kernelab_bench::record::{Record, Report, Status};
use kernelab_tensor::KernelFile;

/// How a child process ended.
#[derive(Debug)]
pub enum Ending {
    /// It exited with `code`; what it wrote.
    Exited { code: i32, stdout: String, stderr: String },
    /// A signal ended it (its number and name).
    Signalled { signal: i32, stderr: String },
    /// It ran past the limit and was killed.
    TimedOut { limit: Duration, stderr: String },
    /// It could not be started.
    NotStarted(String),
}

impl Ending {
    /// Why the child's rows have no numbers, when it did not end normally (exit 0 or 1).
    pub fn failure(&self) -> Option<String> {
        let tail = |stderr: &str| {
            let last: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let last = last[last.len().saturating_sub(3)..].join(" | ");
            if last.is_empty() { String::new() } else { format!("; its last words: {last}") }
        };
        match self {
            Ending::Exited { code: 0 | 1, .. } => None,
            Ending::Exited { code, stderr, .. } => {
                Some(format!("the process running it exited with {code}{}", tail(stderr)))
            }
            Ending::Signalled { signal, stderr } => {
                Some(format!("the kernel crashed the process running it: {}{}", signal_name(*signal), tail(stderr)))
            }
            Ending::TimedOut { limit, stderr } => Some(format!(
                "the kernel did not finish within {:.0} s and was killed (a hang?){}",
                limit.as_secs_f64(),
                tail(stderr)
            )),
            Ending::NotStarted(why) => Some(format!("cannot start a process to run it: {why}")),
        }
    }
}

/// Runs this binary with `args` and the environment variables `env` added, waiting at most
/// `limit` (then killing it).
pub fn run(args: &[String], env: &[(&str, &std::path::Path)], limit: Duration) -> Ending {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Ending::NotStarted(e.to_string()),
    };
    let mut command = Command::new(exe);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return Ending::NotStarted(e.to_string()),
    };
    // Drain both pipes on threads, so a child that writes much never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Ending::NotStarted(e.to_string()),
        }
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => Ending::TimedOut { limit, stderr },
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Ending::Exited { code, stdout, stderr },
            (None, Some(signal)) => Ending::Signalled { signal, stderr },
            (None, None) => Ending::NotStarted("it ended without a code or a signal".into()),
        },
    }
}

/// The rows of `file` from a child `kernelab bench` run with `args`, which write its report to
/// `report` (a file: the kernel may write to stdout): the child's rows, or one error row per row
/// of `template` saying how the child ended.
pub fn bench_rows(
    file: &KernelFile,
    args: &[String],
    report: &std::path::Path,
    limit: Duration,
    template: Vec<Record>,
) -> Vec<Record> {
    let folder = report.parent().unwrap_or(report);
    let ending = run(args, &[(kernelab_cpu::library::COPIES_IN, folder)], limit);
    let why = match (&ending, ending.failure()) {
        (Ending::Exited { code, .. }, None) => match Report::read(report) {
            Ok(report) => return report.records,
            Err(_) if !report.exists() => format!(
                "the process running it exited with {code} before writing its report: did the kernel end the \
                 process (exit)?"
            ),
            Err(e) => format!("the process running it wrote no report it could read back: {e}"),
        },
        (_, Some(why)) => why,
        (_, None) => "the process running it ended unexpectedly".into(),
    };
    template
        .into_iter()
        .map(|r| Record {
            source: Some(file.source.clone()),
            ..Record { note: Some(format!("error: {why}")), status: Status::Error, ..r }
        })
        .collect()
}

/// The usual name of a signal that ends a crashing kernel, with its number.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        4 => "SIGILL (illegal instruction)",
        6 => "SIGABRT (abort)",
        7 => "SIGBUS (bus error)",
        8 => "SIGFPE (arithmetic fault)",
        9 => "SIGKILL (killed)",
        11 => "SIGSEGV (invalid memory access)",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal}, {name}")
}
