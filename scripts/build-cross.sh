#!/usr/bin/env bash
# Builds the static arm64 frontend binary on an amd64 machine, offline from
# any toolchain download:
#
#   scripts/build-cross.sh      -> target/aarch64-unknown-linux-gnu/release/nix-frontend
#
# rustup here has only the x86_64 toolchain and cannot fetch targets, but
# Debian packages Rust's standard library per architecture: a sid rootfs
# (amd64, with arm64 as a foreign architecture) holds rustc, cargo,
# libstd-rust-dev:arm64 and the aarch64 cross gcc. It is made once with
# mmdebstrap and cached in the state dir, keyed on a hash of its recipe.
# cargo runs inside it (chroot in a private mount namespace) with the source
# tree and the host's cargo registry bind-mounted: crates come from the
# host's cache (`cargo fetch` fills it first), never from inside.
# Env: NIXFE_STATE (state dir), CARGO_HOME (the host's, default ~/.cargo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

TRIPLE=aarch64-unknown-linux-gnu

# ---- recipe: anything that changes the rootfs belongs here (it is hashed) ----
SUITE=sid
ARCHES=amd64,arm64
VARIANT=essential
# rustc/cargo for the host, std for the target, a cross linker with its libc
# (static libc.a for crt-static), the host gcc for build scripts.
PACKAGES=rustc,cargo,libstd-rust-dev:arm64,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross,gcc,libc6-dev
# sid's Release file can be past its Valid-Until date on a mirror.
APTOPTS=('Acquire::Check-Valid-Until "false"')
DPKG_OPTS=(
  'path-exclude=/usr/share/doc/*'
  'path-exclude=/usr/share/man/*'
  'path-exclude=/usr/share/info/*'
  'path-exclude=/usr/share/locale/*'
  'path-exclude=/usr/share/lintian/*'
)
# -----------------------------------------------------------------------------

recipe_hash() {
  printf '%s\n' v1 "$SUITE" "$ARCHES" "$VARIANT" "$PACKAGES" "${APTOPTS[@]}" "${DPKG_OPTS[@]}" | short_hash
}

build_rootfs() {
  local out=$1 mirror
  apt_install mmdebstrap
  mirror=$(debian_mirror)
  local opts=() o
  for o in "${APTOPTS[@]}"; do opts+=(--aptopt="$o"); done
  for o in "${DPKG_OPTS[@]}"; do opts+=(--dpkgopt="$o"); done
  log "building the $SUITE cross rootfs ($ARCHES) with mmdebstrap (from $mirror)"
  local t0=$SECONDS
  rm -rf "$out.partial"
  # shellcheck disable=SC2016  # "$1" in hooks is expanded by mmdebstrap
  mmdebstrap --quiet --mode=root --format=directory --variant="$VARIANT" \
    --architectures="$ARCHES" --include="$PACKAGES" "${opts[@]}" \
    --customize-hook='mkdir -p "$1/src" "$1/cargo/registry"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/*' \
    "$SUITE" "$out.partial" "deb $mirror $SUITE main" >&2
  mv "$out.partial" "$out"
  log "rootfs built in $((SECONDS - t0))s: $out ($(du -sh "$out" | cut -f1))"
}

# Sets root to the rootfs directory (not printed: errexit does not hold in a
# command substitution, and a failed mmdebstrap must stop the script).
ensure_rootfs() {
  local hash dir
  hash=$(recipe_hash)
  dir="$NIXFE_STATE/cross/rootfs-$SUITE-$hash"
  mkdir -p "$NIXFE_STATE/cross"
  exec {lock}>"$NIXFE_STATE/cross/lock"
  flock "$lock"
  if [[ ! -x $dir/usr/bin/cargo ]]; then
    # A rootfs of an older recipe (or an interrupted one) goes.
    local old
    for old in "$NIXFE_STATE/cross/rootfs-"*; do
      [[ -e $old ]] && rm -rf --one-file-system "$old"
    done
    build_rootfs "$dir"
  fi
  exec {lock}>&-
  root=$dir
}

# Every crate of Cargo.lock, for every platform, in the host's registry cache.
fetch_crates() {
  cd "$top"
  if ! cargo fetch --locked --offline -q 2>/dev/null; then
    log "cargo fetch (crates.io)"
    cargo fetch --locked -q
  fi
}

cross_build() {
  local root=$1 registry
  registry="${CARGO_HOME:-$HOME/.cargo}/registry"
  mkdir -p "$registry"
  log "cargo build --release --target $TRIPLE (static, in the $SUITE rootfs)"
  # The mounts live only in this private namespace; chroot sees the tree at
  # /src and the registry at /cargo/registry. crt-static only for the target
  # (hence --target), the host's build scripts link normally.
  # shellcheck disable=SC2016  # expanded by the inner bash
  unshare --mount --propagation private -- bash -euc '
    root=$1 src=$2 registry=$3 triple=$4
    mount --bind "$src" "$root/src"
    mount --bind "$registry" "$root/cargo/registry"
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    exec chroot "$root" /usr/bin/env -i \
      PATH=/usr/bin:/bin HOME=/root CARGO_HOME=/cargo \
      RUSTFLAGS="-C target-feature=+crt-static" \
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
      sh -c "cd /src && exec cargo build -q --release --locked --offline --target $triple"
  ' _ "$root" "$top" "$registry" "$TRIPLE" >&2
}

check_binary() {
  local bin=$1 desc
  apt_install file binutils
  [[ -x $bin ]] || die "no binary at $bin"
  desc=$(file -b "$bin")
  [[ $desc == *"ELF 64-bit LSB"*"ARM aarch64"* ]] || die "$bin is not an aarch64 ELF: $desc"
  [[ $desc == *"statically linked"* || $desc == *"static-pie linked"* ]] || die "$bin is not static: $desc"
  if readelf -lW "$bin" | grep -q 'INTERP'; then die "$bin has a program interpreter"; fi
  if readelf -dW "$bin" | grep -q '(NEEDED)'; then die "$bin needs shared libraries"; fi
  log "ok: ${bin#"$top"/}: $desc ($(du -k "$bin" | cut -f1) KiB)"
}

t0=$SECONDS
ensure_rootfs
fetch_crates
cross_build "$root"
check_binary "$top/target/$TRIPLE/release/nix-frontend"
log "done in $((SECONDS - t0))s"
