//! One thread running until it must wait (a barrier, a shuffle) or ends: the interpreter's inner
//! loop, and the memory accesses with their checks.

use crate::FaultKind;
use crate::ir::*;
use crate::memory::Memory;
use crate::ops;
use crate::race::Shadow;

/// Why a thread stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Bar,
    /// At an instruction of the whole warp: a shuffle or an `mma.sync`.
    Shfl,
    Done,
}

/// What the threads of one block share while they run.
pub struct Env<'a> {
    pub code: &'a [Instr],
    pub params: &'a [u8],
    pub memory: &'a mut Memory,
    pub shared: &'a mut [u8],
    pub shadow: Option<&'a mut Shadow>,
    /// The two allocations the last global accesses hit (most accesses hit one of them again).
    pub cache: Cache,
}

/// Two recently hit allocations as (base, end, index), most recent first. Allocations do not
/// change during a launch, so an entry stays valid for the whole launch.
pub type Cache = [(u64, u64, usize); 2];

/// No allocation cached (an empty range).
pub const NO_CACHE: Cache = [(1, 0, 0); 2];

#[inline(always)]
fn v(r: &[u64], s: Src) -> u64 {
    match s {
        Src::R(i) => r[i as usize],
        Src::I(x) => x,
    }
}

#[inline(always)]
fn fv(r: &[u64], s: Src) -> f32 {
    ops::f(v(r, s))
}

#[inline(always)]
fn read_le(b: &[u8], signed: bool) -> u64 {
    if let (Ok(w), false) = (<[u8; 4]>::try_from(b), signed) {
        return u32::from_le_bytes(w) as u64;
    }
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    let raw = u64::from_le_bytes(w);
    match (signed, b.len()) {
        (true, 1) => raw as u8 as i8 as i64 as u64,
        (true, 2) => raw as u16 as i16 as i64 as u64,
        (true, 4) => raw as u32 as i32 as i64 as u64,
        _ => raw,
    }
}

