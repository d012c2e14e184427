//! A PTX interpreter with a sanitizer: kernelab's hand-written CUDA kernels run on the CPU.
//!
//! [`Module::parse`] reads one `.ptx` text into a compact form (registers as indices, operands
//! resolved, labels as instruction indices, every `.func` inlined into the entries that call it);
//! [`launch`] runs a kernel over a grid against a [`Memory`], the device's global address space.
//!
//! # The subset
//!
//! What `kernels/**/*.ptx` and `examples/kernels/ptx/*.ptx` use, and the obvious neighbours for
//! kernels users write:
//! integer `add sub mul.lo mul.hi mul.wide mad.lo mad.wide div rem min max and or xor not shl shr`
//! on `.u32 .s32 .u64 .s64 .b32 .b64`; f32 `add sub mul div fma min max (.NaN) rcp sqrt rsqrt
//! ex2.approx lg2.approx sin/cos.approx neg abs`; `setp` (with `.and/.or/.xor` and `!p`), `selp`,
//! predicate `and/or/xor/not`, guards `@p`/`@!p`; `mov` (incl. `mov.b64` packing `{lo, hi}`),
//! `cvt`, `cvta`; `ld`/`st` on `.global` (`.nc` too), `.shared` and `.param`, scalar, `.v2`, `.v4`;
//! `atom`/`red` on `.global`/`.shared` (`add min max and or xor`, `exch` and `cas`; `.u32 .s32
//! .u64 .b32 .b64`, `add/exch/cas.f32`); `bra` (`.uni`), `call` of `.func`s with `.reg` or `.param` arguments and `ret`, `exit`;
//! `bar.sync 0`/`barrier.sync 0`; `shfl.sync.{up,down,bfly,idx}.b32` (with `d|p`);
//! `mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32` and
//! `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32` (see [`mma`]); `cvt.rn.{bf16,f16}.f32`,
//! `cvt.f32.{bf16,f16}`, `cvt.rn.{bf16,f16}x2.f32`, `cvt.rna.tf32.f32`; `.b16` registers (and
//! `.b16`/`.u16` loads and stores); the special registers `%tid`,
//! `%ntid`, `%ctaid`, `%nctaid`, `%laneid`, `%warpid`; `.f32` literals `0fXXXXXXXX`, decimal and
//! `0x` integers. Anything else is a [`LoadError`] naming the line, at parse time.
//!
//! # f32 semantics
//!
//! Values are computed in f32, as the GPU computes them, never in f64 and rounded late:
//! `add/sub/mul/div/sqrt/rcp` round to nearest even (`.rn`, or no modifier; `.approx` and `.full`
//! forms, which PTX allows a few ulp of error, are computed exactly rounded too; `.rz/.rm/.rp`
//! and `.ftz`/`.sat` are outside the subset and refused at load). `fma.rn` is a fused
//! multiply-add rounded once. `ex2.approx`, `lg2.approx`, `rsqrt.approx`, `sin/cos.approx`
//! compute in f64 from the f32 operand and round the result to f32: within PTX's documented
//! error (2 ulp for `ex2`, 2⁻²²·⁶ absolute for `lg2`), and with its special values (`ex2(−∞) =
//! 0`, `lg2(0) = −∞`, `lg2(x < 0) = NaN`). `min`/`max` return the other operand when one is NaN,
//! the `.NaN` forms return NaN; of +0 and −0, `max` gives +0 and `min` −0. Subnormals are kept.
//! `cvt` from f32 to an integer saturates and maps NaN to 0; integer division by zero gives all
//! ones (no trap); shifts past the width give 0 (or the sign, for `shr.s*`). Conversions to bf16
//! and f16 round to nearest even (overflow to infinity, NaN to `0x7fff`); an `mma.sync` sums exact
//! products in f64 and rounds once to f32 (the [`mma`] module says how a GPU may differ).
//!
//! # Execution
//!
//! Blocks run one after another (no threads: a 128×128×128 tiled matmul takes well under a
//! second in a release build). In a block, each warp's threads run one after another, each until
//! it reaches `bar.sync`, a shuffle or its end; a warp's shuffle is resolved once every live lane
//! of the warp waits at it (an `mma.sync` likewise, once all 32 lanes do: a partial warp or an
//! exited lane faults), the barrier once every live thread of the block does (without the
//! sanitizer, threads that have exited do not hold a barrier up). Shared memory starts each block
//! filled with NaN (`0xFF` bytes), so a read of a word no one wrote shows in the results. Global
//! memory is a [`Memory`] of separate allocations with unmapped gaps between them.
//!
//! # What faults, and the sanitizer
//!
//! Always (as a real GPU faults): a global access not inside one live allocation, a shared access
//! past the static + dynamic shared size, any access whose address is not a multiple of its size
//! (16 for `.v4.f32`), and a warp whose lanes wait at different shuffles, or some at a shuffle and
//! others at a barrier (a deadlock on hardware). A launch is refused before it runs
//! ([`FaultKind::InvalidLaunch`]) for a bad geometry, parameters of the wrong count or size, or
//! more than 48 KiB of static + dynamic shared memory.
//! With [`Launch::sanitize`] also, as compute-sanitizer's racecheck and synccheck do: a shared
//! half-word (2 bytes) accessed by two threads (at least one writing) with no barrier between that both passed
//! (read after write, write after write, write after read), and a divergent barrier (threads at
//! different `bar.sync`s, or some at one while others have exited). Not checked: races through
//! global memory, atomics (they do not race with each other; an atomic against a plain access is
//! not reported either), reads of uninitialised memory (shared memory is NaN, so results show them),
//! `membermask` contents (all lanes are assumed named), shuffles from exited lanes (they return
//! the caller's own value).

