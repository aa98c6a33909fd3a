#!/usr/bin/env bash
# benches/tables.sh — record-level split + profile of one large table by mlgit, pandas and polars, side by
# side in the same run, on the same generated data (1,000,000 rows x 20 columns: ~185 MB of CSV, and the
# same table as Parquet), with the same assignment (sha256("<seed>:<id>"), docs/split.md); plus mlgit's
# record-level clean of the same table. Prints wall times, ratios and peak RSS (GNU time).
#
# Run by hand, never from CI or the test suite:
#   bash benches/tables.sh [--rows N] [--runs N] [--formats csv,parquet] [--tools mlgit,pandas,polars]
#                          [--mlgit PATH] [--workdir DIR]
# See benches/README.md ("tables.sh") and the targets in issue 11.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POLARS_VERSION=2.1.0

usage() {
    cat <<'EOF'
usage: bash benches/tables.sh [options]

  --rows N          rows of the generated table (default: 1000000, ~185 MB as CSV)
  --runs N          timed runs per row; the median is reported (default: 3)
  --formats LIST    csv, parquet or both (default: csv,parquet)
  --tools LIST      some of mlgit,pandas,polars (default: all three)
  --mlgit PATH      mlgit binary (default: target/release/mlgit, else mlgit on PATH)
  --workdir DIR     generated data (kept), scratch repositories, logs, results (default: /tmp/mlgit-bench)
  -h, --help        this text

Each run, per format:
  mlgit   a fresh `mlgit init`; `commit-data` of the table (timed, for reference); `mlgit clean`
          (record-level clean: read, check, infer the schema, profile, write; timed); `mlgit split --key id`
          (split + profile of each split; timed)
  pandas  benches/tables_pandas.py: read_csv/read_parquet, sha256 assignment by `id`, to_csv/to_parquet
          per split, a profile of each split (describe-like + p1..p99 + 20-bin histogram + top 50)
  polars  benches/tables_polars.py: the same with polars (installed with pip if missing: polars==2.1.0)
The rows per split of every tool are compared: they must be equal (same rule, same keys).

Results: a Markdown table on stdout and in WORKDIR/logs/tables-<time>/results.md (for docs/performance.md).
EOF
}

ROWS=1000000; RUNS=3; FORMATS="csv,parquet"; TOOLS="mlgit,pandas,polars"; MLGIT=""; WORK=/tmp/mlgit-bench
while (($#)); do
    case $1 in
        --rows) ROWS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --formats) FORMATS=${2:?}; shift 2 ;;
        --tools) TOOLS=${2:?}; shift 2 ;;
        --mlgit) MLGIT=${2:?}; shift 2 ;;
        --workdir) WORK=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "tables.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
