#!/usr/bin/env bash
# The fresh-CI spike: the engine facts the store redesign rests on, measured
# on one engine (default 26.1-containerd, the one that exports a cache).
#
#   bench/spike-warm-ci.sh [KIND]
#
# 1. Content keys across an import: a step that mounts a file of an earlier
#    step read-only, where the earlier step re-runs (its input changed) but
#    writes the same bytes. Is the mounting step a cache hit (a) on the same
#    builder, (b) on a fresh builder (`docker builder prune -af`) importing a
#    `mode=max` cache of type=local, (c) the same with type=registry?
# 2. What one more exec costs: N chained `RUN`s that each write a file (so
#    each result is committed) against one, no cache, no image made.
# 3. What stacking N single-file results costs (N = 10, 100, 300): `COPY
#    --link` (a MergeOp where the engine has it) against plain chained
#    copies, then one exec on top that reads them all; from an empty cache,
#    kept in the build cache only (no image export).
# 4. Moving registrations: `nix-store --dump-db` of N paths and
#    `--load-db` into an empty store, and `--register-validity` of the same
#    dump, inside the builder image.
# Every number is the wall time of one run. The markdown tables go to
# stdout, progress to stderr. It prunes the engine's build cache: run it
# where nobody else builds meanwhile.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
log() { printf '[spike] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kind=${1:-26.1-containerd}
"$top/scripts/engine.sh" start "$kind" >/dev/null
eval "$("$top/scripts/engine.sh" env "$kind")"
export BUILDX_NO_DEFAULT_ATTESTATIONS=1 DOCKER_BUILDKIT=1
"$top/scripts/nix-image.sh" >&2
builder=local/nix:test
work=$(mktemp -d)
stop_registry=0
cleanup() {
  if ((stop_registry)); then "$top/scripts/registry.sh" stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# timed LOG docker build ARGS…: prints the build's seconds; the log in LOG.
timed() {
  local out=$1 t0; shift
  t0=$(now)
  "$@" >"$out" 2>&1 || { tail -n 20 "$out" >&2; die "build failed: $*"; }
  secs "$t0" "$(now)"
}
# Whether the build in LOG ran the step that prints MARK (no: it came from
# the cache, or from an import): a line of the step's output ("#7 0.12 MARK"),
# not the step's name, which holds the command too.
ran() { grep -Eq "^#[0-9]+ [0-9.]+ $2\$" "$1" && echo ran || echo "not run"; }

exports_cache=0
[[ $(docker info -f '{{.DriverStatus}}' 2>/dev/null) == *containerd* ]] && exports_cache=1

# ------------------------------------------------------------ 1 content keys
log "1: content keys across a cache import"
ck="$work/ck"
mkdir -p "$ck/src"
cat >"$ck/Dockerfile" <<EOF
FROM $builder AS list
COPY src /src
# Re-runs whenever src changes; writes the same bytes unless src/keep does.
RUN echo "list: ran" && cat /src/keep > /list
FROM $builder
RUN --mount=type=bind,from=list,source=/list,target=/list sh -c 'echo "user: ran"; cp /list /copy'
EOF
echo keep >"$ck/src/keep"
echo one >"$ck/src/other"
ck_rows=()
ck_case() { # ck_case NAME [cache args for the second build]
  local name=$1; shift
  docker builder prune -af >/dev/null
  echo "one $name" >"$ck/src/other"
  local to=() from=()
  case $name in
    local) to=(--cache-to "type=local,dest=$work/ck-cache,mode=max"); from=(--cache-from "type=local,src=$work/ck-cache") ;;
    registry)
      to=(--cache-to "type=registry,ref=$NIXFE_REGISTRY/spike/ck:cache,mode=max")
      from=(--cache-from "type=registry,ref=$NIXFE_REGISTRY/spike/ck:cache") ;;
  esac
  timed "$work/ck-1.log" docker buildx build --progress=plain "${to[@]}" "$ck" >/dev/null
  [[ $name == same-builder ]] || docker builder prune -af >/dev/null
  echo "two $name" >"$ck/src/other"
  timed "$work/ck-2.log" docker buildx build --progress=plain "${from[@]}" "$ck" >/dev/null
  ck_rows+=("| $name | $(ran "$work/ck-2.log" 'list: ran') | $(ran "$work/ck-2.log" 'user: ran') |")
}
ck_case same-builder
if ((exports_cache)); then
  if ! "$top/scripts/registry.sh" status >/dev/null 2>&1; then
    "$top/scripts/registry.sh" start >/dev/null; stop_registry=1
  fi
  eval "$("$top/scripts/registry.sh" env)"
  ck_case local
  ck_case registry
else
  ck_rows+=("| local, registry | not measured: this engine's docker driver cannot export a cache | |")
