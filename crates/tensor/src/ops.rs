//! Tensor operations without a tape: each checks shapes and devices, allocates the output and
//! launches one kernel with the device's default (or preferred) variant. The [`Tape`](crate::Tape)
//! records these same calls.

use crate::{AdamStep, Dtype, Error, Gemm, Kernel, Labels, Result, Shape, Tensor};

impl Tensor {
    /// A new tensor of `shape` in this tensor's dtype on its device, written by `kernel(out)`.
    fn produce(&self, shape: Shape, kernel: impl FnOnce(&mut dyn crate::DeviceBuffer) -> Result<()>) -> Result<Tensor> {
        let mut out = self.device().alloc_as(shape.numel(), self.dtype())?;
        kernel(&mut *out)?;
        Tensor::from_buffer(out, shape, self.device())
    }

    /// An error unless `other` lives on this tensor's device.
    pub(crate) fn same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device().same_as(other.device()) {
            Ok(())
        } else {
            Err(Error::WrongDevice { op, lhs: self.device().to_string(), rhs: other.device().to_string() })
        }
    }

    /// An error unless `other` has this tensor's shape.
    pub(crate) fn same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        self.same_device(op, other)?;
        if self.shape() == other.shape() {
            Ok(())
        } else {
            Err(Error::ShapeMismatch { op, lhs: self.shape(), rhs: other.shape(), why: "shapes must be equal".into() })
        }
    }

    /// The matrix product `self · rhs` of an `m × k` and a `k × n` matrix.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) · op(rhs)`, where `op` transposes when its flag is set, without materializing
    /// the transpose: with `trans_a`, `self` is `k × m`; with `trans_b`, `rhs` is `n × k`.
    pub fn matmul_t(&self, rhs: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        let gemm = gemm_for("matmul", self, rhs, trans_a, trans_b)?;
        let (a, b) = (self.read("matmul")?, rhs.read("matmul")?);
        self.produce(Shape::matrix(gemm.m, gemm.n), |c| {
            self.device().launch(Kernel::Matmul { a: &**a, b: &**b, c, gemm }, None)
        })
    }

    /// `out ← α·op(self)·op(rhs) + β·out`, in place on `out` (an accumulating product).
    pub fn matmul_into_(
        &self,
        rhs: &Tensor,
        trans_a: bool,
        trans_b: bool,
        alpha: f32,
        beta: f32,
        out: &Tensor,
    ) -> Result<()> {
        let gemm = gemm_for("matmul", self, rhs, trans_a, trans_b)?.scaled(alpha, beta);
        self.same_device("matmul", out)?;
        if out.shape() != Shape::matrix(gemm.m, gemm.n) {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: out.shape(),
                rhs: Shape::matrix(gemm.m, gemm.n),
                why: "the output must have the product's shape".into(),
            });
        }
        let (a, b, mut c) = (self.read("matmul")?, rhs.read("matmul")?, out.write("matmul")?);
        self.device().launch(Kernel::Matmul { a: &**a, b: &**b, c: &mut **c, gemm }, None)
    }

    /// `max(0, x)` elementwise.
    pub fn relu(&self) -> Result<Tensor> {
        let x = self.read("relu")?;
        self.produce(self.shape(), |y| self.device().launch(Kernel::Relu { x: &**x, y }, None))
    }

    /// `dy · [self > 0]`: the gradient of ReLU at `self` given the output gradient `dy`.
    pub fn relu_backward(&self, dy: &Tensor) -> Result<Tensor> {
        self.same_shape("relu_backward", dy)?;
        let (x, dy) = (self.read("relu_backward")?, dy.read("relu_backward")?);
        self.produce(self.shape(), |dx| self.device().launch(Kernel::ReluBackward { x: &**x, dy: &**dy, dx }, None))
    }

    /// `self[r, c] + bias[c]` for a matrix-like `self` (`rows × cols`) and a bias of `cols`.
    pub fn bias_add(&self, bias: &Tensor) -> Result<Tensor> {
        let (rows, cols) = bias_dims("bias_add", self, bias)?;
        let (x, b) = (self.read("bias_add")?, bias.read("bias_add")?);
        self.produce(self.shape(), |y| {
            self.device().launch(Kernel::BiasAdd { x: &**x, bias: &**b, y, rows, cols }, None)
        })
    }

    /// `max(0, self[r, c] + bias[c])` in one kernel.
    pub fn bias_relu(&self, bias: &Tensor) -> Result<Tensor> {
        let (rows, cols) = bias_dims("bias_relu", self, bias)?;
        let (x, b) = (self.read("bias_relu")?, bias.read("bias_relu")?);
        self.produce(self.shape(), |y| {
            self.device().launch(Kernel::BiasRelu { x: &**x, bias: &**b, y, rows, cols }, None)
        })
    }

    /// `α·Σ_r self[r, c]`: the column sums of a matrix-like tensor, a vector of `cols`.
    pub fn col_sum(&self, alpha: f32) -> Result<Tensor> {
        let (rows, cols) = self.shape().rows_cols();
        let x = self.read("col_sum")?;
        self.produce(Shape::vector(cols), |y| {
            self.device().launch(Kernel::ColSum { x: &**x, y, rows, cols, alpha, accumulate: false }, None)
        })
    }

    /// The sum of all elements, a scalar.
    pub fn sum(&self) -> Result<Tensor> {
        self.total("sum", 1.0)
    }

    /// The mean of all elements, a scalar.
    pub fn mean(&self) -> Result<Tensor> {
        self.total("mean", 1.0 / self.numel() as f32)
    }

    fn total(&self, op: &'static str, alpha: f32) -> Result<Tensor> {
        let x = self.read(op)?;
        let rows = self.numel();
        self.produce(Shape::scalar(), |y| {
            self.device().launch(Kernel::ColSum { x: &**x, y, rows, cols: 1, alpha, accumulate: false }, None)
        })
    }

    /// Row-wise softmax over the last dimension, numerically stable.
    pub fn softmax(&self) -> Result<Tensor> {
        let (rows, cols) = self.shape().rows_cols();
        let x = self.read("softmax")?;
        self.produce(self.shape(), |y| self.device().launch(Kernel::Softmax { x: &**x, y, rows, cols }, None))
    }

    /// `y ⊙ (dy − Σ_c dy·y)` per row, where `self` is the softmax output `y`.
    pub fn softmax_backward(&self, dy: &Tensor) -> Result<Tensor> {
        self.same_shape("softmax_backward", dy)?;
        let (rows, cols) = self.shape().rows_cols();
        let (y, dy) = (self.read("softmax_backward")?, dy.read("softmax_backward")?);
        self.produce(self.shape(), |dx| {
            self.device().launch(Kernel::SoftmaxBackward { y: &**y, dy: &**dy, dx, rows, cols }, None)
        })
    }

    /// Row-wise log-softmax over the last dimension.
    pub fn log_softmax(&self) -> Result<Tensor> {
        let (rows, cols) = self.shape().rows_cols();
        let x = self.read("log_softmax")?;
        self.produce(self.shape(), |y| self.device().launch(Kernel::LogSoftmax { x: &**x, y, rows, cols }, None))
    }

    /// `dy − exp(y)·Σ_c dy` per row, where `self` is the log-softmax output `y`.
    pub fn log_softmax_backward(&self, dy: &Tensor) -> Result<Tensor> {
        self.same_shape("log_softmax_backward", dy)?;
        let (rows, cols) = self.shape().rows_cols();
        let (y, dy) = (self.read("log_softmax_backward")?, dy.read("log_softmax_backward")?);
        self.produce(self.shape(), |dx| {
            self.device().launch(Kernel::LogSoftmaxBackward { y: &**y, dy: &**dy, dx, rows, cols }, None)
        })
    }

    /// Fused softmax + cross-entropy from logits (`rows × classes`) and labels: the per-row losses
    /// (a vector of `rows`) and the gradient of their mean with respect to the logits.
    pub fn softmax_cross_entropy(&self, labels: &Labels) -> Result<(Tensor, Tensor)> {
        let (rows, cols) = self.shape().as_matrix("softmax_cross_entropy")?;
        self.same_device("softmax_cross_entropy", labels.tensor())?;
        if labels.len() != rows || labels.classes() != cols {
            return Err(Error::ShapeMismatch {
                op: "softmax_cross_entropy",
                lhs: self.shape(),
                rhs: Shape::matrix(labels.len(), labels.classes()),
                why: format!("{} labels over {} classes do not fit these logits", labels.len(), labels.classes()),
            });
        }
        let (z, l) = (self.read("softmax_cross_entropy")?, labels.tensor().read("softmax_cross_entropy")?);
        let device = self.device();
        let (mut loss, mut grad) = (device.alloc_as(rows, self.dtype())?, device.alloc_as(rows * cols, self.dtype())?);
        let kernel =
            Kernel::SoftmaxCrossEntropy { logits: &**z, labels: &**l, loss: &mut *loss, grad: &mut *grad, rows, cols };
        device.launch(kernel, None)?;
        Ok((Tensor::from_buffer(loss, Shape::vector(rows), device)?, Tensor::from_buffer(grad, self.shape(), device)?))
    }

    /// Fused KL divergence `KL(q ‖ softmax(self/T))` per row against soft targets `q` (each row a
    /// distribution), and the gradient of the mean over rows with respect to `self`.
    pub fn kl_div(&self, target: &Tensor, temperature: f32) -> Result<(Tensor, Tensor)> {
        self.same_shape("kl_div", target)?;
        let (rows, cols) = self.shape().as_matrix("kl_div")?;
        let (z, q) = (self.read("kl_div")?, target.read("kl_div")?);
        let device = self.device();
        let (mut loss, mut grad) = (device.alloc_as(rows, self.dtype())?, device.alloc_as(rows * cols, self.dtype())?);
        let kernel =
            Kernel::KlDiv { logits: &**z, target: &**q, loss: &mut *loss, grad: &mut *grad, rows, cols, temperature };
        device.launch(kernel, None)?;
        Ok((Tensor::from_buffer(loss, Shape::vector(rows), device)?, Tensor::from_buffer(grad, self.shape(), device)?))
    }

    /// `self + rhs`, elementwise, equal shapes.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.same_shape("add", rhs)?;
        let (a, b) = (self.read("add")?, rhs.read("add")?);
        self.produce(self.shape(), |y| self.device().launch(Kernel::Add { a: &**a, b: &**b, y }, None))
    }

    /// `α·self`.
    pub fn scale(&self, alpha: f32) -> Result<Tensor> {
        let x = self.read("scale")?;
        self.produce(self.shape(), |y| self.device().launch(Kernel::Scale { x: &**x, alpha, y }, None))
    }

    /// `α·s·self` for a one-element tensor `s` that stays on the device.
    pub fn scale_by(&self, s: &Tensor, alpha: f32) -> Result<Tensor> {
        self.same_device("scale_by", s)?;
        if s.numel() != 1 {
            return Err(Error::NotScalar(s.shape()));
        }
        let (x, s) = (self.read("scale_by")?, s.read("scale_by")?);
        self.produce(self.shape(), |y| self.device().launch(Kernel::ScaleBy { x: &**x, s: &**s, alpha, y }, None))
    }

    /// `self ← self + α·x`, in place.
    pub fn axpy_(&self, alpha: f32, x: &Tensor) -> Result<()> {
        self.same_shape("axpy", x)?;
        let (x, mut y) = (x.read("axpy")?, self.write("axpy")?);
        self.device().launch(Kernel::Axpy { alpha, x: &**x, y: &mut **y }, None)
    }

    /// A copy stored as `dtype`: the `narrow` op (f32 to a narrow dtype, to nearest even), the
    /// `widen` op (back to f32, exact), or a plain copy when the dtype is already `dtype`.
    /// Narrow to narrow goes through f32 (both steps are exact or a single rounding).
    pub fn to_dtype(&self, dtype: Dtype) -> Result<Tensor> {
        let from = self.dtype();
        if from == dtype {
            return self.scale(1.0);
        }
        if from.is_narrow() && dtype.is_narrow() {
            return self.to_dtype(Dtype::F32)?.to_dtype(dtype);
        }
        let out = Tensor::from_buffer(self.device().alloc_as(self.numel(), dtype)?, self.shape(), self.device())?;
        self.convert_into_(&out)?;
        Ok(out)
    }

    /// `out ← self` converted, in place (its buffer kept): the `narrow` op from an f32 `self` into
    /// a narrow `out` (to nearest even), or the `widen` op from a narrow `self` into an f32 `out`
    /// (exact). The shapes must agree, and exactly one side must be f32 (the dtype rule of the
    /// two ops refuses anything else).
    pub fn convert_into_(&self, out: &Tensor) -> Result<()> {
        self.same_shape("convert", out)?;
        let (x, mut y) = (self.read("convert")?, out.write("convert")?);
        let kernel = if out.dtype().is_narrow() {
            Kernel::Narrow { x: &**x, y: &mut **y }
        } else {
            Kernel::Widen { x: &**x, y: &mut **y }
        };
        self.device().launch(kernel, None)
    }

    /// Sets every value to `value`, in place.
    pub fn fill_(&self, value: f32) -> Result<()> {
        let mut y = self.write("fill")?;
        self.device().launch(Kernel::Fill { y: &mut **y, value }, None)
    }
}

