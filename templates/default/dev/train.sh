#!/bin/sh
# Baseline trainer: always predicts the most frequent label (majority class).
#
# Input   CSV files under data/train/ and data/validation/, searched recursively
#         (only files whose name ends in .csv; everything else is ignored).
#         Each file starts with a header line; the LAST column is the label.
#         Values are split on commas: quoted values ("a,b") are NOT supported.
# Output  model/model.json  {"type":"majority","label":"<label>"}
#         metrics.json      {"accuracy":0.6154,"n_train":250,"n_validation":26,"eval_on":"validation"}
#         params.json       {"model":"majority"}  (+ "tag" when MLGIT_TAG is set)
#
# Accuracy is measured on data/validation. When it holds no CSV rows (a small
# data set can leave the validation split without a file), it is measured on
# data/train instead and metrics.json says "eval_on":"train".
#
# Run it from the repository root; under `mlgit train-tag -- ./train.sh`,
# MLGIT_TAG holds the name of the snapshot tag being created.
# Needs only a POSIX sh, find, sort and awk.
set -eu
LC_ALL=C
export LC_ALL

list_csv() {
    if [ -d "$2" ]; then
        find "$2" -type f -name '*.csv' | sort | sed "s|^|$1 |"
    fi
}

{
    list_csv T data/train
    list_csv V data/validation
} | awk '
function fail(msg) {
    printf "train.sh: %s\n", msg | "cat 1>&2"
    close("cat 1>&2")
    failed = 1
    exit 1
}
function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
function jstr(s,    out, i, c) {
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"") out = out "\\" c
        else if (c == "\t") out = out "\\t"
        else out = out c
    }
    return "\"" out "\""
}
{
    kind = substr($0, 1, 1)
    path = substr($0, 3)
    header = 1
    while ((rc = (getline line < path)) > 0) {
        sub(/\r$/, "", line)
        if (header) {
            header = 0
            if (index(line, "version https://git-lfs.github.com/spec/") == 1)
                fail(path " is a Git LFS pointer, not data: run `git lfs pull` (or `mlgit materialize`) first")
            continue
        }
        if (line ~ /^[ \t]*$/) continue
        n = split(line, f, ",")
        label = trim(f[n])
        if (kind == "T") {
            n_train++
            count[label]++
        } else {
            n_validation++
            validation_label[n_validation] = label
        }
    }
    if (rc < 0) fail("cannot read " path)
    close(path)
}
END {
    if (failed) exit 1
    if (n_train == 0)
        fail("no CSV rows under data/train: nothing to train on (is the split data in data/train/?)")

    # Most frequent label; ties go to the smallest label so the result is reproducible.
    best = ""; best_count = -1
    for (label in count)
        if (count[label] > best_count || (count[label] == best_count && label < best)) {
            best = label; best_count = count[label]
        }

    if (n_validation > 0) {
        eval_on = "validation"; n_eval = n_validation; correct = 0
        for (i = 1; i <= n_validation; i++)
            if (validation_label[i] == best) correct++
    } else {
        eval_on = "train"; n_eval = n_train; correct = best_count
    }
    if (system("mkdir -p model") != 0) fail("cannot create model/")
    accuracy = sprintf("%.4f", correct / n_eval)

    printf "{\"type\":\"majority\",\"label\":%s}\n", jstr(best) > "model/model.json"
    printf "{\"accuracy\":%s,\"n_train\":%d,\"n_validation\":%d,\"eval_on\":\"%s\"}\n", \
        accuracy, n_train, n_validation, eval_on > "metrics.json"
    tag = ENVIRON["MLGIT_TAG"]
    if (tag != "") printf "{\"model\":\"majority\",\"tag\":%s}\n", jstr(tag) > "params.json"
    else printf "{\"model\":\"majority\"}\n" > "params.json"

    printf "majority baseline: label=%s accuracy=%s on %s (n_train=%d, n_validation=%d)\n", \
        best, accuracy, eval_on, n_train, n_validation
}'
