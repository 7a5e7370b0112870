#!/usr/bin/env bash
# The arm64 frontend is the same frontend: its debug commands print the same
# bytes as the amd64 binary's, for every example and fixture spec.
#
#   tests/arm64-identity.sh
#
# Builds both static binaries if needed (cargo for amd64, scripts/build-cross.sh
# for arm64), runs the arm64 one under qemu-aarch64-static (user-mode
# emulation of one static binary: no binfmt, no container), and compares
# stdout, stderr, exit status and the --raw Definition file, byte for byte:
#   - `spec`, `plan` and `llb --raw OUT` of every case of tests/golden/
#     (its spec, --mergeop and options), plus a few option variants;
#   - every bad spec of tests/errors/ (with its .args): the same error text.
# Env: NIXFE_AMD64_BIN, NIXFE_ARM64_BIN to compare given binaries instead.
# Last line: "arm64-identity: N passed, N failed, N skipped".
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib-env.sh
source "$top/scripts/lib-env.sh"
cd "$top" || exit 1

passed=0 failed=0 skipped=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

finish() {
  echo "arm64-identity: $passed passed, $failed failed, $skipped skipped"
  ((failed == 0))
  exit
}

# The cases: NAME|SPEC|ARG|ARG…, one a line. Every case of tests/golden/
# (tests/golden.rs: its case.toml's spec, mergeop and options, as the debug
# commands' flags; its facts are the CLI's stand-ins here), every example and
# fixture spec no case names, then a few more.
golden_cases() {
  python3 - "$top" <<'PY'
import pathlib, sys, tomllib
top = pathlib.Path(sys.argv[1])
named = set()
for case in sorted((top / "tests/golden").glob("*/case.toml")):
    c = tomllib.loads(case.read_text())
    spec = case.parent / c["spec"]
    if not spec.exists():
        spec = top / c["spec"]
    args = ["--mergeop"] if c.get("mergeop") else []
    for k, v in sorted(c.get("options", {}).items()):
        if k.startswith("build-arg:"):
            args += ["--build-arg", k.removeprefix("build-arg:") + "=" + v]
        elif k in ("target", "platform"):
            args += ["--" + k, v]
        elif k == "no-cache":
            args.append("--no-cache")
        # Other options (label:*, vcs:*) have no debug flag.
    named.add(spec.resolve())
    print("|".join([case.parent.name, str(spec.relative_to(top)), *args]))
# Every example and fixture spec, with defaults, where no golden case names it.
for d in ("examples", "tests/fixtures"):
    for p in sorted((top / d).iterdir()):
        spec = p / "Dockerfile" if p.is_dir() else p
        if spec.is_file() and spec.suffix in ("", ".toml") and spec.resolve() not in named:
            rel = str(spec.relative_to(top))
            print("|".join(["spec/" + rel, rel]))
PY
}
if ! golden=$(golden_cases) || [[ -z $golden ]]; then
  echo "FAIL setup: cannot read tests/golden/*/case.toml"
  failed=$((failed + 1)); finish
fi
mapfile -t CASES <<<"$golden"
CASES+=(
  "more/hello-arm64|examples/hello/Dockerfile|--platform|linux/arm64"
  "more/valkyrie-like-agent-mergeop|examples/valkyrie-like/Dockerfile|--target|agent|--mergeop"
  "more/keys-epoch|tests/fixtures/keys.toml|--build-arg|ZONE=UTC|--epoch|1700000000"
)

