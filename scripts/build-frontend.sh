#!/usr/bin/env bash
# Builds the static nix-frontend binaries and loads them as an image into the
# engine DOCKER_HOST names (call after `eval "$(scripts/engine.sh env KIND)"`),
# or into KIND's engine, started if needed:
#
#   scripts/build-frontend.sh [KIND]
#
# Where the engine can hold an image index (the containerd image store, with
# buildx), the image is linux/amd64 + linux/arm64: the arm64 binary comes from
# scripts/build-cross.sh, and buildx puts both FROM scratch images in one index
# (no RUN, so no emulation). Elsewhere (Docker 20.10, 26.1 classic store) it is
# linux/amd64 only. Offline: nothing is pulled.
# Also tags NAME:floor, the bench's floor (see make_floor below).
# Env: NIXFE_FRONTEND_IMAGE (tag, default local/nix-frontend:dev),
#      NIXFE_FRONTEND_PLATFORMS (linux/amd64 to skip arm64 on any engine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib-env.sh
. "$here/lib-env.sh"

if (($# > 1)); then die "usage: build-frontend.sh [KIND]"; fi
if (($# == 1)); then
  "$here/engine.sh" start "$1" >/dev/null
  eval "$("$here/engine.sh" env "$1")"
fi

tag="${NIXFE_FRONTEND_IMAGE:-local/nix-frontend:dev}"
# The most a platform's image may weigh (bytes of its layers).
max_bytes=$((15 * 1000 * 1000))

# An image index needs the containerd image store and buildx.
multi_platform_engine() {
  [[ $(docker info -f '{{json .DriverStatus}}' 2>/dev/null) == *io.containerd.snapshotter* ]] &&
    docker buildx version >/dev/null 2>&1
}
if [[ -n ${NIXFE_FRONTEND_PLATFORMS:-} ]]; then
  platforms=$NIXFE_FRONTEND_PLATFORMS
elif multi_platform_engine; then
  platforms=linux/amd64,linux/arm64
else
  platforms=linux/amd64
fi
case $platforms in
  linux/amd64 | linux/amd64,linux/arm64) ;;
  *) die "NIXFE_FRONTEND_PLATFORMS: linux/amd64 or linux/amd64,linux/arm64, not $platforms" ;;
esac

cd "$top"
# crt-static only for the target, not for build scripts: hence --target.
log "cargo build --release (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked --target x86_64-unknown-linux-gnu >&2
[[ $platforms == *arm64* ]] && "$here/build-cross.sh"

# The build context: one binary per architecture, where frontend.Dockerfile's
# prebuilt stage picks it by TARGETARCH.
# A fresh directory per run: scripts on other engines may build at the same time.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dist="$tmp/context"
sums=""
for p in ${platforms//,/ }; do
  arch=${p#linux/}
  case $arch in amd64) triple=x86_64-unknown-linux-gnu ;; arm64) triple=aarch64-unknown-linux-gnu ;; esac
  mkdir -p "$dist/$arch"
  cp "target/$triple/release/nix-frontend" "$dist/$arch/nix-frontend"
  sums+="$p $(sha256sum "$dist/$arch/nix-frontend" | cut -d' ' -f1)"$'\n'
done

# Skip the image build when this engine already has the same binaries.
sum=$(printf '%s' "$sums" | sha256sum | cut -c1-32)
have=$(docker image inspect -f '{{ index .Config.Labels "org.nix-frontend.dev.binary" }}' "$tag" 2>/dev/null || true)
# The bench's floor (and its e2e test): the same image with
# NIX_FRONTEND_FORWARD set, which hands every build to the engine's own
# Dockerfile frontend. Made by a commit, not a build: nothing to solve.
floor=${tag%:*}:floor
make_floor() {
  local cid have_floor
  # The commit keeps the dev image's label: the same binaries, nothing to do.
  have_floor=$(docker image inspect -f '{{ index .Config.Labels "org.nix-frontend.dev.binary" }}' "$floor" 2>/dev/null || true)
  [[ $have_floor != "$sum" ]] || return 0
  cid=$(docker create "$tag" 2>/dev/null) || die "cannot create a container of $tag"
  docker commit --change 'ENV NIX_FRONTEND_FORWARD=dockerfile.v0' "$cid" "$floor" >/dev/null ||
    die "cannot make $floor"
  docker rm "$cid" >/dev/null
}
if [[ $have == "$sum" ]]; then
  log "$tag ($platforms) is up to date"
  make_floor
  exit 0
fi
log "docker build $tag ($platforms)"
if [[ $platforms == *,* ]]; then
  # No provenance attestation: it carries build times, and a local image
  # needs none (the release workflow adds SBOM and provenance).
  docker buildx build -q --load --provenance=false --platform "$platforms" \
    -f "$top/frontend.Dockerfile" --target prebuilt \
    --label "org.nix-frontend.dev.binary=$sum" -t "$tag" "$dist" >&2
else
  docker build -q -f "$top/frontend.Dockerfile" --target prebuilt \
    --label "org.nix-frontend.dev.binary=$sum" -t "$tag" "$dist" >&2
fi

# What each platform's image weighs: its layers, as a pull moves them and
# unpacked (`docker save` holds every platform's manifest).
apt_install jq
saved="$tmp/saved"
mkdir -p "$saved"
docker save "$tag" | tar -x -C "$saved"
blob() { printf '%s/blobs/%s\n' "$saved" "${1/://}"; }
# Layer sizes, one "stored unpacked" pair a line.
layer_sizes() {
  local f
  for f in "$@"; do
    if [[ $(head -c2 "$f" | od -An -tx1 | tr -d ' ') == 1f8b ]]; then
      echo "$(stat -c %s "$f") $(gzip -dc "$f" | wc -c)"
    else
      echo "$(stat -c %s "$f") $(stat -c %s "$f")"
    fi
  done
}
report=""
add_image() { # PLATFORM LAYER-FILE…
  local plat=$1 stored=0 unpacked=0 s u; shift
  while read -r s u; do stored=$((stored + s)) unpacked=$((unpacked + u)); done < <(layer_sizes "$@")
  report+="$plat $stored $unpacked"$'\n'
}
if [[ -f $saved/index.json ]]; then
  # OCI layout (containerd store; classic store since Docker 25): an index,
  # whose entry is a manifest or, for several platforms or with a provenance
  # attestation (docker build adds one on the containerd store), another
  # index. Attestation manifests (platform unknown/unknown) are not images.
  images='.manifests[] | select(.annotations["vnd.docker.reference.type"] != "attestation-manifest") | .digest'
  for d in $(jq -r "$images" "$saved/index.json"); do
    if jq -e '.manifests' "$(blob "$d")" >/dev/null; then ms=$(jq -r "$images" "$(blob "$d")"); else ms=$d; fi
    for m in $ms; do
      cfg=$(blob "$(jq -r '.config.digest' "$(blob "$m")")")
      mapfile -t layers < <(jq -r '.layers[].digest' "$(blob "$m")" | while read -r l; do blob "$l"; done)
      add_image "$(jq -r '"\(.os)/\(.architecture)"' "$cfg")" "${layers[@]}"
    done
  done
else
  # Docker 20.10: manifest.json names the config and the layer tars.
  cfg="$saved/$(jq -r '.[0].Config' "$saved/manifest.json")"
  mapfile -t layers < <(jq -r '.[0].Layers[]' "$saved/manifest.json" | sed "s#^#$saved/#")
  add_image "$(jq -r '"\(.os)/\(.architecture)"' "$cfg")" "${layers[@]}"
fi
want=$(tr ',' '\n' <<<"$platforms" | sort)
got=$(printf '%s' "$report" | cut -d' ' -f1 | sort)
[[ $got == "$want" ]] || die "$tag holds platforms [${got//$'\n'/ }], expected [${want//$'\n'/ }]"
while read -r plat stored unpacked; do
  [[ -n $plat ]] || continue
  ((unpacked > 0)) || die "cannot measure $tag $plat (no layers found in docker save)"
  log "built $tag $plat: $((unpacked / 1024)) KiB ($((stored / 1024)) KiB stored)"
  ((unpacked <= max_bytes)) || die "$tag $plat weighs $unpacked bytes, over the $max_bytes limit"
done <<<"$report"
make_floor
log "made $floor (forwards to dockerfile.v0)"
