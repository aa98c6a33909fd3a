#!/usr/bin/env bash
# shellcheck disable=SC2016  # the bash -c command strings expand $DVC in the child, on purpose
# benches/compare.sh — time mlgit against the tools people use today (cp -r, git, git-lfs, DVC)
# on the same generated data sets, in the same run, alternating between tools, and print ratios.
#
# Run by hand, never from CI or the test suite:
#   bash benches/compare.sh [--sets S,M,L|all] [--runs N] [--mlgit PATH] [--workdir DIR] [--tools LIST]
# See benches/README.md for what each row means.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
MLGIT_REF=${MLGIT_REF:-raw}     # the branch commit-data writes to and materialize reads
# raw is append-only (a committed file is never modified), so the re-commit rows commit to this branch
# instead, when `mlgit commit-data --help` offers --branch and --create
MLGIT_RECOMMIT_BRANCH=${MLGIT_RECOMMIT_BRANCH:-bench}
ALL_TOOLS="cp,git,git-lfs,dvc,mlgit"

usage() {
    cat <<'EOF'
usage: bash benches/compare.sh [options]

  --sets LIST     data sets to run, comma-separated: S, M, L, or all (default: S,M)
                    S  50,000 files of 4-16 KiB in 100 folders (~500 MB)
                    M  5,000 x 100 KiB + 4 x 200 MiB (~1.3 GB)
                    L  6 x 512 MiB (3 GiB)
  --runs N        timed runs per row; the median is reported (default: 3)
  --mlgit PATH    mlgit binary (default: target/release/mlgit, else mlgit on PATH)
  --workdir DIR   cache for generated data, DVC venv, scratch repos, results (default: /tmp/mlgit-bench)
  --tools LIST    restrict to some of: cp,git,git-lfs,dvc,mlgit (default: all)
  --gc            also time the `git gc --auto` that git defers after a large commit
                  (slow: about 4 minutes per run on S with 2 cores)
  --lfs-pull      also time `git lfs pull` into a fresh clone (fetch + checkout; slow on S)
  -h, --help      this text

Environment: MLGIT_REF (default raw) is the branch commit-data writes and materialize reads;
MLGIT_RECOMMIT_BRANCH (default bench) is where the re-commit rows commit, since raw is append-only.

Results: a Markdown table on stdout and in WORKDIR/results.md (paste into docs/performance.md).
EOF
}

# ---------------------------------------------------------------- arguments
SETS="S,M"; RUNS=3; MLGIT=""; WORK=/tmp/mlgit-bench; TOOLS=$ALL_TOOLS; WITH_GC=0; WITH_LFS_PULL=0
while (($#)); do
    case $1 in
        --sets) SETS=${2:?--sets needs a value}; shift 2 ;;
        --sets=*) SETS=${1#*=}; shift ;;
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --mlgit) MLGIT=${2:?--mlgit needs a value}; shift 2 ;;
        --mlgit=*) MLGIT=${1#*=}; shift ;;
        --workdir) WORK=${2:?--workdir needs a value}; shift 2 ;;
        --workdir=*) WORK=${1#*=}; shift ;;
        --tools) TOOLS=${2:?--tools needs a value}; shift 2 ;;
        --tools=*) TOOLS=${1#*=}; shift ;;
        --gc) WITH_GC=1; shift ;;
        --lfs-pull) WITH_LFS_PULL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
die() { echo "compare.sh: error: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, got '$RUNS'"
[[ ${SETS,,} == all ]] && SETS="S,M,L"
SET_LIST=()
IFS=, read -ra _sets <<<"$SETS"
for s in "${_sets[@]}"; do
    case ${s^^} in
        S|M|L) SET_LIST+=("${s^^}") ;;
        TINY) SET_LIST+=(tiny) ;;          # hidden: 2,000 files, for smoke-testing this script
        *) die "unknown data set '$s' (expected S, M, L or all)" ;;
    esac