host=$(uname -m)
if [[ $host != x86_64 ]]; then
  n=$(( ${#CASES[@]} * 3 ))
  echo "skip all $n cases: this test runs the amd64 binary natively (host is $host)"
  skipped=$n
  finish
fi

amd64=${NIXFE_AMD64_BIN:-$top/target/x86_64-unknown-linux-gnu/release/nix-frontend}
arm64=${NIXFE_ARM64_BIN:-$top/target/aarch64-unknown-linux-gnu/release/nix-frontend}

# A missing binary or emulator is a failure, not a skip: this machine can
# build and run both.
setup_failed() { echo "FAIL setup: $*"; failed=$((failed + 1)); finish; }
if [[ -z ${NIXFE_AMD64_BIN:-} ]]; then
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build -q --release --locked --target x86_64-unknown-linux-gnu >&2 ||
    setup_failed "cargo build (amd64)"
fi
if [[ -z ${NIXFE_ARM64_BIN:-} ]]; then
  "$top/scripts/build-cross.sh" || setup_failed "scripts/build-cross.sh (arm64)"
fi
( apt_install qemu-user-static file ) || setup_failed "apt install qemu-user-static"
qemu=$(command -v qemu-aarch64-static) || setup_failed "no qemu-aarch64-static"

# Not the same binary twice: one of each architecture, both static.
[[ $(file -b "$amd64") == *"x86-64"* ]] || setup_failed "$amd64 is not an x86-64 binary"
[[ $(file -b "$arm64") == *"ARM aarch64"* ]] || setup_failed "$arm64 is not an aarch64 binary"
"$qemu" "$arm64" --help >"$work/help.arm64" 2>&1 || setup_failed "the arm64 binary does not run under $qemu"
"$amd64" --help >"$work/help.amd64" 2>&1
if cmp -s "$work/help.amd64" "$work/help.arm64"; then
  passed=$((passed + 1)); echo "ok   --help"
else
  failed=$((failed + 1)); echo "FAIL --help"
fi

# run ARCH DIR ARGS…: one binary's stdout, stderr and status into DIR.
run() {
  local arch=$1 dir=$2; shift 2
  mkdir -p "$dir"
  local rc=0
  if [[ $arch == arm64 ]]; then
    "$qemu" "$arm64" "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  else
    "$amd64" "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  fi
  echo "$rc" >"$dir/status"
}

# compare NAME WANT_STATUS FILE… : the same bytes from both binaries.
compare() {
  local name=$1 want=$2; shift 2
  local f why=""
  for f in status stdout stderr "$@"; do
    if [[ ! -f $work/$name/amd64/$f || ! -f $work/$name/arm64/$f ]]; then
      why+=" $f missing;"
    elif ! cmp -s "$work/$name/amd64/$f" "$work/$name/arm64/$f"; then
      why+=" $f differs;"
    fi
  done
  local got; got=$(cat "$work/$name/amd64/status")
  case $want in
    0) [[ $got == 0 ]] || why+=" exit status $got;"
       [[ -s $work/$name/amd64/stdout ]] || why+=" no output;" ;;
    error) [[ $got != 0 && -s $work/$name/amd64/stderr ]] || why+=" expected an error, got status $got;" ;;
  esac
  for f in "$@"; do [[ -s $work/$name/amd64/$f ]] || why+=" empty $f;"; done
  if [[ -z $why ]]; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name:$why"
    diff <(cat "$work/$name/amd64/stdout" "$work/$name/amd64/stderr") \
         <(cat "$work/$name/arm64/stdout" "$work/$name/arm64/stderr") | head -n 20 | sed 's/^/    | /'
  fi
}

for c in "${CASES[@]}"; do
  IFS='|' read -ra f <<<"$c"
  name=${f[0]} spec=${f[1]} args=("${f[@]:2}")
  for cmd in spec plan; do
    for arch in amd64 arm64; do run "$arch" "$work/$name.$cmd/$arch" "$cmd" "$spec" "${args[@]}"; done
    compare "$name.$cmd" 0
  done
  for arch in amd64 arm64; do
    run "$arch" "$work/$name.llb/$arch" llb "$spec" "${args[@]}" --raw "$work/$name.llb/$arch/raw.pb"
  done
  compare "$name.llb" 0 raw.pb
done

# The bad specs: the same error, as the CLI renders it.
n=0
for spec in tests/errors/*.toml; do
  name=errors/$(basename "$spec" .toml)
  args=()
  if [[ -f ${spec%.toml}.args ]]; then
    while read -r opt value; do
      [[ -z $opt || $opt == '#'* ]] && continue
      args+=("$opt" "$value")
    done <"${spec%.toml}.args"
  fi
  for arch in amd64 arm64; do run "$arch" "$work/$name/$arch" llb "$spec" "${args[@]}"; done
  compare "$name" error
  n=$((n + 1))
done
((n >= 30)) || { failed=$((failed + 1)); echo "FAIL errors: only $n bad specs found"; }

finish
