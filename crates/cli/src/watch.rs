//! `--watch`: the edit–measure loop. Runs the same command without `--watch` in a child process,
//! then waits until a `--kernel` file's bytes change and runs it again, until Ctrl-C. A kernel
//! that crashes its run ends that run, not the loop.

use std::time::{Duration, Instant};

use kernelab_tensor::{Error, Result};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(200);

/// Runs this process's command line without `--watch` again and again, once now and once after
/// every change of one of `kernels` (`PATH[:ENTRY]`); never returns but with an error.
pub fn run(kernels: &[String]) -> Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--watch").collect();
    let exe = std::env::current_exe().map_err(|e| Error::Io { path: "the kernelab binary".into(), source: e })?;
    let paths: Vec<String> = kernels.iter().map(|k| crate::kernels::path_of(k).to_string()).collect();
    let mut seen = fingerprints(&paths);
    loop {
        let started = Instant::now();
        let status = std::process::Command::new(&exe)
            .args(&args)
            .status()
            .map_err(|e| Error::Io { path: exe.display().to_string(), source: e })?;
        eprintln!(
            "-- ran in {:.1} s ({status}); watching {} for changes (Ctrl-C stops)",
            started.elapsed().as_secs_f64(),
            paths.join(", ")
        );
        loop {
            std::thread::sleep(POLL);
            let now = fingerprints(&paths);
            if now != seen {
                let changed: Vec<&str> = paths
                    .iter()
                    .zip(now.iter().zip(&seen))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(p, _)| p.as_str())
                    .collect();
                eprintln!("-- {} changed; running again", changed.join(", "));
                seen = now;
                break;
            }
        }
    }
}

/// The SHA-256 of each file's bytes, or `None` while it cannot be read (an editor's save in
/// progress), so any change of content, and only that, starts a run.
fn fingerprints(paths: &[String]) -> Vec<Option<String>> {
    paths.iter().map(|p| std::fs::read(p).ok().map(|bytes| kernelab_tensor::sha256_hex(&bytes))).collect()
}
