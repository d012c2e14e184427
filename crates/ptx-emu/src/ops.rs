//! The arithmetic of one instruction on register bits: integers by type, f32 as the GPU computes
//! it (see the crate documentation for each operation's rounding).

use crate::ir::*;

#[inline]
pub fn f(bits: u64) -> f32 {
    f32::from_bits(bits as u32)
}

#[inline]
pub fn bits(v: f32) -> u64 {
    v.to_bits() as u64
}

/// An integer operation on `ty`; 32-bit results are zero-extended in the register.
/// Division by zero gives all ones (as the hardware does), never a trap.
pub fn int(op: IntOp, ty: IntTy, a: u64, b: u64) -> u64 {
    if ty.wide() {
        return int64(op, ty.signed(), a, b);
    }
    let (x, y) = (a as u32, b as u32);
    let (sx, sy) = (x as i32, y as i32);
    let signed = ty.signed();
    let r: u32 = match op {
        IntOp::Add => x.wrapping_add(y),
        IntOp::Sub => x.wrapping_sub(y),
        IntOp::MulLo => x.wrapping_mul(y),
        IntOp::MulHi if signed => ((sx as i64 * sy as i64) >> 32) as u32,
        IntOp::MulHi => ((x as u64 * y as u64) >> 32) as u32,
        IntOp::MulWide if signed => return (sx as i64 * sy as i64) as u64,
        IntOp::MulWide => return x as u64 * y as u64,
        IntOp::Div if y == 0 => u32::MAX,
        IntOp::Div if signed => sx.wrapping_div(sy) as u32,
        IntOp::Div => x / y,
        IntOp::Rem if y == 0 => x,
        IntOp::Rem if signed => sx.wrapping_rem(sy) as u32,
        IntOp::Rem => x % y,
        IntOp::Min if signed => sx.min(sy) as u32,
        IntOp::Min => x.min(y),
        IntOp::Max if signed => sx.max(sy) as u32,
        IntOp::Max => x.max(y),
        IntOp::And => x & y,
        IntOp::Or => x | y,
        IntOp::Xor => x ^ y,
        IntOp::Shl => x.checked_shl(y).unwrap_or(0),
        IntOp::Shr if signed => (sx >> y.min(31)) as u32,
        IntOp::Shr => x.checked_shr(y).unwrap_or(0),
    };
    r as u64
}

fn int64(op: IntOp, signed: bool, x: u64, y: u64) -> u64 {
    let (sx, sy) = (x as i64, y as i64);
    match op {
        IntOp::Add => x.wrapping_add(y),
        IntOp::Sub => x.wrapping_sub(y),
        IntOp::MulLo | IntOp::MulWide => x.wrapping_mul(y),
        IntOp::MulHi if signed => ((sx as i128 * sy as i128) >> 64) as u64,
        IntOp::MulHi => ((x as u128 * y as u128) >> 64) as u64,
        IntOp::Div if y == 0 => u64::MAX,
        IntOp::Div if signed => sx.wrapping_div(sy) as u64,
        IntOp::Div => x / y,
        IntOp::Rem if y == 0 => x,
        IntOp::Rem if signed => sx.wrapping_rem(sy) as u64,
        IntOp::Rem => x % y,
        IntOp::Min if signed => sx.min(sy) as u64,
        IntOp::Min => x.min(y),
        IntOp::Max if signed => sx.max(sy) as u64,
        IntOp::Max => x.max(y),
        IntOp::And => x & y,
        IntOp::Or => x | y,
        IntOp::Xor => x ^ y,
        IntOp::Shl => x.checked_shl(y.min(64) as u32).unwrap_or(0),
        IntOp::Shr if signed => (sx >> y.min(63)) as u64,
        IntOp::Shr => x.checked_shr(y.min(64) as u32).unwrap_or(0),
    }
}

/// `mad.lo` (`d = lo(a·b) + c` in `ty`) and `mad.wide` (`d = a·b + c`, 32×32 → 64 bits).
pub fn mad(ty: IntTy, wide: bool, a: u64, b: u64, c: u64) -> u64 {
    if wide {
        int(IntOp::MulWide, ty, a, b).wrapping_add(c)
    } else {
        int(IntOp::Add, ty, int(IntOp::MulLo, ty, a, b), c)
    }
}

/// `max`/`min` as PTX defines them: a NaN operand yields the other (both NaN: NaN); the `.NaN`
/// forms yield NaN. −0 counts as less than +0.
pub fn float(op: FloatOp, a: f32, b: f32) -> f32 {
    let less = |x: f32, y: f32| x < y || (x == 0.0 && y == 0.0 && x.is_sign_negative() && y.is_sign_positive());
    match op {
        FloatOp::Add => a + b,
        FloatOp::Sub => a - b,
        FloatOp::Mul => a * b,
        FloatOp::Div => a / b,
        FloatOp::MinNaN | FloatOp::MaxNaN if a.is_nan() || b.is_nan() => f32::NAN,
        FloatOp::Min | FloatOp::Max if a.is_nan() => b,
        FloatOp::Min | FloatOp::Max if b.is_nan() => a,
        FloatOp::Min | FloatOp::MinNaN => {
            if less(b, a) {
                b
            } else {
                a
            }
        }
        FloatOp::Max | FloatOp::MaxNaN => {
            if less(a, b) {
                b
            } else {
                a
            }
        }
    }
}

