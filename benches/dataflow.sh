#!/bin/sh
# Scale benchmark of the data flow (docs/performance-dataflow.md): clean and split of N small files
# (default 50,000) and diff of two commits that differ in 1% of the files.
#
#   cargo build --release --bin mlgit --example dataflow_fixture
#   benches/dataflow.sh [N] [WORKDIR]
#
# As root, the page cache is dropped before the "cold" runs (otherwise they are warm too).
set -eu
N=${1:-50000}
WORK=${2:-$(mktemp -d /tmp/mlgit-dataflow.XXXXXX)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MLGIT=$ROOT/target/release/mlgit
FIXTURE=$ROOT/target/release/examples/dataflow_fixture
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
printf '[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n' > "$HOME/.gitconfig"

cold() { sync; if [ "$(id -u)" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
t() { # label, command...
  label=$1; shift
  /usr/bin/time -f "$label: %e s wall, %U s user, %S s sys, %M KiB max RSS" "$@" > "$WORK/last.json"
}

"$MLGIT" init -q "$WORK/s" > /dev/null
cd "$WORK/s"
"$FIXTURE" . "$N"
git repack -adq   # commit-data writes packs; the fixture writes loose pointer blobs
cold; t "clean, cold cache" "$MLGIT" --json clean
python3 -c "import json;d=json.load(open('$WORK/last.json'));print('  files', d['files_in'], 'kept', d['kept'], 'read', d['read_files'], 'files /', d['read_bytes'], 'bytes; dropped by check', d['dropped_by_check'])"
t "clean again, warm (validates everything, commits nothing)" "$MLGIT" --json clean
cold; t "split, cold cache" "$MLGIT" --json split
python3 -c "import json;d=json.load(open('$WORK/last.json'));print('  counts', d['counts'])"
t "split --seed 7, warm" "$MLGIT" --json split --seed 7
t "split --seed 42, warm" "$MLGIT" --json split --seed 42

"$FIXTURE" . "$N" --grow 1
git repack -adq
cold; t "clean after +0.5% new, 0.5% changed files, cold cache" "$MLGIT" --json clean
t "split after growth, warm" "$MLGIT" --json split
"$FIXTURE" . "$N" --grow 1 > /dev/null
git repack -adq
t "clean after another 1% change, warm" "$MLGIT" --json clean
cold; t "diff raw~1 raw (1% differ), cold cache" "$MLGIT" --json diff raw~1 raw
python3 -c "import json;d=json.load(open('$WORK/last.json'));print('  total', d['total'])"
t "diff raw~1 raw, warm" "$MLGIT" --json diff raw~1 raw
t "diff split~1 split, warm" "$MLGIT" --json diff split~1 split
python3 -c "import json;d=json.load(open('$WORK/last.json'));print('  total', d['total'], 'splits', d['splits'])"
t "git diff --name-status raw~1 raw (reference), warm" git diff --name-status raw~1 raw
echo "work folder: $WORK"
