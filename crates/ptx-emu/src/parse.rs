//! Tokens to the raw structure of a module: its `.shared` variables and its functions, each a list
//! of declarations, labels and instructions with their operands still as text. [`crate::link`]
//! turns an entry and the `.func`s it calls into a [`crate::Kernel`].

use crate::LoadError;
use crate::lex::{Tok, lex};

/// A declared name: a `.reg` or `.param` (of a function or an entry), or a `.shared` variable.
#[derive(Clone, Debug)]
pub struct Decl {
    pub ty: String,
    pub name: String,
    /// `name[N]`: the element count (0 for `name[]`, the dynamic shared memory).
    pub array: Option<usize>,
    pub align: usize,
    pub line: u32,
}

impl Decl {
    /// Bytes of one element of the declared type (`.pred` counts as 1).
    pub fn elem_bytes(&self) -> Result<usize, LoadError> {
        type_bytes(&self.ty).ok_or_else(|| LoadError::new(self.line as usize, format!("unknown type .{}", self.ty)))
    }
}

/// The size of a PTX type name (without the dot).
pub fn type_bytes(ty: &str) -> Option<usize> {
    Some(match ty {
        "pred" | "b8" | "u8" | "s8" => 1,
        "b16" | "u16" | "s16" | "f16" | "bf16" => 2,
        "b32" | "u32" | "s32" | "f32" | "f16x2" | "bf16x2" => 4,
        "b64" | "u64" | "s64" | "f64" => 8,
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A register, parameter, shared variable, label or function name.
    Name(String),
    /// A numeric literal as written (with a leading `-` if negated).
    Num(String),
    /// `!p` (a negated predicate).
    Not(String),
    /// `[base + offset]`.
    Addr(Box<Operand>, i64),
    /// `{a, b, ...}`, or `(a, b, ...)` in a `call`.
    List(Vec<Operand>),
    /// `d|p`.
    Pipe(String, String),
}

#[derive(Clone, Debug)]
pub struct RawInstr {
    pub guard: Option<(String, bool)>,
    pub opcode: String,
    pub operands: Vec<Operand>,
    pub line: u32,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Reg(Decl),
    Label(String, u32),
    Instr(RawInstr),
}

#[derive(Clone, Debug)]
pub struct RawFunc {
    pub name: String,
    pub entry: bool,
    pub params: Vec<Decl>,
    pub rets: Vec<Decl>,
    pub body: Vec<Stmt>,
    pub line: u32,
}

#[derive(Clone, Debug, Default)]
pub struct RawModule {
    pub shared: Vec<Decl>,
    pub funcs: Vec<RawFunc>,
}

struct Parser<'a> {
    toks: Vec<Tok<'a>>,
    i: usize,
}

impl<'a> Parser<'a> {
    fn line(&self) -> usize {
        self.toks.get(self.i).or(self.toks.last()).map_or(1, |t| t.line as usize)
    }
    fn err<T>(&self, what: impl Into<String>) -> Result<T, LoadError> {
        Err(LoadError::new(self.line(), what))
    }
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.i).map(|t| t.text)
    }
    fn next(&mut self) -> Result<Tok<'a>, LoadError> {
        let t = self.toks.get(self.i).copied();
        self.i += 1;
        t.ok_or_else(|| LoadError::new(self.line(), "unexpected end of text"))
    }
    fn eat(&mut self, text: &str) -> bool {
        let hit = self.peek() == Some(text);
        self.i += hit as usize;
        hit
    }
    fn expect(&mut self, text: &str) -> Result<(), LoadError> {
        match self.peek() {
            Some(t) if t == text => {
                self.i += 1;
                Ok(())
            }
            Some(t) => self.err(format!("expected `{text}`, found `{t}`")),
            None => self.err(format!("expected `{text}` at the end of the text")),
        }
    }
    fn number(&mut self) -> Result<usize, LoadError> {
        let t = self.next()?;
        t.text.parse().map_err(|_| LoadError::new(t.line as usize, format!("expected a number, found `{}`", t.text)))
    }
    fn name(&mut self) -> Result<String, LoadError> {
        let t = self.next()?;
        if t.text.starts_with(|c: char| c.is_ascii_alphabetic() || "_%$".contains(c)) {
            Ok(t.text.to_string())
        } else {
            Err(LoadError::new(t.line as usize, format!("expected a name, found `{}`", t.text)))
        }
    }

    /// `[.align N] .TYPE name[<N>|[N]|[]]`; returns one declaration per name (`%r<4>` gives 4).
    fn decl(&mut self) -> Result<Vec<Decl>, LoadError> {
        let line = self.line() as u32;
        let mut align = 0;
        if self.eat(".align") {
            align = self.number()?;
        }
        let ty = self.next()?.text;
        let Some(ty) = ty.strip_prefix('.') else { return self.err(format!("expected a type, found `{ty}`")) };
        let ty = ty.to_string();
        // nvcc's pointer parameters: `.param .u64 .ptr .global .align 4 name`.
        while let Some(t @ (".ptr" | ".global" | ".shared" | ".const" | ".local" | ".align")) = self.peek() {
            self.i += 1;
            if t == ".align" {
                align = self.number()?;
            }
        }
        let mut out = Vec::new();
        loop {
            let name = self.name()?;
            let decl = |name: String, array| Decl { ty: ty.clone(), name, array, align, line };
            if self.eat("<") {
                let n = self.number()?;
                self.expect(">")?;
                out.extend((0..n).map(|i| decl(format!("{name}{i}"), None)));
            } else if self.eat("[") {
                let n = if self.peek() == Some("]") { 0 } else { self.number()? };
                self.expect("]")?;
                out.push(decl(name, Some(n)));
            } else {
                out.push(decl(name, None));
            }
            let more = self.peek() == Some(",") && self.toks.get(self.i + 1).is_some_and(|t| !t.text.starts_with('.'));
            if !more {
                return Ok(out);
            }
            self.i += 1;
        }
    }

    /// `( .reg .TYPE name, .param .TYPE name, ... )` (the space keyword is kept out).
    fn param_list(&mut self) -> Result<Vec<Decl>, LoadError> {
        self.expect("(")?;
        let mut out = Vec::new();
        while !self.eat(")") {
            match self.next()?.text {
                ".reg" | ".param" => out.extend(self.decl()?),
                t => return self.err(format!("expected `.reg` or `.param` in a parameter list, found `{t}`")),
            }
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        Ok(out)
    }

    fn operand(&mut self) -> Result<Operand, LoadError> {
        let t = self.next()?;
        match t.text {
            "[" => {
                let base = self.operand()?;
                let mut offset = 0i64;
                if self.eat("+") {
                    let neg = self.eat("-");
                    let n = self.next()?;
                    let v = parse_int(n.text)
                        .ok_or_else(|| LoadError::new(n.line as usize, format!("bad address offset `{}`", n.text)))?;
                    offset = if neg { -(v as i64) } else { v as i64 };
                }
                self.expect("]")?;
                Ok(Operand::Addr(Box::new(base), offset))
            }
            "{" | "(" => {
                let close = if t.text == "{" { "}" } else { ")" };
                let mut items = Vec::new();
                if !self.eat(close) {
                    items.push(self.operand()?);
                    while self.eat(",") {
                        items.push(self.operand()?);
                    }
                    self.expect(close)?;
                }
                Ok(Operand::List(items))
            }
            "-" => Ok(Operand::Num(format!("-{}", self.next()?.text))),
            "!" => Ok(Operand::Not(self.name()?)),
            s if s.starts_with(|c: char| c.is_ascii_digit()) => Ok(Operand::Num(s.to_string())),
            s => {
                let name = s.to_string();
                if self.eat("|") {
                    return Ok(Operand::Pipe(name, self.name()?));
                }
                Ok(Operand::Name(name))
            }
        }
    }

    /// One statement of a body; `None` at the closing brace of the body.
    fn stmt(&mut self, out: &mut Vec<Stmt>, depth: &mut usize) -> Result<bool, LoadError> {
        let line = self.line() as u32;
        let t = self.next()?.text;
        match t {
            "{" => *depth += 1,
            "}" if *depth == 0 => return Ok(false),
            "}" => *depth -= 1,
            ".reg" | ".param" => {
                out.extend(self.decl()?.into_iter().map(Stmt::Reg));
                self.expect(";")?;
            }
            ".pragma" | ".loc" | ".file" => {
                while !self.eat(";") {
                    self.next()?;
                }
            }
            t if t.starts_with('.') => return self.err(format!("`{t}` inside a function is not supported")),
            t if self.peek() == Some(":") => {
                self.i += 1;
                out.push(Stmt::Label(t.to_string(), line));
            }
            t => {
                let mut guard = None;
                let mut opcode = t;
                if t == "@" {
                    let neg = self.eat("!");
                    guard = Some((self.name()?, neg));
                    opcode = self.next()?.text;
                }
                let mut operands = Vec::new();
                if !self.eat(";") {
                    loop {
                        operands.push(self.operand()?);
                        if self.eat(";") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                out.push(Stmt::Instr(RawInstr { guard, opcode: opcode.to_string(), operands, line }));
            }
        }
        Ok(true)
    }

    fn function(&mut self, entry: bool) -> Result<RawFunc, LoadError> {
        let line = self.line() as u32;
        let rets = if !entry && self.peek() == Some("(") { self.param_list()? } else { Vec::new() };
        let name = self.name()?;
        let params = if self.peek() == Some("(") { self.param_list()? } else { Vec::new() };
        // Performance directives (.maxntid 256, 1, 1 and the like) say nothing about the result.
        while self.peek().is_some_and(|t| t.starts_with('.')) {
            self.next()?;
            while self.peek().is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()) || t == ",") {
                self.next()?;
            }
        }
        if self.eat(";") {
            return self.err(format!("`{name}` is only declared; a prototype without a body is not supported"));
        }
        self.expect("{")?;
        let mut body = Vec::new();
        let mut depth = 0;
        while self.stmt(&mut body, &mut depth)? {}
        Ok(RawFunc { name, entry, params, rets, body, line })
    }
}

