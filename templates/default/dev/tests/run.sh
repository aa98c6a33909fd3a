#!/bin/sh
# Self-test of train.sh and predict.sh on a tiny generated data set.
# Runs in a temporary directory; exits non-zero on the first failure.
# CI runs it on every merge request from dev/* into stable/*.
set -eu
LC_ALL=C
export LC_ALL

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/train-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

passed=0
failures=0
check() { # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1: expected '$2', got '$3'"
        failures=$((failures + 1))
    fi
}

cd "$work"
mkdir -p data/train/part data/validation
printf 'x,y,label\n1,2,a\n3,4,a\n5,6,b\n' > data/train/a.csv
printf 'x,y,label\n7,8,a\n' > data/train/part/c.csv
printf 'not,a,csv\n9,9,b\n9,9,b\n9,9,b\n9,9,b\n' > data/train/ignored.txt
printf 'x,y,label\n1,1,a\n2,2,b\n3,3,a\n4,4,a\n' > data/validation/b.csv

# 1. majority label "a" (3 of 4 train rows, ignored.txt not read), 3 of 4 validation rows right
MLGIT_TAG=selftest-v1 sh "$root/train.sh" > train.out
check "model/model.json" '{"type":"majority","label":"a"}' "$(cat model/model.json)"
check "metrics.json" '{"accuracy":0.7500,"n_train":4,"n_validation":4,"eval_on":"validation"}' "$(cat metrics.json)"
check "params.json with MLGIT_TAG" '{"model":"majority","tag":"selftest-v1"}' "$(cat params.json)"
check "one summary line" 1 "$(wc -l < train.out | tr -d ' ')"

# 2. predict.sh prints the label once per data row (the header is skipped)
check "predict.sh" 'a a a a' "$(MODEL_FILE=model/model.json sh "$root/predict.sh" < data/validation/b.csv | tr '\n' ' ' | sed 's/ $//')"

# 3. no validation rows: accuracy is measured on train, and says so
rm -r data/validation
unset MLGIT_TAG || true
sh "$root/train.sh" > /dev/null
check "fallback to train" '{"accuracy":0.7500,"n_train":4,"n_validation":0,"eval_on":"train"}' "$(cat metrics.json)"
check "params.json without MLGIT_TAG" '{"model":"majority"}' "$(cat params.json)"

# 4. no training rows: train.sh fails instead of writing a meaningless model
rm -r data/train
if sh "$root/train.sh" > /dev/null 2>&1; then
    check "fails without training data" "exit status > 0" "exit status 0"
else
    check "fails without training data" 1 1
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
