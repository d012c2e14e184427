//! The benchmark: every requested op and shape, on every device and variant, checked against the
//! f64 reference once and then timed.

use kernelab_tensor::{Device, Op, Result};

use crate::case::{Case, Knobs};
use crate::check::compare;
use crate::record::Record;
use crate::timing::{Plan, measure};

/// One op at one shape (with matmul's transposes).
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub op: Op,
    pub dims: Vec<usize>,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Spec {
    pub fn new(op: Op, dims: &[usize]) -> Self {
        Self { op, dims: dims.to_vec(), trans_a: false, trans_b: false }
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

/// A row without numbers: a skipped variant or a failed launch.
fn empty_row(device: &Device, spec: &Spec, variant: &str, note: String) -> Record {
    Record {
        op: spec.op.name().into(),
        backend: device.kind().name().into(),
        device: device.info().name,
        variant: variant.into(),
        shape: spec.dims.clone(),
        transpose: (spec.op == Op::Matmul).then(|| spec.transpose()),
        clock: None,
        host_median_s: f64::NAN,
        median_s: f64::NAN,
        p10_s: f64::NAN,
        p90_s: f64::NAN,
        samples: 0,
        gflops: f64::NAN,
        gbps: f64::NAN,
        roofline: f64::NAN,
        max_rel_err: f64::NAN,
        budget_ratio: f64::NAN,
        ok: false,
        of_vendor: None,
        note: Some(note),
    }
}

/// Runs every spec on every device with the selected variants, calling `on_row` as each row is
/// done (for a live table). A spec whose shape does not fit its op is an error before anything runs.
pub fn run(
    devices: &[Device],
    specs: &[Spec],
    variants: &Variants,
    plan: &Plan,
    mut on_row: impl FnMut(&Record),
) -> Result<Vec<Record>> {
    let cases = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let knobs = Knobs { trans_a: s.trans_a, trans_b: s.trans_b, ..Knobs::default() };
            Case::new(s.op, &s.dims, knobs, 0x5eed + i as u64)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for (spec, case) in specs.iter().zip(&cases) {
        let expected = case.expected();
        for device in devices {
            let registered = device.variants(spec.op);
            let chosen: Vec<_> = match variants {
                Variants::Default => registered.iter().take(1).collect(),
                Variants::All => registered.iter().collect(),
                Variants::Named(names) => registered.iter().filter(|v| names.iter().any(|n| n == v.name)).collect(),
            };
            for variant in chosen {
                let row = match &variant.unavailable {
                    Some(reason) => empty_row(device, spec, variant.name, format!("skipped: {reason}")),
                    None => bench_one(device, spec, case, &expected, variant.name, plan)
                        .unwrap_or_else(|e| empty_row(device, spec, variant.name, format!("error: {e}"))),
                };
                on_row(&row);
                rows.push(row);
            }
        }
    }
    crate::record::compare_with_vendor(&mut rows);
    Ok(rows)
}

/// Checks one variant against the reference (outputs poisoned), then times it.
fn bench_one(
    device: &Device,
    spec: &Spec,
    case: &Case,
    expected: &[crate::reference::Expected],
    variant: &str,
    plan: &Plan,
) -> Result<Record> {
    let mut prepared = case.prepare(device)?;
    prepared.launch(Some(variant))?;
    let check = compare(expected, &prepared.outputs()?);
    let measured = measure(device, plan, || prepared.launch(Some(variant)))?;
    let samples = measured.best();
    let median = samples.median();
    let (gflops, gbps) = (case.flops() / median / 1e9, case.bytes() / median / 1e9);
    Ok(Record {
        op: spec.op.name().into(),
        backend: device.kind().name().into(),
        device: device.info().name,
        variant: variant.into(),
        shape: spec.dims.clone(),
        transpose: (spec.op == Op::Matmul).then(|| spec.transpose()),
        clock: Some(measured.clock().into()),
        host_median_s: measured.host.median(),
        median_s: median,
        p10_s: samples.quantile(0.1),
        p90_s: samples.quantile(0.9),
        samples: samples.len(),
        gflops,
        gbps,
        roofline: device.roofline().map_or(f64::NAN, |r| r.fraction(gflops, gbps)),
        max_rel_err: check.max_rel_err,
        budget_ratio: check.worst_budget_ratio,
        ok: check.ok(),
        of_vendor: None,
        note: check.first_failure.map(|f| format!("over budget: {f}")),
    })
}
