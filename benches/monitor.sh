#!/usr/bin/env bash
# benches/monitor.sh — `mlgit monitor log` + `mlgit monitor drift` on one large production batch, side by
# side with Evidently's DataDriftPreset on the same data in the same run (issue 12's performance row):
# 1,000,000 records x 20 columns (CSV, and the same batch as Parquet) against the training split of a real
# snapshot (~1,000,000 rows: the raw table has 1.25 x ROWS rows, `mlgit split` keeps ~80% for training).
# Prints wall times, the ratio and peak RSS (GNU time) as a Markdown table.
#
# Run by hand, never from CI or the test suite:
#   bash benches/monitor.sh [--rows N] [--runs N] [--formats csv,parquet] [--tools mlgit,evidently]
#                           [--mlgit PATH] [--workdir DIR] [--dry-run]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
EVIDENTLY_VERSION=0.7.23
# Evidently 0.7.23 imports a pandas internal that pandas 3 removed: its venv gets pandas 2.
EVIDENTLY_PANDAS="pandas<3"

usage() {
    cat <<'EOF'
usage: bash benches/monitor.sh [options]

  --rows N          records in the production batch (default: 1000000); the raw training table has
                    1.25 x N rows, so the training split holds about N
  --runs N          timed runs per row; the median is reported (default: 3)
  --formats LIST    csv, parquet or both (default: csv,parquet): the batch's format
  --tools LIST      some of mlgit,evidently (default: both)
  --mlgit PATH      mlgit binary (default: target/release/mlgit, else mlgit on PATH)
  --workdir DIR     generated data (kept), the repository, venv, logs, results (default: /tmp/mlgit-bench)
  --dry-run         generate the data and build the repository (init, commit-data, clean, split,
                    stable update, train-tag), print what would be timed, time nothing
  -h, --help        this text

Set-up (once per --rows, kept in WORKDIR/monitor-repo-N; not timed): `mlgit init`, `commit-data` of the
raw table, `clean`, `split --key id --label label`, `stable update`, `train-tag -- ./train.sh` (model-v1).
Each run, per format:
  mlgit      `monitor log --env prod --source BATCH` then `monitor drift --env prod --json` (timed
             separately; the row "log + drift" is their sum, peak RSS the larger). Before each run
             monitoring/prod is put back where init left it and the batch's LFS object is removed, so
             every run writes the batch anew.
  evidently  benches/monitor_evidently.py: pandas reads the training split's table (the same bytes mlgit
             reads, from `mlgit materialize`) and the batch, then Report([DataDriftPreset()]) over the
             same 17 feature columns (installed with pip into WORKDIR/evidently-venv: evidently==0.7.23)
The columns each tool calls drifted are printed (the batch has two drifted features: income, segment).

Results: a Markdown table on stdout and in WORKDIR/logs/monitor-<time>/results.md (for docs/performance.md).
EOF
}

ROWS=1000000; RUNS=3; FORMATS="csv,parquet"; TOOLS="mlgit,evidently"; MLGIT=""; WORK=/tmp/mlgit-bench; DRY=0
while (($#)); do
    case $1 in
        --rows) ROWS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --formats) FORMATS=${2:?}; shift 2 ;;
        --tools) TOOLS=${2:?}; shift 2 ;;
        --mlgit) MLGIT=${2:?}; shift 2 ;;
        --workdir) WORK=${2:?}; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "monitor.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
