#!/usr/bin/env bash
# A local image registry for the tests: Debian's docker-registry (distribution
# 2.8) on 127.0.0.1 only, with its own config, storage, pidfile and log.
#
#   registry.sh start     install if needed, start unless running, wait until GET /v2/ answers
#   registry.sh stop      stop it (nothing to do when stopped)
#   registry.sh env       print `export` lines for: eval "$(registry.sh env)"
#                           NIXFE_REGISTRY=localhost:PORT   (dockerd and BuildKit push to a
#                                                            localhost registry over plain HTTP)
#                           NIXFE_REGISTRY_DATA=DIR         (its storage folder: blobs are under
#                                                            DIR/docker/registry/v2/blobs)
#   registry.sh status    one line; exit 0 when running, 3 when not
#
# Port: NIXFE_REGISTRY_PORT (default 5000). Files: $NIXFE_STATE/registry/
# (config.yml, data/, registry.pid, registry.log). Deletes are enabled
# (storage.delete.enabled) so tests can remove what they pushed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

PORT="${NIXFE_REGISTRY_PORT:-5000}"
TIMEOUT="${NIXFE_REGISTRY_TIMEOUT:-30}"
BIN=/usr/bin/docker-registry
DIR="$NIXFE_STATE/registry"
DATA="$DIR/data"
CONFIG="$DIR/config.yml"
PIDFILE="$DIR/registry.pid"
LOGFILE="$DIR/registry.log"
# The package's own service (init.d script), should its postinst have run it.
SYSTEM_PIDFILE=/var/run/docker-registry.pid

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

if ! [[ $PORT =~ ^[1-9][0-9]*$ ]] || ((PORT < 1 || PORT > 65535)); then
  die "NIXFE_REGISTRY_PORT must be a port number, got '$PORT'"
fi

# ---------------------------------------------------------------- install

# The pid in PIDFILE when it is alive and runs the registry binary.
registry_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$BIN" ]] || return 1
  printf '%s\n' "$pid"
}

# Registries running the package's own config (its service, which listens on
# every interface), one pid per line.
system_registry_pids() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/exe" 2>/dev/null) == "$BIN" ]] || continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q ' /etc/docker/registry/config.yml' && echo "${p#/proc/}"
  done
  return 0
}

install_registry() {
  local fresh=0
  dpkg-query -W -f='${Status}' docker-registry 2>/dev/null | grep -q '^install ok installed$' || fresh=1
  # curl: the readiness check; jq: the tests read manifests with it.
  apt_install docker-registry curl jq
  [[ -x $BIN ]] || die "$BIN missing after installing docker-registry"
  ((fresh)) || return 0
  # The package's service is never wanted here: its postinst enables it at
  # boot (sysv and systemd); turn that off. apt_install forbids service starts
  # (policy-rc.d), but one that was already there may allow them: if this
  # install started the service, stop it again.
  update-rc.d docker-registry disable >/dev/null 2>&1 || true
  if command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper disable docker-registry.service >/dev/null 2>&1 || true
  fi
  local pid i
  for pid in $(system_registry_pids); do
    log "stopping the system docker-registry service the package's postinst started (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$SYSTEM_PIDFILE"
  done
}

write_config() {
  mkdir -p "$DATA"
  local cfg
  cfg="# Written by scripts/registry.sh; rewritten on every start.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $DATA
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  headers:
    X-Content-Type-Options: [nosniff]
"
  [[ -f $CONFIG && $(<"$CONFIG") == "${cfg%$'\n'}" ]] || printf '%s' "$cfg" >"$CONFIG"
}

# ---------------------------------------------------------------- run

# The port the running instance was started with (from its config).
running_port() { sed -n 's/^  addr: 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CONFIG" 2>/dev/null; }

answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null) || return 1
  [[ $code == 200 ]]
}

start_registry() {
  mkdir -p "$DIR"
  exec {lock}>"$DIR/lock"
  flock "$lock"
  local pid rport
  if pid=$(registry_pid); then
    rport=$(running_port)
    [[ $rport == "$PORT" ]] || die "already running on port $rport (pid $pid); stop it first to use port $PORT"
    answers "$PORT" || die "running (pid $pid) but GET /v2/ on 127.0.0.1:$PORT does not answer (log: $LOGFILE)"
    log "already running on 127.0.0.1:$PORT (pid $pid)"
    return 0
  fi
  install_registry
  # Something else on the port (another registry, a stale instance).
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "127.0.0.1:$PORT is already in use by another program (set NIXFE_REGISTRY_PORT)"
  fi
  write_config
  rm -f "$PIDFILE"
  log "starting docker-registry on 127.0.0.1:$PORT (log: $LOGFILE)"
  printf '\n=== %s start port %s\n' "$(date -Is)" "$PORT" >>"$LOGFILE"
  # Only the environment given: REGISTRY_* variables would override the
  # config file.
  spawn_detached "$PIDFILE" "$LOGFILE" PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$DIR" \
    -- "$BIN" serve "$CONFIG"
  wait_ready "docker-registry (GET /v2/)" "$LOGFILE" "$TIMEOUT" "answers $PORT" registry_pid
  log "ready on 127.0.0.1:$PORT (pid $(registry_pid || echo '?'))"
}

stop_registry() {
  local pid
  mkdir -p "$DIR"
  exec {lock}>"$DIR/lock"
  flock "$lock"
  if pid=$(registry_pid); then stop_pid docker-registry "$pid" 20; else log "not running"; fi
  rm -f "$PIDFILE"
}

print_env() {
  local pid rport
  if pid=$(registry_pid); then
    rport=$(running_port)
    [[ $rport == "$PORT" ]] || die "running on port $rport (pid $pid), not $PORT"
  fi
  printf 'export NIXFE_REGISTRY=%q\n' "localhost:$PORT"
  printf 'export NIXFE_REGISTRY_DATA=%q\n' "$DATA"
}

status() {
  local pid
  if pid=$(registry_pid); then
    if answers "$(running_port)"; then
      printf 'registry running       127.0.0.1:%s pid %s data %s\n' "$(running_port)" "$pid" "$DATA"
      return 0
    fi
    printf 'registry not-answering 127.0.0.1:%s pid %s\n' "$(running_port)" "$pid"
    return 3
  fi
  if [[ -x $BIN ]]; then printf 'registry stopped\n'; else printf 'registry not-installed\n'; fi
  return 3
}

[[ $# -eq 1 ]] || usage
case $1 in
  start)  start_registry ;;
  stop)   stop_registry ;;
  env)    print_env ;;
  status) status ;;
  *)      usage ;;
esac
