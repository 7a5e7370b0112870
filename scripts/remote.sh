#!/usr/bin/env bash
# Remote build contexts for the tests: git repos over smart HTTP and a
# tarball, served by scripts/serve-remote.py on 127.0.0.1 only.
#
#   remote.sh start [STATE_DIR]   (re)build the repos and the tarball from tests/fixtures/remote
#                                 when they changed, start the server unless running, wait
#                                 until it answers
#   remote.sh stop [STATE_DIR]    stop it (nothing to do when stopped)
#   remote.sh env [STATE_DIR]     print `export` lines for: eval "$(remote.sh env DIR)"
#                                   NIXFE_REMOTE=http://127.0.0.1:PORT
#                                     /git/app.git      the app (branch main, tag v1; flake in sub/)
#                                     /private/app.git  its private twin (needs the token)
#                                     /files/app.tar.gz sub/ of main as a tarball
#                                   NIXFE_REMOTE_TOKEN_FILE=FILE  the token (no newline), for
#                                                                 --secret id=GIT_AUTH_TOKEN,src=FILE
#                                   NIXFE_REMOTE_LOG=FILE         one line per request
#                                   NIXFE_REMOTE_COMMIT, NIXFE_REMOTE_COMMIT_V1,
#                                   NIXFE_REMOTE_PRIVATE_COMMIT   commit shas of main, v1, private main
#   remote.sh status [STATE_DIR]  one line; exit 0 when running, 3 when not
#
# STATE_DIR defaults to $NIXFE_STATE/remote. The repos are built with fixed
# names and dates, so their commit shas depend on the fixture files only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

FIXTURES="$top/tests/fixtures/remote"
SERVER="$here/serve-remote.py"
TIMEOUT="${NIXFE_REMOTE_TIMEOUT:-30}"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd=${1:-}
[[ $# -le 2 ]] || usage
DIR=${2:-$NIXFE_STATE/remote}
case $cmd in start | stop | env | status) ;; *) usage ;; esac
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ROOT="$DIR/root"
PIDFILE="$DIR/server.pid"
PORTFILE="$DIR/server.port"
LOGFILE="$DIR/access.log"
OUTFILE="$DIR/server.log"
TOKEN="$DIR/token"
SHAS="$DIR/commits"

# ---------------------------------------------------------------- repos

# Every commit and tag gets these, so a commit's sha is a function of its tree.
# No user or system config applies (signing, autocrlf, hooks, templates).
git_fixed() {
  env GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
    GIT_AUTHOR_NAME="nix-frontend tests" GIT_AUTHOR_EMAIL="tests@nix-frontend.invalid" \
    GIT_COMMITTER_NAME="nix-frontend tests" GIT_COMMITTER_EMAIL="tests@nix-frontend.invalid" \
    GIT_AUTHOR_DATE="@1700000000 +0000" GIT_COMMITTER_DATE="@1700000000 +0000" \
    git -c init.templateDir= -c core.autocrlf=false -c core.fileMode=true -c commit.gpgSign=false \
    -c tag.gpgSign=false "$@"
}

# The fixture's state: a repo rebuild is due when this changes.
fixtures_key() {
  (cd "$FIXTURES" && find . -type f -print0 | sort -z | xargs -0 sha256sum
   sha256sum <"$here/remote.sh") | short_hash
}

# commit_tree WORKTREE MESSAGE: commit everything in WORKTREE as it is.
commit_tree() {
  # Fixed modes: git records only the executable bit, which a checkout's
  # umask must not change.
  find "$1" -path "$1/.git" -prune -o -type f -exec chmod 644 {} + -o -type d -exec chmod 755 {} +
  git_fixed -C "$1" add -A
  git_fixed -C "$1" commit -q --allow-empty-message -m "$2"
}

# build_repos: ROOT/git/app.git (main, annotated tag v1), ROOT/private/app.git
# (main), ROOT/files/app.tar.gz (sub/ of main), and the shas in SHAS.
build_repos() {
  local key tmp
  key=$(fixtures_key)
  if [[ -f $DIR/fixtures.key && $(<"$DIR/fixtures.key") == "$key" && -d $ROOT/git/app.git ]]; then
    return 0
  fi
  log "building the repos from tests/fixtures/remote"
  tmp="$DIR/build.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"/root/{git,private,files}

  # The app: v1 (its own greeting), then main (the fixture as it is).
  local w="$tmp/app"
  cp -r "$FIXTURES/app" "$w"
  git_fixed init -q -b main "$w"
  cp "$FIXTURES/v1/greeting.txt" "$w/sub/greeting.txt"
  commit_tree "$w" "app v1"
  git_fixed -C "$w" tag -a v1 -m "v1"
  cp "$FIXTURES/app/sub/greeting.txt" "$w/sub/greeting.txt"
  commit_tree "$w" "app main"
  git_fixed init -q --bare -b main "$tmp/root/git/app.git"
  git_fixed -C "$w" push -q "$tmp/root/git/app.git" main v1

  # The tarball: sub/ of main at its root, reproducible (order, owner, times).
  tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
    -C "$w/sub" -cf - . | gzip -9n >"$tmp/root/files/app.tar.gz"

  # The private twin: the same tree with another greeting, one commit.
  local p="$tmp/private"
  cp -r "$FIXTURES/app" "$p"
  cp "$FIXTURES/private/greeting.txt" "$p/sub/greeting.txt"
  git_fixed init -q -b main "$p"
  commit_tree "$p" "private app main"
  git_fixed init -q --bare -b main "$tmp/root/private/app.git"
  git_fixed -C "$p" push -q "$tmp/root/private/app.git" main

  {
    printf 'main %s\n' "$(git -C "$w" rev-parse main)"
    printf 'v1 %s\n' "$(git -C "$w" rev-parse 'v1^{commit}')"
    printf 'private %s\n' "$(git -C "$p" rev-parse main)"
  } >"$tmp/commits"

  # Swap in whole (a running server keeps serving).
  rm -rf "$ROOT.old"
  [[ -d $ROOT ]] && mv "$ROOT" "$ROOT.old"
  mv "$tmp/root" "$ROOT"
  mv "$tmp/commits" "$SHAS"
  rm -rf "$ROOT.old" "$tmp"
  printf '%s\n' "$key" >"$DIR/fixtures.key"
}

