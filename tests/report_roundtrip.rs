//! Every report kernelab writes reads back, through the one reader `compare` and `plot` share:
//! the default build's skipped baselines (`null` flops and bytes), rows that failed their check
//! and rows that could not run. A new report whose kernels fail fails `compare`'s gate.

mod common;

use std::path::Path;

use common::{cpu_bench, kernelab, ok, text};
use kernelab::bench::record::{Report, Settings, Status};
use kernelab::bench::runner::{self, Spec, Variants};
use kernelab::bench::timing::Plan;
use kernelab::cpu::{CpuBackend, CpuBuffer};
use kernelab::tensor::{Backend, BackendKind, DeviceBuffer, DeviceInfo, Kernel, Variant};
use kernelab::{Device, Error, Op, Result};

/// A CPU whose ReLU has five variants: `honest`, `lazy` (leaves its last element unwritten: the
/// outputs it shares with `honest`, which ran before it, must be poisoned again for its check),
/// `broken` (its first element off by one), `crashes` (the launch fails) and `absent` (cannot run
/// here).
#[derive(Debug)]
struct FiveKinds(CpuBackend);

impl Backend for FiveKinds {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo { name: "five kinds of ReLU".into(), ..DeviceInfo::default() }
    }
    fn variants(&self, op: Op) -> Vec<Variant> {
        if op != Op::Relu {
            return self.0.variants(op);
        }
        let absent = Variant::available("absent", "cannot run").unavailable_if(Some("not on this CPU".into()));
        let kinds = [
            ("honest", "right"),
            ("lazy", "last element unwritten"),
            ("broken", "first element off by one"),
            ("crashes", "fails to launch"),
        ];
        kinds.iter().map(|&(n, s)| Variant::available(n, s)).chain([absent]).collect()
    }
    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        self.0.alloc(len)
    }
    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        self.0.upload(src, dst)
    }
    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        self.0.download(src, dst)
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        match (variant, kernel) {
            (Some("crashes"), _) => Err(Error::Device { backend: "cpu".into(), message: "the kernel crashed".into() }),
            (Some("lazy"), Kernel::Relu { x, y }) => {
                let x = x.as_any().downcast_ref::<CpuBuffer>().expect("a CPU buffer").values();
                let y = y.as_any_mut().downcast_mut::<CpuBuffer>().expect("a CPU buffer").values_mut();
                let last = y.len() - 1;
                y[..last].iter_mut().zip(x).for_each(|(y, &x)| *y = x.max(0.0));
                Ok(())
            }
            (Some("broken"), Kernel::Relu { x, y }) => {
                let x = x.as_any().downcast_ref::<CpuBuffer>().expect("a CPU buffer").values();
                let y = y.as_any_mut().downcast_mut::<CpuBuffer>().expect("a CPU buffer").values_mut();
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.max(0.0));
                y[0] += 1.0;
                Ok(())
            }
            (_, kernel) => self.0.launch(kernel, None),
        }
    }
}

fn settings(plan: &Plan) -> Settings {
    Settings {
        warmup: plan.warmup,
        repeat: plan.repeat,
        min_runs: plan.min_runs,
        budget_s: plan.budget.as_secs_f64(),
        cold: false,
        threads: 1,
        batch_below_s: 2e-5,
        batch_target_s: 2e-4,
        noisy_spread: 1.2,
        variants: "all".into(),
        round_seed: Some(plan.seed),
        settle_s: 0.0,
    }
}

/// A report of every kind of row, written to `dir/name`.
fn five_kinds_report(dir: &Path, name: &str) -> std::path::PathBuf {
    let device = Device::new(FiveKinds(CpuBackend::new()));
    let plan = Plan { repeat: 5, min_runs: 3, budget: std::time::Duration::from_millis(20), ..Plan::default() };
    let devices = [device];
    let records = runner::run(&devices, &[Spec::new(Op::Relu, &[1000])], &Variants::All, &plan, |_| {})
        .expect("the run itself succeeds");
    let statuses: Vec<Status> = records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Ok, Status::Fail, Status::Fail, Status::Error, Status::Skipped]);
    let report = Report::new(vec!["test".into()], settings(&plan), &devices, records);
    let path = dir.join(name);
    std::fs::write(&path, report.to_json().unwrap()).unwrap();
    path
}

