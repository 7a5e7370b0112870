#!/usr/bin/env bash
# End-to-end tests against a real engine: plain `docker build` with
# `# syntax=local/nix-frontend:dev`, a real Nix in the builder image.
#
# Usage: tests/e2e.sh KIND   (KIND: 20.10, 26.1 or 26.1-containerd)
# Expects the engine started and the images loaded (scripts/test.sh does it).
# Prints one line per test and a closing "e2e(KIND): N passed, N failed".
#
# Index of tests:
#   example_runs          the example builds and `docker run` prints its greeting
#   closure_is_exact      /nix/store in the image is exactly nix's runtime closure
#   source_change         a source edit rebuilds the app only; the /nix cache is reused
#   noop_rebuild          an unchanged rebuild is fully cached, same image ID
#   unknown_key           a bad spec key fails with its line in the output
set -uo pipefail
kind=${1:?usage: tests/e2e.sh KIND}
top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/engine.sh" env "$kind")"
# buildx adds a provenance attestation with build timestamps to the image
# index on the containerd store, so the image ID would differ on every build.
export BUILDX_NO_DEFAULT_ATTESTATIONS=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tag="nixfe-e2e-hello:${kind//./-}"
passed=0 failed=0 failures=()

say() { printf '  %s\n' "$*" >&2; }
# build DIR [docker build args…]: plain docker build, log in $work/last.log.
build() {
  local dir=$1; shift
  docker build --progress=plain "$@" "$dir" >"$work/last.log" 2>&1
}
# A test function returns non-zero on failure, after saying why.
run_test() {
  local name=$1
  if "$name"; then
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

# A fresh copy of the example per run, with a greeting of its own, so that
# "changed" and "unchanged" are about this run even on a warm engine.
cp -r "$top/examples/hello" "$work/hello"
stamp="run $(date +%s%N)"
echo "Hello from e2e ($stamp)" >"$work/hello/src/greeting.txt"

example_runs() {
  build "$work/hello" -t "$tag" || { say "docker build failed"; return 1; }
  local out
  out=$(docker run --rm "$tag") || { say "docker run failed"; return 1; }
  [[ $out == "Hello from e2e ($stamp)" ]] || { say "unexpected output: $out"; return 1; }
}

closure_is_exact() {
  # The oracle: nix itself, in the builder image, on the same source.
  local want got
  want=$(docker run --rm --network none -v "$work/hello:/src:ro" local/nix:test sh -c \
    'nix build --out-link /tmp/r path:/src#default >/dev/null 2>&1 && nix-store -qR /tmp/r' \
    | sed 's#^/nix/store/##' | sort -u) || { say "nix oracle failed"; return 1; }
  got=$(store_of "$tag") || { say "cannot list the image"; return 1; }
  [[ -n $want && $want == "$got" ]] || { say "store differs: want [$want] got [$got]"; return 1; }
  [[ $(wc -l <<<"$got") -ge 3 ]] || { say "closure has fewer than 3 paths"; return 1; }
  ! grep -q -- '-toolchain$' <<<"$got" || { say "build-only toolchain reached the image"; return 1; }
}

source_change() {
  local before after
  before=$(docker image inspect -f '{{.Id}}' "$tag") || return 1
  echo "Changed in e2e ($stamp)" >"$work/hello/src/greeting.txt"
  build "$work/hello" -t "$tag" || { say "rebuild failed"; return 1; }
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  [[ $before != "$after" ]] || { say "image did not change"; return 1; }
  [[ $(docker run --rm "$tag") == "Changed in e2e ($stamp)" ]] || { say "new output missing"; return 1; }
  # nix ran (the greeting was rebuilt) but the toolchain came from the /nix cache.
  grep -q "building '/nix/store/[a-z0-9]*-greeting.drv'" "$work/last.log" || { say "nix did not rebuild greeting"; return 1; }
  ! grep -q 'toolchain: building' "$work/last.log" || { say "toolchain was rebuilt: /nix cache not reused"; return 1; }
}

noop_rebuild() {
  local before after
  before=$(docker image inspect -f '{{.Id}}' "$tag") || return 1
  build "$work/hello" -t "$tag" || { say "rebuild failed"; return 1; }
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  [[ $before == "$after" ]] || { say "image ID changed: $before -> $after"; return 1; }
  # Every op of ours is a cache hit: the nix step and each layer.
  local n
  for n in '\[nix\] build' '\[image\] layer'; do
    local id
    id=$(grep -m1 -E "^#[0-9]+ $n" "$work/last.log" | cut -d' ' -f1)
    [[ -n $id ]] || { say "no step matching $n"; return 1; }
    grep -qx "$id CACHED" "$work/last.log" || { say "step $n was not cached"; return 1; }
  done
  ! grep -q 'building .*\.drv' "$work/last.log" || { say "nix built something"; return 1; }
}

unknown_key() {
  mkdir -p "$work/bad"
  cp "$work/hello/flake.nix" "$work/bad/"
  cp -r "$work/hello/src" "$work/bad/"
  printf '# syntax=local/nix-frontend:dev\nbuilder = "local/nix:test"\n\nflakes = ".#default"\n' >"$work/bad/Dockerfile"
  if build "$work/bad" -t nixfe-e2e-bad; then say "a bad spec built"; return 1; fi
  grep -q 'Dockerfile line 4: unknown key `flakes`' "$work/last.log" || { say "no line-4 message"; return 1; }
  grep -q 'hint: expected one of `flake`' "$work/last.log" || { say "no hint"; return 1; }
}

for t in example_runs closure_is_exact source_change noop_rebuild unknown_key; do
  run_test "$t"
done
docker rmi -f "$tag" nixfe-e2e-bad >/dev/null 2>&1 || true
echo "e2e($kind): $passed passed, $failed failed"
((failed == 0))
