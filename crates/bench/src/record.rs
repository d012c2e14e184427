//! Result records: one per benchmark row, and the [`Report`] that carries them with everything a
//! later analysis needs (schema version, command line, settings, machine, ceilings, baselines,
//! raw samples), as JSON. The schema is documented in the README; [`SCHEMA_VERSION`] changes
//! whenever a key changes meaning or disappears.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use kernelab_tensor::{Baseline, Ceiling, Device, Precision, Result, Roofline};

/// The version of the report's schema.
pub const SCHEMA_VERSION: u32 = 1;

fn nan() -> f64 {
    f64::NAN
}

/// Reads a number that JSON may hold as `null` (how serde_json writes NaN) back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Whether a precision is plain f32, which reports leave out (rows and keys of f32 runs read and
/// write exactly as before precision became an axis).
fn is_f32(p: &Precision) -> bool {
    *p == Precision::F32
}

/// What became of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Timed, and every element within its error budget.
    Ok,
    /// Timed, but an element missed its error budget.
    Fail,
    /// Not run: the variant cannot run here (the note says why).
    Skipped,
    /// The launch failed (the note has the error).
    Error,
}

/// One row of the benchmark table. Every key is present in every row; times and rates of a row
/// without numbers are `null`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub op: String,
    pub backend: String,
    /// The device's own name (processor, adapter).
    pub device: String,
    pub variant: String,
    /// A vendor or peer library (`openblas`, `gemm-crate`, `cublas`), not a kernelab kernel.
    pub baseline: bool,
    /// `[M, N, K]` for matmul, `[R, C]` for row-wise ops, `[N]` for elementwise ones.
    pub shape: Vec<usize>,
    /// Matmul only: `NN`, `NT`, `TN`, `TT` (is `A`, is `B` transposed); `null` otherwise.
    pub transpose: Option<String>,
    /// Storage and accumulation of the variant, `"f32"` or e.g. `"bf16→f32"`; absent (and read
    /// as `"f32"`) in f32 rows and in reports written before precision was an axis.
    #[serde(default, skip_serializing_if = "is_f32")]
    pub precision: Precision,
    /// CPU threads the variant ran on; `null` on a GPU.
    pub threads: Option<usize>,
    /// `warm` (inputs left in cache by the previous launch) or `cold` (caches evicted first).
    pub mode: String,
    pub status: Status,
    /// Which clock the samples come from: `device` (GPU timestamp queries around each kernel) or
    /// `host` (wall time of launch, submit and wait); `null` when nothing was timed.
    pub clock: Option<String>,
    /// Launches timed together in one sample (short kernels are batched); samples are per launch.
    pub launches_per_sample: usize,
    /// How many samples.
    pub n: usize,
    /// Every sample, seconds per launch, in the order taken.
    pub samples_s: Vec<f64>,
    /// The round each sample was taken in (parallel to `samples_s`, increasing): samples of two
    /// rows with the same round were taken within one pass over the run's rows. Empty in reports
    /// written before rounds, which still read.
    #[serde(default)]
    pub rounds: Vec<u32>,
    #[serde(deserialize_with = "nan_if_null")]
    pub median_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p10_s: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub p90_s: f64,
    /// The 99th percentile of the samples, in rows whose every sample is one call (`kernelab
    /// infer`: the latency that one call in a hundred exceeds); absent from `bench` rows, whose
    /// samples may each be a batch of launches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_s: Option<f64>,
    /// The host wall-clock median per launch, always measured (equal in kind to `median_s` when
    /// the clock is `host`).
    #[serde(deserialize_with = "nan_if_null", default = "nan")]
    pub host_median_s: f64,
    /// `p90_s / p10_s` above 1.2: the median is less certain than its digits suggest.
    pub noisy: bool,
    /// Floating-point operations of one launch (`2·M·N·K` for matmul; an `exp` counts one);
    /// `null` in a row that was not run.
    #[serde(deserialize_with = "nan_if_null")]
    pub flops: f64,
    /// The least traffic of one launch (each input read once, each output written once), bytes;
    /// `null` in a row that was not run.
    #[serde(deserialize_with = "nan_if_null")]
    pub bytes: f64,
    /// `flops / median_s / 1e9`.
    #[serde(deserialize_with = "nan_if_null")]
    pub gflops: f64,
    /// `bytes / median_s / 1e9`.
    #[serde(deserialize_with = "nan_if_null")]
    pub gbps: f64,
    /// The ceiling the row is held against: the memory level its working set lives in, that
    /// level's bandwidth and the FMA peak, both for the row's thread count.
    pub ceiling: Option<Ceiling>,
    /// The fraction of the ceiling reached: `max(gflops / ceiling.gflops, gbps / ceiling.gbps)`.
    #[serde(deserialize_with = "nan_if_null")]
    pub roofline: f64,
    /// Above 100% of its ceiling: the ceiling or the count is wrong until shown otherwise.
    pub suspect: bool,
    /// This row's speed as a fraction of the fastest baseline of the same work, threads and mode
    /// in the same run (`baseline median / median`).
    pub of_vendor: Option<f64>,
    /// The baseline `of_vendor` is against.
    pub vendor: Option<String>,
    /// The largest error relative to the element's magnitude, against the f64 reference.
    #[serde(deserialize_with = "nan_if_null")]
    pub max_rel_err: f64,
    /// The largest error as a fraction of its budget; `ok` is `budget_ratio ≤ 1`.
    #[serde(deserialize_with = "nan_if_null")]
    pub budget_ratio: f64,
    pub ok: bool,
    /// Why the row has no numbers (a skipped variant, a launch error), or what to know about them.
    pub note: Option<String>,
    /// A kernel loaded from a file (`--kernel`): the file and the SHA-256 of the bytes that ran;
    /// absent for built-in variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<kernelab_tensor::SourceRef>,
}