done
((${#SET_LIST[@]})) || die "no data set selected"
IFS=, read -ra _tools <<<"$TOOLS"
for t in "${_tools[@]}"; do
    [[ ,$ALL_TOOLS, == *,"$t",* ]] || die "unknown tool '$t' in --tools (expected some of $ALL_TOOLS)"
done
tool_selected() { [[ ,$TOOLS, == *,"$1",* ]]; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
# one benchmark per workdir at a time: two would share (and delete) each other's repositories
exec 9>"$WORK/.lock"
flock -n 9 || die "another compare.sh is running with --workdir $WORK (pick another --workdir)"

# mlgit: an explicit path, else the release build of this repo, else one on PATH
if [[ -z $MLGIT ]]; then
    if [[ -x $REPO_ROOT/target/release/mlgit ]]; then MLGIT=$REPO_ROOT/target/release/mlgit
    else MLGIT=$(command -v mlgit || true)
    fi
elif [[ $MLGIT != */* ]]; then
    MLGIT=$(command -v "$MLGIT" || echo "$MLGIT")
elif [[ $MLGIT != /* ]]; then
    MLGIT=$PWD/$MLGIT
fi

# ---------------------------------------------------------------- prerequisites
command -v python3 >/dev/null || die "python3 is required (data generation and the report)"
command -v openssl >/dev/null || die "openssl is required (deterministic data stream)"
command -v git >/dev/null || die "git is required"
missing_pkgs=()
[[ -x /usr/bin/time ]] || missing_pkgs+=(time)
git lfs version >/dev/null 2>&1 || missing_pkgs+=(git-lfs)
if ((${#missing_pkgs[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing missing packages: ${missing_pkgs[*]}"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null ||
            echo "warning: apt-get install ${missing_pkgs[*]} failed" >&2
    fi
fi
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is required: apt-get install time"
HAVE_LFS=1; git lfs version >/dev/null 2>&1 || HAVE_LFS=0

# ---------------------------------------------------------------- isolated environment
# Every tool sees a scratch HOME with a minimal git config, no system config, no stray GIT_* variables.
while IFS= read -r v; do unset "$v"; done < <(env | sed -n 's/^\(GIT_[A-Za-z0-9_]*\)=.*/\1/p')
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_CACHE_HOME=$WORK/home/.cache
export GIT_CONFIG_NOSYSTEM=1 LC_ALL=C TZ=UTC
rm -rf "$HOME"; mkdir -p "$HOME" "$XDG_CONFIG_HOME/dvc"
cat >"$HOME/.gitconfig" <<'EOF'
[user]
	name = mlgit bench
	email = bench@example.invalid
[init]
	defaultBranch = main
[gc]
	# git would otherwise start a detached gc after a large commit that keeps running into the next
	# tool's measurement; its cost is measured on its own row instead ("git gc --auto").
	auto = 0
EOF
((HAVE_LFS)) && git lfs install --skip-repo >/dev/null
# DVC: no analytics, no update check, its site cache inside the scratch area (removed with each run)
export DVC_NO_ANALYTICS=1 DVC_GLOBAL_CONFIG_DIR=$XDG_CONFIG_HOME/dvc
printf '[core]\n    analytics = false\n    check_update = false\n' >"$DVC_GLOBAL_CONFIG_DIR/config"

LOGDIR=$WORK/logs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$LOGDIR" "$WORK/data"
TSV=$WORK/results.tsv
: >"$TSV"
exec 3>&1   # live progress goes to fd 3, so that setup output can be sent to the logs

# ---------------------------------------------------------------- DVC (from PyPI, into a venv)
DVC=""; DVC_SKIP=""
if tool_selected dvc; then
    if [[ -x $WORK/venv/bin/dvc ]] && "$WORK/venv/bin/dvc" --version >/dev/null 2>&1; then
        DVC=$WORK/venv/bin/dvc
    else
        echo "installing DVC into $WORK/venv (pip install dvc) ..."
        rm -rf "$WORK/venv"
        if python3 -m venv "$WORK/venv" >"$LOGDIR/dvc-install.log" 2>&1 &&
            "$WORK/venv/bin/pip" install -q dvc >>"$LOGDIR/dvc-install.log" 2>&1 &&
            "$WORK/venv/bin/dvc" --version >/dev/null 2>&1; then
            DVC=$WORK/venv/bin/dvc
        else
            DVC_SKIP="pip install dvc failed (see $LOGDIR/dvc-install.log)"
            echo "skipping DVC rows: $DVC_SKIP"
        fi
    fi
fi
export DVC MLGIT MLGIT_REF

# ---------------------------------------------------------------- mlgit
MLGIT_SKIP=""; MLGIT_HELP=""
ML2_REF=$MLGIT_REF; ML2_BRANCH_ARGS=()   # the branch of the re-commit rows, and how to name it
if tool_selected mlgit; then
    if [[ -z $MLGIT || ! -x $MLGIT ]]; then
        MLGIT_SKIP="mlgit binary not found (cargo build --release, or pass --mlgit PATH)"
        echo "skipping mlgit rows: $MLGIT_SKIP"
    else
        MLGIT_HELP=$("$MLGIT" --help 2>&1 || true)
        ml_commit_help=$("$MLGIT" commit-data --help 2>&1 || true)
        if grep -q -- '--create' <<<"$ml_commit_help" && grep -q -- '--branch' <<<"$ml_commit_help"; then
            ML2_REF=$MLGIT_RECOMMIT_BRANCH; ML2_BRANCH_ARGS=(--branch "$ML2_REF")
        fi
    fi
fi
# an extra mlgit row runs only when `mlgit --help` lists its subcommand
mlgit_has() { grep -Eq "^[[:space:]]+$1([[:space:]]|\$)" <<<"$MLGIT_HELP"; }

# ---------------------------------------------------------------- machine info
ver() { # CMD...: first line of its output, or why there is none
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then echo "${out%%$'\n'*}"; else echo "unavailable (exit $rc${out:+: ${out%%$'\n'*}})"; fi
}
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)
fs_type=$(df -PT "$WORK" | awk 'NR==2 {print $2}')
{
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, ${cpu_model:-unknown CPU}, ${mem_gib} GiB RAM, kernel $(uname -r), workdir on $fs_type"
    echo "- $(git --version)"
    if ((HAVE_LFS)); then echo "- $(git lfs version)"; else echo "- git-lfs: not installed"; fi
    if [[ -n $DVC ]]; then echo "- dvc $("$DVC" --version 2>&1 | head -n 1)"; else echo "- dvc: ${DVC_SKIP:-not selected}"; fi
    if [[ -n $MLGIT_SKIP ]]; then echo "- mlgit: $MLGIT_SKIP"
    elif tool_selected mlgit; then
        echo "- mlgit: $(ver "$MLGIT" --version) ($MLGIT); materialize reads \`$MLGIT_REF\`, the re-commit rows commit to \`$ML2_REF\`"
    else echo "- mlgit: not selected"; fi
    echo "- cp: $(cp --version | head -n 1), python3 $(python3 -c 'import sys; print(sys.version.split()[0])')"
    echo "- runs per row: $RUNS (median reported), sets: ${SET_LIST[*]}"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running skews the numbers)"
} >"$LOGDIR/machine.md"
echo "== mlgit comparison benchmark =="
cat "$LOGDIR/machine.md"
echo "- logs: $LOGDIR"
if awk -v n="$(nproc)" '{exit !($1 > n / 2)}' /proc/loadavg; then
    echo "WARNING: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores: other work is running, the numbers will be noisy"
fi
echo "Page cache cannot be dropped here: every run first reads its data set once (cat > /dev/null) so all"
echo "tools see a warm cache, and 'sync' runs (untimed) before every timed command. Tools alternate within"
echo "each run, in an order rotated from run to run."
echo

# ---------------------------------------------------------------- data generation
# shellcheck source=benches/datasets.sh
source "$SCRIPT_DIR/datasets.sh"

# ---------------------------------------------------------------- measuring
CUR_SET=""; CUR_RUN=0; LAST_RC=0; CHECK=()
record() { # SECTION ROW SECS RSS_KIB STATUS NOTE
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CUR_SET" "$1" "$2" "$CUR_RUN" "$3" "$4" "$5" "${6:-}" >>"$TSV"
}
live() { # SECTION ROW TEXT
    printf '  %-4s run %d/%d  %-10s %-13s %s\n' "$CUR_SET" "$CUR_RUN" "$RUNS" "$1" "$2" "$3" >&3
}
skip_row() { # SECTION ROW REASON
    record "$1" "$2" "" "" skip "$3"
    live "$1" "$2" "skipped: $3"
}

# check_output: after a successful timed command, verify its result is complete (CHECK set by caller):
#   CHECK=(dir PATH)       PATH holds at least as many files and bytes as the data set
#   CHECK=(tree REPO REF)  REF's tree has at least as many entries as the data set has files
check_output() {
    local kind=${CHECK[0]:-}
    case $kind in
        dir)
            local got
            got=$(find "${CHECK[1]}" -type f -not -path '*/.git/*' -not -path '*/.dvc/*' -printf '%s\n' 2>/dev/null |
                awk '{n++; b+=$1} END {printf "%d %d", n, b}')
            read -r gf gb <<<"$got"
            if ((gf < SET_FILES || gb < SET_BYTES)); then
                echo "check: output has $gf files / $gb bytes, data set has $SET_FILES / $SET_BYTES"
            fi ;;
        tree)
            local n
            n=$(git -C "${CHECK[1]}" ls-tree -r --name-only "${CHECK[2]}" 2>/dev/null | wc -l)
            if ((n < SET_FILES)); then
                echo "check: $n entries in ${CHECK[2]}, data set has $SET_FILES files"
            fi ;;
    esac
}

# timed SECTION ROW DIR CMD...: run CMD in DIR under /usr/bin/time and record seconds, peak RSS, exit code.
# Never fails; sets LAST_RC. Output of CMD goes to a log file.
timed() {
    local sec=$1 row=$2 dir=$3; shift 3
    local log=$LOGDIR/$CUR_SET.$sec.$row.run$CUR_RUN.log tf=$LOGDIR/.time.$BASHPID
    local rc=0 secs="" rss="" note=""
    sync
    (cd "$dir" && exec /usr/bin/time -f '%e %M' -o "$tf" "$@") >"$log" 2>&1 || rc=$?
    read -r secs rss < <(tail -n 1 "$tf" 2>/dev/null) || true
    rm -f "$tf"
    LAST_RC=$rc
    if ((rc == 0)); then
        note=$(check_output)
        record "$sec" "$row" "$secs" "$rss" ok "$note"
        live "$sec" "$row" "$(printf '%8s s %7s MiB  %s' "$secs" "$((rss / 1024))" "${note:+WARNING $note}")"
    else
        record "$sec" "$row" "$secs" "$rss" "fail:$rc" ""
        live "$sec" "$row" "FAILED (exit $rc), log: $log"
        tail -n 3 "$log" | sed 's/^/        | /' >&3
    fi
    CHECK=()
    return 0
}

# step SECTION ROW FN: run FN (untimed setup + its timed commands) in a subshell with errexit.
# A failing setup command ends the step and is recorded as FAILED for ROW.
step() {
    local sec=$1 row=$2 fn=$3 rc=0 log=$LOGDIR/$CUR_SET.$1.$2.run$CUR_RUN.setup.log
    set +e
    (set -e; "$fn") >"$log" 2>&1
    rc=$?
    set -e
    if ((rc != 0)); then
        record "$sec" "$row" "" "" "setupfail:$rc" ""
        live "$sec" "$row" "FAILED (setup, exit $rc), log: $log"
        tail -n 3 "$log" | sed 's/^/        | /' >&3
    fi
    [[ -s $log ]] || rm -f "$log"
}

# rotated SECTION ROW:FN ... : run the steps in an order rotated by the run number (A B C, B C A, ...)
rotated() {
    local sec=$1; shift
    local n=$# i k items=("$@")
    for ((i = 0; i < n; i++)); do
        k=${items[(i + CUR_RUN - 1) % n]}
        step "$sec" "${k%%:*}" "${k#*:}"
    done
}

# gate TOOL SECTION ROW [MARKER]: skip the row unless the tool is selected, available, and (if MARKER
# is given) the step that prepared its repository succeeded in this run
gate() {
    local tool=$1 sec=$2 row=$3 marker=${4:-}
    tool_selected "$tool" || return 1     # not selected: no row at all
    case $tool in
        git-lfs) ((HAVE_LFS)) || { skip_row "$sec" "$row" "git-lfs not installed"; return 1; } ;;
        dvc) [[ -n $DVC ]] || { skip_row "$sec" "$row" "$DVC_SKIP"; return 1; } ;;
        mlgit) [[ -z $MLGIT_SKIP ]] || { skip_row "$sec" "$row" "$MLGIT_SKIP"; return 1; } ;;
    esac
    if [[ -n $marker && ! -e $RUN/.ok-$marker ]]; then
        skip_row "$sec" "$row" "n/a: its commit step failed"; return 1
    fi
    return 0
}
ok_mark() { if ((LAST_RC == 0)); then touch "$RUN/.ok-$1"; fi; }

