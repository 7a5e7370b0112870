#!/usr/bin/env bash
# Run foreign-architecture images on this engine host: qemu-user-static
# registered with binfmt_misc, as `docker run --platform linux/arm64` and a
# Dockerfile RUN for another platform need.
#
#   binfmt.sh [setup [PLATFORM...]]  mount binfmt_misc if needed, install Debian's
#                                    qemu-user-static and binfmt-support, enable the
#                                    emulator for each PLATFORM (default linux/arm64),
#                                    fail unless it is registered with the F flag
#   binfmt.sh check PLATFORM...      say whether each PLATFORM can run here; exit 1
#                                    if one cannot (changes nothing)
#   binfmt.sh status                 `check` for every platform below, always exit 0
#
# PLATFORM: linux/amd64, linux/386, linux/arm64, linux/arm/v7, linux/riscv64,
# linux/ppc64le, linux/s390x. `check` runs a tiny static ELF of that
# architecture (written here, it only exits with status 42), and for an
# emulated one also requires the F flag: with it the kernel opens the
# emulator when it is registered, so it is found inside containers too,
# whose filesystems have no /usr/libexec/qemu-binfmt.
# Idempotent; several may run at once (a lock serializes setup).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

BINFMT_DIR=/proc/sys/fs/binfmt_misc
PLATFORMS=(linux/amd64 linux/386 linux/arm64 linux/arm/v7 linux/riscv64 linux/ppc64le linux/s390x)

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# The kernel's name for a platform's machine (uname -m, and Debian's
# qemu-NAME binfmt entries).
machine_of() {
  case $1 in
    linux/amd64) echo x86_64 ;;
    linux/386) echo i386 ;;
    linux/arm64 | linux/arm64/v8) echo aarch64 ;;
    linux/arm/v7 | linux/arm/v6 | linux/arm) echo arm ;;
    linux/riscv64) echo riscv64 ;;
    linux/ppc64le) echo ppc64le ;;
    linux/s390x) echo s390x ;;
    *) return 1 ;;
  esac
}

# A minimal static executable for MACHINE that calls exit(42): one PT_LOAD
# segment holding the headers and the code. Printed as printf escapes.
tiny_elf() {
  local class endian em flags code
  case $1 in
    #          class endian e_machine e_flags    code (bytes in memory order)
    i386)    set -- 32 le 3   0          'b8 01 00 00 00 bb 2a 00 00 00 cd 80' ;;      # mov eax,1; mov ebx,42; int 0x80
    x86_64)  set -- 64 le 62  0          'b8 3c 00 00 00 bf 2a 00 00 00 0f 05' ;;      # mov eax,60; mov edi,42; syscall
    aarch64) set -- 64 le 183 0          '40 05 80 d2 a8 0b 80 d2 01 00 00 d4' ;;      # mov x0,#42; mov x8,#93; svc #0
    arm)     set -- 32 le 40  0x05000000 '2a 00 a0 e3 01 70 a0 e3 00 00 00 ef' ;;      # mov r0,#42; mov r7,#1; svc #0
    riscv64) set -- 64 le 243 0          '13 05 a0 02 93 08 d0 05 73 00 00 00' ;;      # li a0,42; li a7,93; ecall
    ppc64le) set -- 64 le 21  2          '2a 00 60 38 01 00 00 38 02 00 00 44' ;;      # li r3,42; li r0,1; sc (ELFv2)
    s390x)   set -- 64 be 22  0          'a7 29 00 2a 0a 01' ;;                        # lghi %r2,42; svc 1
    *) return 1 ;;
  esac
  class=$1 endian=$2 em=$3 flags=$4 code=$5
  # An unsigned integer of N bytes in the target's byte order.
  int() {
    local n=$1 v=$2 i out=() b
    for ((i = 0; i < n; i++)); do
      printf -v b '\\x%02x' $(((v >> (8 * i)) & 255))
      out+=("$b")
    done
    if [[ $endian == be ]]; then
      for ((i = n - 1; i >= 0; i--)); do printf '%s' "${out[i]}"; done
    else
      printf '%s' "${out[@]}"
    fi
  }
  local base=$((0x400000)) ehsize phsize w ncode hdr=""
  ncode=$(wc -w <<<"$code")
  if ((class == 64)); then ehsize=64 phsize=56 w=8; else ehsize=52 phsize=32 w=4; fi
  local off=$((ehsize + phsize)) total
  total=$((off + ncode))
  # e_ident: magic, class, data, version, SYSV ABI, padding.
  hdr+='\x7fELF'
  hdr+=$(int 1 $((class == 64 ? 2 : 1)))$(int 1 $([[ $endian == be ]] && echo 2 || echo 1))
  hdr+='\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00'
  hdr+=$(int 2 2)$(int 2 "$em")$(int 4 1)                  # ET_EXEC, machine, version
  hdr+=$(int $w $((base + off)))$(int $w "$ehsize")$(int $w 0) # entry, phoff, shoff
  hdr+=$(int 4 "$flags")$(int 2 "$ehsize")$(int 2 "$phsize")$(int 2 1)$(int 2 0)$(int 2 0)$(int 2 0)
  # Program header: PT_LOAD, R+X, the whole file at base.
  if ((class == 64)); then
    hdr+=$(int 4 1)$(int 4 5)$(int 8 0)$(int 8 $base)$(int 8 $base)$(int 8 $total)$(int 8 $total)$(int 8 4096)
  else
    hdr+=$(int 4 1)$(int 4 0)$(int 4 $base)$(int 4 $base)$(int 4 $total)$(int 4 $total)$(int 4 5)$(int 4 4096)
  fi
  local c
  for c in $code; do hdr+="\\x$c"; done
  printf '%s' "$hdr"
}

