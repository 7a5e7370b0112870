#!/usr/bin/env bash
# End-to-end tests of builds for other platforms: linux/arm64 on this amd64
# engine under emulation (binfmt_misc + qemu-user-static, scripts/binfmt.sh),
# with the builder image an amd64 + arm64 index in the local registry
# (scripts/nix-image.sh push), and two platforms in one build.
#
# Usage: tests/platforms.sh KIND   (KIND: 20.10, 26.1, 26.1-containerd or sid)
# Expects the engine started (after binfmt.sh setup, so its worker lists the
# emulated platforms) and the images loaded (scripts/test.sh does it); the
# registry is started here when not running, and stopped again at the end.
#
# Index of tests:
#   arm64_alone            --platform linux/arm64: an arm64 image whose app was built for
#                          aarch64-linux on an aarch64 machine (emulated), and runs
#   wrong_arch_refused     nix.run-on = "build" puts the builder's amd64 busybox (the app's
#                          interpreter) in an arm64 image: refused, naming the file and platform;
#                          --call check warns of it (buildx)
#   two_platforms          --platform linux/amd64,linux/arm64 --push: an index with both, each
#                          config of its architecture, each image running its own build
#                          (containerd store only: the others hold one platform per image)
#   two_platforms_app_change   an app-only change makes one new layer blob per platform
#   two_platforms_repro    two builds from an empty build cache give the same manifests
#   classic_store_refuses  on the stores that cannot hold an index, two platforms fail with the
#                          engine's own message, before anything is built
#   cross_two_platforms    run-on = { "linux/arm64" = "cross" } with the cross builder
#                          (scripts/nix-image.sh nix-cross): one index, the arm64 program
#                          compiled by an x86_64 nix step (it says so) and run under qemu,
#                          amd64 built as before (containerd store only)
#   cross_wrong_arch_refused  run-on = "cross" with an installable that is not cross-built:
#                          the amd64 program in an arm64 image is refused by the check
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"

started_registry=0
if ! "$top/scripts/registry.sh" status >/dev/null 2>&1; then
  "$top/scripts/registry.sh" start >/dev/null || { echo "platforms($kind): cannot start the registry" >&2; exit 1; }
  started_registry=1
fi
eval "$("$top/scripts/registry.sh" env)"
finish() { ((started_registry)) && "$top/scripts/registry.sh" stop >/dev/null 2>&1; rm -rf "$work"; }
trap finish EXIT

builder="$NIXFE_REGISTRY/nix-frontend/nix:test"
stamp="run $(date +%s%N)"
cp -r "$top/tests/fixtures/multiarch" "$work/ma"
echo "multiarch $stamp" >"$work/ma/src/app-message"
# The fixture's spec, with the two-platform builder from the registry.
printf '# syntax=local/nix-frontend:dev\nflake = ".#default"\nbuilder = "${BUILDER}"\n' >"$work/ma/Dockerfile"
args=(--build-arg "BUILDER=$builder")
multi_ok() { containerd_store; }

# config_arch REPO DIGEST: the architecture in the config of manifest DIGEST.
config_arch() {
  local cfg
  cfg=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$NIXFE_REGISTRY/v2/$1/manifests/$2" | jq -r .config.digest) || return 1
  curl -fsS "http://$NIXFE_REGISTRY/v2/$1/blobs/$cfg" | jq -r .architecture
}
# manifests REPO TAG: "platform digest" per entry of the index.
manifests() {
  registry_get "$1" "$2" || return 1
  jq -r '.manifests[] | "\(.platform.os)/\(.platform.architecture) \(.digest)"' "$work/manifest.json"
}

# index_of_two REPO TAG: an index of linux/amd64 and linux/arm64, each
# manifest's config saying its architecture.
index_of_two() {
  local m p d arch
  m=$(manifests "$1" "$2") || { say "no index in the registry"; return 1; }
  [[ $(cut -d' ' -f1 <<<"$m" | sort | tr '\n' ' ') == "linux/amd64 linux/arm64 " ]] || { say "index: $m"; return 1; }
  while read -r p d; do
    arch=$(config_arch "$1" "$d") || { say "cannot read the config of $p"; return 1; }
    [[ $arch == "${p#linux/}" ]] || { say "$p's config says $arch"; return 1; }
  done <<<"$m"
}

