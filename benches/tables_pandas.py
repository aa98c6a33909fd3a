"""The pandas side of benches/tables.sh: read a table, place each record by sha256("<seed>:<id>") as
mlgit does, write each split in the input's format, and profile each split (count, nulls, distinct,
min/max/mean/std, p1..p99, a 20-bin histogram, the top 50 values). Prints the rows per split as JSON.

usage: tables_pandas.py INPUT OUTDIR [--key id] [--seed 42] [--ratios 80,10,10]
"""

import argparse
import json
import os

import numpy as np
import pandas as pd

from tables_common import PERCENTILES, SPLITS, assign


def profile(df):
    cols = []
    for name in df.columns:
        s = df[name]
        c = {"name": name, "nulls": int(s.isna().sum()), "distinct": int(s.nunique())}
        top = s.value_counts().head(50)
        c["top"] = [[str(k), int(v)] for k, v in top.items()]
        if pd.api.types.is_numeric_dtype(s):
            v = s.dropna().to_numpy(dtype=float)
            if len(v):
                lo, hi = float(v.min()), float(v.max())
                counts, _ = np.histogram(v, bins=20, range=(lo, hi if hi > lo else lo + 1))
                c.update(min=lo, max=hi, mean=float(v.mean()), std=float(v.std()),
                         percentiles=[float(x) for x in np.quantile(v, PERCENTILES)],
                         histogram=[int(x) for x in counts])
        cols.append(c)
    return {"rows": len(df), "columns": cols}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("outdir")
    p.add_argument("--key", default="id")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--ratios", default="80,10,10")
    a = p.parse_args()
    ratios = [int(x) for x in a.ratios.split(",")]
    parquet = a.input.endswith(".parquet")
    df = pd.read_parquet(a.input) if parquet else pd.read_csv(a.input)
    which = assign(df[a.key].astype(str).tolist(), a.seed, ratios)
    rows, profiles = {}, {}
    for i, name in enumerate(SPLITS):
        part = df[which == i]
        os.makedirs(os.path.join(a.outdir, name), exist_ok=True)
        out = os.path.join(a.outdir, name, os.path.basename(a.input))
        if parquet:
            part.to_parquet(out, compression="snappy", index=False)
        else:
            part.to_csv(out, index=False)
        rows[name] = len(part)
        profiles[name] = profile(part)
    with open(os.path.join(a.outdir, "profile.json"), "w") as f:
        json.dump(profiles, f)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
