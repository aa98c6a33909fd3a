"""Generate the data of benches/monitor.sh, seeded (every run and machine gets the same bytes):

- OUTDIR/raw/customers.csv: the table the snapshot is trained on (TRAIN_ROWS rows; `mlgit split`
  puts ~80% of them in the training split): `id`, 17 features (11 numeric, 6 categorical), `label`
  (last, as the template's train.sh wants);
- OUTDIR/batch/requests.csv and OUTDIR/batch/requests.parquet: one production batch of ROWS records
  x 20 columns: `id` (a customer id of the training table's range), the 17 features, `prediction`, `model_tag` (every record served by TAG).
  Two features drift on purpose (income by +0.25 sd, segment's shares move), so both tools have
  something to find; the other 15 come from the training distribution.

usage: monitor_gen.py ROWS TRAIN_ROWS OUTDIR [--tag TAG]
"""

import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHUNK = 250_000
NUMERIC = ["age", "visits", "zip", "year", "items", "income", "rating", "weight", "height", "balance", "ratio"]
CATEGORICAL = ["country", "city", "segment", "channel", "device", "plan"]
FEATURES = NUMERIC + CATEGORICAL


def features(rng, n, drift):
    cols = {}
    cols["age"] = pa.array(rng.integers(18, 95, n))
    cols["visits"] = pa.array(rng.poisson(3, n))
    cols["zip"] = pa.array(rng.integers(10000, 99999, n))
    cols["year"] = pa.array(rng.integers(1990, 2027, n))
    cols["items"] = pa.array(rng.integers(0, 1000, n))
    cols["income"] = pa.array(np.round(rng.normal(42000 + (0.25 * 15000 if drift else 0), 15000, n), 2))
    cols["rating"] = pa.array(np.round(rng.random(n), 9))
    cols["weight"] = pa.array(np.round(rng.normal(72, 14, n), 1))
    cols["height"] = pa.array(np.round(rng.normal(171, 11, n), 1))
    bal = np.round(rng.lognormal(7, 1.5, n), 2)
    cols["balance"] = pa.array(bal, mask=rng.random(n) < 0.05)
    cols["ratio"] = pa.array(np.round(rng.standard_t(5, n), 8))

    def cat(prefix, k, p=None):
        return pa.array(np.char.add(prefix, rng.choice(k, n, p=p).astype(str)))

    cols["country"] = cat("country-code-", 40)
    cols["city"] = cat("city-of-somewhere-", 900)
    seg = [0.3, 0.3, 0.2, 0.12, 0.08] if drift else [0.4, 0.3, 0.15, 0.1, 0.05]
    cols["segment"] = cat("segment-", 5, seg)
    cols["channel"] = cat("channel-", 8)
    cols["device"] = cat("device-model-", 12)
    cols["plan"] = cat("plan-tier-", 4)
    return cols


def training_chunk(rng, start, n):
    cols = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
    cols.update(features(rng, n, drift=False))
    cols["label"] = pa.array(np.char.add("class-", rng.choice(3, n, p=[0.7, 0.2, 0.1]).astype(str)))
    return pa.table(cols)


def batch_chunk(rng, n, tag, train_rows):
    # Customer ids from the training table's range (the `id` column is a feature of the reference).
    cols = {"id": pa.array(rng.integers(0, train_rows, n))}
    cols.update(features(rng, n, drift=True))
    cols["prediction"] = pa.array(np.char.add("class-", rng.choice(3, n, p=[0.7, 0.2, 0.1]).astype(str)))
    cols["model_tag"] = pa.array([tag] * n)
    return pa.table(cols)


def write(make, rows, csv_path, pq_path=None):
    """Write `rows` rows made CHUNK at a time as CSV (unquoted: no value needs quotes) and Parquet."""
    os.makedirs(os.path.dirname(csv_path), exist_ok=True)
    first = make(0, min(CHUNK, rows))
    pw = pq.ParquetWriter(pq_path, first.schema, compression="snappy") if pq_path else None
    with pa.OSFile(csv_path, "wb") as sink:
        sink.write((",".join(first.schema.names) + "\n").encode())
        opts = pacsv.WriteOptions(quoting_style="none", include_header=False)
        cw = pacsv.CSVWriter(sink, first.schema, write_options=opts)
        done, t = 0, first
        while True:
            cw.write_table(t)
            if pw:
                pw.write_table(t)
            done += t.num_rows
            if done >= rows:
                break
            t = make(done, min(CHUNK, rows - done))
        cw.close()
    if pw:
        pw.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=int)
    ap.add_argument("train_rows", type=int)
    ap.add_argument("out")
    ap.add_argument("--tag", default="model-v1")
    a = ap.parse_args()
    rng = np.random.default_rng(20261130)
    write(lambda s, n: training_chunk(rng, s, n), a.train_rows, os.path.join(a.out, "raw", "customers.csv"))
    rng = np.random.default_rng(20261201)
    write(
        lambda s, n: batch_chunk(rng, n, a.tag, a.train_rows),
        a.rows,
        os.path.join(a.out, "batch", "requests.csv"),
        os.path.join(a.out, "batch", "requests.parquet"),
    )


if __name__ == "__main__":
    main()
