"""Generate the table of benches/tables.sh: N rows x 20 columns (an `id`, 11 numeric, 8 categorical),
as CSV (~200 bytes a row) and as Parquet (snappy), seeded, so every run and machine gets the same bytes.

usage: tables_gen.py ROWS OUTDIR    (writes OUTDIR/csv/people.csv and OUTDIR/parquet/people.parquet)
"""

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHUNK = 250_000


def chunk(rng, start, n):
    cols = {"id": pa.array(np.arange(start, start + n, dtype=np.int64))}
    # numeric: 5 ints, 6 floats (some with nulls)
    cols["age"] = pa.array(rng.integers(18, 95, n))
    cols["visits"] = pa.array(rng.poisson(3, n))
    cols["zip"] = pa.array(rng.integers(10000, 99999, n))
    cols["year"] = pa.array(rng.integers(1990, 2027, n))
    cols["items"] = pa.array(rng.integers(0, 1000, n))
    cols["income"] = pa.array(np.round(rng.normal(42000, 15000, n), 2))
    cols["score"] = pa.array(np.round(rng.random(n), 9))
    cols["weight"] = pa.array(np.round(rng.normal(72, 14, n), 1))
    cols["height"] = pa.array(np.round(rng.normal(171, 11, n), 1))
    bal = np.round(rng.lognormal(7, 1.5, n), 2)
    cols["balance"] = pa.array(bal, mask=rng.random(n) < 0.05)
    cols["ratio"] = pa.array(np.round(rng.standard_t(5, n), 8))
    # categorical: 8 string columns of various cardinalities (unquoted in the CSV: no value needs quotes)
    def cat(prefix, k, p=None):
        return pa.array(np.char.add(prefix, rng.choice(k, n, p=p).astype(str)))
    cols["country"] = cat("country-code-", 40)
    cols["city"] = cat("city-of-somewhere-", 900)
    cols["segment"] = cat("segment-", 5, [0.4, 0.3, 0.15, 0.1, 0.05])
    cols["channel"] = cat("channel-", 8)
    cols["device"] = cat("device-model-", 12)
    cols["plan"] = cat("plan-tier-", 4)
    cols["campaign"] = cat("campaign-2026-", 300)
    cols["target"] = cat("class-", 3, [0.7, 0.2, 0.1])
    return pa.table(cols)


def main():
    rows, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(os.path.join(out, "csv"), exist_ok=True)
    os.makedirs(os.path.join(out, "parquet"), exist_ok=True)
    rng = np.random.default_rng(20261130)
    csv_path = os.path.join(out, "csv", "people.csv")
    pq_path = os.path.join(out, "parquet", "people.parquet")
    first = chunk(rng, 0, min(CHUNK, rows))
    pw = pq.ParquetWriter(pq_path, first.schema, compression="snappy")
    with pa.OSFile(csv_path, "wb") as sink:
        # The header as pandas writes it (pyarrow would quote the names).
        sink.write((",".join(first.schema.names) + "\n").encode())
        opts = pacsv.WriteOptions(quoting_style="none", include_header=False)
        cw = pacsv.CSVWriter(sink, first.schema, write_options=opts)
        t, done = first, 0
        while True:
            cw.write_table(t)
            pw.write_table(t, row_group_size=131_072)
            done += t.num_rows
            if done >= rows:
                break
            t = chunk(rng, done, min(CHUNK, rows - done))
        cw.close()
    pw.close()


if __name__ == "__main__":
    main()
