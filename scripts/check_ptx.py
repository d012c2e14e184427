#!/usr/bin/env python3
"""Assemble every kernels/*.ptx with ptxas for sm_80 and sm_90 (no GPU needed) and check them.

Fails when a file does not assemble, when ptxas warns, or when a matmul rung spills (a stack frame
or spill stores/loads). Writes the resource report (registers, spills, shared memory per entry
point and architecture) to results/ptxas/resources.md and ptxas's own words to
results/ptxas/<arch>.log. With --check, also fails when the committed report differs from this
run's (a kernel changed but its report was not regenerated).

    scripts/check_ptx.py [--ptxas PATH] [--check]
"""

import argparse
import glob
import os
import re
import subprocess
import sys

ARCHS = ["sm_80", "sm_90"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "results", "ptxas")


def assemble(ptxas, path, arch):
    run = subprocess.run([ptxas, f"-arch={arch}", "-v", "-o", os.devnull, path], capture_output=True, text=True)
    lines = [l for l in (run.stdout + run.stderr).splitlines() if "Compile time" not in l]
    return run.returncode, lines


def parse(lines):
    """{entry: {registers, stack, spill_stores, spill_loads, smem}} from ptxas -v output."""
    entries, current = {}, None
    for line in lines:
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = entries.setdefault(m.group(1), {"registers": 0, "stack": 0, "spill_stores": 0, "spill_loads": 0, "smem": 0})
            continue
        m = re.search(r"Function properties for (\w+)", line)
        if m:
            props = m.group(1)
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None and props in entries:
            current["stack"], current["spill_stores"], current["spill_loads"] = map(int, m.groups())
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(s.group(1)) if s else 0
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ptxas", default=os.environ.get("PTXAS", "ptxas"))
    parser.add_argument("--check", action="store_true", help="fail if the committed report is stale")
    args = parser.parse_args()

    about = subprocess.run([args.ptxas, "--version"], capture_output=True, text=True).stdout
    version = next((l.split(", ", 1)[-1] for l in about.splitlines() if "release" in l), about.strip())
    failures, rows, logs = [], [], {arch: [] for arch in ARCHS}
    for path in sorted(glob.glob(os.path.join(ROOT, "kernels", "*.ptx"))):
        name = os.path.basename(path)
        for arch in ARCHS:
            code, lines = assemble(args.ptxas, path, arch)
            logs[arch] += [f"== kernels/{name}"] + lines
            if code != 0:
                failures.append(f"kernels/{name} does not assemble for {arch}:\n  " + "\n  ".join(lines))
                continue
            for line in lines:
                if "warning" in line:
                    failures.append(f"kernels/{name} ({arch}): {line}")
            for entry, r in sorted(parse(lines).items()):
                rows.append((name, entry, arch, r))
                spills = r["stack"] + r["spill_stores"] + r["spill_loads"]
                if entry.startswith("matmul_") and spills:
                    failures.append(f"kernels/{name}: {entry} spills on {arch}: {r}")

    report = [
        "# ptxas resource report",
        "",
        f"Every entry point of `kernels/*.ptx` as ptxas ({version}) assembles it, from",
        "`scripts/check_ptx.py` (CI runs it with `--check`). Registers are per thread; shared memory",
        "is static, per block. No matmul rung may spill.",
        "",
        "| file | entry point | arch | registers | spill stores (B) | spill loads (B) | stack (B) | shared (B) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry, arch, r in rows:
        report.append(
            f"| {name} | {entry} | {arch} | {r['registers']} | {r['spill_stores']} | {r['spill_loads']} | {r['stack']} | {r['smem']} |"
        )
    report = "\n".join(report) + "\n"
    target = os.path.join(OUT, "resources.md")
    if args.check:
        committed = open(target).read() if os.path.exists(target) else ""
        if committed != report:
            failures.append("results/ptxas/resources.md is stale: run scripts/check_ptx.py and commit it")
    else:
        os.makedirs(OUT, exist_ok=True)
        with open(target, "w") as f:
            f.write(report)
        for arch in ARCHS:
            with open(os.path.join(OUT, f"{arch}.log"), "w") as f:
                f.write("\n".join(logs[arch]) + "\n")

    entries = len({(n, e) for n, e, _, _ in rows})
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"check_ptx: {len(failures)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"check_ptx: {entries} entry points assemble for {', '.join(ARCHS)} with {version}; no matmul rung spills")


if __name__ == "__main__":
    main()
