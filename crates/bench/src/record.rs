//! Result records: one per benchmark row, with the machine that produced them, as JSON.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use kernelab_tensor::{Device, Error, Result};

fn nan() -> f64 {
    f64::NAN
}

/// Reads a number that JSON may hold as `null` (how serde_json writes NaN) back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One row of the benchmark table. Times and rates of a row without numbers are NaN (`null`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub op: String,
    pub backend: String,
    /// The device's own name (processor, adapter).
    pub device: String,
    pub variant: String,
    /// `[M, N, K]` for matmul, `[R, C]` for row-wise ops, `[N]` for elementwise ones.
    pub shape: Vec<usize>,
    /// Matmul only: `NN`, `NT`, `TN`, `TT` (is `A`, is `B` transposed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transpose: Option<String>,
    /// Which clock the times and rates below come from: `device` (GPU timestamp queries around
    /// each kernel) or `host` (wall time of launch, submit and wait).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub clock: Option<String>,
    /// The host wall-clock median, always measured (equal in kind to `median_s` when the clock is `host`).
    #[serde(deserialize_with = "nan_if_null", default = "nan")]
    pub host_median_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub median_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p10_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p90_s: f64,
    pub samples: usize,
    /// `flops / median_s / 1e9`; matmul counts `2·M·N·K`.
    #[serde(deserialize_with = "nan_if_null")]
    pub gflops: f64,
    /// The least traffic (each input read once, each output written once) over the median, in 1e9 B/s.
    #[serde(deserialize_with = "nan_if_null")]
    pub gbps: f64,
    /// The fraction of the device's measured roofline reached (`max(gflops/peak, gbps/bandwidth)`).
    #[serde(deserialize_with = "nan_if_null")]
    pub roofline: f64,
    /// The largest error relative to the element's magnitude, against the f64 reference.
    #[serde(deserialize_with = "nan_if_null")]
    pub max_rel_err: f64,
    /// The largest error as a fraction of its budget; `ok` is `budget_ratio ≤ 1`.
    #[serde(deserialize_with = "nan_if_null")]
    pub budget_ratio: f64,
    pub ok: bool,
    /// This row's speed as a fraction of the vendor library's on the same backend, shape and
    /// layout in the same run (`vendor median / median`), when the run timed the vendor variant
    /// (`openblas` on the CPU, `cublas` on CUDA; see [`VENDOR_VARIANTS`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub of_vendor: Option<f64>,
    /// Why the row has no numbers (a skipped variant, a launch error), if so.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// The machine and build that produced a set of records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    pub os: String,
    pub arch: String,
    pub git_commit: String,
    pub kernelab_version: String,
    /// Seconds since the Unix epoch when the run started.
    pub unix_time: u64,
    /// Every device the run used: `cpu:0 — AMD EPYC (2 threads)`.
    pub devices: Vec<String>,
    /// Each device's measured roofline, as `cpu:0: 150 GFLOP/s FMA peak, 20 GB/s copy`.
    pub rooflines: Vec<String>,
}

impl Machine {
    pub fn describe(devices: &[Device]) -> Self {
        Self {
            cpu: kernelab_cpu::cpu_model(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            git_commit: env!("KERNELAB_GIT_COMMIT").into(),
            kernelab_version: env!("CARGO_PKG_VERSION").into(),
            unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            devices: devices.iter().map(|d| format!("{} — {}", d.label(), d.info().name)).collect(),
            rooflines: devices
                .iter()
                .filter_map(|d| d.roofline().map(|r| format!("{}: {}", d.label(), describe_roofline(&r))))
                .collect(),
        }
    }
}

/// `152 GFLOP/s FMA peak (77 on one thread), 21.3 GB/s copy`.
pub fn describe_roofline(r: &kernelab_tensor::Roofline) -> String {
    format!(
        "{:.0} GFLOP/s FMA peak ({:.0} on one thread), {:.1} GB/s copy ({})",
        r.peak_gflops, r.peak_gflops_one_thread, r.bandwidth_gbps, r.how
    )
}

/// What `kernelab bench --json` writes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub machine: Machine,
    pub records: Vec<Record>,
}

impl Report {
    /// Writes the report as pretty JSON, atomically: to a temporary file beside `path`, then renamed.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io { path: path.display().to_string(), source };
        let json = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&json).and_then(|_| file.write_all(b"\n")).and_then(|_| file.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The vendor-library variants other rows are compared with.
pub const VENDOR_VARIANTS: [&str; 2] = ["openblas", "cublas"];

/// Fills [`Record::of_vendor`] for every timed row whose backend, op, shape and layout also have
/// a timed vendor row in `records`.
pub fn compare_with_vendor(records: &mut [Record]) {
    let same_work = |a: &Record, b: &Record| {
        a.backend == b.backend
            && a.device == b.device
            && a.op == b.op
            && a.shape == b.shape
            && a.transpose == b.transpose
    };
    let vendor: Vec<Record> = records
        .iter()
        .filter(|r| VENDOR_VARIANTS.contains(&r.variant.as_str()) && r.samples > 0 && r.ok)
        .cloned()
        .collect();
    for r in records.iter_mut().filter(|r| r.samples > 0) {
        r.of_vendor = vendor.iter().find(|v| same_work(v, r)).map(|v| v.median_s / r.median_s);
    }
}

#[cfg(test)]
mod vendor_tests {
    use super::*;

    fn row(variant: &str, median_s: f64, shape: &[usize]) -> Record {
        Record {
            op: "matmul".into(),
            backend: "cuda".into(),
            device: "gpu".into(),
            variant: variant.into(),
            shape: shape.to_vec(),
            transpose: Some("NN".into()),
            clock: Some("device".into()),
            host_median_s: median_s,
            median_s,
            p10_s: median_s,
            p90_s: median_s,
            samples: 10,
            gflops: 1.0,
            gbps: 1.0,
            roofline: 0.5,
            max_rel_err: 0.0,
            budget_ratio: 0.0,
            ok: true,
            of_vendor: None,
            note: None,
        }
    }

    #[test]
    fn rows_are_compared_with_the_vendor_row_of_the_same_work_only() {
        let mut rows =
            vec![row("warptile", 2.0, &[8, 8, 8]), row("cublas", 1.0, &[8, 8, 8]), row("naive", 4.0, &[9, 9, 9])];
        compare_with_vendor(&mut rows);
        assert_eq!(rows[0].of_vendor, Some(0.5));
        assert_eq!(rows[1].of_vendor, Some(1.0));
        assert_eq!(rows[2].of_vendor, None, "no vendor row at that shape");
    }
}
