#!/usr/bin/env bash
# The steps of .github/workflows/release.yml that are not a build, as commands that run the same on
# a laptop (tests/release.rs runs them on the debug binary):
#
#   scripts/release.sh build-deps                      what building OpenSSL needs (Linux images)
#   scripts/release.sh version                         Cargo.toml's version (the wheels' too)
#   scripts/release.sh check-tag TAG                   TAG is v<version>, or fail
#   scripts/release.sh archive BINARY TARGET OUTDIR    OUTDIR/mlgit-<version>-<TARGET>.tar.gz
#                                                      (.zip for a windows TARGET) holding
#                                                      mlgit-<version>-<TARGET>/{mlgit,README.md}
#   scripts/release.sh checksums DIR                   DIR/SHA256SUMS for every archive and wheel
#                                                      in DIR, checkable with `sha256sum -c`
#
# Runs on Linux, macOS and Windows (Git Bash) runners: tar, and python3 (or python) for zip files
# and for hashing where neither sha256sum nor shasum exists.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

die() {
  echo "release.sh: $*" >&2
  exit 1
}

python() {
  # python3 when it runs (on Windows it may be the Store's placeholder), else python.
  if python3 -c '' > /dev/null 2>&1; then python3 "$@"; else command python "$@"; fi
}

build_deps() {
  # The vendored-openssl feature builds OpenSSL, whose Configure needs perl's IPC::Cmd: older
  # manylinux images lack it. Installs it with the image's package manager when missing.
  if perl -MIPC::Cmd -e 1 > /dev/null 2>&1; then
    echo "perl has IPC::Cmd"
  elif command -v dnf > /dev/null 2>&1; then
    dnf install -y perl-IPC-Cmd
  elif command -v yum > /dev/null 2>&1; then
    yum install -y perl-IPC-Cmd
  elif command -v apt-get > /dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq perl
  else
    die "perl with IPC::Cmd is needed to build OpenSSL, and no package manager is known here"
  fi
}

version() {
  # The [package] table's version: the first `version = "…"` line of Cargo.toml.
  local v
  v="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
  [ -n "$v" ] || die "no version line in $root/Cargo.toml"
  echo "$v"
}

check_tag() {
  local tag="$1" v
  v="$(version)"
  [ "$tag" = "v$v" ] || die "tag $tag does not match Cargo.toml's version $v: tag the release v$v, or bump Cargo.toml"
  echo "tag $tag matches version $v"
}

archive() {
  local binary="$1" target="$2" out="$3" v name exe="" staging
  [ -f "$binary" ] || die "no binary at $binary: build it first (cargo build --release --target $target)"
  v="$(version)"
  name="mlgit-$v-$target"
  case "$target" in *windows*) exe=".exe" ;; esac
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  staging="$(mktemp -d)"
  mkdir "$staging/$name"
  cp "$binary" "$staging/$name/mlgit$exe"
  chmod 755 "$staging/$name/mlgit$exe"
  cp "$root/README.md" "$staging/$name/README.md"
  if [ -n "$exe" ]; then
    # Relative names only: a Windows python does not read Git Bash's /d/... paths.
    (cd "$staging" && python -m zipfile -c "$name.zip" "$name")
    mv "$staging/$name.zip" "$out/$name.zip"
    echo "$out/$name.zip"
  else
    tar -C "$staging" -czf "$out/$name.tar.gz" "$name"
    echo "$out/$name.tar.gz"
  fi
  rm -rf "$staging"
}

sha256_lines() {
  # `<hex>  <name>` per file, the format `sha256sum -c` reads.
  if command -v sha256sum > /dev/null 2>&1; then
    sha256sum "$@"
  elif command -v shasum > /dev/null 2>&1; then
    shasum -a 256 "$@"
  else
    python -c 'import hashlib, sys
for p in sys.argv[1:]:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    print(h.hexdigest() + "  " + p)' "$@"
  fi
}

checksums() {
  local dir="$1" files=()
  [ -d "$dir" ] || die "no folder $dir"
  cd "$dir"
  # Sorted names, the same order on every runner.
  while IFS= read -r f; do files+=("$f"); done < <(ls -1 | LC_ALL=C sort | grep -E '\.(tar\.gz|zip|whl)$' || true)
  [ ${#files[@]} -gt 0 ] || die "no archive or wheel in $dir"
  sha256_lines "${files[@]}" > SHA256SUMS
  cat SHA256SUMS
}

case "${1:-}" in
  build-deps) build_deps ;;
  version) version ;;
  check-tag) [ $# -eq 2 ] || die "usage: release.sh check-tag TAG"; check_tag "$2" ;;
  archive) [ $# -eq 4 ] || die "usage: release.sh archive BINARY TARGET OUTDIR"; archive "$2" "$3" "$4" ;;
  checksums) [ $# -eq 2 ] || die "usage: release.sh checksums DIR"; checksums "$2" ;;
  *) die "usage: release.sh build-deps | version | check-tag TAG | archive BINARY TARGET OUTDIR | checksums DIR" ;;
esac
