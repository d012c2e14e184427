//! Why a second thread buys less in bf16 than in f32: one GEMM's wall time broken down, thread by
//! thread, into the serial work on `C` before and after, packing `A`, packing `B`, the
//! microkernel, the rest of the thread's pieces, and waiting (`gemm::stages`), for the bf16
//! variant's path (`bf16-dpbf16`: a bf16 `C` computed in f32 by `gemm_dpbf16` and rounded once)
//! and the f32 default's (`threaded`: `gemm::gemm` with `Strategy::choose`), on one and two
//! threads.
//!
//!     cargo run --release -p kernelab-cpu --example gemm_stages -- [--rounds 5] [--json OUT] 1024 2048
//!
//! `--only f32|bf16` and `--threads 1|2` narrow the configurations (for `perf record`).
//! Shapes are `N` (N³) or `MxNxK[:NT|TN|TT]`. Every configuration runs once per round, the rounds
//! one after another; each reports the breakdown of its fastest run (on a shared machine a run
//! is only ever slowed, so the fastest is the nearest to what the code does alone).

use std::time::Instant;

use kernelab_cpu::convert::Narrow;
use kernelab_cpu::gemm::bf16::{self, PairKernel};
use kernelab_cpu::gemm::stages::{self, Stage, ThreadStages};
use kernelab_cpu::gemm::{self, Strategy};
use kernelab_tensor::Gemm;

/// The product's two paths.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    F32,
    Bf16,
}

/// One configuration's fastest run: its wall time and every thread's stages.
struct Run {
    seconds: f64,
    threads: Vec<ThreadStages>,
}

/// The operands of one shape, in both storages, and both outputs.
struct Operands {
    g: Gemm,
    a16: Vec<u16>,
    b16: Vec<u16>,
    a32: Vec<f32>,
    b32: Vec<f32>,
    c16: Vec<u16>,
    c32: Vec<f32>,
}

impl Operands {
    fn new(g: Gemm) -> Operands {
        let value = |i: usize, s: usize| Narrow::Bf16.from_f32(((i * 7919 + s) % 1001) as f32 / 1001.0 - 0.3);
        let a16: Vec<u16> = (0..g.m * g.k).map(|i| value(i, 1)).collect();
        let b16: Vec<u16> = (0..g.k * g.n).map(|i| value(i, 2)).collect();
        let widen = |x: &[u16]| x.iter().map(|&h| Narrow::Bf16.to_f32(h)).collect();
        let (a32, b32) = (widen(&a16), widen(&b16));
        Operands { g, a16, b16, a32, b32, c16: vec![0; g.m * g.n], c32: vec![0.0; g.m * g.n] }
    }

    /// One product by `path`, as its variant runs it.
    fn product(&mut self, path: Path, kernel: PairKernel) {
        let g = self.g;
        match path {
            Path::F32 => gemm::gemm(&self.a32, &self.b32, &mut self.c32, &g, Strategy::choose(&g), true),
            Path::Bf16 => {
                let (a, b) = (&self.a16, &self.b16);
                bf16::narrow_output(Narrow::Bf16, &mut self.c16, g.beta, true, |c| {
                    bf16::gemm_dpbf16(a, b, c, &g, kernel, true)
                });
            }
        }
    }
}

/// One timed, recorded run of `path` on `ops`.
fn timed_run(ops: &mut Operands, path: Path, kernel: PairKernel) -> Run {
    ops.product(path, kernel);
    stages::take();
    stages::record(true);
    let start = Instant::now();
    ops.product(path, kernel);
    let seconds = start.elapsed().as_secs_f64();
    stages::record(false);
    Run { seconds, threads: stages::take() }
}

/// `N` as N³, or `MxNxK` with an optional `:NT`, `:TN`, `:TT` (which operands are transposed).
fn parse_shape(text: &str) -> Option<Gemm> {
    let (dims, trans) = text.split_once(':').unwrap_or((text, "NN"));
    let d: Vec<usize> = dims.split('x').map(str::parse).collect::<Result<_, _>>().ok()?;
    let g = match d[..] {
        [n] => Gemm::new(n, n, n),
        [m, n, k] => Gemm::new(m, n, k),
        _ => return None,
    };
    let t = trans.to_ascii_uppercase();
    (t.len() == 2).then(|| g.trans(t.starts_with('T'), t.ends_with('T')))
}

/// `g` as the command line writes it.
fn shape_name(g: &Gemm) -> String {
    let t = |x: bool| if x { 'T' } else { 'N' };
    format!("{}x{}x{}:{}{}", g.m, g.n, g.k, t(g.trans_a), t(g.trans_b))
}

