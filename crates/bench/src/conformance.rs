//! The conformance suite: every op, every registered variant, on awkward shapes as well as round
//! ones, against the f64 reference, with outputs poisoned before every launch and the checks of
//! [`crate::vet`] after it (trust, inputs unchanged, guard zones). The same suite runs on every
//! backend (`tests/conformance.rs`, `kernelab check`); the benchmark checks each row at the
//! smaller set of [`row_shapes`] before timing it.

use kernelab_tensor::{BackendKind, Device, Op, OpFamily, Precision, Result};

use crate::case::{Case, Knobs};
use crate::check::Check;

/// The awkward sizes every op meets: primes and near-powers that break tile assumptions.
pub const AWKWARD: [usize; 8] = [1, 3, 17, 31, 127, 257, 784, 1023];

/// The edges of the CPU's thin-product tiles (8 × 32 broadcast, one tile up to 12 rows tall when
/// the product is that short, 4 × 4 dot with 16-deep vectors, 16 × 16 transposed blocks of an NT
/// product's `Bᵀ`, 8 × 32 and 6 × 16 packed): one short
/// of, at and one past each width and depth a mask or a partial tile handles. Every matmul width
/// `n` and depth `k` among these is tried.
pub const MATMUL_EDGES: [usize; 12] = [1, 2, 3, 9, 10, 11, 15, 17, 31, 33, 63, 65];

/// The shapes the suite runs `op` at.
pub fn shapes(op: Op) -> Vec<Vec<usize>> {
    match op.family() {
        OpFamily::Elementwise => {
            let mut sizes: Vec<Vec<usize>> = AWKWARD.iter().map(|&n| vec![n]).collect();
            // Round sizes, and one past the CPU's threading threshold.
            sizes.extend([vec![4096], vec![(1 << 16) + 3], vec![1 << 20]]);
            sizes
        }
        OpFamily::Rowwise => {
            let mut sizes = Vec::new();
            for rows in [1, 3, 17, 127, 1023] {
                for cols in [1, 3, 10, 31, 257, 784, 1023] {
                    sizes.push(vec![rows, cols]);
                }
            }
            sizes.extend([vec![64, 10], vec![256, 128], vec![64, 1024]]);
            sizes
        }
        OpFamily::Matmul => {
            let small = [1, 3, 17, 31];
            let mut sizes = Vec::new();
            for &m in &small {
                for &n in &small {
                    for &k in &small {
                        sizes.push(vec![m, n, k]);
                    }
                }
            }
            // Nine rows: one broadcast tile nine rows tall (at most twelve are one tile), two dot
            // tiles and a one-row edge.
            for &n in &MATMUL_EDGES {
                for &k in &MATMUL_EDGES {
                    sizes.push(vec![9, n, k]);
                }
            }
            sizes.extend([
                vec![127, 257, 31],
                vec![257, 127, 784],
                vec![784, 10, 127],
                vec![1023, 17, 257],
                vec![17, 1023, 255],
                vec![64, 128, 784],
                vec![64, 10, 128],
                // The other one-tile heights, the seed model's 10-row weight gradient among them,
                // and the first height that is two tiles (8 + 5).
                vec![10, 128, 64],
                vec![11, 33, 17],
                vec![12, 65, 31],
                vec![13, 31, 65],
                // Threaded direct products whose C is the largest operand, split by rows: the
                // seed model's weight gradient and a ragged one.
                vec![128, 784, 64],
                vec![131, 517, 40],
                // Deeper than one pass of every kernel (AVX-512 packed and dot: 1024), so that C
                // accumulates across passes.
                vec![33, 40, 1030],
                vec![128, 128, 128],
                vec![256, 256, 256],
                // NT products whose Bᵀ is transposed strip by strip (at least 32 rows and 16
                // columns): at both bounds of that rule, a ragged last strip and depth (whole
                // 16×16 blocks and values one by one), and more than one 256-deep pass.
                vec![32, 16, 17],
                vec![31, 16, 17],
                vec![33, 47, 300],
                vec![47, 65, 1],
            ]);
            sizes
        }
    }
}

/// Whether `device` runs each GPU thread in an interpreter (the emulated CUDA device): thousands
/// of times slower than lavapipe, which compiles its shaders, so the suite runs there at
/// [`interpreted_shapes`].
pub fn interpreted(device: &Device) -> bool {
    device.kind() == BackendKind::Cuda && device.info().software.is_some()
}

/// The shapes the suite runs `op` at on an [interpreted] device: [`shapes`] without the largest
/// (no product over about 1.4 M multiply-adds, no row-wise case over 130 K values). Kept: every
/// small and edge shape, partial tiles of every rung (16, 64 and 128 wide), depths past every
/// rung's k-tile and past 1024, rows longer than one 1024-wide pass.
pub fn interpreted_shapes(op: Op) -> Vec<Vec<usize>> {
    let product = |dims: &Vec<usize>| dims.iter().product::<usize>();
    let mut kept: Vec<Vec<usize>> = match op.family() {
        OpFamily::Elementwise => shapes(op).into_iter().filter(|d| product(d) < 1 << 17).collect(),
        OpFamily::Rowwise => shapes(op).into_iter().filter(|d| d[0] < 1023 && product(d) < 140_000).collect(),
        OpFamily::Matmul => shapes(op).into_iter().filter(|d| product(d) <= 1_400_000).collect(),
    };
    match op.family() {
        // Partial 128 × 128 warp tiles in both directions.
        OpFamily::Matmul => kept.push(vec![129, 131, 33]),
        OpFamily::Rowwise => kept.push(vec![5, 1025]),
        OpFamily::Elementwise => {}
    }
    kept
}

