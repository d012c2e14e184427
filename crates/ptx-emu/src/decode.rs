//! One raw instruction to one [`Op`]: the opcode's modifiers checked against the subset, operands
//! resolved to registers, immediates (in the instruction's type) and addresses. Control flow
//! (`bra`, `call`, `ret`, `exit`) is the linker's.

use crate::LoadError;
use crate::ir::*;
use crate::parse::{Operand, RawInstr, parse_int};

/// How names resolve in the function being decoded.
pub trait Names {
    /// A register (special registers included) or a `.reg`/`.param` of the function.
    fn reg(&self, name: &str) -> Option<Reg>;
    /// A `.shared` variable's offset in the block's shared window.
    fn shared(&self, name: &str) -> Option<u64>;
    /// An entry parameter's byte offset and size in the parameter buffer.
    fn entry_param(&self, name: &str) -> Option<(u32, u32)>;
}

/// The type an operand is read in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    F32,
    Int(IntTy),
    Pred,
}

pub(crate) struct Ctx<'a, N: Names> {
    pub(crate) ins: &'a RawInstr,
    pub(crate) names: &'a N,
}

impl<N: Names> Ctx<'_, N> {
    pub(crate) fn err<T>(&self, what: impl Into<String>) -> Result<T, LoadError> {
        Err(LoadError::new(self.ins.line as usize, what))
    }
    pub(crate) fn unsupported<T>(&self) -> Result<T, LoadError> {
        self.err(format!("`{}` is outside the PTX subset the interpreter implements", self.ins.opcode))
    }
    /// `v`, or the "outside the subset" error.
    fn known<T>(&self, v: Option<T>) -> Result<T, LoadError> {
        v.map_or_else(|| self.unsupported(), Ok)
    }
    pub(crate) fn operand(&self, i: usize) -> Result<&Operand, LoadError> {
        match self.ins.operands.get(i) {
            Some(o) => Ok(o),
            None => self.err(format!("`{}` needs at least {} operands", self.ins.opcode, i + 1)),
        }
    }
    pub(crate) fn count(&self, n: usize) -> Result<(), LoadError> {
        if self.ins.operands.len() == n {
            return Ok(());
        }
        self.err(format!("`{}` takes {n} operands, not {}", self.ins.opcode, self.ins.operands.len()))
    }
    pub(crate) fn reg_named(&self, name: &str) -> Result<Reg, LoadError> {
        self.names.reg(name).map_or_else(|| self.err(format!("unknown register `{name}`")), Ok)
    }
    pub(crate) fn dst(&self, i: usize) -> Result<Reg, LoadError> {
        match self.operand(i)? {
            Operand::Name(n) => self.reg_named(n),
            o => self.err(format!("operand {} must be a register, not {o:?}", i + 1)),
        }
    }
    pub(crate) fn src(&self, i: usize, kind: Kind) -> Result<Src, LoadError> {
        self.src_of(self.operand(i)?, kind)
    }
    pub(crate) fn src_of(&self, o: &Operand, kind: Kind) -> Result<Src, LoadError> {
        match o {
            Operand::Name(n) => match (self.names.reg(n), self.names.shared(n)) {
                (Some(r), _) => Ok(Src::R(r)),
                (None, Some(offset)) => Ok(Src::I(offset)),
                _ => self.err(format!("unknown name `{n}`")),
            },
            Operand::Num(t) => self.literal(t, kind).map(Src::I),
            o => self.err(format!("unexpected operand {o:?}")),
        }
    }
    fn literal(&self, text: &str, kind: Kind) -> Result<u64, LoadError> {
        let (neg, t) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let bad = || LoadError::new(self.ins.line as usize, format!("bad literal `{text}`"));
        let float_literal = t.starts_with("0f") || t.starts_with("0F") || t.starts_with("0d") || t.starts_with("0D");
        if kind == Kind::F32 || float_literal {
            let v = if let Some(h) = t.strip_prefix("0f").or_else(|| t.strip_prefix("0F")) {
                f32::from_bits(u32::from_str_radix(h, 16).map_err(|_| bad())?)
            } else if let Some(h) = t.strip_prefix("0d").or_else(|| t.strip_prefix("0D")) {
                f64::from_bits(u64::from_str_radix(h, 16).map_err(|_| bad())?) as f32
            } else {
                t.parse::<f32>().map_err(|_| bad())?
            };
            // In an integer context (`mov.b64 d, {0f..., 0f...}`) an f32 literal is its bits.
            return Ok((if neg { -v } else { v }).to_bits() as u64);
        }
        let v = parse_int(t).ok_or_else(bad)?;
        let v = if neg { v.wrapping_neg() } else { v };
        Ok(match kind {
            Kind::Int(ty) if !ty.wide() => v & 0xffff_ffff,
            _ => v,
        })
    }
    pub(crate) fn addr(&self, i: usize) -> Result<Addr, LoadError> {
        match self.operand(i)? {
            Operand::Addr(base, offset) => {
                Ok(Addr { base: self.src_of(base, Kind::Int(IntTy::U64))?, offset: *offset })
            }
            o => self.err(format!("operand {} must be an address `[...]`, not {o:?}", i + 1)),
        }
    }
}

