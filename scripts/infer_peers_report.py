"""The report of scripts/infer_peers.py: the peers' rows in kernelab's report format (schema 1,
the rows `kernelab infer --json` writes), kernelab's own rows when it ran in the same run, the
checks and controls, and the summary table with the ratios."""

import json
import math
import os
import platform
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


def cpu_device():
    return {"label": "cpu:0", "backend": "cpu", "name": cpu_model(), "driver": "", "details": {}, "roofline": None}


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


def identity(widths, batch):
    """The op and shape of a row of `kernelab infer`: see its report module."""
    return "infer", [batch, *widths]


def record(op, shape, device, variant, threads, row, flops, bytes_, note):
    """One peer row, every key of kernelab's record present."""
    s = np.asarray(row.samples, np.float64)
    median, p10, p90 = (lib.quantile(s, q) for q in (0.5, 0.1, 0.9))
    return {"op": op, "backend": "cpu", "device": device, "variant": variant, "baseline": True,
            "shape": shape, "transpose": None, "threads": threads, "mode": "warm", "status": "ok",
            "clock": "host", "launches_per_sample": 1, "n": len(s), "samples_s": [float(v) for v in s],
            "rounds": list(row.rounds), "median_s": median, "p10_s": p10, "p90_s": p90,
            "host_median_s": median, "noisy": p90 / p10 > NOISY_SPREAD, "flops": flops, "bytes": bytes_,
            "gflops": flops / median / 1e9, "gbps": bytes_ / median / 1e9, "ceiling": None, "roofline": None,
            "suspect": False, "of_vendor": None, "vendor": None, "max_rel_err": None, "budget_ratio": None,
            "ok": True, "note": note}


def peer_records(peers, device):
    out = []
    for (path, variant, threads, batch), row in sorted(peers.rows.items()):
        if variant.endswith(lib.AA) or variant.endswith(lib.SLOWED):
            continue
        widths = lib.widths_of(peers.layers[path])
        macs = sum(a * b for a, b in zip(widths, widths[1:]))
        params = sum(w.size + b.size for w, b in peers.layers[path])
        op, shape = identity(widths, batch)
        check = peers.errors.get(path, {}).get(variant, {})
        p99 = lib.quantile(row.samples, 0.99)
        median = lib.quantile(row.samples, 0.5)
        note = (f"p99 {p99 * 1e6:.2f} us, {batch / median:.4g} images/s; logits within "
                f"{check.get('budget_ratio', math.nan):.2g} of their f64 error bound")
        rec = record(op, shape, device, variant, threads, row, 2.0 * batch * macs,
                     4.0 * (params + batch * (widths[0] + widths[-1])), note)
        rec["budget_ratio"] = check.get("budget_ratio")
        out.append(rec)
    return out


def merge_kernelab(reports):
    """kernelab's rows from every block as one row each: samples joined, rounds continued."""
    if not reports:
        return None, []
    merged, offset = {}, 0
    for report in reports:
        top = 0
        for r in report["records"]:
            key = json.dumps([r[k] for k in ("op", "backend", "device", "variant", "shape", "transpose", "threads",
                                             "mode")])
            rounds = r.get("rounds") or list(range(len(r["samples_s"])))
            top = max([top, *[x + 1 for x in rounds]])
            if key not in merged:
                merged[key] = dict(r, samples_s=[], rounds=[])
            merged[key]["samples_s"] += r["samples_s"]
            merged[key]["rounds"] += [x + offset for x in rounds]
        offset += top
    rows = []
    for r in merged.values():
        if r["samples_s"]:
            s = np.asarray(r["samples_s"])
            r["n"] = len(s)
            r["median_s"], r["p10_s"], r["p90_s"] = (lib.quantile(s, q) for q in (0.5, 0.1, 0.9))
            r["noisy"] = r["p90_s"] / r["p10_s"] > NOISY_SPREAD
            if r.get("flops"):
                r["gflops"] = r["flops"] / r["median_s"] / 1e9
            if r.get("bytes"):
                r["gbps"] = r["bytes"] / r["median_s"] / 1e9
        rows.append(r)
    return reports[0], rows