# ---- commit into a fresh repository (data copied into the work tree beforehand, copy not timed)
c_cp() {
    gate cp commit cp || return 0
    CHECK=(dir "$RUN/cp-out"); timed commit cp "$RUN" cp -r "$DATA" "$RUN/cp-out"
    rm -rf "$RUN/cp-out"
}
c_git() {
    gate git commit git || return 0
    git init -q "$RUN/git"; cp -r "$DATA" "$RUN/git/data"
    timed commit git "$RUN/git" bash -c 'git add -A && git commit -q -m data'
    ok_mark git
    if ((LAST_RC == 0 && WITH_GC)); then
        timed commit git-gc "$RUN/git" git -c gc.auto=6700 -c gc.autoDetach=false gc --auto --quiet
    fi
}
c_lfs() {
    gate git-lfs commit git-lfs || return 0
    git init -q "$RUN/lfs"; cp -r "$DATA" "$RUN/lfs/data"
    timed commit git-lfs "$RUN/lfs" bash -c 'git lfs track "data/**" >/dev/null && git add -A && git commit -q -m data'
    ok_mark lfs
    if ((LAST_RC == 0 && WITH_GC)); then
        timed commit git-lfs-gc "$RUN/lfs" git -c gc.auto=6700 -c gc.autoDetach=false gc --auto --quiet
    fi
}
c_dvc() {
    gate dvc commit dvc || return 0
    git init -q "$RUN/dvc"
    (cd "$RUN/dvc" && "$DVC" init -q && git commit -q -m "dvc init")
    cp -r "$DATA" "$RUN/dvc/data"
    timed commit dvc "$RUN/dvc" bash -c '"$DVC" add -q data && git add data.dvc .gitignore && git commit -q -m data'
    ok_mark dvc
}
c_mlgit() {
    gate mlgit commit mlgit || return 0
    "$MLGIT" init --quiet "$RUN/ml"
    CHECK=(tree "$RUN/ml" "$MLGIT_REF")
    timed commit mlgit "$RUN" "$MLGIT" -C "$RUN/ml" commit-data --source "$DATA" --quiet
    ok_mark ml
}

