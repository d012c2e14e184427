"""The models, the engines, the reference check and the timing of scripts/infer_peers.py (its
header says what they do); the report is written by infer_peers_report.py."""

import math
import os
import random
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file, save_file

import mnist_idx

torch.set_num_interop_threads(1)

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
U32 = 2.0 ** -24  # f32's unit roundoff
Z99 = 2.5758293035489004  # the normal distribution's 99.5% point: a two-sided 99% interval
MIN_SAMPLES = 10
ARGMAX_TIES = 5  # test images (of 10000) whose predicted class two engines may disagree on: near ties
CONTROL_BAND = 0.02  # a control passes when its interval holds the expected ratio or lies within ±2% of it


class Refused(Exception):
    """Bad input or a disagreement: the script stops and says why."""


def positive_list(text, flag):
    """`1,8,64` → [1, 8, 64]; anything else is refused naming the flag."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise Refused(f"{flag} {text!r}: give positive whole numbers separated by commas") from None
    if not values or min(values) < 1:
        raise Refused(f"{flag} {text!r}: give positive whole numbers separated by commas (0 is no size)")
    return sorted(set(values))


# --- Models ---------------------------------------------------------------------------------------


def widths_of(layers):
    return [layers[0][0].shape[1]] + [w.shape[0] for w, _ in layers]


def spec_of(layers):
    return "-".join(str(w) for w in widths_of(layers))


def load_checkpoint(path):
    """The layers [(W: out×in, b: out)] of an `nn.Sequential` MLP checkpoint, f32; refused when a
    tensor is missing, the layers do not chain, or a value is not finite."""
    if not os.path.isfile(path):
        raise Refused(f"{path}: no such file")
    try:
        tensors = load_file(path)
    except Exception as e:  # safetensors raises its own types
        raise Refused(f"{path}: not a safetensors file ({e})") from None
    layers = []
    while f"{2 * len(layers)}.weight" in tensors:
        i = 2 * len(layers)
        w, b = tensors[f"{i}.weight"], tensors.get(f"{i}.bias")
        if b is None:
            raise Refused(f"{path}: `{i}.weight` has no `{i}.bias`")
        chains = w.ndim == 2 and b.shape == (w.shape[0],) and (not layers or layers[-1][0].shape[0] == w.shape[1])
        if not chains:
            raise Refused(f"{path}: layer {i}: weight {list(w.shape)} and bias {list(b.shape)} do not chain")
        layers.append((np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32)))
    if not layers:
        raise Refused(f"{path}: no `0.weight`: not an MLP checkpoint")
    extra = sorted(set(tensors) - {f"{2 * i}.{p}" for i in range(len(layers)) for p in ("weight", "bias")})
    if extra:
        raise Refused(f"{path}: `{extra[0]}` belongs to no layer of the chain 0..{2 * len(layers) - 2}")
    if not all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in layers):
        raise Refused(f"{path}: holds NaN or infinite parameters")
    return layers


def torch_mlp(layers):
    """`nn.Sequential(Linear, ReLU, …, Linear)` holding `layers`' values."""
    modules = []
    for i, (w, b) in enumerate(layers):
        linear = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i + 1 < len(layers):
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


