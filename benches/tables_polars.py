"""The polars side of benches/tables.sh: the same work as tables_pandas.py (read, place each record by
sha256("<seed>:<id>"), write each split in the input's format, profile each split), with polars.
Prints the rows per split as JSON.

usage: tables_polars.py INPUT OUTDIR [--key id] [--seed 42] [--ratios 80,10,10]
"""

import argparse
import json
import os

import numpy as np
import polars as pl

from tables_common import PERCENTILES, SPLITS, assign


def profile(df):
    cols = []
    for name, s in zip(df.columns, df.get_columns()):
        c = {"name": name, "nulls": s.null_count(), "distinct": s.drop_nulls().n_unique()}
        vc = s.drop_nulls().value_counts(sort=True).head(50)
        c["top"] = [[str(k), int(v)] for k, v in vc.iter_rows()]
        if s.dtype.is_numeric():
            v = s.drop_nulls().cast(pl.Float64)
            if len(v):
                lo, hi = v.min(), v.max()
                x = v.to_numpy()
                counts, _ = np.histogram(x, bins=20, range=(lo, hi if hi > lo else lo + 1))
                # One numpy call for the 99 percentiles (99 polars quantile() calls cost far more).
                c.update(min=lo, max=hi, mean=v.mean(), std=v.std(ddof=0),
                         percentiles=[float(q) for q in np.quantile(x, PERCENTILES)],
                         histogram=[int(x) for x in counts])
        cols.append(c)
    return {"rows": df.height, "columns": cols}


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
    df = pl.read_parquet(a.input) if parquet else pl.read_csv(a.input)
    which = pl.Series("split", assign(df[a.key].cast(pl.Utf8).to_list(), a.seed, ratios))
    rows, profiles = {}, {}
    for i, name in enumerate(SPLITS):
        part = df.filter(which == i)
        os.makedirs(os.path.join(a.outdir, name), exist_ok=True)
        out = os.path.join(a.outdir, name, os.path.basename(a.input))
        if parquet:
            part.write_parquet(out, compression="snappy")
        else:
            part.write_csv(out)
        rows[name] = part.height
        profiles[name] = profile(part)
    with open(os.path.join(a.outdir, "profile.json"), "w") as f:
        json.dump(profiles, f)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