# ---- re-commit with 1% of the files changed in place, then with nothing changed
modify_1pct() { python3 -c "$MODIFY_PY" "$1" "$CUR_SET" "$WORK/data"; }
r_git() {
    gate git recommit-1% git git || return 0
    modify_1pct "$RUN/git/data"
    timed recommit-1% git "$RUN/git" bash -c 'git add -A && git commit -q -m "1% changed"'
}
r_lfs() {
    gate git-lfs recommit-1% git-lfs lfs || return 0
    modify_1pct "$RUN/lfs/data"
    timed recommit-1% git-lfs "$RUN/lfs" bash -c 'git add -A && git commit -q -m "1% changed"'
}
r_dvc() {
    gate dvc recommit-1% dvc dvc || return 0
    modify_1pct "$RUN/dvc/data"
    timed recommit-1% dvc "$RUN/dvc" bash -c '"$DVC" add -q data && git add data.dvc && git commit -q -m "1% changed"'
}
r_mlgit() {
    gate mlgit recommit-1% mlgit || return 0
    # mlgit reads its source in place, so it gets its own copy to modify; the first commit is untimed
    cp -r "$DATA" "$RUN/ml-src"
    "$MLGIT" init --quiet "$RUN/ml2"
    "$MLGIT" -C "$RUN/ml2" commit-data --source "$RUN/ml-src" --quiet \
        ${ML2_BRANCH_ARGS[@]+"${ML2_BRANCH_ARGS[@]}" --create}
    touch "$RUN/.ok-ml2"
    modify_1pct "$RUN/ml-src"
    timed recommit-1% mlgit "$RUN" "$MLGIT" -C "$RUN/ml2" commit-data --source "$RUN/ml-src" --quiet ${ML2_BRANCH_ARGS[@]+"${ML2_BRANCH_ARGS[@]}"}
}
n_git() {
    gate git nochange git git || return 0
    timed nochange git "$RUN/git" bash -c 'git add -A && git commit -q --allow-empty -m nochange'
}
n_lfs() {
    gate git-lfs nochange git-lfs lfs || return 0
    timed nochange git-lfs "$RUN/lfs" bash -c 'git add -A && git commit -q --allow-empty -m nochange'
}
n_dvc() {
    gate dvc nochange dvc dvc || return 0
    timed nochange dvc "$RUN/dvc" bash -c '"$DVC" add -q data && git add data.dvc && git commit -q --allow-empty -m nochange'
}
n_mlgit() {
    gate mlgit nochange mlgit ml2 || return 0
    timed nochange mlgit "$RUN" "$MLGIT" -C "$RUN/ml2" commit-data --source "$RUN/ml-src" --quiet ${ML2_BRANCH_ARGS[@]+"${ML2_BRANCH_ARGS[@]}"}
}

