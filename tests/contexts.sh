#!/usr/bin/env bash
# End-to-end tests of remote and named build contexts: git repos (a ref, a
# subdir, a tag, a private repo with a token) and a tarball, served over HTTP
# on 127.0.0.1 by scripts/remote.sh, and --build-context for a flake input and
# for the builder image.
#
# Usage: tests/contexts.sh KIND   (KIND: 20.10, 26.1, 26.1-containerd or sid)
# Expects the engine started and the images loaded (scripts/test.sh does it).
# The remote server is started here, on a state dir of this run (fresh repos
# from tests/fixtures/remote, a token of its own), and stopped at the end.
# Prints one line per test and a closing "contexts(KIND): N passed, N failed, N skipped".
#
# Two things the engines do before the frontend runs, which decide what can
# be tested where:
# - with a remote context, the Dockerfile frontend built into the engine reads
#   the spec from it (to find `# syntax=`), so a context it cannot fetch fails
#   there, before nix-frontend sees it; the frontend's own messages about a
#   bad context show when the spec is local (an absolute -f, buildx only);
# - Docker 20.10 (BuildKit 0.8) refuses git subdirs (`#ref:dir`): there the
#   repo root is the context, with the root spec (-f nix-frontend.toml).
#
# Index of tests:
#   git_ref_subdir         …/app.git#main:sub: its greeting, rev and short rev of main; the
#                          flake source in the image is sub/ without .dockerignore'd secret.txt
#   git_ref_root           …/app.git#main with -f nix-frontend.toml (flake ./sub): every engine
#   git_tag                …/app.git#v1:sub (20.10: #v1 with the root spec): v1's greeting, and
#                          the rev of the commit the annotated tag names
#   git_query              …/app.git?ref=main&subdir=sub (buildx; skipped where the engine's
#                          Dockerfile frontend or buildx do not know the query form)
#   tarball                …/files/app.tar.gz: greeting, rev: none
#   private_repo           …/private/app.git fails without the token (git's refusal shown, a 401
#                          in the server log), builds with --secret id=GIT_AUTH_TOKEN; the token
#                          is in no saved image, history, inspect output, build log or exported cache
#   named_context_input    --build-context greeting=DIR overrides the flake input `greeting`
#                          (a local context and a git one; buildx)
#   bake_target_input      bake: `contexts = { greeting = "target:dep" }` overrides the flake input
#                          with what the target `dep` built (an input, through the Inputs call)
#   bake_target_builder    bake: the builder is another target (FROM the builder image, one ENV),
#                          its ops and config handed over as an input
#   named_context_builder  a spec whose builder image does not exist builds with
#                          --build-context ALIAS=docker-image://local/nix:test (buildx)
#   named_context_oci      the builder from an OCI layout on the client (`docker save` of the
#                          builder): --build-context ALIAS=oci-layout://DIR@DIGEST (buildx)
#   locked_git_input       a git input locked in flake.lock (the app repo): BuildKit fetches it,
#                          nix finds it in the store; a fresh builder importing the cache
#                          (containerd store) does not fetch it again
#   network_modes          --network=none: nix cannot fetch a tarball input from the server, which
#                          sees no request; --network=host: it does; --add-host reaches the
#                          nix step's /etc/hosts
#   bad_inputs             an unreachable repo, a missing ref, a missing subdir, a missing
#                          tarball, a named context matching nothing: one clear line each, a hint
# shellcheck source=tests/e2e-lib.sh
source "$(dirname "$0")/e2e-lib.sh"
tag="nixfe-ctx-app:${kind//./-}"
fixtures="$top/tests/fixtures/remote"