arm64_alone() {
  build "$work/ma" --platform linux/arm64 "${args[@]}" -t nixfe-e2e-arm64 ||
    { say "build failed"; return 1; }
  grep -q "\[nix\] build \.#default (aarch64-linux)" "$work/last.log" || { say "no aarch64 nix step"; return 1; }
  local arch out
  arch=$(docker image inspect -f '{{.Architecture}}' nixfe-e2e-arm64)
  [[ $arch == arm64 ]] || { say "the image is $arch"; return 1; }
  out=$(docker run --rm --platform linux/arm64 nixfe-e2e-arm64 2>/dev/null)
  grep -qx 'system: aarch64-linux' <<<"$out" && grep -qx 'built on: aarch64' <<<"$out" &&
    grep -qx "multiarch $stamp" <<<"$out" || { say "the arm64 image prints: $out"; return 1; }
  docker rmi -f nixfe-e2e-arm64 >/dev/null
}

# With nix.run-on = "build", an amd64 nix builds the aarch64-linux
# derivations with the builder image's own (x86_64) /bin/sh and busybox:
# the app's interpreter is an amd64 program in an arm64 image, refused.
wrong_arch_refused() {
  { cat "$work/ma/Dockerfile"; printf '[nix]\nrun-on = "build"\n'; } >"$work/ma/wrong.toml"
  if build "$work/ma" -f "$work/ma/wrong.toml" --platform linux/arm64 "${args[@]}" -t nixfe-e2e-wrong; then
    say "an arm64 image with an amd64 interpreter was built"; docker rmi -f nixfe-e2e-wrong >/dev/null 2>&1; return 1
  fi
  grep -q 'the interpreter of bin/app is built for x86-64, not for linux/arm64 (AArch64)' "$work/last.log" ||
    { say "not the check's message: $(grep -m2 -E 'ERROR|error' "$work/last.log")"; return 1; }
  grep -q 'hint: build the package for linux/arm64' "$work/last.log" || { say "no hint"; return 1; }
  # `--call check` (buildx's --print lint) warns of it.
  [[ $kind != 20.10 ]] || return 0
  local out
  out=$(BUILDX_EXPERIMENTAL=1 docker buildx build --print lint --platform linux/arm64 "${args[@]}" -f "$work/ma/wrong.toml" "$work/ma" 2>&1) || true
  # buildx 0.29 prints the rule's name and its message on lines of their own.
  grep -Eq '(WrongArchitecture: |^)the interpreter of bin/app is built for x86-64, not for linux/arm64 \(AArch64\)' <<<"$out" &&
    grep -q 'WrongArchitecture' <<<"$out" || { say "lint: $out"; return 1; }
}

# push_two TAG: both platforms in one build, pushed.
push_two() {
  buildx_push --platform linux/amd64,linux/arm64 "${args[@]}" -t "$NIXFE_REGISTRY/nixfe-e2e/multi:$1" "$work/ma"
}

two_platforms() {
  multi_ok || skip "the $kind image store holds one platform per image" || return
  push_two 1 || { say "build and push failed"; return 1; }
  local p out
  index_of_two nixfe-e2e/multi 1 || return 1
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/multi:1" >/dev/null 2>&1 || true
  for p in arm64:aarch64 amd64:x86_64; do
    out=$(docker run --rm --platform "linux/${p%%:*}" "$NIXFE_REGISTRY/nixfe-e2e/multi:1" 2>/dev/null) ||
      { say "docker run --platform linux/${p%%:*} failed"; return 1; }
    grep -qx "system: ${p##*:}-linux" <<<"$out" && grep -qx "built on: ${p##*:}" <<<"$out" ||
      { say "linux/${p%%:*} prints: $out"; return 1; }
  done
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/multi:1" >/dev/null 2>&1 || true
}