die() { echo "monitor.sh: error: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive integer"
has() { [[ ",$2," == *",$1,"* ]]; }
for f in ${FORMATS//,/ }; do [[ $f == csv || $f == parquet ]] || die "--formats: '$f' is not csv or parquet"; done
for t in ${TOOLS//,/ }; do [[ $t == mlgit || $t == evidently ]] || die "--tools: unknown tool '$t'"; done

if [[ -z $MLGIT ]]; then
    if [[ -x $REPO_ROOT/target/release/mlgit ]]; then MLGIT=$REPO_ROOT/target/release/mlgit; else MLGIT=$(command -v mlgit || true); fi
fi
[[ -n $MLGIT && -x $MLGIT ]] || die "no mlgit binary (it builds the repository): run 'cargo build --release' or pass --mlgit"
MLGIT=$(realpath "$MLGIT")
for tool in git git-lfs python3 sha256sum; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -qq time >/dev/null || die "GNU time is needed (apt-get install -y time)"
    else
        die "GNU time is needed (apt-get install -y time)"
    fi
fi
python3 -c 'import pyarrow, numpy' 2>/dev/null || die "numpy and pyarrow are needed to generate the data (pip install numpy pyarrow)"

mkdir -p "$WORK"
WORK=$(realpath "$WORK")
exec 9>"$WORK/.monitor.lock"
flock -n 9 || die "another monitor benchmark uses $WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$WORK/logs/monitor-$STAMP
mkdir -p "$LOGDIR"
exec 3>&1

# ---------------------------------------------------------------- Evidently (own venv)
VENV=$WORK/evidently-venv
if has evidently "$TOOLS" && ! "$VENV/bin/python" -c "import evidently, sys; sys.exit(evidently.__version__ != '$EVIDENTLY_VERSION')" 2>/dev/null; then
    echo "installing evidently==$EVIDENTLY_VERSION into $VENV (pip; a few minutes) ..." >&3
    rm -rf "$VENV"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check \
            "evidently==$EVIDENTLY_VERSION" "$EVIDENTLY_PANDAS" pyarrow >&2; }; then
        echo "monitor.sh: Evidently could not be installed: its rows are skipped" >&2
        TOOLS=$(echo ",$TOOLS," | sed 's/,evidently,/,/; s/^,//; s/,$//')
    fi
fi

# ---------------------------------------------------------------- isolated git set-up
SCRATCH=$WORK/monitor-scratch
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
export HOME=$WORK/monitor-home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
for v in $(env | grep -o '^GIT_[A-Z_]*' | grep -v '^GIT_CONFIG_NOSYSTEM$'); do unset "$v"; done
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main
git config --global gc.auto 0
git lfs install --skip-repo >/dev/null

# ---------------------------------------------------------------- the data (cached)
GEN_VERSION=1   # bump when monitor_gen.py changes what it writes
TRAIN_ROWS=$((ROWS * 5 / 4))
DATA=$WORK/data/monitor-$ROWS
if [[ ! -f $DATA/.done-v$GEN_VERSION ]]; then
    echo "generating a batch of $ROWS records x 20 columns and a $TRAIN_ROWS-row training table into $DATA ..." >&3
    rm -rf "$DATA"
    python3 "$SCRIPT_DIR/monitor_gen.py" "$ROWS" "$TRAIN_ROWS" "$DATA"
    touch "$DATA/.done-v$GEN_VERSION"
fi
echo "data: batch $(du -h "$DATA/batch/requests.csv" | cut -f1) CSV, $(du -h "$DATA/batch/requests.parquet" | cut -f1) Parquet ($ROWS records); raw table $(du -h "$DATA/raw/customers.csv" | cut -f1) ($TRAIN_ROWS rows)" >&3

# ---------------------------------------------------------------- the repository with a snapshot (cached)
REPO=$WORK/monitor-repo-$ROWS
REF=$WORK/monitor-ref-$ROWS/data/train/customers.csv
if [[ ! -f $REPO/.git/bench-ready-v$GEN_VERSION ]]; then
    echo "building the repository (init, commit-data, clean, split, stable update, train-tag) ..." >&3
    rm -rf "$REPO" "$WORK/monitor-ref-$ROWS" "$REPO-stable"
    "$MLGIT" init --quiet "$REPO" >/dev/null
    (cd "$REPO" && "$MLGIT" commit-data --quiet --source "$DATA/raw" -m "customers" >"$LOGDIR/setup-commit.out")
    (cd "$REPO" && "$MLGIT" clean --quiet >"$LOGDIR/setup-clean.out")
    (cd "$REPO" && "$MLGIT" --json split --quiet --key id --label label >"$LOGDIR/setup-split.json")
    (cd "$REPO" && "$MLGIT" stable update --quiet >"$LOGDIR/setup-stable.out")
    git -C "$REPO" worktree add -q "$REPO-stable" stable/model
    (cd "$REPO-stable" && "$MLGIT" train-tag --quiet -- ./train.sh >"$LOGDIR/setup-train.out")
    (cd "$REPO" && "$MLGIT" materialize --quiet split --into "$WORK/monitor-ref-$ROWS" >/dev/null)
    git -C "$REPO" rev-parse monitoring/prod >"$REPO/.git/bench-monitoring-base"
    touch "$REPO/.git/bench-ready-v$GEN_VERSION"
fi
[[ -f $REF ]] || die "the training split's table is not at $REF"
BASE=$(cat "$REPO/.git/bench-monitoring-base")
echo "repository: $REPO (model-v1 on split $(git -C "$REPO" rev-parse --short split)); training split: $(($(wc -l <"$REF") - 1)) rows" >&3

# ---------------------------------------------------------------- measuring
TSV=$LOGDIR/results.tsv
: >"$TSV"
# timed FORMAT ROW TOOL RUN DIR OUT CMD...: run CMD in DIR under GNU time (stdout to OUT), record seconds
# and peak RSS (MiB); exit codes in OK_CODES (default 0) count as success (drift exits 3 on an alert)
timed() {
    local fmt=$1 row=$2 tool=$3 run=$4 dir=$5 out=$6; shift 6
    local log rc=0
    log=$LOGDIR/$(printf '%s-%s-%s-%s' "$fmt" "$run" "$tool" "$row" | tr -c 'A-Za-z0-9._=-' '_')
    sync
    (cd "$dir" && /usr/bin/time -f '%e %M' -o "$log.time" "$@") >"$out" 2>"$log.err" || rc=$?
    if [[ " ${OK_CODES:-0} " == *" $rc "* ]]; then
        read -r secs rss < <(tail -n1 "$log.time")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$fmt" "$row" "$tool" "$run" "$secs" "$((rss / 1024))" >>"$TSV"
        printf '  %-20s %-34s %7.2f s %6d MiB\n' "$row" "$tool" "$secs" "$((rss / 1024))" >&3
    else
        printf '%s\t%s\t%s\t%s\tFAILED\t0\n' "$fmt" "$row" "$tool" "$run" >>"$TSV"
        printf '  %-20s %-34s FAILED, exit %s (see %s.err)\n' "$row" "$tool" "$rc" "$log" >&3
        return 1
    fi
}

# Put monitoring/prod back where init left it and drop the batch's LFS object (so each run writes it).
reset_branch() { # BATCH
    local oid
    git -C "$REPO" update-ref refs/heads/monitoring/prod "$BASE"
    oid=$(sha256sum "$1" | cut -d' ' -f1)
    rm -f "$REPO/.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"
}

drifted_mlgit() { # REPORT.json
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted({a.get("feature") or a.get("check") for a in d.get("alerts", [])})) or "-")' "$1" 2>/dev/null || echo "?"
}
drifted_evidently() { # OUT.json
    python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["drifted_columns"]) or "-")' "$1" 2>/dev/null || echo "?"
}

