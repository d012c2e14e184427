//! [`Case`]: one op at one shape, with seeded inputs, ready to run on any device and to check
//! against the f64 [`reference`](mod@crate::reference). The conformance suite and the benchmark both run cases, so a
//! benchmarked number is always a checked number.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use kernelab_tensor::{AdamStep, Device, DeviceBuffer, Dtype, Error, Gemm, Kernel, Op, OpFamily, Precision, Result};

use crate::reference::{self, Expected};

/// Settings of a case beyond its shape: transposes and scalars of the matmul, the accumulate
/// flag of the column sum. The defaults are the plain forms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knobs {
    pub trans_a: bool,
    pub trans_b: bool,
    /// `α` of matmul, col_sum, scale, scale_by, axpy; the value of fill.
    pub alpha: f32,
    /// `β` of matmul; non-zero makes `C` an input.
    pub beta: f32,
    /// col_sum adds into its output.
    pub accumulate: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self { trans_a: false, trans_b: false, alpha: 1.0, beta: 0.0, accumulate: false }
    }
}

/// The temperature of every KL case: far enough from 1 that a kernel ignoring it fails.
pub const KL_TEMPERATURE: f32 = 4.0;

/// The Adam hyperparameters of every Adam case (a late step, so bias correction matters).
pub const ADAM: AdamStep = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 7 };

/// One op at one shape with its inputs.
#[derive(Clone, Debug)]
pub struct Case {
    pub op: Op,
    /// The shape as the benchmark writes it: `[M, N, K]`, `[R, C]` or `[N]`.
    pub dims: Vec<usize>,
    pub knobs: Knobs,
    inputs: Vec<Vec<f32>>,
    /// For each output: its initial contents when the kernel reads it, `None` when it is poisoned.
    outputs: Vec<(usize, Option<Vec<f32>>)>,
    /// The storage and accumulation the kernel runs in ([`Precision::F32`] unless set with
    /// [`Case::with_precision`]): the buffers' dtypes and the reference's budget.
    pub precision: Precision,
    /// Finite values that the precision's conversions turn into ±∞, one line per buffer
    /// ([`Dtype::overflow_note`]); empty for f32 and for values within range.
    overflows: Vec<String>,
}

