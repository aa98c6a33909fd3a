#!/bin/sh
# Predict with the model written by train.sh.
#
# Usage   ./predict.sh < input.csv
# Input   CSV on stdin in the training format: a header line first, then one
#         row per line, values split on commas (no quoted values). A trailing
#         label column may be present; it is ignored.
# Output  one predicted label per data row on stdout.
#
# The model is read from model/model.json in the current directory (where
# train.sh writes it), or from the file named by MODEL_FILE. Models of type "majority" (train.sh) and
# "one-rule" (a single-feature rule) are understood.
set -eu
LC_ALL=C
export LC_ALL

model=${MODEL_FILE:-model/model.json}
if [ ! -f "$model" ]; then
    echo "predict.sh: no model at $model: train first (./train.sh) or set MODEL_FILE" >&2
    exit 1
fi

awk -v model="$model" '
function fail(msg) {
    printf "predict.sh: %s\n", msg | "cat 1>&2"
    close("cat 1>&2")
    failed = 1
    exit 1
}
function skipws(s, p) {
    while (p <= length(s) && index(" \t\r\n", substr(s, p, 1)) > 0) p++
    return p
}
# Position of the value of "key" in the JSON text s, or 0.
function value_at(s, key,    needle, from, p, q) {
    needle = "\"" key "\""
    from = 1
    while ((p = index(substr(s, from), needle)) > 0) {
        q = skipws(s, from + p - 1 + length(needle))
        if (substr(s, q, 1) == ":") return skipws(s, q + 1)
        from = from + p
    }
    return 0
}
# The JSON string starting at s[p] (a quote); sets pos just after it.
function jstring(s, p,    out, c) {
    if (substr(s, p, 1) != "\"") fail("bad model file " model ": string expected")
    out = ""
    for (p++; p <= length(s); p++) {
        c = substr(s, p, 1)
        if (c == "\"") { pos = p + 1; return out }
        if (c == "\\") {
            c = substr(s, ++p, 1)
            if (c == "t") c = "\t"
            else if (c == "n") c = "\n"
        }
        out = out c
    }
    fail("bad model file " model ": unterminated string")
}
function jnumber(s, p,    start) {
    start = p
    while (p <= length(s) && index("+-.0123456789eE", substr(s, p, 1)) > 0) p++
    if (p == start) fail("bad model file " model ": number expected")
    pos = p
    return substr(s, start, p - start) + 0
}
function key_string(key,    p) {
    if (!(p = value_at(json, key))) fail("model file " model " has no \"" key "\"")
    return jstring(json, p)
}
function key_number(key,    p) {
    if (!(p = value_at(json, key))) fail("model file " model " has no \"" key "\"")
    return jnumber(json, p)
}
# Reads the array of "key" into arr[1..n] (strings or numbers); returns n.
function key_array(key, arr, as_string,    p, n) {
    if (!(p = value_at(json, key)) || substr(json, p, 1) != "[") fail("model file " model " has no \"" key "\" array")
    n = 0
    p = skipws(json, p + 1)
    while (substr(json, p, 1) != "]") {
        arr[++n] = as_string ? jstring(json, p) : jnumber(json, p)
        p = skipws(json, pos)
        if (substr(json, p, 1) == ",") p = skipws(json, p + 1)
        else if (substr(json, p, 1) != "]") fail("bad model file " model ": , or ] expected")
    }
    return n
}
# Reads the string-to-string object of "key" into map.
function key_object(key, map,    p, k) {
    if (!(p = value_at(json, key)) || substr(json, p, 1) != "{") fail("model file " model " has no \"" key "\" object")
    p = skipws(json, p + 1)
    while (substr(json, p, 1) != "}") {
        k = jstring(json, p)
        p = skipws(json, pos)
        if (substr(json, p, 1) != ":") fail("bad model file " model ": : expected")
        map[k] = jstring(json, skipws(json, p + 1))
        p = skipws(json, pos)
        if (substr(json, p, 1) == ",") p = skipws(json, p + 1)
        else if (substr(json, p, 1) != "}") fail("bad model file " model ": , or } expected")
    }
}
function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
BEGIN {
    json = ""
    while ((rc = (getline line < model)) > 0) json = json line "\n"
    if (rc < 0) fail("cannot read " model)
    close(model)
    type = key_string("type")
    if (type == "majority") {
        label = key_string("label")
    } else if (type == "one-rule") {
        column = key_number("column")
        kind = key_string("kind")
        fallback = key_string("default")
        if (kind == "numeric") {
            n_edges = key_array("edges", edges, 0)
            n_labels = key_array("labels", labels, 1)
            if (n_labels != n_edges + 1) fail("bad model file " model ": labels must have one entry more than edges")
        } else if (kind == "categorical") {
            key_object("values", values)
        } else fail("model file " model ": unknown rule kind \"" kind "\"")
    } else fail("model file " model ": unknown model type \"" type "\"")
}
NR == 1 { next }
{
    sub(/\r$/, "", $0)
    if ($0 ~ /^[ \t]*$/) next
    if (type == "majority") { print label; next }
    split($0, f, ",")
    v = trim(f[column])
    if (kind == "categorical") {
        print ((v in values) ? values[v] : fallback)
    } else if (v ~ /^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/) {
        v += 0
        for (b = 1; b <= n_edges && v >= edges[b]; b++) ;
        print labels[b]
    } else print fallback
}
END { if (failed) exit 1 }
' -