impl Env<'_> {
    /// The `width` bytes of global memory at `addr`: aligned to `width`, inside one allocation.
    fn global(&mut self, addr: u64, width: usize) -> Result<&mut [u8], FaultKind> {
        // Access widths are powers of two (1 to 32 bytes): a mask, not a division.
        if addr & (width as u64 - 1) != 0 {
            return Err(FaultKind::Misaligned { addr, bytes: width });
        }
        let end = addr.checked_add(width as u64).ok_or(FaultKind::OutOfBoundsGlobal { addr, bytes: width })?;
        let (i, at) = match self.cache {
            [(base, stop, i), _] if addr >= base && end <= stop => (i, (addr - base) as usize),
            [first, (base, stop, i)] if addr >= base && end <= stop => {
                self.cache = [(base, stop, i), first];
                (i, (addr - base) as usize)
            }
            [first, _] => {
                let (i, at) =
                    self.memory.locate(addr, width).ok_or(FaultKind::OutOfBoundsGlobal { addr, bytes: width })?;
                let (base, len) = self.memory.span(i).unwrap_or((1, 0));
                self.cache = [(base, base + len, i), first];
                (i, at)
            }
        };
        Ok(&mut self.memory.bytes_mut(i)[at..at + width])
    }

    /// The `width` bytes of shared memory at `offset` (checked as `global` is, and for races).
    fn shared(&mut self, offset: u64, width: usize, tid: u32, write: bool) -> Result<&mut [u8], FaultKind> {
        if offset & (width as u64 - 1) != 0 {
            return Err(FaultKind::Misaligned { addr: offset, bytes: width });
        }
        if offset.checked_add(width as u64).is_none_or(|end| end > self.shared.len() as u64) {
            return Err(FaultKind::OutOfBoundsShared { offset, bytes: width });
        }
        if let Some(shadow) = self.shadow.as_deref_mut() {
            shadow.access(offset, width, tid, write)?;
        }
        let at = offset as usize;
        Ok(&mut self.shared[at..at + width])
    }

    fn load(&mut self, r: &mut [u64], tid: u32, op: &Op) -> Result<(), FaultKind> {
        let Op::Ld { space, bytes, signed, count, d, addr } = *op else { return Ok(()) };
        let a = v(r, addr.base).wrapping_add(addr.offset as u64);
        let (bytes, count) = (bytes as usize, count as usize);
        let data = match space {
            Space::Global => self.global(a, bytes * count)?,
            Space::Shared => self.shared(a, bytes * count, tid, false)?,
        };
        for (i, reg) in d[..count].iter().enumerate() {
            r[*reg as usize] = read_le(&data[i * bytes..(i + 1) * bytes], signed);
        }
        Ok(())
    }

    fn store(&mut self, r: &[u64], tid: u32, op: &Op) -> Result<(), FaultKind> {
        let Op::St { space, bytes, count, s, addr } = *op else { return Ok(()) };
        let a = v(r, addr.base).wrapping_add(addr.offset as u64);
        let (bytes, count) = (bytes as usize, count as usize);
        let data = match space {
            Space::Global => self.global(a, bytes * count)?,
            Space::Shared => self.shared(a, bytes * count, tid, true)?,
        };
        for (i, src) in s[..count].iter().enumerate() {
            let value = v(r, *src).to_le_bytes();
            if bytes == 4 {
                data[i * 4..i * 4 + 4].copy_from_slice(&value[..4]);
            } else {
                data[i * bytes..(i + 1) * bytes].copy_from_slice(&value[..bytes]);
            }
        }
        Ok(())
    }

    /// `atom`/`red`: a read-modify-write (threads never run at the same time, so it is atomic).
    /// Atomics are left out of the race shadow: they do not race with each other.
    fn atomic(&mut self, r: &mut [u64], op: &Op) -> Result<(), FaultKind> {
        let Op::Atom { space, op, ty, d, addr, b, c } = *op else { return Ok(()) };
        let a = v(r, addr.base).wrapping_add(addr.offset as u64);
        let width = if ty == AtomTy::Int(IntTy::U64) { 8 } else { 4 };
        let data = match space {
            Space::Global => self.global(a, width)?,
            Space::Shared => {
                if a & (width as u64 - 1) != 0 {
                    return Err(FaultKind::Misaligned { addr: a, bytes: width });
                }
                let end = a.checked_add(width as u64).filter(|&e| e <= self.shared.len() as u64);
                end.ok_or(FaultKind::OutOfBoundsShared { offset: a, bytes: width })?;
                &mut self.shared[a as usize..a as usize + width]
            }
        };
        let old = read_le(data, false);
        let new = ops::atomic(op, ty, old, v(r, b), v(r, c));
        data.copy_from_slice(&new.to_le_bytes()[..width]);
        if let Some(d) = d {
            r[d as usize] = old;
        }
        Ok(())
    }

    /// Runs thread `tid` (registers `r`) from `*pc` until it stops; on a fault `*pc` is the
    /// faulting instruction.
    pub fn run(&mut self, r: &mut [u64], pc: &mut u32, tid: u32) -> Result<Stop, FaultKind> {
        let code = self.code;
        let mut i = *pc as usize;
        loop {
            let Some(ins) = code.get(i) else { return Err(FaultKind::Unsupported("ran past the end".into())) };
            if let Some((p, neg)) = ins.guard
                && (r[p as usize] != 0) == neg
            {
                i += 1;
                continue;
            }
            match ins.op {
                Op::LdParam { d, offset, bytes } => {
                    let at = offset as usize;
                    r[d as usize] = read_le(&self.params[at..at + bytes as usize], false);
                }
                Op::Ld { .. } => {
                    if let Err(e) = self.load(r, tid, &ins.op) {
                        *pc = i as u32;
                        return Err(e);
                    }
                }
                Op::St { .. } => {
                    if let Err(e) = self.store(r, tid, &ins.op) {
                        *pc = i as u32;
                        return Err(e);
                    }
                }
                Op::Atom { .. } => {
                    if let Err(e) = self.atomic(r, &ins.op) {
                        *pc = i as u32;
                        return Err(e);
                    }
                }
                Op::Bra { target } => {
                    i = target as usize;
                    continue;
                }
                Op::Bar | Op::Shfl { .. } | Op::Mma { .. } => {
                    *pc = i as u32;
                    return Ok(if ins.op == Op::Bar { Stop::Bar } else { Stop::Shfl });
                }
                Op::Exit => {
                    *pc = i as u32;
                    return Ok(Stop::Done);
                }
                _ => alu(&ins.op, r),
            }
            i += 1;
        }
    }
}

