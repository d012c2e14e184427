//! The matmul ladder's files, `kernels/matmul/N_RUNG.ptx`, checked without a GPU: each is a module
//! of its own holding its rung's one entry point, headed by its story (what it changes over the
//! rung below, its ptxas lines, the command that benchmarks it, its measured number), and every
//! unrolled block's markers tell its true length, so a reader can skip it.

use kernelab_cuda::ptx::{self, PtxModule};
use kernelab_cuda::variants::{MATMUL_LADDER, MMA_RUNGS, PtxKernel};

/// The f32 ladder and the tensor-core rungs after it, numbered as their files are (1 to 9).
fn rungs() -> Vec<PtxKernel> {
    MATMUL_LADDER.iter().copied().chain(MMA_RUNGS.iter().map(|r| r.kernel)).collect()
}

/// The leading `//` lines of a module: its header.
fn header(module: PtxModule) -> Vec<&'static str> {
    module.source.lines().take_while(|l| l.starts_with("//")).collect()
}

#[test]
fn every_rung_is_a_module_of_its_own_holding_its_entry_point() {
    for (i, rung) in rungs().iter().enumerate() {
        let file = rung.module.file;
        assert_eq!(file, format!("matmul/{}_{}.ptx", i + 1, rung.variant), "rung {} lives in its numbered file", i + 1);
        assert_eq!(ptx::entries(rung.module), [rung.entry], "kernels/{file}");
        assert_eq!(ptx::module_of(rung.entry), Some(rung.module), "{} is found by name", rung.entry);
        for directive in [".version ", ".target ", ".address_size "] {
            let count = rung.module.source.lines().filter(|l| l.starts_with(directive)).count();
            assert_eq!(count, 1, "kernels/{file} declares {directive}once");
        }
        assert_eq!(rung.module.path(), format!("kernels/{file}"));
    }
    // A loaded file that happens to share a rung's name is known by its own path.
    let other = PtxModule { file: ptx::MATMUL_TILED.file, source: "// another text" };
    assert_eq!(other.path(), "matmul/3_tiled.ptx");
}

#[test]
fn every_rung_is_headed_by_its_story() {
    let rungs = rungs();
    for (i, rung) in rungs.iter().enumerate() {
        let (file, head) = (rung.module.file, header(rung.module).join("\n"));
        let want = [
            format!("// {}: rung {} of kernelab's matmul ladder", rung.entry, i + 1),
            format!("--op matmul --variant {} --shape 4096x4096x4096", rung.variant),
            "//   sm_80: ".into(),
            "//   sm_90: ".into(),
            "// Measured: ".into(),
        ];
        for line in want {
            assert!(head.contains(&line), "kernels/{file}: its header lacks `{line}`");
        }
        if let Some(below) = i.checked_sub(1).map(|b| rungs[b].variant) {
            let changes = format!("// What changes over rung {i} ({below}):");
            assert!(head.contains(&changes), "kernels/{file}: its header lacks `{changes}`");
        }
    }
}

#[test]
fn every_unrolled_block_is_marked_with_its_true_length() {
    let mut blocks = 0;
    for rung in rungs() {
        let file = rung.module.file;
        let lines: Vec<&str> = rung.module.source.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("// ---- unrolled, skip ") else { continue };
            let n: usize = rest.split(' ').next().and_then(|n| n.parse().ok()).expect("a line count");
            let end = lines.get(at + n + 1).map(|l| l.trim());
            assert_eq!(
                end,
                Some(format!("// ---- end unrolled ({n} lines) ----").as_str()),
                "kernels/{file}:{}",
                at + 1
            );
            let inside = &lines[at + 1..=at + n];
            assert!(inside.iter().all(|l| !l.contains("unrolled")), "kernels/{file}:{}: blocks nest", at + 1);
            blocks += 1;
        }
        let ends = lines.iter().filter(|l| l.trim_start().starts_with("// ---- end unrolled")).count();
        let starts = lines.iter().filter(|l| l.trim_start().starts_with("// ---- unrolled")).count();
        assert_eq!(starts, ends, "kernels/{file}: every end marker closes a block");
    }
    assert_eq!(blocks, 19, "tiled 1, regblock 4, vec4 2, warptile 3, each mma rung 3");
}