fn int_ty(t: &str) -> Option<IntTy> {
    Some(match t {
        "u32" | "b32" => IntTy::U32,
        "s32" => IntTy::S32,
        "u64" | "b64" => IntTy::U64,
        "s64" => IntTy::S64,
        _ => return None,
    })
}

fn cmp_of(t: &str) -> Option<Cmp> {
    Some(match t {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "lt" | "lo" => Cmp::Lt,
        "le" | "ls" => Cmp::Le,
        "gt" | "hi" => Cmp::Gt,
        "ge" | "hs" => Cmp::Ge,
        "equ" => Cmp::Equ,
        "neu" => Cmp::Neu,
        "ltu" => Cmp::Ltu,
        "leu" => Cmp::Leu,
        "gtu" => Cmp::Gtu,
        "geu" => Cmp::Geu,
        "num" => Cmp::Num,
        "nan" => Cmp::Nan,
        _ => return None,
    })
}

fn bool_op(t: &str) -> Option<BoolOp> {
    Some(match t {
        "and" => BoolOp::And,
        "or" => BoolOp::Or,
        "xor" => BoolOp::Xor,
        _ => return None,
    })
}

fn round_of(t: &str) -> Option<Round> {
    Some(match t {
        "rzi" => Round::Zero,
        "rni" => Round::Nearest,
        "rmi" => Round::Down,
        "rpi" => Round::Up,
        _ => return None,
    })
}

