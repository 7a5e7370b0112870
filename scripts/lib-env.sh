# shellcheck shell=bash
# Shared helpers for the dev-environment scripts (engine.sh, nix-image.sh).
# Sourced, not executed.

# Everything these scripts download, unpack or run lives here, so removing it
# (after `engine.sh stop` for every kind) resets the machine.
NIXFE_STATE="${NIXFE_STATE:-/var/lib/nix-frontend-dev}"

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The Debian mirror the system already uses, read at run time so nothing here
# names a host. Prefers deb822 sources, falls back to one-line sources.list.
debian_mirror() {
  local uri=""
  if [[ -n "${NIXFE_DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "${NIXFE_DEBIAN_MIRROR%/}"; return
  fi
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # First stanza whose suites are not the security archive.
    uri=$(awk '
      BEGIN { RS=""; FS="\n" }
      {
        u=""; s=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u = a[1] }
          if ($i ~ /^Suites:/) { s = $i }
        }
        if (u != "" && s !~ /-security/ && u !~ /security/) { print u; exit }
      }' "$f")
    [[ -n $uri ]] && break
  done
  if [[ -z $uri ]]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }')
  fi
  [[ -n $uri ]] || die "cannot find a Debian mirror in /etc/apt sources (set NIXFE_DEBIAN_MIRROR)"
  printf '%s\n' "${uri%/}"
}

# Install host packages with apt, only those missing. No init system here, and
# postinst scripts must not start daemons (docker.io would start one on the
# default socket), so a temporary policy-rc.d forbids service starts.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  # One apt at a time: scripts run side by side (engines, images, servers)
  # and dpkg fails at once when another holds its lock.
  mkdir -p "$NIXFE_STATE"
  local alock
  exec {alock}>"$NIXFE_STATE/apt.lock"
  flock "$alock"
  local still=()
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || still+=("$p")
  done
  missing=("${still[@]}")
  if ((${#missing[@]} == 0)); then exec {alock}>&-; return 0; fi
  log "apt-get install ${missing[*]}"
  # Fresh machines may have no package lists yet.
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >&2
  fi
  local prc=/usr/sbin/policy-rc.d made_prc=0
  if [[ ! -e $prc ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod 755 "$prc"; made_prc=1
  fi
  local rc=0 out
  out="$NIXFE_STATE/apt-install.log"
  # Output goes to a log (dpkg is chatty); shown only when it fails.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >"$out" 2>&1 || rc=$?
  ((made_prc)) && rm -f "$prc"
  exec {alock}>&-
  if ((rc != 0)); then tail -n 30 "$out" >&2; die "apt-get install ${missing[*]} failed (log: $out)"; fi
}

# sha256 of stdin, short.
short_hash() { sha256sum | cut -c1-16; }

# ------------------------------------------------------------ test servers
# The servers the tests start (registry, git/http) run detached on 127.0.0.1,
# each with a pid file naming its own process.

# spawn_detached PIDFILE LOGFILE VAR=VALUE... -- CMD [ARG...]: starts CMD in
# a session of its own (it outlives this script and its caller's job
# control) with only the given environment, stdin closed, output appended to
# LOGFILE. The shell writes its own pid, then becomes CMD (exec), so PIDFILE
# names CMD. The caller's flock fd ($lock) is not inherited.
spawn_detached() {
  local pidfile=$1 logfile=$2 vars=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do vars+=("$1"); shift; done
  shift
  # $$ and $1… are the inner shell's; $lock is the caller's.
  # shellcheck disable=SC2016,SC2154
  setsid env -i "${vars[@]}" sh -c 'echo $$ >"$1" && shift && exec "$@"' sh "$pidfile" "$@" \
    </dev/null >>"$logfile" 2>&1 {lock}>&- &
}

# wait_ready NAME LOGFILE TIMEOUT READY ALIVE: polls the command READY every
# 0.25 s until it succeeds. Dies with LOGFILE's tail after TIMEOUT seconds,
# or sooner once the command ALIVE fails and no job of this shell is left
# (the server exited).
wait_ready() {
  local name=$1 logfile=$2 timeout=$3 ready=$4 alive=$5 i
  for ((i = 0; i < timeout * 4; i++)); do
    $ready && return 0
    if ((i > 4)) && ! $alive >/dev/null && ! jobs -rp | grep -q .; then
      tail -n 30 "$logfile" >&2
      die "$name exited (log above: $logfile)"
    fi
    sleep 0.25
  done
  tail -n 30 "$logfile" >&2
  die "$name not answering after ${timeout}s (log above: $logfile)"
}

# stop_pid NAME PID SECONDS: TERM, then KILL if PID still runs after SECONDS.
stop_pid() {
  local name=$1 pid=$2 secs=$3 i
  log "stopping $name $pid"
  kill -TERM "$pid"
  for ((i = 0; i < secs * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { log "stopped"; return 0; }
    sleep 0.25
  done
  log "$name $pid still alive after ${secs}s, sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
}
