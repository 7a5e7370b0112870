#!/usr/bin/env bash
# End-to-end tests of the SBOM nix-frontend attaches (`--sbom=true`) and of
# the labels and provenance that go with it, through the local registry.
#
# Usage: tests/sbom.sh KIND   (KIND: 20.10, 26.1, 26.1-containerd or sid)
# Attestations are kept only by the containerd image store (buildx refuses
# --sbom with the docker driver on the classic store, and Docker 20.10 has no
# buildx): the SBOM tests are skipped elsewhere; the labels are checked on
# every engine.
#
# Index of tests:
#   sbom_is_the_closure   --sbom=true --push: `imagetools inspect` shows our SPDX document;
#                         its store paths are exactly `nix-store -qR` of the output (nix
#                         itself, in the builder), no build-only toolchain; the locked input
#                         is a package; the SPDX tools' checker (ntia-conformance-checker)
#                         finds it valid SPDX 2.3 with the NTIA minimum elements
#   sbom_reproducible     two builds from an empty build cache push the same index: the SBOM
#                         attestation is byte for byte the same
#   sbom_per_platform     two platforms: one SBOM each, with that platform's store paths
#   provenance_max        --provenance=mode=max with --sbom=true: both attestations there
#   labels                the image names its flake, locked inputs, git source and revision
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"

started_registry=0
if ! "$top/scripts/registry.sh" status >/dev/null 2>&1; then
  "$top/scripts/registry.sh" start >/dev/null || { echo "sbom($kind): cannot start the registry" >&2; exit 1; }
  started_registry=1
fi
eval "$("$top/scripts/registry.sh" env)"
finish() { ((started_registry)) && "$top/scripts/registry.sh" stop >/dev/null 2>&1; rm -rf "$work"; }
trap finish EXIT

stamp="run $(date +%s%N)"
cp -r "$top/tests/fixtures/sbom" "$work/sb"
echo "sbom $stamp" >"$work/sb/src/app-message"
attests() { containerd_store; }
repo=nixfe-e2e/sbom

# push_sbom TAG [buildx args…]
push_sbom() {
  local t=$1; shift
  buildx_push --sbom=true "$@" -t "$NIXFE_REGISTRY/$repo:$t" "$work/sb"
}
# sbom_of TAG [PLATFORM]: the SPDX document imagetools shows.
sbom_of() {
  local f='{{json .SBOM}}'
  [[ -n ${2:-} ]] && f="{{json (index .SBOM \"$2\")}}"
  docker buildx imagetools inspect "$NIXFE_REGISTRY/$repo:$1" --format "$f" | jq '.SPDX'
}
# The store paths an SPDX document names.
paths_of() { jq -r '.packages[].externalRefs[]? | select(.referenceType == "nix-store-path") | .referenceLocator' | sort; }
# The runtime closure of the fixture, by nix itself in the builder.
oracle() {
  docker run --rm --network none -v "$work/sb:/src:ro" "${1:-local/nix:test}" sh -c \
    'nix build --out-link /tmp/r path:/src#default >/dev/null 2>&1 && nix-store -qR /tmp/r' 2>/dev/null | sort
}

sbom_is_the_closure() {
  attests || skip "only the containerd store keeps attestations" || return
  push_sbom 1 || { say "build and push failed"; return 1; }
  ! grep -q 'buildkit-syft-scanner' "$work/last.log" || { say "BuildKit ran a scanner"; return 1; }
  sbom_of 1 >"$work/sbom.json" || { say "no SBOM on the image"; return 1; }
  [[ $(jq -r .spdxVersion "$work/sbom.json") == SPDX-2.3 ]] || { say "not SPDX 2.3"; return 1; }
  local want got
  want=$(oracle) got=$(paths_of <"$work/sbom.json")
  [[ -n $want && $want == "$got" ]] || { say "SBOM paths [$got], closure [$want]"; return 1; }
  ! grep -q -- '-toolchain' <<<"$got" || { say "the build-only toolchain is in the SBOM"; return 1; }
  jq -e '.packages[] | select(.name == "lib" and .primaryPackagePurpose == "SOURCE")' "$work/sbom.json" >/dev/null ||
    { say "the locked input is not a package"; return 1; }
  jq -e '.packages[] | select(.name == "app" and .licenseDeclared == "MIT")' "$work/sbom.json" >/dev/null ||
    { say "the app's license is not declared"; return 1; }
  "$top/scripts/sbom-check.sh" "$work/sbom.json" >"$work/check.json" 2>&1 ||
    { cp "$work/check.json" "$work/last.log"; say "the SPDX checker rejects it"; return 1; }
}