# ---- the remote server: this run's own, stopped at the end
remote_state="$work/remote"
cleanup() {
  "$top/scripts/remote.sh" stop "$remote_state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
if ! out=$("$top/scripts/remote.sh" start "$remote_state" 2>&1); then
  printf '%s\n' "$out" >&2
  echo "contexts($kind): cannot start the remote server" >&2
  exit 1
fi
eval "$("$top/scripts/remote.sh" env "$remote_state")"
app="$NIXFE_REMOTE/git/app.git"
private="$NIXFE_REMOTE/private/app.git"
token=$(<"$NIXFE_REMOTE_TOKEN_FILE")
# What BuildKit sends for the token: the Authorization header's value.
token_header=$(printf 'x-access-token:%s' "$token" | base64 -w0)

buildx() { [[ $kind != 20.10 ]]; }
# subdir_refused: the engine's BuildKit (0.8, Docker 20.10) has no git subdirs.
subdir_refused() { grep -q 'subdir not supported yet' "$work/last.log"; }

# expect_app IMAGE GREETING INPUT REV: the image prints what the app prints
# for these (REV "none": fetched as no git revision).
expect_app() {
  local out want short=none
  [[ $4 == none ]] || short=${4:0:7}
  out=$(docker run --rm "$1" 2>"$work/run.err") || { say "docker run failed: $(cat "$work/run.err")"; return 1; }
  want=$(printf '%s\ninput: %s\nrev: %s\nshort: %s' "$2" "$3" "$4" "$short")
  [[ $out == "$want" ]] || { say "image prints:"; say "$out"; say "want:"; say "$want"; return 1; }
}

# files_of IMAGE: every path in the image's filesystem, one per line.
files_of() {
  local cid
  cid=$(docker create "$1" x) || return 1
  docker export "$cid" | tar -t
  docker rm "$cid" >/dev/null
}

# source_is_clean IMAGE: the flake source nix saw (in the image through the
# app's share/source link) has the app's files, and neither secret.txt nor
# anything from outside the flake's folder.
source_is_clean() {
  local files src
  files=$(files_of "$1") || { say "cannot list the image"; return 1; }
  src=$(grep -m1 -E '^nix/store/[a-z0-9]{32}-source/flake\.nix$' <<<"$files") ||
    { say "no flake source (a -source/flake.nix) in the image"; return 1; }
  src=${src%/flake.nix}
  grep -qx "$src/greeting.txt" <<<"$files" || { say "the flake source lacks greeting.txt"; return 1; }
  grep -qx "$src/greeting-default/greeting.txt" <<<"$files" || { say "the flake source lacks greeting-default/"; return 1; }
  ! grep -q 'secret\.txt' <<<"$files" || { say "secret.txt reached nix: $(grep 'secret\.txt' <<<"$files")"; return 1; }
  ! grep -qE "^$src/(README\.md|sub/)" <<<"$files" || { say "the source has files from outside the flake's folder"; return 1; }
}

# fetched_from PATH_PREFIX SINCE: the server answered a git fetch of PATH_PREFIX
# (200) after line SINCE of its log.
fetched_from() {
  tail -n +"$(($2 + 1))" "$NIXFE_REMOTE_LOG" | grep -qE " GET $1/info/refs\?service=git-upload-pack 200 "
}
log_lines() { wc -l <"$NIXFE_REMOTE_LOG"; }

git_ref_subdir() {
  local since; since=$(log_lines)
  if ! build "$app#main:sub" -t "$tag"; then
    if subdir_refused; then skip "BuildKit 0.8 refuses git subdirs (subdir not supported yet)"; return; fi
    say "docker build $app#main:sub failed"; return 1
  fi
  fetched_from /git/app.git "$since" || { say "no fetch of app.git in the server log"; return 1; }
  expect_app "$tag" "hello from the app repo" "the default greeting input" "$NIXFE_REMOTE_COMMIT" || return 1
  source_is_clean "$tag"
}

git_ref_root() {
  build "$app#main" -f nix-frontend.toml -t "$tag-root" || { say "docker build -f nix-frontend.toml $app#main failed"; return 1; }
  expect_app "$tag-root" "hello from the app repo" "the default greeting input" "$NIXFE_REMOTE_COMMIT" || return 1
  source_is_clean "$tag-root" || return 1
  docker rmi -f "$tag-root" >/dev/null
}

git_tag() {
  # Docker 20.10: no git subdirs, the repo root and the root spec instead.
  if buildx; then
    build "$app#v1:sub" -t "$tag-v1" || { say "docker build $app#v1:sub failed"; return 1; }
  else
    if ! build "$app#v1" -f nix-frontend.toml -t "$tag-v1"; then
      # BuildKit before 0.10 (moby/buildkit#2570) fetches an annotated tag
      # into refs/heads/ when it keeps the .git dir, which git refuses.
      if grep -q 'trying to write non-commit object' "$work/last.log"; then
        skip "BuildKit 0.8 cannot keep the .git dir of an annotated tag (trying to write non-commit object)"; return
      fi
      say "docker build -f nix-frontend.toml $app#v1 failed"; return 1
    fi
  fi
  # v1 is an annotated tag: the revision is the commit it names, not the tag object.
  expect_app "$tag-v1" "hello from the app repo at v1" "the default greeting input" "$NIXFE_REMOTE_COMMIT_V1" || return 1
  docker rmi -f "$tag-v1" >/dev/null
}

git_query() {
  buildx || skip "Docker 20.10 has no buildx here" || return
  if ! build "$app?ref=main&subdir=sub" -t "$tag-query"; then
    # buildx refusing for a frontend without the cap, or an engine's Dockerfile
    # frontend older than BuildKit 0.24 asking git for a repo named with the query.
    if grep -qiE "does not support git urls? with query|repository '[^']*\?ref=[^']*' not found" "$work/last.log"; then
      skip "this buildx or the engine's Dockerfile frontend does not take git URLs with a query: $(grep -m1 -oiE "does not support git[^.]*|repository '[^']*' not found" "$work/last.log")"
      return
    fi
    say "docker buildx build $app?ref=main&subdir=sub failed"; return 1
  fi
  expect_app "$tag-query" "hello from the app repo" "the default greeting input" "$NIXFE_REMOTE_COMMIT" || return 1
  source_is_clean "$tag-query" || return 1
  docker rmi -f "$tag-query" >/dev/null
}

