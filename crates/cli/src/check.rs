//! `kernelab check`: the conformance suite from the one binary, for machines without a Rust
//! toolchain. Exits non-zero on any failure.
//!
//! It prints a line per backend and op, one line per variant that could not run here (with the
//! reason and how many cases it skipped), every failed case, and after each backend a line per
//! variant over all its ops; `--verbose` adds every case.

use crate::out::outln;
use clap::Args;

use kernelab_bench::conformance::{Outcome, check_variants};
use kernelab_tensor::{Device, Dtype, Op, Result};

use crate::args;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kernelab check                                   every op and variant on every available backend
  kernelab check --backend cuda                    exit 2 when CUDA is unavailable, 1 when a case fails
  kernelab check --backend cpu --op matmul,softmax
  kernelab check --variant packed_avx2,avx2        those variants only, with a line each
  kernelab check --op softmax --kernel softmax.so  your kernel on the conformance cases (docs/kernels.md)")]
pub struct CheckArgs {
    /// Backends to check, comma-separated; each must be available. Default: every available one.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Ops to check, comma-separated. Default: all.
    #[arg(long, value_delimiter = ',')]
    op: Vec<String>,
    /// Variants to check, comma-separated (`kernelab list` names them); each must exist for one of
    /// the ops on one of the backends. Default: all.
    #[arg(long, value_delimiter = ',')]
    variant: Vec<String>,
    /// Storage dtypes to check, comma-separated (f32, bf16, f16, tf32; default f32): the variants
    /// storing them, on inputs rounded to that dtype, against the budget of their precision; a
    /// backend with none has a skipped line naming what it lacks. `tf32`: f32 buffers, operands
    /// rounded to TF32 (10-bit mantissa) by the kernel, f32 sums (cuda's tensor-core mode).
    #[arg(long, value_delimiter = ',')]
    dtype: Vec<String>,
    /// GPU adapter: the first whose name contains this (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Print every case, not only failures and a summary per op and variant.
    #[arg(long, short)]
    verbose: bool,
    /// A kernel of yours from a file (`.wgsl`, `.ptx`, `.so`), checked beside the built-in
    /// variants; give one --op. Repeatable. See `kernelab bench --help`.
    #[arg(long, value_name = "PATH[:ENTRY]")]
    kernel: Vec<String>,
    /// Seconds a child process checking a `.so` kernel may take before it is killed as hung.
    #[arg(long, default_value_t = 300.0)]
    kernel_timeout: f64,
    /// Check only the --kernel files, in this process (what the child process of a `.so` runs).
    #[arg(long, hide = true)]
    isolated: bool,
}

/// What one variant did over the cases it was given.
#[derive(Clone, Debug, Default)]
struct Tally {
    ops: usize,
    cases: usize,
    failed: usize,
    skipped: usize,
    worst: f64,
    /// Why it was skipped, when it was.
    reason: Option<String>,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        match &o.result {
            Err(why) if o.skipped => {
                self.skipped += 1;
                self.reason.get_or_insert_with(|| why.clone());
            }
            Ok(check) => self.worst = self.worst.max(check.worst_budget_ratio),
            Err(_) => {}
        }
        if !o.passed() && !o.skipped {
            self.failed += 1;
        }
    }

    /// Adds one op's tally of the variant.
    fn merge(&mut self, other: &Tally) {
        self.ops += 1;
        self.cases += other.cases;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.worst = self.worst.max(other.worst);
        if self.reason.is_none() {
            self.reason.clone_from(&other.reason);
        }
    }
}

/// The tally of `name` in `list`, appended empty when it has none yet (the list keeps the order
/// in which variants first appear).
fn entry<'l>(list: &'l mut Vec<(&'static str, Tally)>, name: &'static str) -> &'l mut Tally {
    let at = list.iter().position(|(n, _)| *n == name).unwrap_or_else(|| {
        list.push((name, Tally::default()));
        list.len() - 1
    });
    &mut list[at].1
}

/// The outcomes counted per variant, in the order the variants first appear.
fn tallies(outcomes: &[Outcome]) -> Vec<(&'static str, Tally)> {
    let mut out = Vec::new();
    for o in outcomes {
        entry(&mut out, o.variant).add(o);
    }
    out
}

