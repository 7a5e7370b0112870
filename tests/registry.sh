#!/usr/bin/env bash
# End-to-end tests through a real registry: push what the frontend built,
# pull it into an engine that has never seen it, count what a push uploads,
# and carry the build cache through a cache export.
#
# Usage: tests/registry.sh KIND   (KIND: 20.10, 26.1, 26.1-containerd or sid)
# Expects the engine started and the images loaded (scripts/test.sh does it).
# The registry (scripts/registry.sh) and the `clean` engine (scripts/engine.sh)
# are started here when not running, and then stopped again at the end.
# Prints one line per test and a closing "registry(KIND): N passed, N failed, N skipped".
#
# Index of tests:
#   push_pull_run             build examples/hello, push it, pull it into the clean engine, run it
#   push_bytes_app_change     after an app-only change a push uploads one new layer (plus the
#                             config and the manifest); prints the new bytes
#   cache_roundtrip_local     cache exported to a local dir, a fresh builder, the same inputs
#                             again with --cache-from: nix does not run, same image manifest
#   cache_roundtrip_registry  the same with the cache in the registry (both 26.1-containerd only:
#                             the classic store's docker driver cannot export a cache)
#   ci_builds_what_changed_local   CI jobs on fresh builders, each importing the last
#   ci_builds_what_changed_registry  one's cache: an app change builds only the app, a
#                             library bump the library and the app, no change no nix
#   fresh_clone_local         two fresh `git clone`s of one commit: the second, on a fresh
#   fresh_clone_registry      builder importing the first's cache (local / registry), runs
#                             no nix and gives the same image (26.1-containerd only)
#   cache_app_change          an app-only change on a fresh builder with the imported cache: every
#                             layer but the app's comes from the cache, and a push uploads one layer
#   cache_missing_layer       the import has the nix step but not a layer the build now wants (the
#                             spec's layer budget changed), and the store cache is empty: the
#                             missing store paths are noticed and nix runs again
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"

# ---- the registry and the clean engine: start what is not running, stop it at the end
started=()
cleanup() {
  local s
  for s in "${started[@]}"; do
    case $s in
      registry) "$top/scripts/registry.sh" stop >/dev/null 2>&1 || true ;;
      clean) "$top/scripts/engine.sh" stop clean >/dev/null 2>&1 || true ;;
    esac
  done
  rm -rf "$work"
}
trap cleanup EXIT
# need NAME COMMAND…: run a start command, keep its output for a failure.
need() {
  local name=$1 out; shift
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; echo "registry($kind): cannot start $name" >&2; exit 1; }
}
if ! "$top/scripts/registry.sh" status >/dev/null 2>&1; then
  started+=(registry); need registry "$top/scripts/registry.sh" start
fi
eval "$("$top/scripts/registry.sh" env)"
if [[ $("$top/scripts/engine.sh" status | awk '$1 == "clean" { print $2 }') != running ]]; then
  started+=(clean); need "the clean engine" "$top/scripts/engine.sh" start clean
fi
clean_env=$("$top/scripts/engine.sh" env clean)
# in_clean COMMAND…: run a command (docker …) against the clean engine.
in_clean() ( eval "$clean_env" && "$@" )

stamp="run $(date +%s%N)"
# Tags of this kind; registry content stays (a later push reuses its blobs).
rtag=${kind}
# push_image DIR REF [build args…]: build DIR through the frontend and push it
# as REF; log in $work/last.log. 20.10 has no buildx: build, then push.
push_image() {
  local dir=$1 ref=$2; shift 2
  if [[ $kind == 20.10 ]]; then
    { docker build --progress=plain -t "$ref" "$@" "$dir" && docker push "$ref"; } >"$work/last.log" 2>&1
  else
    buildx_push -t "$ref" "$@" "$dir"
  fi
}
# sum_sizes: the total of the second column.
sum_sizes() { awk '{ s += $2 } END { print s + 0 }'; }

