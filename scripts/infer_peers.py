#!/usr/bin/env python3
"""The inference peers: PyTorch eager and ONNX Runtime timed on kernelab's models, written as
`kernelab infer --json` writes its rows, so that `kernelab compare` pairs them with kernelab's
and `kernelab plot` draws them.

For each model (a kernelab or PyTorch `nn.Sequential` safetensors checkpoint, or a spec such as
784-128-10 with PyTorch's default initialisation from a seed, written to a checkpoint so that
kernelab loads the very same weights), each thread count and each batch size:

  pytorch-eager   the model as `nn.Sequential(Linear, ReLU, …)` under `torch.inference_mode()`,
                  `torch.set_num_threads(T)`, inter-op threads 1
  onnxruntime     the same weights as an ONNX graph built with `onnx.helper` (Gemm with transB,
                  Relu), one `InferenceSession`: intra-op threads T, inter-op 1, sequential
                  execution, every graph optimisation on, CPU execution provider; called with
                  `session.run` from Python as a Python server would

The same logits, checked before anything is timed: every peer's logits on one batch (test images
of --data, or uniform [0, 1) pixels) against an f64 reference of the same weights, element by
element, within `γ·(|W_L|…|W_1||x| + bias terms)`, `γ = 6·√(ΣK + layers)·2⁻²⁴` (a probabilistic
bound of rounding in sums; ReLU is 1-Lipschitz); and with --kernelab and --data, the test-set
accuracy kernelab reports against the peers' on the same images (kernelab prints no logits, so
its argmaxes are held to theirs: at most 5 in 10000 images may differ, near ties). One engine off
and the script refuses to report.

Timing, as `kernelab bench` times: every row is warmed up, then all rows of one (model, threads,
batch) are timed together in rounds, each round in a shuffled order (seeded): per row untimed
calls for at least --settle-ms, at least one (its own weights and inputs warm again, whatever ran
before: after one batch-256 call, kernelab's teacher needed about 20 batch-1 calls to come back to
its steady time), and one call timed with `time.perf_counter_ns`. A row leaves the rounds after --calls samples, or once it has 10 and its
calls took --budget seconds. Each sample is one call: p50 and p99 are per call, images/s is
batch ÷ p50.

Controls (printed, and kept in the peers' reports under `peer_controls`):
  A/A    each engine is also timed as a second, identical row in the same rounds; the ratio of
         the two (the median of the per-round ratios, with its 99% interval) must hold 1 or lie
         within ±2%
  slow   PyTorch with a busy wait of --control-slow percent of its warm-up median added inside
         every timed call: its ratio to PyTorch must come out at 1 + wait/median (within 2% or
         the interval) and its interval must exclude 1; where it holds 1 too, the rows were too
         few or too noisy to resolve that much, and the control says `undecided`. One thread
         only: on more, the wait is idle time for PyTorch's OpenMP workers, which stop spinning
         and must be woken by the next call, so the wait costs more than itself (784-512-256-10,
         batch 8, two threads: a 27 µs wait made a 135 µs call 208 µs; one thread: 1.21 against
         1.20 expected). A server that is not called back to back sees the same.
A failed control is written to the reports and the exit status is 2.

With --kernelab PATH (a built `kernelab` binary), `kernelab infer --backend cpu` runs too, in
blocks that alternate with the peers' (kernelab, peers, kernelab, peers, … for --blocks blocks),
so that the ratios against each peer come from one run; a row's samples from every block join.

--out DIR receives, each a report `kernelab compare` and `kernelab plot` read:
  pytorch-eager.json, onnxruntime.json   the peers' rows, keyed as kernelab's (op `infer`,
                   variant the model spec, shape [batch], threads), `baseline` true, the library
                   and its version in `baselines`: `kernelab compare DIR/pytorch-eager.json
                   DIR/kernelab.json` gives kernelab's time over PyTorch's, row by row, with its
                   interval
  kernelab.json    (with --kernelab) kernelab's rows from every block
  combined.json    every row in one report, the engine joined to the variant
                   (`784-128-10 pytorch-eager`), for one sweep plot of all three; `--combine DIR`
                   makes it again from the other three (results/infer/ keeps only those)
Numbers from different machines never compare; every report names this machine's CPU and the
thread counts.

Usage:
  python3 scripts/infer_peers.py --model 784-128-10 --seed 0 --save student.safetensors \\
      --batch 1,8,64,256,4096 --threads 1,2 --out peers/
  python3 scripts/infer_peers.py --checkpoint student.safetensors --checkpoint teacher.safetensors \\
      --kernelab target/release/kernelab --blocks 3 --out results/infer/

`infer_peers.py --table DIR/combined.json` prints the Markdown table of BENCHMARKS.md from a run's
combined report: each engine's p50, kernelab's p99, images/s, each peer's p50 over kernelab's, and
the issue's targets (batch 1: at most 1/5 of PyTorch's p50, below ONNX Runtime's, p99 ≤ 2×p50;
batch 256: images/s at or above both).

Needs torch, onnx, onnxruntime, numpy and safetensors (a CPU build of torch is enough).
"""

