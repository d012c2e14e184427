//! The one error type of kernelab. Every fallible call in every crate returns [`Result`].

use crate::Shape;

/// Everything that can go wrong, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two operands whose shapes do not fit together.
    #[error("shape mismatch in {op}: {lhs} and {rhs} ({why})")]
    ShapeMismatch { op: &'static str, lhs: Shape, rhs: Shape, why: String },

    /// A shape the operation cannot take at all (wrong rank, an empty dimension, too many dims).
    #[error("bad shape {shape:?} for {op}: {why}")]
    BadShape { op: &'static str, shape: Vec<usize>, why: String },

    /// Data whose length does not match the shape it is given with.
    #[error("{len} values cannot fill a tensor of shape {shape} ({expected} elements)")]
    LengthMismatch { len: usize, shape: Shape, expected: usize },

    /// A buffer handed to a kernel whose length is not what the kernel's parameters imply.
    #[error("{op}: buffer `{buffer}` holds {len} elements, the parameters need {expected}")]
    BufferLength { op: &'static str, buffer: &'static str, len: usize, expected: usize },

    /// An operation name nobody registered.
    #[error("unknown op `{name}`; known ops: {known}")]
    UnknownOp { name: String, known: String },

    /// A kernel variant the backend does not have for this op.
    #[error("backend {backend} has no variant `{name}` for {op}; it has: {known}")]
    UnknownVariant { backend: String, op: &'static str, name: String, known: String },

    /// A variant that exists but cannot run on this machine (a SIMD path the CPU lacks, say).
    #[error("variant {op}/{name} on {backend} cannot run here: {reason}")]
    VariantUnavailable { backend: String, op: &'static str, name: String, reason: String },

    /// A backend name nobody registered.
    #[error("unknown backend `{name}`; known backends: {known}")]
    UnknownBackend { name: String, known: String },

    /// A backend that is compiled in (or not) but cannot be used here.
    #[error("backend {backend} is unavailable: {reason}")]
    BackendUnavailable { backend: String, reason: String },

    /// Tensors on different devices given to one operation.
    #[error("{op}: operands live on different devices ({lhs} and {rhs}); move one with `Tensor::to`")]
    WrongDevice { op: &'static str, lhs: String, rhs: String },

    /// A class label that does not index the logits' columns.
    #[error("label {label} at position {index} is out of range for {classes} classes")]
    LabelOutOfRange { label: u32, index: usize, classes: usize },

    /// A device that refused an allocation.
    #[error("{device} could not allocate {bytes} bytes ({len} f32 values)")]
    OutOfMemory { device: String, bytes: usize, len: usize },

    /// A tensor that is being written while another use reads it (or the other way round).
    #[error("{op}: tensor #{id} is borrowed elsewhere (an in-place op may not alias its inputs)")]
    Borrowed { op: &'static str, id: u64 },

    /// A gradient was asked of something that is not a scalar.
    #[error("backward needs a scalar loss, got shape {0}")]
    NotScalar(Shape),

    /// A parameter outside its valid range (a temperature ≤ 0, a learning rate that is NaN, …).
    #[error("invalid argument for {op}: {why}")]
    InvalidArgument { op: &'static str, why: String },

    /// An error reported by a device driver or runtime.
    #[error("{backend} device error: {message}")]
    Device { backend: String, message: String },

    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },

    /// Training whose loss or parameters stopped being finite numbers.
    #[error("training diverged {at}: {what}; lower --lr (or pass --allow-nonfinite to go on and study it)")]
    Diverged { at: String, what: String },

    /// A file whose contents are not what its format promises.
    #[error("{path}: {why}")]
    Format { path: String, why: String },

    /// A kernel file (`--kernel`) that cannot be run: missing, of an unknown kind, not compiling,
    /// lacking its entry point, or declaring a launch that does not fit its op.
    #[error("kernel file {path}: {why}")]
    KernelFile { path: String, why: String },

    /// A dtype a backend cannot store (`alloc_as`), or a variant asked to run on buffers of
    /// another dtype than it stores.
    #[error("the {backend} backend has no {dtype} storage{why}")]
    NoStorage { backend: String, dtype: crate::Dtype, why: String },

    /// A launch whose float buffers are not all of the one dtype its op and variant take.
    #[error("{op}: buffers of different dtypes ({found}); {why}")]
    DtypeMismatch { op: &'static str, found: String, why: String },

    /// An output that would destroy a file: one the command reads, another of its outputs, a file
    /// of another kind, or one whose mode does not let the user write it. Refused before any work.
    #[error("{path}: {why}")]
    Output { path: String, why: String },
}

/// The result type of every fallible kernelab call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