/// The shapes the suite runs `op` at on `device`: [`interpreted_shapes`] on an [interpreted]
/// device, [`shapes`] everywhere else.
pub fn shapes_on(device: &Device, op: Op) -> Vec<Vec<usize>> {
    if interpreted(device) { interpreted_shapes(op) } else { shapes(op) }
}

/// The few shapes every benchmark row of `op` is checked at before it is timed (see
/// [`crate::vet::RowConformance`]), small enough to cost little beside the timing: one element,
/// odd sizes, partial tiles of every tile width the ladders use (16, 32, 64: a depth of 65 leaves
/// a last k-tile of one), and for row-wise ops a row longer than one 1024-wide pass.
pub fn row_shapes(op: Op) -> Vec<Vec<usize>> {
    match op.family() {
        OpFamily::Elementwise => vec![vec![1], vec![3], vec![17], vec![1023], vec![(1 << 16) + 3]],
        OpFamily::Rowwise => vec![vec![1, 1], vec![3, 31], vec![17, 257], vec![5, 1025]],
        OpFamily::Matmul => vec![vec![1, 1, 1], vec![17, 31, 3], vec![67, 129, 65]],
    }
}

/// The cases of [`row_shapes`] with the knob sets of [`knob_sets`] — for matmul only the four
/// layouts (`NN`, `NT`, `TN`, `TT`; the benchmark times `α = 1, β = 0`) — each with its f64
/// reference, in `precision` (inputs rounded to its storage, its budget).
pub fn row_cases(op: Op, precision: Precision) -> Result<Vec<(Case, Vec<crate::reference::Expected>)>> {
    let knobs: Vec<Knobs> =
        knob_sets(op).into_iter().filter(|k| op != Op::Matmul || (k.alpha, k.beta) == (1.0, 0.0)).collect();
    let mut cases = Vec::new();
    for dims in row_shapes(op) {
        for (i, k) in knobs.iter().enumerate() {
            let case = Case::new(op, &dims, *k, 0xc0ff_ee00 + i as u64)?;
            let case = if precision == Precision::F32 { case } else { case.with_precision(precision) };
            let expected = case.expected();
            cases.push((case, expected));
        }
    }
    Ok(cases)
}

/// The knobs the suite tries at each shape of `op`: every transpose pair for matmul (and scaled,
/// accumulating forms), both modes of the column sum.
pub fn knob_sets(op: Op) -> Vec<Knobs> {
    let base = Knobs::default();
    match op {
        Op::Matmul => {
            let mut sets: Vec<Knobs> = [(false, false), (false, true), (true, false), (true, true)]
                .into_iter()
                .map(|(trans_a, trans_b)| Knobs { trans_a, trans_b, ..base })
                .collect();
            sets.push(Knobs { alpha: 0.5, beta: 1.0, ..base });
            sets.push(Knobs { trans_a: true, alpha: -2.0, beta: 0.25, ..base });
            sets.push(Knobs { trans_b: true, alpha: 0.5, beta: -1.0, ..base });
            sets
        }
        Op::ColSum => vec![base, Knobs { alpha: 0.5, accumulate: true, ..base }],
        Op::Fill => vec![Knobs { alpha: -1.5, ..base }],
        Op::Scale | Op::ScaleBy | Op::Axpy => vec![Knobs { alpha: -0.75, ..base }],
        _ => vec![base],
    }
}

/// The result of one case with one variant.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub backend: String,
    pub op: Op,
    pub variant: &'static str,
    pub case: String,
    /// `Ok(check)` when it ran; `Err(reason)` when it was skipped (a SIMD path this machine lacks)
    /// or failed to launch.
    pub result: std::result::Result<Check, String>,
    /// True when skipped for lack of hardware, false for a launch error.
    pub skipped: bool,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(&self.result, Ok(check) if check.ok())
    }

    /// A line for a person: `cpu:0 matmul/blocked 17x3x31 Aᵀ: FAIL output 0[4]: got NaN, …`.
    pub fn describe(&self) -> String {
        let head = format!("{} {}/{} {}", self.backend, self.op, self.variant, self.case);
        match &self.result {
            Ok(c) if c.ok() => {
                let notes = c.notes.iter().map(|n| format!("; {n}")).collect::<String>();
                format!("{head}: ok (max rel err {:.1e}, {:.2} of budget){notes}", c.max_rel_err, c.worst_budget_ratio)
            }
            Ok(c) if c.failures == 0 => format!("{head}: FAIL, {}", c.findings.join("; ")),
            Ok(c) => {
                let also = c.findings.iter().map(|f| format!("{f}; ")).collect::<String>();
                format!(
                    "{head}: FAIL, {also}{} elements over budget; first: {}",
                    c.failures,
                    c.first_failure.as_deref().unwrap_or("?")
                )
            }
            Err(why) if self.skipped => format!("{head}: skipped ({why})"),
            Err(why) => format!("{head}: ERROR {why}"),
        }
    }
}

