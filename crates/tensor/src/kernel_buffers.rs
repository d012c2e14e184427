//! The buffers of a [`Kernel`] by name and role, and the dtype rule every launch obeys: `narrow`
//! reads f32 and writes a narrow dtype, `widen` the other way round, and every other op's float
//! buffers share one dtype, its [storage](Kernel::storage) (the `labels` of
//! `softmax_cross_entropy` are class indices and stay f32). Backends that run a narrow launch
//! through f32 code use [`Kernel::inputs`], [`Kernel::outputs`] and [`Kernel::rebind`] instead
//! of a match per op.

use arrayvec::ArrayVec;

use crate::{DeviceBuffer, Dtype, Error, Kernel, Op, Result};

/// At most this many buffers are read, or written, by one launch (Adam writes three).
const MAX_BUFFERS: usize = 3;

/// A launch's buffers, held inline: every launch checks them, and a warm training step or
/// inference call takes nothing from the allocator.
pub type Buffers<T> = ArrayVec<T, MAX_BUFFERS>;

impl Op {
    /// The dtype of the buffer `name` (a field of its [`Kernel`]) in a launch of storage
    /// `storage`: `narrow`'s `x` and `widen`'s `y` and the `labels` of `softmax_cross_entropy`
    /// are f32, every other buffer is `storage`'s [buffer type](Dtype::buffer) (f32 for TF32).
    pub fn buffer_dtype(self, name: &str, storage: Dtype) -> Dtype {
        match (self, name) {
            (Op::Narrow, "x") | (Op::Widen, "y") | (Op::SoftmaxCrossEntropy, "labels") => Dtype::F32,
            _ => storage.buffer(),
        }
    }
}

/// A [`Buffers`] of these elements (at most [`MAX_BUFFERS`]).
macro_rules! buffers {
    ($($b:expr),* $(,)?) => {{
        let mut held = Buffers::new();
        $(held.push($b);)*
        held
    }};
}

/// The one list of the buffers each kind of launch writes, in order, for [`Kernel::outputs`] and
/// [`Kernel::into_outputs`]: `written!(kernel, reads, |name, buffer, read| expr)` matches `kernel`
/// (by reference or by value, and the bindings follow) and makes a [`Buffers`] of `expr` for each
/// written buffer, with `name` its field's name and `read` whether the launch also reads it
/// (`reads`, the launch's [accumulate](Kernel::accumulates) flag, where that decides it).
macro_rules! written {
    ($kernel:expr, $reads:expr, |$name:tt, $buffer:tt, $read:tt| $make:expr) => {{
        // One written buffer: `$make` with the closure-like parameters bound to it.
        macro_rules! each {
            ($field:literal, $value:expr, $flag:expr) => {{
                let ($name, $buffer, $read) = ($field, $value, $flag);
                $make
            }};
        }
        match $kernel {
            Kernel::Fill { y, .. }
            | Kernel::BiasAdd { y, .. }
            | Kernel::BiasRelu { y, .. }
            | Kernel::Relu { y, .. }
            | Kernel::Softmax { y, .. }
            | Kernel::LogSoftmax { y, .. }
            | Kernel::Add { y, .. }
            | Kernel::Scale { y, .. }
            | Kernel::ScaleBy { y, .. }
            | Kernel::Narrow { y, .. }
            | Kernel::Widen { y, .. } => buffers![each!("y", y, false)],
            Kernel::ColSum { y, .. } => buffers![each!("y", y, $reads)],
            Kernel::Axpy { y, .. } => buffers![each!("y", y, true)],
            Kernel::Matmul { c, .. } => buffers![each!("c", c, $reads)],
            Kernel::ReluBackward { dx, .. }
            | Kernel::SoftmaxBackward { dx, .. }
            | Kernel::LogSoftmaxBackward { dx, .. } => buffers![each!("dx", dx, false)],
            Kernel::SoftmaxCrossEntropy { loss, grad, .. } | Kernel::KlDiv { loss, grad, .. } => {
                buffers![each!("loss", loss, false), each!("grad", grad, false)]
            }
            Kernel::Adam { param, m, v, .. } => {
                buffers![each!("param", param, true), each!("m", m, true), each!("v", v, true)]
            }
        }
    }};
}

/// A buffer a launch writes: its name, the buffer, and whether the launch reads it too
/// (accumulating or in-place).
pub type Written<'k> = (&'static str, &'k dyn DeviceBuffer, bool);

