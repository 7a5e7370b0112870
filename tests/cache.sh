#!/usr/bin/env bash
# End-to-end tests of the /nix store cache and of secrets, against a real
# engine (see tests/e2e.sh for the setup they expect).
#
# Usage: tests/cache.sh KIND
#
# Index of tests:
#   builder_change        a new builder image gets a fresh store; the old one is kept
#   builder_without_store a builder with no /nix (nix-bin alone): the store cache starts
#                         empty, nix makes it, and the next build reuses it
#   concurrent_builds     8 builds at once (two projects) succeed; the store verifies after
#   interrupted_build     a client killed during `nix build` leaves a store the next build uses
#   gc_budget             cache.max-size keeps the store under budget over 20 builds with
#                         changing dependencies; a no-change rebuild builds nothing
#   gc_keeps_other_projects  two projects over one store's budget: collecting for one keeps
#                         the other's newest build
#   foreign_write         a derivation of one project writes into another's app in the shared
#                         store: the other's next layer ops repair it, its image is unchanged
#   secrets_stay_out      --secret reaches the nix step only: not in the layers, config, history, log
#   secrets_not_in_provenance  nor in any blob of an OCI export with the mode=max provenance,
#                         which records the LLB (containerd store only: it keeps attestations)
#   ssh_forwarded         nix.ssh with --ssh default puts the client's agent socket in the nix step
#   binary_cache_context  a file:// binary cache in the context substitutes instead of building
#   signed_http_cache     a binary cache over http on 127.0.0.1, signed with a key made in the
#                         test (--network=host): with its key trusted nix substitutes from it;
#                         with another key trusted it refuses the cache and builds
#   store_pruned          the store cache pruned under a cached nix step: the build notices
#                         the missing paths and runs nix again instead of failing
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"

stamp=$(date +%s%N)
fixture() { # fixture DIR: a fresh copy of the cachework flake
  cp -r "$top/tests/fixtures/cachework" "$1"
  echo "$stamp" >"$1/src/stamp"
}
fixture "$work/cw"
# spec FILE FLAKE [extra TOML]: a spec for the cachework flake.
spec() {
  printf '# syntax=local/nix-frontend:dev\nflake = "%s"\nbuilder = "%s"\n%s\n' "$2" "${BUILDER:-local/nix:test}" "${3:-}" >"$1"
}
# A namespace of this run's own: a fresh, empty store for tests that need one.
ns() { echo "--build-arg=BUILDKIT_CACHE_MOUNT_NS=test-$1-$stamp"; }

# The store cache follows the builder, shown with the single nix step: a
# group step (NIX_FRONTEND_GRAPH, the default) is keyed by the builder's
# files and its derivations, so a builder that differs only in its config
# (as here) may take it from the build cache, which is as correct.
builder_change() {
  local one=--build-arg=NIX_FRONTEND_GRAPH=0
  build "$work/cw" "$one" -t nixfe-cache-app || { say "first build failed"; return 1; }
  # A builder of this run's own (the label makes its config new).
  printf 'FROM local/nix:test\nLABEL org.nix-frontend.test=alt-%s\n' "$stamp" |
    docker build -q -t local/nix:alt - >/dev/null || { say "cannot make local/nix:alt"; return 1; }
  BUILDER=local/nix:alt spec "$work/alt.toml" ".#app"
  build "$work/cw" "$one" -f "$work/alt.toml" -t nixfe-cache-alt || { say "build with the new builder failed"; return 1; }
  grep -q 'toolchain: building' "$work/last.log" || { say "new builder reused the old store"; return 1; }
  [[ $(docker run --rm nixfe-cache-alt) == "grow 1"* ]] || { say "image from the new builder is wrong"; return 1; }
  # Back to the first builder: its store is intact, nothing is rebuilt.
  build "$work/cw" "$one" -t nixfe-cache-app --no-cache || { say "rebuild with the first builder failed"; return 1; }
  ! grep -q "building '" "$work/last.log" || { say "the first builder's store lost its paths"; return 1; }
  docker rmi -f nixfe-cache-alt local/nix:alt >/dev/null
}

