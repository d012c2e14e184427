//! An entry and the `.func`s it calls, to one flat [`Kernel`]: each call is inlined (arguments
//! moved into the callee's freshly numbered registers, its body, its results moved back), labels
//! become instruction indices, and the `.shared` variables the kernel uses get their offsets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::decode::{Names, decode, operand_src};
use crate::ir::*;
use crate::parse::{Decl, Operand, RawFunc, RawInstr, RawModule, Stmt};
use crate::{Kernel, LoadError, Param};

struct Scope<'a> {
    regs: HashMap<String, Reg>,
    shared: &'a HashMap<String, u64>,
    params: &'a HashMap<String, (u32, u32)>,
}

impl Names for Scope<'_> {
    fn reg(&self, name: &str) -> Option<Reg> {
        match SPECIAL_REGS.iter().position(|s| *s == name) {
            Some(i) => Some(i as Reg),
            None => self.regs.get(name).copied(),
        }
    }
    fn shared(&self, name: &str) -> Option<u64> {
        self.shared.get(name).copied()
    }
    fn entry_param(&self, name: &str) -> Option<(u32, u32)> {
        self.params.get(name).copied()
    }
}

struct Linker<'m> {
    module: &'m RawModule,
    code: Vec<Instr>,
    next_reg: Reg,
    shared: HashMap<String, u64>,
    params: HashMap<String, (u32, u32)>,
    /// The calls being inlined (to refuse recursion).
    stack: Vec<&'m str>,
    /// 32-bit registers declared by the functions counted so far.
    registers: usize,
    counted: HashSet<&'m str>,
}

fn names_in(o: &Operand, out: &mut Vec<String>) {
    match o {
        Operand::Name(n) | Operand::Not(n) => out.push(n.clone()),
        Operand::Addr(b, _) => names_in(b, out),
        Operand::List(items) => items.iter().for_each(|i| names_in(i, out)),
        Operand::Pipe(a, b) => out.extend([a.clone(), b.clone()]),
        Operand::Num(_) => {}
    }
}

fn instrs(f: &RawFunc) -> impl Iterator<Item = &RawInstr> {
    f.body.iter().filter_map(|s| if let Stmt::Instr(i) = s { Some(i) } else { None })
}

