#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml, or the files
# given as arguments) with actionlint, installed once into a virtual
# environment in the state dir from scripts/actionlint-requirements.txt
# (pinned wheels; re-installed when that file changes), and fails a workflow
# with a `uses:` that is not pinned by a full 40-hex commit SHA (local `./`
# actions and `docker://` images aside): a tag or branch can be moved to
# other code, a commit cannot.
#   scripts/lint-workflows.sh [WORKFLOW.yml...]
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

# unpinned FILE: prints "FILE:LINE: ..." for each `uses:` of FILE whose ref
# is not a full commit SHA; fails if there is one. A line-based check (a
# `uses:` key at the start of a line, after an optional "- "), so a line of a
# `run:` script that starts with "uses:" would be taken for one.
unpinned() {
  awk -v file="$1" '
    /^[[:space:]]*(-[[:space:]]+)?uses:/ {
      ref = $0
      sub(/^[[:space:]]*(-[[:space:]]+)?uses:[[:space:]]*/, "", ref)
      sub(/[[:space:]]+#.*$/, "", ref)
      sub(/[[:space:]]+$/, "", ref)
      if (ref ~ /^".*"$/ || ref ~ /^\047.*\047$/) ref = substr(ref, 2, length(ref) - 2)
      if (ref ~ /^\.\// || ref ~ /^docker:\/\//) next
      if (ref ~ /^[^@[:space:]]+@[0-9a-fA-F]+$/ && length(ref) - index(ref, "@") == 40) next
      printf "%s:%d: uses: %s is not pinned by a full commit SHA (want OWNER/REPO@<40-hex SHA> # vX.Y.Z)\n", file, NR, ref
      bad = 1
    }
    END { exit bad }
  ' "$1"
}

passed=0 failed=0
if (($#)); then
  wfs=("$@")
else
  cd "$top"
  wfs=(.github/workflows/*.yml .github/workflows/*.yaml)
fi
# No shellcheck/pyflakes integration: they would run only where installed,
# so a result would depend on the machine.
for wf in "${wfs[@]}"; do
  if [[ ! -e $wf ]]; then
    # An unmatched glob is no workflow; a named file that is not there fails.
    if (($#)); then failed=$((failed + 1)); echo "FAIL $wf: no such file"; fi
    continue
  fi
  ok=1
  "$venv/bin/actionlint" -no-color -shellcheck= -pyflakes= "$wf" || ok=0
  unpinned "$wf" || ok=0
  if ((ok)); then
    passed=$((passed + 1)); echo "ok   $wf"
  else
    failed=$((failed + 1)); echo "FAIL $wf"
  fi
done
((passed + failed > 0)) || { failed=1; echo "FAIL no workflow found"; }
echo "actionlint: $passed passed, $failed failed, 0 skipped"
((failed == 0))
