#!/usr/bin/env bash
# Build the test images without a registry, into the engine named by the
# current DOCKER_HOST:
#
#   eval "$(scripts/engine.sh env KIND)" && scripts/nix-image.sh [nix|nix-arm64|nix-cross|base|all|push]
#
#   nix        local/nix:test, the Nix builder image (the default), linux/amd64
#   nix-arm64  local/nix:test-arm64, the same recipe for linux/arm64: its rootfs
#              is made under qemu (scripts/binfmt.sh), and it runs under qemu
#   nix-cross  local/nix:test-cross, the builder plus Debian's aarch64 cross C
#              compiler and static C library (gcc-aarch64-linux-gnu,
#              libc6-dev-arm64-cross), linux/amd64: for `run-on = "cross"`
#   base       local/debian:test, a plain Debian base with a shell and passwd tools
#              (stands in for ubuntu:24.04 in the examples: nothing can be pulled)
#   all        nix and base
#   push [REGISTRY]
#              nix and nix-arm64 as one multi-platform index
#              REGISTRY/nix-frontend/nix:test (REGISTRY defaults to $NIXFE_REGISTRY,
#              e.g. localhost:5000; plain HTTP); each platform's image is pushed
#              first as :test-amd64 and :test-arm64
#
# A trixie rootfs is made once with mmdebstrap and cached in the state dir,
# keyed on a hash of its recipe; `docker import` runs only if the engine lacks
# the image with that recipe's label.
# Env: NIXFE_STATE (state dir), NIXFE_NIX_IMAGE (tag, default local/nix:test;
# the arm64 image is its tag with -arm64 appended), NIXFE_REGISTRY.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

IMAGE="${NIXFE_NIX_IMAGE:-local/nix:test}"
NIX_IMAGE=$IMAGE
LABEL=org.nix-frontend.dev.recipe
ROOTFS_DIR="$NIXFE_STATE/rootfs"

# ---- recipe: anything that changes the image belongs here (it is hashed) ----
SUITE=trixie
# Debian architecture of the rootfs (mmdebstrap --arch).
ARCH=amd64
VARIANT=apt
NAME=nix
# sqlite3: the nix-db layer fixes registration times with it (as nixpkgs'
# dockerTools does), so nix-db images are reproducible.
PACKAGES=nix-bin,ca-certificates,busybox-static,sqlite3
# Fixed timestamps so the same package set gives the same tarball.
EPOCH=1700000000
# Single-user nix as root in a container: no build users, no sandbox (the
# builders use the image's /bin/sh and coreutils), no binary cache (unreachable;
# nix would retry it for ~50 s), no seccomp filter (fails in some runtimes),
# no global flake registry (would be fetched from the network).
NIX_CONF='experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =
filter-syscalls = false
flake-registry =
'
# An initialised empty store (/nix/store, /nix/var/nix/db), so a cache mount
# can be seeded from the image's /nix. The 8 MB gc "reserved" file and the
# sqlite side files (empty WAL, shm) are recreated by nix on demand.
INIT_STORE='nix-store --init && cd /nix/var/nix/db && test ! -s db.sqlite-wal && rm -f reserved db.sqlite-wal db.sqlite-shm'
# Smaller image: no docs, man pages or translations.
DPKG_OPTS=(
  'path-exclude=/usr/share/doc/*'
  'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*'
  'path-exclude=/usr/share/lintian/*'
)
CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV USER=root'
  'WORKDIR /'
  'CMD ["/bin/sh"]'
)
# The base image: minbase has the required packages (passwd, coreutils, …).
use_base_recipe() {
  IMAGE=local/debian:test
  NAME=debian
  VARIANT=minbase
  PACKAGES=busybox-static
  NIX_CONF=''
  INIT_STORE='true'
}
# The builder for cross-compiling to arm64 natively: the same recipe with the
# cross compiler (its own tag and rootfs name, so the default builder, and the
# store caches keyed by it, stay as they are).
use_cross_recipe() {
  IMAGE="$IMAGE-cross"
  NAME=nix-cross
  PACKAGES="$PACKAGES,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross"
}
# The builder for another architecture: the same recipe, built and run under
# qemu. Its rootfs is cached in a folder of its own (older copies of this
# script clean up rootfs/nix-*.tar).
use_arch() {
  ARCH=$1
  IMAGE="$IMAGE-$ARCH"
  ROOTFS_DIR="$NIXFE_STATE/rootfs/$ARCH"
}
# -----------------------------------------------------------------------------

