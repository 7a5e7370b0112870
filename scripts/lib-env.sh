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
