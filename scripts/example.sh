#!/usr/bin/env bash
# Builds examples/hello with plain `docker build` through the frontend and runs
# it. Uses the engine at $DOCKER_HOST if one answers (it must have buildx or
# BuildKit, and no registry is needed); otherwise starts a local Docker 26.1
# from Debian packages (scripts/engine.sh; NIXFE_KIND picks another kind).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [[ -n ${DOCKER_HOST:-} ]] && docker version >/dev/null 2>&1; then
  echo "using the engine at DOCKER_HOST" >&2
else
  kind=${NIXFE_KIND:-26.1}
  scripts/engine.sh start "$kind" >/dev/null
  eval "$(scripts/engine.sh env "$kind")"
fi
scripts/nix-image.sh
scripts/build-frontend.sh
docker build -t nix-frontend-hello examples/hello
# The example needs no network; without one, an engine on a machine with IPv4
# forwarding off prints no warning either.
docker run --rm --network=none nix-frontend-hello