def of_peers(records):
    """Each kernelab row's speed as a fraction of the fastest peer of the same work, threads and
    mode (`peer median / median`), as kernelab's `of_vendor`."""
    peers = [r for r in records if r["baseline"] and r["status"] == "ok"]
    for r in records:
        if r["status"] != "ok" or r["baseline"]:
            continue
        same = [p for p in peers if all(p[k] == r[k] for k in ("op", "backend", "device", "shape", "threads",
                                                               "mode"))]
        if same:
            fastest = min(same, key=lambda p: p["median_s"])
            r["of_vendor"], r["vendor"] = fastest["median_s"] / r["median_s"], fastest["variant"]


def build_report(a, argv, peers, kernelab_reports, started):
    first, kernelab_rows = merge_kernelab(kernelab_reports)
    device = kernelab_rows[0]["device"] if kernelab_rows else cpu_model()
    records = kernelab_rows + peer_records(peers, device)
    of_peers(records)
    report = {
        "schema_version": 1,
        "command": ["scripts/infer_peers.py", *argv],
        "settings": {"warmup": a.warmup, "repeat": a.calls, "min_runs": lib.MIN_SAMPLES, "budget_s": a.budget,
                     "cold": False, "threads": max(a.threads), "batch_below_s": 0.0, "batch_target_s": 0.0,
                     "noisy_spread": NOISY_SPREAD, "variants": "pytorch-eager,onnxruntime", "round_seed": a.seed},
        "machine": first["machine"] if first else machine(started),
        "devices": first["devices"] if first else [cpu_device()],
        "baselines": (first["baselines"] if first else []) + baselines(a.threads),
        "records": records,
        "peer_controls": peers.controls(),
        "peer_checks": [dict(c, checkpoint=p) for p, checks in peers.errors.items() for c in checks.values()],
        "peers": {"python": platform.python_version(), "torch": torch.__version__, "onnxruntime": ort.__version__,
                  "numpy": np.__version__, "cpu": cpu_model(), "threads": a.threads, "batches": a.batch,
                  "blocks": a.blocks, "kernelab": a.kernelab, "seconds": time.time() - started, "note": NOTE},
    }
    return report


def write_report(report, path):
    text = json.dumps(finite(report), indent=1, allow_nan=False, default=float)
    if path is None:
        return
    if path == "-":
        sys.stdout.write(text + "\n")
        return
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text + "\n")
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
    """One line per (model and batch, threads): p50 and p99 per call and images/s of each variant,
    then each peer's p50 ÷ kernelab's (above 1: kernelab is faster)."""
    groups = {}
    for r in report["records"]:
        if r["status"] == "ok":
            groups.setdefault((r["op"], tuple(r["shape"]), r["threads"]), {})[r["variant"]] = r
    lines = ["op shape threads: variant p50/p99 us images/s, …; peer p50 / kernelab p50"]
    for (op, shape, threads), rows in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1][1:], g[0][2],
                                                                          g[0][1][0])):
        cells = []
        for variant, r in sorted(rows.items(), key=lambda v: v[1]["baseline"]):
            p99 = lib.quantile(r["samples_s"], 0.99)
            cells.append(f"{variant} {micros(r['median_s'])}/{micros(p99)} {shape[0] / r['median_s']:.4g}")
        own = [r for r in rows.values() if not r["baseline"]]
        ratios = [f"{v}/{o['variant']} {r['median_s'] / o['median_s']:.2f}x"
                  for o in own for v, r in rows.items() if r["baseline"]]
        lines.append(f"{op} {'x'.join(map(str, shape))} {threads}t: {', '.join(cells)}"
                     + (f"; {', '.join(ratios)}" if ratios else ""))
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


def run_kernelab(a, path, workdir):
    raise lib.Refused("--kernelab: `kernelab infer` is not wired in yet")


def kernelab_check(binary, path, layers, x, workdir):
    raise lib.Refused("--kernelab: `kernelab infer` is not wired in yet")