/// Draws `n` values from `N(mean, std²)`.
fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let dist = Normal::new(mean, std).expect("every caller passes a positive constant std");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// Logits whose every third row is shifted by +80, where `exp` without the max subtracted overflows.
fn logits(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f32> {
    let mut z = normal(rng, rows * cols, 0.5, 3.0);
    z.chunks_mut(cols.max(1)).step_by(3).for_each(|row| row.iter_mut().for_each(|v| *v += 80.0));
    z
}

/// Rows that are probability distributions, about a quarter of their entries exactly zero.
fn distributions(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f32> {
    let mut q = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let mut row: Vec<f32> =
            (0..cols).map(|_| if rng.random::<f32>() < 0.25 { 0.0 } else { rng.random() }).collect();
        if row.iter().all(|&v| v == 0.0) {
            row[0] = 1.0;
        }
        let sum: f32 = row.iter().sum();
        q.extend(row.iter().map(|v| v / sum));
    }
    q
}

/// Rounds an f64 reference back to the f32 inputs a kernel would be handed.
fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

impl Case {
    /// A case of `op` at `dims` with seeded inputs. The rank of `dims` must match the op's family:
    /// three for matmul (`M×N×K`), two for row-wise ops (`R×C`), one for elementwise ops (`N`).
    pub fn new(op: Op, dims: &[usize], knobs: Knobs, seed: u64) -> Result<Self> {
        let want = match op.family() {
            OpFamily::Matmul => 3,
            OpFamily::Rowwise => 2,
            OpFamily::Elementwise => 1,
        };
        if dims.len() != want {
            let form = ["N", "RxC", "MxNxK"][want - 1];
            return Err(Error::BadShape {
                op: op.name(),
                shape: dims.to_vec(),
                why: format!("{op} takes a shape {form}"),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (op.index() as u64) << 32);
        let rng = &mut rng;
        let poisoned = |n: usize| (n, None);
        let (inputs, outputs) = match op {
            Op::Matmul => {
                let (m, n, k) = (dims[0], dims[1], dims[2]);
                let c0 = (knobs.beta != 0.0).then(|| normal(rng, m * n, 0.0, 1.0));
                (vec![normal(rng, m * k, 0.25, 1.0), normal(rng, k * n, -0.125, 1.0)], vec![(m * n, c0)])
            }
            Op::Fill => (vec![], vec![poisoned(dims[0])]),
            Op::Relu | Op::Scale | Op::Narrow | Op::Widen => {
                (vec![normal(rng, dims[0], 0.1, 1.0)], vec![poisoned(dims[0])])
            }
            Op::ReluBackward | Op::Add => {
                let n = dims[0];
                (vec![normal(rng, n, 0.1, 1.0), normal(rng, n, -0.2, 1.0)], vec![poisoned(n)])
            }
            Op::ScaleBy => (vec![normal(rng, dims[0], 0.1, 1.0), vec![-1.75]], vec![poisoned(dims[0])]),
            Op::Axpy => {
                let n = dims[0];
                (vec![normal(rng, n, 0.1, 1.0)], vec![(n, Some(normal(rng, n, 1.0, 1.0)))])
            }
            Op::Adam => {
                let n = dims[0];
                let grad = normal(rng, n, 0.01, 0.1);
                let (param, m) = (normal(rng, n, 0.0, 0.5), normal(rng, n, 0.0, 0.05));
                let v = (0..n).map(|_| rng.random::<f32>() * 0.01).collect();
                (vec![grad], vec![(n, Some(param)), (n, Some(m)), (n, Some(v))])
            }
            Op::BiasAdd | Op::BiasRelu => {
                let (r, c) = (dims[0], dims[1]);
                (vec![normal(rng, r * c, 0.1, 1.0), normal(rng, c, 0.3, 0.5)], vec![poisoned(r * c)])
            }
            Op::ColSum => {
                let (r, c) = (dims[0], dims[1]);
                let y0 = knobs.accumulate.then(|| normal(rng, c, 0.0, 1.0));
                (vec![normal(rng, r * c, 0.2, 1.0)], vec![(c, y0)])
            }
            Op::Softmax | Op::LogSoftmax => {
                let (r, c) = (dims[0], dims[1]);
                (vec![logits(rng, r, c)], vec![poisoned(r * c)])
            }
            Op::SoftmaxBackward | Op::LogSoftmaxBackward => {
                let (r, c) = (dims[0], dims[1]);
                let z = logits(rng, r, c);
                let y = if op == Op::SoftmaxBackward {
                    reference::softmax(&z, r, c)
                } else {
                    reference::log_softmax(&z, r, c)
                };
                (vec![to_f32(&y.value), normal(rng, r * c, 0.1, 1.0)], vec![poisoned(r * c)])
            }
            Op::SoftmaxCrossEntropy => {
                let (r, c) = (dims[0], dims[1]);
                let labels = (0..r).map(|_| rng.random_range(0..c.max(1)) as f32).collect();
                (vec![logits(rng, r, c), labels], vec![poisoned(r), poisoned(r * c)])
            }
            Op::KlDiv => {
                let (r, c) = (dims[0], dims[1]);
                (vec![logits(rng, r, c), distributions(rng, r, c)], vec![poisoned(r), poisoned(r * c)])
            }
        };
        Ok(Self { op, dims: dims.to_vec(), knobs, inputs, outputs, precision: Precision::F32, overflows: Vec::new() })
    }

    /// The same case for a kernel of precision `p`: every input and initial output rounded to the
    /// dtype its buffer holds ([`Op::buffer_dtype`]), so that the f64 reference starts from the
    /// values the kernel gets, and the budget of `p` ([`Expected::for_precision`]).
    ///
    /// Finite values that become ±∞ on the way, in an input or in what `narrow` converts, are
    /// counted, not flushed silently: [`Case::overflows`] names each buffer and how many.
    pub fn with_precision(mut self, p: Precision) -> Self {
        let (in_names, out_names) = buffer_names(self.op);
        let mut overflows = Vec::new();
        if self.op == Op::Narrow {
            overflows.extend(p.storage.overflow_note(&self.inputs[0], "narrow of x"));
        }
        let mut round = |values: &mut Vec<f32>, name: &str| {
            let dtype = self.op.buffer_dtype(name, p.storage);
            overflows.extend(dtype.overflow_note(values, name));
            values.iter_mut().for_each(|v| *v = dtype.round(*v));
        };
        for (values, name) in self.inputs.iter_mut().zip(in_names) {
            round(values, name);
        }
        for ((_, init), name) in self.outputs.iter_mut().zip(out_names) {
            if let Some(values) = init {
                round(values, name);
            }
        }
        self.precision = p;
        self.overflows = overflows;
        self
    }

    /// What [`Case::with_precision`] found: one line per buffer whose finite values became ±∞
    /// (`narrow of x: 2 of 100 finite values are beyond f16's range (±65504) and became ±∞`).
    pub fn overflows(&self) -> &[String] {
        &self.overflows
    }

    /// The dtype of each input buffer, then of each output buffer, in the kernel's order.
    fn dtypes(&self) -> (Vec<Dtype>, Vec<Dtype>) {
        let (in_names, out_names) = buffer_names(self.op);
        let of = |names: &[&str]| names.iter().map(|n| self.op.buffer_dtype(n, self.precision.storage)).collect();
        (of(in_names), of(out_names))
    }

    /// The same case with one input value replaced (`inputs[input][at] = value`), to feed NaN or
    /// an infinity where the reference has none; out-of-range positions change nothing.
    pub fn with_input(mut self, input: usize, at: usize, value: f32) -> Self {
        if let Some(v) = self.inputs.get_mut(input).and_then(|i| i.get_mut(at)) {
            *v = value;
        }
        self
    }

    /// The input values, in the kernel's order.
    pub fn inputs(&self) -> &[Vec<f32>] {
        &self.inputs
    }

    /// What output `o` holds before the kernel runs: its initial contents when the kernel reads
    /// them, `None` when it is poisoned (NaN-filled).
    pub fn initial(&self, o: usize) -> Option<&[f32]> {
        self.outputs.get(o).and_then(|(_, init)| init.as_deref())
    }

    /// Another case of the same op, shape and knobs with inputs drawn from `seed`.
    pub fn reseeded(&self, seed: u64) -> Result<Self> {
        Ok(Self::new(self.op, &self.dims, self.knobs, seed)?.with_precision(self.precision))
    }

    /// The matmul parameters of a matmul case.
    pub fn gemm(&self) -> Gemm {
        let (m, n, k) = (self.dims[0], self.dims[1], self.dims.get(2).copied().unwrap_or(1));
        Gemm::new(m, n, k).trans(self.knobs.trans_a, self.knobs.trans_b).scaled(self.knobs.alpha, self.knobs.beta)
    }

    /// `1024x1024x1024`, with the knobs that differ from the default: `17x3x31 Aᵀ α=0.5 β=1`.
    pub fn label(&self) -> String {
        let mut s = crate::table::dims_text(&self.dims);
        let k = &self.knobs;
        if k.trans_a {
            s += " Aᵀ";
        }
        if k.trans_b {
            s += " Bᵀ";
        }
        if k.alpha != 1.0 && matches!(self.op, Op::Matmul | Op::ColSum | Op::Scale | Op::ScaleBy | Op::Axpy | Op::Fill)
        {
            s += &format!(" α={}", k.alpha);
        }
        if k.beta != 0.0 {
            s += &format!(" β={}", k.beta);
        }
        if k.accumulate {
            s += " accumulate";
        }
        s
    }

    /// Floating-point operations of one launch ([`Op::cost`]): `2·M·N·K` for matmul.
    pub fn flops(&self) -> f64 {
        self.cost().flops
    }

    /// The least traffic one launch needs ([`Op::cost`]): every input read once, every output
    /// written once (and read too when the kernel accumulates into it).
    pub fn bytes(&self) -> f64 {
        self.cost().bytes
    }

    /// [`Op::cost`] of this case: an output with initial contents is one the kernel adds into.
    fn cost(&self) -> kernelab_tensor::LaunchCost {
        self.op.cost_as(&self.dims, self.outputs.iter().any(|(_, init)| init.is_some()), self.precision.storage)
    }

    /// Bytes of every input and output: what one launch keeps in cache between launches.
    pub fn working_set(&self) -> f64 {
        let values: usize =
            self.inputs.iter().map(Vec::len).sum::<usize>() + self.outputs.iter().map(|(n, _)| n).sum::<usize>();
        self.precision.storage.bytes() as f64 * values as f64
    }

    /// The f64 reference of every output, in the kernel's order, with the budget of the case's
    /// precision.
    pub fn expected(&self) -> Vec<Expected> {
        let (_, out_dtypes) = self.dtypes();
        let f32_budget = self.expected_f32();
        f32_budget.into_iter().zip(out_dtypes).map(|(e, out)| e.for_precision(self.precision, out)).collect()
    }

    /// The f64 reference with the budget of an f32 kernel.
    fn expected_f32(&self) -> Vec<Expected> {
        let ins = &self.inputs;
        let init = |i: usize| self.outputs[i].1.as_deref().unwrap_or(&[]);
        let (k, n) = (&self.knobs, self.dims.iter().product::<usize>());
        let (rows, cols) = (self.dims[0], self.dims.get(1).copied().unwrap_or(1));
        match self.op {
            Op::Matmul => vec![reference::matmul(&ins[0], &ins[1], init(0), &self.gemm())],
            Op::Fill => vec![reference::fill(n, k.alpha)],
            Op::Relu => vec![reference::relu(&ins[0])],
            Op::ReluBackward => vec![reference::relu_backward(&ins[0], &ins[1])],
            Op::BiasAdd => vec![reference::bias_add(&ins[0], &ins[1], cols, false)],
            Op::BiasRelu => vec![reference::bias_add(&ins[0], &ins[1], cols, true)],
            Op::ColSum => vec![reference::col_sum(&ins[0], init(0), rows, cols, k.alpha, k.accumulate)],
            Op::Softmax => vec![reference::softmax(&ins[0], rows, cols)],
            Op::LogSoftmax => vec![reference::log_softmax(&ins[0], rows, cols)],
            Op::SoftmaxBackward => vec![reference::softmax_backward(&ins[0], &ins[1], rows, cols)],
            Op::LogSoftmaxBackward => vec![reference::log_softmax_backward(&ins[0], &ins[1], rows, cols)],
            Op::SoftmaxCrossEntropy => {
                let (loss, grad) = reference::softmax_cross_entropy(&ins[0], &ins[1], rows, cols);
                vec![loss, grad]
            }
            Op::KlDiv => {
                let (loss, grad) = reference::kl_div(&ins[0], &ins[1], rows, cols, KL_TEMPERATURE);
                vec![loss, grad]
            }
            Op::Add => vec![reference::add(&ins[0], &ins[1])],
            Op::Scale => vec![reference::scale(&ins[0], f64::from(k.alpha))],
            Op::ScaleBy => vec![reference::scale(&ins[0], f64::from(k.alpha) * f64::from(ins[1][0]))],
            Op::Axpy => vec![reference::axpy(k.alpha, &ins[0], init(0))],
            Op::Adam => reference::adam(init(0), &ins[0], init(1), init(2), &ADAM).into(),
            Op::Narrow | Op::Widen => vec![reference::convert(&ins[0], self.precision.storage)],
        }
    }

    /// Uploads the inputs to `device` and allocates the outputs, poisoned.
    pub fn prepare(&self, device: &Device) -> Result<Prepared<'_>> {
        let (in_dtypes, out_dtypes) = self.dtypes();
        let ins = self.inputs.iter().zip(in_dtypes).map(|(v, d)| device.upload_as(v, d)).collect::<Result<Vec<_>>>()?;
        let outs = self
            .outputs
            .iter()
            .zip(out_dtypes)
            .map(|((n, _), d)| device.alloc_as(*n, d))
            .collect::<Result<Vec<_>>>()?;
        let mut prepared = Prepared { case: self, device: device.clone(), ins, outs };
        prepared.reset_outputs()?;
        Ok(prepared)
    }
}

/// The names of `op`'s inputs and outputs in a case's order: the field names of its [`Kernel`].
pub fn buffer_names(op: Op) -> (&'static [&'static str], &'static [&'static str]) {
    match op {
        Op::Fill => (&[], &["y"]),
        Op::Matmul => (&["a", "b"], &["c"]),
        Op::Relu | Op::Scale | Op::Axpy | Op::Narrow | Op::Widen => (&["x"], &["y"]),
        Op::ReluBackward => (&["x", "dy"], &["dx"]),
        Op::Add => (&["a", "b"], &["y"]),
        Op::ScaleBy => (&["x", "s"], &["y"]),
        Op::Adam => (&["grad"], &["param", "m", "v"]),
        Op::BiasAdd | Op::BiasRelu => (&["x", "bias"], &["y"]),
        Op::ColSum | Op::Softmax | Op::LogSoftmax => (&["x"], &["y"]),
        Op::SoftmaxBackward | Op::LogSoftmaxBackward => (&["y", "dy"], &["dx"]),
        Op::SoftmaxCrossEntropy => (&["logits", "labels"], &["loss", "grad"]),
        Op::KlDiv => (&["logits", "target"], &["loss", "grad"]),
    }
}

