//! The benchmark: every requested op and shape, on every device and variant. First every row is
//! checked ([`crate::vet`]: at the timed shape and at the op's awkward row shapes, outputs
//! poisoned, against the f64 reference, with the trust, input, guard-zone and late-work checks),
//! warmed up and given its batch size, one row after another; then all rows are timed together in
//! interleaved rounds ([`crate::rounds`]), each round one sample of every row in a shuffled order;
//! once every row of a spec has left the rounds, each is checked again on fresh inputs in the
//! same buffers. A row that fails a check is a `fail` row with the check and what it found in its
//! note, and no time: its samples are not kept.

use kernelab_tensor::{BackendKind, Device, DeviceBuffer, Dtype, Kernel, Op, Precision, Result, Variant};

use crate::case::{Case, Knobs, Prepared};
use crate::check::Check;
use crate::footprint::check_footprints;
pub use crate::footprint::footprint;
use crate::record::{Record, Status};
use crate::reference::Expected;
use crate::rounds::{self, RowTimes};
use crate::table::format_time;
use crate::timing::{Plan, Samples, batch_size, take_sample, warm_up};
use crate::vet::{self, RowConformance};

mod recheck;
use recheck::Held;

/// One op at one shape (with matmul's transposes) in one storage dtype: its rows are the
/// variants whose `precision.storage` is `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub op: Op,
    pub dims: Vec<usize>,
    pub trans_a: bool,
    pub trans_b: bool,
    pub dtype: Dtype,
}

impl Spec {
    pub fn new(op: Op, dims: &[usize]) -> Self {
        Self { op, dims: dims.to_vec(), trans_a: false, trans_b: false, dtype: Dtype::F32 }
    }

    /// The same spec in storage `dtype`.
    pub fn with_dtype(self, dtype: Dtype) -> Self {
        Self { dtype, ..self }
    }

    /// The precision of its case: f32, or the dtype accumulating in f32 (`bf16→f32`).
    pub fn precision(&self) -> Precision {
        match self.dtype {
            Dtype::F32 => Precision::F32,
            dtype => Precision::new(dtype, Dtype::F32),
        }
    }

    /// `NN`, `NT`, `TN` or `TT`: which matmul operands are transposed.
    pub fn transpose(&self) -> String {
        [self.trans_a, self.trans_b].map(|t| if t { 'T' } else { 'N' }).iter().collect()
    }
}

/// Which variants a run covers.
#[derive(Clone, Debug, PartialEq)]
pub enum Variants {
    /// Each backend's default.
    Default,
    /// Every registered variant (unavailable ones become skipped rows).
    All,
    /// The named ones, on the backends that have them.
    Named(Vec<String>),
}

impl Variants {
    /// The variants of `registered` (a backend's list for one op, the default first) this selects;
    /// kernels loaded from files (`--kernel`) are always among them.
    pub fn choose<'v>(&self, registered: &'v [Variant]) -> Vec<&'v Variant> {
        registered
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                v.source.is_some()
                    || match self {
                        Variants::Default => *i == 0,
                        Variants::All => true,
                        Variants::Named(names) => names.iter().any(|n| n == v.name),
                    }
            })
            .map(|(_, v)| v)
            .collect()
    }
}

/// The default suite: matmul, ReLU and softmax at a small and a large size.
pub fn default_suite() -> Vec<Spec> {
    let spec = Spec::new;
    vec![
        spec(Op::Matmul, &[256, 256, 256]),
        spec(Op::Matmul, &[1024, 1024, 1024]),
        spec(Op::Relu, &[1 << 20]),
        spec(Op::Relu, &[1 << 24]),
        spec(Op::Softmax, &[256, 1000]),
        spec(Op::Softmax, &[4096, 1000]),
    ]
}

/// The variant's identity in a row: its name, whether it is a baseline, and its threads.
struct Row<'a> {
    device: &'a Device,
    spec: &'a Spec,
    variant: Variant,
    mode: &'static str,
}