impl Record {
    /// A row with `status` and `note` and nothing else: no identity (empty strings, no shape),
    /// no numbers. Callers fill in who the row is with struct-update syntax.
    pub fn blank(status: Status, note: Option<String>) -> Self {
        Record {
            op: String::new(),
            backend: String::new(),
            device: String::new(),
            variant: String::new(),
            baseline: false,
            shape: Vec::new(),
            transpose: None,
            precision: Precision::F32,
            threads: None,
            mode: "warm".into(),
            status,
            clock: None,
            launches_per_sample: 0,
            n: 0,
            samples_s: Vec::new(),
            rounds: Vec::new(),
            median_s: f64::NAN,
            p10_s: f64::NAN,
            p90_s: f64::NAN,
            p99_s: None,
            host_median_s: f64::NAN,
            noisy: false,
            flops: f64::NAN,
            bytes: f64::NAN,
            gflops: f64::NAN,
            gbps: f64::NAN,
            ceiling: None,
            roofline: f64::NAN,
            suspect: false,
            of_vendor: None,
            vendor: None,
            max_rel_err: f64::NAN,
            budget_ratio: f64::NAN,
            ok: false,
            note,
            source: None,
        }
    }

    /// Timed rows have samples.
    pub fn timed(&self) -> bool {
        self.n > 0
    }

    /// What identifies a row within a report and pairs it with its partner in another: op,
    /// backend, device, variant, shape, layout, precision, threads and mode.
    pub fn key(&self) -> RowKey {
        RowKey {
            op: self.op.clone(),
            backend: self.backend.clone(),
            device: self.device.clone(),
            variant: self.variant.clone(),
            shape: self.shape.clone(),
            transpose: self.transpose.clone(),
            precision: self.precision,
            threads: self.threads,
            mode: self.mode.clone(),
        }
    }

    /// The same work: backend, device, op, shape, layout and precision.
    pub fn same_work(&self, other: &Record) -> bool {
        self.backend == other.backend
            && self.device == other.device
            && self.op == other.op
            && self.shape == other.shape
            && self.transpose == other.transpose
            && self.precision == other.precision
    }
}

/// A row's identity: see [`Record::key`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RowKey {
    pub op: String,
    pub backend: String,
    pub device: String,
    pub variant: String,
    pub shape: Vec<usize>,
    pub transpose: Option<String>,
    /// `f32` (left out of the JSON, the default when absent) or e.g. `bf16→f32`.
    #[serde(default, skip_serializing_if = "is_f32")]
    pub precision: Precision,
    pub threads: Option<usize>,
    pub mode: String,
}

impl std::fmt::Display for RowKey {
    /// `matmul cpu/naive 64x64x64:NT 1t warm (AMD EPYC 9B45)`; a precision other than f32 follows
    /// the shape: `matmul cpu/bf16-blocked 64x64x64 bf16→f32 1t warm (…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape = crate::table::dims_text(&self.shape);
        let layout = self.transpose.as_deref().filter(|t| *t != "NN").map_or(String::new(), |t| format!(":{t}"));
        let threads = self.threads.map_or(String::new(), |t| format!(" {t}t"));
        let precision = if is_f32(&self.precision) { String::new() } else { format!(" {}", self.precision) };
        write!(
            f,
            "{} {}/{} {shape}{layout}{precision}{threads} {} ({})",
            self.op, self.backend, self.variant, self.mode, self.device
        )
    }
}

