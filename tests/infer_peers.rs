//! The reports of `scripts/infer_peers.py` read by `kernelab compare` and `kernelab plot`. A sample
//! the script wrote (`tests/data/infer_peers/`: PyTorch eager's and ONNX Runtime's reports, and
//! the combined one with kernelab's rows from the same interleaved run; small batches, few calls)
//! stands in for the script, which needs PyTorch and ONNX Runtime; the kernelab report it is read
//! against is made here, by this build's `kernelab infer`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/infer_peers");
const PEERS: [&str; 2] = ["pytorch-eager", "onnxruntime"];
const MODEL: &str = "784-128-10";

fn kernelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernelab")).args(args).output().expect("the kernelab binary runs")
}

/// Runs `kernelab` and insists on success; returns its stdout and stderr together.
fn kernelab_ok(args: &[&str]) -> String {
    let out = kernelab(args);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kernelab {args:?} failed:\n{text}");
    text
}

/// A path in a folder of this test's own (tests run side by side and write files of one name).
fn temp_path(name: &str) -> PathBuf {
    let test = std::thread::current().name().unwrap_or("main").replace("::", "-");
    let dir = std::env::temp_dir().join(format!("kernelab-infer-peers-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn sample(name: &str) -> Value {
    read_json(&Path::new(SAMPLE).join(format!("{name}.json")))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(value: &Value, name: &str) -> PathBuf {
    let path = temp_path(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn rows(report: &Value) -> &Vec<Value> {
    report["records"].as_array().unwrap()
}

fn rows_mut(report: &mut Value) -> &mut Vec<Value> {
    report["records"].as_array_mut().unwrap()
}

/// Every time of a row `factor` times longer (its rates `factor` times lower), as if that engine
/// had run slower in the same rounds.
fn slow_down(row: &mut Value, factor: f64) {
    for key in ["median_s", "p10_s", "p90_s", "p99_s", "host_median_s"] {
        if let Some(v) = row[key].as_f64() {
            row[key] = (v * factor).into();
        }
    }
    let samples: Vec<Value> =
        row["samples_s"].as_array().unwrap().iter().map(|s| (s.as_f64().unwrap() * factor).into()).collect();
    row["samples_s"] = samples.into();
    for key in ["gflops", "gbps"] {
        if let Some(v) = row[key].as_f64() {
            row[key] = (v / factor).into();
        }
    }
}

/// The pairs `kernelab compare BASE NEW --json` found.
fn compare(base: &Path, new: &Path) -> Vec<Value> {
    let out = temp_path(&format!("compare-{}.json", base.file_stem().unwrap().to_str().unwrap()));
    kernelab_ok(&["compare", arg(base), arg(new), "--noise-floor", "1%", "--json", arg(&out)]);
    read_json(&out)["pairs"].as_array().unwrap().clone()
}

/// A peer's report pairs with a kernelab infer report of this build row by row: same op, model
/// (the variant), batch (the shape) and threads; here the peer's rows are moved to this machine's
/// CPU, as they would read had the script run here.
#[test]
fn a_peer_report_pairs_with_kernelab_infer_row_by_row() {
    let fresh = temp_path("kernelab.json");
    kernelab_ok(&[
        "infer",
        "--model",
        MODEL,
        "--backend",
        "cpu",
        "--threads",
        "1",
        "--batch",
        "1,8",
        "--warmup",
        "1",
        "--calls",
        "20",
        "--budget",
        "0.001",
        "--json",
        arg(&fresh),
    ]);
    let device = rows(&read_json(&fresh))[0]["device"].clone();
    for peer in PEERS {
        let mut report = sample(peer);
        rows_mut(&mut report)
            .retain(|r| r["variant"] == MODEL && r["threads"] == 1 && r["shape"][0].as_u64() <= Some(8));
        assert_eq!(rows(&report).len(), 2, "the sample has {peer} rows of {MODEL} at batch 1 and 8 on one thread");
        for row in rows_mut(&mut report) {
            row["device"] = device.clone();
        }
        let pairs = compare(&write_json(&report, &format!("{peer}.json")), &fresh);
        let mut batches: Vec<u64> = pairs.iter().map(|p| p["key"]["shape"][0].as_u64().unwrap()).collect();
        batches.sort();
        assert_eq!(batches, [1, 8], "{peer}: {pairs:?}");
        for p in &pairs {
            assert_eq!((p["key"]["op"].as_str(), p["key"]["variant"].as_str()), (Some("infer"), Some(MODEL)));
            assert!(p["ratio"].as_f64().is_some_and(|r| r > 0.0 && r.is_finite()), "{p}");
        }
    }
}

/// `compare` reads every row of a peer's report and of the combined one, and finds the one peer
/// made 25% slower (and nothing else).
#[test]
fn compare_finds_a_peer_made_slower() {
    for name in ["pytorch-eager", "combined"] {
        let base = sample(name);
        let mut new = base.clone();
        // The PyTorch report's rows are all PyTorch's; the combined one names the engine.
        let slowed = |r: &Value| name == "pytorch-eager" || r["variant"].as_str().unwrap().ends_with(" pytorch-eager");
        for row in rows_mut(&mut new).iter_mut().filter(|r| slowed(r)) {
            slow_down(row, 1.25);
        }
        let pairs =
            compare(&write_json(&base, &format!("{name}-base.json")), &write_json(&new, &format!("{name}.json")));
        assert_eq!(pairs.len(), rows(&base).len(), "{name}: every row is paired");
        for pair in &pairs {
            let (variant, ratio) = (pair["key"]["variant"].as_str().unwrap(), pair["ratio"].as_f64().unwrap());
            if name == "pytorch-eager" || variant.ends_with(" pytorch-eager") {
                assert!((ratio - 1.25).abs() < 1e-9, "{pair}");
                assert_eq!(pair["verdict"], "slower", "{pair}");
            } else {
                // Unchanged, so neither faster nor slower (its interval may be wide: the run's
                // drift, taken out through every row's rounds, moved with the slowed rows).
                assert!((ratio - 1.0).abs() < 1e-9, "{pair}");
                assert!(["same", "undecided"].contains(&pair["verdict"].as_str().unwrap()), "{pair}");
            }
        }
    }
}

/// The combined report holds kernelab and both peers at every size, each kernelab row held
/// against the fastest peer (`of_vendor`).
#[test]
fn the_combined_report_holds_kernelab_beside_both_peers() {
    let combined = sample("combined");
    // A row's work: its model (the variant's first word; the second is the engine), threads, batch.
    let work = |r: &Value| {
        let model = r["variant"].as_str().unwrap().split(' ').next().unwrap().to_string();
        format!("{model} {} {}", r["threads"], r["shape"])
    };
    let works: std::collections::BTreeSet<String> = rows(&combined).iter().map(work).collect();
    assert!(works.len() >= 2, "a sweep needs two sizes: {works:?}");
    for w in &works {
        let at: Vec<&Value> = rows(&combined).iter().filter(|r| &work(r) == w).collect();
        let mut engines: Vec<&str> =
            at.iter().map(|r| r["variant"].as_str().unwrap().split(' ').nth(1).unwrap()).collect();
        engines.sort();
        assert_eq!(engines, ["kernelab", "onnxruntime", "pytorch-eager"], "{w}");
        let own = at.iter().find(|r| r["baseline"] == false).unwrap();
        let peers = at.iter().filter(|r| r["baseline"] == true);
        let fastest = peers.clone().map(|r| r["median_s"].as_f64().unwrap()).fold(f64::INFINITY, f64::min);
        let of_vendor = own["of_vendor"].as_f64().unwrap();
        assert!((of_vendor - fastest / own["median_s"].as_f64().unwrap()).abs() < 1e-9 * of_vendor, "{w}");
        for peer in peers {
            assert!(peer["p99_s"].as_f64().unwrap() >= peer["median_s"].as_f64().unwrap(), "{w}");
        }
    }
}

/// `plot --kind sweep` draws kernelab's line and each peer's, dashed as baselines, against the
/// batch size.
#[test]
fn a_sweep_plot_draws_kernelab_beside_its_peers() {
    let combined = Path::new(SAMPLE).join("combined.json");
    let out = temp_path("sweep.svg");
    kernelab_ok(&["plot", arg(&combined), "--kind", "sweep", "--op", "infer", "--out", arg(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    // The legend's entries, each a text of its own: the series, and whether it is a baseline.
    let has = |entry: &str| svg.lines().any(|l| l.trim() == entry);
    for peer in PEERS {
        assert!(has(&format!("cpu/{MODEL} {peer}, 1t (baseline)")), "no {peer} line in the plot");
    }
    assert!(has(&format!("cpu/{MODEL} kernelab, 1t")), "no kernelab line in the plot");
}