mod decode;
mod decode_mem;
mod error;
mod exec;
mod ir;
mod lex;
mod link;
mod memory;
pub mod mma;
mod ops;
mod parse;
mod race;
mod step;

use std::sync::Arc;

pub use error::{Fault, FaultKind, LoadError};
pub use memory::Memory;

/// One parameter of an entry point, as declared: its name and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub bytes: usize,
}

/// One `.entry` of a [`Module`], ready to run.
#[derive(Clone, Debug)]
pub struct Kernel {
    name: String,
    params: Vec<Param>,
    /// The byte offset of each parameter in the parameter buffer.
    param_offsets: Vec<usize>,
    param_bytes: usize,
    code: Vec<ir::Instr>,
    registers: usize,
    /// Bytes of the register file of one thread (in `u64` slots).
    slots: usize,
    shared_bytes: usize,
    /// Where the dynamic shared memory starts in the block's window (`shared_bytes`, aligned).
    dynamic_at: usize,
    /// The source text, for faults (line `l` is `lines[l - 1]`).
    lines: Arc<Vec<String>>,
}

impl Kernel {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn params(&self) -> &[Param] {
        &self.params
    }
    /// Bytes of the `.shared` variables the kernel (or a `.func` it calls) uses, laid out in
    /// declaration order at their alignment: what `ptxas` reports for every kernel of `kernels/`.
    pub fn static_shared_bytes(&self) -> usize {
        self.shared_bytes
    }
    /// The 32-bit registers the kernel and its `.func`s declare (a 64-bit one counts two, a
    /// predicate none): an estimate for `cuFuncGetAttribute`, usually above what `ptxas`
    /// allocates (it reuses registers; `results/ptxas/resources.md` has its counts).
    pub fn registers(&self) -> usize {
        self.registers
    }
}

/// A parsed PTX text (one `.ptx` file).
#[derive(Clone, Debug)]
pub struct Module {
    kernels: Vec<Kernel>,
}

impl Module {
    /// Parses `text`; anything outside the subset above is an error naming its line.
    pub fn parse(text: &str) -> Result<Module, LoadError> {
        Ok(Module { kernels: link::link(text)? })
    }
    /// The `.entry` called `name`.
    pub fn kernel(&self, name: &str) -> Option<&Kernel> {
        self.kernels.iter().find(|k| k.name == name)
    }
    /// Every `.entry`, in the order of the text.
    pub fn kernels(&self) -> impl Iterator<Item = &Kernel> {
        self.kernels.iter()
    }
}

/// The geometry of one launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub dynamic_shared_bytes: u32,
    /// Check for shared-memory races and divergent barriers too (slower).
    pub sanitize: bool,
}

/// Runs `kernel` over `launch`'s grid. `params[i]` holds the raw little-endian bytes of parameter
/// `i` (length = `kernel.params()[i].bytes`). Blocks run in order; the first fault stops the
/// launch (writes made before it stay, as on a GPU).
pub fn launch(kernel: &Kernel, launch: &Launch, params: &[&[u8]], memory: &mut Memory) -> Result<(), Fault> {
    exec::launch(kernel, launch, params, memory)
}