# A token of its own per state dir, kept across restarts. Written without a
# newline: BuildKit sends the secret's bytes as they are.
make_token() {
  [[ -s $TOKEN ]] && return 0
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN.tmp")
  mv "$TOKEN.tmp" "$TOKEN"
}

# ---------------------------------------------------------------- run

# The pid in PIDFILE when it is alive and is this state dir's server.
server_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$ROOT" || return 1
  printf '%s\n' "$pid"
}

port() { [[ -s $PORTFILE ]] && tr -d '\n' <"$PORTFILE"; }

# The server answers on the port it wrote.
remote_answers() { local p; p=$(port) && answers "$p"; }

answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://127.0.0.1:$1/git/app.git/info/refs?service=git-upload-pack" 2>/dev/null) || return 1
  [[ $code == 200 ]]
}

need_tools() {
  local t missing=()
  for t in git curl tar gzip python3; do command -v "$t" >/dev/null || missing+=("$t"); done
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  [[ -x $(git --exec-path)/git-http-backend ]] || die "git has no http-backend in $(git --exec-path)"
}

start_server() {
  exec {lock}>"$DIR/lock"
  flock "$lock"
  need_tools
  build_repos
  make_token
  local pid p
  if pid=$(server_pid); then
    p=$(port)
    answers "$p" || die "running (pid $pid) but 127.0.0.1:$p does not answer (log: $OUTFILE)"
    log "already running on 127.0.0.1:$p (pid $pid)"
    return 0
  fi
  rm -f "$PIDFILE" "$PORTFILE"
  log "starting serve-remote.py (log: $OUTFILE)"
  printf '\n=== %s start\n' "$(date -Is)" >>"$OUTFILE"
  # Port 0: the server takes a free one and writes it to PORTFILE once
  # listening. The interpreter itself, not a version manager's shim (env -i
  # drops what a shim needs).
  local py
  py=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"
  spawn_detached "$PIDFILE" "$OUTFILE" PATH="$PATH" HOME="$DIR" LANG=C.UTF-8 \
    -- "$py" "$SERVER" --root "$ROOT" --port 0 --port-file "$PORTFILE" \
    --token-file "$TOKEN" --log "$LOGFILE"
  wait_ready serve-remote.py "$OUTFILE" "$TIMEOUT" remote_answers server_pid
  log "ready on 127.0.0.1:$(port) (pid $(server_pid || echo '?'))"
}

stop_server() {
  local pid
  exec {lock}>"$DIR/lock"
  flock "$lock"
  if pid=$(server_pid); then stop_pid serve-remote.py "$pid" 10; else log "not running"; fi
  rm -f "$PIDFILE" "$PORTFILE"
}

print_env() {
  server_pid >/dev/null || die "not running; run: $0 start $DIR"
  sha() { awk -v k="$1" '$1 == k { print $2 }' "$SHAS"; }
  printf 'export NIXFE_REMOTE=%q\n' "http://127.0.0.1:$(port)"
  printf 'export NIXFE_REMOTE_TOKEN_FILE=%q\n' "$TOKEN"
  printf 'export NIXFE_REMOTE_LOG=%q\n' "$LOGFILE"
  printf 'export NIXFE_REMOTE_COMMIT=%q\n' "$(sha main)"
  printf 'export NIXFE_REMOTE_COMMIT_V1=%q\n' "$(sha v1)"
  printf 'export NIXFE_REMOTE_PRIVATE_COMMIT=%q\n' "$(sha private)"
}

status() {
  local pid
  if pid=$(server_pid); then
    if answers "$(port)"; then
      printf 'remote running       127.0.0.1:%s pid %s root %s\n' "$(port)" "$pid" "$ROOT"
      return 0
    fi
    printf 'remote not-answering 127.0.0.1:%s pid %s\n' "$(port)" "$pid"
    return 3
  fi
  printf 'remote stopped\n'
  return 3
}

case $cmd in
  start)  start_server ;;
  stop)   stop_server ;;
  env)    print_env ;;
  status) status ;;
esac
