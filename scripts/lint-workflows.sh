#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint,
# installed once into a virtual environment in the state dir from
# scripts/actionlint-requirements.txt (pinned wheels; re-installed when that
# file changes).
# Last line: "actionlint: N passed, N failed, N skipped" (one per workflow).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib-env.sh
source "$here/lib-env.sh"

reqs="$here/actionlint-requirements.txt"
venv="$NIXFE_STATE/venv/actionlint-$(short_hash <"$reqs")"

install() {
  mkdir -p "$NIXFE_STATE/venv"
  exec {lock}>"$NIXFE_STATE/venv/lock"
  flock "$lock"
  if [[ -f $venv/.installed && -x $venv/bin/actionlint ]]; then exec {lock}>&-; return 0; fi
  # Another recipe's venv, or an interrupted install, goes. (A venv's scripts
  # name its interpreter by absolute path: it is made where it stays, and
  # .installed marks it complete.)
  rm -rf "$NIXFE_STATE/venv/actionlint-"*
  # Debian's python3 needs python3-venv for ensurepip.
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  log "installing actionlint into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes -r "$reqs" >&2
  "$venv/bin/actionlint" -version >/dev/null
  touch "$venv/.installed"
  exec {lock}>&-
}

install

passed=0 failed=0
cd "$top"
# No shellcheck/pyflakes integration: they would run only where installed,
# so a result would depend on the machine.
for wf in .github/workflows/*.yml; do
  [[ -e $wf ]] || continue
  if "$venv/bin/actionlint" -no-color -shellcheck= -pyflakes= "$wf"; then
    passed=$((passed + 1)); echo "ok   $wf"
  else
    failed=$((failed + 1)); echo "FAIL $wf"
  fi
done
((passed + failed > 0)) || { failed=1; echo "FAIL no workflow found under .github/workflows"; }
echo "actionlint: $passed passed, $failed failed, 0 skipped"
((failed == 0))
