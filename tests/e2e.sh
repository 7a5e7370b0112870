#!/usr/bin/env bash
# End-to-end tests against a real engine: plain `docker build` with
# `# syntax=local/nix-frontend:dev`, a real Nix in the builder image.
#
# Usage: tests/e2e.sh KIND   (KIND: 20.10, 26.1, 26.1-containerd or sid)
# Expects the engine started and the images loaded (scripts/test.sh does it).
# Prints one line per test and a closing "e2e(KIND): N passed, N failed, N skipped".
#
# Index of tests:
#   example_runs          the example builds and `docker run` prints its greeting
#   closure_is_exact      /nix/store in the image is exactly nix's runtime closure
#   source_change         a source edit rebuilds the app only; the /nix cache is reused
#   noop_rebuild          an unchanged rebuild is fully cached, same image ID
#   spec_dockerignore     <spec>.dockerignore beside the spec wins over .dockerignore
#   spec_in_subdir        -f sub/app.toml: the spec is left out of what nix sees by its path
#                         (editing it keeps the nix step cached), a root app.toml stays in
#   floor_forwards        the bench's floor image hands a Dockerfile to the engine's own frontend
#   report_errors_warn    a package whose meta throws builds, with a warning carrying nix's error
#   unknown_key           a bad spec key fails with its line in the output
#   app_change_layers     after an app-only change every layer but the app's keeps its diffID,
#                         and the unchanged layer ops are cache hits (no copy ran)
#   layer_budget          image.layers bounds the layer count (grouping small paths)
#   clean_builds_same_id  two builds from an empty build cache give the same image ID
#   source_date_epoch     SOURCE_DATE_EPOCH sets created and history times
#   valkyrie_like         the blog's image as a spec: base + run + user + copy + --target agent
#   scratch_keys          every [image] key on scratch, --build-arg, --label, bin/ fallback
#   spec_errors           bad specs and options fail with the spec line (and nix's failure
#                         points at the `flake` line)
#   subrequests           buildx --print outline|targets|lint (26.1 kinds; buildx 0.13 has no --call)
#   build_warnings        lint findings shown as warnings in a normal build (Warn: BuildKit 0.10+)
#   scratch_essentials    on scratch a process writes /tmp (1777), reads the CA bundle at
#                         SSL_CERT_FILE and a zone file under TZDIR, finds nsswitch.conf
#   healthcheck           the spec's health check is the image's; it turns a container healthy,
#                         and a failing one unhealthy
#   stop_signal           `docker stop` sends the spec's stop signal to the process
#   nix_db                the image's own Nix database registers the closure: nix-store
#                         --verify --check-contents passes inside; registered at the image's
#                         epoch, so two builds from an empty cache give one image ID
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"
tag="nixfe-e2e-hello:${kind//./-}"

# A fresh copy of the example per run, with a greeting of its own, so that
# "changed" and "unchanged" are about this run even on a warm engine.
cp -r "$top/examples/hello" "$work/hello"
stamp="run $(date +%s%N)"
echo "Hello from e2e ($stamp)" >"$work/hello/src/greeting.txt"

example_runs() {
  build "$work/hello" -t "$tag" || { say "docker build failed"; return 1; }
  local out
  out=$(docker run --rm "$tag") || { say "docker run failed"; return 1; }
  [[ $out == "Hello from e2e ($stamp)" ]] || { say "unexpected output: $out"; return 1; }
}

closure_is_exact() {
  # The oracle: nix itself, in the builder image, on the same source.
  local want got
  want=$(docker run --rm --network none -v "$work/hello:/src:ro" local/nix:test sh -c \
    'nix build --out-link /tmp/r path:/src#default >/dev/null 2>&1 && nix-store -qR /tmp/r' \
    | sed 's#^/nix/store/##' | sort -u) || { say "nix oracle failed"; return 1; }
  got=$(store_of "$tag") || { say "cannot list the image"; return 1; }
  [[ -n $want && $want == "$got" ]] || { say "store differs: want [$want] got [$got]"; return 1; }
  [[ $(wc -l <<<"$got") -ge 3 ]] || { say "closure has fewer than 3 paths"; return 1; }
  ! grep -q -- '-toolchain$' <<<"$got" || { say "build-only toolchain reached the image"; return 1; }
}

