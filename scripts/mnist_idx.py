"""The IDX files of MNIST and Fashion-MNIST, read for the scripts that run beside kernelab
(compare_pytorch.py, infer_peers_lib.py): u8 values only, raw or gzipped, as kernelab's own
reader (crates/nn/src/idx.rs) takes them.

An IDX file is a 4-byte magic (two zero bytes, the value type, 0x08 for u8, and the rank), one
big-endian u32 per dimension, then the values in row-major order: images are (n, rows, cols),
labels (n,)."""

import gzip
import math
import os
import struct


class IdxError(Exception):
    """A missing or malformed IDX file; the message names the file and what is wrong with it."""


def read(path, rank=None):
    """(dims, values) of the IDX file at `path`, or at `path`.gz where `path` does not exist: its
    dimensions as a tuple and its u8 values as a memoryview of `prod(dims)` bytes. With `rank`
    given, a file of another number of dimensions is refused."""
    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            with open(candidate, "rb") as f:
                raw = f.read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            zero, dtype, got = struct.unpack(">HBB", raw[:4]) if len(raw) >= 4 else (1, 0, 0)
            header = 4 + 4 * got
            if zero != 0 or dtype != 0x08 or (rank is not None and got != rank) or len(raw) < header:
                dims_wanted = "" if rank is None else f" in {rank} dimensions"
                raise IdxError(f"{candidate}: not an IDX file of u8 values{dims_wanted}")
            dims = struct.unpack(">" + "I" * got, raw[4:header])
            body = len(raw) - header
            if body != math.prod(dims):
                raise IdxError(f"{candidate}: {body} bytes of values for dimensions {list(dims)}")
            return dims, memoryview(raw)[header:]
    raise IdxError(f"{path}: neither it nor {path}.gz exists")
