"""The report of scripts/infer_peers.py: the peers' rows in kernelab's report format (schema 1,
the rows `kernelab infer --json` writes), kernelab's own rows when it ran in the same run, the
checks and controls, and the summary table with the ratios."""

import json
import math
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import torch

import infer_peers_lib as lib

NOISY_SPREAD = 1.2
NOTE = ("numbers from different machines never compare: quote ratios from one run on one machine")


# --- The machine ----------------------------------------------------------------------------------


def cpu_model():
    """`model name` of /proc/cpuinfo, as kernelab names the CPU device."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def caches():
    """The data and unified caches seen from CPU 0, as kernelab's `machine.caches`."""
    out, root, cores = [], "/sys/devices/system/cpu/cpu0/cache", os.cpu_count() or 1
    for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        read = lambda name: open(os.path.join(root, entry, name)).read().strip()  # noqa: E731
        try:
            kind, level, size = read("type"), int(read("level")), read("size")
            shared = read("shared_cpu_list")
        except (OSError, ValueError):
            continue
        if kind not in ("Data", "Unified"):
            continue
        scale = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(size[-1], 1)
        size_bytes = int(size.rstrip("KMG")) * scale
        shared_by = sum(int(b) - int(a) + 1 if "-" in p else 1
                        for p in shared.split(",") for a, b in [(p.split("-") + [p])[:2]])
        out.append({"level": level, "kind": kind, "size_bytes": size_bytes, "shared_by": shared_by,
                    "instances": -(-cores // shared_by)})
    return out


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine(started):
    """`machine` for a report without kernelab's rows (with them, kernelab's own is kept)."""
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count() or 1, "caches": caches(),
            "os": sys.platform, "kernel": platform.release(), "arch": platform.machine(),
            "rustc": "", "kernelab_version": "", "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")), "features": [],
            "unix_time": int(started)}


def cpu_device_name(threads):
    """The CPU device's name as kernelab gives it, the pool's size included."""
    return f"{cpu_model()} ({threads} threads)"


def cpu_device(threads):
    return {"label": "cpu:0", "backend": "cpu", "name": cpu_device_name(threads), "driver": "", "details": {},
            "roofline": None}


def baselines(threads):
    """What each peer is, per thread count: its library, version and how it runs."""
    out = []
    for t in threads:
        out.append({"variant": "pytorch-eager", "library": f"PyTorch {torch.__version__}",
                    "kernel": "eager nn.Sequential(Linear, ReLU, …) under torch.inference_mode()",
                    "config": f"torch.set_num_threads({t}), inter-op threads 1; MKL-DNN "
                              f"{'on' if torch.backends.mkldnn.is_available() else 'off'}",
                    "threads": t, "degraded": False, "note": None})
        out.append({"variant": "onnxruntime", "library": f"ONNX Runtime {ort.__version__} (wheel)",
                    "kernel": "CPUExecutionProvider, a Gemm(transB=1)+Relu graph from onnx.helper, opset 17",
                    "config": f"intra_op_num_threads {t}, inter_op_num_threads 1, ORT_SEQUENTIAL, "
                              "ORT_ENABLE_ALL; InferenceSession.run from Python",
                    "threads": t, "degraded": False, "note": None})
    return out


# --- Rows -----------------------------------------------------------------------------------------

PEERS = ("pytorch-eager", "onnxruntime")
LIBRARY = {"pytorch-eager": f"PyTorch {torch.__version__}", "onnxruntime": f"ONNX Runtime {ort.__version__}"}