import argparse
import json
import os
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import infer_peers_lib as lib  # noqa: E402
import infer_peers_report as report_  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                   help="a safetensors MLP checkpoint (0.weight, 0.bias, 2.weight, …); repeatable")
    p.add_argument("--model", action="append", default=[], metavar="SPEC",
                   help="a model spec such as 784-128-10, random weights from --seed; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of --model's weights and of the rounds' order")
    p.add_argument("--save", action="append", default=[], metavar="FILE",
                   help="where each --model's weights are written (default: a temporary folder, removed at the end)")
    p.add_argument("--batch", default="1,8,64,256,4096", help="batch sizes, comma-separated")
    p.add_argument("--threads", default="1", help="thread counts, comma-separated")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls per row before the rounds")
    p.add_argument("--calls", type=int, default=2000, help="most timed calls per row")
    p.add_argument("--settle-ms", type=float, default=2.0,
                   help="untimed calls of a row for at least this many milliseconds before each timed call "
                        "(kernelab's --settle-ms, passed on)")
    p.add_argument("--budget", type=float, default=0.5,
                   help="seconds of calls after which a row with 10 samples leaves the rounds")
    p.add_argument("--data", default=lib.DEFAULT_DATA if os.path.isdir(lib.DEFAULT_DATA) else None,
                   help="an MNIST-format folder whose test set checks every engine (default: Debian's "
                        "Fashion-MNIST where it is installed)")
    p.add_argument("--control-slow", type=float, default=20.0, metavar="PERCENT",
                   help="the slow control's wait, percent of PyTorch's warm-up median (0: no controls)")
    p.add_argument("--kernelab", default=None, metavar="PATH",
                   help="a kernelab binary: run `kernelab infer` in blocks between the peers'")
    p.add_argument("--blocks", type=int, default=1, help="blocks of kernelab and peers, alternating")
    p.add_argument("--out", default=None, metavar="DIR", help="write the reports into this folder")
    a = p.parse_args(argv)
    a.batch = lib.positive_list(a.batch, "--batch")
    a.threads = lib.positive_list(a.threads, "--threads")
    cores = os.cpu_count() or 1
    if max(a.threads) > cores:
        p.error(f"--threads {max(a.threads)}: this machine has {cores} logical cores")
    if not a.checkpoint and not a.model:
        p.error("give --checkpoint FILE or --model SPEC (or several)")
    if a.save and len(a.save) != len(a.model):
        p.error(f"--save given {len(a.save)} times for {len(a.model)} --model specs: one file each")
    if a.calls < 10 or a.warmup < 1 or not 0 < a.budget <= 3600 or a.blocks < 1 or not 0 <= a.settle_ms <= 10000:
        p.error("--calls is at least 10, --warmup at least 1, --budget in (0, 3600] s, --blocks at least 1, "
                "--settle-ms in [0, 10000]")
    if not 0 <= a.control_slow <= 1000:
        p.error(f"--control-slow {a.control_slow}: a percentage from 0 to 1000")
    return a


def load_models(a, workdir):
    """Every model asked for, as (path, [(W, b)]), the specs written to their checkpoints."""
    models = [(path, lib.load_checkpoint(path)) for path in a.checkpoint]
    for i, spec in enumerate(a.model):
        path = a.save[i] if a.save else os.path.join(workdir, f"{spec}-seed{a.seed}.safetensors")
        layers = lib.random_model(spec, a.seed)
        lib.save_checkpoint(path, layers)
        models.append((path, layers))
    return models


def check_engines(a, peers, path, layers, workdir):
    """Every engine against the f64 reference and, with --data, against each other's test-set
    predictions (kernelab's through its reported accuracy); refuses when one is off."""
    x = lib.check_batch(a.data, layers[0][0].shape[1], 64, a.seed)
    checks = peers.check(path, layers, x)
    if a.data:
        checks += peers.accuracy_checks(path, a.data)
        if a.kernelab:
            checks.append(report_.kernelab_accuracy_check(a, path, peers.accuracy[path], workdir))
    for c in checks:
        print(f"check {lib.spec_of(layers)}: {c['engine']} {c['budget_ratio']:.3g} of its tolerance ({c['detail']})",
              file=sys.stderr)
    bad = [c for c in checks if not c["budget_ratio"] <= 1.0]
    if bad:
        raise lib.Refused(f"{path}: {'; '.join(c['detail'] for c in bad)}: beyond the tolerance, so the engines "
                          "do not compute the same model; nothing reported")
    peers.errors[path] = {c["engine"]: c for c in checks}


def main(argv):
    if argv[:1] == ["--table"] or argv[:1] == ["--combine"]:
        if len(argv) != 2:
            raise lib.Refused(f"{argv[0]} takes one argument: --table DIR/combined.json, --combine DIR")
        if argv[0] == "--combine":
            report_.combine_folder(argv[1])
            return 0
        with open(argv[1]) as f:
            print(report_.markdown_table(json.load(f)))
        return 0
    a = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="infer-peers-") as workdir:
        return measure(a, argv, workdir)


def measure(a, argv, workdir):
    """Checks every engine, times them in blocks, prints the summary and writes the reports;
    returns the exit status (2 when a control failed)."""
    models = load_models(a, workdir)
    peers = lib.Peers()
    for path, layers in models:
        check_engines(a, peers, path, layers, workdir)
    started = time.time()
    kernelab_reports = []
    for _ in range(a.blocks):
        if a.kernelab:
            for path, _ in models:
                for threads in a.threads:
                    kernelab_reports.append(report_.run_kernelab(a, path, threads, workdir))
        for path, _ in models:
            for threads in a.threads:
                for batch in a.batch:
                    peers.time_one(a, path, threads, batch)
    reports = report_.build_reports(a, argv, peers, kernelab_reports, started)
    controls_ok = report_.print_summary(reports["combined"])
    if a.out:
        report_.write_reports(reports, a.out)
    return 0 if controls_ok else 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except lib.Refused as e:
        sys.exit(f"error: {e}")