impl Row<'_> {
    /// CPU threads the variant runs on: one for a single-thread variant, else the pool's size.
    fn threads(&self) -> Option<usize> {
        (self.device.kind() == BackendKind::Cpu)
            .then(|| if self.variant.single_thread { 1 } else { rayon::current_num_threads() })
    }

    /// A record with the row's identity and no numbers.
    fn record(&self, status: Status, note: Option<String>) -> Record {
        Record {
            op: self.spec.op.name().into(),
            backend: self.device.kind().name().into(),
            device: self.device.info().name,
            variant: self.variant.name.into(),
            baseline: self.variant.baseline,
            shape: self.spec.dims.clone(),
            transpose: (self.spec.op == Op::Matmul).then(|| self.spec.transpose()),
            precision: self.variant.precision,
            threads: self.threads(),
            mode: self.mode.into(),
            source: self.variant.source.clone(),
            ..Record::blank(status, note)
        }
    }

    /// The record of a row that failed a check: `note` says which and what it found; the error
    /// columns are those of `check`.
    fn failed(&self, check: &Check, note: String) -> Record {
        let mut record = self.record(Status::Fail, Some(note));
        (record.max_rel_err, record.budget_ratio) = (check.max_rel_err, check.worst_budget_ratio);
        record
    }
}

/// Runs every spec on every device with the selected variants, calling `on_row` as each row is
/// done (for a live table): a row that is skipped or cannot launch as it is checked, a timed row
/// as it leaves the rounds. A spec whose shape does not fit its op is an error before anything
/// runs. The rows come back in spec, device, variant order.
pub fn run(
    devices: &[Device],
    specs: &[Spec],
    variants: &Variants,
    plan: &Plan,
    on_row: impl FnMut(&Record),
) -> Result<Vec<Record>> {
    run_with_progress(devices, specs, variants, plan, |_| {}, on_row)
}

/// A row that passed its check and warm-up and waits for the rounds.
struct Pending<'a> {
    row: Row<'a>,
    /// Where its record goes among the run's rows.
    slot: usize,
    /// Its spec's index in the run.
    spec: usize,
    case: &'a Case,
    /// Its spec's inputs and outputs on its device, shared by the variants of that spec.
    prepared: usize,
    /// Its device's index (and evictor's).
    device: usize,
    check: Check,
    batch: usize,
    /// A test build's deliberate slowdown of this row (see [`crate::slowdown`]).
    slowdown: Option<f64>,
}

/// [`run`], also calling `on_start` with a description of what runs next: each row as it is
/// checked, then each round.
pub fn run_with_progress(
    devices: &[Device],
    specs: &[Spec],
    variants: &Variants,
    plan: &Plan,
    on_start: impl FnMut(&str),
    on_row: impl FnMut(&Record),
) -> Result<Vec<Record>> {
    run_probed(devices, specs, variants, plan, on_start, on_row).map(|(rows, _)| rows)
}

