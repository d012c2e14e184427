//! A launch: the geometry checked, the parameter buffer built, then each block run — its warps
//! one after another, each until every thread waits at a barrier or has ended (shuffles resolved
//! on the way), then the barrier resolved — until every thread has ended.

use crate::ir::*;
use crate::race::Shadow;
use crate::step::{Cache, Env, NO_CACHE, Stop, shfl_source};
use crate::{Fault, FaultKind, Kernel, Launch, Memory};

/// The most shared memory (static + dynamic) one block may use, as a device without opt-in allows.
pub const MAX_SHARED: usize = 48 * 1024;

fn invalid(why: String) -> Fault {
    Fault::host(FaultKind::InvalidLaunch(why))
}

fn check_geometry(kernel: &Kernel, l: &Launch) -> Result<(), Fault> {
    let [bx, by, bz] = l.block;
    let [gx, gy, gz] = l.grid;
    let threads = bx as u64 * by as u64 * bz as u64;
    if threads == 0 || threads > 1024 || bx > 1024 || by > 1024 || bz > 64 {
        return Err(invalid(format!(
            "block ({bx}, {by}, {bz}): each side at least 1, x and y at most 1024, z at most 64, at most 1024 threads"
        )));
    }
    if gx == 0 || gy == 0 || gz == 0 || gx > i32::MAX as u32 || gy > 65535 || gz > 65535 {
        return Err(invalid(format!("grid ({gx}, {gy}, {gz}): each side at least 1, y and z at most 65535")));
    }
    let shared = kernel.shared_bytes + l.dynamic_shared_bytes as usize;
    if shared > MAX_SHARED {
        return Err(invalid(format!(
            "`{}` needs {} bytes of static and {} of dynamic shared memory; a block may have {MAX_SHARED}",
            kernel.name, kernel.shared_bytes, l.dynamic_shared_bytes
        )));
    }
    Ok(())
}

fn param_buffer(kernel: &Kernel, params: &[&[u8]]) -> Result<Vec<u8>, Fault> {
    if params.len() != kernel.params.len() {
        return Err(invalid(format!(
            "`{}` takes {} parameters, the launch passes {}",
            kernel.name,
            kernel.params.len(),
            params.len()
        )));
    }
    let mut buf = vec![0u8; kernel.param_bytes];
    for (i, (p, bytes)) in kernel.params.iter().zip(params).enumerate() {
        if bytes.len() != p.bytes {
            return Err(invalid(format!(
                "parameter {i} (`{}`) of `{}` is {} bytes, the launch passes {}",
                p.name,
                kernel.name,
                p.bytes,
                bytes.len()
            )));
        }
        let at = kernel.param_offsets[i];
        buf[at..at + p.bytes].copy_from_slice(bytes);
    }
    Ok(buf)
}

pub fn launch(kernel: &Kernel, l: &Launch, params: &[&[u8]], memory: &mut Memory) -> Result<(), Fault> {
    check_geometry(kernel, l)?;
    let params = param_buffer(kernel, params)?;
    let mut block = Block::new(kernel, l);
    let mut cache = NO_CACHE;
    for z in 0..l.grid[2] {
        for y in 0..l.grid[1] {
            for x in 0..l.grid[0] {
                block.reset([x, y, z]);
                block.run(&params, memory, &mut cache)?;
            }
        }
    }
    Ok(())
}

struct Block<'k> {
    kernel: &'k Kernel,
    launch: &'k Launch,
    n: usize,
    slots: usize,
    regs: Vec<u64>,
    pc: Vec<u32>,
    state: Vec<Option<Stop>>,
    shared: Vec<u8>,
    shadow: Option<Shadow>,
    ctaid: [u32; 3],
}

