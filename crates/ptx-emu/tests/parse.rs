//! Every PTX file of the repository loads; text outside the subset is refused with its line.

mod common;

use kernelab_ptx_emu::Module;

#[test]
fn every_repository_ptx_file_loads() {
    let files = common::all_ptx();
    assert!(files.len() >= 5, "found only {files:?}");
    let mut entries = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let m = Module::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for k in m.kernels() {
            assert!(!k.params().is_empty() && k.registers() > 0, "{}: {}", f.display(), k.name());
            entries += 1;
        }
    }
    assert!(entries >= 20, "{entries} entries");
}

/// Truncated texts and texts with a line dropped load or are refused with a line number; none
/// panics (the loader sees user files).
#[test]
fn damaged_texts_are_errors_not_panics() {
    let mut refused = 0;
    for f in common::all_ptx() {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut damaged: Vec<String> =
            (1..40).map(|i| text.chars().take(text.chars().count() * i / 40).collect()).collect();
        damaged.extend((0..lines.len()).step_by(19).map(|drop| {
            lines.iter().enumerate().filter(|&(i, _)| i != drop).map(|(_, l)| *l).collect::<Vec<_>>().join("\n")
        }));
        for d in &damaged {
            if let Err(e) = Module::parse(d) {
                assert!(e.line >= 1 && e.line <= d.lines().count().max(1), "{}: {e}", f.display());
                refused += 1;
            }
        }
    }
    assert!(refused > 50, "only {refused} damaged texts refused");
}

/// Every kernel's static shared memory is what ptxas reports for it (results/ptxas/resources.md,
/// rows by entry point, so it holds whichever file a rung lives in).
#[test]
fn static_shared_bytes_match_ptxas() {
    let report = std::fs::read_to_string(common::root().join("results/ptxas/resources.md")).unwrap();
    let mut kernels = std::collections::HashMap::new();
    for f in common::all_ptx() {
        let m = Module::parse(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for k in m.kernels() {
            kernels.insert(k.name().to_string(), k.static_shared_bytes());
        }
    }
    let mut checked = 0;
    for row in report.lines().filter(|l| l.contains("| sm_80 |")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (entry, shared) = (cells[2], cells[8].parse::<usize>().unwrap());
        assert_eq!(kernels.get(entry), Some(&shared), "{entry}");
        checked += 1;
    }
    assert!(checked >= 20, "{checked} rows");
}

/// The driver keeps modules and the memory behind a lock shared by threads.
#[test]
fn modules_kernels_and_memory_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Module>();
    send_sync::<kernelab_ptx_emu::Kernel>();
    send_sync::<kernelab_ptx_emu::Memory>();
    send_sync::<kernelab_ptx_emu::Fault>();
}