/// Runs one prepared case with one variant: poison, launch, download, compare.
pub fn check_case(device: &Device, case: &Case, variant: &str) -> Result<Check> {
    run_checked(device, case, &case.expected(), variant)
}

/// Every shape and knob set of `op`, with every variant `device` registers.
pub fn check_op(device: &Device, op: Op) -> Vec<Outcome> {
    check_variants(device, op, |_| true)
}

/// Every shape and knob set of `op`, with the variants of `device` whose names `keep` accepts
/// (nothing at all, not even the cases, when it accepts none).
pub fn check_variants(device: &Device, op: Op, keep: impl Fn(&str) -> bool) -> Vec<Outcome> {
    let variants: Vec<_> = device.variants(op).into_iter().filter(|v| keep(v.name)).collect();
    if variants.is_empty() {
        return Vec::new();
    }
    let mut outcomes = Vec::new();
    for dims in shapes_on(device, op) {
        for knobs in knob_sets(op) {
            let seed = dims.iter().fold(op.index() as u64, |s, &d| s.wrapping_mul(1_000_003).wrapping_add(d as u64));
            let case = match Case::new(op, &dims, knobs, seed) {
                Ok(case) => case,
                Err(e) => {
                    outcomes.push(Outcome {
                        backend: device.label().into(),
                        op,
                        variant: "-",
                        case: format!("{dims:?}"),
                        result: Err(e.to_string()),
                        skipped: false,
                    });
                    continue;
                }
            };
            // The f64 reference is computed once per case and precision, and only when a variant
            // runs: the inputs rounded to the variant's storage, the budget of its precision.
            let mut by_precision: Vec<(Case, Vec<crate::reference::Expected>)> = Vec::new();
            for v in &variants {
                let (result, skipped) = match &v.unavailable {
                    Some(reason) => (Err(reason.clone()), true),
                    None => {
                        let at = match by_precision.iter().position(|(c, _)| c.precision == v.precision) {
                            Some(at) => at,
                            None => {
                                let case = case.clone().with_precision(v.precision);
                                let expected = case.expected();
                                by_precision.push((case, expected));
                                by_precision.len() - 1
                            }
                        };
                        let (case, expected) = &by_precision[at];
                        (run_checked(device, case, expected, v.name).map_err(|e| e.to_string()), false)
                    }
                };
                outcomes.push(Outcome {
                    backend: device.label().into(),
                    op,
                    variant: v.name,
                    case: case.label(),
                    result,
                    skipped,
                });
            }
        }
    }
    outcomes
}

/// One case with one variant on new buffers, with every check of [`crate::vet::checked_launch`]
/// but the wait for late work.
fn run_checked(device: &Device, case: &Case, expected: &[crate::reference::Expected], variant: &str) -> Result<Check> {
    let mut prepared = case.prepare(device)?;
    Ok(crate::vet::checked_launch(&mut prepared, case, expected, variant, None)?.check)
}

/// The devices a conformance run covers: one of every available backend. Backends named in the
/// environment variable `KERNELAB_REQUIRE` (comma-separated, e.g. `wgpu,cuda`) must be among them:
/// their absence is an error with the reason, never a silent skip.
pub fn devices_under_test() -> Result<Vec<Device>> {
    let required = kernelab_tensor::required_backends();
    for name in &required {
        crate::backends::kind(name)?;
    }
    let mut devices = Vec::new();
    for (kind, device) in crate::backends::probe_all() {
        match device {
            Ok(device) => devices.push(device),
            Err(e) if kind.is_required() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interpreted device's shapes still reach past every tile: depths past 16, 64 and 1024
    /// with a partial last k-tile, products wider and taller than a 128 × 128 warp tile, rows past
    /// one 1024-wide pass — and nothing large.
    #[test]
    fn interpreted_shapes_reach_past_every_tile() {
        let matmul = interpreted_shapes(Op::Matmul);
        assert!(matmul.iter().all(|d| d.iter().product::<usize>() <= 1_400_000));
        for tile in [16, 64, 1024] {
            assert!(matmul.iter().any(|d| d[2] > tile && d[2] % tile != 0), "no depth past {tile}");
        }
        assert!(matmul.iter().any(|d| d[0] > 128 && d[1] > 128 && d[0] % 128 != 0 && d[1] % 128 != 0));
        assert!(interpreted_shapes(Op::Softmax).iter().any(|d| d[1] > 1024));
        assert!(interpreted_shapes(Op::Relu).iter().any(|d| d[0] > 1 << 16));
        assert!(interpreted_shapes(Op::Relu).len() < shapes(Op::Relu).len());
    }
}