/// [`run_with_progress`], also returning the machine's probe, one sample a round
/// ([`crate::probe`]), with what other processes took of the cores while the rows were timed
/// ([`crate::contention`]).
pub fn run_probed(
    devices: &[Device],
    specs: &[Spec],
    variants: &Variants,
    plan: &Plan,
    mut on_start: impl FnMut(&str),
    mut on_row: impl FnMut(&Record),
) -> Result<(Vec<Record>, crate::probe::Probe)> {
    check_footprints(specs)?;
    check_names(devices, specs, variants)?;
    let cases = cases(specs)?;
    let mut evictors: Vec<Evictor> = devices.iter().map(Evictor::new).collect();
    let mut slots: Vec<Option<Record>> = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut history = History::default();
    let mut conformance = RowConformance::default();
    let mode = if plan.cold { "cold" } else { "warm" };
    for (s, (spec, case)) in specs.iter().zip(&cases).enumerate() {
        let expected = case.expected();
        for (d, device) in devices.iter().enumerate() {
            let mut shared: Option<usize> = None;
            let of_dtype: Vec<Variant> =
                device.variants(spec.op).into_iter().filter(|v| v.precision.storage == spec.dtype).collect();
            if of_dtype.is_empty() {
                let record = no_variant_of_dtype(device, spec, mode);
                on_row(&record);
                slots.push(Some(record));
                continue;
            }
            for variant in variants.choose(&of_dtype) {
                let row = Row { device, spec, variant: variant.clone(), mode };
                on_start(&format!("checking {} {}/{} {}", spec.op, device.kind(), variant.name, case.label()));
                let slot = slots.len();
                let ready = match (&variant.unavailable, history.too_long(&row, case, plan)) {
                    (Some(reason), _) => Err(Box::new(row.record(Status::Skipped, Some(format!("skipped: {reason}"))))),
                    (None, Some(why)) => Err(Box::new(row.record(Status::Skipped, Some(format!("skipped: {why}"))))),
                    (None, None) => {
                        let buffers = (&mut prepared, &mut shared);
                        check_row(&row, case, &expected, plan, buffers, &mut conformance)
                    }
                };
                match ready {
                    Ok((check, single)) => {
                        history.learn(&row, case, single);
                        let slowdown = crate::slowdown::factor(device.kind(), variant.name);
                        let batch = batch_size(single, plan.cold);
                        let p = shared.unwrap_or_default();
                        let (spec, prepared, device) = (s, p, d);
                        pending.push(Pending { row, slot, spec, case, prepared, device, check, batch, slowdown });
                        slots.push(None);
                    }
                    Err(record) => {
                        on_row(&record);
                        slots.push(Some(*record));
                    }
                }
            }
        }
    }
    let mut held = Held::new(specs.len(), &pending);
    let mut prober = crate::probe::Prober::default();
    let cpu_time = crate::contention::Reading::now();
    let mut on_round = |round: u32, left: usize| {
        prober.sample(round);
        on_start(&format!("round {}: timing {left} rows", round + 1));
    };
    time_in_rounds(devices, plan, &pending, &mut prepared, &mut evictors, &mut on_round, |i, record, prepared| {
        for (j, record) in held.leave(&pending, i, record, prepared) {
            on_row(&record);
            slots[pending[j].slot] = Some(record);
        }
    });
    prober.probe.contention =
        cpu_time.zip(crate::contention::Reading::now()).and_then(|(start, end)| start.until(&end));
    let mut rows: Vec<Record> = slots.into_iter().flatten().collect();
    let degraded: Vec<_> = devices.iter().flat_map(Device::baselines).filter(|b| b.degraded).collect();
    crate::record::compare_with_baselines(&mut rows, &degraded);
    Ok((rows, prober.probe))
}

/// The one skipped row of a spec whose dtype no variant of `device` stores.
fn no_variant_of_dtype(device: &Device, spec: &Spec, mode: &'static str) -> Record {
    let why = crate::backends::no_variant_reason(device.kind(), spec.op, spec.dtype);
    let none = Variant::available("-", "").with_precision(spec.precision());
    Row { device, spec, variant: none, mode }.record(Status::Skipped, Some(format!("skipped: {why}")))
}

/// The specs' cases, with seeded inputs rounded to each spec's dtype.
fn cases(specs: &[Spec]) -> Result<Vec<Case>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let knobs = Knobs { trans_a: s.trans_a, trans_b: s.trans_b, ..Knobs::default() };
            let case = Case::new(s.op, &s.dims, knobs, 0x5eed + i as u64)?;
            Ok(if s.dtype == Dtype::F32 { case } else { case.with_precision(s.precision()) })
        })
        .collect()
}

/// Every name of a `--variant` list must be a variant of some op here: a misspelling is an
/// error, not a row less.
fn check_names(devices: &[Device], specs: &[Spec], variants: &Variants) -> Result<()> {
    let Variants::Named(names) = variants else { return Ok(()) };
    let ops: Vec<Op> = specs.iter().map(|s| s.op).collect();
    check_variant_names(devices, &ops, names)
}

/// Every one of `names` is a variant of one of `ops` on one of `devices`; otherwise an error
/// naming the first that is not and every known one (for `bench --variant` and `check --variant`).
pub fn check_variant_names(devices: &[Device], ops: &[Op], names: &[String]) -> Result<()> {
    let mut known: Vec<&str> =
        devices.iter().flat_map(|d| ops.iter().flat_map(move |&op| d.variants(op))).map(|v| v.name).collect();
    let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) else { return Ok(()) };
    known.sort_unstable();
    known.dedup();
    let mut ops: Vec<&str> = ops.iter().map(|op| op.name()).collect();
    ops.sort_unstable();
    ops.dedup();
    Err(kernelab_tensor::Error::InvalidArgument {
        op: "variant",
        why: format!(
            "--variant {unknown}: no backend has a variant `{unknown}` for {}; known: {}",
            ops.join(", "),
            known.join(", ")
        ),
    })
}