push_pull_run() {
  local repo=nixfe-e2e/hello ref out before after new cfg id
  ref="$NIXFE_REGISTRY/$repo:$rtag"
  cp -r "$top/examples/hello" "$work/hello"
  echo "Hello from the registry ($stamp)" >"$work/hello/src/greeting.txt"
  before=$(registry_blobs)
  push_image "$work/hello" "$ref" || { say "build and push failed"; return 1; }
  after=$(registry_blobs)
  new=$(new_blobs "$before" "$after")
  [[ -n $new ]] || { say "the registry got no new blobs"; return 1; }
  say "push: $(wc -l <<<"$new") new blobs, $(sum_sizes <<<"$new") bytes"
  cfg=$(registry_parts "$repo" "$rtag" | awk '$1 == "config" { print $2 }') || { say "cannot read the manifest"; return 1; }
  docker rmi -f "$ref" >/dev/null 2>&1 || true
  # The clean engine has never seen an image: restart it (which wipes it) if
  # an earlier run left one behind.
  if [[ -n $(in_clean docker images -aq) ]]; then
    if ! "$top/scripts/engine.sh" stop clean >/dev/null 2>&1 || ! "$top/scripts/engine.sh" start clean >/dev/null 2>&1; then
      say "cannot restart the clean engine"; return 1
    fi
  fi
  in_clean docker pull "$ref" >"$work/last.log" 2>&1 || { say "docker pull in the clean engine failed"; return 1; }
  out=$(in_clean docker run --rm "$ref" 2>"$work/last.log") || { say "docker run in the clean engine failed"; return 1; }
  [[ $out == "Hello from the registry ($stamp)" ]] || { say "unexpected output: $out"; return 1; }
  # The classic store's image ID is the config digest: the pushed config.
  id=$(in_clean docker image inspect -f '{{.Id}}' "$ref")
  [[ $id == "$cfg" ]] || { say "pulled image $id, pushed config $cfg"; return 1; }
  in_clean docker rmi -f "$ref" >/dev/null
}

push_bytes_app_change() {
  local repo=nixfe-e2e/layered ref first second before after new id1
  ref="$NIXFE_REGISTRY/$repo:$rtag"
  cp -r "$top/tests/fixtures/layered" "$work/layered"
  echo "app $stamp" >"$work/layered/src/app-message"
  push_image "$work/layered" "$ref" || { say "first build and push failed"; return 1; }
  # The second build takes the tag; the first image is removed by its ID.
  id1=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
  first=$(registry_parts "$repo" "$rtag") || { say "cannot read the first manifest"; return 1; }
  # On scratch the two essentials (/tmp, nsswitch.conf) come first.
  [[ $(grep -c '^layer ' <<<"$first") -eq 6 ]] || { say "want 6 layers (/tmp nsswitch.conf busybox liba libb app): $first"; return 1; }

  echo "app changed $stamp" >"$work/layered/src/app-message"
  before=$(registry_blobs)
  push_image "$work/layered" "$ref" || { say "second build and push failed"; return 1; }
  after=$(registry_blobs)
  second=$(registry_parts "$repo" "$rtag") || { say "cannot read the second manifest"; return 1; }
  new=$(new_blobs "$before" "$after")

  # Name each new blob by the part of the pushed image it is.
  local d s part nl=0 nc=0 nm=0 other=0 lb=0 cb=0 mb=0 newlayer=""
  while read -r d s; do
    [[ -n $d ]] || continue
    part=$(awk -v d="$d" '$2 == d { print $1; exit }' <<<"$second")
    case $part in
      layer) nl=$((nl + 1)) lb=$((lb + s)) newlayer=$d ;;
      config) nc=$((nc + 1)) cb=$((cb + s)) ;;
      manifest | index) nm=$((nm + 1)) mb=$((mb + s)) ;;
      *) other=$((other + 1)); say "new blob $d ($s bytes) is not part of the pushed image" ;;
    esac
  done <<<"$new"
  say "after an app-only change: $(wc -l <<<"$new") new blobs, $(sum_sizes <<<"$new") bytes:" \
    "$nl layer ($lb bytes), $nc config ($cb bytes), $nm manifest ($mb bytes)"
  local ok=0
  ((nl == 1)) || { say "want exactly 1 new layer blob, got $nl"; ok=1; }
  ((nc == 1 && nm >= 1 && other == 0)) || { say "want the config and the manifest besides it: $new"; ok=1; }
  # The lower five layers are the same blobs; the app's is the new one.
  [[ $(grep '^layer ' <<<"$first" | head -n5) == "$(grep '^layer ' <<<"$second" | head -n5)" ]] ||
    { say "lower layers changed: $first / $second"; ok=1; }
  [[ $(grep '^layer ' <<<"$second" | tail -n1 | cut -d' ' -f2) == "$newlayer" ]] ||
    { say "the new layer is not the app's (top) layer"; ok=1; }
  docker rmi -f "$ref" >/dev/null 2>&1 || true
  # Without -f: an image some other tag still names stays.
  [[ -z $id1 ]] || docker rmi "$id1" >/dev/null 2>&1 || true
  return $ok
}