#[test]
fn failed_errored_and_skipped_rows_read_back_and_a_failing_new_report_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let path = five_kinds_report(dir.path(), "five.json");
    let written = std::fs::read_to_string(&path).unwrap();
    let read = Report::read(&path).unwrap();
    assert_eq!(read.to_json().unwrap(), written, "read back and written again, the same bytes");
    assert_eq!(read.records[0].rounds.len(), read.records[0].n);

    let p = path.to_str().unwrap();
    let out = kernelab(&["compare", p, p, "--noise-floor", "1%"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("1 rows: 0 faster, 0 slower, 1 same, 0 undecided"), "only the ok row is compared: {all}");
    let row = |variant: &str, status: &str| {
        let threads = read.records[0].threads.unwrap_or(1);
        format!("relu cpu/{variant} 1000 {threads}t warm (five kinds of ReLU) is `{status}`: ")
    };
    assert!(all.contains(&(row("lazy", "fail") + "over budget")), "{all}");
    assert!(all.contains(&(row("broken", "fail") + "over budget")), "{all}");
    assert!(all.contains(&(row("crashes", "error") + "error: cpu device error")), "{all}");
}

#[test]
fn the_default_builds_matmul_report_with_skipped_baselines_compares_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matmul.json");
    let p = path.to_str().unwrap();
    // `--variant all`: in a build without `openblas` its row is skipped, `null` where numbers go.
    ok(&cpu_bench("matmul", "16x16x16,24x8x40:NT", &["--repeat", "4", "--budget", "0.05", "--json", p]));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rows = json["records"].as_array().unwrap();
    if !cfg!(feature = "openblas") {
        let skipped = rows.iter().find(|r| r["variant"] == "openblas").unwrap();
        assert!(skipped["status"] == "skipped" && skipped["flops"].is_null() && skipped["bytes"].is_null());
    }
    let read = Report::read(&path).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), json);

    let (stdout, _) = ok(&["compare", p, p]);
    let timed = rows.iter().filter(|r| r["status"] == "ok").count();
    assert!(stdout.contains(&format!("{timed} rows: 0 faster, 0 slower, {timed} same, 0 undecided")), "{stdout}");
    let svg = dir.path().join("roofline.svg");
    ok(&["plot", p, "--kind", "roofline", "--out", svg.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("matmul"));
}

#[test]
fn compare_and_plot_refuse_a_bad_report_naming_the_file_the_row_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = five_kinds_report(dir.path(), "good.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    let bad = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut value = json.clone();
        edit(&mut value);
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    };
    let cases = [
        (bad("string.json", &|v| v["schema_version"] = "1".into()), "schema_version is the string \"1\""),
        (bad("float.json", &|v| v["schema_version"] = 1.0.into()), "schema_version is written `1.0`"),
        (bad("zero.json", &|v| v["records"][0]["samples_s"][0] = 0.0.into()), "records[0] (relu cpu/honest"),
        (bad("count.json", &|v| v["records"][0]["n"] = 99.into()), "n is 99 but samples_s holds"),
    ];
    let good = good.to_str().unwrap();
    for (path, says) in &cases {
        let p = path.to_str().unwrap();
        let svg = dir.path().join("out.svg");
        for args in [vec!["compare", good, p], vec!["plot", p, "--out", svg.to_str().unwrap()]] {
            let out = kernelab(&args);
            let all = text(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
            assert!(all.contains(&format!("error: {p}: ")) && all.contains(says), "{args:?}: {all}");
        }
    }
}