/// A case on a device: its inputs uploaded, its outputs allocated.
pub struct Prepared<'c> {
    case: &'c Case,
    device: Device,
    ins: Vec<Box<dyn DeviceBuffer>>,
    outs: Vec<Box<dyn DeviceBuffer>>,
}

impl Prepared<'_> {
    /// Fills every output with NaN, or with its initial contents when the kernel reads it, so an
    /// element the kernel fails to write cannot pass.
    pub fn reset_outputs(&mut self) -> Result<()> {
        self.reset_outputs_from(self.case)
    }

    /// [`Prepared::reset_outputs`] with the initial contents of `case`, a case of the same op,
    /// shape and knobs (see [`Case::reseeded`]).
    pub fn reset_outputs_from(&mut self, case: &Case) -> Result<()> {
        self.same_work(case)?;
        for (buf, (n, init)) in self.outs.iter_mut().zip(&case.outputs) {
            match init {
                Some(values) => self.device.write(&mut **buf, values)?,
                None => self.device.write(&mut **buf, &vec![f32::NAN; *n])?,
            }
        }
        Ok(())
    }

    /// The starting values of `case` in the outputs the op reads (see [`Case::initial`]), and
    /// `stale` (what they held before, one vector per output) in the others.
    pub fn reset_outputs_to_stale(&mut self, case: &Case, stale: &[Vec<f32>]) -> Result<()> {
        self.same_work(case)?;
        for ((buf, (_, init)), old) in self.outs.iter_mut().zip(&case.outputs).zip(stale) {
            self.device.write(&mut **buf, init.as_deref().unwrap_or(old))?;
        }
        Ok(())
    }

    /// Overwrites the inputs on the device with those of `case`, a case of the same op, shape and
    /// knobs: fresh inputs in the same buffers, so a kernel that remembers its buffers cannot
    /// answer from memory.
    pub fn write_inputs(&mut self, case: &Case) -> Result<()> {
        self.same_work(case)?;
        for (buf, values) in self.ins.iter_mut().zip(&case.inputs) {
            self.device.write(&mut **buf, values)?;
        }
        Ok(())
    }

    /// Every input as the device holds it now (waits for the kernel).
    pub fn read_inputs(&self) -> Result<Vec<Vec<f32>>> {
        self.ins.iter().map(|b| self.device.download(&**b)).collect()
    }

    /// What the device's guard zones say about every buffer of the launch, by the buffer's name:
    /// `c: 3 values after the end changed (first at +0)` (see
    /// [`Device::guard_violation`]); empty when every guard is intact or the device keeps none.
    pub fn guard_violations(&self) -> Result<Vec<String>> {
        let (in_names, out_names) = buffer_names(self.case.op);
        let buffers = self.ins.iter().zip(in_names).chain(self.outs.iter().zip(out_names));
        let mut found = Vec::new();
        for (buf, name) in buffers {
            if let Some(what) = self.device.guard_violation(&**buf)? {
                found.push(format!("{name}: {what}"));
            }
        }
        Ok(found)
    }

    /// `case` must be this case's work with other values.
    fn same_work(&self, case: &Case) -> Result<()> {
        let mine = self.case;
        if (case.op, &case.dims, case.knobs, case.precision) == (mine.op, &mine.dims, mine.knobs, mine.precision) {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: mine.op.name(),
            why: format!("internal: the buffers hold {}, not {} {}", mine.label(), case.op, case.label()),
        })
    }

    /// Launches the case's kernel once with `variant` (or the default) and does not wait.
    pub fn launch(&mut self, variant: Option<&str>) -> Result<()> {
        let case = self.case;
        let (k, rows) = (&case.knobs, case.dims[0]);
        let cols = case.dims.get(1).copied().unwrap_or(1);
        let ins: Vec<&dyn DeviceBuffer> = self.ins.iter().map(|b| &**b).collect();
        let mut outs = self.outs.iter_mut().map(|b| &mut **b);
        let mut out = || outs.next().ok_or_else(|| internal(case));
        let kernel = match case.op {
            Op::Fill => Kernel::Fill { y: out()?, value: k.alpha },
            Op::Matmul => Kernel::Matmul { a: ins[0], b: ins[1], c: out()?, gemm: case.gemm() },
            Op::BiasAdd => Kernel::BiasAdd { x: ins[0], bias: ins[1], y: out()?, rows, cols },
            Op::BiasRelu => Kernel::BiasRelu { x: ins[0], bias: ins[1], y: out()?, rows, cols },
            Op::ColSum => Kernel::ColSum { x: ins[0], y: out()?, rows, cols, alpha: k.alpha, accumulate: k.accumulate },
            Op::Relu => Kernel::Relu { x: ins[0], y: out()? },
            Op::ReluBackward => Kernel::ReluBackward { x: ins[0], dy: ins[1], dx: out()? },
            Op::Softmax => Kernel::Softmax { x: ins[0], y: out()?, rows, cols },
            Op::SoftmaxBackward => Kernel::SoftmaxBackward { y: ins[0], dy: ins[1], dx: out()?, rows, cols },
            Op::LogSoftmax => Kernel::LogSoftmax { x: ins[0], y: out()?, rows, cols },
            Op::LogSoftmaxBackward => Kernel::LogSoftmaxBackward { y: ins[0], dy: ins[1], dx: out()?, rows, cols },
            Op::SoftmaxCrossEntropy => {
                Kernel::SoftmaxCrossEntropy { logits: ins[0], labels: ins[1], loss: out()?, grad: out()?, rows, cols }
            }
            Op::KlDiv => Kernel::KlDiv {
                logits: ins[0],
                target: ins[1],
                loss: out()?,
                grad: out()?,
                rows,
                cols,
                temperature: KL_TEMPERATURE,
            },
            Op::Add => Kernel::Add { a: ins[0], b: ins[1], y: out()? },
            Op::Scale => Kernel::Scale { x: ins[0], alpha: k.alpha, y: out()? },
            Op::ScaleBy => Kernel::ScaleBy { x: ins[0], s: ins[1], alpha: k.alpha, y: out()? },
            Op::Axpy => Kernel::Axpy { alpha: k.alpha, x: ins[0], y: out()? },
            Op::Adam => Kernel::Adam { param: out()?, grad: ins[0], m: out()?, v: out()?, step: ADAM },
            Op::Narrow => Kernel::Narrow { x: ins[0], y: out()? },
            Op::Widen => Kernel::Widen { x: ins[0], y: out()? },
        };
        self.device.launch(kernel, variant)
    }

    /// Every output, downloaded (which waits for the kernel).
    pub fn outputs(&self) -> Result<Vec<Vec<f32>>> {
        self.outs.iter().map(|b| self.device.download(&**b)).collect()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

fn internal(case: &Case) -> Error {
    Error::InvalidArgument { op: case.op.name(), why: "internal: the case has fewer outputs than its kernel".into() }
}
