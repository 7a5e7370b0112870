#!/usr/bin/env bash
# Local Docker engines for testing the frontend, no registry needed.
#
#   engine.sh start KIND    install if needed, start unless its socket answers, wait until ready
#   engine.sh stop KIND     stop it (containers die with it)
#   engine.sh env KIND      print `export` lines for: eval "$(engine.sh env KIND)"
#   engine.sh status        one line per kind
#
# KIND is one of:
#   20.10             bookworm docker.io (20.10.24); its own CLI builds with DOCKER_BUILDKIT=1
#   26.1              trixie packages docker.io, docker-cli, containerd, docker-buildx (26.1.5, buildx 0.13.1),
#                     unpacked into the state dir; classic overlay2 image store
#   26.1-containerd   same binaries, containerd image store (containerd-snapshotter)
#   clean             same binaries as 26.1 (classic store), to pull pushed images into:
#                     its data root is wiped whenever it starts from stopped, so it
#                     has never seen an image (needs no Nix or frontend image)
#   sid               the newest Docker in Debian: sid's docker.io, docker-cli, containerd,
#                     docker-buildx (seen: 28.5.2, buildx 0.29.1), unpacked like trixie's;
#                     containerd image store
#
# Each kind has its own data root, exec root, pidfile, socket and log under
# $NIXFE_STATE/engines/KIND (default state dir: /var/lib/nix-frontend-dev).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

KINDS=(20.10 26.1 26.1-containerd clean sid)
TIMEOUT="${NIXFE_ENGINE_TIMEOUT:-90}"
# Docker from a newer Debian suite, unpacked under $NIXFE_STATE/dist.
DIST_PKGS=(docker.io docker-cli containerd docker-buildx)
dist_dir() { printf '%s/dist/%s-docker\n' "$NIXFE_STATE" "$1"; }
# The suite a kind's binaries come from (bookworm: the system's own).
suite_of() {
  case $1 in 20.10) echo bookworm ;; sid) echo sid ;; *) echo trixie ;; esac
}

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

check_kind() {
  local k
  for k in "${KINDS[@]}"; do [[ $1 == "$k" ]] && return 0; done
  die "unknown kind '$1' (one of: ${KINDS[*]})"
}

edir() { printf '%s/engines/%s\n' "$NIXFE_STATE" "$1"; }

# Each kind gets its own Linux bridge and subnet: BuildKit RUN steps need the
# "bridge" network (--bridge=none fails them with "network bridge not found"),
# and daemons sharing docker0 would hand out the same addresses.
bridge_name() {
  case $1 in 20.10) echo nixfe20 ;; 26.1) echo nixfe26 ;; 26.1-containerd) echo nixfe26c ;; clean) echo nixfecl ;; sid) echo nixfesid ;; esac
}
bridge_cidr() {
  case $1 in
    20.10) echo 172.30.20.1/24 ;; 26.1) echo 172.30.26.1/24 ;; 26.1-containerd) echo 172.30.27.1/24 ;; clean) echo 172.30.28.1/24 ;;
    sid) echo 172.30.29.1/24 ;;
  esac
}
ensure_bridge() {
  local br cidr; br=$(bridge_name "$1"); cidr=$(bridge_cidr "$1")
  if ! ip link show "$br" >/dev/null 2>&1; then
    log "$1: creating bridge $br ($cidr)"
    ip link add name "$br" type bridge
  fi
  ip -4 addr show dev "$br" | grep -q "inet $cidr " || ip addr add "$cidr" dev "$br"
  ip link set "$br" up
}

# The CLI matching the engine: 20.10's own, or that of the kind's suite.
cli_path() {
  case $1 in
    20.10) echo /usr/bin/docker ;;
    *)     echo "$(dist_dir "$(suite_of "$1")")/usr/bin/docker" ;;
  esac
}

# ---------------------------------------------------------------- install

install_bookworm() {
  # docker.io pulls in containerd, runc, iptables; the policy-rc.d guard in
  # apt_install keeps its postinst from starting a system daemon.
  apt_install docker.io iproute2
}

