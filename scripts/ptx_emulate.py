#!/usr/bin/env python3
"""Run kernelab's hand-written PTX without a GPU, on a small interpreter, and check the results.

The interpreter knows exactly the PTX subset `kernels/*.ptx` uses: integer and f32 arithmetic,
predicates, branches, calls to `.func`s, global and shared loads and stores (128-bit ones too),
`bar.sync` and `shfl.sync.bfly`. Each thread is a Python generator that pauses at a barrier or a
shuffle; a block runs until every thread is done. Floats are computed in double precision, so this
checks indexing, bounds, synchronization and the formulas, not f32 rounding (the GPU conformance
suite does that).

Every kernel runs on awkward shapes (edges of every tile, several warps, grid striding) with every
output poisoned with NaN first, against a plain Python reference.

    scripts/ptx_emulate.py [-k NAME]      # NAME filters the cases by substring
"""

import argparse
import glob
import math
import os
import random
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAN = float("nan")


# ---------------------------------------------------------------------------------------------
# Parsing


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def split_operands(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


class Function:
    def __init__(self, name, params, returns, body):
        self.name, self.params, self.returns = name, params, returns
        self.code, self.labels = [], {}
        for stmt in re.split(r";", body):
            stmt = stmt.strip()
            while True:
                m = re.match(r"^([A-Za-z_][\w$]*):\s*(.*)$", stmt, re.S)
                if not m:
                    break
                self.labels[m.group(1)] = len(self.code)
                stmt = m.group(2).strip()
            if not stmt or stmt.startswith("."):
                continue
            pred, neg = None, False
            m = re.match(r"^@(!?)(%\w+)\s+(.*)$", stmt, re.S)
            if m:
                neg, pred, stmt = m.group(1) == "!", m.group(2), m.group(3)
            parts = stmt.split(None, 1)
            opcode = parts[0]
            operands = split_operands(parts[1]) if len(parts) > 1 else []
            self.code.append((pred, neg, opcode.split("."), operands))


def parse_params(text):
    names = []
    for p in split_operands(text):
        if p:
            names.append(p.split()[-1])
    return names


class Module:
    def __init__(self, path):
        text = strip_comments(open(path).read())
        self.shared = {}  # name -> (offset, bytes)
        offset = 0
        for m in re.finditer(r"^\.shared\s+\.align\s+(\d+)\s+\.f32\s+(\w+)\[(\d+)\];", text, re.M):
            align, name, count = int(m.group(1)), m.group(2), int(m.group(3))
            offset = (offset + align - 1) // align * align
            self.shared[name] = offset
            offset += 4 * count
        self.functions = {}
        pattern = r"\.(?:visible\s+\.entry|func)\s*(\((?:[^()]*)\))?\s*(\w+)\s*\(([^)]*)\)\s*\{"
        for m in re.finditer(pattern, text):
            returns = parse_params(m.group(1)[1:-1]) if m.group(1) else []
            name, params = m.group(2), parse_params(m.group(3))
            depth, i = 1, m.end()
            while depth:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            self.functions[name] = Function(name, params, returns, text[m.end() : i - 1])


# ---------------------------------------------------------------------------------------------
# Memory


class Memory:
    """Global memory: buffers of floats at separate base addresses."""

    def __init__(self):
        self.buffers = []  # (base, list)
        self.next = 1 << 32

    def alloc(self, values):
        base = self.next
        self.buffers.append((base, values))
        self.next += (len(values) * 4 + 4096) // 4096 * 4096 + 4096
        return base

    def locate(self, address):
        for base, values in self.buffers:
            if base <= address < base + 4 * len(values):
                if (address - base) % 4:
                    raise RuntimeError(f"misaligned access at {address:#x}")
                return values, (address - base) // 4
        raise RuntimeError(f"out-of-bounds global access at {address:#x}")

    def load(self, address):
        values, i = self.locate(address)
        return values[i]

    def store(self, address, value):
        values, i = self.locate(address)
        values[i] = value


class Shared:
    def __init__(self, size):
        self.size, self.data = size, {}

    def check(self, address):
        if not 0 <= address < self.size or address % 4:
            raise RuntimeError(f"bad shared access at {address}")

    def load(self, address):
        self.check(address)
        return self.data.get(address, NAN)

    def store(self, address, value):
        self.check(address)
        self.data[address] = value


# ---------------------------------------------------------------------------------------------
# Execution

MASK = {"u32": 0xFFFFFFFF, "s32": 0xFFFFFFFF, "b32": 0xFFFFFFFF, "u64": (1 << 64) - 1, "b64": (1 << 64) - 1}


def hexfloat(text):
    return struct.unpack(">f", bytes.fromhex(text[2:]))[0]


def f32(x):
    """Round to f32 range (overflow to inf); keeps double precision otherwise."""
    if isinstance(x, float) and math.isfinite(x) and abs(x) > 3.4028234663852886e38:
        return math.copysign(math.inf, x)
    return x


class Thread:
    def __init__(self, block, tid, ctaid, ntid, nctaid):
        self.block = block
        self.special = {
            "%tid.x": tid[0], "%tid.y": tid[1], "%tid.z": 0,
            "%ntid.x": ntid[0], "%ntid.y": ntid[1], "%ntid.z": 1,
            "%ctaid.x": ctaid[0], "%ctaid.y": ctaid[1], "%ctaid.z": 0,
            "%nctaid.x": nctaid[0], "%nctaid.y": nctaid[1], "%nctaid.z": 1,
        }
        self.lane = (tid[0] + tid[1] * ntid[0]) % 32
        self.warp = (tid[0] + tid[1] * ntid[0]) // 32


def run_function(thread, fn, args, params_space):
    """Generator: runs `fn` in `thread` with argument values `args`; returns the return values."""
    module = thread.block.module
    regs = {}
    for name, value in zip(fn.params, args):
        regs[name] = value
    for name in fn.returns:
        regs[name] = None

    def value(op, kind="u32"):
        op = op.strip()
        if op.startswith("0f"):
            return hexfloat(op)
        if re.fullmatch(r"-?\d+", op):
            return int(op)
        if op in thread.special:
            return thread.special[op]
        if op in regs:
            v = regs[op]
            if v is None:
                raise RuntimeError(f"{fn.name}: read of unset register {op}")
            return v
        if op in module.shared:
            return module.shared[op]
        raise RuntimeError(f"{fn.name}: unknown operand {op}")

    def address(op):
        inner = op.strip()[1:-1].strip()
        m = re.fullmatch(r"(\S+?)\s*\+\s*(-?\d+)", inner)
        if m:
            return value(m.group(1)) + int(m.group(2))
        if inner in params_space:
            return ("param", inner)
        return value(inner)

    pc = 0
    code = fn.code
    while pc < len(code):
        pred, neg, op, ops = code[pc]
        pc += 1
        if pred is not None:
            p = regs[pred]
            if p == neg:
                continue
        name = op[0]
        mods = op[1:]
        typ = mods[-1] if mods else ""
        if name == "ret":
            return [regs[r] for r in fn.returns]
        if name == "bra":
            pc = fn.labels[ops[0]]
            continue
        if name == "ld" or name == "st":
            space = mods[0]
            vec = 4 if "v4" in mods else 1
            if name == "ld":
                dst, src = ops
                if space == "param":
                    regs[dst] = params_space[src.strip()[1:-1]]
                    continue
                addr = address(src)
                mem = thread.block.shared if space == "shared" else thread.block.memory
                if vec == 4:
                    names = [n.strip() for n in dst.strip()[1:-1].split(",")]
                    for i, n in enumerate(names):
                        regs[n] = mem.load(addr + 4 * i)
                else:
                    regs[dst] = mem.load(addr)
            else:
                dst, src = ops
                addr = address(dst)
                mem = thread.block.shared if space == "shared" else thread.block.memory
                if vec == 4:
                    names = [n.strip() for n in src.strip()[1:-1].split(",")]
                    for i, n in enumerate(names):
                        mem.store(addr + 4 * i, value(n))
                else:
                    mem.store(addr, value(src))
            continue
        if name == "call":
            rets = [r.strip() for r in ops[0].strip()[1:-1].split(",")] if ops[0].startswith("(") else []
            target = ops[1] if rets else ops[0]
            argtext = ops[2] if rets else ops[1]
            args_ = [value(a.strip()) for a in argtext.strip()[1:-1].split(",")]
            results = yield from run_function(thread, module.functions[target.strip()], args_, {})
            for r, v in zip(rets, results):
                regs[r] = v
            continue
        if name == "bar":
            yield ("bar",)
            continue
        if name == "shfl":
            dst, src, lane_mask = ops[0], ops[1], ops[2]
            regs[dst] = yield ("shfl", value(src), int(lane_mask))
            continue
        if name == "mov":
            dst, src = ops
            if src.startswith("{"):
                regs[dst] = tuple(value(s.strip()) for s in src[1:-1].split(","))
            elif dst.startswith("{"):
                for n, v in zip(dst[1:-1].split(","), value(src)):
                    regs[n.strip()] = v
            else:
                regs[dst] = value(src)
            continue
        if name == "cvta":
            regs[ops[0]] = value(ops[1])
            continue
        if name == "setp":
            cmp = mods[0]
            a, b = value(ops[1]), value(ops[2])
            isf = typ == "f32"
            nan = isf and (math.isnan(a) or math.isnan(b))
            r = {
                "lt": lambda: not nan and a < b, "le": lambda: not nan and a <= b,
                "gt": lambda: not nan and a > b, "ge": lambda: not nan and a >= b,
                "eq": lambda: not nan and a == b, "ne": lambda: not nan and a != b,
                "neu": lambda: nan or a != b,
            }[cmp]()
            if len(mods) == 3:  # setp.cmp.bool.type d, a, b, c
                c = regs[ops[3]]
                r = (r and c) if mods[1] == "and" else (r or c)
            regs[ops[0]] = r
            continue
        if name == "and" and typ == "pred":
            regs[ops[0]] = regs[ops[1]] and regs[ops[2]]
            continue
        if name == "selp":
            regs[ops[0]] = value(ops[1]) if regs[ops[3]] else value(ops[2])
            continue
        if name == "cvt":
            src = value(ops[1])
            if mods[-2:] == ["f32", "u32"]:
                regs[ops[0]] = float(src)
            elif mods[-2:] == ["u32", "f32"]:
                regs[ops[0]] = 0 if math.isnan(src) else int(min(max(math.trunc(src), 0), 0xFFFFFFFF))
            elif mods[-2:] == ["u64", "u32"]:
                regs[ops[0]] = src
            else:
                raise RuntimeError(f"cvt {mods}")
            continue
        # arithmetic
        d = ops[0]
        args_ = [value(o) for o in ops[1:]]
        if typ == "f32":
            a = args_
            if name == "add":
                r = a[0] + a[1]
            elif name == "sub":
                r = a[0] - a[1]
            elif name == "mul":
                r = a[0] * a[1]
            elif name == "fma":
                r = a[0] * a[1] + a[2]
            elif name == "div":
                r = a[0] / a[1] if a[1] != 0 else (NAN if a[0] == 0 or math.isnan(a[0]) else math.copysign(math.inf, a[0]) * math.copysign(1, a[1]))
            elif name == "rcp":
                r = 1.0 / a[0] if a[0] != 0 else math.inf
            elif name == "sqrt":
                r = math.sqrt(a[0]) if a[0] >= 0 else NAN
            elif name == "ex2":
                x = a[0]
                r = 0.0 if x == -math.inf else (math.inf if x > 128 else 2.0 ** x) if not math.isnan(x) else NAN
            elif name == "lg2":
                x = a[0]
                r = NAN if (math.isnan(x) or x < 0) else (-math.inf if x == 0 else math.log2(x))
            elif name == "max":
                if "NaN" in mods and (math.isnan(a[0]) or math.isnan(a[1])):
                    r = NAN
                elif math.isnan(a[0]):
                    r = a[1]
                elif math.isnan(a[1]):
                    r = a[0]
                else:
                    r = max(a[0], a[1])
            else:
                raise RuntimeError(f"f32 op {op}")
            regs[d] = f32(r)
            continue
        mask = MASK.get(typ, MASK["u32"])
        a = args_
        if name == "add":
            r = a[0] + a[1]
        elif name == "sub":
            r = a[0] - a[1]
        elif name == "mul":
            if "wide" in mods:
                r, mask = (a[0] & 0xFFFFFFFF) * (a[1] & 0xFFFFFFFF), MASK["u64"]
            else:
                r = a[0] * a[1]
        elif name == "mad":
            if "wide" in mods:
                r, mask = a[0] * a[1] + a[2], MASK["u64"]
            else:
                r = a[0] * a[1] + a[2]
        elif name == "shl":
            r = a[0] << a[1]
        elif name == "shr":
            r = a[0] >> a[1]
        elif name == "and":
            r = a[0] & a[1]
        elif name == "xor":
            r = a[0] ^ a[1]
        elif name == "rem":
            r = a[0] % a[1]
        elif name == "min":
            r = min(a[0], a[1])
        else:
            raise RuntimeError(f"integer op {op}")
        regs[d] = r & mask
    return [regs[r] for r in fn.returns]


class Block:
    def __init__(self, module, memory):
        self.module, self.memory = module, memory
        size = max([o for o in module.shared.values()] + [0]) + 65536
        self.shared = Shared(size)


def launch(module, entry, grid, block, args, memory):
    fn = module.functions[entry]
    params = dict(zip(fn.params, args))
    for by in range(grid[1]):
        for bx in range(grid[0]):
            blk = Block(module, memory)
            threads, gens, state = [], [], []
            for ty in range(block[1]):
                for tx in range(block[0]):
                    t = Thread(blk, (tx, ty), (bx, by), block, grid)
                    threads.append(t)
                    gens.append(run_function(t, fn, [], params))
                    state.append(("start",))
            live = set(range(len(threads)))
            pending = {i: None for i in live}  # value to send
            waiting = {}
            while live:
                progressed = False
                for i in sorted(live):
                    if i in waiting:
                        continue
                    try:
                        event = gens[i].send(pending[i]) if state[i] != ("start",) else next(gens[i])
                        state[i] = event
                        waiting[i] = event
                    except StopIteration:
                        live.discard(i)
                    progressed = True
                # resolve shuffles warp by warp
                warps = {}
                for i, ev in waiting.items():
                    if ev[0] == "shfl":
                        warps.setdefault(threads[i].warp, []).append(i)
                for w, members in warps.items():
                    lanes = [i for i in live if threads[i].warp == w]
                    if len(members) == len(lanes):
                        by_lane = {threads[i].lane: waiting[i][1] for i in members}
                        for i in members:
                            other = threads[i].lane ^ waiting[i][2]
                            pending[i] = by_lane.get(other, waiting[i][1])
                            del waiting[i]
                        progressed = True
                if live and all(i in waiting and waiting[i][0] == "bar" for i in live):
                    for i in live:
                        pending[i] = None
                        del waiting[i]
                    progressed = True
                if not progressed:
                    raise RuntimeError(f"{entry}: deadlock in block ({bx}, {by}): {set(e[0] for e in waiting.values())}")


# ---------------------------------------------------------------------------------------------
# Cases


def close(got, want, tol=1e-4):
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if got is None or (isinstance(got, float) and math.isnan(got)):
        return False
    return abs(got - want) <= tol * (1 + abs(want))


def compare(name, got, want):
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if not close(g, w)]
    if len(got) != len(want) or bad:
        i = bad[0] if bad else None
        detail = f"first at {i}: got {got[i]}, want {want[i]}" if bad else "length"
        raise AssertionError(f"{name}: {len(bad)} of {len(want)} wrong; {detail}")