/// Decodes a non-control-flow instruction.
pub fn decode(ins: &RawInstr, names: &impl Names) -> Result<Op, LoadError> {
    let c = Ctx { ins, names };
    let parts: Vec<&str> = ins.opcode.split('.').collect();
    let (base, mods) = (parts[0], &parts[1..]);
    let ty = mods.last().copied().unwrap_or("");
    match base {
        "add" | "sub" | "mul" | "div" | "min" | "max" if ty == "f32" => float_binary(&c, base, mods),
        "fma" | "mad" if ty == "f32" => {
            if !matches!(mods, ["rn", "f32"]) {
                return c.unsupported();
            }
            c.count(4)?;
            Ok(Op::Fma { d: c.dst(0)?, a: c.src(1, Kind::F32)?, b: c.src(2, Kind::F32)?, c: c.src(3, Kind::F32)? })
        }
        "rcp" | "sqrt" | "rsqrt" | "ex2" | "lg2" | "sin" | "cos" | "neg" | "abs" if ty == "f32" => {
            float_unary(&c, base, mods)
        }
        "add" | "sub" | "mul" | "div" | "rem" | "min" | "max" | "and" | "or" | "xor" | "shl" | "shr" | "mad"
        | "not" => match ty {
            "pred" => pred_logic(&c, base, mods),
            _ => int_op(&c, base, mods),
        },
        "setp" => setp(&c, mods),
        "selp" => {
            let kind = if ty == "f32" { Kind::F32 } else { Kind::Int(c.known(int_ty(ty))?) };
            c.count(4)?;
            Ok(Op::Selp { d: c.dst(0)?, a: c.src(1, kind)?, b: c.src(2, kind)?, p: c.dst(3)? })
        }
        "mov" => mov(&c, ty),
        "cvta" => {
            if !matches!(mods, ["to", "global", "u64"] | ["global", "u64"]) {
                return c.unsupported();
            }
            c.count(2)?;
            Ok(Op::Mov { d: c.dst(0)?, a: c.src(1, Kind::Int(IntTy::U64))?, bytes: 8 })
        }
        "cvt" => cvt(&c, mods),
        "ld" | "st" => crate::decode_mem::load_store(&c, mods, base == "ld"),
        "atom" | "red" => crate::decode_mem::atomic(&c, mods, base == "atom"),
        "shfl" => shfl(&c, mods),
        "mma" => mma(&c, mods),
        "bar" | "barrier" => {
            if !matches!(mods, ["sync"] | [] | ["sync", "aligned"]) {
                return c.unsupported();
            }
            match c.ins.operands.as_slice() {
                [Operand::Num(n)] if n == "0" => Ok(Op::Bar),
                _ => c.err("only `bar.sync 0` is supported (barrier 0, all threads of the block)"),
            }
        }
        _ => c.unsupported(),
    }
}

fn float_binary<N: Names>(c: &Ctx<N>, base: &str, mods: &[&str]) -> Result<Op, LoadError> {
    let op = match (base, mods) {
        ("add", ["f32"] | ["rn", "f32"]) => FloatOp::Add,
        ("sub", ["f32"] | ["rn", "f32"]) => FloatOp::Sub,
        ("mul", ["f32"] | ["rn", "f32"]) => FloatOp::Mul,
        ("div", ["rn" | "approx" | "full", "f32"]) => FloatOp::Div,
        ("min", ["f32"]) => FloatOp::Min,
        ("max", ["f32"]) => FloatOp::Max,
        ("min", ["NaN", "f32"]) => FloatOp::MinNaN,
        ("max", ["NaN", "f32"]) => FloatOp::MaxNaN,
        _ => return c.unsupported(),
    };
    c.count(3)?;
    Ok(Op::Float { op, d: c.dst(0)?, a: c.src(1, Kind::F32)?, b: c.src(2, Kind::F32)? })
}

fn float_unary<N: Names>(c: &Ctx<N>, base: &str, mods: &[&str]) -> Result<Op, LoadError> {
    let op = match (base, mods) {
        ("rcp", ["rn" | "approx", "f32"]) => FloatUnary::Rcp,
        ("sqrt", ["rn" | "approx", "f32"]) => FloatUnary::Sqrt,
        ("rsqrt", ["approx", "f32"]) => FloatUnary::Rsqrt,
        ("ex2", ["approx", "f32"]) => FloatUnary::Ex2,
        ("lg2", ["approx", "f32"]) => FloatUnary::Lg2,
        ("sin", ["approx", "f32"]) => FloatUnary::Sin,
        ("cos", ["approx", "f32"]) => FloatUnary::Cos,
        ("neg", ["f32"]) => FloatUnary::Neg,
        ("abs", ["f32"]) => FloatUnary::Abs,
        _ => return c.unsupported(),
    };
    c.count(2)?;
    Ok(Op::Unary { op, d: c.dst(0)?, a: c.src(1, Kind::F32)? })
}

fn pred_logic<N: Names>(c: &Ctx<N>, base: &str, mods: &[&str]) -> Result<Op, LoadError> {
    if mods.len() != 1 {
        return c.unsupported();
    }
    if base == "not" {
        c.count(2)?;
        return Ok(Op::PredNot { d: c.dst(0)?, a: c.src(1, Kind::Pred)? });
    }
    let Some(op) = bool_op(base) else { return c.unsupported() };
    c.count(3)?;
    Ok(Op::Pred { op, d: c.dst(0)?, a: c.src(1, Kind::Pred)?, b: c.src(2, Kind::Pred)? })
}