# ---- restore the data from each tool's store into a folder
s_git() {
    gate git restore git git || return 0
    rm -rf "$RUN/git/data"
    CHECK=(dir "$RUN/git/data"); timed restore git "$RUN/git" git checkout -- .
}
s_lfs() {
    gate git-lfs restore git-lfs lfs || return 0
    GIT_LFS_SKIP_SMUDGE=1 git clone -q "$RUN/lfs" "$RUN/rs-lfs"
    (cd "$RUN/rs-lfs" && git lfs fetch)
    CHECK=(dir "$RUN/rs-lfs/data"); timed restore git-lfs "$RUN/rs-lfs" git lfs checkout
    rm -rf "$RUN/rs-lfs"
}
s_lfspull() {
    ((WITH_LFS_PULL)) || return 0
    gate git-lfs restore git-lfs-pull lfs || return 0
    GIT_LFS_SKIP_SMUDGE=1 git clone -q "$RUN/lfs" "$RUN/rs-lfspull"
    CHECK=(dir "$RUN/rs-lfspull/data"); timed restore git-lfs-pull "$RUN/rs-lfspull" git lfs pull
    rm -rf "$RUN/rs-lfspull"
}
s_dvc() {
    gate dvc restore dvc dvc || return 0
    rm -rf "$RUN/dvc/data"
    CHECK=(dir "$RUN/dvc/data"); timed restore dvc "$RUN/dvc" "$DVC" checkout -q
}
s_mlgit() {
    gate mlgit restore mlgit ml || return 0
    CHECK=(dir "$RUN/rs-ml")
    timed restore mlgit "$RUN" "$MLGIT" -C "$RUN/ml" materialize "$MLGIT_REF" --into "$RUN/rs-ml" --quiet
    rm -rf "$RUN/rs-ml"
}