# With the single nix step, as builder_change: group steps are keyed by the
# builder's layers and their derivations, not its config, so a bare builder
# of an earlier run would give them from the build cache.
builder_without_store() {
  local one=--build-arg=NIX_FRONTEND_GRAPH=0
  printf 'FROM local/nix:test\nRUN rm -rf /nix\nLABEL org.nix-frontend.test=bare-%s\n' "$stamp" |
    docker build -q -t local/nix:bare - >/dev/null || { say "cannot make local/nix:bare"; return 1; }
  ! docker run --rm local/nix:bare test -e /nix || { say "local/nix:bare still has a /nix"; return 1; }
  BUILDER=local/nix:bare spec "$work/bare.toml" ".#app"
  build "$work/cw" "$one" -f "$work/bare.toml" -t nixfe-cache-bare || { say "build with a builder without /nix failed"; return 1; }
  grep -q 'toolchain: building' "$work/last.log" || { say "the first build did not build into a new store"; return 1; }
  [[ $(docker run --rm nixfe-cache-bare) == "grow 1"* ]] || { say "image from the bare builder is wrong"; return 1; }
  build "$work/cw" "$one" -f "$work/bare.toml" -t nixfe-cache-bare --no-cache || { say "rebuild failed"; return 1; }
  ! grep -q "building '" "$work/last.log" || { say "the store nix made was not kept"; return 1; }
  docker rmi -f nixfe-cache-bare local/nix:bare >/dev/null
}

concurrent_builds() {
  local i pids=() dir
  for i in 1 2 3 4; do
    dir="$work/par-hello-$i"; cp -r "$top/examples/hello" "$dir"
    echo "parallel hello $i $stamp" >"$dir/src/greeting.txt"
    docker build -q -t "nixfe-par-hello-$i" "$dir" >"$work/par-hello-$i.log" 2>&1 &
    pids+=($!)
    dir="$work/par-cw-$i"; fixture "$dir"; echo "par$i-$stamp" >"$dir/src/version"
    docker build -q -t "nixfe-par-cw-$i" "$dir" >"$work/par-cw-$i.log" 2>&1 &
    pids+=($!)
  done
  local bad=0
  for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
  ((bad == 0)) || { cat "$work"/par-*.log >"$work/last.log"; say "$bad of 8 builds failed"; return 1; }
  for i in 1 2 3 4; do
    [[ $(docker run --rm "nixfe-par-hello-$i") == "parallel hello $i $stamp" ]] || { say "hello $i wrong"; return 1; }
    [[ $(docker run --rm "nixfe-par-cw-$i") == "grow par$i-$stamp"* ]] || { say "cachework $i wrong"; return 1; }
    docker rmi -f "nixfe-par-hello-$i" "nixfe-par-cw-$i" >/dev/null
  done
  # Both projects share one store (same builder and namespace): verify all of it.
  spec "$work/verify.toml" ".#app" $'[cache]\nverify = true'
  build "$work/cw" -f "$work/verify.toml" --no-cache -t nixfe-cache-verify || { say "verify build failed"; return 1; }
  grep -q 'nix-frontend: store verified' "$work/last.log" || { say "store did not verify"; return 1; }
  docker rmi -f nixfe-cache-verify >/dev/null
}