source_change() {
  local before after
  before=$(docker image inspect -f '{{.Id}}' "$tag") || return 1
  echo "Changed in e2e ($stamp)" >"$work/hello/src/greeting.txt"
  build "$work/hello" -t "$tag" || { say "rebuild failed"; return 1; }
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  [[ $before != "$after" ]] || { say "image did not change"; return 1; }
  [[ $(docker run --rm "$tag") == "Changed in e2e ($stamp)" ]] || { say "new output missing"; return 1; }
  # nix ran (the greeting was rebuilt) but the toolchain came from the /nix cache.
  grep -q "building '/nix/store/[a-z0-9]*-greeting.drv'" "$work/last.log" || { say "nix did not rebuild greeting"; return 1; }
  ! grep -q 'toolchain: building' "$work/last.log" || { say "toolchain was rebuilt: /nix cache not reused"; return 1; }
}

noop_rebuild() {
  local before after
  before=$(docker image inspect -f '{{.Id}}' "$tag") || return 1
  build "$work/hello" -t "$tag" || { say "rebuild failed"; return 1; }
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  [[ $before == "$after" ]] || { say "image ID changed: $before -> $after"; return 1; }
  # Every op of ours is a cache hit: the nix step and each layer.
  local n
  for n in '\[nix\] build ' '\[image\] layer 1/' '\[image\] layer 3/'; do
    step_cached "$n" || { say "step $n was not cached"; return 1; }
  done
  ! grep -q 'building .*\.drv' "$work/last.log" || { say "nix built something"; return 1; }
}

# `<spec>.dockerignore` beside the spec wins over the context's
# `.dockerignore`, as BuildKit reads them: a file it names is not what nix
# sees, so adding it keeps the nix step a cache hit.
spec_dockerignore() {
  local d="$work/di"
  rm -rf "$d"; cp -r "$top/tests/fixtures/layered" "$d"
  echo "di $(date +%s%N)" >"$d/src/app-message"
  printf 'notes.txt\n' >"$d/Dockerfile.dockerignore"
  printf 'nothing-here\n' >"$d/.dockerignore"
  build "$d" -t nixfe-e2e-di || { say "first build failed"; return 1; }
  echo "a note" >"$d/notes.txt"
  build "$d" -t nixfe-e2e-di || { say "build with notes.txt failed"; return 1; }
  step_cached '\[nix\] build ' || { say "notes.txt reached nix: the nix step ran again"; return 1; }
  docker rmi -f nixfe-e2e-di >/dev/null 2>&1 || true
}

# BuildKit tells the frontend the spec's file name only: with the spec in
# a subdirectory, a root file of the same name is the flake's, not the spec.
spec_in_subdir() {
  local d="$work/sub"
  rm -rf "$d"; cp -r "$top/tests/fixtures/layered" "$d"
  echo "sub $(date +%s%N)" >"$d/src/app-message"
  mkdir -p "$d/sub"
  mv "$d/Dockerfile" "$d/sub/app.toml"
  echo "not the spec: a file of the flake's" >"$d/app.toml"
  build "$d" -f "$d/sub/app.toml" -t nixfe-e2e-sub || { say "first build failed"; return 1; }
  echo "# an edit of the spec" >>"$d/sub/app.toml"
  build "$d" -f "$d/sub/app.toml" -t nixfe-e2e-sub || { say "build after the spec edit failed"; return 1; }
  step_cached '\[nix\] build ' || { say "sub/app.toml reached nix: the nix step ran again"; return 1; }
  echo "an edit of the flake's app.toml" >>"$d/app.toml"
  build "$d" -f "$d/sub/app.toml" -t nixfe-e2e-sub || { say "build after the root app.toml edit failed"; return 1; }
  ! step_cached '\[nix\] build ' || { say "the root app.toml did not reach nix: the nix step was cached"; return 1; }
  docker rmi -f nixfe-e2e-sub >/dev/null 2>&1 || true
}