# ---- later mlgit features, each only if `mlgit --help` lists it
x_row() { # ROW SUBCOMMAND MARKER CMD...
    local row=$1 sub=$2 marker=$3; shift 3
    gate mlgit extras "$row" "$marker" || return 0
    if ! mlgit_has "$sub"; then skip_row extras "$row" "not built"; return 0; fi
    timed extras "$row" "$RUN" "$@"
}
x_diff() { x_row mlgit-diff diff ml2 "$MLGIT" -C "$RUN/ml2" diff "$ML2_REF~1" "$ML2_REF"; }
x_clean() { x_row mlgit-clean clean ml "$MLGIT" -C "$RUN/ml" clean; }
x_split() { x_row mlgit-split split ml "$MLGIT" -C "$RUN/ml" split; }

# ---------------------------------------------------------------- report
REPORT_PY=$(cat <<'PY'

import collections, statistics, sys
tsv, machine, sets_tsv, timing, runs = sys.argv[1:6]
LABELS = {
    "commit": "commit into a fresh repo",
    "recommit-1%": "re-commit, 1% of files changed",
    "nochange": "re-commit, nothing changed",
    "restore": "restore into a folder",
    "extras": "later mlgit commands",
}
ROWS = {
    ("commit", "cp"): "cp -r (baseline)",
    ("commit", "git"): "git add -A && git commit",
    ("commit", "git-gc"): "&nbsp;&nbsp;git gc --auto it defers (background)",
    ("commit", "git-lfs"): "git lfs track + git add + git commit",
    ("commit", "git-lfs-gc"): "&nbsp;&nbsp;git gc --auto it defers (background)",
    ("commit", "dvc"): "dvc add (+ git commit of data.dvc)",
    ("commit", "mlgit"): "mlgit commit-data (reads the folder in place)",
    ("recommit-1%", "git"): "git add -A && git commit",
    ("recommit-1%", "git-lfs"): "git add -A && git commit (LFS)",
    ("recommit-1%", "dvc"): "dvc add (+ git commit)",
    ("recommit-1%", "mlgit"): "mlgit commit-data (own copy of the data; mutable branch, raw is append-only)",
    ("nochange", "git"): "git add -A && git commit --allow-empty",
    ("nochange", "git-lfs"): "git add -A && git commit --allow-empty (LFS)",
    ("nochange", "dvc"): "dvc add (+ git commit --allow-empty)",
    ("nochange", "mlgit"): "mlgit commit-data",
    ("restore", "cp"): "cp -r (same measurement as commit)",
    ("restore", "git"): "rm -rf data; git checkout -- .",
    ("restore", "git-lfs"): "git lfs checkout (objects already fetched)",
    ("restore", "git-lfs-pull"): "git lfs pull (fetch from a local clone + checkout)",
    ("restore", "dvc"): "rm -rf data; dvc checkout",
    ("restore", "mlgit"): "mlgit materialize raw --into",
    ("extras", "mlgit-diff"): "mlgit diff B~1 B (B: the re-commit branch, after the 1% re-commit)",
    ("extras", "mlgit-clean"): "mlgit clean (raw -> clean)",
    ("extras", "mlgit-split"): "mlgit split (clean -> split)",
}
COLS = ["cp", "git", "git-lfs", "dvc", "mlgit"]
COLNAME = {"cp": "cp -r", "git": "git", "git-lfs": "git-lfs", "dvc": "dvc", "mlgit": "mlgit"}
SECTIONS = list(LABELS)

data = collections.defaultdict(list)     # (set, section, row) -> [(run, secs, rss, status, note)]
order = []
for line in open(tsv):
    s, sec, row, run, secs, rss, status, note = line.rstrip("\n").split("\t")
    key = (s, sec, row)
    if key not in data:
        order.append(key)
    data[key].append((int(run), secs, rss, status, note))

def summary(key):
    """-> (median seconds or None, cell text, runs text, rss text, notes)"""
    rs = data.get(key)
    if not rs:
        return None, "", "", "", []
    notes = sorted({r[4] for r in rs if r[4] and r[3] != "skip"})
    skips = [r for r in rs if r[3] == "skip"]
    if skips:
        return None, "skipped: " + skips[0][4], "", "", []
    fails = [r for r in rs if r[3] != "ok"]
    if fails:
        st = fails[0][3]
        kind, rc = st.split(":")
        what = "setup, exit " if kind == "setupfail" else "exit "
        cell = "**FAILED** (%s%s%s)" % (what, rc, "" if len(fails) == len(rs) else ", %d/%d runs" % (len(fails), len(rs)))
        return None, cell, "", "", notes
    t = [float(r[1]) for r in rs]
    med = statistics.median(t)
    rss = max(int(r[2] or 0) for r in rs) / 1024
    return med, "%.2f" % med, " / ".join("%.2f" % x for x in t), "%.0f" % rss, notes

def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "-"
    r = a / b
    return ("%.2fx" if r < 10 else "%.1fx" if r < 100 else "%.0fx") % r

out = []
out.append("## mlgit vs cp / git / git-lfs / DVC")
out.append("")
out.append(open(machine).read().rstrip())
out.append("")
for line in open(timing):
    out.append("- " + line.strip())
out.append("")
out.append("Method: each tool is timed with `/usr/bin/time` (wall seconds, peak RSS of the process tree) on the "
           "same generated, incompressible data; tools alternate within each run (order rotated per run); the "
           "median of %s runs is shown. The page cache cannot be dropped: every run reads its data set once "
           "before timing (warm cache for all tools) and `sync` runs untimed before each timed command. "
           "Repositories are fresh for every run; copying data into a work tree is not timed. "
           "`gc.auto=0` keeps git from starting a background gc mid-benchmark (with `--gc`, the gc it would have "
           "started is timed on its own row). Ratio columns: this row's median divided by that tool's median for the same "
           "operation (above 1 = slower); the cp -r column always divides by the full-copy baseline." % runs)
out.append("")
warnings = []
for line in open(sets_tsv):
    s, desc, nfiles, nbytes = line.rstrip("\n").split("\t")
    out.append("### Set %s: %s (%s files, %.0f MiB)" % (s, desc, format(int(nfiles), ","), int(nbytes) / 1048576))
    out.append("")
    cols = [c for c in COLS if any(k[0] == s and k[2] == c for k in data)]
    out.append("| operation | command | median s | runs s | peak RSS MiB | " + " | ".join("÷ " + COLNAME[c] for c in cols) + " |")
    out.append("|---|---|--:|--:|--:|" + "--:|" * len(cols))
    for sec in SECTIONS:
        rank = {r: i for i, (sc, r) in enumerate(ROWS) if sc == sec}
        rows = sorted({k[2] for k in order if k[0] == s and k[1] == sec}, key=lambda r: (rank.get(r, 99), r))
        if sec == "restore" and (s, "commit", "cp") in data:
            rows = ["cp"] + rows
        first = True
        for row in rows:
            key = (s, "commit", "cp") if (sec == "restore" and row == "cp") else (s, sec, row)
            med, cell, runs_txt, rss, notes = summary(key)
            cells = []
            for c in cols:
                ck = (s, "commit", "cp") if c == "cp" else (s, sec, c)
                cells.append(ratio(med, summary(ck)[0]))
            label = ROWS.get((sec, row), row)
            if notes:
                label += " ⚠"
                warnings += ["%s / %s / %s: %s" % (s, sec, row, n) for n in notes]
            out.append("| %s | %s | %s | %s | %s | %s |" % (LABELS[sec] if first else "", label, cell, runs_txt, rss, " | ".join(cells)))
            first = False
    out.append("")
if warnings:
    out.append("Warnings (⚠ rows): " + "; ".join(warnings))
    out.append("")
print("\n".join(out))
PY
)