impl<'k> Block<'k> {
    fn new(kernel: &'k Kernel, launch: &'k Launch) -> Block<'k> {
        let n = launch.block.iter().map(|&d| d as usize).product();
        let shared_bytes = kernel.dynamic_at + launch.dynamic_shared_bytes as usize;
        Block {
            kernel,
            launch,
            n,
            slots: kernel.slots,
            regs: vec![0; n * kernel.slots],
            pc: vec![0; n],
            state: vec![None; n],
            shared: vec![0xff; shared_bytes],
            shadow: None,
            ctaid: [0; 3],
        }
    }

    /// Fresh threads for block `ctaid`; shared memory refilled with NaN.
    fn reset(&mut self, ctaid: [u32; 3]) {
        self.ctaid = ctaid;
        self.pc.fill(0);
        self.state.fill(None);
        self.shared.fill(0xff);
        if self.launch.sanitize {
            self.shadow = Some(Shadow::new(self.shared.len()));
        }
        let [bx, by, _] = self.launch.block;
        for t in 0..self.n {
            let tid = self.thread(t);
            let r = &mut self.regs[t * self.slots..(t + 1) * self.slots];
            let special = [
                tid[0],
                tid[1],
                tid[2],
                bx,
                by,
                self.launch.block[2],
                ctaid[0],
                ctaid[1],
                ctaid[2],
                self.launch.grid[0],
                self.launch.grid[1],
                self.launch.grid[2],
                t as u32 % 32,
                t as u32 / 32,
            ];
            for (slot, v) in r.iter_mut().zip(special) {
                *slot = v as u64;
            }
        }
    }

    /// The (x, y, z) of linear thread `t`.
    fn thread(&self, t: usize) -> [u32; 3] {
        let [bx, by, _] = self.launch.block;
        let t = t as u32;
        [t % bx, (t / bx) % by, t / (bx * by)]
    }

    fn fault(&self, kind: FaultKind, t: usize) -> Fault {
        let line = self.kernel.code.get(self.pc[t] as usize).map_or(0, |i| i.line as usize);
        let text = self.kernel.lines.get(line.wrapping_sub(1)).map_or("", |l| l.split("//").next().unwrap_or(""));
        let kind = match kind {
            FaultKind::SharedRace { offset, other_thread: [o, ..] } => {
                FaultKind::SharedRace { offset, other_thread: self.thread(o as usize) }
            }
            k => k,
        };
        Fault {
            kind,
            kernel: self.kernel.name.clone(),
            line,
            instruction: text.trim().to_string(),
            thread: self.thread(t),
            block: self.ctaid,
        }
    }

    fn where_is(&self, t: usize) -> String {
        match self.state[t] {
            Some(Stop::Done) => "has exited".into(),
            _ => {
                let line = self.kernel.code.get(self.pc[t] as usize).map_or(0, |i| i.line);
                format!("waits at line {line}")
            }
        }
    }

    fn divergent(&self, t: usize, other: usize) -> Fault {
        self.fault(FaultKind::DivergentBarrier { other_thread: self.thread(other), other: self.where_is(other) }, t)
    }

    fn run(&mut self, params: &[u8], memory: &mut Memory, cache: &mut Cache) -> Result<(), Fault> {
        loop {
            for lo in (0..self.n).step_by(32) {
                let hi = (lo + 32).min(self.n);
                loop {
                    self.run_warp(lo, hi, params, memory, cache)?;
                    if !self.shuffle(lo, hi)? {
                        break;
                    }
                }
            }
            let Some(first) = (0..self.n).find(|&t| self.state[t] == Some(Stop::Bar)) else { return Ok(()) };
            if self.launch.sanitize {
                let pc = self.pc[first];
                if let Some(o) = (0..self.n).find(|&t| self.state[t] == Some(Stop::Done) || self.pc[t] != pc) {
                    return Err(self.divergent(first, o));
                }
            }
            if let Some(shadow) = self.shadow.as_mut() {
                shadow.epoch += 1;
            }
            for t in 0..self.n {
                if self.state[t] == Some(Stop::Bar) {
                    self.state[t] = None;
                    self.pc[t] += 1;
                }
            }
        }
    }

    /// Runs every ready thread of the warp `lo..hi` until it stops.
    fn run_warp(
        &mut self,
        lo: usize,
        hi: usize,
        params: &[u8],
        memory: &mut Memory,
        cache: &mut Cache,
    ) -> Result<(), Fault> {
        let mut env = Env {
            code: &self.kernel.code,
            params,
            memory,
            shared: &mut self.shared,
            shadow: self.shadow.as_mut(),
            cache: *cache,
        };
        for t in lo..hi {
            if self.state[t].is_some() {
                continue;
            }
            let r = &mut self.regs[t * self.slots..(t + 1) * self.slots];
            match env.run(r, &mut self.pc[t], t as u32) {
                Ok(stop) => self.state[t] = Some(stop),
                Err(kind) => {
                    let fault = self.fault(kind, t);
                    return Err(fault);
                }
            }
        }
        *cache = env.cache;
        Ok(())
    }

    /// Resolves a shuffle or an `mma.sync` of the warp `lo..hi` if its lanes wait at one; false if
    /// none does.
    fn shuffle(&mut self, lo: usize, hi: usize) -> Result<bool, Fault> {
        let Some(first) = (lo..hi).find(|&t| self.state[t] == Some(Stop::Shfl)) else { return Ok(false) };
        let pc = self.pc[first];
        if let Some(o) = (lo..hi)
            .find(|&t| self.state[t] == Some(Stop::Bar) || (self.state[t] == Some(Stop::Shfl) && self.pc[t] != pc))
        {
            return Err(self.divergent(first, o));
        }
        let (mode, d, p, a, b, c) = match self.kernel.code[pc as usize].op {
            Op::Shfl { mode, d, p, a, b, c } => (mode, d, p, a, b, c),
            Op::Mma { kind, d, a, b, c } => {
                self.mma(lo, hi, first, kind, d, (a, b, c))?;
                return Ok(true);
            }
            _ => return Err(self.fault(FaultKind::Unsupported("a warp instruction that is none".into()), first)),
        };
        let mut values = [0u64; 32];
        let mut waiting = [false; 32];
        for t in lo..hi {
            values[t - lo] = read(&self.regs[t * self.slots..(t + 1) * self.slots], a);
            waiting[t - lo] = self.state[t] == Some(Stop::Shfl);
        }
        for t in lo..hi {
            if self.state[t] != Some(Stop::Shfl) {
                continue;
            }
            let r = &mut self.regs[t * self.slots..(t + 1) * self.slots];
            let (j, ok) = shfl_source(mode, (t - lo) as u32, read(r, b) as u32, read(r, c) as u32);
            let live = lo + (j as usize) < hi && waiting[j as usize];
            r[d as usize] = if live { values[j as usize] } else { values[t - lo] };
            if let Some(p) = p {
                r[p as usize] = ok as u64;
            }
            self.state[t] = None;
            self.pc[t] += 1;
        }
        Ok(true)
    }
    /// `mma.sync.aligned` of the warp `lo..hi`: every one of its 32 lanes must wait at it (a lane
    /// that has exited, or a warp of fewer than 32 threads, is undefined on a GPU and a fault here).
    fn mma(
        &mut self,
        lo: usize,
        hi: usize,
        first: usize,
        kind: MmaKind,
        d: [Reg; 4],
        (a, b, c): ([Src; 4], [Src; 2], [Src; 4]),
    ) -> Result<(), Fault> {
        if hi - lo != 32 {
            let why = format!("mma.sync needs all 32 lanes of a warp; this warp has {} threads", hi - lo);
            return Err(self.fault(FaultKind::Unsupported(why), first));
        }
        if let Some(o) = (lo..hi).find(|&t| self.state[t] != Some(Stop::Shfl)) {
            return Err(self.divergent(first, o));
        }
        let (mut fa, mut fb, mut fc) = ([[0u32; 4]; 32], [[0u32; 2]; 32], [[0u32; 4]; 32]);
        for t in lo..hi {
            let r = &self.regs[t * self.slots..(t + 1) * self.slots];
            let l = t - lo;
            (0..4).for_each(|i| fa[l][i] = read(r, a[i]) as u32);
            (0..2).for_each(|i| fb[l][i] = read(r, b[i]) as u32);
            (0..4).for_each(|i| fc[l][i] = read(r, c[i]) as u32);
        }
        let out = crate::mma::mma(kind, &fa, &fb, &fc);
        for t in lo..hi {
            let r = &mut self.regs[t * self.slots..(t + 1) * self.slots];
            (0..4).for_each(|i| r[d[i] as usize] = out[t - lo][i] as u64);
            self.state[t] = None;
            self.pc[t] += 1;
        }
        Ok(())
    }
}

/// The value of operand `s` in the register file `regs`.
fn read(regs: &[u64], s: Src) -> u64 {
    match s {
        Src::R(i) => regs[i as usize],
        Src::I(x) => x,
    }
}