impl<'a> Kernel<'a> {
    /// The buffers the launch only reads, by name, in the order [`Kernel::rebind`] takes them.
    pub fn inputs(&self) -> Buffers<(&'static str, &dyn DeviceBuffer)> {
        match self {
            Kernel::Fill { .. } => Buffers::new(),
            Kernel::Matmul { a, b, .. } | Kernel::Add { a, b, .. } => buffers![("a", *a), ("b", *b)],
            Kernel::BiasAdd { x, bias, .. } | Kernel::BiasRelu { x, bias, .. } => buffers![("x", *x), ("bias", *bias)],
            Kernel::ColSum { x, .. }
            | Kernel::Relu { x, .. }
            | Kernel::Softmax { x, .. }
            | Kernel::LogSoftmax { x, .. }
            | Kernel::Scale { x, .. }
            | Kernel::Axpy { x, .. }
            | Kernel::Narrow { x, .. }
            | Kernel::Widen { x, .. } => buffers![("x", *x)],
            Kernel::ReluBackward { x, dy, .. } => buffers![("x", *x), ("dy", *dy)],
            Kernel::SoftmaxBackward { y, dy, .. } | Kernel::LogSoftmaxBackward { y, dy, .. } => {
                buffers![("y", *y), ("dy", *dy)]
            }
            Kernel::SoftmaxCrossEntropy { logits, labels, .. } => buffers![("logits", *logits), ("labels", *labels)],
            Kernel::KlDiv { logits, target, .. } => buffers![("logits", *logits), ("target", *target)],
            Kernel::ScaleBy { x, s, .. } => buffers![("x", *x), ("s", *s)],
            Kernel::Adam { grad, .. } => buffers![("grad", *grad)],
        }
    }