# cache_roundtrip MODE: build with --cache-to MODE, prune the builder, build the
# same inputs with --cache-from MODE.
# cache_flags MODE NAME: sets `to` and `from` to a cache of MODE (local or
# registry) named NAME, for --cache-to and --cache-from.
cache_flags() {
  case $1 in
    local) to="type=local,dest=$work/cache-$2,mode=max" from="type=local,src=$work/cache-$2" ;;
    registry)
      to="type=registry,ref=$NIXFE_REGISTRY/nixfe-cache/$2:cache,mode=max"
      from="type=registry,ref=$NIXFE_REGISTRY/nixfe-cache/$2:cache" ;;
  esac
}
# nix_built: the derivations nix built in last.log, by name, on one line.
nix_built() {
  grep -o "building '/nix/store/[^']*\.drv'" "$work/last.log" | sed "s#.*/nix/store/[a-z0-9]*-##; s#\.drv'##" | tr '\n' ' '
}

cache_roundtrip() {
  local mode=$1 to from repo=nixfe-e2e/layered-cache d1 d2 ok=0
  containerd_store || skip "the classic store's docker driver cannot export a cache" || return
  cache_flags "$mode" "layered-$mode"
  rm -rf "$work/rt-$mode"; cp -r "$top/tests/fixtures/layered" "$work/rt-$mode"
  echo "cache $mode $stamp" >"$work/rt-$mode/src/app-message"
  push_image "$work/rt-$mode" "$NIXFE_REGISTRY/$repo:$mode-1" --cache-to "$to" ||
    { say "first build (--cache-to $to) failed"; return 1; }
  cp "$work/last.log" "$work/rt-$mode-1.log"
  d1=$(registry_digest "$repo" "$mode-1") || { say "cannot read the first manifest"; return 1; }
  # A fresh builder, as a CI job starts with: no build cache, no cache mounts.
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  push_image "$work/rt-$mode" "$NIXFE_REGISTRY/$repo:$mode-2" --cache-from "$from" ||
    { say "second build (--cache-from $from) failed"; return 1; }
  d2=$(registry_digest "$repo" "$mode-2") || { say "cannot read the second manifest"; return 1; }
  # The nix step is "[nix] build .#default (…)" ("[nix] builder …" is its image).
  step_from_cache '\[nix\] build ' ||
    { say "the nix step ran: $(grep -m1 -E '^#[0-9]+ \[nix\] build ' "$work/last.log")"; ok=1; }
  if [[ -n $(nix_built) ]]; then say "nix ran: $(nix_built)"; ok=1; fi
  if [[ $d1 == "$d2" ]]; then
    say "the same image manifest both times: $d2"
  else
    say "image manifests differ: $d1 (first), $d2 (after the cache round trip)"; ok=1
  fi
  docker rmi -f "$NIXFE_REGISTRY/$repo:$mode-1" "$NIXFE_REGISTRY/$repo:$mode-2" >/dev/null 2>&1 || true
  return $ok
}
cache_roundtrip_local() { cache_roundtrip local; }
cache_roundtrip_registry() { cache_roundtrip registry; }