two_platforms_app_change() {
  multi_ok || skip "the $kind image store holds one platform per image" || return
  push_two 2 || { say "first build failed"; return 1; }
  local first second before after new layers
  first=$(registry_parts nixfe-e2e/multi 2) || return 1
  echo "multiarch changed $stamp" >"$work/ma/src/app-message"
  before=$(registry_blobs)
  push_two 3 || { say "second build failed"; return 1; }
  after=$(registry_blobs)
  second=$(registry_parts nixfe-e2e/multi 3) || return 1
  new=$(new_blobs "$before" "$after")
  layers=$(awk 'NR == FNR { if ($1 == "layer") l[$2] = 1; next } ($1 in l)' <(printf '%s\n' "$second") - <<<"$new" | wc -l)
  say "app-only change on two platforms: $layers new layer blobs, $(wc -l <<<"$new") new blobs"
  ((layers == 2)) || { say "want one new layer per platform: $new"; return 1; }
  # The layers below the app's are the same blobs on each platform.
  # Per platform: /tmp and nsswitch.conf (on scratch), then 3 store layers.
  [[ $(grep -c '^layer ' <<<"$first") -eq 10 ]] || { say "want 5 layers per platform: $first"; return 1; }
  echo "multiarch $stamp" >"$work/ma/src/app-message"
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/multi:2" "$NIXFE_REGISTRY/nixfe-e2e/multi:3" >/dev/null 2>&1 || true
}

two_platforms_repro() {
  multi_ok || skip "the $kind image store holds one platform per image" || return
  local a b
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  push_two r1 || { say "first clean build failed"; return 1; }
  a=$(manifests nixfe-e2e/multi r1) || return 1
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  push_two r2 || { say "second clean build failed"; return 1; }
  grep -q "building '/nix/store/[a-z0-9]*-app.drv'" "$work/last.log" || { say "the second build was not from an empty cache"; return 1; }
  b=$(manifests nixfe-e2e/multi r2) || return 1
  [[ -n $a && $a == "$b" ]] || { say "manifests differ: [$a] [$b]"; return 1; }
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/multi:r1" "$NIXFE_REGISTRY/nixfe-e2e/multi:r2" >/dev/null 2>&1 || true
}

classic_store_refuses() {
  ! multi_ok || skip "the containerd store holds multi-platform images" || return
  if [[ $kind == 20.10 ]]; then
    # The daemon refuses at once. Once in CI the 20.10 client hung here with no
    # output and no request in the daemon's log (not reproduced in 40 runs
    # since), so a hang is cut at 2 minutes and tried once more, and said.
    local rc=0 try
    for try in 1 2; do
      rc=0
      timeout 120 docker build --progress=plain --platform linux/amd64,linux/arm64 "${args[@]}" -t nixfe-e2e-multi \
        "$work/ma" >"$work/last.log" 2>&1 || rc=$?
      ((rc == 124)) || break
      say "docker build hung for 2 minutes (try $try)"
    done
    ((rc != 0)) || { say "it built"; return 1; }
    grep -q 'is an invalid component of "linux/amd64,linux/arm64"' "$work/last.log" || { say "another message"; return 1; }
  else
    docker buildx build --progress=plain --platform linux/amd64,linux/arm64 "${args[@]}" --load -t nixfe-e2e-multi "$work/ma" \
      >"$work/last.log" 2>&1 && { say "it built"; return 1; }
    grep -q 'docker exporter does not currently support exporting manifest lists' "$work/last.log" || { say "another message"; return 1; }
  fi
  ! grep -q '\[nix\] build ' "$work/last.log" || { say "nix ran before the refusal"; return 1; }
}

# The cross builder (the test builder plus Debian's aarch64 cross gcc),
# imported on first use: its rootfs is made once and cached like the others'.
cross_builder() {
  "$top/scripts/nix-image.sh" nix-cross >"$work/nix-cross.log" 2>&1 ||
    { say "scripts/nix-image.sh nix-cross failed: $(tail -n 3 "$work/nix-cross.log")"; return 1; }
}

