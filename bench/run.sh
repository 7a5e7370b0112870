#!/usr/bin/env bash
# Benchmark: nix-frontend against the Dockerfile approach it replaces.
#
#   bench/run.sh [KIND]          workload bench/workload on engine KIND
#   bench/run.sh --wide [KIND]   workload bench/wide (a few hundred small store paths)
#   WORKLOAD=wide bench/run.sh   the same
#
# KIND: 26.1-containerd (default), 26.1 or 20.10 (see scripts/engine.sh; the
# engine is started and local/nix:test, local/nix-frontend:dev loaded if needed).
# Five approaches, each from an empty build cache, on a fresh copy of the
# workload (so runs are repeatable):
#   dockerfile        bench/dockerfile.Dockerfile        the blog's first Dockerfile
#   dockerfile+cache  bench/dockerfile-cache.Dockerfile  the blog's final one (/nix cache mount)
#   floor             the same behind `# syntax=local/nix-frontend:floor`, a frontend that only
#                     hands it to the engine's Dockerfile frontend (what a gateway hop costs)
#   nix-frontend      bench/nix-frontend.Dockerfile      `# syntax=local/nix-frontend:dev`
#   nix-frontend-1step  the same with NIX_FRONTEND_GRAPH=0 (the single nix step)
# Scenarios, each the wall time of one `docker build`:
#   1 cold (after `docker builder prune -af`), 2 edit src/app-message,
#   3 append a comment to flake.nix, 4 edit src/liba-version, 5 no-op.
# Then a second clean build (prune, original sources) to compare image IDs.
# Then, where the engine can export a build cache (26.1-containerd), the `ci`
# scenario, as a CI job runs it: a seed build pushes to the local registry
# (scripts/registry.sh) and exports its cache (`--cache-to type=local,mode=max`);
# then, each on a fresh builder (`docker builder prune -af`) with that cache
# imported (`--cache-from`) and a push: (a) the same inputs, (b) an app-only
# change. It reports their times, whether nix ran, and the compressed bytes the
# registry stored anew for (b) (new blobs under its storage folder).
# Last, nix-frontend alone for linux/amd64 (native), linux/arm64 emulated
# (binfmt_misc + qemu-user-static, the arm64 builder local/nix:test-arm64) and
# linux/arm64 cross-compiled (run-on = "cross", the workload's app-arm64 built
# by the amd64 builder with Debian's aarch64 gcc, local/nix:test-cross): cold
# (empty build cache and store) and an app change (the median of three).
# Sizes are uncompressed layer tar bytes, measured from `docker save`
# (gzip blobs are decompressed); MB = 10^6 bytes.
#
# It prunes the engine's build cache, so run it where nobody else builds
# meanwhile; a WARNING under the table names other clients seen during the run.
# The markdown table goes to stdout, progress and notes to stderr.
# BENCH_KEEP=1 keeps the temp dir with every build log. BENCH_SECTIONS picks
# what runs, default "runs ci platforms" (the five approaches, the ci scenario,
# the per-platform rows).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }

workload=${WORKLOAD:-workload}
kind=""
while (($#)); do
  case $1 in
    --wide) workload=wide ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $kind ]] || usage; kind=$1 ;;
  esac
  shift
done
kind=${kind:-26.1-containerd}
[[ -f $here/$workload/flake.nix ]] || die "no workload bench/$workload"

# ------------------------------------------------------------------ engine
"$top/scripts/engine.sh" start "$kind" >/dev/null
eval "$("$top/scripts/engine.sh" env "$kind")"
# buildx adds a provenance attestation with build timestamps otherwise.
export BUILDX_NO_DEFAULT_ATTESTATIONS=1
export DOCKER_BUILDKIT=1
"$top/scripts/nix-image.sh" >&2
"$top/scripts/build-frontend.sh" >&2
engine_version=$(docker version -f '{{.Server.Version}}')
store=$(docker info -f '{{.Driver}}' 2>/dev/null || echo '?')

work=$(mktemp -d)
if [[ ${BENCH_KEEP:-0} == 1 ]]; then
  trap 'log "kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/logs"