# fresh_clone MODE: two CI jobs on one commit, each with its own `git clone`
# (whose .git differs: the index records each checkout's inodes and times).
# The first exports its cache (MODE), the second builds on a fresh builder
# that imports it: nix does not run, and the image is the same.
fresh_clone() {
  local mode=$1 to from origin c1 c2 id1 id2
  origin="$work/fc-origin-$mode" c1="$work/fc-$mode-1" c2="$work/fc-$mode-2"
  containerd_store || skip "the classic store's docker driver cannot export a cache" || return
  cache_flags "$mode" "fresh-clone-$mode"
  rm -rf "$origin" "$c1" "$c2"; cp -r "$top/tests/fixtures/layered" "$origin"
  echo "fresh clone $mode $stamp" >"$origin/src/app-message"
  { git -C "$origin" init -q && git -C "$origin" add -A &&
    git -C "$origin" -c user.name=nixfe -c user.email=nixfe@example.org commit -qm fixture &&
    git clone -q "$origin" "$c1" && git clone -q "$origin" "$c2"; } >"$work/last.log" 2>&1 ||
    { say "cannot make the clones"; return 1; }
  ! diff -r "$c1/.git" "$c2/.git" >/dev/null 2>&1 || { say "the two clones' .git are the same: nothing to show"; return 1; }
  docker buildx build --progress=plain -t nixfe-e2e-fc-1 --cache-to "$to" "$c1" >"$work/last.log" 2>&1 ||
    { say "build of the first clone (--cache-to $to) failed"; return 1; }
  id1=$(docker image inspect -f '{{.Id}}' nixfe-e2e-fc-1)
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  docker buildx build --progress=plain -t nixfe-e2e-fc-2 --cache-from "$from" "$c2" >"$work/last.log" 2>&1 ||
    { say "build of the second clone (--cache-from $from) failed"; return 1; }
  id2=$(docker image inspect -f '{{.Id}}' nixfe-e2e-fc-2)
  step_from_cache '\[nix\] build ' || { say "the nix step ran for the second clone"; return 1; }
  [[ -z $(nix_built) ]] || { say "nix built for the second clone: $(nix_built)"; return 1; }
  [[ $id1 == "$id2" ]] || { say "the clones gave two images: $id1, $id2"; return 1; }
  docker rmi -f nixfe-e2e-fc-1 nixfe-e2e-fc-2 >/dev/null 2>&1 || true
}
fresh_clone_local() { fresh_clone local; }
fresh_clone_registry() { fresh_clone registry; }

cache_app_change() {
  containerd_store || skip "the classic store's docker driver cannot export a cache" || return
  local repo=nixfe-e2e/layered-ci ctx="$work/ci" cache="$work/cache-ci" first second before after new k
  rm -rf "$ctx" "$cache"; cp -r "$top/tests/fixtures/layered" "$ctx"
  echo "ci $stamp" >"$ctx/src/app-message"
  push_image "$ctx" "$NIXFE_REGISTRY/$repo:1" --cache-to "type=local,dest=$cache,mode=max" ||
    { say "first build failed"; return 1; }
  first=$(registry_parts "$repo" 1) || { say "cannot read the first manifest"; return 1; }
  echo "ci changed $stamp" >"$ctx/src/app-message"
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  before=$(registry_blobs)
  push_image "$ctx" "$NIXFE_REGISTRY/$repo:2" --cache-from "type=local,src=$cache" ||
    { say "build on the fresh builder failed"; return 1; }
  after=$(registry_blobs)
  second=$(registry_parts "$repo" 2) || { say "cannot read the second manifest"; return 1; }
  # The lower layers' ops came from the imported cache: nothing copied.
  for k in 1 2 3; do
    step_cached "\[image\] layer $k/4" || { say "layer $k/4 ran on the fresh builder"; return 1; }
  done
  ! step_cached '\[image\] layer 4/4' || { say "the app's layer was cached"; return 1; }
  [[ $(grep '^layer ' <<<"$first" | head -n5) == "$(grep '^layer ' <<<"$second" | head -n5)" ]] ||
    { say "lower layers changed: $first / $second"; return 1; }
  new=$(new_blobs "$before" "$after")
  local layers
  layers=$(awk 'NR == FNR { if ($1 == "layer") l[$2] = 1; next } ($1 in l)' <(printf '%s\n' "$second") - <<<"$new" | wc -l)
  say "app-only change on a fresh builder: $layers new layer blob(s), $(wc -l <<<"$new") new blobs, $(sum_sizes <<<"$new") bytes"
  ((layers == 1)) || { say "want 1 new layer blob: $new"; return 1; }
  docker rmi -f "$NIXFE_REGISTRY/$repo:1" "$NIXFE_REGISTRY/$repo:2" >/dev/null 2>&1 || true
}