# Fetch a newer suite's Docker packages (trixie: 26.1; sid: the newest) with
# a private apt state (no change to the system's sources) and unpack them
# with dpkg -x. Their runc needs glibc 2.38, so runc comes from bookworm
# (found through PATH, see start_engine). sid's Release file may be past its
# Valid-Until date on a mirror: that check is off (the signature is not).
install_dist() {
  local suite=$1 dist; dist=$(dist_dir "$1")
  apt_install runc iproute2
  local mirror key
  mirror=$(debian_mirror)
  key=$(printf '%s\n' "$mirror" "${DIST_PKGS[@]}" | short_hash)
  if [[ -f $dist/.installed ]] && [[ $(<"$dist/.installed") == "$key" ]]; then
    return 0
  fi
  log "fetching $suite ${DIST_PKGS[*]} from $mirror"
  local apt="$NIXFE_STATE/apt-$suite"
  mkdir -p "$apt"/{state/lists/partial,cache/archives/partial,parts,prefs,debs}
  : >"$apt/state/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt/sources.list"
  local opts=(
    -o "Dir::Etc::SourceList=$apt/sources.list"
    -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::Etc::Preferences=$apt/prefs/none"
    -o "Dir::Etc::PreferencesParts=$apt/prefs"
    -o "Dir::State=$apt/state"
    -o "Dir::State::status=$apt/state/status"
    -o "Dir::Cache=$apt/cache"
    -o "APT::Architecture=$(dpkg --print-architecture)"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
    -o "Acquire::Check-Valid-Until=false"
  )
  apt-get "${opts[@]}" -qq update >&2
  rm -f "$apt"/debs/*.deb
  (cd "$apt/debs" && apt-get "${opts[@]}" -qq download "${DIST_PKGS[@]}" >&2)
  local tmp="$dist.tmp.$$" deb
  rm -rf "$tmp"; mkdir -p "$tmp"
  for deb in "$apt"/debs/*.deb; do
    log "unpack ${deb##*/}"
    dpkg -x "$deb" "$tmp"
  done
  local v
  v=$("$tmp/usr/sbin/dockerd" --version) || die "unpacked dockerd does not run: $v"
  [[ $suite != trixie || $v == *" 26.1."* ]] || log "warning: expected Docker 26.1, got: $v"
  log "$suite: $v"
  printf '%s' "$key" >"$tmp/.installed"
  rm -rf "$dist"; mv "$tmp" "$dist"
}

ensure_installed() {
  mkdir -p "$NIXFE_STATE"
  # One installer at a time (apt and the dist dir are shared by all kinds).
  exec {ilock}>"$NIXFE_STATE/install.lock"
  flock "$ilock"
  case $1 in
    20.10) install_bookworm ;;
    *)     install_dist "$(suite_of "$1")" ;;
  esac
  exec {ilock}>&-

  local d; d=$(edir "$1")
  mkdir -p "$d"/{data,exec,bin,config/cli-plugins}
  ln -sfn "$(cli_path "$1")" "$d/bin/docker"
  if [[ $1 != 20.10 ]]; then
    ln -sfn "$(dist_dir "$(suite_of "$1")")/usr/libexec/docker/cli-plugins/docker-buildx" "$d/config/cli-plugins/docker-buildx"
  fi
  # An explicit config file, so a stray /etc/docker/daemon.json never applies.
  local cfg='{}'
  [[ $1 == 26.1-containerd || $1 == sid ]] && cfg='{"features":{"containerd-snapshotter":true}}'
  [[ -f $d/daemon.json && $(<"$d/daemon.json") == "$cfg" ]] || printf '%s\n' "$cfg" >"$d/daemon.json"
}

# ---------------------------------------------------------------- run

answers() {
  local d; d=$(edir "$1")
  [[ -S $d/docker.sock ]] || return 1
  DOCKER_CONFIG="$d/config" "$(cli_path "$1")" -H "unix://$d/docker.sock" \
    version --format '{{.Server.Version}}' >/dev/null 2>&1
}

