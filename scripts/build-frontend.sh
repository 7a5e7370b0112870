#!/usr/bin/env bash
# Builds the static nix-frontend binary and loads it as an image into the
# engine DOCKER_HOST names (call after `eval "$(scripts/engine.sh env KIND)"`).
# Offline: the image is FROM scratch, so nothing is pulled.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib-env.sh
. "$here/lib-env.sh"

tag="${NIXFE_FRONTEND_IMAGE:-local/nix-frontend:dev}"
triple=x86_64-unknown-linux-gnu

cd "$top"
# crt-static only for the target, not for build scripts: hence --target.
log "cargo build --release (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --locked --target "$triple" >&2
bin="$top/target/$triple/release/nix-frontend"

dist="$NIXFE_STATE/frontend-context"
mkdir -p "$dist"
cp "$bin" "$dist/nix-frontend"
# Skip the image build when this engine already has the same binary.
sum=$(sha256sum "$bin" | cut -c1-32)
have=$(docker image inspect -f '{{ index .Config.Labels "org.nix-frontend.dev.binary" }}' "$tag" 2>/dev/null || true)
if [[ $have == "$sum" ]]; then
  log "$tag is up to date"
  exit 0
fi
log "docker build $tag"
docker build -q -f "$top/frontend.Dockerfile" --target prebuilt \
  --label "org.nix-frontend.dev.binary=$sum" -t "$tag" "$dist" >&2
log "built $tag ($(du -k "$bin" | cut -f1) KiB binary)"