/// Checks one row ([`vet::checked_launch`] at the timed shape, outputs poisoned, with the wait
/// for late work; its spec's buffers on its device are made for the first variant and shared by
/// the rest), skips it when its checked launch predicts a row past the plan's cap, checks it at the
/// op's row shapes ([`RowConformance`]) and warms it up. `Ok` holds the check and the shortest
/// warm-up launch in seconds; `Err` the record of a row that will not be timed. A row that fails
/// leaves new buffers behind, so that an input or guard zone it broke is not blamed on the next.
fn check_row<'c>(
    row: &Row,
    case: &'c Case,
    expected: &[Expected],
    plan: &Plan,
    (prepared, shared): (&mut Vec<Prepared<'c>>, &mut Option<usize>),
    conformance: &mut RowConformance,
) -> std::result::Result<(Check, f64), Box<Record>> {
    let failed = |e: kernelab_tensor::Error| Box::new(row.record(Status::Error, Some(format!("error: {e}"))));
    if shared.is_none() {
        prepared.push(case.prepare(row.device).map_err(failed)?);
        *shared = Some(prepared.len() - 1);
    }
    let Some(p) = shared.and_then(|i| prepared.get_mut(i)) else {
        return Err(Box::new(row.record(Status::Error, Some("error: internal: the row's buffers are missing".into()))));
    };
    let variant = row.variant.name;
    let late = (!conformance.seen(row.device, case.op, variant)).then_some(vet::LATE);
    let checked = vet::checked_launch(p, case, expected, variant, late).map_err(failed)?;
    if let Some(why) = checked.check.failure() {
        *p = case.prepare(row.device).map_err(failed)?;
        return Err(Box::new(row.failed(&checked.check, why)));
    }
    if let Some(cap) = plan.max_row {
        let (launch, predicted) = (checked.launch_s, checked.launch_s * plan.least_launches() as f64);
        if predicted > cap.as_secs_f64() {
            let note = format!(
                "skipped: one launch took {}, so the row would take about {}, over the {} cap per row; \
                 --all-sizes runs it",
                format_time(launch),
                format_time(predicted),
                format_time(cap.as_secs_f64())
            );
            return Err(Box::new(row.record(Status::Skipped, Some(note))));
        }
    }
    let verdict = conformance.verdict(row.device, row.spec.op, variant, row.variant.precision);
    let errored = |why: String| Box::new(row.record(Status::Error, Some(format!("error: {why}"))));
    if let Some((why, check)) = verdict.map_err(errored)? {
        return Err(Box::new(row.failed(&check, why)));
    }
    let single = warm_up(row.device, plan, || p.launch(Some(variant))).map_err(failed)?;
    Ok((checked.check, single))
}

