#!/usr/bin/env bash
# benches/envs.sh — `mlgit envs` and `mlgit envs at` on an env/prod branch with 10,000 promotions in its
# history (issue 13's performance rows), side by side with the plain git commands that answer the same
# question: `git log -1 env/prod` and `git log --first-parent --before=DATE -1 env/prod`. Median of
# several interleaved runs, in milliseconds, and the ratio to the git anchor.
#
# Run by hand, never from CI or the test suite:
#   bash benches/envs.sh [--promotions N] [--runs N] [--mlgit PATH] [--workdir DIR]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
    cat <<'EOF'
usage: bash benches/envs.sh [options]

  --promotions N    deployments on env/prod (default: 10000; at least 6)
  --runs N          timed runs per command, interleaved; the median is reported (default: 11)
  --mlgit PATH      mlgit binary (default: target/release/mlgit, else mlgit on PATH)
  --workdir DIR     the repository (kept and reused), logs, results (default: /tmp/mlgit-bench)
  -h, --help        this text

Set-up (once per N, kept in WORKDIR/envs-N; not timed): `mlgit demo` (two real snapshots, model-v1 and
model-v2; its own promotions are undone: env/* back on init's root commits), then env/prod gets N
deployments, one an hour from 2025-01-01T00:00Z:
  - 3 real `mlgit promote` runs (model-v1 and model-v2 to staging first, as the default policy wants;
    then model-v1, model-v2, model-v1 to prod);
  - N - 5 commits written by `git fast-import` (benches/envs_gen.py), alternating model-v2 and model-v1,
    each a copy of one of the two real prod promotions with only the time changed: same parents shape
    [previous env/prod tip, snapshot commit], same tree (promoted_at in DEPLOYMENT.yaml set to the
    commit's time), same message and trailers. 10,000 real promotions would take hours here;
  - 2 real runs on top: `mlgit promote` of the other tag, then `mlgit rollback`, so the tip and its
    parent are what mlgit writes.
Checked before timing: `mlgit envs log prod` lists N deployments, and `mlgit envs at` agrees with git.
Timed (each run of each command in turn, so a busy moment hits all alike):
  mlgit envs                         vs  git log -1 env/prod
  mlgit envs at prod <middle date>   vs  git log --first-parent --before=<middle date> -1 env/prod
  mlgit envs log prod --limit 20     (for reference)

Results: a Markdown table on stdout and in WORKDIR/logs/envs-<time>/results.md (for docs/performance.md).
EOF
}

N=10000; RUNS=11; MLGIT=""; WORK=/tmp/mlgit-bench
while (($#)); do
    case $1 in
        --promotions) N=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --mlgit) MLGIT=${2:?}; shift 2 ;;
        --workdir) WORK=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "envs.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
die() { echo "envs.sh: error: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $N =~ ^[1-9][0-9]*$ && $N -ge 6 ]] || die "--promotions must be an integer of at least 6"

if [[ -z $MLGIT ]]; then
    if [[ -x $REPO_ROOT/target/release/mlgit ]]; then MLGIT=$REPO_ROOT/target/release/mlgit; else MLGIT=$(command -v mlgit || true); fi
fi
[[ -n $MLGIT && -x $MLGIT ]] || die "no mlgit binary: run 'cargo build --release' or pass --mlgit"
MLGIT=$(realpath "$MLGIT")
for tool in git git-lfs python3; do command -v "$tool" >/dev/null || die "$tool is needed"; done

mkdir -p "$WORK"
WORK=$(realpath "$WORK")
exec 9>"$WORK/.envs.lock"
flock -n 9 || die "another envs benchmark uses $WORK"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGDIR=$WORK/logs/envs-$STAMP
mkdir -p "$LOGDIR"
exec 3>&1

# ---------------------------------------------------------------- isolated git set-up
export HOME=$WORK/envs-home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
for v in $(env | grep -o '^GIT_[A-Z_]*' | grep -v '^GIT_CONFIG_NOSYSTEM$'); do unset "$v"; done
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main
git config --global gc.auto 0
git lfs install --skip-repo >/dev/null

# ---------------------------------------------------------------- the repository (cached)
D0=1735689600   # 2025-01-01T00:00:00Z
HOUR=3600
IMPORTED=$((N - 5))
FIRST=$((D0 + 4 * HOUR))
LAST=$((FIRST + (IMPORTED - 1) * HOUR))
MIDDLE=$((FIRST + (IMPORTED / 2) * HOUR + HOUR / 2))   # between two imported deployments
MIDDLE_ISO=$(date -u -d "@$MIDDLE" +%Y-%m-%dT%H:%M:%SZ)
ROOT=$WORK/envs-$N
REPO=$ROOT/churn
GEN_VERSION=1   # bump when the set-up changes what it writes

at() { # SECS CMD...: run CMD with git's and mlgit's clock at SECS
    local secs=$1; shift
    GIT_AUTHOR_DATE="@$secs +0000" GIT_COMMITTER_DATE="@$secs +0000" "$@"
}

if [[ ! -f $REPO/.git/bench-envs-v$GEN_VERSION ]]; then
    echo "building the repository: mlgit demo, 5 real promotions, $IMPORTED by git fast-import ..." >&3
    rm -rf "$ROOT"
    "$MLGIT" demo --quiet "$ROOT" >"$LOGDIR/setup-demo.out" 2>&1
    cd "$REPO"
    # The demo ends by promoting model-v2 through staging to prod (at today's date): start from the
    # README-only root commits `mlgit init` made instead, so the history is in date order.
    for e in dev staging prod; do
        git update-ref "refs/heads/env/$e" "$(git rev-list --first-parent --max-parents=0 "env/$e")"
    done
    at $D0 "$MLGIT" promote --quiet model-v1 --env staging >>"$LOGDIR/setup.out"
    at $((D0 + 60)) "$MLGIT" promote --quiet model-v2 --env staging >>"$LOGDIR/setup.out"
    at $((D0 + HOUR)) "$MLGIT" promote --quiet model-v1 --env prod --reason "first model" >>"$LOGDIR/setup.out"
    at $((D0 + 2 * HOUR)) "$MLGIT" promote --quiet model-v2 --env prod --reason "better accuracy" >>"$LOGDIR/setup.out"
    TEMPLATE_A=$(git rev-parse env/prod)
    at $((D0 + 3 * HOUR)) "$MLGIT" promote --quiet model-v1 --env prod --reason "back to the baseline" >>"$LOGDIR/setup.out"
    TEMPLATE_B=$(git rev-parse env/prod)
    python3 "$SCRIPT_DIR/envs_gen.py" "$REPO" env/prod "$IMPORTED" "$FIRST" "$HOUR" "$TEMPLATE_A" "$TEMPLATE_B" \
        | git fast-import --quiet --done
    if [[ $(git show env/prod:DEPLOYED_TAG) == model-v1 ]]; then OTHER=model-v2; else OTHER=model-v1; fi
    at $((LAST + HOUR)) "$MLGIT" promote --quiet "$OTHER" --env prod --reason "a real promotion on top" >>"$LOGDIR/setup.out"
    at $((LAST + 2 * HOUR)) "$MLGIT" rollback --quiet --env prod --reason "a real rollback on top" >>"$LOGDIR/setup.out"
    git gc --quiet
    touch "$REPO/.git/bench-envs-v$GEN_VERSION"
fi
cd "$REPO"

# ---------------------------------------------------------------- checks (not timed)
DEPLOYMENTS=$("$MLGIT" --json envs log prod --limit $((N + 10)) | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(len(next(v for v in d.values() if isinstance(v, list))))')
[[ $DEPLOYMENTS == "$N" ]] || die "mlgit envs log prod lists $DEPLOYMENTS deployments, not $N"
GIT_AT=$(git log --first-parent --before="$MIDDLE_ISO" -1 --format=%H env/prod)
MLGIT_AT=$("$MLGIT" --json envs at prod "$MIDDLE_ISO" | python3 -c 'import json, sys; print((json.load(sys.stdin)["serving"] or {}).get("commit"))')
[[ $GIT_AT == "$MLGIT_AT" ]] || die "envs at $MIDDLE_ISO: mlgit says $MLGIT_AT, git says $GIT_AT"
echo "repository: $REPO; env/prod: $N deployments ($(git rev-list --first-parent --count env/prod) first-parent commits), serving $(git show env/prod:DEPLOYED_TAG)" >&3
echo "middle date: $MIDDLE_ISO (served by $(git show "$GIT_AT:DEPLOYED_TAG"), commit ${GIT_AT:0:12})" >&3
echo "machine: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&3
echo "mlgit: $MLGIT ($("$MLGIT" --version)); $(git --version)" >&3

# ---------------------------------------------------------------- measuring and report
python3 - "$RUNS" "$MLGIT" "$MIDDLE_ISO" "$LOGDIR" <<'PY' | tee "$LOGDIR/results.md"
import statistics, subprocess, sys, time
runs, mlgit, middle, logdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
# (label, command, anchor label or None, target ms or None)
rows = [
    ("git log -1 env/prod", ["git", "log", "-1", "env/prod"], None, None),
    ("mlgit envs", [mlgit, "envs"], "git log -1 env/prod", 100),
    ("git log --first-parent --before=DATE -1 env/prod",
     ["git", "log", "--first-parent", f"--before={middle}", "-1", "env/prod"], None, None),
    ("mlgit envs at prod DATE", [mlgit, "envs", "at", "prod", middle],
     "git log --first-parent --before=DATE -1 env/prod", 200),
    ("mlgit envs log prod --limit 20", [mlgit, "envs", "log", "prod", "--limit", "20"], None, None),
]
times = {label: [] for label, *_ in rows}
def once(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        sys.exit(f"envs.sh: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()}")
    return dt
for label, cmd, *_ in rows:   # warm the page cache
    once(cmd)
for _ in range(runs):
    for label, cmd, *_ in rows:
        times[label].append(once(cmd))
with open(f"{logdir}/runs.tsv", "w") as f:
    for label, ts in times.items():
        f.write(label + "\t" + "\t".join(f"{t:.2f}" for t in ts) + "\n")
med = {label: statistics.median(ts) for label, ts in times.items()}
print(f"\nenv/prod with the promotions above; DATE = {middle}; median of {runs} interleaved runs (wall, ms).\n")
print("| command | median ms | min–max ms | ÷ git anchor | target |\n|---|--:|--:|--:|---|")
verdicts = []
for label, cmd, anchor, target in rows:
    ts = times[label]
    ratio = f"{med[label] / med[anchor]:.1f}x" if anchor else ""
    goal = ""
    if target:
        ok = med[label] < target
        goal = f"< {target} ms: {'met' if ok else 'NOT met'}"
        verdicts.append(f"- {label}: {med[label]:.1f} ms (want < {target} ms) — {'met' if ok else 'NOT met'}")
    print(f"| `{label}` | {med[label]:.1f} | {min(ts):.1f}–{max(ts):.1f} | {ratio} | {goal} |")
print("\nTargets (issue 13):\n")
print("\n".join(verdicts))
PY
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&3
echo "logs and raw numbers: $LOGDIR" >&3