# Runs the tiny ELF for MACHINE; true if it exited with 42.
runs_elf() {
  local dir rc=0 esc
  esc=$(tiny_elf "$1") || return 1
  dir=$(mktemp -d)
  # printf's %b turns the escapes into bytes.
  printf '%b' "$esc" >"$dir/exit42"
  chmod +x "$dir/exit42"
  "$dir/exit42" 2>/dev/null || rc=$?
  rm -rf "$dir"
  ((rc == 42))
}

mounted() { [[ -e $BINFMT_DIR/status ]]; }

# "flags: PF" of a registration, or nothing.
entry_flags() {
  local f=$BINFMT_DIR/qemu-$1
  [[ -r $f ]] || return 1
  sed -n 's/^flags: *//p' "$f"
}

entry_enabled() { [[ -r $BINFMT_DIR/qemu-$1 ]] && [[ $(head -n1 "$BINFMT_DIR/qemu-$1") == enabled ]]; }

# One line on stdout; status 0 if PLATFORM can run in containers here.
check_one() {
  local p=$1 m host flags
  m=$(machine_of "$p") || { echo "$p: unknown platform (one of: ${PLATFORMS[*]})"; return 1; }
  host=$(uname -m)
  if [[ $m == "$host" ]]; then
    echo "$p: yes (native)"; return 0
  fi
  # A registered emulator is used even where the kernel could run the
  # binary itself (qemu-i386 on x86_64 hosts that register one).
  if mounted && entry_enabled "$m"; then
    flags=$(entry_flags "$m")
    if [[ $flags != *F* ]]; then
      echo "$p: no: qemu-$m is registered without the F flag (flags: ${flags:-none}), so containers cannot find the emulator; remove it (echo -1 > $BINFMT_DIR/qemu-$m) and run scripts/binfmt.sh setup $p"
      return 1
    fi
    if runs_elf "$m"; then
      echo "$p: yes (qemu-$m, flags $flags)"; return 0
    fi
    echo "$p: no: qemu-$m is registered (flags $flags) but a test $m binary did not run"
    return 1
  fi
  # Natively supported foreign modes (i386 on x86_64 with IA32 emulation).
  if runs_elf "$m"; then
    echo "$p: yes (the kernel runs $m binaries)"; return 0
  fi
  if ! mounted; then
    echo "$p: no: binfmt_misc is not mounted at $BINFMT_DIR; run scripts/binfmt.sh setup $p"
  elif [[ -e $BINFMT_DIR/qemu-$m ]]; then
    echo "$p: no: qemu-$m is registered but disabled; run scripts/binfmt.sh setup $p"
  else
    echo "$p: no: no qemu-$m registration; run scripts/binfmt.sh setup $p"
  fi
  return 1
}

cmd_check() {
  (($#)) || usage
  local p rc=0
  for p in "$@"; do check_one "$p" || rc=1; done
  return $rc
}

cmd_status() {
  local p
  for p in "${PLATFORMS[@]}"; do check_one "$p" || true; done
}

cmd_setup() {
  (($#)) || set -- linux/arm64
  local p m host todo=()
  host=$(uname -m)
  for p in "$@"; do
    m=$(machine_of "$p") || die "unknown platform '$p' (one of: ${PLATFORMS[*]})"
    [[ $m == "$host" ]] || todo+=("$m")
  done
  ((${#todo[@]})) || { log "nothing to emulate: $* native here"; return 0; }

  mkdir -p "$NIXFE_STATE"
  local lock
  exec {lock}>"$NIXFE_STATE/binfmt.lock"
  flock "$lock"

  # Mounted first: the packages' postinst then registers their formats.
  if ! mounted; then
    log "mounting binfmt_misc at $BINFMT_DIR"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" ||
      die "cannot mount binfmt_misc at $BINFMT_DIR (kernel without CONFIG_BINFMT_MISC, or no privilege to mount)"
  fi
  apt_install qemu-user-static binfmt-support

  for m in "${todo[@]}"; do
    if ! entry_enabled "$m"; then
      [[ -e /usr/share/binfmts/qemu-$m ]] ||
        die "qemu-user-static installs no binfmt format qemu-$m (/usr/share/binfmts/qemu-$m missing)"
      log "enabling qemu-$m"
      update-binfmts --enable "qemu-$m" >&2 || die "update-binfmts --enable qemu-$m failed"
    fi
    entry_enabled "$m" || die "qemu-$m is not enabled in $BINFMT_DIR after update-binfmts --enable"
    local flags
    flags=$(entry_flags "$m")
    if [[ $flags != *F* ]]; then
      die "qemu-$m is registered without the F flag (flags: ${flags:-none}; from $(sed -n 's/^interpreter //p' "$BINFMT_DIR/qemu-$m")):" \
        "containers would not find the emulator. Something other than Debian's qemu-user-static registered it;" \
        "remove it (echo -1 > $BINFMT_DIR/qemu-$m) and run this again"
    fi
    runs_elf "$m" || die "qemu-$m is registered (flags $flags) but a test $m binary does not run"
    log "qemu-$m ready (flags $flags)"
  done
  exec {lock}>&-
}

case ${1:-setup} in
  setup) shift $(($# ? 1 : 0)); cmd_setup "$@" ;;
  check) shift; cmd_check "$@" ;;
  status) [[ $# -eq 1 ]] || usage; cmd_status ;;
  *) usage ;;
esac