impl<'m> Linker<'m> {
    fn func(&self, name: &str, line: u32) -> Result<&'m RawFunc, LoadError> {
        let f = self.module.funcs.iter().find(|f| f.name == name && !f.entry);
        f.ok_or_else(|| LoadError::new(line as usize, format!("call of `{name}`, which is no .func of this module")))
    }

    /// Every name the entry and the functions it reaches mention (to lay out shared memory).
    fn mentioned(&self, f: &'m RawFunc, seen: &mut HashSet<&'m str>, out: &mut Vec<String>) -> Result<(), LoadError> {
        if !seen.insert(&f.name) {
            return Ok(());
        }
        for ins in instrs(f) {
            ins.operands.iter().for_each(|o| names_in(o, out));
            if ins.opcode.split('.').next() == Some("call") {
                let callee = match ins.operands.as_slice() {
                    [Operand::List(_), Operand::Name(n), ..] | [Operand::Name(n), ..] => n,
                    _ => return Err(LoadError::new(ins.line as usize, "a call needs a function name")),
                };
                self.mentioned(self.func(callee, ins.line)?, seen, out)?;
            }
        }
        Ok(())
    }

    /// Gives the shared variables `entry` uses their offsets; returns the static bytes and where
    /// the dynamic shared memory starts (the static end, aligned for the `.extern` variables).
    fn layout_shared(&mut self, entry: &'m RawFunc) -> Result<(usize, usize), LoadError> {
        let mut used = Vec::new();
        self.mentioned(entry, &mut HashSet::new(), &mut used)?;
        let used: HashSet<String> = used.into_iter().collect();
        let mut end = 0usize;
        let mut dynamic = Vec::new();
        for d in self.module.shared.iter().filter(|d| used.contains(&d.name)) {
            let align = d.align.max(d.elem_bytes()?);
            if d.array == Some(0) {
                dynamic.push((d.name.clone(), align));
                continue;
            }
            end = end.div_ceil(align) * align;
            self.shared.insert(d.name.clone(), end as u64);
            end += d.elem_bytes()? * d.array.unwrap_or(1);
        }
        let align = dynamic.iter().map(|(_, a)| *a).max().unwrap_or(1);
        let dynamic_at = end.div_ceil(align) * align;
        for (name, _) in dynamic {
            self.shared.insert(name, dynamic_at as u64);
        }
        Ok((end, dynamic_at))
    }

    /// Numbers the register `d` in `regs` (a redeclaration in an inner scope reuses it); returns
    /// the 32-bit registers it takes (predicates none).
    fn alloc(&mut self, regs: &mut HashMap<String, Reg>, d: &Decl) -> Result<usize, LoadError> {
        if d.array.is_some() {
            return Err(LoadError::new(d.line as usize, format!("`{}`: array registers are not supported", d.name)));
        }
        let bytes = d.elem_bytes()?;
        if !regs.contains_key(&d.name) {
            regs.insert(d.name.clone(), self.next_reg);
            self.next_reg += 1;
        }
        Ok(if d.ty == "pred" { 0 } else { bytes.div_ceil(4) })
    }

    /// Emits `f`'s body with its registers in `regs` (parameters already there).
    fn body(&mut self, f: &'m RawFunc, mut regs: HashMap<String, Reg>) -> Result<(), LoadError> {
        let count = self.counted.insert(&f.name);
        for s in &f.body {
            if let Stmt::Reg(d) = s {
                let n = self.alloc(&mut regs, d)?;
                self.registers += if count { n } else { 0 };
            }
        }
        // Entry parameters are visible in the entry only.
        let (shared, params) = (self.shared.clone(), if f.entry { self.params.clone() } else { HashMap::new() });
        self.statements(f, &Scope { regs, shared: &shared, params: &params })
    }

    fn statements(&mut self, f: &'m RawFunc, scope: &Scope) -> Result<(), LoadError> {
        let mut labels = HashMap::new();
        let mut fixups: Vec<(usize, Option<&str>, u32)> = Vec::new();
        for s in &f.body {
            let ins = match s {
                Stmt::Instr(i) => i,
                Stmt::Label(name, line) => {
                    if labels.insert(name.as_str(), self.code.len() as u32).is_some() {
                        return Err(LoadError::new(*line as usize, format!("label `{name}` is defined twice")));
                    }
                    continue;
                }
                Stmt::Reg(_) => continue,
            };
            let guard = match &ins.guard {
                None => None,
                Some((p, neg)) => match scope.reg(p) {
                    Some(r) => Some((r, *neg)),
                    None => return Err(LoadError::new(ins.line as usize, format!("unknown predicate `{p}`"))),
                },
            };
            let push = |code: &mut Vec<Instr>, op| code.push(Instr { guard, op, line: ins.line });
            match ins.opcode.split('.').next().unwrap_or("") {
                "bra" => match ins.operands.as_slice() {
                    [Operand::Name(l)] if matches!(ins.opcode.as_str(), "bra" | "bra.uni") => {
                        fixups.push((self.code.len(), Some(l), ins.line));
                        push(&mut self.code, Op::Bra { target: 0 });
                    }
                    _ => return Err(LoadError::new(ins.line as usize, "`bra` takes one label")),
                },
                "ret" | "exit" if f.entry => push(&mut self.code, Op::Exit),
                "exit" => push(&mut self.code, Op::Exit),
                "ret" => {
                    fixups.push((self.code.len(), None, ins.line));
                    push(&mut self.code, Op::Bra { target: 0 });
                }
                "call" if guard.is_some() => {
                    return Err(LoadError::new(ins.line as usize, "a guarded `call` is not supported"));
                }
                "call" => self.call(ins, scope)?,
                _ => push(&mut self.code, decode(ins, scope)?),
            }
        }
        let end = self.code.len() as u32;
        for (at, label, line) in fixups {
            let target = match label {
                None => end,
                Some(l) => *labels
                    .get(l)
                    .ok_or_else(|| LoadError::new(line as usize, format!("`{l}` is no label of `{}`", f.name)))?,
            };
            self.code[at].op = Op::Bra { target };
        }
        Ok(())
    }

    /// Inlines `call (rets), f, (args);`.
    fn call(&mut self, ins: &RawInstr, scope: &Scope) -> Result<(), LoadError> {
        let err = |what: String| LoadError::new(ins.line as usize, what);
        let (rets, name, args): (&[Operand], &String, &[Operand]) = match ins.operands.as_slice() {
            [Operand::List(r), Operand::Name(n), Operand::List(a)] => (r, n, a),
            [Operand::List(r), Operand::Name(n)] => (r, n, &[]),
            [Operand::Name(n), Operand::List(a)] => (&[], n, a),
            [Operand::Name(n)] => (&[], n, &[]),
            _ => return Err(err("expected `call (results), name, (arguments);`".into())),
        };
        let f = self.func(name, ins.line)?;
        if self.stack.contains(&f.name.as_str()) {
            return Err(err(format!("`{name}` calls itself (recursion is not supported)")));
        }
        if rets.len() != f.rets.len() || args.len() != f.params.len() {
            return Err(err(format!(
                "`{name}` takes {} arguments and returns {} values; the call has {} and {}",
                f.params.len(),
                f.rets.len(),
                args.len(),
                rets.len()
            )));
        }
        let count = !self.counted.contains(f.name.as_str());
        let mut regs = HashMap::new();
        for d in f.params.iter().chain(&f.rets) {
            let n = self.alloc(&mut regs, d)?;
            self.registers += if count { n } else { 0 };
        }
        for (d, a) in f.params.iter().zip(args) {
            let a = operand_src(ins, scope, a, &d.ty)?;
            self.code.push(Instr { guard: None, op: Op::Mov { d: regs[&d.name], a, bytes: 8 }, line: ins.line });
        }
        let outs: Vec<Reg> = f.rets.iter().map(|d| regs[&d.name]).collect();
        self.stack.push(&f.name);
        self.body(f, regs)?;
        self.stack.pop();
        for (o, r) in rets.iter().zip(outs) {
            let Operand::Name(n) = o else { return Err(err(format!("a call's result must be a register, not {o:?}"))) };
            let d = scope.reg(n).ok_or_else(|| err(format!("unknown register `{n}`")))?;
            self.code.push(Instr { guard: None, op: Op::Mov { d, a: Src::R(r), bytes: 8 }, line: ins.line });
        }
        Ok(())
    }
}

