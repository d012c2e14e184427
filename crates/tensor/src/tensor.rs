//! [`Tensor`]: values row-major and contiguous, living on one [`Device`], stored as f32 or as a
//! narrow [`Dtype`] (entering and leaving as f32: see [`crate::Dtype`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::{Device, DeviceBuffer, Dtype, Error, Kernel, Result, Shape};

static NEXT_TENSOR_ID: AtomicU64 = AtomicU64::new(0);

/// The process-unique identity of a tensor handle; gradients are keyed by it.
pub type TensorId = u64;

type Storage = Arc<RwLock<Box<dyn DeviceBuffer>>>;

/// A tensor on a device, stored as its [`Tensor::dtype`]; ops produce their output in the dtype of
/// their inputs (the launch picks a variant of that storage). Cloning is cheap and shares the values; every op returns a new tensor
/// except the in-place ones, whose names end in `_`.
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

struct TensorInner {
    id: TensorId,
    shape: Shape,
    device: Device,
    dtype: Dtype,
    storage: Storage,
    requires_grad: AtomicBool,
}

impl Tensor {
    pub(crate) fn from_storage(storage: Storage, shape: Shape, device: Device, dtype: Dtype) -> Self {
        Tensor(Arc::new(TensorInner {
            id: NEXT_TENSOR_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            device,
            dtype,
            storage,
            requires_grad: AtomicBool::new(false),
        }))
    }

    /// Wraps a freshly written device buffer, which must hold `shape.numel()` values.
    pub fn from_buffer(buffer: Box<dyn DeviceBuffer>, shape: Shape, device: &Device) -> Result<Self> {
        if buffer.len() != shape.numel() {
            return Err(Error::LengthMismatch { len: buffer.len(), shape, expected: shape.numel() });
        }
        let dtype = buffer.dtype();
        Ok(Self::from_storage(Arc::new(RwLock::new(buffer)), shape, device.clone(), dtype))
    }

    /// A tensor of the given dimensions holding a copy of `data` (length checked).
    pub fn from_slice(data: &[f32], dims: &[usize], device: &Device) -> Result<Self> {
        Self::from_slice_as(data, dims, Dtype::F32, device)
    }

    /// A tensor stored as `dtype` holding `data`, each value rounded to nearest (ties to even).
    pub fn from_slice_as(data: &[f32], dims: &[usize], dtype: Dtype, device: &Device) -> Result<Self> {
        let shape = Shape::new(dims)?;
        if data.len() != shape.numel() {
            return Err(Error::LengthMismatch { len: data.len(), shape, expected: shape.numel() });
        }
        Self::from_buffer(device.upload_as(data, dtype)?, shape, device)
    }

    /// Like [`Tensor::from_slice`], taking the vector.
    pub fn from_vec(data: Vec<f32>, dims: &[usize], device: &Device) -> Result<Self> {
        Self::from_slice(&data, dims, device)
    }

    /// A one-element tensor of rank 0.
    pub fn scalar(value: f32, device: &Device) -> Result<Self> {
        Self::full(&[], value, device)
    }

    /// A tensor whose every value is `value`, filled on the device.
    pub fn full(dims: &[usize], value: f32, device: &Device) -> Result<Self> {
        Self::full_as(dims, value, Dtype::F32, device)
    }

    /// [`Tensor::full`] stored as `dtype` (`value` rounded to it).
    pub fn full_as(dims: &[usize], value: f32, dtype: Dtype, device: &Device) -> Result<Self> {
        let shape = Shape::new(dims)?;
        let mut buf = device.alloc_as(shape.numel(), dtype)?;
        device.launch(Kernel::Fill { y: &mut *buf, value }, None)?;
        Self::from_buffer(buf, shape, device)
    }

    pub fn zeros(dims: &[usize], device: &Device) -> Result<Self> {
        Self::full(dims, 0.0, device)
    }

