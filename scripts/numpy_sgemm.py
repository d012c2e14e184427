#!/usr/bin/env python3
"""numpy's bundled OpenBLAS (scipy-openblas) SGEMM at the sizes kernelab's table uses: a second,
independent build of the vendor library to check the `openblas` row against.

    OPENBLAS_NUM_THREADS=1 python3 scripts/numpy_sgemm.py 1024 2048

Prints, per size, the median GFLOP/s of 2·n³ over 30 runs after 3 warm-ups, and the core numpy's
OpenBLAS chose (from its configuration string)."""
import sys
import time

import numpy as np


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1024]
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # noqa: F401
    except ImportError:
        pass
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(f"numpy {np.__version__}, {config.get('name')} {config.get('version')}: {config.get('openblas configuration', '')}")
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        times.sort()
        median = times[len(times) // 2]
        print(f"{n}x{n}x{n}: median {median * 1e3:.2f} ms, {2 * n**3 / median / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