/// The entry `f` of `module` as a runnable kernel.
fn link_entry(module: &RawModule, f: &RawFunc, lines: &Arc<Vec<String>>) -> Result<Kernel, LoadError> {
    let mut l = Linker {
        module,
        code: Vec::new(),
        next_reg: FIRST_USER_REG,
        shared: HashMap::new(),
        params: HashMap::new(),
        stack: vec![&f.name],
        registers: 0,
        counted: HashSet::new(),
    };
    let (shared_bytes, dynamic_at) = l.layout_shared(f)?;
    let mut params = Vec::new();
    let mut offsets = Vec::new();
    let mut end = 0usize;
    for d in &f.params {
        let elem = d.elem_bytes()?;
        let bytes = elem * d.array.unwrap_or(1);
        let align = d.align.max(elem);
        end = end.div_ceil(align) * align;
        l.params.insert(d.name.clone(), (end as u32, bytes as u32));
        offsets.push(end);
        params.push(Param { name: d.name.clone(), bytes });
        end += bytes;
    }
    l.body(f, HashMap::new())?;
    l.code.push(Instr { guard: None, op: Op::Exit, line: f.line });
    Ok(Kernel {
        name: f.name.clone(),
        params,
        param_offsets: offsets,
        param_bytes: end,
        code: l.code,
        registers: l.registers,
        slots: l.next_reg as usize,
        shared_bytes,
        dynamic_at,
        lines: Arc::clone(lines),
    })
}

/// Every entry of `text`, linked.
pub fn link(text: &str) -> Result<Vec<Kernel>, LoadError> {
    let module = crate::parse::parse_module(text)?;
    let lines = Arc::new(text.lines().map(str::to_string).collect());
    let mut names = HashSet::new();
    for f in &module.funcs {
        if !names.insert((&f.name, f.entry)) {
            return Err(LoadError::new(f.line as usize, format!("`{}` is defined twice", f.name)));
        }
    }
    module.funcs.iter().filter(|f| f.entry).map(|f| link_entry(&module, f, &lines)).collect()
}
