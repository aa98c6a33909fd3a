#!/usr/bin/env bash
# benches/remote.sh — push and pull of LFS objects through a real Git LFS server (rudolfs on loopback):
# mlgit beside git-lfs (at its default lfs.concurrenttransfers and at the best of a few values), on the
# same generated data, in the same run, and print ratios.
#
# Run by hand, never from CI or the test suite:
#   bash benches/remote.sh [--sets S,L] [--runs N] [--mlgit PATH] [--workdir DIR] [--concurrency LIST]
# See benches/README.md ("remote.sh") for what each row means.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
    cat <<'EOF'
usage: bash benches/remote.sh [options]

  --sets LIST         data sets, comma-separated: S (50,000 small files), L (6 x 512 MiB), tiny (default: S)
  --runs N            timed runs per row; the median is reported (default: 3)
  --mlgit PATH        mlgit binary (default: target/release/mlgit, else mlgit on PATH)
  --rudolfs PATH      rudolfs binary (default: rudolfs on PATH, else ~/.cargo/bin/rudolfs)
  --workdir DIR       data cache, server storage, scratch repositories, results (default: /tmp/mlgit-bench)
  --concurrency LIST  lfs.concurrenttransfers values tried for git-lfs besides its default (default: 32,64)
  -h, --help          this text
EOF
}

SETS="S"; RUNS=3; MLGIT=""; RUDOLFS=""; WORK=/tmp/mlgit-bench; CONCURRENCY="32,64"
while (($#)); do
    case $1 in
        --sets) SETS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --mlgit) MLGIT=${2:?}; shift 2 ;;
        --rudolfs) RUDOLFS=${2:?}; shift 2 ;;
        --workdir) WORK=${2:?}; shift 2 ;;
        --concurrency) CONCURRENCY=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "remote.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