run_format() { # FORMAT RUN
    local fmt=$1 run=$2 batch r
    if [[ $fmt == csv ]]; then batch=$DATA/batch/requests.csv; else batch=$DATA/batch/requests.parquet; fi
    r=$SCRATCH/$fmt-$run
    rm -rf "$r"; mkdir -p "$r"
    echo "== $fmt, run $run" >&3
    cat "$batch" "$REF" >/dev/null   # the page cache holds the inputs for every tool alike
    if has mlgit "$TOOLS"; then
        reset_branch "$batch"
        local ok=1
        timed "$fmt" "log" "mlgit monitor log" "$run" "$REPO" "$r/log.json" \
            "$MLGIT" --json monitor log --env prod --source "$batch" || ok=0
        if ((ok)); then
            OK_CODES="0 3" timed "$fmt" "drift" "mlgit monitor drift" "$run" "$REPO" "$r/drift.json" \
                "$MLGIT" --json monitor drift --env prod || true
            printf '    mlgit alerts on: %s\n' "$(drifted_mlgit "$r/drift.json")" >&3
        fi
    fi
    if has evidently "$TOOLS"; then
        timed "$fmt" "DataDriftPreset" "evidently" "$run" "$SCRIPT_DIR" "$r/evidently.json" \
            "$VENV/bin/python" "$SCRIPT_DIR/monitor_evidently.py" "$REF" "$batch" || true
        printf '    evidently drifted columns: %s\n' "$(drifted_evidently "$r/evidently.json")" >&3
        python3 -c 'import json,sys; print("    evidently phases (s):", json.load(open(sys.argv[1]))["seconds"])' "$r/evidently.json" >&3 2>/dev/null || true
    fi
    rm -rf "$r"
}