/// A decimal, `0x` hexadecimal or `0b` binary integer literal (a trailing `U` allowed).
pub fn parse_int(text: &str) -> Option<u64> {
    let t = text.strip_suffix('U').unwrap_or(text);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = t.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else {
        t.parse().ok()
    }
}

/// The module-level structure of `text`.
pub fn parse_module(text: &str) -> Result<RawModule, LoadError> {
    let mut p = Parser { toks: lex(text)?, i: 0 };
    let mut module = RawModule::default();
    while let Some(t) = p.peek() {
        let line = p.toks[p.i].line;
        p.i += 1;
        match t {
            ".version" | ".target" | ".address_size" => {
                while p.toks.get(p.i).is_some_and(|t| t.line == line && !t.text.starts_with('.')) {
                    p.i += 1;
                }
            }
            ".visible" | ".weak" | ".extern" if p.peek() != Some(".shared") => {}
            ".extern" => {}
            ".shared" => {
                module.shared.extend(p.decl()?);
                p.expect(";")?;
            }
            ".entry" => module.funcs.push(p.function(true)?),
            ".func" => module.funcs.push(p.function(false)?),
            t => return Err(LoadError::new(line as usize, format!("`{t}` at module level is not supported"))),
        }
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_module() {
        let m = parse_module(
            ".version 8.0\n.target sm_80\n.address_size 64\n.shared .align 16 .f32 s[64];\n\
             .func (.reg .f32 r) f(.reg .f32 a) { mov.f32 r, a; ret; }\n\
             .visible .entry k(.param .u64 k_x, .param .u32 k_n) .maxntid 256, 1, 1\n{\n .reg .b32 %r<3>;\n\
             L1: @!%p ld.shared.v4.f32 {%f1, %f2, %f3, %f4}, [s+16];\n call (%f1), f, (0f3F800000);\n}\n",
        )
        .unwrap();
        assert_eq!(m.shared.len(), 1);
        assert_eq!(m.funcs.len(), 2);
        let k = &m.funcs[1];
        assert_eq!((k.name.as_str(), k.entry, k.params.len()), ("k", true, 2));
        assert_eq!(k.body.len(), 3 + 1 + 2);
        let Stmt::Instr(ld) = &k.body[4] else { panic!("not an instruction: {:?}", k.body[4]) };
        assert_eq!(ld.guard, Some(("%p".to_string(), true)));
        assert_eq!(ld.line, 9);
        assert_eq!(ld.operands[1], Operand::Addr(Box::new(Operand::Name("s".into())), 16));
        assert!(parse_module(".global .f32 g;").unwrap_err().to_string().starts_with("line 1:"));
    }
}