fn int_op<N: Names>(c: &Ctx<N>, base: &str, mods: &[&str]) -> Result<Op, LoadError> {
    let Some(&ty_text) = mods.last() else { return c.unsupported() };
    let Some(ty) = int_ty(ty_text) else { return c.unsupported() };
    let bitwise = ty_text.starts_with('b');
    let arith_ok = !bitwise || matches!(base, "and" | "or" | "xor" | "not" | "shl");
    let shr_ok = base != "shr" || !bitwise;
    if !arith_ok || !shr_ok {
        return c.unsupported();
    }
    let k = Kind::Int(ty);
    let half = Kind::Int(ty);
    let wide = Kind::Int(if ty.signed() { IntTy::S64 } else { IntTy::U64 });
    match (base, &mods[..mods.len() - 1]) {
        ("not", []) => {
            c.count(2)?;
            Ok(Op::Not { ty, d: c.dst(0)?, a: c.src(1, k)? })
        }
        ("mad", ["lo"]) | ("mad", ["wide"]) if !ty.wide() => {
            c.count(4)?;
            let w = mods[0] == "wide";
            let ck = if w { wide } else { k };
            Ok(Op::Mad { ty, wide: w, d: c.dst(0)?, a: c.src(1, half)?, b: c.src(2, half)?, c: c.src(3, ck)? })
        }
        ("mad", ["lo"]) => {
            c.count(4)?;
            Ok(Op::Mad { ty, wide: false, d: c.dst(0)?, a: c.src(1, k)?, b: c.src(2, k)?, c: c.src(3, k)? })
        }
        (_, m) => {
            let op = match (base, m) {
                ("add", []) => IntOp::Add,
                ("sub", []) => IntOp::Sub,
                ("mul", ["lo"]) => IntOp::MulLo,
                ("mul", ["hi"]) => IntOp::MulHi,
                ("mul", ["wide"]) if !ty.wide() => IntOp::MulWide,
                ("div", []) => IntOp::Div,
                ("rem", []) => IntOp::Rem,
                ("min", []) => IntOp::Min,
                ("max", []) => IntOp::Max,
                ("and", []) => IntOp::And,
                ("or", []) => IntOp::Or,
                ("xor", []) => IntOp::Xor,
                ("shl", []) => IntOp::Shl,
                ("shr", []) => IntOp::Shr,
                _ => return c.unsupported(),
            };
            c.count(3)?;
            // Shift amounts are .u32 whatever the type.
            let bk = if matches!(op, IntOp::Shl | IntOp::Shr) { Kind::Int(IntTy::U32) } else { k };
            Ok(Op::Int { op, ty, d: c.dst(0)?, a: c.src(1, k)?, b: c.src(2, bk)? })
        }
    }
}