cp -a "$here/$workload" "$work/pristine"
ctx="$work/ctx"
reset_ctx() { rm -rf "$ctx"; cp -a "$work/pristine" "$ctx"; }

# Scenario edits (fixed contents: every run does the same builds).
edit_app() { echo "app message v2" >"$ctx/src/app-message"; }
edit_flake() { printf '# an unrelated edit: a comment appended by bench/run.sh\n' >>"$ctx/flake.nix"; }
edit_lib() { echo "1.1.0" >"$ctx/src/liba-version"; }

# bench_file FILE: a Dockerfile of bench/, or one this run wrote (absolute).
bench_file() { if [[ $1 == /* ]]; then echo "$1"; else echo "$here/$1"; fi; }

# ------------------------------------------------------------------ measuring
plural() { if [[ $1 == 1 ]]; then echo layer; else echo layers; fi; }
mb() { awk -v b="$1" 'BEGIN { printf "%.3f", b / 1e6 }'; }

# layer_sizes TAG: "diffID bytes" per layer, bytes of the uncompressed layer tar.
layer_sizes() {
  local d l magic sum size
  d=$(mktemp -d -p "$work")
  docker save "$1" | tar -x -C "$d"
  # manifest.json (both save formats): [{"Config":…,"RepoTags":…,"Layers":["…",…]}]
  for l in $(grep -o '"Layers":\[[^]]*\]' "$d/manifest.json" | head -n1 | grep -o '"[^"]*"' | sed '1d; s/"//g'); do
    magic=$(head -c4 "$d/$l" | od -An -tx1 | tr -d ' \n')
    case $magic in
      1f8b*) sum=$(gzip -dc <"$d/$l" | sha256sum); size=$(gzip -dc <"$d/$l" | wc -c) ;;
      28b52ffd) die "zstd layer blob in $1: not supported" ;;
      *) sum=$(sha256sum <"$d/$l"); size=$(wc -c <"$d/$l") ;;
    esac
    printf 'sha256:%s %s\n' "${sum%% *}" "$size"
  done
  rm -rf "$d"
}
diffids() { docker image inspect -f '{{range .RootFS.Layers}}{{println .}}{{end}}' "$1" | sed '/^$/d'; }
image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# image_bytes TAG: sum of its uncompressed layers (checked against its diffIDs).
image_bytes() {
  local sizes want got
  sizes=$(layer_sizes "$1")
  want=$(diffids "$1"); got=$(cut -d' ' -f1 <<<"$sizes")
  [[ $want == "$got" ]] || die "$1: layers from docker save do not match its diffIDs"
  awk '{ s += $2 } END { print s + 0 }' <<<"$sizes"
}
# new_bytes TAG OLD_DIFFIDS: bytes of the layers of TAG whose diffID is not in OLD_DIFFIDS.
new_bytes() {
  local sizes
  sizes=$(layer_sizes "$1")
  [[ $(diffids "$1") == "$(cut -d' ' -f1 <<<"$sizes")" ]] || die "$1: layers from docker save do not match its diffIDs"
  awk 'NR == FNR { old[$1] = 1; next } !($1 in old) { s += $2; n++ } END { printf "%d %d\n", s + 0, n + 0 }' \
    <(printf '%s\n' "$2") - <<<"$sizes"
}

# shellcheck disable=SC2154 # approach, slug, file, tag: set by the main loop
# build NAME: one timed `docker build` of the current approach on $ctx; sets
# secs ("FAIL" when it fails) and checks that the image prints the current message.
build() {
  local name=$1 logf t0 t1 out want
  logf="$work/logs/$slug-$name.log"
  t0=$(date +%s.%N)
  if docker build --progress=plain -f "$(bench_file "$file")" -t "$tag" "${bargs[@]}" "$ctx" >"$logf" 2>&1; then
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  else
    secs=FAIL
    log "$approach, $name: docker build FAILED (log: $logf)"
    tail -n 25 "$logf" | sed 's/^/    | /' >&2
    return 0
  fi
  built_ids+=("$(image_id "$tag")")
  local built n
  built=$(grep -o "building '/nix/store/[^']*\.drv'" "$logf" | sed "s#.*/[a-z0-9]\{32\}-##; s#\.drv'##" | sort -u || true)
  n=$(grep -c . <<<"$built" || true)
  if ((n > 8)); then built="$n derivations ($(grep -v '^mod-' <<<"$built" | tr '\n' ' ')...)"; fi
  log "$approach, $name: ${secs}s; nix built: $(tr '\n' ' ' <<<"${built:-nothing}")"
  want=$(cat "$ctx/src/app-message")
  out=$(docker run --rm --label nixfe-bench=1 "$tag" 2>"$logf.run" | head -n1) || true
  if [[ $out != "$want" ]]; then
    log "$approach, $name: the image prints '$out', want '$want'"
    secs="$secs (wrong output)"
  fi
}

# ------------------------------------------------------------------ closure (the oracle: nix itself)
# Fractional: events of the setup above in the same second are not this run's.
t_start=$(date +%s.%N)
reset_ctx
log "workload $workload: measuring its runtime closure with nix in local/nix:test"
read -r closure_bytes app_bytes closure_paths < <(
  docker run --rm --label nixfe-bench=1 --network none -v "$ctx:/src:ro" local/nix:test sh -c '
    nix build --out-link /tmp/r path:/src#default >/dev/null 2>&1 || exit 1
    c=$(nix path-info -S /tmp/r 2>/dev/null | awk "{ print \$2 }")
    a=$(nix path-info -s /tmp/r 2>/dev/null | awk "{ print \$2 }")
    n=$(nix path-info -r /tmp/r 2>/dev/null | wc -l)
    echo "$c $a $n"'
) || die "nix build of the workload failed"
log "closure: $closure_paths paths, $(mb "$closure_bytes") MB; app path $app_bytes bytes"

# ------------------------------------------------------------------ the runs
# floor: the cache-mount Dockerfile behind `# syntax=local/nix-frontend:floor`,
# the frontend image with NIX_FRONTEND_FORWARD=dockerfile.v0 (made by
# scripts/build-frontend.sh), which hands the
# build to the engine's own Dockerfile frontend: what any gateway frontend
# pays over a plain Dockerfile.
# scripts/build-frontend.sh (above) made local/nix-frontend:floor.
{ echo '# syntax=local/nix-frontend:floor'; cat "$here/dockerfile-cache.Dockerfile"; } >"$work/floor.Dockerfile"
sections=" ${BENCH_SECTIONS:-runs ci platforms} "
want() { [[ $sections == *" $1 "* ]]; }
approaches=("dockerfile" "dockerfile+cache" "floor" "nix-frontend" "nix-frontend-1step")
want runs || approaches=()
files=("dockerfile.Dockerfile" "dockerfile-cache.Dockerfile" "$work/floor.Dockerfile" "nix-frontend.Dockerfile" "nix-frontend.Dockerfile")
# Build args per approach: nix-frontend-1step is the single-step design
# (one nix step, the store in the cache mount only), kept for comparison.
approach_args=("" "" "" "" "--build-arg=NIX_FRONTEND_GRAPH=0")
declare -A row img_b app_new tsec
built_ids=()
rows=()
names=("cold" "app change" "flake.nix edit" "lib bump" "no-op")
for i in "${!approaches[@]}"; do
  approach=${approaches[$i]} file=${files[$i]}
  read -ra bargs <<<"${approach_args[$i]}"
  slug=${approach//+/-}
  tag="nixfe-bench-$slug:$workload"
  log "== $approach"
  reset_ctx
  docker builder prune -af >/dev/null

  build 1-cold; tsec[$approach,0]=$secs
  first_id=none img=0 before=""
  if [[ $secs != FAIL ]]; then
    first_id=$(image_id "$tag")
    before=$(diffids "$tag")
    img=$(image_bytes "$tag")
  fi

  edit_app; build 2-app-change; tsec[$approach,1]=$secs
  app_cell=FAIL app_new[$approach]=-1
  if [[ $secs != FAIL && -n $before ]]; then
    read -r nb nl < <(new_bytes "$tag" "$before")
    app_new[$approach]=$nb app_cell="$(mb "$nb") ($nl $(plural "$nl"))"
  fi

  edit_flake; build 3-flake-edit; tsec[$approach,2]=$secs
  before=$(diffids "$tag" 2>/dev/null || true)
  edit_lib; build 4-lib-bump; tsec[$approach,3]=$secs
  lib_cell=FAIL
  if [[ $secs != FAIL && -n $before ]]; then
    read -r nb nl < <(new_bytes "$tag" "$before")
    lib_cell="$(mb "$nb") ($nl $(plural "$nl"))"
  fi

  build 5-noop; tsec[$approach,4]=$secs

  # The second clean build: original sources, empty build cache.
  reset_ctx
  docker builder prune -af >/dev/null
  build 6-clean-rebuild
  second_id=$(image_id "$tag" 2>/dev/null || echo none)
  if [[ $secs == FAIL || $first_id == none ]]; then same=FAIL
  elif [[ $first_id == "$second_id" ]]; then same=yes
  else same=no; fi
  log "$approach: image IDs of the two clean builds: $first_id $second_id"

  img_b[$approach]=$img
  row[$approach]="| $approach | ${tsec[$approach,0]} | ${tsec[$approach,1]} | ${tsec[$approach,2]} | ${tsec[$approach,3]} | ${tsec[$approach,4]} | $(mb "$img") | $app_cell | $lib_cell | $same |"
  rows+=("$approach")
done

# ------------------------------------------------------------------ ci
ci_rows=()
own_ids=()
if ! want ci; then
  log "ci scenario skipped: not in BENCH_SECTIONS"
elif [[ $kind == 26.1-containerd ]]; then
  # A registry of this run's own (empty storage, its own port): images are
  # reproducible, so blobs an earlier run pushed would hide what this one uploads.
  reg_env=(NIXFE_STATE="$work/registry-state" NIXFE_REGISTRY_PORT="${BENCH_REGISTRY_PORT:-5099}")
  env "${reg_env[@]}" "$top/scripts/registry.sh" start >/dev/null || die "cannot start the bench registry"
  eval "$(env "${reg_env[@]}" "$top/scripts/registry.sh" env)"
  # The blobs the registry stores: "digest bytes", one per line.
  reg_blobs() {
    find "$NIXFE_REGISTRY_DATA/docker/registry/v2/blobs" -type f -name data -printf '%h %s\n' 2>/dev/null |
      sed 's#.*/##' | sort
  }
  # ci_build NAME REF [buildx args…]: one timed build with --push; sets secs and nix_ran.
  ci_build() {
    local name=$1 ref=$2 logf t0 t1; shift 2
    logf="$work/logs/$slug-ci-$name.log"
    t0=$(date +%s.%N)
    if docker buildx build --progress=plain --push -f "$(bench_file "$file")" -t "$ref" "${bargs[@]}" "$@" "$ctx" >"$logf" 2>&1; then
      t1=$(date +%s.%N)
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    else
      secs=FAIL
      log "$approach, ci $name: FAILED (log: $logf)"
      tail -n 25 "$logf" | sed 's/^/    | /' >&2
    fi
    # What nix built, by name (the Dockerfiles' `nix build` logs the same lines).
    nix_ran=$({ grep -o "building '/nix/store/[^']*\.drv'" "$logf" || true; } | sed "s#.*/[a-z0-9]\{32\}-##; s#\.drv'##" |
      sort -u | { grep -v '^workload-shell' || true; } | xargs)
    nix_ran=${nix_ran:-nothing}
    local n
    n=$(wc -w <<<"$nix_ran")
    if ((n > 8)); then nix_ran="$n derivations"; fi
    log "$approach, ci $name: ${secs}s, nix built: $nix_ran"
  }
  # cache_new OLD NEW: "MB (N blobs)" of the blobs of the local cache NEW
  # that OLD lacks (what the export added).
  cache_new() {
    local b
    b=$(comm -13 <(find "$1/blobs" -type f -printf '%f %s\n' 2>/dev/null | sort) \
      <(find "$2/blobs" -type f -printf '%f %s\n' | sort) | awk '{ s += $2; n++ } END { printf "%d %d", s + 0, n + 0 }')
    echo "$(mb "${b% *}") (${b#* } blobs)"
  }
  # manifest digest of a pushed tag, from the registry's own records.
  reg_manifest() {
    local repo=${1%:*} t=${1##*:}
    cat "$NIXFE_REGISTRY_DATA/docker/registry/v2/repositories/$repo/_manifests/tags/$t/current/link" 2>/dev/null
  }
  for i in "${!approaches[@]}"; do
    approach=${approaches[$i]} file=${files[$i]}
    read -ra bargs <<<"${approach_args[$i]}"
    slug=${approach//+/-}
    log "== ci: $approach"
    repo="nixfe-bench/$slug-$workload"
    cache="$work/ci-cache-$slug"
    reset_ctx
    # Fresh tags per run, so "new blobs" are this run's.
    run_id=$(date +%s)
    docker builder prune -af >/dev/null
    ci_build seed "$NIXFE_REGISTRY/$repo:seed-$run_id" --cache-to "type=local,dest=$cache,mode=max"
    seed_m=$(reg_manifest "$repo:seed-$run_id")
    docker builder prune -af >/dev/null
    ci_build unchanged "$NIXFE_REGISTRY/$repo:same-$run_id" --cache-from "type=local,src=$cache"
    t_same=$secs nix_same=$nix_ran
    same_m=$(reg_manifest "$repo:same-$run_id")
    if [[ -n $seed_m && $seed_m == "$same_m" ]]; then same_cell=yes; else same_cell=no; fi
    edit_app
    docker builder prune -af >/dev/null
    before=$(reg_blobs)
    ci_build app-change "$NIXFE_REGISTRY/$repo:app-$run_id" --cache-from "type=local,src=$cache" \
      --cache-to "type=local,dest=$cache-app,mode=max"
    t_app=$secs nix_app=$nix_ran
    read -r nb nn < <(comm -13 <(printf '%s\n' "$before") <(reg_blobs) | awk '{ s += $2; n++ } END { printf "%d %d\n", s + 0, n + 0 }')
    export_app=$(cache_new "$cache" "$cache-app")
    # The next job: a library bump, importing the app-change job's cache.
    edit_lib
    docker builder prune -af >/dev/null
    ci_build lib-bump "$NIXFE_REGISTRY/$repo:lib-$run_id" --cache-from "type=local,src=$cache-app"
    t_lib=$secs nix_lib=$nix_ran
    ci_rows+=("| $approach | $t_same | $nix_same | $same_cell | $t_app | $nix_app | $(mb "$nb") ($nn blobs) | $export_app | $t_lib | $nix_lib |")
    for t in seed same app lib; do
      own_ids+=("$(image_id "$NIXFE_REGISTRY/$repo:$t-$run_id" 2>/dev/null || true)")
      docker rmi -f "$NIXFE_REGISTRY/$repo:$t-$run_id" >/dev/null 2>&1 || true
    done
  done
  env "${reg_env[@]}" "$top/scripts/registry.sh" stop >/dev/null
else
  log "ci scenario skipped: the $kind engine cannot export a build cache (docker driver on the classic store)"
fi

# ------------------------------------------------------------------ platforms
plat_rows=()
declare -A plat_secs
# amd64 native, arm64 emulated (the arm64 builder), arm64 cross-compiled by
# the amd64 cross builder (run-on = "cross").
platforms=(amd64 arm64 arm64-cross)
if ! want platforms; then
  platforms=()
elif ! docker buildx version >/dev/null 2>&1; then
  log "platforms skipped: no buildx for the $kind engine"; platforms=()
else
  "$top/scripts/nix-image.sh" nix-arm64 >&2
  "$top/scripts/nix-image.sh" nix-cross >&2
fi
for variant in "${platforms[@]}"; do
  p=${variant%-cross}
  approach="nix-frontend ($variant)" slug="platform-$variant" tag="nixfe-bench-platform:$variant"
  case $variant in
    amd64) builder=local/nix:test how=native flake=.#default nix='' ;;
    arm64) builder=local/nix:test-arm64 how="emulated (qemu-aarch64)" flake=.#default nix='' ;;
    arm64-cross)
      builder=local/nix:test-cross how="cross-compiled (native nix, aarch64 gcc)"
      flake='.#app-${TARGETARCH}' nix=$'[nix]\nrun-on = "cross"\n' ;;
  esac
  printf '# syntax=local/nix-frontend:dev\nflake = "%s"\nbuilder = "%s"\n%s' "$flake" "$builder" "$nix" >"$work/platform-$variant.toml"
  reset_ctx
  docker builder prune -af >/dev/null
  # Cold once; the app change three times (three messages), reported as
  # the median: one app change is about a second, within this machine's
  # noise of a few tenths.
  changes=()
  for name in cold app-change-1 app-change-2 app-change-3; do
    [[ $name == app-change-* ]] && echo "app message ${name#app-change-}" >"$ctx/src/app-message"
    logf="$work/logs/$slug-$name.log"
    t0=$(date +%s.%N)
    if docker buildx build --progress=plain --platform "linux/$p" -f "$work/platform-$variant.toml" -t "$tag" --load "$ctx" >"$logf" 2>&1; then
      secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
      want=$(cat "$ctx/src/app-message")
      out=$(docker run --rm --label nixfe-bench=1 --platform "linux/$p" "$tag" 2>/dev/null | head -n1) || true
      [[ $out == "$want" ]] || secs="$secs (wrong output)"
    else
      secs=FAIL
      tail -n 25 "$logf" | sed 's/^/    | /' >&2
    fi
    log "$approach, $name: ${secs}s"
    if [[ $name == cold ]]; then pt=("$secs"); else changes+=("$secs"); fi
  done
  # The median of the three, unless one failed (then that one).
  bad=$(printf '%s\n' "${changes[@]}" | grep -m1 -E 'FAIL|wrong' || true)
  pt+=("${bad:-$(printf '%s\n' "${changes[@]}" | sort -n | sed -n 2p)}")
  own_ids+=("$(image_id "$tag" 2>/dev/null || true)")
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  plat_rows+=("| linux/$p | $how | ${pt[0]} | ${pt[1]} |")
  plat_secs[$variant,0]=${pt[0]} plat_secs[$variant,1]=${pt[1]}
done

# ------------------------------------------------------------------ report
# Other clients of this engine (tests, another benchmark) disturb timings, and
# a `docker builder prune` of theirs empties our caches mid-run. Builds and
# prunes leave no events, but their containers and image removals do.
foreign=$(docker events --since "$t_start" --until "$(date +%s)" --filter type=container --filter type=image \
  --format '{{.Type}} {{.Action}} {{index .Actor.Attributes "name"}} {{index .Actor.Attributes "image"}} {{index .Actor.Attributes "nixfe-bench"}}' |
  awk '($1 == "container" && $2 == "create" && $5 != "1") ||
       ($1 == "image" && $2 != "save" && $3 !~ /nixfe-bench/)' |
  grep -vF -f <(printf '%s\n' "${own_ids[@]:-none}" | sed '/^$/d') | sort | uniq -c | sort -rn || true)
if ((${#rows[@]})); then
  echo "| approach | cold s | app change s | flake.nix edit s | lib bump s | no-op s | image MB | new MB after app change | new MB after lib bump | same ID on clean rebuild |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for a in "${rows[@]}"; do echo "${row[$a]}"; done
  echo
fi
echo "Engine $kind (Docker $engine_version, storage driver $store), $(date -u +%Y-%m-%d), workload bench/$workload:" \
  "runtime closure $closure_paths paths, $(mb "$closure_bytes") MB (nix path-info -S); app path $app_bytes bytes." \
  "Sizes: uncompressed layer tars, MB = 10^6 bytes."

if ((${#ci_rows[@]})); then
  echo
  echo "CI: a fresh builder (docker builder prune -af) with the seed build's cache imported (--cache-from type=local, exported with mode=max), each build pushing to the local registry:"
  echo
  echo "| approach | ci unchanged s | nix built | same manifest | ci app change s | nix built | new MB in the registry after the app change | the app change's cache export adds | ci lib bump s | nix built |"
  echo "|---|---:|---|---|---:|---|---:|---:|---:|---|"
  for r in "${ci_rows[@]}"; do echo "$r"; done
fi

((${#plat_rows[@]})) && echo
((${#plat_rows[@]})) && echo "Platforms: nix-frontend for each platform on this amd64 engine, cold (empty build cache and store) and an app change (the median of three):"
if ((${#plat_rows[@]})); then
  echo
  echo "| platform | how it runs | cold s | app change s |"
  echo "|---|---|---:|---:|"
  for r in "${plat_rows[@]}"; do echo "$r"; done
fi

# Drop the images of the intermediate scenarios (left dangling by the retags);
# the last image of each approach keeps its tag nixfe-bench-APPROACH:WORKLOAD.
keep=$(for a in "${approaches[@]}"; do image_id "nixfe-bench-${a//+/-}:$workload" 2>/dev/null || true; done)
for id in $(printf '%s\n' "${built_ids[@]}" | sort -u); do
  grep -qx "$id" <<<"$keep" && continue
  [[ $(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null) == 0 ]] || continue
  docker rmi "$id" >/dev/null 2>&1 || true
done

if [[ -n $foreign ]]; then
  echo
  echo "WARNING: other clients used this engine during the run, so timings and cache hits may be disturbed:" \
    "$(awk '{ $1 = $1 "x"; print }' <<<"$foreign" | head -n 6 | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
  log "other clients used the engine during the run:"
  while read -r line; do log "  $line"; done <<<"$foreign"
fi

# Targets for nix-frontend.
verdict() { if (($1)); then echo met; else echo MISSED; fi; }
if ((${#rows[@]})); then
  limit=$((app_bytes + 65536))
  fe_app=${app_new[nix-frontend]} fe_img=${img_b[nix-frontend]}
  echo
  echo "Targets (nix-frontend):"
  if ((fe_app < 0)); then
    echo "- new bytes after app change ≤ app path + 64 KiB: not measured (a build failed)"
  else
    echo "- new bytes after app change ≤ app path + 64 KiB: $fe_app ≤ $limit: $(verdict "$((fe_app <= limit))")"
  fi
  img_limit=$(awk -v c="$closure_bytes" 'BEGIN { printf "%d", c * 1.01 }')
  if ((fe_img == 0)); then
    echo "- image ≤ closure + 1 %: not measured (the cold build failed)"
  else
    echo "- image ≤ closure + 1 %: $fe_img ≤ $img_limit bytes: $(verdict "$((fe_img <= img_limit))")"
  fi
  slower=()
  for k in 0 1 2 3 4; do
    f=${tsec[nix-frontend,$k]} c=${tsec[dockerfile+cache,$k]}
    if [[ $f == FAIL* || $f == *wrong* ]]; then
      slower+=("${names[$k]} ($f)")
    elif [[ $c != FAIL* ]] && awk -v a="${f%% *}" -v b="${c%% *}" 'BEGIN { exit !(a > b) }'; then
      slower+=("${names[$k]} ($f s > $c s)")
    fi
  done
  if ((${#slower[@]})); then
    echo "- every scenario ≤ dockerfile+cache: MISSED: $(printf '%s; ' "${slower[@]}" | sed 's/; $//')"
  else
    echo "- every scenario ≤ dockerfile+cache: met"
  fi
fi

# Target for cross-compilation: arm64 by run-on = "cross" within 1.5x of
# amd64 native, cold and app change.
if [[ -n ${plat_secs[amd64,0]:-} && -n ${plat_secs[arm64-cross,0]:-} ]]; then
  echo
  echo "Target (run-on = \"cross\"):"
  for k in 0 1; do
    a=${plat_secs[amd64,$k]} x=${plat_secs[arm64-cross,$k]} name=$([[ $k == 0 ]] && echo cold || echo "app change")
    if [[ $a == FAIL* || $a == *wrong* || $x == FAIL* || $x == *wrong* ]]; then
      echo "- arm64 cross ≤ 1.5 × amd64 native, $name: not measured (a build failed or printed the wrong output)"
    else
      ratio=$(awk -v a="$a" -v x="$x" 'BEGIN { printf "%.2f", x / a }')
      echo "- arm64 cross ≤ 1.5 × amd64 native, $name: $x s / $a s = ${ratio}×: $(verdict "$(awk -v r="$ratio" 'BEGIN { print (r <= 1.5) }')")"
    fi
  done
fi
