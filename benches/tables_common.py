"""What benches/tables_pandas.py and tables_polars.py share: the documented split rule of mlgit
(docs/split.md) and the profile's percentiles. Kept tiny so that each tool's script shows its own work."""

import hashlib

import numpy as np

SPLITS = ("train", "validation", "test")


def thresholds(ratios):
    """h < t[i] <=> h * 100 < cumulative_i * 2^64 (exact, as mlgit computes it)."""
    out, c = [], 0
    for r in ratios[:-1]:
        c += r
        out.append(-(-(c << 64) // 100))
    return out


def assign(keys, seed, ratios):
    """Split index (0, 1, 2) of each key text: first 8 bytes of sha256("<seed>:<key>"), big-endian."""
    prefix = f"{seed}:".encode()
    h = np.fromiter(
        (int.from_bytes(hashlib.sha256(prefix + k.encode()).digest()[:8], "big") for k in keys),
        dtype=np.uint64,
        count=len(keys),
    )
    t1, t2 = thresholds(ratios)
    return np.where(h < np.uint64(t1), 0, np.where(h < np.uint64(t2), 1, 2)).astype(np.int8)


PERCENTILES = [i / 100 for i in range(1, 100)]