# Hash of the recipe (not of this file, so comments do not force a rebuild).
# The mirror is not part of it: any mirror of the suite gives the same image.
# The architecture is, except amd64's (the first recipes had no other), so
# the amd64 hashes, and the caches keyed by them, stay as they were.
recipe_hash() {
  local arch=()
  [[ $ARCH == amd64 ]] || arch=("arch=$ARCH")
  printf '%s\n' v1 "$SUITE" "$VARIANT" "$PACKAGES" "$EPOCH" "$NIX_CONF" "$INIT_STORE" "${DPKG_OPTS[@]}" "${CHANGES[@]}" "${arch[@]}" | short_hash
}

# Docker's name for a Debian architecture (linux/ARCH).
docker_platform() {
  case $1 in
    amd64) echo linux/amd64 ;;
    arm64) echo linux/arm64 ;;
    *) die "no Docker platform known for Debian architecture $1" ;;
  esac
}

build_rootfs() {
  local out=$1 mirror tmp
  apt_install mmdebstrap
  if [[ $ARCH != "$(dpkg --print-architecture)" ]]; then
    # A foreign rootfs: its maintainer scripts run under qemu, and
    # mmdebstrap checks that they can with arch-test.
    "$here/binfmt.sh" setup "$(docker_platform "$ARCH")"
    apt_install arch-test
  fi
  mirror=$(debian_mirror)
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  printf '%s' "$NIX_CONF" >"$tmp/nix.conf"
  local dpkgopts=() o
  for o in "${DPKG_OPTS[@]}"; do dpkgopts+=(--dpkgopt="$o"); done
  log "building $SUITE $ARCH rootfs with mmdebstrap (from $mirror)"
  local t0=$SECONDS
  # shellcheck disable=SC2016  # "$1" in hooks is expanded by mmdebstrap
  local hooks=()
  if [[ -n $NIX_CONF ]]; then
    # shellcheck disable=SC2016  # "$1" in hooks is expanded by mmdebstrap
    hooks+=(--customize-hook='mkdir -p "$1/etc/nix"' --customize-hook="upload $tmp/nix.conf /etc/nix/nix.conf")
  fi
  SOURCE_DATE_EPOCH=$EPOCH mmdebstrap --quiet --format=tar --arch="$ARCH" --variant="$VARIANT" --include="$PACKAGES" \
    "${dpkgopts[@]}" "${hooks[@]}" \
    --customize-hook="chroot \"\$1\" /bin/sh -c '$INIT_STORE'" \
    --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
    "$SUITE" "$out.partial" "deb $mirror $SUITE main" >&2
  mv "$out.partial" "$out"
  log "rootfs built in $((SECONDS - t0))s: $out ($(du -h "$out" | cut -f1))"
}

# Docker 20.10's import ignores --platform (it needs an experimental daemon)
# and records the host's: save the image, set the platform in its config,
# load it back under the same tag.
set_platform() {
  local platform=$1 tmp cfg id
  apt_install jq
  log "$IMAGE was imported as $(docker image inspect "$IMAGE" --format '{{.Os}}/{{.Architecture}}'); setting $platform in its config"
  tmp=$(mktemp -d "$ROOTFS_DIR/save.XXXXXX")
  docker save "$IMAGE" | tar -x -C "$tmp"
  cfg=$(jq -r '.[0].Config' "$tmp/manifest.json")
  jq -c --arg os "${platform%%/*}" --arg arch "${platform#*/}" '.os = $os | .architecture = $arch' \
    "$tmp/$cfg" >"$tmp/config.json"
  id=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
  rm "$tmp/$cfg"
  mv "$tmp/config.json" "$tmp/$id.json"
  jq -c --arg c "$id.json" '.[0].Config = $c' "$tmp/manifest.json" >"$tmp/manifest.new"
  mv "$tmp/manifest.new" "$tmp/manifest.json"
  # The legacy index names the old image ID.
  rm -f "$tmp/repositories"
  local wrong
  wrong=$(docker image inspect "$IMAGE" --format '{{.Id}}')
  tar -c -C "$tmp" . | docker load -q >/dev/null || { rm -rf "$tmp"; die "docker load of $IMAGE ($platform) failed"; }
  rm -rf "$tmp"
  docker rmi "$wrong" >/dev/null 2>&1 || true
  [[ $(docker image inspect "$IMAGE" --format '{{.Os}}/{{.Architecture}}') == "$platform" ]] ||
    die "$IMAGE is still not $platform after docker load"
}