    pub fn ones(dims: &[usize], device: &Device) -> Result<Self> {
        Self::full(dims, 1.0, device)
    }

    /// Values drawn uniformly from `[lo, hi)` by a ChaCha8 generator seeded with `seed`; the same
    /// seed gives the same values on every device and every run.
    pub fn rand_uniform(dims: &[usize], lo: f32, hi: f32, seed: u64, device: &Device) -> Result<Self> {
        let shape = Shape::new(dims)?;
        let dist = Uniform::new(lo, hi)
            .map_err(|e| Error::InvalidArgument { op: "rand_uniform", why: format!("[{lo}, {hi}): {e}") })?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data: Vec<f32> = (0..shape.numel()).map(|_| dist.sample(&mut rng)).collect();
        Self::from_slice(&data, dims, device)
    }

    /// Values drawn from `N(mean, std²)`, seeded like [`Tensor::rand_uniform`].
    pub fn rand_normal(dims: &[usize], mean: f32, std: f32, seed: u64, device: &Device) -> Result<Self> {
        let shape = Shape::new(dims)?;
        if !(std >= 0.0 && std.is_finite() && mean.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "rand_normal",
                why: format!("N({mean}, {std}²) needs a finite mean and std ≥ 0"),
            });
        }
        let dist = Normal::new(mean, std)
            .map_err(|e| Error::InvalidArgument { op: "rand_normal", why: format!("N({mean}, {std}²): {e}") })?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data: Vec<f32> = (0..shape.numel()).map(|_| dist.sample(&mut rng)).collect();
        Self::from_slice(&data, dims, device)
    }

    pub fn id(&self) -> TensorId {
        self.0.id
    }

    pub fn shape(&self) -> Shape {
        self.0.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }

    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }

    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// The type the values are stored in.
    pub fn dtype(&self) -> Dtype {
        self.0.dtype
    }

    /// Marks this tensor as a leaf whose gradient [`Tape::backward`](crate::Tape::backward) returns.
    pub fn requires_grad(self) -> Self {
        self.set_requires_grad(true);
        self
    }

    pub fn set_requires_grad(&self, on: bool) {
        self.0.requires_grad.store(on, Ordering::Relaxed);
    }

    pub fn is_requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// The values, copied to the host.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let buf = self.read("to_vec")?;
        self.device().download(&**buf)
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::NotScalar(self.shape()));
        }
        Ok(self.to_vec()?[0])
    }

    /// A copy on `device` in the same dtype (a new tensor even when it is this tensor's own device).
    pub fn to(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_slice_as(&self.to_vec()?, self.dims(), self.dtype(), device)
    }

    /// Overwrites the values with `data` (length checked), keeping the buffer.
    pub fn assign_(&self, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::LengthMismatch { len: data.len(), shape: self.shape(), expected: self.numel() });
        }
        let mut buf = self.write("assign_")?;
        self.device().write(&mut **buf, data)
    }

    /// The same values under another shape with as many elements; shares the buffer.
    pub fn reshape(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims)?;
        if shape.numel() != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape(),
                rhs: shape,
                why: format!("{} elements cannot become {}", self.numel(), shape.numel()),
            });
        }
        Ok(Tensor::from_storage(self.0.storage.clone(), shape, self.device().clone(), self.dtype()))
    }

    /// Read access to the device buffer, for launching kernels.
    pub fn read(&self, op: &'static str) -> Result<RwLockReadGuard<'_, Box<dyn DeviceBuffer>>> {
        self.0.storage.try_read().map_err(|_| Error::Borrowed { op, id: self.id() })
    }

    /// Write access to the device buffer, for in-place kernels.
    pub fn write(&self, op: &'static str) -> Result<RwLockWriteGuard<'_, Box<dyn DeviceBuffer>>> {
        self.0.storage.try_write().map_err(|_| Error::Borrowed { op, id: self.id() })
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor#{}{} on {}", self.id(), self.shape(), self.device())
    }
}