fn setp<N: Names>(c: &Ctx<N>, mods: &[&str]) -> Result<Op, LoadError> {
    let (cmp, combine, ty) = match mods {
        [cmp, ty] => (cmp, None, ty),
        [cmp, b, ty] => (cmp, Some(c.known(bool_op(b))?), ty),
        _ => return c.unsupported(),
    };
    let Some(cmp) = cmp_of(cmp) else { return c.unsupported() };
    let (ty, kind) = match *ty {
        "f32" => (CmpTy::F32, Kind::F32),
        t => match int_ty(t) {
            Some(i)
                if !matches!(
                    cmp,
                    Cmp::Equ | Cmp::Neu | Cmp::Ltu | Cmp::Leu | Cmp::Gtu | Cmp::Geu | Cmp::Num | Cmp::Nan
                ) =>
            {
                (CmpTy::Int(i), Kind::Int(i))
            }
            _ => return c.unsupported(),
        },
    };
    // `lo/ls/hi/hs` are the unsigned comparisons: on a signed type they compare as unsigned.
    let ty = match (ty, mods[0]) {
        (CmpTy::Int(IntTy::S32), "lo" | "ls" | "hi" | "hs") => CmpTy::Int(IntTy::U32),
        (CmpTy::Int(IntTy::S64), "lo" | "ls" | "hi" | "hs") => CmpTy::Int(IntTy::U64),
        (t, _) => t,
    };
    let combine = match combine {
        None => {
            c.count(3)?;
            None
        }
        Some(op) => {
            c.count(4)?;
            match c.operand(3)? {
                Operand::Name(n) => Some((op, c.reg_named(n)?, false)),
                Operand::Not(n) => Some((op, c.reg_named(n)?, true)),
                o => return c.err(format!("setp's fourth operand must be a predicate, not {o:?}")),
            }
        }
    };
    if matches!(c.operand(0)?, Operand::Pipe(..)) {
        return c.err("setp with two destinations (`p|q`) is not supported");
    }
    Ok(Op::Setp { cmp, ty, d: c.dst(0)?, a: c.src(1, kind)?, b: c.src(2, kind)?, combine })
}

fn mov<N: Names>(c: &Ctx<N>, ty: &str) -> Result<Op, LoadError> {
    c.count(2)?;
    let (kind, bytes) = match ty {
        "f32" => (Kind::F32, 4),
        "pred" => (Kind::Pred, 8),
        t => match int_ty(t) {
            Some(i) => (Kind::Int(i), if i.wide() { 8 } else { 4 }),
            None => return c.unsupported(),
        },
    };
    match (c.operand(0)?, c.operand(1)?) {
        (Operand::Name(_), Operand::List(items)) if ty == "b64" && items.len() == 2 => Ok(Op::Pack {
            d: c.dst(0)?,
            lo: c.src_of(&items[0], Kind::Int(IntTy::U32))?,
            hi: c.src_of(&items[1], Kind::Int(IntTy::U32))?,
        }),
        (Operand::List(items), Operand::Name(_)) if ty == "b64" && items.len() == 2 => {
            let reg = |o: &Operand| match o {
                Operand::Name(n) => c.reg_named(n),
                o => c.err(format!("expected a register, not {o:?}")),
            };
            Ok(Op::Unpack { lo: reg(&items[0])?, hi: reg(&items[1])?, a: c.src(1, Kind::Int(IntTy::U64))? })
        }
        _ => Ok(Op::Mov { d: c.dst(0)?, a: c.src(1, kind)?, bytes }),
    }
}

fn half_of(t: &str) -> Option<Half> {
    match t {
        "bf16" | "bf16x2" => Some(Half::Bf16),
        "f16" | "f16x2" => Some(Half::F16),
        _ => None,
    }
}

