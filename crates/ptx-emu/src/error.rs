//! What can go wrong: a PTX text that does not load ([`LoadError`]) and a fault while memory is
//! managed or a kernel runs ([`Fault`], with its [`FaultKind`]).

use std::fmt;

/// A PTX text the interpreter cannot load: a syntax error, an unknown register or label, or an
/// instruction outside the subset it implements. `line` is 1-based in the original text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct LoadError {
    pub line: usize,
    pub what: String,
}

impl LoadError {
    pub(crate) fn new(line: usize, what: impl Into<String>) -> LoadError {
        LoadError { line, what: what.into() }
    }
}

/// What went wrong in a [`Fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A global access (`bytes` wide at `addr`) not inside one live allocation: a real GPU says
    /// `CUDA_ERROR_ILLEGAL_ADDRESS`.
    OutOfBoundsGlobal { addr: u64, bytes: usize },
    /// A shared access past the block's static + dynamic shared memory.
    OutOfBoundsShared { offset: u64, bytes: usize },
    /// An access whose address is not a multiple of its size (a `.v4.f32` access needs 16):
    /// `CUDA_ERROR_MISALIGNED_ADDRESS`. For shared memory `addr` is the offset in the window.
    Misaligned { addr: u64, bytes: usize },
    /// Two threads of one block touched the shared word at `offset` (at least one writing) with
    /// no barrier between them that both passed (sanitizer only).
    SharedRace { offset: u64, other_thread: [u32; 3] },
    /// Threads of one block (or warp) wait at different barriers or shuffles, or some wait while
    /// others have exited: `other_thread` is one of the others, `other` says where it is.
    DivergentBarrier { other_thread: [u32; 3], other: String },
    /// A launch the device refuses (bad geometry, wrong parameters, too much shared memory):
    /// `CUDA_ERROR_INVALID_VALUE`.
    InvalidLaunch(String),
    /// An allocation over the device's capacity: `CUDA_ERROR_OUT_OF_MEMORY`.
    OutOfMemory { requested: u64, free: u64 },
    /// A host-side memory call on an address that is no live allocation, or a range that leaves it.
    InvalidAddress { addr: u64, bytes: usize },
    /// Something the interpreter does not implement.
    Unsupported(String),
}

/// A fault, located as compute-sanitizer locates one: the kernel, the PTX line and its text, the
/// thread and the block. Faults of host-side memory calls have an empty `kernel` and line 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub kernel: String,
    pub line: usize,
    pub instruction: String,
    pub thread: [u32; 3],
    pub block: [u32; 3],
}

impl Fault {
    /// A fault outside any kernel (memory management, launch checks).
    pub fn host(kind: FaultKind) -> Fault {
        Fault { kind, kernel: String::new(), line: 0, instruction: String::new(), thread: [0; 3], block: [0; 3] }
    }
}

fn xyz(v: [u32; 3]) -> String {
    format!("({},{},{})", v[0], v[1], v[2])
}

impl FaultKind {
    /// The one-line account, with `verb` ("read", "write" or "access") for memory accesses.
    fn describe(&self, verb: &str) -> String {
        match self {
            FaultKind::OutOfBoundsGlobal { addr, bytes } => {
                format!("invalid __global__ {verb} of size {bytes} at {addr:#x}: out of bounds of every allocation")
            }
            FaultKind::OutOfBoundsShared { offset, bytes } => {
                format!(
                    "invalid __shared__ {verb} of size {bytes} at offset {offset:#x}: past the block's shared memory"
                )
            }
            FaultKind::Misaligned { addr, bytes } => {
                format!("misaligned {verb} of size {bytes} at {addr:#x}: not a multiple of {bytes}")
            }
            FaultKind::SharedRace { offset, other_thread } => format!(
                "race on __shared__ offset {offset:#x}: also accessed by thread {} with no barrier between (at least one a write)",
                xyz(*other_thread)
            ),
            FaultKind::DivergentBarrier { other_thread, other } => {
                format!("divergent barrier: thread {} {other}", xyz(*other_thread))
            }
            FaultKind::InvalidLaunch(why) => format!("invalid launch: {why}"),
            FaultKind::OutOfMemory { requested, free } => {
                format!("out of memory: {requested} bytes requested, {free} bytes free")
            }
            FaultKind::InvalidAddress { addr, bytes } => {
                format!("invalid address: {bytes} bytes at {addr:#x} are not inside one live allocation")
            }
            FaultKind::Unsupported(what) => format!("unsupported: {what}"),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("access"))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kernel.is_empty() {
            return write!(f, "{}", self.kind);
        }
        // The instruction says whether the access read or wrote (after its guard, if any).
        let opcode = self.instruction.split_whitespace().find(|w| !w.starts_with('@')).unwrap_or("");
        let verb = match opcode.split('.').next() {
            Some("ld") => "read",
            Some("st") => "write",
            _ => "access",
        };
        write!(
            f,
            "{} in kernel `{}` at line {} `{}` by thread {} in block {}",
            self.kind.describe(verb),
            self.kernel,
            self.line,
            self.instruction,
            xyz(self.thread),
            xyz(self.block)
        )
    }
}

impl std::error::Error for Fault {}