echo "machine: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&3
echo "mlgit: $MLGIT ($("$MLGIT" --version))" >&3
has evidently "$TOOLS" && echo "evidently: $("$VENV/bin/python" -c 'import sys, evidently, pandas; print(evidently.__version__, "(python", sys.version.split()[0] + ", pandas", pandas.__version__ + ")")')" >&3
if ((DRY)); then
    echo "dry run: data and repository are ready; each run would time, per format in {$FORMATS}:" >&3
    has mlgit "$TOOLS" && echo "  $MLGIT --json monitor log --env prod --source $DATA/batch/requests.{csv,parquet}; $MLGIT --json monitor drift --env prod   (in $REPO)" >&3
    has evidently "$TOOLS" && echo "  $VENV/bin/python $SCRIPT_DIR/monitor_evidently.py $REF $DATA/batch/requests.{csv,parquet}" >&3
    exit 0
fi
for run in $(seq "$RUNS"); do
    for fmt in ${FORMATS//,/ }; do run_format "$fmt" "$run"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&3

# ---------------------------------------------------------------- report
python3 - "$TSV" "$ROWS" <<'PY' | tee "$LOGDIR/results.md"
import collections, statistics, sys
runs = collections.defaultdict(dict)   # (fmt, tool) -> run -> (secs, rss)
for line in open(sys.argv[1]):
    fmt, row, tool, run, secs, rss = line.rstrip("\n").split("\t")
    runs[(fmt, tool)][run] = (None if secs == "FAILED" else float(secs), int(rss))
def med(fmt, tool):
    r = runs.get((fmt, tool), {})
    ok = [s for s, _ in r.values() if s is not None]
    return (statistics.median(ok) if ok and len(ok) == len(r) else None, max((m for _, m in r.values()), default=0), r)
fmts = sorted({f for f, _ in runs}, key=lambda f: ["csv", "parquet"].index(f))
print(f"\n{int(sys.argv[2]):,} records x 20 columns against a training split of ~{int(sys.argv[2]):,} rows; "
      "median of the runs; peak RSS is the largest of the runs.\n")
print("| batch | command | median s | runs s | peak RSS MiB | ÷ mlgit log + drift |\n|---|---|--:|--:|--:|--:|")
summary = {}
for fmt in fmts:
    log, lrss, lr = med(fmt, "mlgit monitor log")
    drift, drss, dr = med(fmt, "mlgit monitor drift")
    # log + drift: the median of each run's sum (not the sum of the medians).
    both_runs = [a[0] + b[0] if a[0] is not None and b[0] is not None else None
                 for a, b in zip(lr.values(), dr.values())]
    both = (statistics.median(both_runs)
            if both_runs and len(lr) == len(dr) and all(x is not None for x in both_runs) else None)
    ev, erss, er = med(fmt, "evidently")
    def cell(x): return "FAILED" if x is None else f"{x:.2f}"
    def runs_s(r): return " ".join(cell(s) for s, _ in r.values())
    if lr:
        print(f"| {fmt} | mlgit monitor log | {cell(log)} | {runs_s(lr)} | {lrss} | |")
        print(f"| {fmt} | mlgit monitor drift | {cell(drift)} | {runs_s(dr)} | {drss} | |")
        print(f"| {fmt} | **mlgit log + drift** | {cell(both)} | {' '.join(cell(x) for x in both_runs)} | "
              f"{max(lrss, drss)} | {'1.00x' if both else 'n/a'} |")
    if er:
        ratio = f"{ev / both:.1f}x" if ev is not None and both else "n/a"
        print(f"| {fmt} | Evidently DataDriftPreset (import + read + report) | {cell(ev)} | {runs_s(er)} | {erss} | {ratio} |")
    summary[fmt] = (both, max(lrss, drss), ev)
print("\nTargets (issue 12):\n")
for fmt, (both, rss, ev) in summary.items():
    def line(what, value, ok): print(f"- {fmt}: {what}: {value} — {'met' if ok else 'NOT met'}")
    if both is not None:
        line("mlgit log + drift (want ≤ 5 s on 2 cores)", f"{both:.2f} s", both <= 5.0)
        line("mlgit peak RSS (want ≤ 256 MiB)", f"{rss} MiB", rss <= 256)
        if ev is not None:
            line("Evidently ÷ mlgit (want ≥ 10x)", f"{ev / both:.1f}x", ev / both >= 10)
PY
echo "logs and raw numbers: $LOGDIR" >&3
