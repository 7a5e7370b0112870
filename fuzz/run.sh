#!/usr/bin/env bash
# Fuzzes the spec parser and planner (fuzz_targets/spec.rs) with cargo-fuzz
# on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z
# flags cargo-fuzz passes (sanitizer coverage, ASan).
#
# Usage: fuzz/run.sh [SECONDS] [extra libFuzzer flags…]   (default 600 s)
# Needs: cargo install cargo-fuzz (a C++ compiler builds libFuzzer).
# The corpus is seeded from every spec the repo has: tests/errors/*.toml,
# examples/*/Dockerfile, tests/fixtures/*/Dockerfile. A crash or a timeout
# (-timeout=5: a hang is a finding) lands in fuzz/artifacts/spec/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
secs=${1:-600}
shift || true
corpus=$here/corpus/spec
mkdir -p "$corpus"
for f in "$top"/tests/errors/*.toml "$top"/examples/*/Dockerfile "$top"/tests/fixtures/*/Dockerfile; do
  [ -f "$f" ] || continue
  # Named by content, as libFuzzer names its own corpus entries.
  cp "$f" "$corpus/seed-$(sha1sum "$f" | cut -c1-16)"
done
cd "$here"
RUSTC_BOOTSTRAP=1 exec cargo fuzz run spec "$corpus" -- \
  -dict="$here/spec.dict" -max_total_time="$secs" -timeout=5 -max_len=4096 \
  -print_final_stats=1 "$@"