/// How the run was set up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub warmup: usize,
    pub repeat: usize,
    pub min_runs: usize,
    pub budget_s: f64,
    pub cold: bool,
    /// The CPU thread pool's size.
    pub threads: usize,
    /// Kernels shorter than this were timed in batches lasting about `batch_target_s`.
    pub batch_below_s: f64,
    pub batch_target_s: f64,
    /// The p90/p10 above which a row is noisy.
    pub noisy_spread: f64,
    /// `all`, `default` or the names asked for.
    pub variants: String,
    /// The seed of each round's shuffled order (see `kernelab_bench::rounds`); `null` in reports
    /// written before rounds.
    #[serde(default)]
    pub round_seed: Option<u64>,
    /// `infer`: each timed call followed untimed calls of its own row lasting at least this many
    /// seconds (at least one call); 0 in `bench`'s reports and in reports written before it.
    #[serde(default)]
    pub settle_s: f64,
}

/// The machine and build that produced a report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    pub caches: Vec<kernelab_cpu::topology::CacheLevel>,
    pub os: String,
    /// The kernel release.
    pub kernel: String,
    pub arch: String,
    pub rustc: String,
    pub kernelab_version: String,
    pub git_commit: String,
    /// The build had uncommitted changes to tracked files.
    pub git_dirty: bool,
    /// Cargo features compiled in (`wgpu`, `cuda`, `openblas`, `rust-baselines`).
    pub features: Vec<String>,
    /// Seconds since the Unix epoch when the run started.
    pub unix_time: u64,
}

/// The cargo features this build has.
pub fn features() -> Vec<String> {
    let mut f: Vec<String> = kernelab_cpu::FEATURES.iter().map(|s| s.to_string()).collect();
    if cfg!(feature = "wgpu") {
        f.push("wgpu".into());
    }
    if cfg!(feature = "cuda") {
        f.push("cuda".into());
    }
    if cfg!(feature = "slowdown-knob") {
        f.push("slowdown-knob".into());
    }
    f.sort();
    f
}

impl Machine {
    pub fn describe() -> Self {
        let commit = env!("KERNELAB_GIT_COMMIT");
        Self {
            cpu: kernelab_cpu::cpu_model(),
            logical_cores: kernelab_cpu::topology::logical_cores(),
            caches: kernelab_cpu::topology::caches(),
            os: std::env::consts::OS.into(),
            kernel: kernelab_cpu::roofline::cache::kernel_release(),
            arch: std::env::consts::ARCH.into(),
            rustc: env!("KERNELAB_RUSTC").into(),
            kernelab_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: commit.trim_end_matches("-dirty").into(),
            git_dirty: commit.ends_with("-dirty"),
            features: features(),
            unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// One device the run used, with its roofline as numbers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceRecord {
    /// `cpu:0`, `wgpu:1`, …
    pub label: String,
    pub backend: String,
    pub name: String,
    pub driver: String,
    pub details: BTreeMap<String, String>,
    pub roofline: Option<Roofline>,
    /// What the device is when it is software standing in for a GPU (the emulated CUDA device,
    /// lavapipe): its rows are checked, but their timings mean nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
}

impl DeviceRecord {
    pub fn describe(device: &Device) -> Self {
        let info = device.info();
        Self {
            label: device.label().into(),
            backend: device.kind().name().into(),
            name: info.name,
            driver: info.driver,
            details: info.details.into_iter().collect(),
            roofline: device.roofline(),
            software: info.software,
        }
    }
}

/// What `kernelab bench --json` writes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    /// The command line, program name first.
    pub command: Vec<String>,
    pub settings: Settings,
    pub machine: Machine,
    pub devices: Vec<DeviceRecord>,
    /// Every baseline library the devices time, as it runs here.
    pub baselines: Vec<Baseline>,
    pub records: Vec<Record>,
    /// KernelBench's fast_p of every variant over the run's shapes, when the run had kernel
    /// files or asked for it (`--fast-p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_p: Option<crate::fast_p::FastP>,
    /// The machine's own speed through the run: a fixed piece of work timed once a round
    /// ([`crate::probe`]); absent in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::Probe>,
}

impl Report {
    pub fn new(command: Vec<String>, settings: Settings, devices: &[Device], records: Vec<Record>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            command,
            settings,
            machine: Machine::describe(),
            devices: devices.iter().map(DeviceRecord::describe).collect(),
            baselines: devices.iter().flat_map(Device::baselines).collect(),
            records,
            fast_p: None,
            probe: None,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| kernelab_tensor::Error::InvalidArgument {
            op: "bench",
            why: format!("the report cannot be written as JSON: {e}"),
        })
    }
}