fn cvt<N: Names>(c: &Ctx<N>, mods: &[&str]) -> Result<Op, LoadError> {
    if let ["rn", pair @ ("bf16x2" | "f16x2"), "f32"] = mods {
        c.count(3)?;
        let half = c.known(half_of(pair))?;
        return Ok(Op::CvtPair { half, d: c.dst(0)?, a: c.src(1, Kind::F32)?, b: c.src(2, Kind::F32)? });
    }
    c.count(2)?;
    let cvt = match mods {
        ["rn", to @ ("bf16" | "f16"), "f32"] => Cvt::ToHalf(c.known(half_of(to))?),
        ["f32", from @ ("bf16" | "f16")] => Cvt::FromHalf(c.known(half_of(from))?),
        ["rna", "tf32", "f32"] => Cvt::Tf32,
        [to, from] => match (int_ty(to), int_ty(from)) {
            (Some(to), Some(from)) => Cvt::Int { from, to },
            _ => return c.unsupported(),
        },
        ["rn", "f32", from] => Cvt::IntToF32 { from: c.known(int_ty(from))? },
        [r, "f32", "f32"] => Cvt::F32Round(c.known(round_of(r))?),
        [r, to, "f32"] => match (round_of(r), int_ty(to)) {
            (Some(round), Some(to)) => Cvt::F32ToInt { to, round },
            _ => return c.unsupported(),
        },
        _ => return c.unsupported(),
    };
    let kind = match cvt {
        Cvt::Int { from, .. } | Cvt::IntToF32 { from } => Kind::Int(from),
        Cvt::FromHalf(_) => Kind::Int(IntTy::U32),
        Cvt::F32ToInt { .. } | Cvt::F32Round(_) | Cvt::ToHalf(_) | Cvt::Tf32 => Kind::F32,
    };
    Ok(Op::Cvt { cvt, d: c.dst(0)?, a: c.src(1, kind)? })
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32` or
/// `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {d0..d3}, {a0..a3}, {b0, b1}, {c0..c3}`.
fn mma<N: Names>(c: &Ctx<N>, mods: &[&str]) -> Result<Op, LoadError> {
    let kind = match mods {
        ["sync", "aligned", "m16n8k16", "row", "col", "f32", "bf16", "bf16", "f32"] => MmaKind::Bf16,
        ["sync", "aligned", "m16n8k16", "row", "col", "f32", "f16", "f16", "f32"] => MmaKind::F16,
        ["sync", "aligned", "m16n8k8", "row", "col", "f32", "tf32", "tf32", "f32"] => MmaKind::Tf32,
        _ => return c.unsupported(),
    };
    c.count(4)?;
    let list = |i: usize, n: usize, kind: Kind| -> Result<Vec<Src>, LoadError> {
        match c.operand(i)? {
            Operand::List(items) if items.len() == n => items.iter().map(|o| c.src_of(o, kind)).collect(),
            o => c.err(format!("operand {} of `{}` must be a list of {n} registers, not {o:?}", i + 1, c.ins.opcode)),
        }
    };
    let u = Kind::Int(IntTy::U32);
    let (a, b, cc) = (list(1, 4, u)?, list(2, 2, u)?, list(3, 4, Kind::F32)?);
    let mut d = [0; 4];
    for (slot, o) in d.iter_mut().zip(list(0, 4, Kind::F32)?) {
        let Src::R(r) = o else { return c.err("an mma's destinations must be registers") };
        *slot = r;
    }
    Ok(Op::Mma { kind, d, a: [a[0], a[1], a[2], a[3]], b: [b[0], b[1]], c: [cc[0], cc[1], cc[2], cc[3]] })
}

fn shfl<N: Names>(c: &Ctx<N>, mods: &[&str]) -> Result<Op, LoadError> {
    let mode = match mods {
        ["sync", "up", "b32"] => ShflMode::Up,
        ["sync", "down", "b32"] => ShflMode::Down,
        ["sync", "bfly", "b32"] => ShflMode::Bfly,
        ["sync", "idx", "b32"] => ShflMode::Idx,
        _ => return c.unsupported(),
    };
    c.count(5)?;
    let (d, p) = match c.operand(0)? {
        Operand::Pipe(d, p) => (c.reg_named(d)?, Some(c.reg_named(p)?)),
        _ => (c.dst(0)?, None),
    };
    let u = Kind::Int(IntTy::U32);
    // The member mask (operand 5) is read for its syntax only: every lane is assumed named.
    c.src(4, u)?;
    Ok(Op::Shfl { mode, d, p, a: c.src(1, u)?, b: c.src(2, u)?, c: c.src(3, u)? })
}

/// `o` read as a value of PTX type `ty` (a call's argument, typed by the callee's parameter).
pub fn operand_src(ins: &RawInstr, names: &impl Names, o: &Operand, ty: &str) -> Result<Src, LoadError> {
    let c = Ctx { ins, names };
    let kind = match ty {
        "f32" => Kind::F32,
        "pred" => Kind::Pred,
        t => Kind::Int(int_ty(t).unwrap_or(IntTy::U64)),
    };
    c.src_of(o, kind)
}
