//! The report of `scripts/infer_peers.py` read by `kernelab compare` and `kernelab plot`: a
//! sample it wrote (`tests/data/infer_peers.json`: PyTorch eager and ONNX Runtime rows beside
//! kernelab's own from one interleaved run, small batches and few calls) stands in for the script,
//! which needs PyTorch and ONNX Runtime that CI does not have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/infer_peers.json");
const PEERS: [&str; 2] = ["pytorch-eager", "onnxruntime"];

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

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kernelab-infer-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
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

#[test]
fn the_sample_holds_kernelab_beside_both_peers_at_each_size() {
    let sample = read_json(Path::new(SAMPLE));
    let ok: Vec<&Value> = rows(&sample).iter().filter(|r| r["status"] == "ok").collect();
    let shapes: std::collections::BTreeSet<String> = ok.iter().map(|r| r["shape"].to_string()).collect();
    assert!(shapes.len() >= 2, "a sweep needs two sizes: {shapes:?}");
    for shape in &shapes {
        let at: Vec<&&Value> = ok.iter().filter(|r| &r["shape"].to_string() == shape).collect();
        for peer in PEERS {
            let row = at.iter().find(|r| r["variant"] == peer).unwrap_or_else(|| panic!("no {peer} row at {shape}"));
            assert_eq!(row["baseline"], true, "a peer is a baseline");
            assert!(row["p99_s"].as_f64().unwrap() >= row["median_s"].as_f64().unwrap());
        }
        let own = at.iter().find(|r| r["baseline"] == false).unwrap_or_else(|| panic!("no kernelab row at {shape}"));
        // Its of_vendor is the fastest peer's median over its own.
        let fastest = at.iter().filter(|r| r["baseline"] == true).map(|r| r["median_s"].as_f64().unwrap());
        let fastest = fastest.fold(f64::INFINITY, f64::min);
        let of_vendor = own["of_vendor"].as_f64().unwrap();
        assert!((of_vendor - fastest / own["median_s"].as_f64().unwrap()).abs() < 1e-9 * of_vendor);
    }
}

/// `compare` pairs every row of the sample, kernelab's and the peers', and finds the one peer made
/// 25% slower (and nothing else).
#[test]
fn compare_reads_the_peers_rows_and_finds_a_peer_made_slower() {
    let base = read_json(Path::new(SAMPLE));
    let mut new = base.clone();
    for row in new["records"].as_array_mut().unwrap().iter_mut().filter(|r| r["variant"] == "pytorch-eager") {
        slow_down(row, 1.25);
    }
    let (base_path, new_path, out) = (write_json(&base, "base.json"), write_json(&new, "new.json"), temp_path("c.json"));
    kernelab_ok(&["compare", arg(&base_path), arg(&new_path), "--noise-floor", "1%", "--json", arg(&out)]);
    let pairs = read_json(&out)["pairs"].as_array().unwrap().clone();
    let ok = rows(&base).iter().filter(|r| r["status"] == "ok").count();
    assert_eq!(pairs.len(), ok, "every ok row is paired");
    for pair in &pairs {
        let (variant, ratio) = (pair["key"]["variant"].as_str().unwrap(), pair["ratio"].as_f64().unwrap());
        if variant == "pytorch-eager" {
            assert!((ratio - 1.25).abs() < 1e-9, "{pair}");
            assert_eq!(pair["verdict"], "slower", "{pair}");
        } else {
            assert_eq!((ratio, pair["verdict"].as_str().unwrap()), (1.0, "same"), "{pair}");
        }
    }
    for peer in PEERS {
        assert!(pairs.iter().any(|p| p["key"]["variant"] == peer), "no {peer} pair");
    }
}

/// `plot --kind sweep` draws kernelab's line and each peer's, dashed as baselines, against the
/// batch size.
#[test]
fn a_sweep_plot_draws_kernelab_beside_its_peers() {
    let sample = read_json(Path::new(SAMPLE));
    let op = rows(&sample)[0]["op"].as_str().unwrap().to_string();
    let out = temp_path("sweep.svg");
    kernelab_ok(&["plot", SAMPLE, "--kind", "sweep", "--op", &op, "--out", arg(&out)]);
    let svg = std::fs::read_to_string(&out).unwrap();
    for peer in PEERS {
        assert!(svg.contains(&format!("cpu/{peer}, 1t (baseline)")), "no {peer} line in the plot");
    }
    let own = rows(&sample).iter().find(|r| r["baseline"] == false).unwrap();
    assert!(svg.contains(&format!("cpu/{}, 1t<", own["variant"].as_str().unwrap())), "no kernelab line");
}