# write_report STATUS: the Markdown report of everything in results.tsv, to stdout and WORK/results.md
write_report() {
    {
        echo "$1; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
        for g in "${GEN_TIMES[@]+"${GEN_TIMES[@]}"}"; do echo "data $g"; done
    } >"$LOGDIR/timing.txt"
    touch "$LOGDIR/sets.tsv"
    echo
    echo "== results (also in $WORK/results.md) =="
    python3 -c "$REPORT_PY" "$TSV" "$LOGDIR/machine.md" "$LOGDIR/sets.tsv" "$LOGDIR/timing.txt" "$RUNS" |
        tee "$WORK/results.md"
}

# ---------------------------------------------------------------- main loop
cleanup() { [[ -n ${RUN:-} ]] && rm -rf "$RUN"; rm -f "$LOGDIR"/.time.*; }
on_signal() {
    trap - INT TERM
    echo "interrupted: writing the report of what was measured so far" >&2
    write_report "interrupted after $((SECONDS - T_START)) s: partial results"
    exit 130
}
T_START=$SECONDS
trap cleanup EXIT
trap on_signal INT TERM
for set in "${SET_LIST[@]}"; do
    CUR_SET=$set
    generate "$set"
    DATA=$WORK/data/$set
    read -r _ f b _ <"$WORK/data/$set.done"
    SET_FILES=${f#files=}; SET_BYTES=${b#bytes=}
    printf '%s\t%s\t%s\t%s\n' "$set" "${SET_DESC[$set]}" "$SET_FILES" "$SET_BYTES" >>"$LOGDIR/sets.tsv"
    RUN=$WORK/runs/$set
    export DVC_SITE_CACHE_DIR=$RUN/dvc-site
    echo "== set $set: ${SET_DESC[$set]} ($SET_FILES files, $((SET_BYTES / 1048576)) MiB), $RUNS runs =="
    for ((CUR_RUN = 1; CUR_RUN <= RUNS; CUR_RUN++)); do
        rm -rf "$RUN"; mkdir -p "$RUN"
        find "$DATA" -type f -print0 | xargs -0 cat >/dev/null    # warm the page cache
        rotated commit cp:c_cp git:c_git git-lfs:c_lfs dvc:c_dvc mlgit:c_mlgit
        if ((SET_RECOMMIT[$set])); then
            rotated recommit-1% git:r_git git-lfs:r_lfs dvc:r_dvc mlgit:r_mlgit
            rotated nochange git:n_git git-lfs:n_lfs dvc:n_dvc mlgit:n_mlgit
        fi
        rotated restore git:s_git git-lfs:s_lfs git-lfs-pull:s_lfspull dvc:s_dvc mlgit:s_mlgit
        if ((SET_RECOMMIT[$set])); then step extras mlgit-diff x_diff; fi
        step extras mlgit-clean x_clean
        step extras mlgit-split x_split
        rm -rf "$RUN"
    done
done
write_report "total benchmark time: $((SECONDS - T_START)) s"

