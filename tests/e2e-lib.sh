# shellcheck shell=bash
# Shared by the end-to-end test scripts (sourced): engine environment, a work
# dir, `build`, `run_test` with pass/fail/skip counts, image inspection helpers.
set -uo pipefail
kind=${1:?usage: tests/${0##*/} KIND}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
eval "$("$top/scripts/engine.sh" env "$kind")"
# buildx adds a provenance attestation with build timestamps to the image
# index on the containerd store, so the image ID would differ on every build.
export BUILDX_NO_DEFAULT_ATTESTATIONS=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 skipped=0 failures=()

say() { printf '  %s\n' "$*" >&2; }
# build DIR [docker build args…]: plain docker build, log in $work/last.log.
build() {
  local dir=$1; shift
  docker build --progress=plain "$@" "$dir" >"$work/last.log" 2>&1
}
# A test function returns non-zero on failure, after saying why; 77 means
# it does not apply to this engine (reported as skipped, never as passed).
run_test() {
  local name=$1 rc=0
  "$name" || rc=$?
  if ((rc == 77)); then
    skipped=$((skipped + 1)); printf 'skip %s (%s): %s\n' "$name" "$kind" "$(cat "$work/skip" 2>/dev/null)"
  elif ((rc == 0)); then
    passed=$((passed + 1)); printf 'ok   %s (%s)\n' "$name" "$kind"
  else
    failed=$((failed + 1)); failures+=("$name"); printf 'FAIL %s (%s)\n' "$name" "$kind"
    sed 's/^/    | /' "$work/last.log" 2>/dev/null | tail -n 25 >&2
  fi
}
# Top-level entries of /nix/store in an image, sorted, one per line.
store_of() {
  local cid
  cid=$(docker create "$1" x) || return 1
  docker export "$cid" | tar -t | sed -n 's#^nix/store/\([^/][^/]*\)/\{0,1\}$#\1#p' | sort -u
  docker rm "$cid" >/dev/null
}

# Layer diffIDs of an image, one per line.
diffids() { docker image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$1" | sed '/^$/d'; }
# step_cached PATTERN: the step whose name matches was a cache hit in last.log.
step_cached() {
  local id
  id=$(grep -m1 -E "^#[0-9]+ $1" "$work/last.log" | cut -d' ' -f1)
  [[ -n $id ]] || { say "no step matching $1"; return 1; }
  grep -qx "$id CACHED" "$work/last.log"
}

# skip REASON: the test does not apply to this engine (exit code 77).
skip() { echo "$*" >"$work/skip"; return 77; }

# run_all SUITE TEST…: runs the tests, prints "SUITE(KIND): N passed, N failed,
# N skipped" and returns non-zero if any failed.
run_all() {
  local suite=$1 t; shift
  for t in "$@"; do run_test "$t"; done
  echo "$suite($kind): $passed passed, $failed failed, $skipped skipped"
  ((failed == 0))
}
