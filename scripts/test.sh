#!/usr/bin/env bash
# All tests: lints, unit and golden tests, the workflow lint
# (scripts/lint-workflows.sh), the arm64 binary against the amd64 one
# (tests/arm64-identity.sh), then the end-to-end suites (tests/e2e.sh,
# tests/cache.sh, tests/registry.sh, tests/platforms.sh, tests/sbom.sh,
# tests/contexts.sh) on each engine kind (started here if
# needed; see scripts/engine.sh). The local registry (scripts/registry.sh) is
# started before the suites; it and the `clean` engine the registry suite
# pulls into are stopped at the end, unless they were running before.
#   scripts/test.sh                 every kind: 20.10, 26.1, 26.1-containerd, sid
#   NIXFE_KINDS="26.1" scripts/test.sh
# On sid (the newest Docker in Debian) the suites in NIXFE_SID_SUITES run
# (default: all but the platforms tests that emulate arm64, which
# 26.1-containerd runs and which take the longest; of platforms, the
# wrong-architecture check and the tests of run-on = "cross"); an entry
# SUITE:TEST,TEST runs those tests of the suite, and the suite names the
# others as not run, not counted.
# The last line is "N passed, N failed, N skipped" over the workflow lint, the
# identity test and the suites of every kind.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kinds=${NIXFE_KINDS:-"20.10 26.1 26.1-containerd sid"}
all_suites="e2e cache registry platforms sbom contexts"
sid_suites=${NIXFE_SID_SUITES:-"e2e cache registry sbom contexts platforms:wrong_arch_refused,cross_two_platforms,cross_wrong_arch_refused"}

echo "== cargo fmt --check, clippy, cargo test"
cargo fmt --check
cargo clippy -q --all-targets --locked -- -D warnings
cargo test -q --locked

# Stop at the end (also on failure) what this script or its suites started.
stop_registry=0 stop_clean=0
scripts/registry.sh status >/dev/null 2>&1 || stop_registry=1
[[ $(scripts/engine.sh status | awk '$1 == "clean" { print $2 }') == running ]] || stop_clean=1
finish() {
  if ((stop_clean)); then scripts/engine.sh stop clean >/dev/null 2>&1 || true; fi
  if ((stop_registry)); then scripts/registry.sh stop >/dev/null 2>&1 || true; fi
}
trap finish EXIT
echo "== registry"
scripts/registry.sh start >/dev/null

passed=0 failed=0 skipped=0
# tally NAME OUTPUT: adds the counts of OUTPUT's last "NAME: N passed, N
# failed, N skipped" line; a suite without one did not finish (one failure).
tally() {
  local name line p f k
  # shellcheck disable=SC2001,SC2016  # a regex-quoted copy of the name
  name=$(sed 's/[][\\.*^$(){}+?|]/\\&/g' <<<"$1")
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$" <<<"$2" | tail -n1 || true)
  if [[ -z $line ]]; then
    echo "$1 did not finish" >&2
    failed=$((failed + 1))
    return
  fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")
  k=$(sed -E 's/.*, ([0-9]+) skipped$/\1/' <<<"$line")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
}

echo "== workflows (actionlint)"
out=$(scripts/lint-workflows.sh 2>&1) || true
printf '%s\n' "$out"
tally actionlint "$out"

# Builds both static binaries (the arm64 one in a cached sid rootfs, see
# scripts/build-cross.sh) and compares them under qemu.
echo "== arm64 binary against amd64 (qemu-aarch64-static)"
out=$(tests/arm64-identity.sh 2>&1) || true
printf '%s\n' "$out"
tally arm64-identity "$out"

for kind in $kinds; do
  echo "== engine $kind"
  scripts/engine.sh start "$kind" >/dev/null
  (
    eval "$(scripts/engine.sh env "$kind")"
    scripts/nix-image.sh all
    scripts/build-frontend.sh
    # The builder as an amd64 + arm64 index, for tests/platforms.sh.
    eval "$(scripts/registry.sh env)"
    scripts/nix-image.sh push
  )
  suites=$all_suites
  if [[ $kind == sid ]]; then
    suites=$sid_suites
    for s in $all_suites; do
      [[ " $suites " == *" $s "* || " $suites " == *" $s:"* ]] || echo "$s($kind): not run (NIXFE_SID_SUITES)"
    done
  fi
  for entry in $suites; do
    suite=${entry%%:*} only=${NIXFE_TESTS:-}
    [[ $entry != *:* ]] || only=${entry#*:}
    out=$(NIXFE_TESTS="${only//,/ }" tests/$suite.sh "$kind" 2>&1) || true
    printf '%s\n' "$out"
    tally "$suite($kind)" "$out"
  done
done
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