def record(widths, batch, params, device, threads, row, note):
    """One peer row keyed as `kernelab infer` keys its rows (op `infer`, variant the model spec,
    shape [batch]), its counts as kernelab's: flops `2·multiply-adds·batch`, bytes
    `4·(parameters + batch·(inputs + classes))`; every key of kernelab's record present."""
    s = np.asarray(row.samples, np.float64)
    median, p10, p90, p99 = (lib.quantile(s, q) for q in (0.5, 0.1, 0.9, 0.99))
    flops = 2.0 * batch * sum(a * b for a, b in zip(widths, widths[1:]))
    bytes_ = 4.0 * (params + batch * (widths[0] + widths[-1]))
    return {"op": "infer", "backend": "cpu", "device": device, "variant": "-".join(map(str, widths)),
            "baseline": True, "shape": [batch], "transpose": None, "threads": threads, "mode": "warm",
            "status": "ok", "clock": "host", "launches_per_sample": 1, "n": len(s),
            "samples_s": [float(v) for v in s], "rounds": list(row.rounds), "median_s": median, "p10_s": p10,
            "p90_s": p90, "p99_s": p99, "host_median_s": median, "noisy": p90 / p10 > NOISY_SPREAD, "flops": flops,
            "bytes": bytes_, "gflops": flops / median / 1e9, "gbps": bytes_ / median / 1e9, "ceiling": None,
            "roofline": None, "suspect": False, "of_vendor": None, "vendor": None, "max_rel_err": None,
            "budget_ratio": None, "ok": True, "note": note}


def peer_records(peers, engine, devices):
    """`engine`'s rows (see [`record`]), their note naming the engine and its checks; `devices`
    names the CPU device of each thread count."""
    out = []
    for (path, variant, threads, batch), row in sorted(peers.rows.items()):
        if variant != engine:
            continue
        layers = peers.layers[path]
        check = peers.errors.get(path, {}).get(engine, {})
        note = f"{engine} ({LIBRARY[engine]}); logits at {check.get('budget_ratio', math.nan):.2g} of their f64 bound"
        if path in peers.accuracy:
            note += f"; test accuracy {100 * peers.accuracy[path][0]:.2f}% on {peers.accuracy[path][1]} images"
        params = sum(w.size + b.size for w, b in layers)
        rec = record(lib.widths_of(layers), batch, params, devices[threads], threads, row, note)
        rec["budget_ratio"] = check.get("budget_ratio")
        out.append(rec)
    return out


def row_key(r):
    return json.dumps([r[k] for k in ("op", "backend", "device", "variant", "shape", "transpose", "threads", "mode")])


def merge_kernelab(reports):
    """kernelab's reports from every block as one: each row's samples joined in the order taken,
    one round a sample (kernelab times its rows one after another), quantiles and rates redone;
    `block_p99_over_p50` keeps each block's own p99/p50 (one process's tail, apart from the shifts
    of the whole distribution between blocks that the joined p99/p50 also holds)."""
    if not reports:
        return None
    merged = {}
    for report in reports:
        for r in report["records"]:
            row = merged.setdefault(row_key(r), dict(r, samples_s=[], rounds=[], block_p99_over_p50=[]))
            row["samples_s"] += r["samples_s"]
            if r["samples_s"]:
                row["block_p99_over_p50"].append(lib.quantile(r["samples_s"], 0.99) / lib.quantile(r["samples_s"], 0.5))
    for r in merged.values():
        if r["samples_s"]:
            s = np.asarray(r["samples_s"])
            r["n"], r["rounds"] = len(s), list(range(len(s)))
            r["median_s"], r["p10_s"], r["p90_s"], r["p99_s"] = (lib.quantile(s, q) for q in (0.5, 0.1, 0.9, 0.99))
            r["host_median_s"] = r["median_s"]
            r["noisy"] = r["p90_s"] / r["p10_s"] > NOISY_SPREAD
            for rate, amount in (("gflops", "flops"), ("gbps", "bytes")):
                if r.get(amount):
                    r[rate] = r[amount] / r["median_s"] / 1e9
    first = reports[0]
    devices = list({d["name"]: d for report in reports for d in report["devices"]}.values())
    more = f"(and {len(reports) - 1} more runs, rows joined by scripts/infer_peers.py)"
    return dict(first, records=list(merged.values()), devices=devices, command=first["command"] + [more])