# The benchmark's floor: the frontend image with NIX_FRONTEND_FORWARD set
# hands the whole build to the engine's own Dockerfile frontend.
floor_forwards() {
  local d="$work/floor" out
  # scripts/build-frontend.sh makes local/nix-frontend:floor beside the dev image.
  docker image inspect local/nix-frontend:floor >/dev/null 2>&1 || { say "no local/nix-frontend:floor"; return 1; }
  rm -rf "$d"; mkdir -p "$d"
  printf '# syntax=local/nix-frontend:floor\nFROM local/nix:test\nARG WHAT\nRUN echo "floor $WHAT" > /floor\n' >"$d/Dockerfile"
  # Cut at 3 minutes: a client that hangs must not hold up the suites.
  timeout 180 docker build --progress=plain --build-arg "WHAT=$$" -t nixfe-e2e-floor "$d" >"$work/last.log" 2>&1 ||
    { say "build through the floor failed (or hung)"; return 1; }
  out=$(docker run --rm nixfe-e2e-floor cat /floor)
  [[ $out == "floor $$" ]] || { say "the image has '$out'"; return 1; }
  grep -q 'local/nix-frontend:floor' "$work/last.log" || { say "the build did not go through the floor image"; return 1; }
  docker rmi -f nixfe-e2e-floor >/dev/null 2>&1 || true
}

# A package whose meta cannot be evaluated (meta.license throws): the build
# goes on with the one program in bin/, and says what nix could not read.
report_errors_warn() {
  [[ $kind != 20.10 ]] || skip "BuildKit 0.8 (Docker 20.10) has no Warn call" || return
  local d="$work/me"
  rm -rf "$d"; mkdir -p "$d"
  cat >"$d/flake.nix" <<'NIX'
{
  outputs = { self }: {
    packages.x86_64-linux.default = (derivation {
      name = "metafail";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin && echo '#!/bin/sh' > $out/bin/m && chmod +x $out/bin/m" ];
    }) // { meta.license = throw "no license for this package"; };
  };
}
NIX
  printf '# syntax=local/nix-frontend:dev\nflake = ".#default"\nbuilder = "local/nix:test"\n' >"$d/Dockerfile"
  build "$d" -t nixfe-e2e-metafail || { say "build failed"; return 1; }
  grep -q "NixMetaFailed: nix could not evaluate the package's meta: error: no license for this package" "$work/last.log" ||
    { say "no warning with nix's error"; return 1; }
  docker rmi -f nixfe-e2e-metafail >/dev/null 2>&1 || true
}

unknown_key() {
  mkdir -p "$work/bad"
  cp "$work/hello/flake.nix" "$work/bad/"
  cp -r "$work/hello/src" "$work/bad/"
  printf '# syntax=local/nix-frontend:dev\nbuilder = "local/nix:test"\n\nflakes = ".#default"\n' >"$work/bad/Dockerfile"
  if build "$work/bad" -t nixfe-e2e-bad; then say "a bad spec built"; return 1; fi
  grep -q 'Dockerfile line 4: unknown key `flakes`' "$work/last.log" || { say "no line-4 message"; return 1; }
  grep -q 'hint: expected one of `flake`' "$work/last.log" || { say "no hint"; return 1; }
}

cp -r "$top/tests/fixtures/layered" "$work/layered"
echo "app $stamp" >"$work/layered/src/app-message"

app_change_layers() {
  local tag=nixfe-e2e-layered before after
  build "$work/layered" -t $tag || { say "build failed"; return 1; }
  before=$(diffids $tag)
  # On scratch the two essentials (/tmp, nsswitch.conf) come first.
  [[ $(wc -l <<<"$before") -eq 6 ]] || { say "want 6 layers (/tmp nsswitch.conf busybox liba libb app), got: $(echo $before)"; return 1; }
  echo "app changed $stamp" >"$work/layered/src/app-message"
  build "$work/layered" -t $tag || { say "rebuild failed"; return 1; }
  after=$(diffids $tag)
  [[ $(docker run --rm $tag | head -n1) == "app changed $stamp" ]] || { say "app output not updated"; return 1; }
  [[ $(head -n5 <<<"$before") == "$(head -n5 <<<"$after")" ]] || { say "lower layers changed: $before / $after"; return 1; }
  [[ $(tail -n1 <<<"$before") != "$(tail -n1 <<<"$after")" ]] || { say "app layer did not change"; return 1; }
  local k
  for k in 1 2 3; do
    step_cached "\[image\] layer $k/4" || { say "layer $k/4 op ran again"; return 1; }
  done
  ! step_cached '\[image\] layer 4/4' || { say "app layer op was cached"; return 1; }
  docker rmi -f $tag >/dev/null
}

