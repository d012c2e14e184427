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