/// One Adam step on `param` in place, with its moments `m` and `v` (see [`AdamStep`]).
pub fn adam_step_(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, step: AdamStep) -> Result<()> {
    for other in [grad, m, v] {
        param.same_shape("adam", other)?;
    }
    let (g, mut p, mut m, mut v) = (grad.read("adam")?, param.write("adam")?, m.write("adam")?, v.write("adam")?);
    param.device().launch(Kernel::Adam { param: &mut **p, grad: &**g, m: &mut **m, v: &mut **v, step }, None)
}

/// The [`Gemm`] of `op(a)·op(b)`, or a shape error naming both operands.
fn gemm_for(op: &'static str, a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Gemm> {
    a.same_device(op, b)?;
    let (ar, ac) = a.shape().as_matrix(op)?;
    let (br, bc) = b.shape().as_matrix(op)?;
    let (m, ka) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if trans_b { (bc, br) } else { (br, bc) };
    if ka != kb {
        return Err(Error::ShapeMismatch {
            op,
            lhs: a.shape(),
            rhs: b.shape(),
            why: format!(
                "inner dimensions differ: {ka} vs {kb} (transposes: a {}, b {})",
                if trans_a { "yes" } else { "no" },
                if trans_b { "yes" } else { "no" }
            ),
        });
    }
    Ok(Gemm::new(m, n, ka).trans(trans_a, trans_b))
}

/// `(rows, cols)` of a bias op, or a shape error.
fn bias_dims(op: &'static str, x: &Tensor, bias: &Tensor) -> Result<(usize, usize)> {
    x.same_device(op, bias)?;
    let (rows, cols) = x.shape().rows_cols();
    if bias.shape().rank() != 1 || bias.numel() != cols {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.shape(),
            rhs: bias.shape(),
            why: format!("the bias must be a vector of {cols}, the last dimension"),
        });
    }
    Ok((rows, cols))
}