sbom_reproducible() {
  attests || skip "only the containerd store keeps attestations" || return
  # The same tag both times: BuildKit names the tag in the statement's subject.
  local a b first
  docker builder prune -af >/dev/null
  push_sbom repro || { say "first clean build failed"; return 1; }
  a=$(registry_digest "$repo" repro) || return 1
  first=$(sbom_of repro)
  docker builder prune -af >/dev/null
  push_sbom repro || { say "second clean build failed"; return 1; }
  grep -q "building '/nix/store/[a-z0-9]*-app.drv'" "$work/last.log" || { say "not from an empty cache"; return 1; }
  b=$(registry_digest "$repo" repro) || return 1
  [[ $first == "$(sbom_of repro)" ]] || { say "SBOMs differ"; return 1; }
  [[ $a == "$b" ]] || { say "indexes differ: $a $b"; return 1; }
}

sbom_per_platform() {
  attests || skip "only the containerd store keeps attestations" || return
  printf '# syntax=local/nix-frontend:dev\nbuilder = "${BUILDER}"\n[sbom]\nsupplier = "Organization: nix-frontend tests"\n' >"$work/sb/Multi"
  buildx_push --sbom=true --platform linux/amd64,linux/arm64 -f "$work/sb/Multi" \
    --build-arg "BUILDER=$NIXFE_REGISTRY/nix-frontend/nix:test" -t "$NIXFE_REGISTRY/$repo:multi" "$work/sb" ||
    { say "build failed"; return 1; }
  local amd arm
  amd=$(sbom_of multi linux/amd64 | paths_of) arm=$(sbom_of multi linux/arm64 | paths_of)
  [[ -n $amd && -n $arm ]] || { say "an SBOM is missing: [$amd] [$arm]"; return 1; }
  [[ $amd != "$arm" ]] || { say "both platforms list the same paths"; return 1; }
  [[ $arm == "$(oracle local/nix:test-arm64)" ]] || { say "arm64 SBOM is not the arm64 closure"; return 1; }
}

provenance_max() {
  attests || skip "only the containerd store keeps attestations" || return
  push_sbom prov --provenance=mode=max || { say "build failed"; return 1; }
  docker buildx imagetools inspect "$NIXFE_REGISTRY/$repo:prov" --format '{{json .Provenance}}' >"$work/prov.json"
  jq -e '.SLSA' "$work/prov.json" >/dev/null || { say "no provenance"; return 1; }
  sbom_of prov | jq -e '.packages | length > 0' >/dev/null || { say "no SBOM next to it"; return 1; }
}

labels() {
  # A git checkout with a remote: buildx sends vcs:source and vcs:revision.
  local src rev got
  (cd "$work/sb" && git init -q && git remote add origin https://example.org/acme/sbom-fixture.git &&
    git add -A && git -c user.name=t -c user.email=t@example.org commit -qm fixture) || { say "git setup failed"; return 1; }
  rev=$(git -C "$work/sb" rev-parse HEAD)
  build "$work/sb" -t nixfe-e2e-labels || { say "build failed"; return 1; }
  got=$(docker image inspect -f '{{json .Config.Labels}}' nixfe-e2e-labels)
  [[ $(jq -r '."org.nix-frontend.flake"' <<<"$got") == '.#default' ]] || { say "flake label: $got"; return 1; }
  [[ $(jq -r '."org.nix-frontend.flake.inputs"' <<<"$got") == 'lib=./lib' ]] || { say "inputs label: $got"; return 1; }
  if [[ $kind == 20.10 ]]; then
    # Docker 20.10's own CLI sends no vcs:* options.
    [[ $(jq -r '."org.opencontainers.image.source"' <<<"$got") == null ]] || { say "source label from nowhere"; return 1; }
  else
    src=$(jq -r '."org.opencontainers.image.source"' <<<"$got")
    [[ $src == https://example.org/acme/sbom-fixture.git ]] || { say "source label: $src"; return 1; }
    [[ $(jq -r '."org.opencontainers.image.revision"' <<<"$got") == "$rev" ]] || { say "revision label: $got"; return 1; }
  fi
  rm -rf "$work/sb/.git"
  docker rmi -f nixfe-e2e-labels >/dev/null
}

run_all sbom sbom_is_the_closure sbom_reproducible sbom_per_platform provenance_max labels