/// One-operand f32 operations. `ex2`, `lg2`, `sin`, `cos` and `rsqrt` compute in f64 and round
/// to f32 (inside PTX's documented error for the `.approx` forms); `rcp` and `sqrt` are exactly
/// rounded in f32.
pub fn unary(op: FloatUnary, a: f32) -> f32 {
    let w = a as f64;
    match op {
        FloatUnary::Rcp => 1.0 / a,
        FloatUnary::Sqrt => a.sqrt(),
        FloatUnary::Rsqrt => (1.0 / w.sqrt()) as f32,
        FloatUnary::Ex2 => w.exp2() as f32,
        FloatUnary::Lg2 => w.log2() as f32,
        FloatUnary::Sin => w.sin() as f32,
        FloatUnary::Cos => w.cos() as f32,
        FloatUnary::Neg => -a,
        FloatUnary::Abs => a.abs(),
    }
}

fn ord<T: PartialOrd>(cmp: Cmp, a: T, b: T) -> bool {
    match cmp {
        Cmp::Eq | Cmp::Equ => a == b,
        Cmp::Ne | Cmp::Neu => a != b,
        Cmp::Lt | Cmp::Ltu => a < b,
        Cmp::Le | Cmp::Leu => a <= b,
        Cmp::Gt | Cmp::Gtu => a > b,
        Cmp::Ge | Cmp::Geu => a >= b,
        Cmp::Num | Cmp::Nan => false,
    }
}

/// `setp`'s comparison. Ordered f32 comparisons are false when either operand is NaN, the
/// unordered (`…u`) ones true; `num` is "neither NaN", `nan` "either NaN".
pub fn compare(cmp: Cmp, ty: CmpTy, a: u64, b: u64) -> bool {
    match ty {
        CmpTy::F32 => {
            let (x, y) = (f(a), f(b));
            let nan = x.is_nan() || y.is_nan();
            match cmp {
                Cmp::Num => !nan,
                Cmp::Nan => nan,
                Cmp::Equ | Cmp::Neu | Cmp::Ltu | Cmp::Leu | Cmp::Gtu | Cmp::Geu if nan => true,
                Cmp::Ne if nan => false,
                _ => ord(cmp, x, y),
            }
        }
        CmpTy::Int(IntTy::U32) => ord(cmp, a as u32, b as u32),
        CmpTy::Int(IntTy::S32) => ord(cmp, a as u32 as i32, b as u32 as i32),
        CmpTy::Int(IntTy::U64) => ord(cmp, a, b),
        CmpTy::Int(IntTy::S64) => ord(cmp, a as i64, b as i64),
    }
}

fn round(r: Round, v: f32) -> f32 {
    match r {
        Round::Zero => v.trunc(),
        Round::Nearest => v.round_ties_even(),
        Round::Down => v.floor(),
        Round::Up => v.ceil(),
    }
}

/// Sign- or zero-extends the low `ty` bits of `v` to 64.
fn widen(ty: IntTy, v: u64) -> u64 {
    match ty {
        IntTy::U32 => v as u32 as u64,
        IntTy::S32 => v as u32 as i32 as i64 as u64,
        IntTy::U64 | IntTy::S64 => v,
    }
}

/// `cvt`. f32 → integer saturates to the target range and maps NaN to 0 (PTX's rule).
pub fn convert(cvt: Cvt, a: u64) -> u64 {
    let narrow = |to: IntTy, v: u64| if to.wide() { v } else { v as u32 as u64 };
    match cvt {
        Cvt::Int { from, to } => narrow(to, widen(from, a)),
        Cvt::IntToF32 { from } => bits(match from {
            IntTy::U32 => a as u32 as f32,
            IntTy::S32 => a as u32 as i32 as f32,
            IntTy::U64 => a as f32,
            IntTy::S64 => a as i64 as f32,
        }),
        Cvt::F32ToInt { to, round: r } => {
            let v = round(r, f(a));
            match to {
                IntTy::U32 => v as u32 as u64,
                IntTy::S32 => v as i32 as u32 as u64,
                IntTy::U64 => v as u64,
                IntTy::S64 => v as i64 as u64,
            }
        }
        Cvt::F32Round(r) => bits(round(r, f(a))),
        Cvt::ToHalf(h) => crate::mma::narrow(h, f(a)) as u64,
        Cvt::FromHalf(h) => bits(crate::mma::widen(h, a as u16)),
        Cvt::Tf32 => crate::mma::tf32(f(a)) as u64,
    }
}

/// The new value of an atomic's target: `op(old, b[, c])` in `ty` (`cas`: `old == b ? c : old`).
pub fn atomic(op: AtomOp, ty: AtomTy, old: u64, b: u64, c: u64) -> u64 {
    match (op, ty) {
        (AtomOp::Exch, _) => b,
        (AtomOp::Cas, AtomTy::F32) | (AtomOp::Cas, AtomTy::Int(IntTy::U32 | IntTy::S32)) => {
            if old as u32 == b as u32 {
                c
            } else {
                old
            }
        }
        (AtomOp::Cas, _) => {
            if old == b {
                c
            } else {
                old
            }
        }
        (_, AtomTy::F32) => bits(f(old) + f(b)),
        (AtomOp::Add, AtomTy::Int(t)) => int(IntOp::Add, t, old, b),
        (AtomOp::Min, AtomTy::Int(t)) => int(IntOp::Min, t, old, b),
        (AtomOp::Max, AtomTy::Int(t)) => int(IntOp::Max, t, old, b),
        (AtomOp::And, AtomTy::Int(t)) => int(IntOp::And, t, old, b),
        (AtomOp::Or, AtomTy::Int(t)) => int(IntOp::Or, t, old, b),
        (AtomOp::Xor, AtomTy::Int(t)) => int(IntOp::Xor, t, old, b),
    }
}