cross_two_platforms() {
  multi_ok || skip "the $kind image store holds one platform per image" || return
  cross_builder || return 1
  printf '# syntax=local/nix-frontend:dev\nflake = ".#app-${TARGETARCH}"\nbuilder = "local/nix:test-cross"\n[nix]\nrun-on = { "linux/arm64" = "cross" }\n' \
    >"$work/ma/cross.toml"
  buildx_push --platform linux/amd64,linux/arm64 -f "$work/ma/cross.toml" -t "$NIXFE_REGISTRY/nixfe-e2e/cross:1" "$work/ma" ||
    { say "build and push failed: $(grep -m3 -E 'ERROR|error:' "$work/last.log")"; return 1; }
  # Both platforms' nix steps are x86_64-linux ones: the arm64 package is
  # the x86_64 system's cross-compiled one.
  grep -q '\[nix\] build \.#app-arm64 (x86_64-linux)' "$work/last.log" || { say "no x86_64 nix step for app-arm64"; return 1; }
  ! grep -q '(aarch64-linux)' "$work/last.log" || { say "an aarch64-linux nix step ran"; return 1; }
  local out
  index_of_two nixfe-e2e/cross 1 || return 1
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/cross:1" >/dev/null 2>&1 || true
  # The arm64 program was compiled on x86_64 (its build's `uname -m`) and
  # runs as aarch64 (under qemu).
  out=$(docker run --rm --platform linux/arm64 "$NIXFE_REGISTRY/nixfe-e2e/cross:1" 2>/dev/null) ||
    { say "docker run --platform linux/arm64 failed"; return 1; }
  grep -qx 'system: aarch64-linux (cross-compiled)' <<<"$out" && grep -qx 'built on: x86_64' <<<"$out" &&
    grep -qx 'runs on: aarch64' <<<"$out" && grep -qx "multiarch $stamp" <<<"$out" ||
    { say "linux/arm64 prints: $out"; return 1; }
  out=$(docker run --rm --platform linux/amd64 "$NIXFE_REGISTRY/nixfe-e2e/cross:1" 2>/dev/null) ||
    { say "docker run --platform linux/amd64 failed"; return 1; }
  grep -qx 'system: x86_64-linux' <<<"$out" && grep -qx "multiarch $stamp" <<<"$out" ||
    { say "linux/amd64 prints: $out"; return 1; }
  docker rmi -f "$NIXFE_REGISTRY/nixfe-e2e/cross:1" >/dev/null 2>&1 || true
}

# run-on = "cross" with `.#app`, the x86_64 package itself: its interpreter
# (busybox) is an amd64 program, refused for the arm64 image.
cross_wrong_arch_refused() {
  printf '# syntax=local/nix-frontend:dev\nbuilder = "local/nix:test"\nflake = ".#app"\n[nix]\nrun-on = "cross"\n' >"$work/ma/cross-wrong.toml"
  if build "$work/ma" -f "$work/ma/cross-wrong.toml" --platform linux/arm64 -t nixfe-e2e-cross-wrong; then
    say "an arm64 image with an amd64 interpreter was built"; docker rmi -f nixfe-e2e-cross-wrong >/dev/null 2>&1; return 1
  fi
  grep -q '\[nix\] build \.#app (x86_64-linux)' "$work/last.log" || { say "no x86_64 nix step"; return 1; }
  grep -q 'line 3: `flake`: the interpreter of bin/app is built for x86-64, not for linux/arm64 (AArch64)' "$work/last.log" ||
    { say "not the check's message: $(grep -m2 -E 'ERROR|error' "$work/last.log")"; return 1; }
  grep -q 'hint: build the package for linux/arm64' "$work/last.log" || { say "no hint"; return 1; }
}

run_all platforms arm64_alone wrong_arch_refused two_platforms two_platforms_app_change two_platforms_repro classic_store_refuses \
  cross_two_platforms cross_wrong_arch_refused