interrupted_build() {
  spec "$work/slow.toml" ".#slow"
  setsid docker build --progress=plain -f "$work/slow.toml" "$work/cw" >"$work/slow.log" 2>&1 &
  local pid=$! waited=0
  until grep -q 'slow: started' "$work/slow.log"; do
    sleep 1; waited=$((waited + 1))
    ((waited < 120)) || { cp "$work/slow.log" "$work/last.log"; kill -9 -- -"$pid"; say "slow build never started"; return 1; }
  done
  kill -9 -- -"$pid"; wait "$pid" 2>/dev/null
  # The next build takes the store's lock once BuildKit has cancelled the
  # killed one; it must succeed and leave a store that verifies.
  spec "$work/after.toml" ".#app" $'[cache]\nverify = true'
  echo "after-kill-$stamp" >"$work/cw/src/version"
  timeout 300 docker build --progress=plain -f "$work/after.toml" -t nixfe-cache-after "$work/cw" >"$work/last.log" 2>&1 ||
    { say "build after the interruption failed"; return 1; }
  grep -q 'nix-frontend: store verified' "$work/last.log" || { say "store did not verify"; return 1; }
  [[ $(docker run --rm nixfe-cache-after) == "grow after-kill-$stamp"* ]] || { say "wrong image"; return 1; }
  docker rmi -f nixfe-cache-after >/dev/null
}

gc_budget() {
  local budget=$((24 * 1000 * 1000)) i size max=0 collected=0
  spec "$work/gc.toml" ".#app" $'[cache]\nmax-size = "24MB"'
  for i in $(seq 1 20); do
    echo "gc-$i-$stamp" >"$work/cw/src/version"
    build "$work/cw" -f "$work/gc.toml" "$(ns gc)" -t nixfe-cache-gc || { say "build $i failed"; return 1; }
    size=$(sed -n 's/.*nix-frontend: store is \([0-9]*\) bytes (budget.*/\1/p' "$work/last.log" | tail -n1)
    [[ -n $size ]] || { say "build $i reported no store size"; return 1; }
    ((size <= budget)) || { say "build $i: store is $size bytes, over $budget"; return 1; }
    ((size > max)) && max=$size
    grep -q 'collecting garbage' "$work/last.log" && collected=$((collected + 1))
  done
  ((collected > 0)) || { say "20 builds never needed a collection: the test proves nothing"; return 1; }
  [[ $(docker run --rm nixfe-cache-gc) == "grow gc-20-$stamp"* ]] || { say "wrong image"; return 1; }
  # The last build's roots survived: a forced rebuild builds nothing.
  build "$work/cw" -f "$work/gc.toml" "$(ns gc)" --no-cache -t nixfe-cache-gc || { say "no-change rebuild failed"; return 1; }
  ! grep -q "building '" "$work/last.log" || { say "no-change rebuild built something"; return 1; }
  say "store peaked at $max bytes of $budget; $collected collections in 20 builds"
  docker rmi -f nixfe-cache-gc >/dev/null
}

# Two projects on one store, over its budget: collecting garbage for one
# keeps the other's newest build (before, a second pass kept only the
# collecting build's roots).
gc_keeps_other_projects() {
  local n
  n=$(ns gcp)
  rm -rf "$work/gcp-a" "$work/gcp-b"
  cp -r "$work/cw" "$work/gcp-a"; cp -r "$work/cw" "$work/gcp-b"
  echo "gcp-a-$stamp" >"$work/gcp-a/src/version"; echo "gcp-b-$stamp" >"$work/gcp-b/src/version"
  spec "$work/gcp-a/Dockerfile" ".#app" $'[cache]\nproject = "gcp-a"\nmax-size = "2MiB"'
  spec "$work/gcp-b/Dockerfile" ".#app" $'[cache]\nproject = "gcp-b"\nmax-size = "2MiB"'
  build "$work/gcp-a" "$n" -t nixfe-cache-gcp-a || { say "build of project a failed"; return 1; }
  build "$work/gcp-b" "$n" -t nixfe-cache-gcp-b || { say "build of project b failed"; return 1; }
  grep -q 'collecting garbage' "$work/last.log" || { say "project b's build collected no garbage: the test proves nothing"; return 1; }
  local notice=0
  grep -q 'the newest build of every project sharing this store is kept' "$work/last.log" || notice=1
  # Project a's newest build kept its roots: a forced rebuild builds nothing.
  build "$work/gcp-a" "$n" --no-cache -t nixfe-cache-gcp-a || { say "rebuild of project a failed"; return 1; }
  ! grep -q "building '" "$work/last.log" || { say "project a's paths were collected: $(grep -o "building '[^']*'" "$work/last.log" | head -n3 | xargs)"; return 1; }
  ((notice == 0)) || { say "no notice that the budget cannot be met"; return 1; }
  [[ $(docker run --rm nixfe-cache-gcp-a) == "grow gcp-a-$stamp"* ]] || { say "wrong image for project a"; return 1; }
  docker rmi -f nixfe-cache-gcp-a nixfe-cache-gcp-b >/dev/null
}