die() { echo "remote.sh: error: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

if [[ -z $MLGIT ]]; then
    if [[ -x $REPO_ROOT/target/release/mlgit ]]; then MLGIT=$REPO_ROOT/target/release/mlgit; else MLGIT=$(command -v mlgit || true); fi
fi
[[ -n $MLGIT && -x $MLGIT ]] || die "no mlgit binary: run 'cargo build --release' or pass --mlgit"
MLGIT=$(realpath "$MLGIT")
if [[ -z $RUDOLFS ]]; then RUDOLFS=$(command -v rudolfs || echo "$HOME/.cargo/bin/rudolfs"); fi
[[ -x $RUDOLFS ]] || die "no rudolfs: 'cargo install rudolfs --locked' (about 3 minutes), or pass --rudolfs"
for tool in git git-lfs python3 openssl /usr/bin/time curl; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

mkdir -p "$WORK"
exec 9>"$WORK/.remote.lock"
flock -n 9 || die "another benchmark uses $WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$WORK/logs/remote-$STAMP
SCRATCH=$WORK/remote-scratch
rm -rf "$SCRATCH"
mkdir -p "$LOGDIR" "$SCRATCH"
exec 3>&1

# shellcheck source=benches/datasets.sh
source "$SCRIPT_DIR/datasets.sh"

# ---------------------------------------------------------------- isolated git set-up
export HOME=$SCRATCH/home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
for v in $(env | grep -o '^GIT_[A-Z_]*' | grep -v '^GIT_CONFIG_NOSYSTEM$'); do unset "$v"; done
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main
git config --global gc.auto 0
git config --global lfs.locksverify false
git lfs install --skip-repo >/dev/null

# ---------------------------------------------------------------- the LFS server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RUDOLFS" --host "127.0.0.1:$PORT" local --path "$SCRATCH/rudolfs" >"$LOGDIR/rudolfs.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
done
kill -0 $SERVER_PID 2>/dev/null || die "rudolfs did not start: $(tail -5 "$LOGDIR/rudolfs.log")"
lfs_url() { echo "http://127.0.0.1:$PORT/api/bench/$1"; }

# ---------------------------------------------------------------- measuring
TSV=$LOGDIR/results.tsv
: >"$TSV"
# The server's CPU time so far (user + system, in clock ticks), from /proc.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
TICKS=$(getconf CLK_TCK)
# timed SET ROW TOOL RUN DIR CMD...: run CMD in DIR under /usr/bin/time, record seconds, peak RSS and
# the CPU seconds the server spent meanwhile (it shares this machine's cores with the client)
timed() {
    local set=$1 row=$2 tool=$3 run=$4 dir=$5; shift 5
    local log before server
    log=$LOGDIR/$(printf '%s-%s-%s-%s' "$set" "$run" "$tool" "$row" | tr -c 'A-Za-z0-9._=-' '_').log
    sync
    before=$(server_ticks)
    if (cd "$dir" && /usr/bin/time -f '%e %M' -o "$log.time" "$@") >"$log" 2>&1; then
        read -r secs rss <"$log.time"
        server=$(awk -v a="$before" -v b="$(server_ticks)" -v t="$TICKS" 'BEGIN { printf "%.2f", (b - a) / t }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$row" "$tool" "$run" "$secs" "$((rss / 1024))" "$server" >>"$TSV"
        printf '  %-36s %-34s %7.2f s %6d MiB  server CPU %6.2f s\n' "$row" "$tool" "$secs" "$((rss / 1024))" "$server" >&3
    else
        printf '%s\t%s\t%s\t%s\tFAILED\t0\t0\n' "$set" "$row" "$tool" "$run" >>"$TSV"
        printf '  %-36s %-34s FAILED (see %s)\n' "$row" "$tool" "$log" >&3
    fi
}
count_objects() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }

run_set() { # SET RUN
    local set=$1 run=$2 data=$WORK/data/$1 r=$SCRATCH/$1-$2
    rm -rf "$r"; mkdir -p "$r"
    echo "== set $set, run $run" >&3
    cat "$data"/*/* >/dev/null 2>&1 || true

    # git-lfs: a repository with the data tracked by LFS on main, its refs on a bare file:// remote.
    git init -q --bare "$r/lfs-remote.git"
    git init -q "$r/lfs"
    (cd "$r/lfs" && mkdir data && cp -r "$data"/. data/ && git lfs track 'data/**' >/dev/null &&
        git add -A && git commit -qm data) >"$LOGDIR/setup-$set-$run-lfs.log" 2>&1
    # mlgit: the same data committed to raw.
    "$MLGIT" init --quiet "$r/ml" >"$LOGDIR/setup-$set-$run-ml.log" 2>&1
    "$MLGIT" -C "$r/ml" commit-data --source "$data" --quiet >>"$LOGDIR/setup-$set-$run-ml.log" 2>&1
    git init -q --bare "$r/ml-remote.git"

    # ---- push: every tool gets its own project on the server, so nothing is there yet
    local conc best=""
    for conc in default ${CONCURRENCY//,/ }; do
        local proj=lfs-$set-$run-$conc
        git -C "$r/lfs" remote remove origin 2>/dev/null || true
        git -C "$r/lfs" remote add origin "file://$r/lfs-remote-$conc.git"
        git init -q --bare "$r/lfs-remote-$conc.git"
        git -C "$r/lfs" config lfs.url "$(lfs_url "$proj")"
        if [[ $conc == default ]]; then git -C "$r/lfs" config --unset lfs.concurrenttransfers || true
        else git -C "$r/lfs" config lfs.concurrenttransfers "$conc"; fi
        timed "$set" "push (objects + refs)" "git push (git-lfs hook, c=$conc)" "$run" "$r/lfs" git push -q origin main
    done
    git -C "$r/ml" remote add origin "file://$r/ml-remote.git"
    git -C "$r/ml" config lfs.url "$(lfs_url "ml-$set-$run")"
    timed "$set" "push (objects + refs)" "mlgit push" "$run" "$r/ml" "$MLGIT" push --quiet
    timed "$set" "push, nothing to send" "mlgit push" "$run" "$r/ml" "$MLGIT" push --quiet
    timed "$set" "push, nothing to send" "git push (git-lfs hook)" "$run" "$r/lfs" git push -q origin main

    # ---- pull: fresh clones without LFS content, then fetch the objects
    for conc in default ${CONCURRENCY//,/ }; do
        local c=$r/lfs-clone-$conc
        GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$r/lfs-remote-$conc.git" "$c"
        git -C "$c" config lfs.url "$(lfs_url "lfs-$set-$run-$conc")"
        [[ $conc == default ]] || git -C "$c" config lfs.concurrenttransfers "$conc"
        timed "$set" "pull (objects, no checkout)" "git lfs fetch (c=$conc)" "$run" "$c" git lfs fetch
        echo "    git lfs fetch c=$conc: $(count_objects "$c/.git/lfs/objects") objects" >&3
    done
    local m=$r/ml-clone
    "$MLGIT" clone --quiet "file://$r/ml-remote.git" "$m" >"$LOGDIR/setup-$set-$run-mlclone.log" 2>&1 ||
        die "mlgit clone failed: $(tail -3 "$LOGDIR/setup-$set-$run-mlclone.log")"
    git -C "$m" config lfs.url "$(lfs_url "ml-$set-$run")"
    timed "$set" "pull (objects, no checkout)" "mlgit pull --ref raw" "$run" "$m" "$MLGIT" pull --quiet --ref raw
    echo "    mlgit pull: $(count_objects "$m/.git/lfs/objects") objects" >&3
    timed "$set" "pull, nothing to fetch" "mlgit pull --ref raw" "$run" "$m" "$MLGIT" pull --quiet --ref raw
    timed "$set" "pull, nothing to fetch" "git lfs fetch (c=default)" "$run" "$r/lfs-clone-default" git lfs fetch

    # ---- partial pull: exactly the objects under one folder
    local p=$r/ml-partial first
    "$MLGIT" clone --quiet "file://$r/ml-remote.git" "$p" >>"$LOGDIR/setup-$set-$run-mlclone.log" 2>&1
    git -C "$p" config lfs.url "$(lfs_url "ml-$set-$run")"
    first=$(cd "$data" && find . -mindepth 1 -maxdepth 1 -type d | sort | head -1 | cut -c3-)
    local want have
    want=$(find "$data/$first" -type f | wc -l)
    # commit-data keeps the source's folders under data/ on raw.
    timed "$set" "partial pull (data/$first/**)" "mlgit pull --ref raw --include" "$run" "$p" \
        "$MLGIT" pull --quiet --ref raw --include "data/$first/**"
    have=$(count_objects "$p/.git/lfs/objects")
    echo "    partial pull: $have objects in the store, $want files under data/$first/ (main's own objects: see clone)" >&3
    printf '%s\tpartial pull objects\t%s of %s\t%s\t0\t0\t0\n' "$set" "$have" "$want" "$run" >>"$TSV"
    rm -rf "$r"
}

IFS=, read -ra _sets <<<"$SETS"
for s in "${_sets[@]}"; do
    generate "$s"
    for run in $(seq "$RUNS"); do run_set "$s" "$run"; done
done

# ---------------------------------------------------------------- report
python3 - "$TSV" <<'PY' | tee "$LOGDIR/results.md"
import collections, statistics, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    s, row, tool, run, secs, rss, server = line.rstrip("\n").split("\t")
    if row == "partial pull objects":
        print(f"- set {s}, run {run}: partial pull stored {tool} objects")
        continue
    rows.setdefault((s, row), collections.OrderedDict()).setdefault(tool, []).append((secs, int(rss), float(server)))
for (s, row), tools in rows.items():
    print(f"\n### set {s}: {row}\n\n| command | median s | runs s | peak RSS MiB | server CPU s | ÷ mlgit |"
          "\n|---|--:|--:|--:|--:|--:|")
    med = {}
    for tool, runs in tools.items():
        ok = [float(x) for x, _, _ in runs if x != "FAILED"]
        med[tool] = statistics.median(ok) if len(ok) == len(runs) else None
    ml = next((m for t, m in med.items() if t.startswith("mlgit")), None)
    for tool, runs in tools.items():
        m = med[tool]
        ratio = f"{m / ml:.1f}x" if m is not None and ml else "n/a"
        server = statistics.median(c for _, _, c in runs)
        print(f"| {tool} | {'FAILED' if m is None else f'{m:.2f}'} | {' '.join(x for x, _, _ in runs)} | "
              f"{max(r for _, r, _ in runs)} | {server:.2f} | {ratio} |")
PY
echo "logs and raw numbers: $LOGDIR" >&3