one_image() {
  [[ -n ${DOCKER_HOST:-} ]] || log "warning: DOCKER_HOST is not set; using the docker CLI's default engine"
  command -v docker >/dev/null || die "no docker CLI in PATH (eval \"\$(scripts/engine.sh env KIND)\" first)"
  local hash tar
  hash=$(recipe_hash)

  local have platform
  platform=$(docker_platform "$ARCH")
  have=$(docker image inspect "$IMAGE" --format "{{index .Config.Labels \"$LABEL\"}} {{.Os}}/{{.Architecture}}" 2>/dev/null || true)
  if [[ $have == "$hash $platform" ]]; then
    log "$IMAGE (recipe $hash, $platform) already in ${DOCKER_HOST:-default engine}"
    return 0
  fi

  mkdir -p "$ROOTFS_DIR"
  tar="$ROOTFS_DIR/$NAME-$SUITE-$hash.tar"
  exec {lock}>"$ROOTFS_DIR/lock"
  flock "$lock"
  if [[ ! -s $tar ]]; then
    rm -f "$ROOTFS_DIR/$NAME-$SUITE-"*.tar "$ROOTFS_DIR/$NAME-$SUITE-"*.tar.partial
    build_rootfs "$tar"
  fi
  exec {lock}>&-

  local changes=() c
  for c in "${CHANGES[@]}" "LABEL $LABEL=$hash"; do changes+=(--change "$c"); done
  local old new
  old=$(docker image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
  log "importing $tar as $IMAGE ($platform)"
  docker import --platform "$platform" "${changes[@]}" "$tar" "$IMAGE" >/dev/null
  if [[ $(docker image inspect "$IMAGE" --format '{{.Os}}/{{.Architecture}}') != "$platform" ]]; then
    set_platform "$platform"
  fi
  new=$(docker image inspect "$IMAGE" --format '{{.Id}}')
  log "$IMAGE imported: $new"
  # Drop the image of an older recipe, now untagged (kept if still in use).
  if [[ -n $old && $old != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

# The amd64 and arm64 builders as one multi-platform index in a registry
# (plain HTTP: localhost or 127.0.0.1). Each platform's image is pushed under
# its own tag, then an index naming both is written with buildx imagetools
# (registry to registry: the local image store cannot hold a multi-platform
# image of imported ones), or `docker manifest` where there is no buildx (20.10).
push_index() {
  (($# <= 1)) || die "usage: nix-image.sh push [REGISTRY]"
  local registry=${1:-${NIXFE_REGISTRY:-}}
  [[ -n $registry ]] || die "push: name a registry (argument or NIXFE_REGISTRY, e.g. localhost:5000)"
  registry=${registry%/}
  [[ -n ${DOCKER_HOST:-} ]] || log "warning: DOCKER_HOST is not set; using the docker CLI's default engine"
  apt_install jq
  local repo="$registry/nix-frontend/nix" index arch refs=()
  index="$repo:test"
  (one_image)
  (use_arch arm64 && one_image)
  for arch in amd64 arm64; do
    local src=$NIX_IMAGE ref="$repo:test-$arch"
    [[ $arch == amd64 ]] || src="$NIX_IMAGE-$arch"
    log "pushing $src as $ref"
    docker tag "$src" "$ref"
    local rc=0
    docker push --quiet "$ref" >/dev/null || rc=$?
    # The local tag was only the push's name.
    docker rmi "$ref" >/dev/null 2>&1 || true
    ((rc == 0)) || die "docker push $ref failed"
    refs+=("$ref")
  done
  if docker buildx version >/dev/null 2>&1; then
    log "writing index $index (buildx imagetools create)"
    docker buildx imagetools create --tag "$index" "${refs[@]}" >&2 ||
      die "docker buildx imagetools create $index failed"
  else
    log "writing index $index (docker manifest, no buildx here)"
    docker manifest rm "$index" >/dev/null 2>&1 || true
    docker manifest create --insecure "$index" "${refs[@]}" >&2 || die "docker manifest create $index failed"
    docker manifest push --insecure --purge "$index" >&2 || die "docker manifest push $index failed"
  fi
  check_index "$index"
}

# The index in the registry names exactly linux/amd64 and linux/arm64.
check_index() {
  local index=$1 raw platforms
  if docker buildx version >/dev/null 2>&1; then
    raw=$(docker buildx imagetools inspect --raw "$index") || die "cannot read $index back"
  else
    raw=$(docker manifest inspect --insecure "$index") || die "cannot read $index back"
  fi
  platforms=$(jq -r '.manifests[] | .platform | select(.os != "unknown") | "\(.os)/\(.architecture)"' <<<"$raw" | sort | paste -sd' ')
  [[ $platforms == "linux/amd64 linux/arm64" ]] ||
    die "$index names platforms '$platforms', expected linux/amd64 linux/arm64: $raw"
  log "pushed $index: $(jq -r .mediaType <<<"$raw"), $platforms"
}

case ${1:-nix} in
  nix) one_image ;;
  nix-arm64) use_arch arm64; one_image ;;
  nix-cross) use_cross_recipe; one_image ;;
  base) use_base_recipe; one_image ;;
  all) (one_image) && use_base_recipe && one_image ;;
  push) shift; push_index "$@" ;;
  *) die "usage: nix-image.sh [nix|nix-arm64|nix-cross|base|all|push [REGISTRY]]" ;;
esac
