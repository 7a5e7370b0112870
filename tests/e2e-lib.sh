# shellcheck shell=bash
# Shared by the end-to-end test scripts (sourced): engine environment, a work
# dir, `build`, `run_test` with pass/fail/skip counts, image inspection helpers,
# registry helpers (blobs in its storage, manifests through its API).
set -uo pipefail
kind=${1:?usage: tests/${0##*/} KIND}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
eval "$("$top/scripts/engine.sh" env "$kind")"
# buildx adds a provenance attestation with build timestamps to the image
# index on the containerd store, so the image ID would differ on every build.
export BUILDX_NO_DEFAULT_ATTESTATIONS=1

# The suite's scratch dir. Read-only, and the exit trap removes only the
# directory mktemp made, whatever else a suite (or a shell that sourced this
# file) does with $work.
work=$(mktemp -d -t nixfe-e2e.XXXXXXXX)
readonly work
# shellcheck disable=SC2064 # the path is fixed now, on purpose
trap "rm -rf '$work'" EXIT
passed=0 failed=0 skipped=0 failures=()

say() { printf '  %s\n' "$*" >&2; }
# The engine keeps images in containerd's store (26.1-containerd, sid): MergeOp,
# attestations, cache export and multi-platform images work there.
containerd_store() { [[ $kind == 26.1-containerd || $kind == sid ]]; }
# build DIR [docker build args…]: plain docker build, log in $work/last.log.
build() {
  local dir=$1; shift
  docker build --progress=plain "$@" "$dir" >"$work/last.log" 2>&1
}
# buildx_push [docker buildx build args…]: `docker buildx build --push`, log
# in $work/last.log. With the docker driver buildx pushes twice: BuildKit's
# export pushes, then buildx has dockerd push the tag again. On the containerd
# store, dockerd 26.1 HEADs and PUTs every manifest of an index at the tag, in
# parallel, and the registry (distribution 2.8, filesystem storage) truncates
# and rewrites the tag's link file in place, so a HEAD that reads it mid-write
# gets a 500 ("invalid checksum digest format" in the registry's log). That
# failure alone is retried, once, and said; the tag may name a child manifest
# until the retry puts the index back.
buildx_push() {
  docker buildx build --progress=plain --push "$@" >"$work/last.log" 2>&1 && return 0
  grep -Eq "unexpected status from HEAD request to [^ ]*/manifests/[^ ]*: 500 Internal Server Error" "$work/last.log" ||
    return 1
  say "retrying: the registry answered 500 to dockerd's second push (tag rewritten mid-read)"
  docker buildx build --progress=plain --push "$@" >"$work/last.log" 2>&1
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
    sed 's/^/    | /' "$work/last.log" 2>/dev/null | tail -n "${NIXFE_TAIL:-25}" >&2
  fi
}
# Top-level entries of /nix/store in an image, sorted, one per line.
store_of() {
  local cid
  cid=$(docker create "$1" x) || return 1
  docker export "$cid" | tar -t | sed -n 's#^nix/store/\([^/][^/]*\)/\{0,1\}$#\1#p' | sort -u
  docker rm "$cid" >/dev/null
}

# layer_times TAG: the distinct modification times of every entry of every
# layer of TAG, one per line ("YYYY-MM-DD HH:MM:SS", UTC).
layer_times() {
  local d; d=$(mktemp -d "$work/save.XXXXXX")
  docker save "$1" | tar -x -C "$d"
  python3 -c 'import json,sys; [print(l) for l in json.load(open(sys.argv[1]))[0]["Layers"]]' "$d/manifest.json" |
    while read -r l; do TZ=UTC tar -tv --full-time -f "$d/$l"; done | awk '{print $4, $5}' | sort -u
  rm -rf "$d"
}
# Layer diffIDs of an image, one per line.
diffids() { docker image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$1" | sed '/^$/d'; }
# step_from_cache PATTERN: the step whose name matches did not run: a cache
# hit, or its result loaded from an imported cache (BuildKit then shows the
# blob's download and extraction, not CACHED). No line of process output.
step_from_cache() {
  local id
  id=$(grep -m1 -E "^#[0-9]+ $1" "$work/last.log" | cut -d' ' -f1)
  [[ -n $id ]] || { say "no step matching $1"; return 1; }
  ! grep "^$id " "$work/last.log" |
    grep -vE "^$id (CACHED|DONE .*|ERROR.*|sha256:[0-9a-f]+ .*|extracting sha256:.*|\[.*)$" | grep -q .
}
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
# NIXFE_TESTS="a b" runs only those tests of the suite (the others are not
# counted at all: neither passed nor skipped, but named on a "not run" line).
run_all() {
  local suite=$1 t not_run=(); shift
  for t in "$@"; do
    if [[ -n ${NIXFE_TESTS:-} && " $NIXFE_TESTS " != *" $t "* ]]; then not_run+=("$t"); continue; fi
    run_test "$t"
  done
  ((${#not_run[@]} == 0)) || echo "$suite($kind): not run (NIXFE_TESTS): ${not_run[*]}"
  echo "$suite($kind): $passed passed, $failed failed, $skipped skipped"
  ((failed == 0))
}

# ---- registry helpers (after eval "$(scripts/registry.sh env)")

# Every blob the registry stores, "digest size" per line, sorted: snapshot it
# before a push, and the lines only in the snapshot after it are the blobs the
# push uploaded anew (layers as compressed bytes, configs, manifests).
registry_blobs() {
  local root=${NIXFE_REGISTRY_DATA:?run: eval "\$(scripts/registry.sh env)"}/docker/registry/v2/blobs/sha256
  [[ -d $root ]] || return 0
  find "$root" -mindepth 3 -maxdepth 3 -type f -name data -printf '%h %s\n' |
    sed -E 's#^.*/([0-9a-f]{64}) #sha256:\1 #' | sort
}
# Lines of registry_blobs only in its second snapshot: new_blobs BEFORE AFTER.
new_blobs() { comm -13 <(printf '%s\n' "$1" | sed '/^$/d') <(printf '%s\n' "$2" | sed '/^$/d'); }

REGISTRY_ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
# registry_get REPO REF: the manifest or index REF (a tag or digest) names,
# as stored, into $work/manifest.json; its digest into $work/manifest.digest.
registry_get() {
  curl -fsS -H "Accept: $REGISTRY_ACCEPT" -D "$work/manifest.headers" -o "$work/manifest.json" \
    "http://${NIXFE_REGISTRY:?}/v2/$1/manifests/$2" || return 1
  tr -d '\r' <"$work/manifest.headers" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' >"$work/manifest.digest"
  [[ -s $work/manifest.digest ]]
}
# registry_digest REPO TAG: the digest of what TAG names (an image manifest or index).
registry_digest() { registry_get "$1" "$2" && cat "$work/manifest.digest"; }
# registry_parts REPO REF: what REF consists of, "part digest size" per line:
# `index` (when it is one, then each of its manifests), `manifest`, `config`, `layer`.
registry_parts() {
  registry_get "$1" "$2" || return 1
  local digest size mt m
  digest=$(<"$work/manifest.digest") size=$(wc -c <"$work/manifest.json")
  mt=$(jq -r '.mediaType // (if .manifests then "index" else "manifest" end)' "$work/manifest.json") || return 1
  case $mt in
    *index* | *manifest.list*)
      echo "index $digest $size"
      for m in $(jq -r '.manifests[].digest' "$work/manifest.json"); do registry_parts "$1" "$m" || return 1; done
      ;;
    *)
      echo "manifest $digest $size"
      jq -r '"config \(.config.digest) \(.config.size)", (.layers[] | "layer \(.digest) \(.size)")' "$work/manifest.json"
      ;;
  esac
}