layer_budget() {
  local n
  for n in 2 1; do
    printf '\n[image]\nlayers = %s\n' "$n" | cat "$work/layered/Dockerfile" - >"$work/layered/Budget"
    build "$work/layered" -f "$work/layered/Budget" -t nixfe-e2e-budget || { say "build with layers=$n failed"; return 1; }
    # `layers` counts store layers; the two essentials come on top of it.
    [[ $(diffids nixfe-e2e-budget | wc -l) -eq $((n + 2)) ]] || { say "layers=$n gave $(diffids nixfe-e2e-budget | wc -l) with the 2 essentials"; return 1; }
    [[ $(docker run --rm nixfe-e2e-budget | head -n1) == "app changed $stamp" ]] || { say "layers=$n image does not run"; return 1; }
  done
  docker rmi -f nixfe-e2e-budget >/dev/null
}

clean_builds_same_id() {
  local first second
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  build "$work/hello" -t nixfe-e2e-repro || { say "first clean build failed"; return 1; }
  first=$(docker image inspect -f '{{.Id}}' nixfe-e2e-repro)
  docker rmi -f nixfe-e2e-repro >/dev/null
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  build "$work/hello" -t nixfe-e2e-repro || { say "second clean build failed"; return 1; }
  second=$(docker image inspect -f '{{.Id}}' nixfe-e2e-repro)
  grep -q 'toolchain: building' "$work/last.log" || { say "second build was not from an empty cache"; return 1; }
  [[ $first == "$second" ]] || { say "image IDs differ: $first $second"; return 1; }
  docker rmi -f nixfe-e2e-repro >/dev/null
}

source_date_epoch() {
  build "$work/hello" -t nixfe-e2e-sde --build-arg SOURCE_DATE_EPOCH=1700000000 || { say "build failed"; return 1; }
  local created hist
  created=$(docker image inspect -f '{{.Created}}' nixfe-e2e-sde)
  [[ $created == 2023-11-14T22:13:20Z ]] || { say "created is $created, not 2023-11-14T22:13:20Z"; return 1; }
  # Every history entry at that second (RFC 3339 in whatever zone the CLI picks).
  hist=$(docker history --no-trunc --human=false --format '{{.CreatedAt}}' nixfe-e2e-sde | sort -u)
  [[ $(wc -l <<<"$hist") -eq 1 ]] || { say "history has several times: $hist"; return 1; }
  [[ $(date -u -d "$hist" +%s) == 1700000000 ]] || { say "history time is $hist"; return 1; }
  docker rmi -f nixfe-e2e-sde >/dev/null
}

