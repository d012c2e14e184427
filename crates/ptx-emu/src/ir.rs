//! The compact form a kernel runs in: registers are indices into one `u64` register file per
//! thread (a `.f32` holds its bits in the low half, a predicate 0 or 1), operands are resolved
//! (shared variables to offsets, `.param`s to byte offsets), labels are instruction indices, and
//! every `.func` a kernel calls is inlined with its registers renamed.

pub use crate::mma::{Half, MmaKind};

/// A register index. Indices below [`FIRST_USER_REG`] are the special registers.
pub type Reg = u32;

/// The special registers, at fixed indices: `%tid.{x,y,z}`, `%ntid.*`, `%ctaid.*`, `%nctaid.*`,
/// `%laneid`, `%warpid`.
pub const SPECIAL_REGS: [&str; 14] = [
    "%tid.x",
    "%tid.y",
    "%tid.z",
    "%ntid.x",
    "%ntid.y",
    "%ntid.z",
    "%ctaid.x",
    "%ctaid.y",
    "%ctaid.z",
    "%nctaid.x",
    "%nctaid.y",
    "%nctaid.z",
    "%laneid",
    "%warpid",
];
pub const FIRST_USER_REG: Reg = 16;

/// An operand: a register or an immediate (already in the instruction's type, as bits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Src {
    R(Reg),
    I(u64),
}

/// Integer types: the width and whether comparisons, shifts, division and widening sign-extend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntTy {
    U32,
    S32,
    U64,
    S64,
}

impl IntTy {
    pub fn wide(self) -> bool {
        matches!(self, IntTy::U64 | IntTy::S64)
    }
    pub fn signed(self) -> bool {
        matches!(self, IntTy::S32 | IntTy::S64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOp {
    Add,
    Sub,
    MulLo,
    MulHi,
    /// `mul.wide`: the full 64-bit product of two 32-bit operands.
    MulWide,
    Div,
    Rem,
    Min,
    Max,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `min`/`max`: a NaN operand gives the other operand.
    Min,
    Max,
    /// `min.NaN`/`max.NaN`: a NaN operand gives NaN.
    MinNaN,
    MaxNaN,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatUnary {
    Rcp,
    Sqrt,
    Rsqrt,
    Ex2,
    Lg2,
    Neg,
    Abs,
    Sin,
    Cos,
}

/// `setp` comparisons. Ordered float comparisons are false when an operand is NaN; the `u`
/// forms are true then. For integers `Lo/Ls/Hi/Hs` are the unsigned forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    Num,
    Nan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
}

/// What `setp` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpTy {
    Int(IntTy),
    F32,
}

/// Conversions (`cvt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cvt {
    /// Integer to integer: truncate to `to`, then sign- or zero-extend from the narrower of the two.
    Int { from: IntTy, to: IntTy },
    /// Integer to f32, round to nearest even.
    IntToF32 { from: IntTy },
    /// f32 to integer with a rounding (`rzi`, `rni`, `rmi`, `rpi`), saturating; NaN gives 0.
    F32ToInt { to: IntTy, round: Round },
    /// f32 to f32 rounded to an integral value.
    F32Round(Round),
    /// f32 to bf16 or f16 (`cvt.rn.bf16.f32`), round to nearest even, in the low 16 bits.
    ToHalf(Half),
    /// bf16 or f16 (the low 16 bits) to f32, exact (`cvt.f32.f16`).
    FromHalf(Half),
    /// `cvt.rna.tf32.f32`: round to tf32, ties away from zero (the 13 low bits cleared).
    Tf32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    Zero,
    Nearest,
    Down,
    Up,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    Global,
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShflMode {
    Up,
    Down,
    Bfly,
    Idx,
}

/// `atom`/`red` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomOp {
    Add,
    Min,
    Max,
    Exch,
    Cas,
    And,
    Or,
    Xor,
}

/// The type an atomic operates in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomTy {
    Int(IntTy),
    F32,
}