def of_peers(records):
    """Each kernelab row of the combined report as a fraction of the fastest peer of the same
    model, batch, threads and mode (`peer median / median`), as kernelab's `of_vendor`."""
    model = lambda r: r["variant"].split(" ")[0]  # noqa: E731
    same_work = ("op", "backend", "device", "shape", "threads", "mode")
    peers = [r for r in records if r["baseline"] and r["status"] == "ok"]
    for r in records:
        if r["status"] != "ok" or r["baseline"]:
            continue
        same = [p for p in peers if all(p[k] == r[k] for k in same_work) and model(p) == model(r)]
        if same:
            fastest = min(same, key=lambda p: p["median_s"])
            r["of_vendor"], r["vendor"] = fastest["median_s"] / r["median_s"], fastest["variant"]


def build_reports(a, argv, peers, kernelab_reports, started):
    """{name: report}: each peer's, kernelab's (with --kernelab) and the combined one."""
    own = merge_kernelab(kernelab_reports)
    devices = {t: cpu_device_name(t) for t in a.threads}
    for r in own["records"] if own else []:
        if r["backend"] == "cpu":
            devices[r["threads"]] = r["device"]
    common = {
        "schema_version": 1,
        "command": ["scripts/infer_peers.py", *argv],
        "settings": {"warmup": a.warmup, "repeat": a.calls, "min_runs": lib.MIN_SAMPLES, "budget_s": a.budget,
                     "cold": False, "threads": a.threads[0], "batch_below_s": 0.0, "batch_target_s": 0.0,
                     "noisy_spread": NOISY_SPREAD, "variants": "infer", "round_seed": a.seed,
                     "settle_s": a.settle_ms / 1000.0},
        "machine": own["machine"] if own else machine(started),
        "devices": [d for d in own["devices"] if d["backend"] == "cpu"] if own else [cpu_device(t) for t in a.threads],
        "peer_controls": peers.controls(),
        "peer_checks": [dict(c, checkpoint=p) for p, checks in peers.errors.items() for c in checks.values()],
        "peers": {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
                  "numpy": np.__version__, "cpu": cpu_model(), "threads": a.threads, "batches": a.batch,
                  "blocks": a.blocks, "kernelab": a.kernelab, "seconds": time.time() - started, "note": NOTE},
    }
    reports = {}
    for engine in PEERS:
        mine = [b for b in baselines(a.threads) if b["variant"] == engine]
        reports[engine] = dict(common, baselines=mine, records=peer_records(peers, engine, devices))
    if own:
        reports["kernelab"] = own
    reports["combined"] = combine(reports)
    return reports


def combine(reports):
    """One report of every engine's CPU rows (kernelab's, when there, and each peer's), the engine
    joined to the variant (`784-128-10 pytorch-eager`) so that the rows stay apart, kernelab's
    held against the fastest peer; the rest as the PyTorch report has it."""
    rows = []
    for name in (n for n in ("kernelab", *PEERS) if n in reports):
        cpu = [r for r in reports[name]["records"] if r["backend"] == "cpu"]
        rows += [dict(r, variant=f"{r['variant']} {name}") for r in cpu]
    of_peers(rows)
    first = reports[PEERS[0]]
    return dict(first, baselines=[b for e in PEERS for b in reports[e]["baselines"]], records=rows)