die() { echo "tables.sh: error: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "--rows must be a positive integer"
has() { [[ ",$2," == *",$1,"* ]]; }
for f in ${FORMATS//,/ }; do [[ $f == csv || $f == parquet ]] || die "--formats: '$f' is not csv or parquet"; done
for t in ${TOOLS//,/ }; do [[ $t == mlgit || $t == pandas || $t == polars ]] || die "--tools: unknown tool '$t'"; done

if has mlgit "$TOOLS"; then
    if [[ -z $MLGIT ]]; then
        if [[ -x $REPO_ROOT/target/release/mlgit ]]; then MLGIT=$REPO_ROOT/target/release/mlgit; else MLGIT=$(command -v mlgit || true); fi
    fi
    [[ -n $MLGIT && -x $MLGIT ]] || die "no mlgit binary: run 'cargo build --release' or pass --mlgit"
    MLGIT=$(realpath "$MLGIT")
fi
for tool in git python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done
if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -qq time >/dev/null || die "GNU time is needed (apt-get install -y time)"
    else
        die "GNU time is needed (apt-get install -y time)"
    fi
fi
python3 -c 'import pandas, pyarrow, numpy' 2>/dev/null || die "pandas and pyarrow are needed (pip install pandas pyarrow)"
if has polars "$TOOLS" && ! python3 -c 'import polars' 2>/dev/null; then
    echo "installing polars==$POLARS_VERSION (pip) for the polars rows" >&2
    if ! python3 -m pip install -q --disable-pip-version-check "polars==$POLARS_VERSION" >&2; then
        echo "tables.sh: polars could not be installed: its rows are skipped" >&2
        TOOLS=$(echo ",$TOOLS," | sed 's/,polars,/,/; s/^,//; s/,$//')
    fi
fi

mkdir -p "$WORK"
exec 9>"$WORK/.tables.lock"
flock -n 9 || die "another tables benchmark uses $WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$WORK/logs/tables-$STAMP
SCRATCH=$WORK/tables-scratch
rm -rf "$SCRATCH"
mkdir -p "$LOGDIR" "$SCRATCH"
exec 3>&1

# ---------------------------------------------------------------- isolated git set-up
export HOME=$SCRATCH/home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
for v in $(env | grep -o '^GIT_[A-Z_]*' | grep -v '^GIT_CONFIG_NOSYSTEM$'); do unset "$v"; done
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main
git config --global gc.auto 0

# ---------------------------------------------------------------- the data (cached)
GEN_VERSION=1   # bump when tables_gen.py changes what it writes
DATA=$WORK/data/tables-$ROWS
if [[ ! -f $DATA/.done-v$GEN_VERSION ]]; then
    echo "generating $ROWS rows x 20 columns into $DATA ..." >&3
    rm -rf "$DATA"
    python3 "$SCRIPT_DIR/tables_gen.py" "$ROWS" "$DATA"
    touch "$DATA/.done-v$GEN_VERSION"
fi
echo "data: $(du -h "$DATA/csv/people.csv" | cut -f1) CSV, $(du -h "$DATA/parquet/people.parquet" | cut -f1) Parquet ($ROWS rows)" >&3

# ---------------------------------------------------------------- measuring
TSV=$LOGDIR/results.tsv
: >"$TSV"
# timed FORMAT ROW TOOL RUN DIR OUT CMD...: run CMD in DIR under GNU time (stdout to OUT), record
# seconds and peak RSS (MiB)
timed() {
    local fmt=$1 row=$2 tool=$3 run=$4 dir=$5 out=$6; shift 6
    local log
    log=$LOGDIR/$(printf '%s-%s-%s-%s' "$fmt" "$run" "$tool" "$row" | tr -c 'A-Za-z0-9._=-' '_')
    sync
    if (cd "$dir" && /usr/bin/time -f '%e %M' -o "$log.time" "$@") >"$out" 2>"$log.err"; then
        read -r secs rss <"$log.time"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$fmt" "$row" "$tool" "$run" "$secs" "$((rss / 1024))" >>"$TSV"
        printf '  %-28s %-34s %7.2f s %6d MiB\n' "$row" "$tool" "$secs" "$((rss / 1024))" >&3
    else
        printf '%s\t%s\t%s\t%s\tFAILED\t0\n' "$fmt" "$row" "$tool" "$run" >>"$TSV"
        printf '  %-28s %-34s FAILED (see %s.err)\n' "$row" "$tool" "$log" >&3
        return 1
    fi
}
# rows per split of a tool's JSON output: "train validation test"
split_rows() { # FILE KEY (records for mlgit, rows for the scripts)
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[sys.argv[2]]; print(d["train"], d["validation"], d["test"])' "$1" "$2" 2>/dev/null || echo "?"
}

run_format() { # FORMAT RUN
    local fmt=$1 run=$2 input r
    if [[ $fmt == csv ]]; then input=$DATA/csv/people.csv; else input=$DATA/parquet/people.parquet; fi
    r=$SCRATCH/$fmt-$run
    rm -rf "$r"; mkdir -p "$r"
    echo "== $fmt, run $run" >&3
    cat "$input" >/dev/null   # the page cache holds the input for every tool alike
    local -A got=()
    if has mlgit "$TOOLS"; then
        "$MLGIT" init --quiet "$r/repo" >/dev/null
        timed "$fmt" "commit-data (reference)" "mlgit commit-data" "$run" "$r/repo" "$r/commit.json" \
            "$MLGIT" --json commit-data --quiet --source "$(dirname "$input")" || true
        timed "$fmt" "record-level clean" "mlgit clean" "$run" "$r/repo" "$r/clean.json" \
            "$MLGIT" --json clean --quiet || true
        timed "$fmt" "split + profile" "mlgit split --key id" "$run" "$r/repo" "$r/mlgit.json" \
            "$MLGIT" --json split --quiet --key id || true
        got[mlgit]=$(split_rows "$r/mlgit.json" records)
    fi
    if has pandas "$TOOLS"; then
        timed "$fmt" "split + profile" "pandas" "$run" "$SCRIPT_DIR" "$r/pandas.json" \
            python3 "$SCRIPT_DIR/tables_pandas.py" "$input" "$r/pandas" --key id --seed 42 --ratios 80,10,10 || true
        got[pandas]=$(split_rows "$r/pandas.json" rows)
    fi
    if has polars "$TOOLS"; then
        timed "$fmt" "split + profile" "polars" "$run" "$SCRIPT_DIR" "$r/polars.json" \
            python3 "$SCRIPT_DIR/tables_polars.py" "$input" "$r/polars" --key id --seed 42 --ratios 80,10,10 || true
        got[polars]=$(split_rows "$r/polars.json" rows)
    fi
    # Same rule, same keys: the same rows per split for every tool.
    local first="" t
    for t in mlgit pandas polars; do
        [[ -n ${got[$t]:-} ]] || continue
        printf '    rows per split (train validation test), %-6s: %s\n' "$t" "${got[$t]}" >&3
        [[ ${got[$t]} == "?" ]] && continue   # it failed: reported above
        [[ -z $first ]] && first=${got[$t]}
        [[ ${got[$t]} == "$first" ]] || printf '    MISMATCH: %s placed records differently from the tool above\n' "$t" >&3
    done
    rm -rf "$r"
}

echo "machine: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&3
[[ -n $MLGIT ]] && echo "mlgit: $MLGIT ($("$MLGIT" --version))" >&3
echo "python: $(python3 -c 'import sys, pandas, pyarrow; print(sys.version.split()[0], "pandas", pandas.__version__, "pyarrow", pyarrow.__version__)')$(python3 -c 'import polars; print(", polars", polars.__version__)' 2>/dev/null || true)" >&3
for run in $(seq "$RUNS"); do
    for fmt in ${FORMATS//,/ }; do run_format "$fmt" "$run"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&3

# ---------------------------------------------------------------- report
python3 - "$TSV" "$ROWS" <<'PY' | tee "$LOGDIR/results.md"
import collections, statistics, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    fmt, row, tool, run, secs, rss = line.rstrip("\n").split("\t")
    rows.setdefault((fmt, row), collections.OrderedDict()).setdefault(tool, []).append((secs, int(rss)))
def med(runs):
    ok = [float(x) for x, _ in runs if x != "FAILED"]
    return statistics.median(ok) if ok and len(ok) == len(runs) else None
print(f"\n{int(sys.argv[2]):,} rows x 20 columns; median of the runs; peak RSS is the largest of the runs.\n")
print("| format | task | command | median s | runs s | peak RSS MiB | ÷ mlgit |\n|---|---|---|--:|--:|--:|--:|")
medians = {}
for (fmt, row), tools in rows.items():
    ml = next((med(r) for t, r in tools.items() if t.startswith("mlgit")), None)
    for tool, runs in tools.items():
        m = med(runs)
        medians[(fmt, row, tool)] = (m, max(r for _, r in runs))
        ratio = f"{m / ml:.2f}x" if m is not None and ml else "n/a"
        print(f"| {fmt} | {row} | {tool} | {'FAILED' if m is None else f'{m:.2f}'} | "
              f"{' '.join(x for x, _ in runs)} | {max(r for _, r in runs)} | {ratio} |")
print("\nTargets (issue 11):\n")
for fmt in sorted({f for f, _ in rows}):
    split = medians.get((fmt, "split + profile", "mlgit split --key id"), (None, 0))
    clean = medians.get((fmt, "record-level clean", "mlgit clean"), (None, 0))
    def line(what, value, ok):
        print(f"- {fmt}: {what}: {value} — {'met' if ok else 'NOT met'}")
    for other, want in (("pandas", 5.0), ("polars", 1.0)):
        o = medians.get((fmt, "split + profile", other))
        if split[0] and o and o[0]:
            r = o[0] / split[0]
            line(f"mlgit vs {other} (want ≥ {want:g}x faster)", f"{r:.2f}x", r >= want)
    if split[0] and clean[0]:
        r = clean[0] / split[0]
        line("record-level clean ÷ split (want ≤ 1.5)", f"{r:.2f}", r <= 1.5)
    mine = [v for k, v in medians.items() if k[0] == fmt and k[2].startswith("mlgit")]
    if mine and all(m is not None for m, _ in mine):
        peak = max(r for _, r in mine)
        line("mlgit peak RSS of every command (want ≤ 256 MiB)", f"{peak} MiB", peak <= 256)
    elif mine:
        print(f"- {fmt}: an mlgit command FAILED: no target is judged for it (see the logs)")
PY
echo "logs and raw numbers: $LOGDIR" >&3
