#!/usr/bin/env python3
"""Check an MLflow file store (mlruns/) with MLflow itself, against expectations given as JSON.

Usage: check_mlruns.py STORE_DIR EXPECTED

EXPECTED is a JSON document, or the path of a file holding one:

    {
      "experiments": ["Default", "churn"],      # optional: exact set of active experiment names
      "exact_runs": true,                       # optional: the store holds no other active runs
      "runs": {
        "<run_id>": {
          "experiment": "churn",                # optional: name of the run's experiment
          "run_name": "a-1",                    # optional
          "params": {"lr": "0.1"},              # optional: exact params
          "metrics": {"loss": [[0, 1.0], [1, 0.5]]},  # optional: full history as [step, value]
          "tags": {"mlgit.tag": "snap-a"},      # optional: tags that must be present with these values
          "artifacts": ["model.txt", "nested/model.txt"],  # optional: paths that must be listed
          "datasets": ["d"]                     # optional: names of the run's dataset inputs
        }
      },
      "logged_models": {"<model_id>": {"experiment": "churn", "name": "m"}},  # optional
      "traces": {"<trace_id>": {"experiment": "churn"}}                         # optional
    }

Experiment names must always be unique. Exits 0 when everything holds; otherwise prints every
failure to stderr and exits 1. Needs `mlflow` importable by this interpreter (tested with 3.17.2).
"""

import json
import logging
import math
import os
import sys

# MLflow >= 3.13 refuses file stores without this.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


class _StoreWarnings(logging.Handler):
    """MLflow reports runs and experiments it skips (wrong experiment id, malformed meta) only as log
    warnings, so they are collected and turned into failures."""

    SIGNS = ("will be ignored", "Malformed", "mismatch", "invalid state")

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage()
        if any(sign in message for sign in self.SIGNS):
            self.messages.append(message)


def _artifact_paths(mlflow, run_id, path=None):
    found = []
    for info in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path=path):
        if info.is_dir:
            found.extend(_artifact_paths(mlflow, run_id, info.path))
        else:
            found.append(info.path)
    return found


def check(store, expected):
    import mlflow
    from mlflow import MlflowClient

    failures = []
    warnings = _StoreWarnings()
    logging.getLogger().addHandler(warnings)

    mlflow.set_tracking_uri("file://" + os.path.abspath(store))
    client = MlflowClient()

    def attempt(what, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - every MLflow error is a finding here
            failures.append(f"{what}: {type(e).__name__}: {e}")
            return None

    experiments = attempt("search_experiments", lambda: mlflow.search_experiments()) or []
    names = [e.name for e in experiments]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        failures.append(f"duplicate experiment names: {duplicates}")
    if "experiments" in expected and sorted(set(names)) != sorted(expected["experiments"]):
        failures.append(f"experiments are {sorted(names)}, expected {sorted(expected['experiments'])}")
    name_of = {e.experiment_id: e.name for e in experiments}

    runs = attempt(
        "search_runs",
        lambda: mlflow.search_runs(search_all_experiments=True, output_format="list"),
    ) or []
    by_id = {r.info.run_id: r for r in runs}
    want_runs = expected.get("runs", {})
    missing = sorted(set(want_runs) - set(by_id))
    if missing:
        failures.append(f"search_runs does not return runs {missing}")
    if expected.get("exact_runs"):
        extra = sorted(set(by_id) - set(want_runs))
        if extra:
            failures.append(f"search_runs returns unexpected runs {extra}")

    for run_id, want in sorted(want_runs.items()):
        where = f"run {run_id}"
        # get_run is what breaks when run folders are missing, even though search_runs lists the run.
        run = attempt(f"{where}: get_run", lambda: client.get_run(run_id))
        if run is None:
            continue
        if "experiment" in want and name_of.get(run.info.experiment_id) != want["experiment"]:
            failures.append(
                f"{where}: in experiment {name_of.get(run.info.experiment_id)!r} "
                f"(id {run.info.experiment_id}), expected {want['experiment']!r}"
            )
        if "run_name" in want and run.info.run_name != want["run_name"]:
            failures.append(f"{where}: run_name {run.info.run_name!r}, expected {want['run_name']!r}")
        if "params" in want and run.data.params != want["params"]:
            failures.append(f"{where}: params {run.data.params}, expected {want['params']}")
        for key, value in want.get("tags", {}).items():
            if run.data.tags.get(key) != value:
                failures.append(f"{where}: tag {key}={run.data.tags.get(key)!r}, expected {value!r}")
        for key, history in want.get("metrics", {}).items():
            got = attempt(f"{where}: get_metric_history({key})", lambda: client.get_metric_history(run_id, key))
            if got is None:
                continue
            got = sorted((m.step, m.value) for m in got)
            want_points = sorted((int(s), float(v)) for s, v in history)
            same = len(got) == len(want_points) and all(
                gs == ws and math.isclose(gv, wv, rel_tol=1e-9, abs_tol=1e-12)
                for (gs, gv), (ws, wv) in zip(got, want_points)
            )
            if not same:
                failures.append(f"{where}: metric {key} history {got}, expected {want_points}")
        if "artifacts" in want:
            listed = attempt(f"{where}: list_artifacts", lambda: _artifact_paths(mlflow, run_id))
            if listed is not None:
                absent = sorted(set(want["artifacts"]) - set(listed))
                if absent:
                    failures.append(f"{where}: artifacts {sorted(listed)} lack {absent}")
        if "datasets" in want:
            got = sorted(d.dataset.name for d in run.inputs.dataset_inputs)
            if got != sorted(want["datasets"]):
                failures.append(f"{where}: dataset inputs {got}, expected {sorted(want['datasets'])}")

    for model_id, want in sorted(expected.get("logged_models", {}).items()):
        model = attempt(f"logged model {model_id}: get_logged_model", lambda: mlflow.get_logged_model(model_id))
        if model is None:
            continue
        if "experiment" in want and name_of.get(model.experiment_id) != want["experiment"]:
            failures.append(f"logged model {model_id}: in experiment id {model.experiment_id}")
        if "name" in want and model.name != want["name"]:
            failures.append(f"logged model {model_id}: name {model.name!r}, expected {want['name']!r}")
        listed = attempt(
            f"logged model {model_id}: search_logged_models",
            lambda: mlflow.search_logged_models(experiment_ids=[model.experiment_id], output_format="list"),
        )
        if listed is not None and model_id not in [m.model_id for m in listed]:
            failures.append(f"logged model {model_id}: not returned by search_logged_models")

    for trace_id, want in sorted(expected.get("traces", {}).items()):
        trace = attempt(f"trace {trace_id}: get_trace", lambda: mlflow.get_trace(trace_id))
        if trace is None:
            failures.append(f"trace {trace_id}: not found")
            continue
        experiment_id = trace.info.experiment_id
        if "experiment" in want and name_of.get(experiment_id) != want["experiment"]:
            failures.append(f"trace {trace_id}: in experiment id {experiment_id}")
        if not trace.data.spans:
            failures.append(f"trace {trace_id}: no spans (artifact location not readable)")

    failures.extend(f"MLflow warned: {m}" for m in warnings.messages)
    return failures


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    store, expected = argv[1], argv[2]
    if not expected.lstrip().startswith("{"):
        with open(expected, encoding="utf-8") as f:
            expected = f.read()
    failures = check(store, json.loads(expected))
    if failures:
        for failure in failures:
            print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print(f"OK {store}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