/// An address: a base (register or immediate, e.g. a shared variable's offset) plus a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Addr {
    pub base: Src,
    pub offset: i64,
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Int {
        op: IntOp,
        ty: IntTy,
        d: Reg,
        a: Src,
        b: Src,
    },
    /// `mad.lo` (`wide` false) and `mad.wide` (`d` and `c` 64-bit).
    Mad {
        ty: IntTy,
        wide: bool,
        d: Reg,
        a: Src,
        b: Src,
        c: Src,
    },
    Not {
        ty: IntTy,
        d: Reg,
        a: Src,
    },
    Float {
        op: FloatOp,
        d: Reg,
        a: Src,
        b: Src,
    },
    Fma {
        d: Reg,
        a: Src,
        b: Src,
        c: Src,
    },
    Unary {
        op: FloatUnary,
        d: Reg,
        a: Src,
    },
    Setp {
        cmp: Cmp,
        ty: CmpTy,
        d: Reg,
        a: Src,
        b: Src,
        combine: Option<(BoolOp, Reg, bool)>,
    },
    Pred {
        op: BoolOp,
        d: Reg,
        a: Src,
        b: Src,
    },
    PredNot {
        d: Reg,
        a: Src,
    },
    /// `selp`: `d = p ? a : b`.
    Selp {
        d: Reg,
        a: Src,
        b: Src,
        p: Reg,
    },
    /// A bit copy of `bytes` bytes (4 or 8); also `cvta` and `ld.param`/`st.param` of registers.
    Mov {
        d: Reg,
        a: Src,
        bytes: u8,
    },
    /// `mov.b64 d, {lo, hi}`.
    Pack {
        d: Reg,
        lo: Src,
        hi: Src,
    },
    /// `mov.b64 {lo, hi}, a`.
    Unpack {
        lo: Reg,
        hi: Reg,
        a: Src,
    },
    Cvt {
        cvt: Cvt,
        d: Reg,
        a: Src,
    },
    /// `cvt.rn.bf16x2.f32 d, a, b` (or `.f16x2`): `a` rounded into the upper half of `d`, `b`
    /// into the lower.
    CvtPair {
        half: Half,
        d: Reg,
        a: Src,
        b: Src,
    },
    /// `mma.sync.aligned` of one warp (see [`crate::mma`]): `d = a·b + c` on fragments.
    Mma {
        kind: MmaKind,
        d: [Reg; 4],
        a: [Src; 4],
        b: [Src; 2],
        c: [Src; 4],
    },
    /// `ld.param` of an entry parameter: `bytes` at byte `offset` of the parameter buffer.
    LdParam {
        d: Reg,
        offset: u32,
        bytes: u8,
    },
    /// A load of `count` elements of `bytes` each (`.v2`/`.v4`); `signed` sign-extends narrow ones.
    Ld {
        space: Space,
        bytes: u8,
        signed: bool,
        count: u8,
        d: [Reg; 4],
        addr: Addr,
    },
    St {
        space: Space,
        bytes: u8,
        count: u8,
        s: [Src; 4],
        addr: Addr,
    },
    /// `atom` (old value to `d`) or `red` (`d` none): `[addr] = op([addr], b[, c])`.
    Atom {
        space: Space,
        op: AtomOp,
        ty: AtomTy,
        d: Option<Reg>,
        addr: Addr,
        b: Src,
        c: Src,
    },
    Bra {
        target: u32,
    },
    Bar,
    /// `shfl.sync.MODE.b32 d[|p], a, b, c, mask`.
    Shfl {
        mode: ShflMode,
        d: Reg,
        p: Option<Reg>,
        a: Src,
        b: Src,
        c: Src,
    },
    /// The end of the kernel (`ret` or `exit` in the entry).
    Exit,
}

/// One instruction: an optional guard predicate (`@p`/`@!p`), the operation, its source line.
#[derive(Clone, Debug, PartialEq)]
pub struct Instr {
    pub guard: Option<(Reg, bool)>,
    pub op: Op,
    pub line: u32,
}