valkyrie_like() {
  local tag=nixfe-e2e-valkyrie out
  cp -r "$top/examples/valkyrie-like" "$work/valkyrie"
  build "$work/valkyrie" -t $tag || { say "build failed"; return 1; }
  out=$(docker run --rm $tag) || { say "run failed"; return 1; }
  grep -qx 'valkyrie: uid=1024 user=valnix pwd=/home/valnix tz=UTC' <<<"$out" || { say "got: $out"; return 1; }
  grep -qx 'valkyrie: data valnix 640: rippkgs index 24.11 (stand-in for the sqlite file)' <<<"$out" || { say "got: $out"; return 1; }
  [[ $(docker image inspect -f '{{json .Config.ExposedPorts}}' $tag) == '{"8080/tcp":{}}' ]] || { say "ports"; return 1; }
  [[ $(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.source"}}' $tag) == https://example.org/valkyrie ]] || { say "label"; return 1; }
  build "$work/valkyrie" --target agent -t $tag-agent || { say "--target agent failed"; return 1; }
  out=$(docker run --rm $tag-agent)
  grep -qx 'agent: uid=1024 user=valnix pwd=/home/valnix tz=UTC' <<<"$out" || { say "agent got: $out"; return 1; }
  build "$work/valkyrie" --target nope -t $tag-nope && { say "unknown target built"; return 1; }
  grep -q 'unknown target `nope`' "$work/last.log" && grep -q 'hint: known targets: agent' "$work/last.log" || { say "unknown target message"; return 1; }
  docker rmi -f $tag $tag-agent >/dev/null
}

scratch_keys() {
  local tag=nixfe-e2e-keys out
  cp -r "$top/examples/valkyrie-like" "$work/keysctx"
  build "$work/keysctx" -f "$top/tests/fixtures/keys.toml" -t $tag \
    --build-arg ZONE=Europe/Test --label org.example.overridden=cli || { say "build failed"; return 1; }
  out=$(docker run --rm $tag) || { say "run failed"; return 1; }
  grep -qx 'agent: uid=4242 user=app pwd=/data tz=Europe/Test' <<<"$out" || { say "got: $out"; return 1; }
  local cfg
  cfg=$(docker image inspect -f '{{json .Config.Cmd}} {{json .Config.ExposedPorts}} {{.Config.User}} {{.Config.WorkingDir}} {{index .Config.Labels "org.example.kind"}} {{index .Config.Labels "org.example.overridden"}}' $tag)
  [[ $cfg == '["--verbose"] {"53/udp":{},"9090/tcp":{}} 4242:4242 /data keys cli' ]] || { say "config: $cfg"; return 1; }
  # Every entry of every layer has the epoch's time (the user's /etc and
  # home, the essentials, /nix/store, the copies) or, inside a store path,
  # the time nix gives every store file (1).
  local times; times=$(layer_times $tag | grep -vx '1970-01-01 00:00:01')
  [[ $times == "1970-01-01 00:00:00" ]] || { say "layer times: $(echo $times)"; return 1; }
  docker rmi -f $tag >/dev/null
}

# expect_failure NAME SPEC_TEXT PATTERN [docker build args…]: the build fails
# and its output has PATTERN (grep -E).
expect_failure() {
  local name=$1 text=$2 pattern=$3; shift 3
  mkdir -p "$work/err-$name"
  cp -r "$work/hello/flake.nix" "$work/hello/src" "$work/err-$name/"
  printf '%s\n' "$text" >"$work/err-$name/Dockerfile"
  if build "$work/err-$name" -t nixfe-e2e-err "$@"; then say "$name: built"; return 1; fi
  grep -qE -- "$pattern" "$work/last.log" || { say "$name: no match for $pattern"; return 1; }
}

spec_errors() {
  local head='# syntax=local/nix-frontend:dev
builder = "local/nix:test"'
  expect_failure type "$head"$'\nflake = 3' 'Dockerfile line 3: `flake`: expected a string, found integer `3`' || return 1
  expect_failure user "$head"$'\n[image]\nuser = "a:b"' 'Dockerfile line 4: `image.user`: "b" is not a numeric id' || return 1
  expect_failure arg "$head"$'\nflake = ".#${APP}"' 'Dockerfile line 3: `flake`: build arg `APP` is not defined' || return 1
  expect_failure attr "$head"$'\nflake = ".#nope"' 'Dockerfile line 3: `flake` \.#nope: nix build failed' || return 1
  grep -q "does not provide attribute" "$work/last.log" || { say "nix's own message missing"; return 1; }
  expect_failure entrypoint "$head"$'\n[image]\nentrypoint = ["bin/nope"]' 'Dockerfile line 4: `image.entrypoint`: bin/nope is not a program of /nix/store/[a-z0-9]+-hello' || return 1
  grep -q 'hint: it has: hello' "$work/last.log" || { say "entrypoint hint"; return 1; }
  expect_failure platform "$head" '`--platform`: "linux/mips64" is not supported' --platform linux/mips64 || return 1
  grep -qF 'hint: write OS/ARCH[/VARIANT]: linux/amd64, linux/arm64, linux/arm/v7' "$work/last.log" || { say "platform hint"; return 1; }
}

# lint_lines: buildx's lint output with every warning also as one line,
# "RULE: MESSAGE (line N)". buildx 0.13 prints our result.txt, which has that
# form; newer ones render the warnings themselves ("WARNING: RULE", the
# message, "FILE:N" and the snippet).
lint_lines() {
  awk '{ print }
    /^WARNING: [A-Za-z]+$/ { rule = $2; getline msg; print msg; getline at; print at
      n = split(at, p, ":"); printf "%s: %s (line %s)\n", rule, msg, p[n] }'
}

subrequests() {
  [[ $kind != 20.10 ]] || skip "Docker 20.10 has no buildx here" || return
  local out
  export BUILDX_EXPERIMENTAL=1 # buildx 0.13's --print is experimental
  out=$(docker buildx build --print targets "$work/valkyrie" 2>&1) || { say "targets failed: $out"; return 1; }
  grep -qE '^agent +the Valkyrie agent, same base and user$' <<<"$out" || { say "targets: $out"; return 1; }
  grep -qE '^default \(default\) ' <<<"$out" || { say "targets: $out"; return 1; }
  printf '# syntax=local/nix-frontend:dev\nflake = ".#${APP}"\nbuilder = "local/nix:test"\nsrc = ["cmd"]\n[image]\nuser = "admin:0"\n' >"$work/lint.toml"
  out=$(docker buildx build --print outline --build-arg APP=agent -f "$work/lint.toml" "$work/valkyrie" 2>&1) || { say "outline failed: $out"; return 1; }
  grep -qE '^APP +agent' <<<"$out" || { say "outline: $out"; return 1; }
  out=$(docker buildx build --print lint -f "$work/lint.toml" "$work/valkyrie" 2>&1 | lint_lines) || true
  grep -q 'UndefinedBuildArg: build arg `APP` is not defined; the build will fail (line 2)' <<<"$out" || { say "lint: $out"; return 1; }
  grep -q 'SrcMissesFlake: `src` does not include flake.nix, so nix will not find the flake (line 4)' <<<"$out" || { say "lint: $out"; return 1; }
  grep -q 'UserIsRoot: user "admin:0" has uid 0: the container runs as root (line 6)' <<<"$out" || { say "lint: $out"; return 1; }
  out=$(docker buildx build --print lint "$work/valkyrie" 2>&1) || true
  grep -q 'Check complete, no warnings found.' <<<"$out" || { say "clean lint: $out"; return 1; }
  # The entrypoint check builds (the cached nix step) and looks in bin/.
  sed 's#entrypoint = \["bin/valkyrie"\]#entrypoint = ["bin/valkyre"]#' "$work/valkyrie/Dockerfile" >"$work/typo.toml"
  out=$(docker buildx build --print lint -f "$work/typo.toml" "$work/valkyrie" 2>&1 | lint_lines) || true
  grep -q 'EntrypointNotFound: bin/valkyre is not in the package.s bin/ (valkyrie) (line 11)' <<<"$out" || { say "entrypoint lint: $out"; return 1; }
}

build_warnings() {
  [[ $kind != 20.10 ]] || skip "BuildKit 0.8 (Docker 20.10) has no Warn call" || return
  printf '# syntax=local/nix-frontend:dev\nflake = ".#agent"\nbuilder = "local/nix:test"\nsrc = ["flake.nix", "cmd"]\n[image]\nuser = "admin:0"\n' >"$work/warn.toml"
  build "$work/valkyrie" -f "$work/warn.toml" -t nixfe-e2e-warn || { say "build failed"; return 1; }
  grep -q 'UserIsRoot: user "admin:0" has uid 0: the container runs as root' "$work/last.log" || { say "no warning"; return 1; }
  docker rmi -f nixfe-e2e-warn >/dev/null
}


cp -r "$top/tests/fixtures/minimal" "$work/min"
min_tag=nixfe-e2e-min
min_built=0
# build_min: the minimal fixture's image, built once for the tests below.
build_min() {
  ((min_built)) && return 0
  build "$work/min" -t "$min_tag" || { say "build failed"; return 1; }
  min_built=1
}
# wait_health CONTAINER WANT: up to 30 s for the health status WANT.
wait_health() {
  local i st
  for ((i = 0; i < 60; i++)); do
    st=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)
    [[ $st == "$2" ]] && return 0
    sleep 0.5
  done
  say "health of $1 is $st, want $2"
  return 1
}

scratch_essentials() {
  build_min || return 1
  local out
  out=$(docker run --rm "$min_tag" probe 2>/dev/null) || { say "run failed: $out"; return 1; }
  grep -qx 'tmp: hi mode 1777' <<<"$out" || { say "tmp: $out"; return 1; }
  grep -qx 'ca: -----BEGIN CERTIFICATE-----' <<<"$out" || { say "CA bundle: $out"; return 1; }
  grep -qx 'zone: TZif' <<<"$out" || { say "zone file: $out"; return 1; }
  grep -qx 'nsswitch: hosts: files dns' <<<"$out" || { say "nsswitch: $out"; return 1; }
  local env
  env=$(docker image inspect -f '{{json .Config.Env}}' "$min_tag")
  grep -q '"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"' <<<"$env" && grep -q '"TZDIR=/usr/share/zoneinfo"' <<<"$env" ||
    { say "env: $env"; return 1; }
}

healthcheck() {
  build_min || return 1
  local test c
  test=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$min_tag")
  [[ $test == '["CMD","/nix/store/'*'-app/bin/app","check"]' ]] || { say "test: $test"; return 1; }
  c=$(docker run -d "$min_tag") || { say "run failed"; return 1; }
  wait_health "$c" healthy || { docker rm -f "$c" >/dev/null; return 1; }
  docker rm -f "$c" >/dev/null
  build "$work/min" --target unhealthy -t "$min_tag-unhealthy" || { say "unhealthy target failed"; return 1; }
  c=$(docker run -d "$min_tag-unhealthy") || { say "run failed"; return 1; }
  wait_health "$c" unhealthy || { docker rm -f "$c" >/dev/null; return 1; }
  docker rm -f "$c" >/dev/null
  docker rmi -f "$min_tag-unhealthy" >/dev/null
}

stop_signal() {
  build_min || return 1
  local c logs
  [[ $(docker image inspect -f '{{.Config.StopSignal}}' "$min_tag") == SIGUSR1 ]] || { say "no stop signal"; return 1; }
  c=$(docker run -d "$min_tag") || { say "run failed"; return 1; }
  sleep 1
  docker stop -t 20 "$c" >/dev/null
  logs=$(docker logs "$c" 2>&1)
  docker rm -f "$c" >/dev/null
  grep -qx 'got USR1' <<<"$logs" || { say "the process did not get SIGUSR1: $logs"; return 1; }
}

# nix_db_build TAG: the nixdb target from an empty build cache.
nix_db_build() {
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  build "$work/min" --target nixdb --build-arg SOURCE_DATE_EPOCH=1700000000 -t "$1" || { say "build failed"; return 1; }
}
nix_db() {
  local t="$min_tag-db" app out times first
  nix_db_build "$t" || return 1
  app=$(docker image inspect -f '{{json .Config.Entrypoint}}' "$t" | sed 's#^\["\(/nix/store/[^/]*\)/.*#\1#')
  out=$(docker run --rm --entrypoint nix-store "$t" --verify --check-contents 2>&1) || { say "verify failed: $out"; return 1; }
  out=$(docker run --rm --entrypoint nix-store "$t" -q --references "$app" 2>&1) || { say "query failed: $out"; return 1; }
  grep -q -- '-busybox$' <<<"$out" || { say "the app's references are not registered: $out"; return 1; }
  # Registered at the image's epoch, not when it was built (the base, the
  # builder image, has sqlite3), so a later build from an empty cache makes
  # the same image.
  times=$(docker run --rm --entrypoint sqlite3 "$t" /nix/var/nix/db/db.sqlite \
    'SELECT DISTINCT registrationTime FROM ValidPaths') || { say "cannot read the database: $times"; return 1; }
  [[ $times == 1700000000 ]] || { say "registration times: $times"; return 1; }
  first=$(docker image inspect -f '{{.Id}}' "$t")
  docker rmi -f "$t" >/dev/null
  sleep 1
  nix_db_build "$t" || return 1
  [[ $(docker image inspect -f '{{.Id}}' "$t") == "$first" ]] ||
    { say "image IDs differ: $first $(docker image inspect -f '{{.Id}}' "$t")"; return 1; }
  docker rmi -f "$t" >/dev/null
}

rc=0
run_all e2e example_runs closure_is_exact source_change noop_rebuild unknown_key \
  app_change_layers layer_budget clean_builds_same_id source_date_epoch \
  valkyrie_like scratch_keys spec_errors subrequests build_warnings \
  scratch_essentials healthcheck stop_signal nix_db spec_dockerignore spec_in_subdir floor_forwards report_errors_warn || rc=$?
docker rmi -f "$tag" nixfe-e2e-bad "$min_tag" >/dev/null 2>&1 || true
exit $rc