def combine_folder(folder):
    """`--combine DIR`: DIR/combined.json from the reports of one run in DIR."""
    reports = {}
    for name in ("kernelab", *PEERS):
        path = os.path.join(folder, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                reports[name] = json.load(f)
        elif name in PEERS:
            raise lib.Refused(f"--combine {folder}: no {name}.json there (a folder --out wrote)")
    write_reports({"combined": combine(reports)}, folder)


def write_reports(reports, folder):
    """Each report as `folder/NAME.json`, written atomically."""
    os.makedirs(folder, exist_ok=True)
    for name, report in reports.items():
        path = os.path.join(folder, f"{name}.json")
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(json.dumps(finite(report), separators=(",", ":"), allow_nan=False) + "\n")
        os.replace(tmp, path)
        print(f"wrote {path}", file=sys.stderr)


def finite(value):
    """`value` with every NaN or infinity as `null` (JSON has neither), as kernelab writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


# --- The summary ----------------------------------------------------------------------------------


def micros(seconds):
    return "-" if seconds is None else f"{seconds * 1e6:.2f}"


def summary_lines(report):
    """One line per (model, threads, batch) of the combined report: p50 and p99 per call and
    images/s of each engine, then each peer's p50 ÷ kernelab's (above 1: kernelab is faster)."""
    lines = ["model threads batch: engine p50/p99 us images/s, …; peer p50 ÷ kernelab p50"]
    for (model, threads, batch), rows in sorted(engines_by_row(report).items()):
        cells = [f"{e} {micros(r['median_s'])}/{micros(r.get('p99_s'))} {batch / r['median_s']:.4g}"
                 for e, r in rows.items()]
        ratios = [f"{e} {r['median_s'] / rows['kernelab']['median_s']:.2f}x"
                  for e, r in rows.items() if "kernelab" in rows and e != "kernelab"]
        ratios = f"; {', '.join(ratios)}" if ratios else ""
        lines.append(f"{model} {threads}t batch {batch}: {', '.join(cells)}{ratios}")
    return lines


def print_summary(report):
    """Prints the table and the controls; returns whether no control failed (an undecided one,
    whose rows were too few or too noisy to resolve its change, is printed as such)."""
    for line in summary_lines(report):
        print(line, file=sys.stderr)
    ok = True
    for c in report["peer_controls"]:
        ok &= c["verdict"] != "failed"
        print(f"control {c['control']} {c['model']} batch {c['batch']} {c['threads']}t: ratio {c['ratio']:.3f} "
              f"[{c['low']:.3f}, {c['high']:.3f}], expected {c['expected']:.3f}: {c['verdict'].upper()}",
              file=sys.stderr)
    print(f"note: {NOTE}; CPU: {report['peers']['cpu']}", file=sys.stderr)
    return ok


# --- kernelab in the same run ---------------------------------------------------------------------


def kernelab_infer(binary, args, workdir, name):
    """Runs `kernelab infer ARGS --json FILE` and returns the report; refused with its stderr."""
    out = os.path.join(workdir, name)
    run = subprocess.run([binary, "infer", *args, "--json", out], capture_output=True, text=True)
    if run.returncode != 0:
        raise lib.Refused(f"{binary} infer {' '.join(args)} exited with {run.returncode}: {run.stderr.strip()[-800:]}")
    with open(out) as f:
        return json.load(f)


def run_kernelab(a, path, threads, workdir):
    """One block of kernelab: every batch size of one model on `threads` CPU threads."""
    args = ["--checkpoint", path, "--backend", "cpu", "--threads", str(threads), "--batch",
            ",".join(map(str, a.batch)), "--warmup", str(a.warmup), "--calls", str(max(a.calls, 20)),
            "--budget", str(a.budget), "--settle-ms", str(a.settle_ms), "--seed", str(a.seed)]
    if a.data:
        args += ["--data", a.data]
    return kernelab_infer(a.kernelab, args, workdir, f"kernelab-{time.time_ns()}.json")


def kernelab_accuracy_check(a, path, torch_accuracy, workdir):
    """kernelab's test accuracy (from its row's note) against PyTorch's on the same images: they
    may differ by `lib.ARGMAX_TIES` images at most."""
    args = ["--checkpoint", path, "--backend", "cpu", "--threads", "1", "--batch", "1", "--warmup", "1",
            "--calls", "20", "--budget", "0.01", "--data", a.data]
    report = kernelab_infer(a.kernelab, args, workdir, "kernelab-check.json")
    note = report["records"][0].get("note") or ""
    found = re.search(r"test accuracy ([0-9.]+)% on ([0-9]+) images", note)
    if not found:
        raise lib.Refused(f"kernelab infer reported no test accuracy to check (its note: {note!r})")
    acc, n = float(found.group(1)) / 100.0, int(found.group(2))
    torch_acc, torch_n = torch_accuracy
    # kernelab prints the accuracy to 0.01%, so up to half an image in 10000 is its rounding.
    differ = max(abs(acc - torch_acc) * n - 0.5e-4 * n, 0.0) if n == torch_n else math.inf
    return {"engine": "kernelab classes", "budget_ratio": differ / lib.ARGMAX_TIES,
            "detail": f"kernelab's test accuracy {100 * acc:.2f}% on {n} images, PyTorch's {100 * torch_acc:.2f}% on "
                      f"{torch_n} (at most {lib.ARGMAX_TIES} images may differ)"}


# --- The table of BENCHMARKS.md -------------------------------------------------------------------


def engines_by_row(report):
    """{(model, threads, batch): {engine: row}} of a combined report's ok rows."""
    groups = {}
    for r in report["records"]:
        if r["status"] == "ok":
            model, engine = r["variant"].split(" ", 1)
            groups.setdefault((model, r["threads"], r["shape"][0]), {})[engine] = r
    return groups