tarball() {
  build "$NIXFE_REMOTE/files/app.tar.gz" -t "$tag-tar" || { say "docker build of the tarball failed"; return 1; }
  expect_app "$tag-tar" "hello from the app repo" "the default greeting input" none || return 1
  source_is_clean "$tag-tar" || return 1
  docker rmi -f "$tag-tar" >/dev/null
}

# no_token WHAT FILE…: neither the token nor the header made of it is in FILEs.
no_token() {
  local what=$1; shift
  if grep -r -a -l -F -e "$token" -e "$token_header" "$@" >"$work/token-hits" 2>/dev/null; then
    say "the token is in $what: $(head -n3 "$work/token-hits" | tr '\n' ' ')"; return 1
  fi
}

private_repo() {
  local ctx args=() since
  # Docker 20.10: no git subdirs, the repo root and the root spec instead.
  if buildx; then ctx="$private#main:sub"; else ctx="$private#main"; args=(-f nix-frontend.toml); fi
  since=$(log_lines)
  if build "$ctx" "${args[@]}" -t "$tag-private"; then say "built without the token"; return 1; fi
  tail -n +"$((since + 1))" "$NIXFE_REMOTE_LOG" | grep -qE ' GET /private/app\.git/info/refs\?service=git-upload-pack 401 no-auth$' ||
    { say "no 401 for the request without a token in the server log"; return 1; }
  # BuildKit 0.8 shows only git's exit status; later ones show what git said.
  if buildx; then
    grep -qE 'could not read Username|Authentication failed|401' "$work/last.log" || { say "the failure does not say it was refused"; return 1; }
  else
    grep -qE 'failed to fetch remote .*/private/app\.git' "$work/last.log" || { say "the failure does not name the repo"; return 1; }
  fi

  since=$(log_lines)
  build "$ctx" "${args[@]}" -t "$tag-private" --secret "id=GIT_AUTH_TOKEN,src=$NIXFE_REMOTE_TOKEN_FILE" ||
    { say "build with the token failed"; return 1; }
  tail -n +"$((since + 1))" "$NIXFE_REMOTE_LOG" | grep -qE ' GET /private/app\.git/info/refs\?service=git-upload-pack 200 auth$' ||
    { say "no authorized fetch in the server log"; return 1; }
  expect_app "$tag-private" "hello from the private repo" "the default greeting input" "$NIXFE_REMOTE_PRIVATE_COMMIT" || return 1

  no_token "the build log" "$work/last.log" || return 1
  no_token "the server log" "$NIXFE_REMOTE_LOG" || return 1
  docker save "$tag-private" -o "$work/private.tar" || { say "docker save failed"; return 1; }
  no_token "docker save" "$work/private.tar" || return 1
  rm -f "$work/private.tar"
  docker history --no-trunc "$tag-private" >"$work/history.txt" || { say "docker history failed"; return 1; }
  no_token "docker history" "$work/history.txt" || return 1
  docker image inspect "$tag-private" >"$work/inspect.json" || { say "docker image inspect failed"; return 1; }
  no_token "docker image inspect" "$work/inspect.json" || return 1

  if containerd_store; then
    build "$ctx" -t "$tag-private" --secret "id=GIT_AUTH_TOKEN,src=$NIXFE_REMOTE_TOKEN_FILE" \
      --cache-to "type=local,dest=$work/cache-private,mode=max" || { say "build with a cache export failed"; return 1; }
    [[ -n $(find "$work/cache-private" -type f -path '*/blobs/*' | head -n1) ]] || { say "the cache export is empty"; return 1; }
    no_token "the exported cache" "$work/cache-private" || return 1
    no_token "the build log" "$work/last.log" || return 1
  else
    say "no cache export on $kind (20.10: no buildx; 26.1: the classic store's docker driver cannot export one)"
  fi
  docker rmi -f "$tag-private" >/dev/null
}