/// Fills [`Record::of_vendor`] and [`Record::vendor`] for every timed row from the fastest timed,
/// within-budget baseline row of the same work, thread count and mode; baselines named in
/// `degraded` are never compared with, and their rows say so.
pub fn compare_with_baselines(records: &mut [Record], degraded: &[Baseline]) {
    for r in records.iter_mut() {
        if let Some(b) = degraded.iter().find(|b| r.baseline && b.variant == r.variant) {
            let why = b.note.clone().unwrap_or_else(|| format!("baseline degraded: {} {}", b.library, b.kernel));
            r.note = Some(match r.note.take() {
                Some(n) => format!("{why}; {n}"),
                None => why,
            });
        }
    }
    let is_degraded = |r: &Record| degraded.iter().any(|b| b.variant == r.variant);
    let baselines: Vec<Record> =
        records.iter().filter(|r| r.baseline && r.timed() && r.ok && !is_degraded(r)).cloned().collect();
    for r in records.iter_mut().filter(|r| r.timed()) {
        let fastest = baselines
            .iter()
            .filter(|b| b.same_work(r) && b.threads == r.threads && b.mode == r.mode)
            .min_by(|a, b| a.median_s.total_cmp(&b.median_s));
        r.of_vendor = fastest.map(|b| b.median_s / r.median_s);
        r.vendor = fastest.map(|b| b.variant.clone());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(variant: &str, median_s: f64, shape: &[usize], threads: usize) -> Record {
        Record {
            op: "matmul".into(),
            backend: "cpu".into(),
            device: "cpu".into(),
            variant: variant.into(),
            baseline: ["openblas", "gemm-crate", "matrixmultiply"].contains(&variant),
            shape: shape.to_vec(),
            transpose: Some("NN".into()),
            precision: Precision::F32,
            threads: Some(threads),
            mode: "warm".into(),
            status: Status::Ok,
            clock: Some("host".into()),
            launches_per_sample: 1,
            n: 10,
            samples_s: vec![median_s; 10],
            rounds: (0..10).collect(),
            median_s,
            p10_s: median_s,
            p90_s: median_s,
            p99_s: None,
            host_median_s: median_s,
            noisy: false,
            flops: 1.0,
            bytes: 1.0,
            gflops: 1.0,
            gbps: 1.0,
            ceiling: None,
            roofline: 0.5,
            suspect: false,
            of_vendor: None,
            vendor: None,
            max_rel_err: 0.0,
            budget_ratio: 0.0,
            ok: true,
            note: None,
            source: None,
        }
    }

    #[test]
    fn rows_are_held_against_the_fastest_baseline_of_the_same_work_and_threads() {
        let mut rows = vec![
            row("threaded", 2.0, &[8, 8, 8], 2),
            row("openblas", 1.0, &[8, 8, 8], 2),
            row("gemm-crate", 0.5, &[8, 8, 8], 2),
            row("packed_avx512", 4.0, &[8, 8, 8], 1),
            row("matrixmultiply", 8.0, &[8, 8, 8], 1),
            row("naive", 4.0, &[9, 9, 9], 1),
        ];
        compare_with_baselines(&mut rows, &[]);
        assert_eq!((rows[0].of_vendor, rows[0].vendor.as_deref()), (Some(0.25), Some("gemm-crate")));
        assert_eq!(rows[1].of_vendor, Some(0.5));
        assert_eq!(rows[3].of_vendor, Some(2.0), "one thread against the one-thread baseline");
        assert_eq!(rows[3].vendor.as_deref(), Some("matrixmultiply"));
        assert_eq!(rows[5].of_vendor, None, "no baseline at that shape");
    }

    #[test]
    fn a_degraded_baseline_gives_no_ratio_and_says_why() {
        let mut rows = vec![row("threaded", 2.0, &[8, 8, 8], 2), row("openblas", 8.0, &[8, 8, 8], 2)];
        let degraded = Baseline {
            variant: "openblas".into(),
            degraded: true,
            note: Some("baseline degraded: Prescott kernels".into()),
            ..Baseline::default()
        };
        compare_with_baselines(&mut rows, &[degraded]);
        assert_eq!(rows[0].of_vendor, None);
        assert_eq!(rows[1].note.as_deref(), Some("baseline degraded: Prescott kernels"));
    }

    #[test]
    fn every_row_has_every_key() {
        let timed = serde_json::to_value(row("threaded", 1.0, &[8, 8, 8], 2)).unwrap();
        let mut empty = row("openblas", f64::NAN, &[8, 8, 8], 2);
        (empty.n, empty.samples_s, empty.status, empty.transpose) = (0, vec![], Status::Skipped, None);
        let empty = serde_json::to_value(empty).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&timed), keys(&empty));
        assert!(empty["median_s"].is_null() && empty["transpose"].is_null());
        let back: Record = serde_json::from_value(empty).unwrap();
        assert!(back.median_s.is_nan());
    }
}