def random_model(spec, seed):
    """The layers of `spec` (784-128-10) with PyTorch's default Linear initialisation, seeded."""
    try:
        widths = [int(w) for w in spec.split("-")]
    except ValueError:
        raise Refused(f"--model {spec!r}: a spec is widths joined by '-', like 784-128-10") from None
    if len(widths) < 2 or min(widths) < 1:
        raise Refused(f"--model {spec!r}: a spec has two widths or more, each at least 1")
    torch.manual_seed(seed)
    linears = [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    return [(l.weight.detach().numpy().copy(), l.bias.detach().numpy().copy()) for l in linears]


def save_checkpoint(path, layers):
    """Writes `layers` under `nn.Sequential` names with kernelab's metadata (spec, format pt)."""
    tensors = {}
    for i, (w, b) in enumerate(layers):
        tensors[f"{2 * i}.weight"], tensors[f"{2 * i}.bias"] = w, b
    save_file(tensors, path, metadata={"spec": spec_of(layers), "format": "pt"})


def read_idx(path, rank):
    """The u8 values of an IDX file (raw or .gz) of `rank` dimensions: images (3) flattened to
    (n, rows·cols), labels (1) as (n,)."""
    try:
        dims, values = mnist_idx.read(path, rank)
    except mnist_idx.IdxError as e:
        raise Refused(str(e)) from None
    values = np.frombuffer(values, np.uint8)
    return values.reshape(dims[0], -1) if rank == 3 else values


def read_idx_images(path):
    return read_idx(path, 3)


def check_batch(data_dir, inputs, n, seed):
    """`n` test images of `data_dir` scaled to [0, 1], or uniform [0, 1) pixels without one."""
    if data_dir is None:
        return np.random.default_rng(seed).random((n, inputs), dtype=np.float32)
    images = read_idx_images(os.path.join(data_dir, "t10k-images-idx3-ubyte"))
    if images.shape[1] != inputs:
        raise Refused(f"--data {data_dir}: images of {images.shape[1]} pixels; the model takes {inputs} inputs")
    return (images[:n].astype(np.float32) / 255.0).copy()


def reference(layers, x):
    """The f64 logits of `layers` on `x`, and each element's error bound in f32: `γ·M`, with `M`
    the same network run on |x| with |W|, |b| and no ReLU (the scale of every product, ReLU being
    1-Lipschitz), and `γ = 6·√(ΣK + layers)·u`, Higham and Mary's probabilistic bound of a sum of
    `n` rounded terms (`λ·√n·u`; λ = 6 holds for all but about 3·10⁻⁸ of the elements). The
    worst-case `n·u` would pass a bias 1% off on 784-128-10; this one refuses it."""
    h, m = x.astype(np.float64), np.abs(x.astype(np.float64))
    for i, (w, b) in enumerate(layers):
        h = h @ w.T.astype(np.float64) + b
        m = m @ np.abs(w.T.astype(np.float64)) + np.abs(b)
        if i + 1 < len(layers):
            h = np.maximum(h, 0.0)
    gamma = 6.0 * math.sqrt(sum(w.shape[1] for w, _ in layers) + len(layers)) * U32
    return h, gamma * m


def agreement(engine, logits, ref, bound):
    """How far `logits` lie from the reference, as a fraction of their bound (≤ 1 agrees)."""
    logits = np.asarray(logits, np.float64)
    if logits.shape != ref.shape:
        return {"engine": engine, "budget_ratio": math.inf, "max_abs_err": math.inf,
                "detail": f"{engine} gave logits of shape {list(logits.shape)}, the model {list(ref.shape)}"}
    err = np.abs(logits - ref)
    ratio = err / bound
    at = np.unravel_index(int(np.nanargmax(np.where(np.isnan(ratio), np.inf, ratio))), ratio.shape)
    worst = float(ratio[at]) if np.isfinite(ratio[at]) else math.inf
    return {"engine": engine, "budget_ratio": worst, "max_abs_err": float(np.nanmax(err)),
            "detail": f"{engine} at image {at[0]}, logit {at[1]}: {logits[at]:.9g} against {ref[at]:.9g} "
                      f"(bound {bound[at]:.3g})"}


# --- Engines --------------------------------------------------------------------------------------


def onnx_model(layers):
    """The MLP as an ONNX graph: Gemm(x, W, b, transB=1), Relu between layers; batch dynamic."""
    inits, nodes, last = [], [], "x"
    for i, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "logits" if i + 1 == len(layers) else f"z{i}"
        nodes.append(helper.make_node("Gemm", [last, f"w{i}", f"b{i}"], [out], transB=1))
        if i + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            last = f"h{i}"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", layers[0][0].shape[1]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", layers[-1][0].shape[0]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(layers, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_model(layers), so, providers=["CPUExecutionProvider"])


class Engines:
    """PyTorch's module and ONNX Runtime's sessions (one per thread count) of one model."""

    def __init__(self, layers):
        self.module = torch_mlp(layers)
        self.layers = layers
        self.sessions = {}

    def session(self, threads):
        if threads not in self.sessions:
            self.sessions[threads] = ort_session(self.layers, threads)
        return self.sessions[threads]

    def calls(self, x, threads):
        """{variant: a call on the batch `x`} with `threads` set for both engines."""
        torch.set_num_threads(threads)
        xt, sess = torch.from_numpy(x), self.session(threads)
        return {"pytorch-eager": lambda: self.module(xt), "onnxruntime": lambda: sess.run(["logits"], {"x": x})}

    def logits(self, x, threads=1):
        calls = self.calls(x, threads)
        with torch.inference_mode():
            return {"pytorch-eager": calls["pytorch-eager"]().numpy(), "onnxruntime": calls["onnxruntime"]()[0]}


def slowed(call, wait_ns):
    """`call` followed by a busy wait of `wait_ns` (a wait of known size: the slow control)."""

    def run():
        out = call()
        end = time.perf_counter_ns() + wait_ns
        while time.perf_counter_ns() < end:
            pass
        return out

    return run


# --- Timing ---------------------------------------------------------------------------------------


class Row:
    """One row's samples (seconds per call) and the round of each."""

    def __init__(self):
        self.samples, self.rounds = [], []


def time_rounds(calls, rows, first_round, seed, max_calls, budget_s, settle_s):
    """Times `calls` ({name: call}) together in rounds from `first_round` (see the script's
    header), appending to `rows` ({name: Row}); returns the next round. Each timed call follows
    untimed calls of its row lasting at least `settle_s` (at least one), as kernelab's."""
    spent = {name: 0 for name in calls}
    taken = {name: 0 for name in calls}
    active, r = list(calls), first_round
    while active:
        order = active[:]
        random.Random(seed + r).shuffle(order)
        for name in order:
            call = calls[name]
            t0 = time.perf_counter_ns()
            call()
            settle_until = t0 + settle_s * 1e9
            while time.perf_counter_ns() < settle_until:
                call()
            t1 = time.perf_counter_ns()
            call()
            t2 = time.perf_counter_ns()
            rows[name].samples.append((t2 - t1) * 1e-9)
            rows[name].rounds.append(r)
            spent[name] += t2 - t0
            taken[name] += 1
        r += 1
        active = [n for n in active
                  if taken[n] < max_calls and not (taken[n] >= MIN_SAMPLES and spent[n] * 1e-9 >= budget_s)]
    return r


def quantile(samples, q):
    """The linearly interpolated quantile, as kernelab's `Samples::quantile`."""
    return float(np.quantile(np.asarray(samples, np.float64), q))


def paired_ratio(a, b):
    """`b ÷ a` from the rounds both rows took a sample in: the median of the per-round ratios and
    its 99% interval (`1.2533·1.4826·MAD/√n` on the log scale), as (ratio, low, high)."""
    by_round = dict(zip(a.rounds, a.samples))
    logs = np.array([math.log(s / by_round[r]) for r, s in zip(b.rounds, b.samples) if r in by_round])
    if len(logs) < 3:
        return math.nan, math.nan, math.nan
    mid = float(np.median(logs))
    se = 1.2533 * 1.4826 * float(np.median(np.abs(logs - mid))) / math.sqrt(len(logs))
    return math.exp(mid), math.exp(mid - Z99 * se), math.exp(mid + Z99 * se)


def control_verdict(expected, ratio, low, high):
    """`ok` when the interval holds `expected` (or the ratio lies within ±2% of it) and, for an
    expected change, excludes 1 (the change was seen); `undecided` when it holds both 1 and
    `expected` (too few or too noisy samples to resolve the change); `failed` otherwise."""
    if not math.isfinite(ratio):
        return "undecided"
    agrees = (low <= expected <= high) or abs(ratio / expected - 1.0) <= CONTROL_BAND
    if not agrees:
        return "failed"
    if expected != 1.0 and low <= 1.0 <= high:
        return "undecided"
    return "ok"


# --- The peers' runs ------------------------------------------------------------------------------

AA = " (A/A)"
SLOWED = " (slowed)"


class Peers:
    """Every model's engines and every row timed so far, keyed (model path, variant, threads,
    batch); a row's samples from several blocks join, their rounds continuing."""

    def __init__(self):
        self.engines, self.rows, self.next_round, self.waits, self.errors = {}, {}, {}, {}, {}
        self.layers, self.accuracy = {}, {}

    def check(self, path, layers, x):
        """Each engine's logits on `x` against the f64 reference (see [`agreement`])."""
        self.engines[path], self.layers[path] = Engines(layers), layers
        ref, bound = reference(layers, x)
        return [agreement(name, out, ref, bound) for name, out in self.engines[path].logits(x).items()]

    def accuracy_checks(self, path, data_dir):
        """Both peers' predicted classes on the whole test set of `data_dir`: they may differ on
        at most [`ARGMAX_TIES`] images. Keeps PyTorch's accuracy for kernelab's check."""
        images = read_idx_images(os.path.join(data_dir, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
        labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte"), 1)
        if images.shape[1] != self.layers[path][0][0].shape[1] or len(labels) != len(images):
            raise Refused(f"--data {data_dir}: {len(images)} images of {images.shape[1]} pixels and {len(labels)} "
                          f"labels; the model takes {self.layers[path][0][0].shape[1]} inputs")
        logits = self.engines[path].logits(np.ascontiguousarray(images))
        torch_class, ort_class = (np.argmax(logits[k], axis=1) for k in ("pytorch-eager", "onnxruntime"))
        differ = int((torch_class != ort_class).sum())
        self.accuracy[path] = (float((torch_class == labels).mean()), len(labels))
        return [{"engine": "onnxruntime classes", "budget_ratio": differ / ARGMAX_TIES,
                 "detail": f"PyTorch and ONNX Runtime predict other classes for {differ} of {len(labels)} test images"
                           f" (at most {ARGMAX_TIES} may differ)"}]

    def time_one(self, a, path, threads, batch):
        """Warms up and times both engines (and, with controls, their A/A twins and the slowed
        PyTorch) on one batch size and thread count."""
        inputs = self.layers[path][0][0].shape[1]
        x = np.random.default_rng(a.seed + batch).random((batch, inputs), dtype=np.float32)
        calls = self.engines[path].calls(x, threads)
        group = (path, threads, batch)
        with torch.inference_mode():
            warm = []
            for name, call in calls.items():
                for _ in range(a.warmup):
                    t0 = time.perf_counter_ns()
                    call()
                    if name == "pytorch-eager":
                        warm.append(time.perf_counter_ns() - t0)
            if a.control_slow > 0:
                if group not in self.waits:
                    # The slow control on one thread only (see the script's header).
                    self.waits[group] = max(1, int(np.median(warm) * a.control_slow / 100.0)) if threads == 1 else None
                for name in list(calls):
                    calls[name + AA] = calls[name]
                if self.waits[group] is not None:
                    calls["pytorch-eager" + SLOWED] = slowed(calls["pytorch-eager"], self.waits[group])
            rows = {name: self.rows.setdefault((path, name, threads, batch), Row()) for name in calls}
            self.next_round[group] = time_rounds(calls, rows, self.next_round.get(group, 0), a.seed, a.calls, a.budget,
                                                   a.settle_ms / 1000.0)

    def controls(self):
        """Every control's outcome: the A/A pairs (expected 1) and the slowed PyTorch (expected
        1 + wait ÷ PyTorch's median in the same rounds)."""
        out = []
        for (path, threads, batch), wait_ns in sorted(self.waits.items()):
            row = lambda name: self.rows[(path, name, threads, batch)]  # noqa: E731
            base = row("pytorch-eager")
            cases = [(f"A/A {v}", row(v), row(v + AA), 1.0) for v in ("pytorch-eager", "onnxruntime")]
            if wait_ns is not None:
                median = quantile(base.samples, 0.5)
                cases.append(("slowed pytorch-eager", base, row("pytorch-eager" + SLOWED), 1.0 + wait_ns * 1e-9 / median))
            for kind, a, b, expected in cases:
                ratio, low, high = paired_ratio(a, b)
                out.append({"model": spec_of(self.layers[path]), "checkpoint": path, "threads": threads,
                            "batch": batch, "control": kind, "expected": expected, "ratio": ratio,
                            "low": low, "high": high, "wait_s": wait_ns * 1e-9 if "slowed" in kind else 0.0,
                            "verdict": control_verdict(expected, ratio, low, high)})
        return out