/// Times the pending rows in rounds (see [`crate::rounds`]) with every device's own timer on
/// where it has one; `done` gets each row's index and record as it leaves the rounds, and the
/// buffers.
fn time_in_rounds<'c>(
    devices: &[Device],
    plan: &Plan,
    pending: &[Pending<'c>],
    prepared: &mut [Prepared<'c>],
    evictors: &mut [Evictor],
    on_round: impl FnMut(u32, usize),
    mut done: impl FnMut(usize, Record, &mut [Prepared<'c>]),
) {
    let prepared = std::cell::RefCell::new(prepared);
    let timed: Vec<bool> = devices.iter().map(|d| d.set_device_timing(true)).collect();
    rounds::run(
        plan,
        pending.len(),
        on_round,
        |i| {
            let p = &pending[i];
            let (name, slowdown) = (p.row.variant.name, p.slowdown);
            let mut all = prepared.borrow_mut();
            let buffers = &mut all[p.prepared];
            let mut launch = || crate::slowdown::launch(slowdown, || buffers.launch(Some(name)));
            let evictor = &mut evictors[p.device];
            take_sample(p.row.device, plan, p.batch, &mut launch, &mut || evictor.evict(), timed[p.device])
        },
        |i, times| {
            let p = &pending[i];
            let record = match times {
                Ok(times) => timed_record(p, times, plan),
                Err(e) => p.row.record(Status::Error, Some(format!("error: {e}"))),
            };
            done(i, record, &mut prepared.borrow_mut());
        },
    );
    for (device, on) in devices.iter().zip(timed) {
        if on {
            device.set_device_timing(false);
        }
    }
}

/// The record of a timed row: its samples by the device's clock where the device timed every
/// one, else by the host's; their order statistics, rates, ceiling and check.
fn timed_record(p: &Pending, times: RowTimes, plan: &Plan) -> Record {
    let (row, case, check) = (&p.row, p.case, &p.check);
    let on_device = !times.device.is_empty() && times.device.len() == times.host.len();
    let host = Samples::from_secs(times.host);
    let samples = if on_device { Samples::from_secs(times.device) } else { host.clone() };
    let median = samples.median();
    let (flops, bytes) = (case.flops(), case.bytes());
    let (gflops, gbps) = (flops / median / 1e9, bytes / median / 1e9);
    let (threads, working_set, dtype) = (row.threads(), case.working_set(), case.precision.storage);
    let ceiling = row.device.roofline().and_then(|r| r.ceiling_as(threads, working_set, plan.cold, dtype));
    let roofline = ceiling.as_ref().map_or(f64::NAN, |c| c.fraction(gflops, gbps));
    debug_assert!(check.ok(), "only rows that passed their checks are timed");
    let note = (!check.notes.is_empty()).then(|| check.notes.join("; "));
    let mut record = row.record(Status::Ok, note);
    record.clock = Some(if on_device { "device" } else { "host" }.into());
    record.launches_per_sample = p.batch;
    record.n = samples.len();
    record.samples_s = samples.taken().to_vec();
    record.rounds = times.rounds;
    (record.median_s, record.p10_s, record.p90_s) = (median, samples.quantile(0.1), samples.quantile(0.9));
    record.host_median_s = host.median();
    record.noisy = samples.noisy();
    (record.flops, record.bytes, record.gflops, record.gbps) = (flops, bytes, gflops, gbps);
    record.ceiling = ceiling;
    record.roofline = roofline;
    record.suspect = roofline > 1.0;
    (record.max_rel_err, record.budget_ratio, record.ok) = (check.max_rel_err, check.worst_budget_ratio, check.ok());
    record
}

/// The last checked row of every device and variant (its shortest warm-up launch), to predict
/// what a larger one will cost.
#[derive(Default)]
struct History(std::collections::HashMap<(u64, &'static str), (f64, f64, String)>);

impl History {
    /// A row's work, for scaling times between shapes: its flops, or its bytes if it has none.
    fn work(case: &Case) -> f64 {
        case.flops().max(case.bytes())
    }

    /// Why the row would run past the plan's cap, predicted from the same variant's last row.
    fn too_long(&self, row: &Row, case: &Case, plan: &Plan) -> Option<String> {
        let cap = plan.max_row?;
        let (work, secs, shape) = self.0.get(&(row.device.id(), row.variant.name))?;
        let launch = secs * Self::work(case) / work;
        let predicted = launch * plan.least_launches() as f64;
        (predicted > cap.as_secs_f64()).then(|| {
            format!(
                "predicted {} ({} a launch, from {shape}), over the {} cap per row; --all-sizes runs it",
                format_time(predicted),
                format_time(launch),
                format_time(cap.as_secs_f64())
            )
        })
    }

    fn learn(&mut self, row: &Row, case: &Case, launch_s: f64) {
        if launch_s.is_finite() {
            let shape = crate::table::dims_text(&row.spec.dims);
            self.0.insert((row.device.id(), row.variant.name), (Self::work(case), launch_s, shape));
        }
    }
}

/// Evicts a device's caches for cold runs: fills a buffer twice the size of its largest cache
/// (the roofline's outermost finite level; 64 MiB when it has no roofline), allocated on first use.
struct Evictor {
    device: Device,
    buffer: Option<Box<dyn DeviceBuffer>>,
}

impl Evictor {
    fn new(device: &Device) -> Self {
        Self { device: device.clone(), buffer: None }
    }

    fn evict(&mut self) -> Result<()> {
        if self.buffer.is_none() {
            let largest = self.device.roofline().and_then(|r| r.levels.iter().filter_map(|l| l.capacity_all).max());
            let bytes = largest.map_or(64 << 20, |b| 2 * b).max(1 << 20);
            self.buffer = Some(self.device.alloc(usize::try_from(bytes / 4).unwrap_or(usize::MAX))?);
        }
        match self.buffer.as_deref_mut() {
            Some(y) => self.device.launch(Kernel::Fill { y, value: 1.0 }, None),
            None => Ok(()),
        }
    }
}
