//! Deliberate mutations of the real kernel sources, each caught: by a wrong result against the
//! f64 reference, or by a fault (the always-on bounds and alignment checks, or the sanitizer).
//! Each row asserts WHICH catches it, and the test prints the table. The control: the unmutated
//! kernels run clean with the sanitizer on.

mod common;

use common::cases::{RUNGS, Rung, matmul, matmul_wrong, softmax};
use common::{first_wrong, source_of};
use kernelab_ptx_emu::{Fault, FaultKind};

/// `text` with the first `from` after the start of the function `func` replaced by `to`.
fn mutate(text: &str, func: &str, from: &str, to: &str) -> String {
    let start = [format!(".entry {func}("), format!(" {func}(")]
        .iter()
        .find_map(|m| text.find(m.as_str()))
        .unwrap_or_else(|| panic!("no function {func}"));
    let at = start + text[start..].find(from).unwrap_or_else(|| panic!("`{from}` not in {func}"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// How a run ended: the fault's kind name, "wrong result", or "correct".
fn outcome<T>(r: Result<T, Fault>, wrong: impl FnOnce(&T) -> bool) -> String {
    match r {
        Err(f) => {
            let kind = match f.kind {
                FaultKind::OutOfBoundsGlobal { .. } => "OutOfBoundsGlobal",
                FaultKind::OutOfBoundsShared { .. } => "OutOfBoundsShared",
                FaultKind::Misaligned { .. } => "Misaligned",
                FaultKind::SharedRace { .. } => "SharedRace",
                FaultKind::DivergentBarrier { .. } => "DivergentBarrier",
                _ => "other fault",
            };
            println!("      {f}");
            kind.to_string()
        }
        Ok(v) if wrong(&v) => "wrong result".to_string(),
        Ok(_) => "correct".to_string(),
    }
}

fn rung(entry: &str) -> &'static Rung {
    RUNGS.iter().find(|r| r.entry == entry).unwrap_or_else(|| panic!("no rung {entry}"))
}

fn run_matmul(text: &str, entry: &str, shape: (usize, usize, usize)) -> String {
    let r = matmul(text, rung(entry), shape, false, false, 0.0, true);
    outcome(r, |(got, want, budget)| matmul_wrong(got, want, budget).is_some())
}

fn run_softmax(text: &str) -> String {
    outcome(softmax(text, "softmax", 4, 300, 4, true), |(got, want)| first_wrong(got, want, 2e-6).is_some())
}

struct Mutation {
    what: &'static str,
    func: &'static str,
    from: &'static str,
    to: &'static str,
    /// (m, n, k): m > k, so a swapped index stays inside A and shows as a wrong value; k % 16
    /// != 0 (a partial last k tile); k % 4 != 0 where a vector path must not be taken.
    shape: (usize, usize, usize),
    expect: &'static str,
}

const MUTATIONS: [Mutation; 6] = [
    Mutation {
        what: "off-by-one k bound (setp.lt -> setp.le)",
        func: "matmul_tiled",
        from: "setp.lt.and.u32 %in_a, %pa_col, %k, %in_a;",
        to: "setp.le.and.u32 %in_a, %pa_col, %k, %in_a;",
        shape: (67, 45, 40),
        expect: "OutOfBoundsGlobal",
    },
    Mutation {
        what: "removed bar.sync after the tile stores",
        func: "matmul_tiled",
        from: "bar.sync 0;",
        to: "",
        shape: (67, 45, 40),
        expect: "SharedRace",
    },
    Mutation {
        what: "removed bar.sync before the next tile",
        func: "matmul_tiled",
        from: "bar.sync 0;                             // the tiles are read",
        to: "// the tiles are read",
        shape: (67, 45, 40),
        expect: "SharedRace",
    },
    Mutation {
        what: "swapped row/col in A's load index",
        func: "matmul_tiled",
        from: "mul.lo.u32 %t, %i, %sam;\n    mad.lo.u32 %t, %pa_col, %sak, %t;",
        to: "mul.lo.u32 %t, %pa_col, %sam;\n    mad.lo.u32 %t, %i, %sak, %t;",
        shape: (67, 45, 40),
        expect: "wrong result",
    },
    Mutation {
        what: "early exit before the k loop's barriers",
        func: "matmul_tiled",
        from: "mov.f32 %acc, 0f00000000;",
        to: "@!%in_c bra TILED_DONE;\n    mov.f32 %acc, 0f00000000;",
        shape: (67, 45, 40),
        expect: "DivergentBarrier",
    },
    Mutation {
        what: "128-bit loads whatever k (and.b32 k, 3 -> k, 0)",
        func: "matmul_vec4",
        from: "and.b32 %t, %k, 3;",
        to: "and.b32 %t, %k, 0;",
        shape: (67, 45, 41),
        expect: "Misaligned",
    },
];

#[test]
fn every_mutation_is_caught_and_says_how() {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for m in &MUTATIONS {
        let text = mutate(&source_of(m.func), m.func, m.from, m.to);
        let got = run_matmul(&text, m.func, m.shape);
        if got != m.expect {
            failures.push(format!("{}: expected {}, got {got}", m.what, m.expect));
        }
        rows.push((m.what, m.func, m.expect, got));
    }
    // A wrong shuffle lane in the block reduction of the softmax family.
    let from = "shfl.sync.bfly.b32 %om, %m, 4, 31, -1;";
    let text = mutate(&source_of("softmax"), "block_stats", from, "shfl.sync.bfly.b32 %om, %m, 5, 31, -1;");
    let got = run_softmax(&text);
    if got != "wrong result" {
        failures.push(format!("shuffle lane: expected a wrong result, got {got}"));
    }
    rows.push(("wrong shuffle lane (bfly 4 -> 5)", "block_stats", "wrong result", got));
    println!("\n{:<50} {:<16} {:<18} caught as", "mutation", "in", "expected");
    for (what, func, expect, got) in &rows {
        println!("{what:<50} {func:<16} {expect:<18} {got}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn unmutated_kernels_run_clean_with_the_sanitizer() {
    for entry in ["matmul_tiled", "matmul_vec4", "matmul_warptile"] {
        assert_eq!(run_matmul(&source_of(entry), entry, (67, 45, 40)), "correct", "{entry}");
    }
    assert_eq!(run_softmax(&source_of("softmax")), "correct");
}
