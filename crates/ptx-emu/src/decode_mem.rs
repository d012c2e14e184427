//! `ld` and `st`: global and shared memory (scalar, `.v2`, `.v4`) and the `.param` space (an
//! entry's parameters, or a `.func`'s `.param` arguments, which live in registers).

use crate::LoadError;
use crate::decode::{Ctx, Kind, Names};
use crate::ir::*;
use crate::parse::{Operand, type_bytes};

/// Decodes `ld.SPACE[.nc][.vN].TYPE` (`load`) or `st.SPACE[.vN].TYPE`.
pub(crate) fn load_store<N: Names>(c: &Ctx<N>, mods: &[&str], load: bool) -> Result<Op, LoadError> {
    let mut space = None;
    let mut count = 1u8;
    for m in &mods[..mods.len().saturating_sub(1)] {
        match *m {
            "global" | "shared" | "param" if space.is_none() => space = Some(*m),
            "nc" | "ca" | "cg" | "cs" | "lu" | "cv" | "wb" | "wt" | "volatile" | "relaxed" => {}
            "v2" if count == 1 => count = 2,
            "v4" if count == 1 => count = 4,
            _ => return c.unsupported(),
        }
    }
    let ty = mods.last().copied().unwrap_or("");
    let (Some(space), Some(bytes)) = (space, type_bytes(ty)) else {
        return c.err(format!("`{}`: a load or store needs .global, .shared or .param and a type", c.ins.opcode));
    };
    if ty == "pred" || ty.starts_with('f') && ty != "f32" || ty.starts_with("bf") {
        return c.unsupported();
    }
    c.count(2)?;
    let kind = if ty == "f32" { Kind::F32 } else { Kind::Int(if bytes == 8 { IntTy::U64 } else { IntTy::U32 }) };
    let (value_at, addr_at) = if load { (0, 1) } else { (1, 0) };
    if space == "param" {
        return param(c, load, bytes as u8, kind, value_at, addr_at);
    }
    let space = if space == "global" { Space::Global } else { Space::Shared };
    let addr = c.addr(addr_at)?;
    let items: Vec<&Operand> = match (c.operand(value_at)?, count) {
        (Operand::List(items), n) if items.len() == n as usize && n > 1 => items.iter().collect(),
        (o, 1) if !matches!(o, Operand::List(_)) => vec![o],
        _ => return c.err(format!("`{}` needs {count} values", c.ins.opcode)),
    };
    if load {
        let mut d = [0; 4];
        for (slot, item) in d.iter_mut().zip(&items) {
            *slot = match item {
                Operand::Name(n) => c.reg_named(n)?,
                o => return c.err(format!("a load's destination must be a register, not {o:?}")),
            };
        }
        let signed = ty.starts_with('s');
        Ok(Op::Ld { space, bytes: bytes as u8, signed, count, d, addr })
    } else {
        let mut s = [Src::I(0); 4];
        for (slot, item) in s.iter_mut().zip(&items) {
            *slot = c.src_of(item, kind)?;
        }
        Ok(Op::St { space, bytes: bytes as u8, count, s, addr })
    }
}

/// `ld.param d, [name+off]` of an entry parameter reads the parameter buffer; a `.param` of a
/// `.func` (or one declared in a body, as call sequences do) is a register, and the access a move.
fn param<N: Names>(
    c: &Ctx<N>,
    load: bool,
    bytes: u8,
    kind: Kind,
    value_at: usize,
    addr_at: usize,
) -> Result<Op, LoadError> {
    let Operand::Addr(base, offset) = c.operand(addr_at)? else {
        return c.err("a .param access needs an address `[name]`");
    };
    let Operand::Name(name) = base.as_ref() else { return c.err("a .param address must name a parameter") };
    let mov_bytes = if bytes == 8 { 8 } else { 4 };
    if let Some(reg) = c.names.reg(name) {
        if *offset != 0 {
            return c.err(format!("`{name}` is a scalar .param; offset {offset} into it is not supported"));
        }
        return Ok(if load {
            Op::Mov { d: c.dst(value_at)?, a: Src::R(reg), bytes: mov_bytes }
        } else {
            Op::Mov { d: reg, a: c.src(value_at, kind)?, bytes: mov_bytes }
        });
    }
    let Some((at, size)) = c.names.entry_param(name) else { return c.err(format!("unknown parameter `{name}`")) };
    if !load {
        return c.err(format!("`{name}` is an entry parameter; a kernel cannot store to it"));
    }
    let offset = u32::try_from(*offset).ok().filter(|&o| o as u64 + bytes as u64 <= size as u64);
    let Some(offset) = offset else {
        return c.err(format!("reading {bytes} bytes of the {size}-byte parameter `{name}` at this offset"));
    };
    Ok(Op::LdParam { d: c.dst(value_at)?, offset: at + offset, bytes })
}

/// Decodes `atom.SPACE[.sem][.scope].OP.TYPE d, [a], b[, c]` or `red.SPACE[...].OP.TYPE [a], b`.
pub(crate) fn atomic<N: Names>(c: &Ctx<N>, mods: &[&str], returns: bool) -> Result<Op, LoadError> {
    let mut space = None;
    let mut rest = Vec::new();
    for m in mods {
        match *m {
            "global" | "shared" if space.is_none() => space = Some(*m),
            "relaxed" | "acquire" | "release" | "acq_rel" | "cta" | "gpu" | "sys" => {}
            m => rest.push(m),
        }
    }
    let (Some(space), [op, ty]) = (space, rest.as_slice()) else {
        return c.err(format!("`{}`: an atomic needs .global or .shared, an operation and a type", c.ins.opcode));
    };
    let op = match *op {
        "add" => AtomOp::Add,
        "min" => AtomOp::Min,
        "max" => AtomOp::Max,
        "exch" if returns => AtomOp::Exch,
        "cas" if returns => AtomOp::Cas,
        "and" => AtomOp::And,
        "or" => AtomOp::Or,
        "xor" => AtomOp::Xor,
        _ => return c.unsupported(),
    };
    let ty = match (*ty, op) {
        ("f32", AtomOp::Add | AtomOp::Exch | AtomOp::Cas) => AtomTy::F32,
        ("u32", _) | ("b32", AtomOp::And | AtomOp::Or | AtomOp::Xor | AtomOp::Exch | AtomOp::Cas) => {
            AtomTy::Int(IntTy::U32)
        }
        ("s32", AtomOp::Add | AtomOp::Min | AtomOp::Max) => AtomTy::Int(IntTy::S32),
        ("u64", AtomOp::Add | AtomOp::Min | AtomOp::Max | AtomOp::Exch | AtomOp::Cas)
        | ("b64", AtomOp::And | AtomOp::Or | AtomOp::Xor | AtomOp::Exch | AtomOp::Cas) => AtomTy::Int(IntTy::U64),
        _ => return c.unsupported(),
    };
    let kind = match ty {
        AtomTy::F32 => Kind::F32,
        AtomTy::Int(i) => Kind::Int(i),
    };
    let space = if space == "global" { Space::Global } else { Space::Shared };
    let first = returns as usize;
    c.count(first + if op == AtomOp::Cas { 3 } else { 2 })?;
    let d = if returns { Some(c.dst(0)?) } else { None };
    let b = c.src(first + 1, kind)?;
    let cc = if op == AtomOp::Cas { c.src(first + 2, kind)? } else { Src::I(0) };
    Ok(Op::Atom { space, op, ty, d, addr: c.addr(first)?, b, c: cc })
}
