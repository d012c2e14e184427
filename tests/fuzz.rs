//! Property tests as bounded fuzzing (run by the README's test command, so in CI): the readers
//! of untrusted input — IDX files, checkpoints, shape ranges, the command line — return an error
//! or a value for any input, and never panic. `PROPTEST_CASES` raises the count for a longer run;
//! failures proptest finds are kept in `tests/fuzz.proptest-regressions` and replayed first.

use std::path::Path;

use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

/// A valid IDX file of `n` 2×2 images.
fn idx_bytes(n: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, 3];
    for d in [n, 2, 2] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * 4).map(|i| i as u8));
    b
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_idx_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256), rank in 1usize..4) {
        let _ = kernelab::nn::idx::parse(&bytes, rank, Path::new("fuzz"));
    }

    #[test]
    fn a_mutated_idx_file_is_read_or_refused(n in 0u32..6, at in 0usize..40, byte in any::<u8>(), cut in 0usize..48) {
        let mut bytes = idx_bytes(n);
        if at < bytes.len() {
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(1));
        if let Ok(idx) = kernelab::nn::idx::parse(&bytes, 3, Path::new("fuzz")) {
            prop_assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn the_checkpoint_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), flip in 0usize..600, to in any::<u8>()) {
        let dir = tempfile::tempdir().unwrap();
        let device = kernelab::backends::open_named("cpu").unwrap();
        // Random bytes, and a real checkpoint with one byte changed.
        let path = dir.path().join("random.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let _ = kernelab::nn::Mlp::load(&path, &device);
        let real = dir.path().join("real.safetensors");
        kernelab::nn::Mlp::new("4-3-2", 0, &device).unwrap().save(&real).unwrap();
        let mut data = std::fs::read(&real).unwrap();
        let at = flip % data.len();
        data[at] = to;
        std::fs::write(&real, &data).unwrap();
        if let Ok(model) = kernelab::nn::Mlp::load(&real, &device) {
            prop_assert!(model.parameters().iter().all(|p| p.to_vec().unwrap().iter().all(|v| v.is_finite())));
        }
    }

    #[test]
    fn the_shape_parser_never_panics_and_bounds_its_sweeps(text in "[0-9x.:+NTX×]{0,24}") {
        if let Ok(spec) = kernelab::cli::sweep::parse(&text) {
            let count = spec.count().expect("a parsed sweep has a known count");
            prop_assert!(count <= kernelab::cli::sweep::MAX_SHAPES);
            for rank in (1..=3).filter(|&r| spec.fits_rank(r)) {
                prop_assert_eq!(spec.expand_for_rank(rank).len() as u64, count, "counted as built");
            }
        }
    }

    #[test]
    fn the_command_line_parser_never_panics(words in proptest::collection::vec(prop_oneof![
        Just("bench"), Just("train"), Just("distill"), Just("compare"), Just("plot"), Just("devices"), Just("list"),
        Just("--op"), Just("--shape"), Just("--threads"), Just("--budget"), Just("--repeat"), Just("--json"),
        Just("--lr"), Just("--epochs"), Just("--split"), Just("--variant"), Just("--preset"), Just("--cold"),
        Just("matmul"), Just("relu"), Just("64..2048"), Just("1e300"), Just("-1"), Just("NaN"), Just("0"),
        Just("18446744073709551616"), Just("mlp"), Just("--"), Just("="), Just(""), Just("x"),
    ], 0..8)) {
        let _ = kernelab::cli::parse_args(std::iter::once("kernelab").chain(words.iter().copied()));
    }
}
