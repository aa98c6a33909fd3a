"""Evidently's data-drift preset on the data of benches/monitor.sh: the training split's table as
reference, one production batch (CSV or Parquet) as current, the same 17 feature columns mlgit
judges (`id`, the split key, and `prediction`, `model_tag` left out, as mlgit leaves them out of the
feature drift).
Prints one JSON document: Evidently's version, rows, and the columns it calls drifted.

usage: monitor_evidently.py REFERENCE.csv BATCH.(csv|parquet)
"""

import json
import sys
import time

t0 = time.perf_counter()
import pandas as pd  # noqa: E402
import evidently  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

NUMERIC = ["age", "visits", "zip", "year", "items", "income", "rating", "weight", "height", "balance", "ratio"]
CATEGORICAL = ["country", "city", "segment", "channel", "device", "plan"]


def read(path):
    cols = NUMERIC + CATEGORICAL
    if path.endswith(".parquet"):
        return pd.read_parquet(path, columns=cols)
    return pd.read_csv(path, usecols=cols)


def main():
    ref_path, cur_path = sys.argv[1], sys.argv[2]
    t_import = time.perf_counter() - t0
    ref = read(ref_path)
    cur = read(cur_path)
    t_read = time.perf_counter() - t0 - t_import
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    report = Report([DataDriftPreset()])
    snap = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    doc = snap.dict()
    t_run = time.perf_counter() - t0 - t_import - t_read
    drifted, count = [], None
    for m in doc.get("metrics", []):
        mid = str(m.get("metric_id", m.get("metric_name", "")))
        cfg = m.get("config", {}) or {}
        value = m.get("value")
        if "DriftedColumnsCount" in mid:
            count = value
        elif "ValueDrift" in mid:
            column = cfg.get("column") or mid.split("column=")[-1].split(")")[0].split(",")[0]
            threshold = cfg.get("threshold")
            method = str(cfg.get("method", ""))
            # p-value methods drift below the threshold, distances above it.
            pvalue = "p_value" in method or "ks" in method.lower() or "chisquare" in method.lower()
            if value is not None and threshold is not None:
                hit = value < threshold if pvalue else value >= threshold
                if hit:
                    drifted.append(column)
    print(
        json.dumps(
            {
                "tool": "evidently",
                "version": evidently.__version__,
                "pandas": pd.__version__,
                "reference_rows": len(ref),
                "current_rows": len(cur),
                "drifted_columns": sorted(drifted),
                "drifted_count": count,
                "seconds": {"import": round(t_import, 2), "read": round(t_read, 2), "report": round(t_run, 2)},
            }
        )
    )


if __name__ == "__main__":
    main()