# ci_builds_what_changed MODE: CI jobs, each on a fresh builder that imports
# the last job's cache (MODE) and exports its own: an app-only change makes
# nix build the app alone; a library bump, the library and the app; the
# images print what their sources say; the unchanged job runs no nix.
ci_builds_what_changed() {
  local mode=$1 ctx to from n=0 out want
  ctx="$work/cw-$mode"
  containerd_store || skip "the classic store's docker driver cannot export a cache" || return
  rm -rf "$ctx"; cp -r "$top/tests/fixtures/layered" "$ctx"
  echo "ci $mode $stamp" >"$ctx/src/app-message"
  # job BUILT: one CI job; nix must build exactly BUILT (names, sorted).
  # A registry cache is one ref every job imports and exports, as CI setups
  # name it (with a ref per job, the exported cache lacked the group steps
  # the job had pulled from the last one's: measured on 26.1-containerd).
  job() {
    local prev
    if [[ $mode == registry ]]; then cache_flags registry "cw-${stamp#run }"; prev=$from; n=$((n + 1)); else
      cache_flags "$mode" "cw-$mode-$n"
      prev=$from
      n=$((n + 1))
      cache_flags "$mode" "cw-$mode-$n"
    fi
    local args=(--cache-to "$to")
    ((n == 1)) || args+=(--cache-from "$prev")
    docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
    docker buildx build --progress=plain -t nixfe-e2e-cw "${args[@]}" "$ctx" >"$work/last.log" 2>&1 ||
      { say "job $n failed: $(grep -m3 -E 'ERROR|error:' "$work/last.log")"; return 1; }
    local built
    built=$(nix_built | xargs -n1 | sort | xargs)
    [[ $built == "$1" ]] || { say "job $n: nix built '$built', want '$1'"; return 1; }
    want=$(cat "$ctx/src/app-message" "$ctx/src/liba-version" "$ctx/src/libb-version")
    out=$(docker run --rm nixfe-e2e-cw)
    [[ $out == "$want" ]] || { say "job $n: the image prints '$out', want '$want'"; return 1; }
  }
  job "app busybox liba libb toolchain" || return 1
  say "cold: $(grep -oE '\[nix\] group [0-9]+/[0-9]+' "$work/last.log" | sort -u | wc -l) group step(s)"
  echo "ci $mode changed $stamp" >"$ctx/src/app-message"
  job "app" || return 1
  echo "9.$stamp" >"$ctx/src/liba-version"
  job "app liba" || return 1
  job "" || return 1
  step_from_cache '\[nix\] build \.#default \(x86_64-linux\)$' || { say "the unchanged job evaluated again"; return 1; }
  docker rmi -f nixfe-e2e-cw >/dev/null 2>&1 || true
}
ci_builds_what_changed_local() { ci_builds_what_changed local; }
ci_builds_what_changed_registry() { ci_builds_what_changed registry; }

cache_missing_layer() {
  containerd_store || skip "the classic store's docker driver cannot export a cache" || return
  local ctx="$work/ml" cache="$work/cache-ml" out
  rm -rf "$ctx" "$cache"; cp -r "$top/tests/fixtures/layered" "$ctx"
  echo "missing layer $stamp" >"$ctx/src/app-message"
  docker buildx build --progress=plain -t nixfe-e2e-ml --cache-to "type=local,dest=$cache,mode=max" "$ctx" \
    >"$work/last.log" 2>&1 || { say "first build failed"; return 1; }
  # The same nix inputs (the spec, by its name, is not one of them), but an
  # edited spec: two layers instead of four.
  printf '\n[image]\nlayers = 2\n' >>"$ctx/Dockerfile"
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  docker buildx build --progress=plain -t nixfe-e2e-ml --cache-from "type=local,src=$cache" "$ctx" \
    >"$work/last.log" 2>&1 || { say "build with the new budget failed"; return 1; }
  step_cached '\[nix\] build ' || { say "the nix step did not come from the import"; return 1; }
  grep -q 'StoreCachePruned' "$work/last.log" || { say "no notice that the store lacked the paths"; return 1; }
  grep -q "building '/nix/store/[a-z0-9]*-app.drv'" "$work/last.log" || { say "nix did not run again"; return 1; }
  # Two store layers and, on scratch, /tmp and nsswitch.conf.
  [[ $(diffids nixfe-e2e-ml | wc -l) -eq 4 ]] || { say "want 4 layers: $(diffids nixfe-e2e-ml | tr "\n" " ")"; return 1; }
  out=$(docker run --rm nixfe-e2e-ml | head -n1)
  [[ $out == "missing layer $stamp" ]] || { say "the image prints: $out"; return 1; }
  docker rmi -f nixfe-e2e-ml >/dev/null
}

run_all registry push_pull_run push_bytes_app_change cache_roundtrip_local cache_roundtrip_registry \
  fresh_clone_local fresh_clone_registry cache_app_change cache_missing_layer \
  ci_builds_what_changed_local ci_builds_what_changed_registry