def rand(n, rng, lo=-2.0, hi=2.0):
    return [rng.uniform(lo, hi) for _ in range(n)]


# The matmul ladder (kernels/matmul/, one file per rung): variant -> (entry point, tile, block).
LADDER = {"naive": ("matmul_naive", 16, (16, 16)), "coalesced": ("matmul_coalesced", 16, (16, 16)),
          "tiled": ("matmul_tiled", 16, (16, 16)), "regblock": ("matmul_regblock", 64, (256, 1)),
          "vec4": ("matmul_vec4", 64, (256, 1)), "warptile": ("matmul_warptile", 128, (256, 1)),
          "example": ("my_matmul_tiled", 16, (16, 16))}


def kernel_modules(root):
    """Every entry point of root/**/*.ptx, by name, with the module that holds it (an entry point
    defined in two files is an error: the backend finds kernels by name)."""
    by_entry, where = {}, {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*.ptx"), recursive=True)):
        module = Module(path)
        for entry in re.findall(r"\.visible\s+\.entry\s+(\w+)", strip_comments(open(path).read())):
            if entry in by_entry:
                raise RuntimeError(f"{entry} is defined in both {where[entry]} and {path}")
            by_entry[entry], where[entry] = module, path
    return by_entry


def matmul_case(module, variant, m, n, k, ta, tb, alpha, beta, rng):
    entry, tile, block = LADDER[variant]
    a, b = rand(m * k, rng), rand(k * n, rng)
    c0 = rand(m * n, rng) if beta != 0 else [NAN] * (m * n)
    sam, sak = (1, m) if ta else (k, 1)
    sbk, sbn = (1, k) if tb else (n, 1)
    want = []
    for i in range(m):
        for j in range(n):
            acc = sum(a[i * sam + p * sak] * b[p * sbk + j * sbn] for p in range(k))
            want.append(alpha * acc + (beta * c0[i * n + j] if beta != 0 else 0.0))
    mem = Memory()
    pa, pb, pc = mem.alloc(a), mem.alloc(b), mem.alloc(list(c0))
    rows, cols = -(-m // tile), -(-n // tile)
    grid = (rows, cols) if variant == "naive" else (cols, rows)
    launch(module, entry, grid, block, [pa, pb, pc, m, n, k, sam, sak, sbk, sbn, alpha, beta], mem)
    compare(f"{entry} {m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'} beta={beta}", mem.buffers[2][1], want)


def softmax_ref(row, scale=1.0):
    s = [scale * v for v in row]
    mx = max(s)
    e = [math.exp(v - mx) for v in s]
    t = sum(e)
    return [v / t for v in e], mx + math.log(t)


def rowwise_cases(module, rng, grid_rows):
    cases = []
    for rows, cols in [(3, 5), (2, 300), (5, 33)]:
        cases += row_cases(module, rng, grid_rows, rows, cols)
    cases += col_sum_cases(module, rng)
    return cases


def row_cases(module, rng, grid_rows, rows, cols):
    """The row-wise kernels on one rows x cols shape (each case's closure owns its data)."""
    cases = []
    if True:
        x = rand(rows * cols, rng, -3, 3)
        dy = rand(rows * cols, rng)
        for r in range(rows):  # a shifted row, where an unstabilized exp would overflow
            if r % 3 == 2:
                for c in range(cols):
                    x[r * cols + c] += 80
        grid = (min(rows, grid_rows), 1)

        def run(entry, inputs, outputs, extra):
            mem = Memory()
            ptrs = [mem.alloc(list(v)) for v in inputs] + [mem.alloc([NAN] * n) for n in outputs]
            launch(module, entry, grid, (256, 1), ptrs + extra, mem)
            return [mem.buffers[len(inputs) + i][1] for i in range(len(outputs))]

        soft = [softmax_ref(x[r * cols:(r + 1) * cols]) for r in range(rows)]
        want_soft = [p for s, _ in soft for p in s]
        want_log = [x[r * cols + c] - soft[r][1] for r in range(rows) for c in range(cols)]
        cases.append((f"softmax {rows}x{cols}", lambda: compare("softmax", run("softmax", [x], [rows * cols], [rows, cols])[0], want_soft)))
        cases.append((f"log_softmax {rows}x{cols}", lambda: compare("log_softmax", run("log_softmax", [x], [rows * cols], [rows, cols])[0], want_log)))
        y = want_soft
        want_sb = []
        for r in range(rows):
            dot = sum(y[r * cols + c] * dy[r * cols + c] for c in range(cols))
            want_sb += [y[r * cols + c] * (dy[r * cols + c] - dot) for c in range(cols)]
        cases.append((f"softmax_backward {rows}x{cols}", lambda: compare("softmax_backward", run("softmax_backward", [y, dy], [rows * cols], [rows, cols])[0], want_sb)))
        ly = want_log
        want_lb = []
        for r in range(rows):
            tot = sum(dy[r * cols:(r + 1) * cols])
            want_lb += [dy[r * cols + c] - math.exp(ly[r * cols + c]) * tot for c in range(cols)]
        cases.append((f"log_softmax_backward {rows}x{cols}", lambda: compare("log_softmax_backward", run("log_softmax_backward", [ly, dy], [rows * cols], [rows, cols])[0], want_lb)))
        labels = [float(rng.randrange(cols)) for _ in range(rows)]
        if rows > 2:
            labels[1] = float(cols)  # invalid: NaN loss and gradient for that row
        want_loss, want_grad = [], []
        for r in range(rows):
            valid = labels[r] < cols
            p, lse = soft[r]
            want_loss.append(lse - x[r * cols + int(labels[r])] if valid else NAN)
            want_grad += [((p[c] - (1.0 if c == labels[r] else 0.0)) / rows) if valid else NAN for c in range(cols)]

        def xent(rows=rows, cols=cols, labels=labels, want_loss=want_loss, want_grad=want_grad, x=x):
            loss, grad = run("softmax_cross_entropy", [x, labels], [rows, rows * cols], [rows, cols])
            compare("softmax_cross_entropy loss", loss, want_loss)
            compare("softmax_cross_entropy grad", grad, want_grad)

        cases.append((f"softmax_cross_entropy {rows}x{cols}", xent))
        t = 2.5
        q = []
        for r in range(rows):
            w = [rng.random() for _ in range(cols)]
            if cols > 3:
                w[0] = 0.0
            s = sum(w)
            q += [v / s for v in w]
        want_kl, want_kg = [], []
        for r in range(rows):
            p, lse = softmax_ref(x[r * cols:(r + 1) * cols], 1 / t)
            qq = q[r * cols:(r + 1) * cols]
            want_kl.append(sum(qv * (math.log(qv) - (x[r * cols + c] / t - lse)) for c, qv in enumerate(qq) if qv > 0))
            want_kg += [(p[c] - qq[c]) / (t * rows) for c in range(cols)]

        def kl(rows=rows, cols=cols, q=q, want_kl=want_kl, want_kg=want_kg, x=x):
            loss, grad = run("kl_div", [x, q], [rows, rows * cols], [rows, cols, t])
            compare("kl_div loss", loss, want_kl)
            compare("kl_div grad", grad, want_kg)

        cases.append((f"kl_div {rows}x{cols}", kl))
    return cases


def col_sum_cases(module, rng):
    cases = []
    for rows, cols, acc in [(20, 40, 0), (9, 1, 1), (3, 70, 1)]:
        x = rand(rows * cols, rng)
        y0 = rand(cols, rng)
        alpha = 0.5
        want = [alpha * sum(x[r * cols + c] for r in range(rows)) + (y0[c] if acc else 0.0) for c in range(cols)]

        def colsum(rows=rows, cols=cols, acc=acc, x=x, y0=y0, want=want):
            mem = Memory()
            px, py = mem.alloc(list(x)), mem.alloc(list(y0) if acc else [NAN] * cols)
            launch(module, "col_sum", (max(1, min(-(-cols // 32), 1)), 1), (32, 8), [px, py, rows, cols, alpha, acc], mem)
            compare("col_sum", mem.buffers[1][1], want)

        cases.append((f"col_sum {rows}x{cols} accumulate={acc}", colsum))
    return cases


def elementwise_cases(module, rng):
    n, cols = 700, 7
    x, z, bias = rand(n, rng), rand(n, rng), rand(cols, rng)
    x[3] = NAN
    s = [1.5]
    relu = lambda v: NAN if math.isnan(v) else max(v, 0.0)
    specs = [
        ("fill", [], 1, [n, 2.5], [[2.5] * n]),
        ("relu", [x], 1, [n], [[relu(v) for v in x]]),
        ("relu_backward", [x, z], 1, [n], [[dz if xv > 0 else 0.0 for xv, dz in zip(x, z)]]),
        ("bias_add", [x, bias], 1, [n, cols], [[v + bias[i % cols] for i, v in enumerate(x)]]),
        ("bias_relu", [x, bias], 1, [n, cols], [[relu(v + bias[i % cols]) for i, v in enumerate(x)]]),
        ("add", [x, z], 1, [n], [[a + b for a, b in zip(x, z)]]),
        ("scale", [x], 1, [n, -0.5], [[-0.5 * v for v in x]]),
        ("scale_by", [x, s], 1, [n, 2.0], [[3.0 * v for v in x]]),
    ]
    cases = []
    for entry, inputs, outputs, extra, want in specs:
        def run(entry=entry, inputs=inputs, extra=extra, want=want):
            mem = Memory()
            ptrs = [mem.alloc(list(v)) for v in inputs] + [mem.alloc([NAN] * n)]
            launch(module, entry, (2, 1), (256, 1), ptrs + extra, mem)  # 512 threads stride over 700
            compare(entry, mem.buffers[len(inputs)][1], want[0])
        cases.append((entry, run))

    def axpy():
        mem = Memory()
        px, py = mem.alloc(list(z)), mem.alloc(list(x))
        launch(module, "axpy", (2, 1), (256, 1), [px, py, n, 0.25], mem)
        compare("axpy", mem.buffers[1][1], [yv + 0.25 * xv for xv, yv in zip(z, x)])

    cases.append(("axpy", axpy))
    return cases


def adam_case(module, rng):
    n = 300
    p, g, m, v = rand(n, rng), rand(n, rng), rand(n, rng), [rng.random() for _ in range(n)]
    lr, b1, b2, eps, t = 1e-2, 0.9, 0.999, 1e-8, 3
    step_size, inv = lr / (1 - b1 ** t), 1 / math.sqrt(1 - b2 ** t)
    want_m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
    want_v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
    want_p = [pi - step_size * mi / (math.sqrt(vi) * inv + eps) for pi, mi, vi in zip(p, want_m, want_v)]
    mem = Memory()
    ptrs = [mem.alloc(list(p)), mem.alloc(list(g)), mem.alloc(list(m)), mem.alloc(list(v))]
    launch(module, "adam", (1, 1), (256, 1), ptrs + [n, step_size, inv, b1, b2, eps], mem)
    compare("adam param", mem.buffers[0][1], want_p)
    compare("adam m", mem.buffers[2][1], want_m)
    compare("adam v", mem.buffers[3][1], want_v)


def example_cases(rng):
    """examples/kernels/ptx, the files docs/kernels.md shows, on awkward shapes: launched as their
    headers declare (the matmul one block per 16x16 tile of C, the softmax one block per row)."""
    folder = os.path.join(ROOT, "examples", "kernels", "ptx")
    matmul = Module(os.path.join(folder, "matmul_tiled.ptx"))
    cases = []
    for m, n, k in [(19, 23, 21), (33, 18, 5)]:
        for ta, tb in [(False, False), (True, True)]:
            name = f"example matmul_tiled.ptx {m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'}"
            cases.append((name, lambda m=m, n=n, k=k, ta=ta, tb=tb:
                          matmul_case(matmul, "example", m, n, k, ta, tb, 0.5, -1.0, rng)))
    softmax = Module(os.path.join(folder, "softmax.ptx"))
    for rows, cols in [(3, 5), (2, 300)]:
        def run(rows=rows, cols=cols):
            x = rand(rows * cols, rng, -3, 3)
            want = [p for r in range(rows) for p in softmax_ref(x[r * cols:(r + 1) * cols])[0]]
            mem = Memory()
            px, py = mem.alloc(list(x)), mem.alloc([NAN] * (rows * cols))
            launch(softmax, "my_softmax", (rows, 1), (256, 1), [px, py, rows, cols], mem)
            compare("my_softmax", mem.buffers[1][1], want)
        cases.append((f"example softmax.ptx {rows}x{cols}", run))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    rng = random.Random(5)
    kernels = kernel_modules(os.path.join(ROOT, "kernels"))
    rowwise, elementwise, adam = kernels["softmax"], kernels["relu"], kernels["adam"]
    cases = []
    for variant in ["naive", "coalesced", "tiled", "regblock", "vec4", "warptile"]:
        shapes = [(19, 23, 21), (17, 20, 8)]  # odd everything; then k % 4 = 0 and n % 4 = 0 (vector path)
        if variant in ("naive", "coalesced", "tiled"):
            shapes.append((33, 18, 5))  # several blocks
        for m, n, k in shapes:
            for ta, tb in [(False, False), (True, False), (False, True), (True, True)]:
                for alpha, beta in [(1.0, 0.0), (0.5, -1.0)]:
                    name = f"{variant} {m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'} a={alpha} b={beta}"
                    cases.append((name, lambda v=variant, m=m, n=n, k=k, ta=ta, tb=tb, al=alpha, be=beta:
                                  matmul_case(kernels[LADDER[v][0]], v, m, n, k, ta, tb, al, be, rng)))
    cases += [(f"rowwise {name}", fn) for name, fn in rowwise_cases(rowwise, rng, grid_rows=2)]
    cases += [(f"elementwise {name}", fn) for name, fn in elementwise_cases(elementwise, rng)]
    cases.append(("adam", lambda: adam_case(adam, rng)))
    cases += example_cases(rng)
    failures = 0
    ran = 0
    for name, fn in cases:
        if args.k not in name:
            continue
        ran += 1
        try:
            fn()
            print(f"ok    {name}", flush=True)
        except Exception as e:  # report every failing case, then fail
            failures += 1
            print(f"FAIL  {name}: {e}", flush=True)
    print(f"ptx_emulate: {ran - failures} of {ran} cases pass")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