fi

# ------------------------------------------------------------ 2 one exec
log "2: the cost of one more exec"
ex="$work/ex"
mkdir -p "$ex"
n_exec=20
{ echo "FROM $builder"; echo "RUN true"; } >"$ex/one.Dockerfile"
{ echo "FROM $builder"; for i in $(seq 1 $((n_exec + 1))); do echo "RUN echo $i > /n"; done; } >"$ex/many.Dockerfile"
docker builder prune -af >/dev/null
docker build -q -f "$ex/one.Dockerfile" "$ex" >/dev/null # the image unpacked once
# Kept in the build cache only: each step's result is committed, as a
# derivation's would be, but no image is made of them.
t1=$(timed "$work/ex-1.log" docker buildx build --no-cache --progress=plain --output type=cacheonly -f "$ex/one.Dockerfile" "$ex")
tn=$(timed "$work/ex-n.log" docker buildx build --no-cache --progress=plain --output type=cacheonly -f "$ex/many.Dockerfile" "$ex")
per_exec=$(awk -v a="$t1" -v b="$tn" -v n=$n_exec 'BEGIN { printf "%.3f", (b - a) / n }')

# ------------------------------------------------------------ 3 stacking
log "3: stacking N results (COPY --link against chained copies)"
st_rows=()
for n in 10 100 300; do
  d="$work/st-$n"; mkdir -p "$d/f"
  for i in $(seq 1 "$n"); do echo "file $i" >"$d/f/$i"; done
  for link in --link ""; do
    {
      for i in $(seq 1 "$n"); do echo "FROM scratch AS s$i"; echo "COPY f/$i /p/$i"; done
      echo "FROM $builder"
      for i in $(seq 1 "$n"); do echo "COPY $link --from=s$i /p /p"; done
      echo 'RUN ls /p | wc -l > /count'
    } >"$d/Dockerfile$link"
    docker builder prune -af >/dev/null
    docker build -q -f "$ex/one.Dockerfile" "$ex" >/dev/null
    # Not exported as an image: the stack is an exec's input here, not
    # N image layers (dockerd 26.1 timed out making an image of 300).
    t=$(timed "$work/st.log" docker buildx build --progress=plain --output type=cacheonly -f "$d/Dockerfile$link" "$d")
    if [[ -n $link ]]; then tl=$t; else tc=$t; fi
  done
  st_rows+=("| $n | $tl | $tc |")
done

# ------------------------------------------------------------ 4 registrations
log "4: nix-store --dump-db / --load-db / --register-validity"
db_rows=()
for n in 10 100 300; do
  out=$(docker run --rm --network=none "$builder" sh -ec '
    n=$1
    mkdir -p /tmp/f
    i=0; while [ $i -lt "$n" ]; do echo "path $i" > /tmp/f/p$i; i=$((i+1)); done
    paths=$(nix-store --add /tmp/f/p*)
    ms() { date +%s%N; }
    t0=$(ms); nix-store --dump-db $paths > /tmp/dump; t1=$(ms)
    NIX_STATE_DIR=/tmp/s1 nix-store --load-db < /tmp/dump; t2=$(ms)
    NIX_STATE_DIR=/tmp/s2 nix-store --init 2>/dev/null || true
    NIX_STATE_DIR=/tmp/s2 nix-store --register-validity --hash-given < /tmp/dump; t3=$(ms)
    echo "$(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 )) $(( (t3 - t2) / 1000000 ))"
  ' spike "$n" 2>"$work/db.err") || { cat "$work/db.err" >&2; die "registration timing failed"; }
  read -r dump load reg <<<"$out"
  db_rows+=("| $n | $dump | $load | $reg |")
done

# ------------------------------------------------------------ tables
ver=$(docker version -f '{{.Server.Version}}')
echo "Engine $kind (Docker $ver), $(date -u +%F), one run each."
echo
echo "1. A step mounting a file read-only, after the step that writes it re-ran with the same bytes:"
echo
echo "| second build | writer step | mounting step |"
echo "|---|---|---|"
printf '%s\n' "${ck_rows[@]}"
echo
echo "2. One more exec (container start, no cache): ${per_exec} s ($n_exec extra \`RUN\`s: $tn s against $t1 s for one)."
echo
echo "3. N single-file results stacked under one exec, from an empty cache (s):"
echo
echo "| N | COPY --link (MergeOp where enabled) | chained COPY |"
echo "|---:|---:|---:|"
printf '%s\n' "${st_rows[@]}"
echo
echo "4. Registrations of N store paths inside the builder image (ms):"
echo
echo "| N | --dump-db | --load-db (empty store) | --register-validity (empty store) |"
echo "|---:|---:|---:|---:|"
printf '%s\n' "${db_rows[@]}"