    /// The buffers the launch writes, by name, in the order [`Kernel::rebind`] takes them.
    pub fn outputs(&self) -> Buffers<Written<'_>> {
        let reads = self.accumulates();
        written!(self, reads, |name, buffer, read| (name, &**buffer, read))
    }

    /// The written buffers, in the order of [`Kernel::outputs`], for writing.
    pub fn into_outputs(self) -> Buffers<&'a mut dyn DeviceBuffer> {
        written!(self, false, |_, buffer, _| buffer)
    }

    /// The same launch (op and parameters) over other buffers: `inputs` in the order of
    /// [`Kernel::inputs`], `outputs` in the order of [`Kernel::outputs`]. Too few buffers is an
    /// error naming the op.
    pub fn rebind<'b>(
        &self,
        inputs: &[&'b dyn DeviceBuffer],
        outputs: Vec<&'b mut dyn DeviceBuffer>,
    ) -> Result<Kernel<'b>> {
        let op = self.op().name();
        let short = || Error::InvalidArgument { op, why: "internal: rebind was given too few buffers".into() };
        let i = |n: usize| inputs.get(n).copied().ok_or_else(short);
        let mut outs = outputs.into_iter();
        let mut o = move || outs.next().ok_or_else(short);
        Ok(match *self {
            Kernel::Fill { value, .. } => Kernel::Fill { y: o()?, value },
            Kernel::Matmul { gemm, .. } => Kernel::Matmul { a: i(0)?, b: i(1)?, c: o()?, gemm },
            Kernel::BiasAdd { rows, cols, .. } => Kernel::BiasAdd { x: i(0)?, bias: i(1)?, y: o()?, rows, cols },
            Kernel::BiasRelu { rows, cols, .. } => Kernel::BiasRelu { x: i(0)?, bias: i(1)?, y: o()?, rows, cols },
            Kernel::ColSum { rows, cols, alpha, accumulate, .. } => {
                Kernel::ColSum { x: i(0)?, y: o()?, rows, cols, alpha, accumulate }
            }
            Kernel::Relu { .. } => Kernel::Relu { x: i(0)?, y: o()? },
            Kernel::ReluBackward { .. } => Kernel::ReluBackward { x: i(0)?, dy: i(1)?, dx: o()? },
            Kernel::Softmax { rows, cols, .. } => Kernel::Softmax { x: i(0)?, y: o()?, rows, cols },
            Kernel::SoftmaxBackward { rows, cols, .. } => {
                Kernel::SoftmaxBackward { y: i(0)?, dy: i(1)?, dx: o()?, rows, cols }
            }
            Kernel::LogSoftmax { rows, cols, .. } => Kernel::LogSoftmax { x: i(0)?, y: o()?, rows, cols },
            Kernel::LogSoftmaxBackward { rows, cols, .. } => {
                Kernel::LogSoftmaxBackward { y: i(0)?, dy: i(1)?, dx: o()?, rows, cols }
            }
            Kernel::SoftmaxCrossEntropy { rows, cols, .. } => {
                Kernel::SoftmaxCrossEntropy { logits: i(0)?, labels: i(1)?, loss: o()?, grad: o()?, rows, cols }
            }
            Kernel::KlDiv { rows, cols, temperature, .. } => {
                Kernel::KlDiv { logits: i(0)?, target: i(1)?, loss: o()?, grad: o()?, rows, cols, temperature }
            }
            Kernel::Add { .. } => Kernel::Add { a: i(0)?, b: i(1)?, y: o()? },
            Kernel::Scale { alpha, .. } => Kernel::Scale { x: i(0)?, alpha, y: o()? },
            Kernel::ScaleBy { alpha, .. } => Kernel::ScaleBy { x: i(0)?, s: i(1)?, alpha, y: o()? },
            Kernel::Axpy { alpha, .. } => Kernel::Axpy { alpha, x: i(0)?, y: o()? },
            Kernel::Adam { step, .. } => Kernel::Adam { param: o()?, grad: i(0)?, m: o()?, v: o()?, step },
            Kernel::Narrow { .. } => Kernel::Narrow { x: i(0)?, y: o()? },
            Kernel::Widen { .. } => Kernel::Widen { x: i(0)?, y: o()? },
        })
    }

    /// The dtype the launch stores values in, which picks the variants that can run it: the
    /// output's for `narrow`, the input's for `widen`, otherwise the first written buffer's.
    pub fn storage(&self) -> Dtype {
        match self {
            Kernel::Widen { x, .. } => x.dtype(),
            _ => self.outputs().first().map_or(Dtype::F32, |(_, b, _)| b.dtype()),
        }
    }

    /// The dtype rule (module doc): a mix is [`Error::DtypeMismatch`] naming every buffer's dtype.
    pub fn check_dtypes(&self) -> Result<()> {
        let op = self.op();
        let mut buffers: ArrayVec<(&'static str, &dyn DeviceBuffer), { 2 * MAX_BUFFERS }> = ArrayVec::new();
        buffers.extend(self.inputs());
        buffers.extend(self.outputs().into_iter().map(|(name, b, _)| (name, b)));
        let storage = self.storage();
        let conversion = matches!(op, Op::Narrow | Op::Widen);
        let wrong = (conversion && !storage.is_narrow())
            || buffers.iter().any(|&(name, b)| b.dtype() != op.buffer_dtype(name, storage));
        if !wrong {
            return Ok(());
        }
        let found = buffers.iter().map(|(name, b)| format!("{name} is {}", b.dtype())).collect::<Vec<_>>().join(", ");
        let why = match op {
            Op::Narrow => "narrow reads an f32 x and writes a bf16 or f16 y".to_string(),
            Op::Widen => "widen reads a bf16 or f16 x and writes an f32 y".to_string(),
            Op::SoftmaxCrossEntropy => {
                "labels are f32 class indices; logits, loss and grad share one dtype".to_string()
            }
            _ => format!("every buffer of {op} must hold one dtype (convert with narrow or widen)"),
        };
        Err(Error::DtypeMismatch { op: op.name(), found, why })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdamStep, Gemm};

    /// A stand-in buffer known by its length.
    #[derive(Debug)]
    struct Fake(usize);

    impl DeviceBuffer for Fake {
        fn len(&self) -> usize {
            self.0
        }
    }

    /// `(name, length, read)` of each written buffer, and the lengths `into_outputs` hands back.
    fn written(kernel: Kernel<'_>) -> (Vec<(&'static str, usize, bool)>, Vec<usize>) {
        let named = kernel.outputs().into_iter().map(|(name, b, read)| (name, b.len(), read)).collect();
        (named, kernel.into_outputs().into_iter().map(|b| b.len()).collect())
    }

    #[test]
    fn outputs_and_into_outputs_name_the_same_buffers_in_the_same_order() {
        let (a, b, mut c) = (Fake(1), Fake(2), Fake(3));
        let gemm = Gemm::new(1, 1, 1);
        let plain = Kernel::Matmul { a: &a, b: &b, c: &mut c, gemm };
        assert_eq!(written(plain), (vec![("c", 3, false)], vec![3]));
        let accumulating = Kernel::Matmul { a: &a, b: &b, c: &mut c, gemm: gemm.scaled(1.0, 1.0) };
        assert_eq!(written(accumulating), (vec![("c", 3, true)], vec![3]));

        let (mut loss, mut grad) = (Fake(4), Fake(5));
        let sce =
            Kernel::SoftmaxCrossEntropy { logits: &a, labels: &b, loss: &mut loss, grad: &mut grad, rows: 1, cols: 1 };
        assert_eq!(written(sce), (vec![("loss", 4, false), ("grad", 5, false)], vec![4, 5]));

        let (mut param, mut m, mut v) = (Fake(6), Fake(7), Fake(8));
        let step = AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
        let adam = Kernel::Adam { param: &mut param, grad: &a, m: &mut m, v: &mut v, step };
        assert_eq!(written(adam), (vec![("param", 6, true), ("m", 7, true), ("v", 8, true)], vec![6, 7, 8]));

        let axpy = Kernel::Axpy { alpha: 2.0, x: &a, y: &mut c };
        assert_eq!(written(axpy), (vec![("y", 3, true)], vec![3]));
        let col_sum = Kernel::ColSum { x: &a, y: &mut c, rows: 1, cols: 1, alpha: 1.0, accumulate: true };
        assert_eq!(written(col_sum), (vec![("y", 3, true)], vec![3]));
        let relu_backward = Kernel::ReluBackward { x: &a, dy: &b, dx: &mut c };
        assert_eq!(written(relu_backward), (vec![("dx", 3, false)], vec![3]));
    }
}
