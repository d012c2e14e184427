#!/usr/bin/env python3
"""Assemble every kernels/**/*.ptx with ptxas for sm_80 and sm_90 (no GPU needed) and check them.

Fails when a file does not assemble, when ptxas warns, or when a matmul rung spills (a stack frame
or spill stores/loads). Writes the resource report (registers, spills, shared memory per entry
point and architecture) to results/ptxas/resources.md and ptxas's own words to
results/ptxas/<arch>.log, and rewrites the resource lines in the header of each file that has
one entry point (each matmul rung, kernels/matmul/*.ptx, must have them):

    // Resources (ptxas -v, release ...), ... for blocks of
    // 256 threads ...
    //   sm_80: 53 registers, 0 B spill stores, 0 B spill loads, 0 B stack, 8448 B shared; 4 blocks/SM, 50% occupancy

With --check it writes nothing and fails, naming the file, when the committed report or a
header's lines differ from this run's (a kernel changed but its numbers were not regenerated).

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
KERNELS = os.path.join(ROOT, "kernels")
# Per SM, for the occupancy in the headers: registers, threads, blocks, shared bytes a block may
# use (164 KiB on sm_80, 228 KiB on sm_90; the driver reserves 1 KiB more per block).
SM = {"sm_80": (65536, 2048, 32, 164 << 10), "sm_90": (65536, 2048, 32, 228 << 10)}
VERSION_LINE = re.compile(r"^// Resources \(ptxas -v(?:, [^)]*)?\)")
ROW = re.compile(r"^//   (sm_\d+)\b.*$")
BLOCK = re.compile(r"for blocks of\s+(?://\s*)?(\d+) threads")


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


def occupancy(arch, r, threads):
    """Blocks per SM and the fraction of the SM's threads they fill: the fewest that registers
    (allocated per warp in units of 256, i.e. per thread rounded up to 8), threads, the block limit
    and shared memory allow."""
    regs, max_threads, max_blocks, smem = SM[arch]
    warps = -(-threads // 32)
    per_warp = -(-max(r["registers"], 1) // 8) * 8 * 32
    blocks = min(max_blocks, max_threads // (warps * 32), (regs // per_warp) // warps, smem // (r["smem"] + 1024))
    return blocks, blocks * warps * 32 / max_threads


def header_row(arch, r, threads):
    blocks, fraction = occupancy(arch, r, threads)
    return (
        f"//   {arch}: {r['registers']} registers, {r['spill_stores']} B spill stores, {r['spill_loads']} B spill loads, "
        f"{r['stack']} B stack, {r['smem']} B shared; {blocks} blocks/SM, {fraction * 100:g}% occupancy"
    )


def header(name, text, resources, version):
    """The header of kernels/NAME with its resource lines as this run's ptxas says (`resources`:
    {arch: numbers} of its one entry point), or a problem with it."""
    lines = text.split("\n")
    head = next((i for i, l in enumerate(lines) if not l.startswith("//")), len(lines))
    rows = [i for i in range(head) if ROW.match(lines[i])]
    block = BLOCK.search("\n".join(lines[:head]))
    found = sorted(ROW.match(lines[i]).group(1) for i in rows)
    if found != sorted(ARCHS) or block is None or not any(VERSION_LINE.match(l) for l in lines[:head]):
        return None, (
            f"kernels/{name}: its header needs `// Resources (ptxas -v), ... for blocks of N threads` "
            f"and one line per architecture ({', '.join(f'//   {a}: ...' for a in ARCHS)}); it has {found}"
        )
    for i in rows:
        arch = ROW.match(lines[i]).group(1)
        lines[i] = header_row(arch, resources[arch], int(block.group(1)))
    lines[:head] = [VERSION_LINE.sub(f"// Resources (ptxas -v, {version})", l) for l in lines[:head]]
    return "\n".join(lines), None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ptxas", default=os.environ.get("PTXAS", "ptxas"))
    parser.add_argument("--check", action="store_true", help="write nothing; fail if the report or a header's ptxas lines are stale")
    args = parser.parse_args()

    about = subprocess.run([args.ptxas, "--version"], capture_output=True, text=True).stdout
    version = next((l.split(", ", 1)[-1] for l in about.splitlines() if "release" in l), about.strip())
    failures, rows, logs = [], [], {arch: [] for arch in ARCHS}
    headers = []  # (path, name, {arch: resources}) of files with one entry point
    for path in sorted(glob.glob(os.path.join(KERNELS, "**", "*.ptx"), recursive=True)):
        name = os.path.relpath(path, KERNELS)
        per_arch = {}
        for arch in ARCHS:
            code, lines = assemble(args.ptxas, path, arch)
            logs[arch] += [f"== kernels/{name}"] + lines
            if code != 0:
                failures.append(f"kernels/{name} does not assemble for {arch}:\n  " + "\n  ".join(lines))
                continue
            for line in lines:
                if "warning" in line:
                    failures.append(f"kernels/{name} ({arch}): {line}")
            parsed = parse(lines)
            if len(parsed) == 1:
                per_arch[arch] = next(iter(parsed.values()))
            for entry, r in sorted(parsed.items()):
                rows.append((name, entry, arch, r))
                spills = r["stack"] + r["spill_stores"] + r["spill_loads"]
                if entry.startswith("matmul_") and spills:
                    failures.append(f"kernels/{name}: {entry} spills on {arch}: {r}")
        if len(per_arch) == len(ARCHS):
            headers.append((path, name, per_arch))
        elif name.startswith("matmul/"):
            failures.append(f"kernels/{name}: a matmul rung's file must hold exactly one entry point")

    report = [
        "# ptxas resource report",
        "",
        f"Every entry point of `kernels/**/*.ptx` as ptxas ({version}) assembles it, from",
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
    rewritten, checked = [], 0
    for path, name, per_arch in headers:
        text = open(path).read()
        # The rungs must have the lines; another file with one entry point may opt in.
        if not (name.startswith("matmul/") or any(VERSION_LINE.match(l) for l in text.split("\n"))):
            continue
        checked += 1
        new, problem = header(name, text, per_arch, version)
        if problem:
            failures.append(problem)
        elif new != text and args.check:
            stale = [(o, n) for o, n in zip(text.split("\n"), new.split("\n")) if o != n]
            detail = "\n".join(f"    header: {o.lstrip('/ ')}\n    ptxas:  {n.lstrip('/ ')}" for o, n in stale)
            failures.append(f"kernels/{name}: its header's ptxas lines are stale (run scripts/check_ptx.py):\n{detail}")
        elif new != text:
            rewritten.append((path, new))
    if args.check:
        committed = open(target).read() if os.path.exists(target) else ""
        if committed != report:
            failures.append("results/ptxas/resources.md is stale: run scripts/check_ptx.py and commit it")
    else:
        for path, new in rewritten:
            with open(path, "w") as f:
                f.write(new)
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
    print(
        f"check_ptx: {entries} entry points assemble for {', '.join(ARCHS)} with {version}; no matmul rung spills; "
        f"{checked} headers' ptxas lines {'match' if args.check else 'written'}"
    )


if __name__ == "__main__":
    main()
