#!/bin/sh
# One-rule trainer (Holte's 1R): the best single-feature rule beats the
# majority baseline of train.sh whenever one feature carries signal.
#
# For every feature column it learns a rule on data/train:
#   numeric column      split the train range into equal-width bins
#                       (ONE_RULE_BINS, default 8, or `mlgit train-tag
#                       --set bins=N`); each bin predicts its
#                       most frequent label
#   categorical column  each value predicts its most frequent label
#                       (columns with more distinct values than half the
#                       rows, such as ids, are skipped)
# and keeps the rule with the best train accuracy (ties: leftmost column).
#
# Input and outputs are those of train.sh: CSV files under data/train/ and
# data/validation/ (recursive, *.csv only, header line, LAST column is the
# label, unquoted values), then model/model.json, metrics.json and
# params.json ({"model":"one-rule",...}, + "tag" when MLGIT_TAG is set).
# When data/validation holds no CSV rows, accuracy is measured on data/train
# and metrics.json says "eval_on":"train". predict.sh reads the model.
# Needs only a POSIX sh, find, sort and awk.
set -eu
LC_ALL=C
export LC_ALL

bins=${ONE_RULE_BINS:-8}
# `mlgit train-tag --set bins=N` wins over ONE_RULE_BINS: train-tag writes the params to the JSON
# file $MLGIT_PARAMS names, pretty-printed (a top-level key is indented by two spaces).
if [ -n "${MLGIT_PARAMS:-}" ]; then
    set_bins=$(sed -n 's/^  "bins": *\([^,]*\),\{0,1\}$/\1/p' "$MLGIT_PARAMS")
    if [ -n "$set_bins" ]; then bins=$set_bins; fi
fi
case $bins in
    '' | *[!0-9]* | 0) echo "better_train.sh: bins (ONE_RULE_BINS or --set bins) must be a positive integer, got '$bins'" >&2; exit 2 ;;
esac

list_csv() {
    if [ -d "$2" ]; then
        find "$2" -type f -name '*.csv' | sort | sed "s|^|$1 |"
    fi
}

