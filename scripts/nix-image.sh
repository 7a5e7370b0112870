#!/usr/bin/env bash
# Build the test images without a registry, into the engine named by the
# current DOCKER_HOST:
#
#   eval "$(scripts/engine.sh env KIND)" && scripts/nix-image.sh [nix|base|all]
#
#   nix   local/nix:test, the Nix builder image (the default)
#   base  local/debian:test, a plain Debian base with a shell and passwd tools
#         (stands in for ubuntu:24.04 in the examples: nothing can be pulled)
#
# A trixie rootfs is made once with mmdebstrap and cached in the state dir,
# keyed on a hash of its recipe; `docker import` runs only if the engine lacks
# the image with that recipe's label.
# Env: NIXFE_STATE (state dir), NIXFE_NIX_IMAGE (tag, default local/nix:test).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

IMAGE="${NIXFE_NIX_IMAGE:-local/nix:test}"
LABEL=org.nix-frontend.dev.recipe

# ---- recipe: anything that changes the image belongs here (it is hashed) ----
SUITE=trixie
VARIANT=apt
NAME=nix
PACKAGES=nix-bin,ca-certificates,busybox-static
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
# -----------------------------------------------------------------------------

# Hash of the recipe (not of this file, so comments do not force a rebuild).
# The mirror is not part of it: any mirror of the suite gives the same image.
recipe_hash() {
  printf '%s\n' v1 "$SUITE" "$VARIANT" "$PACKAGES" "$EPOCH" "$NIX_CONF" "$INIT_STORE" "${DPKG_OPTS[@]}" "${CHANGES[@]}" | short_hash
}

build_rootfs() {
  local out=$1 mirror tmp
  apt_install mmdebstrap
  mirror=$(debian_mirror)
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  printf '%s' "$NIX_CONF" >"$tmp/nix.conf"
  local dpkgopts=() o
  for o in "${DPKG_OPTS[@]}"; do dpkgopts+=(--dpkgopt="$o"); done
  log "building $SUITE rootfs with mmdebstrap (from $mirror)"
  local t0=$SECONDS
  # shellcheck disable=SC2016  # "$1" in hooks is expanded by mmdebstrap
  local hooks=()
  if [[ -n $NIX_CONF ]]; then
    # shellcheck disable=SC2016  # "$1" in hooks is expanded by mmdebstrap
    hooks+=(--customize-hook='mkdir -p "$1/etc/nix"' --customize-hook="upload $tmp/nix.conf /etc/nix/nix.conf")
  fi
  SOURCE_DATE_EPOCH=$EPOCH mmdebstrap --quiet --format=tar --variant="$VARIANT" --include="$PACKAGES" \
    "${dpkgopts[@]}" "${hooks[@]}" \
    --customize-hook="chroot \"\$1\" /bin/sh -c '$INIT_STORE'" \
    --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
    "$SUITE" "$out.partial" "deb $mirror $SUITE main" >&2
  mv "$out.partial" "$out"
  log "rootfs built in $((SECONDS - t0))s: $out ($(du -h "$out" | cut -f1))"
}

one_image() {
  [[ -n ${DOCKER_HOST:-} ]] || log "warning: DOCKER_HOST is not set; using the docker CLI's default engine"
  command -v docker >/dev/null || die "no docker CLI in PATH (eval \"\$(scripts/engine.sh env KIND)\" first)"
  local hash tar
  hash=$(recipe_hash)

  local have
  have=$(docker image inspect "$IMAGE" --format "{{index .Config.Labels \"$LABEL\"}}" 2>/dev/null || true)
  if [[ $have == "$hash" ]]; then
    log "$IMAGE (recipe $hash) already in ${DOCKER_HOST:-default engine}"
    return 0
  fi

  mkdir -p "$NIXFE_STATE/rootfs"
  tar="$NIXFE_STATE/rootfs/$NAME-$SUITE-$hash.tar"
  exec {lock}>"$NIXFE_STATE/rootfs/lock"
  flock "$lock"
  if [[ ! -s $tar ]]; then
    rm -f "$NIXFE_STATE/rootfs/$NAME-"*.tar "$NIXFE_STATE/rootfs/$NAME-"*.tar.partial
    build_rootfs "$tar"
  fi
  exec {lock}>&-

  local changes=() c
  for c in "${CHANGES[@]}" "LABEL $LABEL=$hash"; do changes+=(--change "$c"); done
  local old new
  old=$(docker image inspect "$IMAGE" --format '{{.Id}}' 2>/dev/null || true)
  log "importing $tar as $IMAGE"
  docker import "${changes[@]}" "$tar" "$IMAGE" >/dev/null
  new=$(docker image inspect "$IMAGE" --format '{{.Id}}')
  log "$IMAGE imported: $new"
  # Drop the image of an older recipe, now untagged (kept if still in use).
  if [[ -n $old && $old != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

case ${1:-nix} in
  nix) one_image ;;
  base) use_base_recipe; one_image ;;
  all) (one_image) && use_base_recipe && one_image ;;
  *) die "usage: nix-image.sh [nix|base|all]" ;;
esac