# A copy of the flake folder as a local context.
cp -r "$fixtures/app/sub" "$work/app-local"

named_context_input() {
  buildx || skip "Docker 20.10 has no buildx here (no --build-context)" || return
  build "$work/app-local" -t "$tag-named" --build-context "greeting=$fixtures/dep" ||
    { say "local build with --build-context greeting=DIR failed"; return 1; }
  expect_app "$tag-named" "hello from the app repo" "the greeting from a named context" none || return 1
  build "$app#main:sub" -t "$tag-named" --build-context "greeting=$fixtures/dep" ||
    { say "git build with --build-context greeting=DIR failed"; return 1; }
  # Nix 2.26 leaves self.rev out when an --override-input changes the lock
  # (the flake is then not the commit as locked), so either rev is right.
  local out
  out=$(docker run --rm "$tag-named" 2>"$work/run.err") || { say "docker run failed: $(cat "$work/run.err")"; return 1; }
  [[ $(head -n2 <<<"$out") == $'hello from the app repo
input: the greeting from a named context' ]] ||
    { say "git build with the override prints: $out"; return 1; }
  grep -qxE "rev: ($NIXFE_REMOTE_COMMIT|none)" <<<"$out" || { say "git build with the override prints: $out"; return 1; }
  docker rmi -f "$tag-named" >/dev/null
}

# alias_spec NAME FILE: the local app's spec, its builder named NAME (an
# image no engine has: a named context must supply it), written to FILE.
alias_spec() {
  sed "s#^builder = \"local/nix:test\"\$#builder = \"$1\"#" "$work/app-local/Dockerfile" >"$2"
  grep -q "^builder = \"$1\"\$" "$2" || { say "cannot write the spec with builder $1"; return 1; }
}
# bake_app DIR: `docker buildx bake app` with DIR's docker-bake.hcl, log in $work/last.log.
# The file names contexts outside DIR (the fixtures): buildx 0.19+ asks for
# --allow=fs.read=… for those, which older ones do not know; its variable
# turns the check off and is ignored by the others.
bake_app() { (cd "$1" && BUILDX_BAKE_ENTITLEMENTS_FS=0 docker buildx bake --progress=plain app) >"$work/last.log" 2>&1; }

bake_target_input() {
  buildx || skip "Docker 20.10 has no buildx here (no bake)" || return
  # The target is the dep fixture copied onto scratch (nothing can be
  # pulled here, so no RUN).
  mkdir -p "$work/bake"
  printf 'FROM scratch\nCOPY . /\n' >"$work/bake/dep.Dockerfile"
  cat >"$work/bake/docker-bake.hcl" <<HCL
target "dep" {
  context = "$fixtures/dep"
  dockerfile = "$work/bake/dep.Dockerfile"
}
target "app" {
  context = "$work/app-local"
  contexts = { greeting = "target:dep" }
  tags = ["$tag-bake"]
}
HCL
  bake_app "$work/bake" ||
    { say "bake with a target: context failed"; return 1; }
  grep -q 'load greeting (overrides the flake input)' "$work/last.log" ||
    { say "no override step in the build"; return 1; }
  expect_app "$tag-bake" "hello from the app repo" "the greeting from a named context" none || return 1
  docker rmi -f "$tag-bake" >/dev/null
}

bake_target_builder() {
  buildx || skip "Docker 20.10 has no buildx here (no bake)" || return
  # The spec names a builder no engine has; the target `nixb` is it.
  mkdir -p "$work/bakeb/app" "$work/bakeb/nixb"
  cp -r "$work/app-local/." "$work/bakeb/app/"
  alias_spec nixfe-builder-bake:1 "$work/bakeb/app/Dockerfile" || return 1
  printf 'FROM local/nix:test\nENV NIXFE_FROM_BAKE=1\n' >"$work/bakeb/nixb/Dockerfile"
  cat >"$work/bakeb/docker-bake.hcl" <<HCL
target "nixb" {
  context = "nixb"
}
target "app" {
  context = "app"
  contexts = { "nixfe-builder-bake:1" = "target:nixb" }
  tags = ["$tag-bakeb"]
}
HCL
  bake_app "$work/bakeb" ||
    { say "bake with a target: builder failed"; return 1; }
  # The builder is the target's own op, inside our build: we made no builder
  # source of our own (a resolved builder shows as "[app nix] builder REF").
  # The target's FROM op is one vertex for both builds, shown under either
  # target's name, so its name proves nothing.
  ! grep -qE '^#[0-9]+ \[app nix\] builder ' "$work/last.log" || { say "the builder is not the target's"; return 1; }
  ! grep -q 'load metadata for nixfe-builder-bake' "$work/last.log" || { say "the alias was resolved as an image"; return 1; }
  expect_app "$tag-bakeb" "hello from the app repo" "the default greeting input" none || return 1
  docker rmi -f "$tag-bakeb" >/dev/null
}

named_context_builder() {
  buildx || skip "Docker 20.10 has no buildx here (no --build-context)" || return
  alias_spec nixfe-builder-alias:1 "$work/alias.toml" || return 1
  # The alias names no image: without the named context there is no builder.
  if build "$work/app-local" -f "$work/alias.toml" -t "$tag-alias"; then say "built with a builder that does not exist"; return 1; fi
  build "$work/app-local" -f "$work/alias.toml" -t "$tag-alias" \
    --build-context nixfe-builder-alias:1=docker-image://local/nix:test || { say "build with the builder as a named context failed"; return 1; }
  expect_app "$tag-alias" "hello from the app repo" "the default greeting input" none || return 1
  docker rmi -f "$tag-alias" >/dev/null
}

# bad_input WHAT PATTERN CONTEXT [args…]: the build fails with PATTERN (grep -E) in its log.
bad_input() {
  local what=$1 pattern=$2; shift 2
  if build "$@" -t nixfe-ctx-bad; then say "$what: built"; return 1; fi
  grep -qE -- "$pattern" "$work/last.log" || { say "$what: no match for $pattern"; return 1; }
}

named_context_oci() {
  buildx || skip "Docker 20.10 has no buildx here (no --build-context)" || return
  # The alias names no image the engine has: only the layout holds it.
  alias_spec nixfe-builder-oci:1 "$work/oci.toml" || return 1
  mkdir -p "$work/layout"
  docker save local/nix:test | tar -x -C "$work/layout" || { say "docker save failed"; return 1; }
  local digest
  digest=$(jq -r '.manifests[0].digest' "$work/layout/index.json") || { say "docker save wrote no OCI layout"; return 1; }
  if ! build "$work/app-local" -f "$work/oci.toml" -t "$tag-oci" \
    --build-context "nixfe-builder-oci:1=oci-layout://$work/layout@$digest"; then
    # Docker's classic store lists the cap but its worker has no such source.
    grep -q 'unknown scheme oci-layout' "$work/last.log" &&
      grep -q "^hint: this engine's image store reads no OCI layouts" "$work/last.log" &&
      { skip "the $kind image store has no oci-layout source (unknown scheme oci-layout; our hint shown)"; return; }
    say "build with the builder from an oci-layout context failed"; return 1
  fi
  grep -q '\[nix\] builder oci-layout://docker.io/library/nixfe-builder-oci:1@' "$work/last.log" ||
    { say "the builder is not the layout's"; return 1; }
  expect_app "$tag-oci" "hello from the app repo" "the default greeting input" none || return 1
  docker rmi -f "$tag-oci" >/dev/null
}

# locked_git_input: a flake whose git input (the app repo, over http on
# 127.0.0.1) is locked in flake.lock. Nix cannot fetch it from a build step
# (no git in the builder, no route to the host's loopback): BuildKit fetches
# it, and the nix step finds it in the store as the lock names it. Where the
# engine exports a cache: a fresh builder with the cache imported, after a
# change to the flake's own file, does not fetch the input again.
locked_git_input() {
  local d="$work/gi" dep="$work/gi-dep" since hash count ns cache="$work/gi-cache" out stamp
  stamp=$(date +%s%N)
  rm -rf "$d" "$dep" "$cache"; mkdir -p "$d"
  git clone -q "$app" "$dep" || { say "cannot clone $app"; return 1; }
  count=$(git -C "$dep" rev-list --count "$NIXFE_REMOTE_COMMIT")
  rm -rf "$dep/.git"
  hash=$(docker run --rm --network none -v "$dep:/dep:ro" local/nix:test \
    sh -c 'NIX_CONFIG="experimental-features = nix-command" nix hash path /dep' 2>/dev/null) ||
    { say "cannot hash the checkout with nix"; return 1; }
  cat >"$d/flake.nix" <<NIX
{
  inputs.dep = { url = "git+$app?ref=main"; flake = false; };
  outputs = { self, dep }: {
    packages.x86_64-linux.default = derivation {
      name = "uses-dep";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      msg = ./msg;
      args = [ "-c" "mkdir -p \$out && cp \${dep}/sub/greeting.txt \$out/greeting && cp \$msg \$out/msg" ];
    };
  };
}
NIX
  cat >"$d/flake.lock" <<LOCK
{
  "nodes": {
    "dep": {
      "flake": false,
      "locked": {
        "lastModified": 1700000000,
        "narHash": "$hash",
        "ref": "main",
        "rev": "$NIXFE_REMOTE_COMMIT",
        "revCount": $count,
        "type": "git",
        "url": "$app"
      },
      "original": { "ref": "main", "type": "git", "url": "$app" }
    },
    "root": { "inputs": { "dep": "dep" } }
  },
  "root": "root",
  "version": 7
}
LOCK
  echo "one $stamp" >"$d/msg"
  printf '# syntax=local/nix-frontend:dev\nflake = ".#default"\nbuilder = "local/nix:test"\n[image]\ncmd = ["x"]\n' >"$d/Dockerfile"
  ns="--build-arg=BUILDKIT_CACHE_MOUNT_NS=gi-$stamp"
  build "$d" "$ns" -t nixfe-ctx-gi || { say "build failed: $(grep -m2 -E 'error:|ERROR' "$work/last.log")"; return 1; }
  grep -q '\[nix\] fetch input dep (flake.lock)' "$work/last.log" || { say "BuildKit did not fetch the input"; return 1; }
  ! grep -q 'is not what flake.lock locks' "$work/last.log" || { say "the checkout is not what the lock names"; return 1; }
  out=$(files_of nixfe-ctx-gi | grep -E '^nix/store/[a-z0-9]{32}-uses-dep/greeting$') ||
    { say "no uses-dep/greeting in the image"; return 1; }
  containerd_store || return 0
  # CI: export, prune, edit the flake's own file, import. (BuildKit keys a
  # git checkout by its commit, so only a pruned builder fetches it.)
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  since=$(log_lines)
  docker buildx build --progress=plain -t nixfe-ctx-gi "$ns" --cache-to "type=local,dest=$cache,mode=max" "$d" \
    >"$work/last.log" 2>&1 || { say "build exporting the cache failed"; return 1; }
  fetched_from /git/app.git "$since" || { say "the pruned builder did not fetch app.git: the test proves nothing"; return 1; }
  echo "two $stamp" >"$d/msg"
  docker builder prune -af >/dev/null || { say "prune failed"; return 1; }
  since=$(log_lines)
  docker buildx build --progress=plain -t nixfe-ctx-gi "$ns" --cache-from "type=local,src=$cache" "$d" \
    >"$work/last.log" 2>&1 || { say "build on the fresh builder failed"; return 1; }
  grep -q "building '/nix/store/[a-z0-9]*-uses-dep.drv'" "$work/last.log" || { say "the edit did not rebuild: the test proves nothing"; return 1; }
  ! fetched_from /git/app.git "$since" || { say "the fresh builder fetched the input again: $(tail -n +"$((since + 1))" "$NIXFE_REMOTE_LOG" | head -n3)"; return 1; }
  docker rmi -f nixfe-ctx-gi >/dev/null 2>&1 || true
}

# network_modes: --network and --add-host reach the nix step. The flake's
# input is a tarball on the tests' server (127.0.0.1), locked in flake.lock,
# which nix fetches itself (BuildKit fetches only git inputs). The builder's
# own network has no route to the host's loopback; --network=none has no
# network at all: the build fails and the server sees no request. With
# --network=host nix reaches the server and builds. --add-host reaches the
# step's /etc/hosts, which the derivation copies (the test builder runs nix
# without a sandbox, so the builder sees the step's files).
network_modes() {
  local d="$work/net" url="$NIXFE_REMOTE/files/app.tar.gz" hash since ns stamp out path cid
  stamp=$(date +%s%N)
  rm -rf "$d"; mkdir -p "$d"
  hash=$(docker run --rm --network host local/nix:test sh -c \
    "NIX_CONFIG='experimental-features = nix-command flakes' nix flake prefetch --json 'tarball+$url'" 2>"$work/prefetch.err" |
    jq -r .hash) && [[ $hash == sha256-* ]] || { say "cannot prefetch the tarball: $(tail -n2 "$work/prefetch.err")"; return 1; }
  cat >"$d/flake.nix" <<NIX
{
  inputs.dep = { url = "$url"; flake = false; };
  outputs = { self, dep }: {
    packages.x86_64-linux.default = derivation {
      name = "uses-net";
      system = "x86_64-linux";
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p \$out && cp \${dep}/greeting.txt \$out/greeting && cp /etc/hosts \$out/hosts" ];
    };
  };
}
NIX
  cat >"$d/flake.lock" <<LOCK
{
  "nodes": {
    "dep": {
      "flake": false,
      "locked": { "narHash": "$hash", "type": "tarball", "url": "$url" },
      "original": { "type": "tarball", "url": "$url" }
    },
    "root": { "inputs": { "dep": "dep" } }
  },
  "root": "root",
  "version": 7
}
LOCK
  printf '# syntax=local/nix-frontend:dev\nflake = ".#default"\nbuilder = "local/nix:test"\n[image]\ncmd = ["x"]\n' >"$d/Dockerfile"
  ns="--build-arg=BUILDKIT_CACHE_MOUNT_NS=net-$stamp"
  since=$(log_lines)
  if build "$d" "$ns" --network=none -t nixfe-ctx-net; then
    say "--network=none built: nix fetched the tarball"; return 1
  fi
  grep -qiE "unable to download|couldn't connect|failed to connect|could not resolve" "$work/last.log" ||
    { say "--network=none failed, but not at nix's download: $(grep -m2 -E 'error:|ERROR' "$work/last.log")"; return 1; }
  ! tail -n +"$((since + 1))" "$NIXFE_REMOTE_LOG" | grep -q "/files/app.tar.gz" ||
    { say "the server saw a request under --network=none"; return 1; }
  since=$(log_lines)
  build "$d" "$ns" --network=host --add-host nixfe-net.invalid:10.9.8.7 -t nixfe-ctx-net ||
    { say "--network=host failed: $(grep -m2 -E 'error:|ERROR' "$work/last.log")"; return 1; }
  tail -n +"$((since + 1))" "$NIXFE_REMOTE_LOG" | grep -q " GET /files/app.tar.gz 200 " ||
    { say "nix did not fetch the tarball from the host's loopback"; return 1; }
  path=$(files_of nixfe-ctx-net | grep -m1 -E '^nix/store/[a-z0-9]{32}-uses-net/hosts$') ||
    { say "no uses-net/hosts in the image"; return 1; }
  cid=$(docker create nixfe-ctx-net x) || return 1
  out=$(docker cp "$cid:/$path" - | tar -xO)
  docker rm "$cid" >/dev/null
  grep -qE '^10\.9\.8\.7[[:space:]]+nixfe-net\.invalid$' <<<"$out" ||
    { say "the nix step's /etc/hosts lacks the --add-host line: $out"; return 1; }
  docker rmi -f nixfe-ctx-net >/dev/null 2>&1 || true
}

bad_inputs() {
  buildx || skip "BuildKit 0.8's Dockerfile frontend reads the spec from a remote context itself and fails first; no buildx for a local spec" || return
  # The spec from a local file (absolute -f), so the engine's Dockerfile
  # frontend does not fetch the context and nix-frontend meets the bad one.
  local spec="$work/spec.toml"
  cp "$fixtures/app/sub/Dockerfile" "$spec"
  bad_input unreachable 'build context http://127\.0\.0\.1:1/git/none\.git#main: ' \
    "http://127.0.0.1:1/git/none.git#main" -f "$spec" || return 1
  grep -qE '^hint: .+' "$work/last.log" || { say "unreachable: no hint line"; return 1; }
  bad_input "missing ref" 'build context .*/app\.git#nope:sub: ' "$app#nope:sub" -f "$spec" || return 1
  bad_input "missing subdir" 'build context .*/app\.git#main:nodir: .*nodir' "$app#main:nodir" -f "$spec" || return 1
  # An http context is downloaded by the engine's Dockerfile frontend even
  # with a local spec (it tells an archive from a Dockerfile): its message.
  bad_input "missing tarball" 'failed to read downloaded context: .*404' "$NIXFE_REMOTE/files/none.tar.gz" -f "$spec" || return 1
  bad_input "unused named context" 'named context nosuch: ' "$work/app-local" --build-context "nosuch=$fixtures/dep" || return 1
}

rc=0
run_all contexts git_ref_subdir git_ref_root git_tag git_query tarball private_repo \
  named_context_input bake_target_input bake_target_builder named_context_builder named_context_oci \
  locked_git_input network_modes bad_inputs || rc=$?
docker rmi -f "$tag" nixfe-ctx-bad >/dev/null 2>&1 || true
exit $rc
