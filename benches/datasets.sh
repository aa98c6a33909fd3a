# benches/datasets.sh — the generated data sets shared by the benchmark scripts (sourced, not run).
# Needs from the caller: $WORK (the cache is $WORK/data), a die() function, and fd 3 open for progress.
# shellcheck shell=bash
GEN_VERSION=2                   # bump when the generated data or the marker changes: cached sets are regenerated

# ---------------------------------------------------------------- data generation
# File sizes come from Python's seeded PRNG, contents from an AES-CTR keystream (incompressible,
# deterministic, ~1 GB/s). Files: dNNN/fNNNNNN.bin (small), big/bigN.bin (large).
GEN_PY=$(cat <<'PY'

import os, random, sys
name, out = sys.argv[1], sys.argv[2]
KiB, MiB = 1024, 1024 * 1024
#        small files: count, folders, min size, max size     large files: count, size
specs = {"tiny": ((2000, 20, 4 * KiB, 16 * KiB), (2, 8 * MiB)),
         "S":    ((50000, 100, 4 * KiB, 16 * KiB), (0, 0)),
         "M":    ((5000, 50, 100 * KiB, 100 * KiB), (4, 200 * MiB)),
         "L":    ((0, 1, 0, 0), (6, 512 * MiB))}
(n, ndirs, lo, hi), (nbig, bigsize) = specs[name]
rng = random.Random("mlgit-bench-" + name)
src = sys.stdin.buffer
files = total = 0
per_dir = max(1, n // ndirs)
for i in range(n):
    d = os.path.join(out, "d%03d" % (i // per_dir))
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    size = rng.randint(lo, hi)
    buf = src.read(size)
    assert len(buf) == size, "short read from the keystream"
    with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
        f.write(buf)
    files += 1; total += size
if nbig:
    os.makedirs(os.path.join(out, "big"), exist_ok=True)
for j in range(nbig):
    with open(os.path.join(out, "big", "big%d.bin" % j), "wb") as f:
        left = bigsize
        while left:
            buf = src.read(min(left, 8 * MiB))
            assert buf, "short read from the keystream"
            f.write(buf); left -= len(buf)
    files += 1; total += bigsize
print("files=%d bytes=%d" % (files, total))
PY
)
# Modify 1% of the small files in place (every 100th in sorted order), same size, new bytes.
# Refuses to touch the cached data sets.
MODIFY_PY=$(cat <<'PY'

import os, random, sys
target, name, cache = os.path.realpath(sys.argv[1]), sys.argv[2], os.path.realpath(sys.argv[3])
assert not (target + "/").startswith(cache + "/"), "refusing to modify the cached data set " + target
paths = sorted(os.path.join(dp, f)
               for dp, dns, fns in os.walk(target) for f in fns
               if os.path.relpath(dp, target).startswith("d"))
rng = random.Random("mlgit-bench-modify-" + name)
n = 0
for i, p in enumerate(paths):
    if i % 100 == 0:
        st = os.stat(p)
        data = rng.randbytes(st.st_size)
        if st.st_nlink > 1:
            # a hard link (someone copied with cp -al): writing in place would change the other
            # copies too, so give this path a file of its own
            with open(p + ".tmp", "wb") as f:
                f.write(data)
            os.replace(p + ".tmp", p)
        else:
            with open(p, "r+b") as f:
                f.write(data); f.truncate()
        n += 1
print("modified %d of %d files" % (n, len(paths)))
PY
)

# Fingerprint of a data set: file count, bytes, and a SHA-256 over every 50th file (which includes
# every file the 1% re-commit modifies) and the first and last MiB of each large file.
FINGERPRINT_PY=$(cat <<'PY'
import hashlib, os, sys
root = sys.argv[1]
paths = sorted(os.path.relpath(os.path.join(dp, f), root) for dp, dns, fns in os.walk(root) for f in fns)
h = hashlib.sha256()
total = 0
for i, rel in enumerate(paths):
    p = os.path.join(root, rel)
    size = os.path.getsize(p)
    total += size
    if size > 1 << 20:
        with open(p, "rb") as f:
            h.update(rel.encode() + f.read(1 << 20)); f.seek(-(1 << 20), 2); h.update(f.read())
    elif i % 50 == 0:
        with open(p, "rb") as f:
            h.update(rel.encode() + f.read())
print("files=%d bytes=%d sample=%s" % (len(paths), total, h.hexdigest()[:32]))
PY
)

declare -A SET_DESC=(
    [tiny]="2,000 files of 4-16 KiB in 20 folders + 2 x 8 MiB (smoke test)"
    [S]="50,000 files of 4-16 KiB in 100 folders"
    [M]="5,000 files of 100 KiB in 50 folders + 4 x 200 MiB"
    [L]="6 files of 512 MiB"
)
# sets on which the re-commit rows (1% changed, nothing changed) run
declare -A SET_RECOMMIT=([tiny]=1 [S]=1 [M]=0 [L]=0)

generate() { # SET -> $WORK/data/SET, cached; the marker SET.done holds "vN files=.. bytes=.. sample=.."
    local set=$1 dir=$WORK/data/$1 marker=$WORK/data/$1.done
    if [[ -d $dir && -f $marker && $(head -c 3 "$marker") == "v$GEN_VERSION " ]]; then
        # reuse only an untouched set: nothing newer than the marker, same count, bytes and sample hash
        if [[ -z $(find "$dir" -newer "$marker" -print -quit) ]] &&
            [[ "v$GEN_VERSION $(python3 -c "$FINGERPRINT_PY" "$dir")" == "$(cat "$marker")" ]]; then
            echo "data set $set: cached in $dir (verified)" >&3
            return 0
        fi
        echo "data set $set: the cached copy in $dir was modified since it was generated: regenerating" >&3
    fi
    rm -rf "$dir" "$dir.tmp" "$marker"
    mkdir -p "$dir.tmp"
    echo "data set $set: generating ${SET_DESC[$set]} into $dir ..." >&3
    local t0=$SECONDS info
    info=$(set +o pipefail
        openssl enc -aes-128-ctr -pass "pass:mlgit-bench-$set" -nosalt -md sha256 </dev/zero 2>/dev/null |
            python3 -c "$GEN_PY" "$set" "$dir.tmp") || die "generating data set $set failed"
    mv "$dir.tmp" "$dir"
    echo "v$GEN_VERSION $(python3 -c "$FINGERPRINT_PY" "$dir")" >"$marker"
    GEN_TIMES+=("$set: generated in $((SECONDS - t0)) s")
    echo "data set $set: $info, generated in $((SECONDS - t0)) s" >&3
}
GEN_TIMES=()