{
    list_csv T data/train
    list_csv V data/validation
} | awk -v nbins="$bins" '
function fail(msg) {
    printf "better_train.sh: %s\n", msg | "cat 1>&2"
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
function is_number(v) {
    return v ~ /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/
}
# Most frequent label among cnt[key SUBSEP label]; ties go to the smallest label.
function top_label(key,    lab, best, best_n, n) {
    best = ""; best_n = -1
    for (lab in labels_seen) {
        n = ((key, lab) in cnt) ? cnt[key, lab] : 0
        if (n > best_n || (n == best_n && lab < best)) { best = lab; best_n = n }
    }
    top_n = best_n
    return best
}
# The label the chosen rule predicts for a feature value.
function predict(v,    b) {
    if (rule_kind == "categorical")
        return (v in rule_value) ? rule_value[v] : majority
    if (!is_number(v)) return majority
    v += 0
    for (b = 1; b < nbins && v >= rule_edge[b]; b++) ;
    return rule_label[b]
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
            if (ncol == 0) {
                ncol = split(line, name, ",")
                for (j = 1; j <= ncol; j++) name[j] = trim(name[j])
                if (ncol < 2) fail(path ": a header with at least one feature and a label is needed")
            }
            continue
        }
        if (line ~ /^[ \t]*$/) continue
        n = split(line, f, ",")
        if (n != ncol) {
            skipped++
            continue
        }
        for (j = 1; j <= n; j++) f[j] = trim(f[j])
        if (kind == "T") {
            nt++
            for (j = 1; j <= n; j++) train[nt, j] = f[j]
            labels_seen[f[n]] = 1
        } else {
            nv++
            for (j = 1; j <= n; j++) valid[nv, j] = f[j]
        }
    }
    if (rc < 0) fail("cannot read " path)
    close(path)
}
END {
    if (failed) exit 1
    if (skipped > 0) {
        printf "better_train.sh: skipped %d rows whose column count differs from the header\n", skipped | "cat 1>&2"
        close("cat 1>&2")
    }
    if (nt == 0)
        fail("no CSV rows under data/train: nothing to train on (is the split data in data/train/?)")

    for (i = 1; i <= nt; i++) cnt["", train[i, ncol]]++
    majority = top_label("")

    best_col = 0; best_correct = -1
    for (j = 1; j < ncol; j++) {
        numeric = 1
        for (i = 1; i <= nt; i++) if (!is_number(train[i, j])) { numeric = 0; break }
        split("", cnt)
        correct = 0
        if (numeric) {
            lo = hi = train[1, j] + 0
            for (i = 2; i <= nt; i++) {
                v = train[i, j] + 0
                if (v < lo) lo = v
                if (v > hi) hi = v
            }
            # Edges are rounded to what model.json stores, so predict.sh agrees exactly.
            for (b = 1; b < nbins; b++) edge[b] = sprintf("%.10g", lo + (hi - lo) * b / nbins) + 0
            for (i = 1; i <= nt; i++) {
                v = train[i, j] + 0
                for (b = 1; b < nbins && v >= edge[b]; b++) ;
                cnt[b, train[i, ncol]]++
            }
            for (b = 1; b <= nbins; b++) {
                lab = top_label(b)
                correct += top_n
                bin_label[b] = (top_n > 0) ? lab : majority
            }
        } else {
            split("", seen)
            distinct = 0
            for (i = 1; i <= nt; i++) {
                if (!(train[i, j] in seen)) { seen[train[i, j]] = 1; distinct++ }
                cnt[train[i, j], train[i, ncol]]++
            }
            if (distinct > nt / 2) continue
            for (v in seen) { lab = top_label(v); correct += top_n }
        }
        if (correct > best_correct) {
            best_correct = correct; best_col = j
            rule_kind = numeric ? "numeric" : "categorical"
            split("", rule_value)
            if (numeric) {
                for (b = 1; b < nbins; b++) rule_edge[b] = edge[b]
                for (b = 1; b <= nbins; b++) rule_label[b] = bin_label[b]
            } else {
                for (v in seen) rule_value[v] = top_label(v)
            }
        }
    }
    if (best_col == 0) fail("no usable feature column (every column is an id-like categorical)")

    if (nv > 0) {
        eval_on = "validation"; n_eval = nv
        for (i = 1; i <= nv; i++) if (predict(valid[i, best_col]) == valid[i, ncol]) hits++
    } else {
        eval_on = "train"; n_eval = nt
        for (i = 1; i <= nt; i++) if (predict(train[i, best_col]) == train[i, ncol]) hits++
    }
    if (system("mkdir -p model") != 0) fail("cannot create model/")
    accuracy = sprintf("%.4f", hits / n_eval)

    out = "model/model.json"
    printf "{\"type\":\"one-rule\",\"feature\":%s,\"column\":%d,\"kind\":\"%s\",\"default\":%s", \
        jstr(name[best_col]), best_col, rule_kind, jstr(majority) > out
    if (rule_kind == "numeric") {
        sep = ""
        printf ",\"edges\":[" > out
        for (b = 1; b < nbins; b++) { printf "%s%.10g", sep, rule_edge[b] > out; sep = "," }
        sep = ""
        printf "],\"labels\":[" > out
        for (b = 1; b <= nbins; b++) { printf "%s%s", sep, jstr(rule_label[b]) > out; sep = "," }
        printf "]}\n" > out
    } else {
        # Sorted by value so model.json is byte-for-byte reproducible.
        nk = 0
        for (v in rule_value) key[++nk] = v
        for (a = 2; a <= nk; a++)
            for (b = a; b > 1 && key[b] < key[b - 1]; b--) { t = key[b]; key[b] = key[b - 1]; key[b - 1] = t }
        sep = ""
        printf ",\"values\":{" > out
        for (a = 1; a <= nk; a++) { printf "%s%s:%s", sep, jstr(key[a]), jstr(rule_value[key[a]]) > out; sep = "," }
        printf "}}\n" > out
    }

    printf "{\"accuracy\":%s,\"n_train\":%d,\"n_validation\":%d,\"eval_on\":\"%s\"}\n", \
        accuracy, nt, nv, eval_on > "metrics.json"
    tag = ENVIRON["MLGIT_TAG"]
    params = sprintf("{\"model\":\"one-rule\",\"feature\":%s,\"bins\":%d", jstr(name[best_col]), nbins)
    if (tag != "") params = params ",\"tag\":" jstr(tag)
    print params "}" > "params.json"

    printf "one-rule: feature=%s (%s) accuracy=%s on %s (n_train=%d, n_validation=%d)\n", \
        name[best_col], rule_kind, accuracy, eval_on, nt, nv
}'