/// Runs the suite; returns how many cases failed.
pub fn run(a: &CheckArgs) -> Result<usize> {
    let mut devices = if a.isolated {
        vec![kernelab_bench::backends::open(kernelab_tensor::BackendKind::Cpu)?]
    } else {
        crate::bench::open_devices(&a.backend, a.adapter.as_deref())?
    };
    let ops = if a.op.is_empty() && a.kernel.is_empty() { Op::ALL.to_vec() } else { args::ops(&a.op)? };
    let chosen = args::list(&a.variant);
    let loaded = match crate::kernels::the_op(&a.kernel, &ops)? {
        Some(op) => crate::kernels::load(&a.kernel, op, &mut devices, a.adapter.as_deref(), a.isolated),
        None => crate::kernels::Loaded::default(),
    };
    // A shared library's row is checked in its own process, and a file that will not run here
    // has its own line: neither name is a variant here.
    let elsewhere = |c: &String| {
        loaded.isolated.iter().any(|(_, f)| f.name == c.as_str()) || loaded.not_run.iter().any(|n| &n.name == c)
    };
    let here: Vec<String> = chosen.iter().filter(|c| !elsewhere(c)).cloned().collect();
    kernelab_bench::runner::check_variant_names(&devices, &ops, &here)?;
    let dtypes = args::dtypes(&a.dtype)?;
    let wanted =
        |v: &str| loaded.names.contains(&v) || (!a.isolated && (chosen.is_empty() || chosen.iter().any(|c| c == v)));
    let (mut failed, mut ran, mut skipped) = (kernel_files(a, &loaded), 0, 0);
    for device in &devices {
        if kernelab_bench::conformance::interpreted(device) {
            outln!(
                "{}: an interpreted device: the suite's shapes without the largest (all still past every tile)",
                device.label()
            );
        }
        let mut by_variant: Vec<(&'static str, Tally)> = Vec::new();
        for &op in &ops {
            let of_dtype: Vec<&'static str> = device
                .variants(op)
                .into_iter()
                .filter(|v| dtypes.contains(&v.precision.storage))
                .map(|v| v.name)
                .collect();
            let outcomes = check_variants(device, op, |v| wanted(v) && of_dtype.contains(&v));
            print_missing_dtypes(device, op, &dtypes, a.variant.is_empty());
            if outcomes.is_empty() {
                continue;
            }
            let here = tallies(&outcomes);
            print_op(device, op, &outcomes, &here, a.verbose);
            for (name, tally) in &here {
                entry(&mut by_variant, name).merge(tally);
            }
            failed += here.iter().map(|(_, t)| t.failed).sum::<usize>();
            skipped += here.iter().map(|(_, t)| t.skipped).sum::<usize>();
            ran += here.iter().map(|(_, t)| t.cases - t.skipped).sum::<usize>();
        }
        print_variants(device, &by_variant);
    }
    outln!(
        "{}",
        match failed {
            0 => format!("all cases passed ({ran} run, {skipped} skipped)"),
            n => format!("{n} cases FAILED ({ran} run, {skipped} skipped)"),
        }
    );
    Ok(failed)
}

/// One skipped line per requested dtype that `device` has no variant of `op` in (all variants
/// asked for), naming what is missing (see [`no_variant_reason`](kernelab_bench::backends::no_variant_reason)).
fn print_missing_dtypes(device: &Device, op: Op, dtypes: &[Dtype], all: bool) {
    let variants = device.variants(op);
    for &dtype in dtypes.iter().filter(|_| all) {
        if !variants.iter().any(|v| v.precision.storage == dtype) {
            let why = kernelab_bench::backends::no_variant_reason(device.kind(), op, dtype);
            outln!("{} {op}: skipped ({why})", device.label());
        }
    }
}

/// The kernel files that run apart from this process's devices: a line for each that will not
/// run here, and the output of a child process for each shared library. Returns the failures.
fn kernel_files(a: &CheckArgs, loaded: &crate::kernels::Loaded) -> usize {
    let mut failed = 0;
    for not_run in &loaded.not_run {
        outln!("{:<8} {}: {}", not_run.backend, not_run.name, not_run.note);
        failed += usize::from(not_run.status == kernelab_bench::record::Status::Error);
    }
    for (spec, file) in &loaded.isolated {
        let op = file.op.name();
        let args = ["check", "--isolated", "--op", op, "--kernel", spec].map(String::from);
        let limit = std::time::Duration::from_secs_f64(a.kernel_timeout.clamp(1.0, 86_400.0));
        let copies = tempfile::tempdir().ok();
        let env: Vec<(&str, &std::path::Path)> =
            copies.iter().map(|d| (kernelab_cpu::library::COPIES_IN, d.path())).collect();
        let ending = crate::isolate::run(&args, &env, limit);
        if let crate::isolate::Ending::Exited { stdout, code, .. } = &ending {
            outln!("{}", stdout.trim_end());
            failed += usize::from(*code != 0);
        }
        if let Some(why) = ending.failure() {
            outln!("cpu      {}: FAILED: {why}", file.name);
            failed += 1;
        }
    }
    failed
}

/// One op's line, a line per variant it skipped, and its failed cases (every case when verbose).
fn print_op(device: &Device, op: Op, outcomes: &[Outcome], here: &[(&str, Tally)], verbose: bool) {
    let sum = |f: fn(&Tally) -> usize| here.iter().map(|(_, t)| f(t)).sum::<usize>();
    let ran = here.iter().any(|(_, t)| t.skipped < t.cases);
    let worst = here.iter().map(|(_, t)| t.worst).fold(0.0, f64::max);
    outln!(
        "{:<8} {:<22} {:>4} cases  {:>3} failed  {:>4} skipped  {}",
        device.label(),
        op.name(),
        outcomes.len(),
        sum(|t| t.failed),
        sum(|t| t.skipped),
        if ran { format!("worst {worst:.2} of budget") } else { "none ran".into() }
    );
    for (name, tally) in here.iter().filter(|(_, t)| t.skipped > 0 && !verbose) {
        let why = tally.reason.as_deref().unwrap_or("unavailable");
        outln!("    {op}/{name}: skipped, {} cases ({why})", tally.skipped);
    }
    for o in outcomes.iter().filter(|o| verbose || (!o.passed() && !o.skipped)) {
        outln!("    {}", o.describe());
    }
}

/// A line per variant over every op of one device.
fn print_variants(device: &Device, by_variant: &[(&str, Tally)]) {
    if by_variant.is_empty() {
        return;
    }
    outln!("{} by variant:", device.label());
    for (name, t) in by_variant {
        let worst = match (&t.reason, t.skipped == t.cases) {
            (Some(why), true) => format!("skipped: {why}"),
            _ => format!("worst {:.2} of budget", t.worst),
        };
        outln!(
            "    {name:<18} {:>2} op{} {:>5} cases  {:>3} failed  {:>4} skipped  {worst}",
            t.ops,
            if t.ops == 1 { " " } else { "s" },
            t.cases,
            t.failed,
            t.skipped
        );
    }
}