daemon_pid() {
  local d pid; d=$(edir "$1")
  [[ -f $d/dockerd.pid ]] || return 1
  pid=$(<"$d/dockerd.pid")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

# The clean kind starts from an empty data root (no images, layers, build
# cache or containers). Only called while its dockerd is not running; mounts a
# dead daemon left behind (overlay, shm) are undone first, deepest first.
wipe_data() {
  local d m; d=$(edir "$1")
  [[ -d $d/data ]] || return 0
  log "$1: wiping its data root"
  awk -v r="$d/data" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$d/data"
  mkdir -p "$d/data"
}

start_engine() {
  local kind=$1 d; d=$(edir "$kind")
  if answers "$kind"; then log "$kind: already running"; return 0; fi
  ensure_installed "$kind"

  exec {lock}>"$d/lock"
  flock "$lock"
  if answers "$kind"; then log "$kind: already running"; return 0; fi

  # A daemon whose managed containerd found a system containerd socket would
  # share it with the others; warn since separation is the point.
  [[ -S /run/containerd/containerd.sock ]] &&
    log "warning: /run/containerd/containerd.sock exists; dockerd will use that containerd"

  local path=/usr/sbin:/usr/bin:/sbin:/bin
  local dockerd=/usr/sbin/dockerd
  if [[ $kind != 20.10 ]]; then
    # The suite's dockerd/containerd/shim first; runc falls through to bookworm's.
    local dist; dist=$(dist_dir "$(suite_of "$kind")")
    path="$dist/usr/sbin:$dist/usr/bin:$path"
    dockerd="$dist/usr/sbin/dockerd"
  fi

  if ! daemon_pid "$kind" >/dev/null; then
    [[ $kind == clean ]] && wipe_data "$kind"
    # BuildKit lists the platforms it can run when its worker starts: the
    # emulators must be registered before dockerd is.
    "$here/binfmt.sh" setup >&2 || log "warning: no emulation for other platforms (scripts/binfmt.sh failed)"
    ensure_bridge "$kind"
    log "$kind: starting dockerd (log: $d/dockerd.log)"
    printf '\n=== %s start %s\n' "$(date -Is)" "$kind" >>"$d/dockerd.log"
    # No iptables rules, NAT or ip_forward change on this host (and there is
    # no network to reach anyway): containers only see their own bridge.
    # setsid: the daemon must outlive this script and its caller's job control;
    # it must not inherit the start lock either.
    # env -C /: its working directory must outlive the checkout it was started
    # from (BuildKit runs git there: a deleted one fails every git context).
    setsid env -i -C / PATH="$path" HOME=/root TMPDIR="${TMPDIR:-/tmp}" \
      "$dockerd" \
        --data-root "$d/data" \
        --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" \
        --host "unix://$d/docker.sock" \
        --config-file "$d/daemon.json" \
        --bridge "$(bridge_name "$kind")" \
        --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false \
      </dev/null >>"$d/dockerd.log" 2>&1 {lock}>&- &
  else
    log "$kind: dockerd already running but not answering yet; waiting"
  fi

  local i
  for ((i = 0; i < TIMEOUT * 4; i++)); do
    if answers "$kind"; then
      log "$kind: ready ($(DOCKER_CONFIG="$d/config" "$(cli_path "$kind")" -H "unix://$d/docker.sock" version --format '{{.Server.Version}}'))"
      return 0
    fi
    # Fail fast if it died (its pidfile may not be written yet, hence also
    # the background-job check).
    if ((i > 8)) && ! daemon_pid "$kind" >/dev/null && ! jobs -rp | grep -q .; then
      tail -n 30 "$d/dockerd.log" >&2
      die "$kind: dockerd exited (log above: $d/dockerd.log)"
    fi
    sleep 0.25
  done
  tail -n 30 "$d/dockerd.log" >&2
  die "$kind: dockerd not ready after ${TIMEOUT}s (log above: $d/dockerd.log)"
}

stop_engine() {
  local kind=$1 pid i
  if ! pid=$(daemon_pid "$kind"); then log "$kind: not running"; return 0; fi
  log "$kind: stopping dockerd $pid"
  kill -TERM "$pid"
  for ((i = 0; i < 120; i++)); do
    kill -0 "$pid" 2>/dev/null || { log "$kind: stopped"; return 0; }
    sleep 0.25
  done
  log "$kind: dockerd $pid still alive after 30s, sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
}

print_env() {
  local kind=$1 d; d=$(edir "$kind")
  [[ -x $(cli_path "$kind") ]] || die "$kind is not installed; run: $0 start $kind"
  # Drop other kinds' bin dirs so switching kinds in one shell works.
  local p newpath="" IFS=:
  for p in $PATH; do
    [[ $p == "$NIXFE_STATE/engines/"*/bin ]] && continue
    newpath+="${newpath:+:}$p"
  done
  unset IFS
  printf 'export DOCKER_HOST=%q\n' "unix://$d/docker.sock"
  printf 'export DOCKER_CONFIG=%q\n' "$d/config"
  printf 'export PATH=%q\n' "$d/bin:$newpath"
  # 20.10's CLI needs it for BuildKit; for 26.1 it makes a missing buildx an
  # error instead of a silent fallback to the legacy builder.
  printf 'export DOCKER_BUILDKIT=1\n'
  printf 'export NIXFE_ENGINE_KIND=%q\n' "$kind"
}

status() {
  local kind d state ver
  for kind in "${KINDS[@]}"; do
    d=$(edir "$kind")
    ver=""
    if [[ ! -x $(cli_path "$kind") || ! -d $d ]]; then
      state=not-installed
    elif answers "$kind"; then
      state=running
      ver=$(DOCKER_CONFIG="$d/config" "$(cli_path "$kind")" -H "unix://$d/docker.sock" version --format '{{.Server.Version}}' 2>/dev/null || true)
    elif daemon_pid "$kind" >/dev/null; then
      state=not-answering
    else
      state=stopped
    fi
    printf '%-16s %-14s %-16s unix://%s/docker.sock\n' "$kind" "$state" "${ver:--}" "$d"
  done
}

cmd=${1:-}
case $cmd in
  start|stop|env) [[ $# -eq 2 ]] || usage; check_kind "$2" ;;
  status)         [[ $# -eq 1 ]] || usage ;;
  *)              usage ;;
esac
case $cmd in
  start)  start_engine "$2" ;;
  stop)   stop_engine "$2" ;;
  env)    print_env "$2" ;;
  status) status ;;
esac