# Project a's derivation writes into project b's app in the shared store
# (derivations run as root, unsandboxed). b's next layer ops find the path
# changed against nix's hash and repair it: b's image stays b's.
foreign_write() {
  local n out
  n=$(ns foreign)
  rm -rf "$work/fw-a" "$work/fw-b"; cp -r "$work/cw" "$work/fw-b"; mkdir -p "$work/fw-a"
  echo "fw-$stamp" >"$work/fw-b/src/version"
  spec "$work/fw-b/Dockerfile" ".#app"
  build "$work/fw-b" "$n" -t nixfe-cache-fw-b || { say "first build of project b failed"; return 1; }
  cat >"$work/fw-a/flake.nix" <<NIX
{
  outputs = { self }: {
    packages.x86_64-linux.default = derivation {
      name = "intruder";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      stamp = "$stamp";
      args = [ "-c" ''
        for f in /nix/store/*-growapp/bin/app; do chmod u+w "\$f"; echo 'echo intruded' >> "\$f"; done
        mkdir -p \$out/bin; echo '#!/bin/sh' > \$out/bin/intruder; chmod +x \$out/bin/intruder
      '' ];
    };
  };
}
NIX
  spec "$work/fw-a/Dockerfile" ".#default"
  build "$work/fw-a" "$n" -t nixfe-cache-fw-a || { say "build of project a failed"; return 1; }
  # Project b again, with new layer ops: one layer holds every path.
  spec "$work/fw-b/Dockerfile" ".#app" $'[image]\nlayers = 1'
  build "$work/fw-b" "$n" -t nixfe-cache-fw-b || { say "second build of project b failed"; return 1; }
  out=$(docker run --rm nixfe-cache-fw-b)
  [[ $out == "grow fw-$stamp" ]] || { say "project b's image prints: $(tr '\n' ' ' <<<"$out")"; return 1; }
  if ! grep -q 'a store path changed after nix made it' "$work/last.log"; then
    # Seen once on 26.1-containerd: b's second build was given another
    # /nix cache mount (its paths were missing, and nix ran again), so
    # there was nothing of a's to repair.
    if grep -q 'is missing from the /nix store cache' "$work/last.log"; then
      skip "project b's second build got another /nix cache mount than project a's: nothing to repair"
      return
    fi
    say "the change went unnoticed: did project a write into the path? the test proves nothing"; return 1
  fi
  docker rmi -f nixfe-cache-fw-a nixfe-cache-fw-b >/dev/null
}

secrets_stay_out() {
  local netrc=machine-example-org-login-u-password-NETRC$stamp tokens=TOKEN$stamp
  printf 'machine example.org login u password %s\n' "NETRC$stamp" >"$work/netrc"
  printf 'access-tokens = example.org=%s\n' "$tokens" >"$work/tokens"
  spec "$work/secret.toml" ".#probe" $'[nix]\nsecrets = ["netrc"]\nconf-secrets = ["tokens"]\noptions = { netrc-file = "/run/secrets/netrc" }'
  build "$work/cw" -f "$work/secret.toml" -t nixfe-cache-secret \
    --secret "id=netrc,src=$work/netrc" --secret "id=tokens,src=$work/tokens" || { say "build failed"; return 1; }
  local want got
  want=$(sha256sum "$work/netrc" | cut -c1-16)
  got=$(docker run --rm nixfe-cache-secret)
  [[ $got == "probe netrc=$want ssh=no" ]] || { say "the nix step did not see the secret: $got"; return 1; }
  # Nowhere in the image: files, config, history; nor in the build log.
  local cid
  cid=$(docker create nixfe-cache-secret x)
  docker export "$cid" >"$work/fs.tar"; docker rm "$cid" >/dev/null
  docker image inspect nixfe-cache-secret >"$work/inspect.json"
  docker history --no-trunc nixfe-cache-secret >"$work/history.txt"
  local f
  for f in fs.tar inspect.json history.txt last.log; do
    if grep -aq -e "NETRC$stamp" -e "$tokens" "$work/$f"; then say "a secret value is in $f"; return 1; fi
  done
  docker rmi -f nixfe-cache-secret >/dev/null
}

# The LLB BuildKit ran is recorded in the provenance (mode=max): export the
# image with it as an OCI layout and search every blob, decompressed.
secrets_not_in_provenance() {
  containerd_store || skip "only the containerd store keeps attestations" || return
  local tokens=TOKEN$stamp
  printf 'machine example.org login u password %s\n' "NETRC$stamp" >"$work/netrc"
  printf 'access-tokens = example.org=%s\n' "$tokens" >"$work/tokens"
  spec "$work/secret.toml" ".#probe" $'[nix]\nsecrets = ["netrc"]\nconf-secrets = ["tokens"]\noptions = { netrc-file = "/run/secrets/netrc" }'
  docker buildx build --progress=plain -f "$work/secret.toml" --provenance=mode=max \
    --secret "id=netrc,src=$work/netrc" --secret "id=tokens,src=$work/tokens" \
    --output "type=oci,dest=$work/secret-oci.tar" "$work/cw" >"$work/last.log" 2>&1 || { say "build failed"; return 1; }
  rm -rf "$work/oci"; mkdir -p "$work/oci" && tar -xf "$work/secret-oci.tar" -C "$work/oci" || { say "not an OCI tar"; return 1; }
  local b text found_prov=0 found_mount=0
  for b in "$work"/oci/blobs/sha256/*; do
    if [[ $(head -c2 "$b" | od -An -tx1 | tr -d ' \n') == 1f8b ]]; then text=$(gzip -dc <"$b" | tr -d '\0'); else text=$(tr -d '\0' <"$b"); fi
    if grep -aq -e "NETRC$stamp" -e "$tokens" <<<"$text"; then say "a secret value is in blob ${b##*/}"; return 1; fi
    grep -aq 'https://slsa.dev/provenance' <<<"$text" && found_prov=1
    # The provenance holds the LLB: the secret mounts by id, not by value.
    grep -aq 'nix-frontend-nix' <<<"$text" && grep -aq 'netrc' <<<"$text" && found_mount=1
  done
  ((found_prov)) || { say "no provenance in the export: the search proves nothing"; return 1; }
  ((found_mount)) || { say "the provenance does not hold the LLB of the nix step"; return 1; }
}

ssh_forwarded() {
  command -v ssh-agent >/dev/null || skip "no ssh-agent on this machine" || return
  local dir="$work/ssh" out rc=0
  fixture "$dir"; echo "$stamp-ssh" >"$dir/src/stamp"
  spec "$dir/Dockerfile" ".#probe" $'[nix]\nssh = true'
  eval "$(ssh-agent -s)" >/dev/null
  build "$dir" --ssh default -t nixfe-cache-ssh || rc=$?
  ssh-agent -k >/dev/null
  ((rc == 0)) || { say "build with --ssh default failed"; return 1; }
  out=$(docker run --rm nixfe-cache-ssh)
  [[ $out == "probe netrc=none ssh=yes" ]] || { say "the nix step saw no agent: $out"; return 1; }
  grep -q 'ssh id=default' < <("$top/target/x86_64-unknown-linux-gnu/release/nix-frontend" llb "$dir/Dockerfile") ||
    { say "the LLB has no ssh mount"; return 1; }
  docker rmi -f nixfe-cache-ssh >/dev/null
}

binary_cache_context() {
  local dir="$work/bc"
  fixture "$dir"; echo "bc-$stamp" >"$dir/src/version"
  # Fill a binary cache with the library, as a CI job or a colleague would.
  docker run --rm --network none -v "$dir:/src" local/nix:test sh -c \
    'nix build --out-link /tmp/l path:/src#growlib && nix copy --to file:///src/nix-cache /tmp/l' >"$work/last.log" 2>&1 ||
    { say "cannot fill the binary cache"; return 1; }
  spec "$dir/Dockerfile" ".#app" $'[nix]\nbinary-caches = ["nix-cache"]'
  build "$dir" "$(ns bc)" -t nixfe-cache-bc || { say "build failed"; return 1; }
  grep -qE "copying path '/nix/store/[a-z0-9]+-growlib' from 'file:///nix-frontend/caches/0" "$work/last.log" ||
    { say "growlib was not substituted from the context cache"; return 1; }
  ! grep -q "building '/nix/store/[a-z0-9]*-growlib.drv'" "$work/last.log" || { say "growlib was built"; return 1; }
  [[ $(docker run --rm nixfe-cache-bc) == "grow bc-$stamp"* ]] || { say "wrong image"; return 1; }
  docker rmi -f nixfe-cache-bc >/dev/null
}

# signed_http_cache: a binary cache over http, as nearly every user's flake
# has one: a `nix copy` folder signed with a key made here, served on
# 127.0.0.1 by python's http.server for this test alone, reached with
# --network=host (the builder's own network has no route to the host's
# loopback). With the cache's key trusted, nix substitutes growlib from it;
# with another key trusted, nix refuses the signature and builds growlib.
signed_http_cache() (
  local dir="$work/hc" cache="$work/hc-cache" keys="$work/hc-keys" port="" pid
  fixture "$dir"; echo "hc-$stamp" >"$dir/src/version"
  rm -rf "$cache" "$keys"; mkdir -p "$cache" "$keys"
  docker run --rm --network none -v "$dir:/src:ro" -v "$cache:/cache" -v "$keys:/keys" local/nix:test sh -c '
    set -e
    for k in one two; do
      nix key generate-secret --key-name "nixfe-test-$k" >/keys/$k.sec
      nix key convert-secret-to-public </keys/$k.sec >/keys/$k.pub
    done
    nix build --out-link /tmp/l path:/src#growlib
    nix copy --to "file:///cache?secret-key=/keys/one.sec" /tmp/l' >"$work/last.log" 2>&1 ||
    { say "cannot fill the signed binary cache: $(tail -n3 "$work/last.log")"; return 1; }
  ls "$cache"/*.narinfo >/dev/null 2>&1 || { say "nix copy wrote no narinfo"; return 1; }
  python3 -u -m http.server --bind 127.0.0.1 --directory "$cache" 0 >"$work/hc-http.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
  for _ in $(seq 100); do
    port=$(grep -m1 -oE 'port [0-9]+' "$work/hc-http.log" | grep -oE '[0-9]+') && break
    sleep 0.1
  done
  [[ -n $port ]] || { say "the http server did not start: $(cat "$work/hc-http.log")"; return 1; }
  # with_key KEY: the spec trusting the cache under KEY's public key.
  with_key() {
    spec "$dir/Dockerfile" ".#app" "[nix]
options = { extra-substituters = \"http://127.0.0.1:$port\", extra-trusted-public-keys = \"$(<"$keys/$1.pub")\" }"
  }
  with_key one
  build "$dir" "$(ns hc-one)" --network=host -t nixfe-cache-hc || { say "build with the cache's key failed: $(grep -m2 -E 'error:|ERROR' "$work/last.log")"; return 1; }
  grep -qE "copying path '/nix/store/[a-z0-9]+-growlib' from 'http://127\.0\.0\.1:$port'" "$work/last.log" ||
    { say "growlib was not substituted from the http cache"; return 1; }
  ! grep -q "building '/nix/store/[a-z0-9]*-growlib.drv'" "$work/last.log" || { say "growlib was built"; return 1; }
  grep -qE '"GET /nar/[^ ]+ HTTP/1\.[01]" 200' "$work/hc-http.log" || { say "the server sent no nar"; return 1; }
  [[ $(docker run --rm nixfe-cache-hc) == "grow hc-$stamp"* ]] || { say "wrong image"; return 1; }
  # Another key trusted: the cache's signature does not count.
  with_key two
  build "$dir" "$(ns hc-two)" --network=host -t nixfe-cache-hc || { say "build trusting another key failed: $(grep -m2 -E 'error:|ERROR' "$work/last.log")"; return 1; }
  grep -q "building '/nix/store/[a-z0-9]*-growlib.drv'" "$work/last.log" || { say "growlib was not built under another key"; return 1; }
  ! grep -q "copying path '/nix/store/[a-z0-9]*-growlib' from 'http" "$work/last.log" || { say "growlib was substituted under another key"; return 1; }
  docker rmi -f nixfe-cache-hc >/dev/null
)

store_pruned() {
  local n=$(ns pruned)
  echo "pruned-$stamp" >"$work/cw/src/version"
  build "$work/cw" "$n" -t nixfe-cache-pruned || { say "first build failed"; return 1; }
  local pruned
  pruned=$(docker builder prune -f --filter type=exec.cachemount 2>&1) || { say "cannot prune cache mounts: $pruned"; return 1; }
  # The containerd image store keeps cache mounts referenced and reclaims
  # nothing here: then there is no pruned store to notice.
  if grep -qE '^Total( reclaimed space)?:[[:space:]]+0B$' <<<"$pruned"; then
    skip "docker builder prune --filter type=exec.cachemount reclaims nothing on this engine"
    return
  fi
  # New layer ops over the same (cached) nix step, whose paths are gone now.
  # (The spec keeps its name: it is left out of what nix sees, so the nix
  # step stays a cache hit.)
  spec "$work/cw/Dockerfile" ".#app" $'[image]\nlayers = 2'
  build "$work/cw" "$n" -t nixfe-cache-pruned || { say "build after the prune failed"; return 1; }
  spec "$work/cw/Dockerfile" ".#app"
  grep -q 'is missing from the /nix store cache' "$work/last.log" || { say "the prune was not noticed: the test proves nothing"; return 1; }
  # The store was new for the first build, so its derivations were built as
  # group steps, which the prune kept: only the app is built again.
  grep -q "building '/nix/store/[a-z0-9]*-growapp.drv'" "$work/last.log" || { say "nix did not run again"; return 1; }
  ! grep -q 'toolchain: building' "$work/last.log" || { say "the toolchain's group step ran again"; return 1; }
  if [[ $kind != 20.10 ]]; then # BuildKit 0.8 has no Warn call
    grep -q 'StoreCachePruned' "$work/last.log" || { say "the user was not told"; return 1; }
    grep -q 'StoreCacheMissing' "$work/last.log" || { say "not told the evaluation ran again"; return 1; }
  fi
  [[ $(docker run --rm nixfe-cache-pruned) == "grow pruned-$stamp" ]] || { say "wrong image"; return 1; }
  docker rmi -f nixfe-cache-pruned >/dev/null
}

run_all cache builder_change builder_without_store concurrent_builds interrupted_build gc_budget gc_keeps_other_projects \
  foreign_write secrets_stay_out \
  secrets_not_in_provenance ssh_forwarded binary_cache_context signed_http_cache store_pruned
