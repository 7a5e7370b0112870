#!/usr/bin/env bash
# All tests: lints, unit and golden tests, then the end-to-end suites
# (tests/e2e.sh, tests/cache.sh, tests/registry.sh) on each engine kind
# (started here if needed; see scripts/engine.sh). The local registry
# (scripts/registry.sh) is started before the suites; it and the `clean`
# engine the registry suite pulls into are stopped at the end, unless they
# were running before.
#   scripts/test.sh                 every kind: 20.10, 26.1, 26.1-containerd
#   NIXFE_KINDS="26.1" scripts/test.sh
# The last line is "N passed, N failed, N skipped" over the suites of every kind.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kinds=${NIXFE_KINDS:-"20.10 26.1 26.1-containerd"}

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
for kind in $kinds; do
  echo "== engine $kind"
  scripts/engine.sh start "$kind" >/dev/null
  (
    eval "$(scripts/engine.sh env "$kind")"
    scripts/nix-image.sh all
    scripts/build-frontend.sh
  )
  for suite in e2e cache registry; do
    out=$(tests/$suite.sh "$kind" 2>&1) || true
    printf '%s\n' "$out"
    line=$(grep -E "^$suite\(.*\): [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$" <<<"$out" | tail -n1 || true)
    if [[ -z $line ]]; then
      echo "$suite($kind) did not finish" >&2
      failed=$((failed + 1))
      continue
    fi
    p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*, ([0-9]+) failed.*/\1/' <<<"$line")
    k=$(sed -E 's/.*, ([0-9]+) skipped$/\1/' <<<"$line")
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
  done
done
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