/// The operations that only read and write registers.
#[inline(always)]
fn alu(op: &Op, r: &mut [u64]) {
    match *op {
        Op::Fma { d, a, b, c } => r[d as usize] = ops::bits(fv(r, a).mul_add(fv(r, b), fv(r, c))),
        Op::Float { op, d, a, b } => r[d as usize] = ops::bits(ops::float(op, fv(r, a), fv(r, b))),
        Op::Int { op, ty, d, a, b } => r[d as usize] = ops::int(op, ty, v(r, a), v(r, b)),
        Op::Mad { ty, wide, d, a, b, c } => r[d as usize] = ops::mad(ty, wide, v(r, a), v(r, b), v(r, c)),
        Op::Not { ty, d, a } => r[d as usize] = if ty.wide() { !v(r, a) } else { !v(r, a) as u32 as u64 },
        Op::Unary { op, d, a } => r[d as usize] = ops::bits(ops::unary(op, fv(r, a))),
        Op::Setp { cmp, ty, d, a, b, combine } => {
            let mut t = ops::compare(cmp, ty, v(r, a), v(r, b));
            if let Some((op, c, neg)) = combine {
                let c = (r[c as usize] != 0) != neg;
                t = match op {
                    BoolOp::And => t && c,
                    BoolOp::Or => t || c,
                    BoolOp::Xor => t != c,
                };
            }
            r[d as usize] = t as u64;
        }
        Op::Pred { op, d, a, b } => {
            let (x, y) = (v(r, a) != 0, v(r, b) != 0);
            r[d as usize] = match op {
                BoolOp::And => x && y,
                BoolOp::Or => x || y,
                BoolOp::Xor => x != y,
            } as u64;
        }
        Op::PredNot { d, a } => r[d as usize] = (v(r, a) == 0) as u64,
        Op::Selp { d, a, b, p } => r[d as usize] = if r[p as usize] != 0 { v(r, a) } else { v(r, b) },
        Op::Mov { d, a, bytes } => r[d as usize] = if bytes == 8 { v(r, a) } else { v(r, a) as u32 as u64 },
        Op::Pack { d, lo, hi } => r[d as usize] = (v(r, lo) as u32 as u64) | (v(r, hi) << 32),
        Op::Unpack { lo, hi, a } => {
            let x = v(r, a);
            r[lo as usize] = x as u32 as u64;
            r[hi as usize] = x >> 32;
        }
        Op::Cvt { cvt, d, a } => r[d as usize] = ops::convert(cvt, v(r, a)),
        Op::CvtPair { half, d, a, b } => {
            let (hi, lo) = (crate::mma::narrow(half, fv(r, a)), crate::mma::narrow(half, fv(r, b)));
            r[d as usize] = ((hi as u64) << 16) | lo as u64;
        }
        _ => {}
    }
}

/// The lane `lane` reads in a `shfl.sync` of `mode` with lane operand `b` and clamp/segment
/// operand `c`, and whether that lane is in range (else the thread reads its own value).
pub fn shfl_source(mode: ShflMode, lane: u32, b: u32, c: u32) -> (u32, bool) {
    let (b, clamp, seg) = (b & 31, c & 31, (c >> 8) & 31);
    let max_lane = (lane & seg) | (clamp & !seg);
    let min_lane = lane & seg;
    let (j, ok) = match mode {
        ShflMode::Up => {
            let j = lane as i32 - b as i32;
            (j, j >= max_lane as i32)
        }
        ShflMode::Down => ((lane + b) as i32, lane + b <= max_lane),
        ShflMode::Bfly => ((lane ^ b) as i32, lane ^ b <= max_lane),
        ShflMode::Idx => {
            let j = min_lane | (b & !seg);
            (j as i32, j <= max_lane)
        }
    };
    if ok { (j as u32, true) } else { (lane, false) }
}
