#!/usr/bin/env bash
# Checks an SPDX 2 JSON document with the SPDX project's own tools, which
# nix-frontend does not write: ntia-conformance-checker (PyPI, pinned) parses
# and validates it with spdx-tools and checks the NTIA minimum elements.
#
#   scripts/sbom-check.sh FILE    prints the checker's JSON report; exit 0
#                                 only if the document is valid and conformant
#
# The checker lives in a virtual environment under the state dir, made once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib-env.sh
. "$here/lib-env.sh"

(($# == 1)) || die "usage: sbom-check.sh FILE"
version=6.0.0
venv="$NIXFE_STATE/venv-ntia-$version"
if [[ ! -x $venv/bin/ntia-checker ]]; then
  mkdir -p "$NIXFE_STATE"
  exec {lock}>"$NIXFE_STATE/venv-ntia.lock"
  flock "$lock"
  if [[ ! -x $venv/bin/ntia-checker ]]; then
    log "installing ntia-conformance-checker $version into $venv"
    rm -rf "$venv.tmp"
    python3 -m venv "$venv.tmp" >&2
    "$venv.tmp/bin/pip" install -q "ntia-conformance-checker==$version" >&2
    rm -rf "$venv"; mv "$venv.tmp" "$venv"
    # A venv records its own path: rebuild its scripts' shebangs for the new one.
    sed -i "1s|$venv.tmp|$venv|" "$venv"/bin/*
  fi
  exec {lock}>&-
fi
report=$("$venv/bin/ntia-checker" -r json "$1")
printf '%s\n' "$report"
jq -e '.isConformant == true and (.validationMessages | length) == 0 and (.parsingError | length) == 0' <<<"$report" >/dev/null