def targets(rows, batch):
    """The issue's targets at this batch size, as text: batch 1, kernelab's p50 at most 1/5 of
    PyTorch's and below ONNX Runtime's, p99 at most 2× p50 (of the blocks' samples joined; where
    that misses and every block's own p99/p50 holds, the blocks' are named: their p50s differ);
    batch 256, images/s at or above both."""
    own, torch_row, ort_row = rows.get("kernelab"), rows.get("pytorch-eager"), rows.get("onnxruntime")
    if own is None or torch_row is None or ort_row is None:
        return ""
    if batch == 1:
        met = [own["median_s"] * 5 <= torch_row["median_s"], own["median_s"] < ort_row["median_s"],
               own["p99_s"] <= 2 * own["median_s"]]
        text = "met" if all(met) else "missed: " + ", ".join(
            what for what, ok in zip(["≤ 1/5 PyTorch", "< ORT", "p99 ≤ 2×p50"], met) if not ok)
        blocks = own.get("block_p99_over_p50") or []
        if not met[2] and blocks and max(blocks) <= 2:
            text += f" (joined; each block's p99/p50 ≤ 2: {' '.join(f'{b:.2f}' for b in blocks)})"
        return text
    if batch == 256:
        return "met" if own["median_s"] <= min(torch_row["median_s"], ort_row["median_s"]) else "missed"
    return ""


def markdown_table(report):
    """The combined report as the Markdown table BENCHMARKS.md quotes: per model, threads and
    batch, each engine's p50 (µs), kernelab's p99 and p99/p50, images/s, and each peer's p50 over
    kernelab's (above 1: kernelab is faster)."""
    lines = ["| model | threads | batch | kernelab p50 µs | p99 µs | p99/p50 | PyTorch p50 µs | ORT p50 µs "
             "| PyTorch ÷ kernelab | ORT ÷ kernelab | kernelab images/s | PyTorch images/s | ORT images/s | target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (model, threads, batch), rows in sorted(engines_by_row(report).items(), key=lambda g: (len(g[0][0]), g[0])):
        own, pt, ox = (rows.get(e) for e in ("kernelab", "pytorch-eager", "onnxruntime"))
        if own is None or pt is None or ox is None:
            continue
        ips = lambda r: f"{batch / r['median_s']:,.0f}"  # noqa: E731
        lines.append(f"| {model} | {threads} | {batch} | {micros(own['median_s'])} | {micros(own['p99_s'])} | "
                     f"{own['p99_s'] / own['median_s']:.2f} | {micros(pt['median_s'])} | {micros(ox['median_s'])} | "
                     f"{pt['median_s'] / own['median_s']:.2f} | {ox['median_s'] / own['median_s']:.2f} | {ips(own)} | "
                     f"{ips(pt)} | {ips(ox)} | {targets(rows, batch)} |")
    return "\n".join(lines)