/// The breakdown of `run` as text: one line per thread, milliseconds and % of the wall time.
fn report(label: &str, g: &Gemm, run: &Run) -> String {
    let wall = run.seconds * 1e3;
    let ms = |ns: u64| ns as f64 / 1e6;
    let parallel = run.threads.iter().map(|t| t.get(Stage::Parallel)).max().unwrap_or(0);
    let mut out = format!("{label}: {wall:.2} ms, {:.1} GFLOP/s\n", g.flops() / run.seconds / 1e9);
    if run.threads.is_empty() {
        return out + "  (the direct path, which reads the operands in place: nothing to break down)\n";
    }
    out += "  thread            prologue   pack A   pack B   kernel    other     wait epilogue (ms; % of wall)\n";
    for t in &run.threads {
        let piece = t.get(Stage::Piece);
        let known = t.get(Stage::PackA) + t.get(Stage::PackB) + t.get(Stage::Kernel);
        let cells = [
            t.get(Stage::Prologue),
            t.get(Stage::PackA),
            t.get(Stage::PackB),
            t.get(Stage::Kernel),
            piece.saturating_sub(known),
            parallel.saturating_sub(piece),
            t.get(Stage::Epilogue),
        ];
        out += &format!("  {:<16}", t.name);
        for ns in cells {
            out += &format!(" {:>8.2}", ms(ns));
        }
        out += "\n                  ";
        for ns in cells {
            out += &format!(" {:>7.1}%", 100.0 * ms(ns) / wall);
        }
        out += "\n";
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut json, mut shapes) = (5, None, Vec::new());
    let (mut only, mut thread_counts) = (None, vec![1, 2]);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => only = args.next(),
            "--threads" => thread_counts = args.next().and_then(|v| v.parse().ok()).map_or(thread_counts, |t| vec![t]),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--json" => json = args.next(),
            text => match parse_shape(text) {
                Some(g) => shapes.push(g),
                None => eprintln!("ignoring {text:?}: a shape is N or MxNxK[:NT|TN|TT]"),
            },
        }
    }
    if shapes.is_empty() {
        shapes = vec![Gemm::new(1024, 1024, 1024), Gemm::new(2048, 2048, 2048)];
    }
    let kernel = match PairKernel::detect() {
        Ok(kernel) => kernel,
        Err(why) => {
            eprintln!("no bf16 GEMM to profile here: {why}");
            return;
        }
    };
    let pool = |t: usize| rayon::ThreadPoolBuilder::new().num_threads(t).thread_name(|_| "caller".into()).build();
    let pools: Vec<_> = [1, 2].map(|t| pool(t).expect("a thread pool")).into();
    let mut operands: Vec<Operands> = shapes.iter().map(|&g| Operands::new(g)).collect();
    let paths: Vec<Path> = match only.as_deref() {
        Some("f32") => vec![Path::F32],
        Some("bf16") => vec![Path::Bf16],
        _ => vec![Path::F32, Path::Bf16],
    };
    let configs: Vec<(usize, usize, Path)> = (0..shapes.len())
        .flat_map(|s| thread_counts.iter().filter(|&&t| t == 1 || t == 2).map(move |t| (s, t - 1)))
        .flat_map(|(s, p)| paths.iter().map(move |&path| (s, p, path)))
        .collect();
    let mut best: Vec<Option<Run>> = configs.iter().map(|_| None).collect();
    for r in 0..rounds {
        for (slot, &(s, p, path)) in best.iter_mut().zip(&configs) {
            let run = pools[p].install(|| timed_run(&mut operands[s], path, kernel));
            if slot.as_ref().is_none_or(|b| run.seconds < b.seconds) {
                *slot = Some(run);
            }
        }
        eprintln!("round {} of {rounds} done", r + 1);
    }
    let mut text = String::new();
    for (run, &(s, p, path)) in best.iter().zip(&configs) {
        let Some(run) = run else { continue };
        let dtype = if path == Path::Bf16 { "bf16 (bf16-dpbf16)" } else { "f32 (threaded)" };
        text += &report(&format!("{} {dtype}, {} thread(s)", shape_name(&shapes[s]), p + 1), &shapes[s], run);
    }
    text += &scaling(&shapes, &configs, &best);
    print!("{text}");
    if let Some(path) = json
        && let Err(e) = std::fs::write(&path, to_json(&shapes, &configs, &best, rounds))
    {
        eprintln!("cannot write {path}: {e}");
    }
}

/// Per shape and path: the two-thread speed-up of the fastest runs.
fn scaling(shapes: &[Gemm], configs: &[(usize, usize, Path)], best: &[Option<Run>]) -> String {
    let seconds = |s: usize, p: usize, path: Path| {
        let i = configs.iter().position(|&c| c == (s, p, path))?;
        best[i].as_ref().map(|r| r.seconds)
    };
    let mut out = String::from("two threads ÷ one (speed-up of the fastest runs):\n");
    for (s, g) in shapes.iter().enumerate() {
        for (path, name) in [(Path::F32, "f32"), (Path::Bf16, "bf16")] {
            if let (Some(one), Some(two)) = (seconds(s, 0, path), seconds(s, 1, path)) {
                out += &format!("  {} {name}: {:.2}x\n", shape_name(g), one / two);
            }
        }
    }
    out
}

/// Every fastest run's breakdown (nanoseconds per stage per thread) as JSON.
fn to_json(shapes: &[Gemm], configs: &[(usize, usize, Path)], best: &[Option<Run>], rounds: usize) -> String {
    let names = ["prologue", "pack_a", "pack_b", "kernel", "piece", "parallel", "epilogue"];
    let runs: Vec<serde_json::Value> = best
        .iter()
        .zip(configs)
        .filter_map(|(run, &(s, p, path))| {
            let run = run.as_ref()?;
            let threads: Vec<serde_json::Value> = run
                .threads
                .iter()
                .map(|t| {
                    let stages: serde_json::Map<String, serde_json::Value> =
                        names.iter().zip(t.nanos).map(|(n, v)| (format!("{n}_ns"), v.into())).collect();
                    serde_json::json!({"thread": t.name, "stages": stages})
                })
                .collect();
            let dtype = if path == Path::Bf16 { "bf16" } else { "f32" };
            Some(serde_json::json!({"shape": shape_name(&shapes[s]), "threads": p + 1, "dtype": dtype,
                "seconds": run.seconds, "per_thread": threads}))
        })
        .collect();
    let doc = serde_json::json!({"rounds": rounds, "cpu": kernelab_cpu::cpu_model(), "runs": runs,
        "note": "fastest run of each configuration over interleaved rounds; wait = parallel(caller) - piece(thread)"});
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
