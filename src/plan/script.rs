//! The shell script the nix step runs in the builder image.
//!
//! It builds, writes one report (`REPORT_FILE`: outputs, closure graph,
//! `meta.mainProgram`, what the main output has in `bin/`) and one marker
//! file per output (`OUTPUTS_DIR/<name>`, holding the path), registers GC
//! roots for this build inside the store cache, and, with a budget, collects
//! garbage. The step holds the cache mount's lock (`sharing=locked`), so
//! collection never races another build.
//!
//! The text is a constant: every value is an argument (`$1`…), never spliced
//! into the script, so no value can change what the shell runs.

use super::{OUT_DIR, OUTPUTS_DIR, REPORT_FILE};

/// Where GC roots of nix-frontend builds live inside the store cache.
pub const ROOTS_DIR: &str = "/nix/var/nix/gcroots/nix-frontend";

/// `$0` of the script, as `ps` and error messages show it.
pub const NIX_ARGV0: &str = "nix-frontend-nix";

/// `$0` of a group step's script.
pub const GROUP_ARGV0: &str = "nix-frontend-group";

/// Where a step sees the group steps it builds on (see [`GROUP_SCRIPT`]).
pub const GROUPS_DIR: &str = "/nix-frontend/groups";

/// Where a nix step sees the builder's `/nix`, read-only: what a new store
/// cache starts as (see `seed_store` in the scripts).
pub const SEED_DIR: &str = "/nix-frontend/seed";

/// A shell function: fills a new store cache (BuildKit gives an empty
/// directory) with the builder's `/nix`, once. The marker is written last,
/// so a seeding cut short is cleared and made again; the step holds the
/// cache's lock (`sharing=locked`), so no other build sees it half made.
macro_rules! seed_store {
    () => {
        r#"seed_store() {
  [ -e /nix/.nix-frontend-seeded ] && return 0
  for p in /nix/* /nix/.[!.]*; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    rm -rf "$p"
  done
  cp -a /nix-frontend/seed/. /nix/
  : > /nix/.nix-frontend-seeded
}
seed_store
"#
    };
}

/// A shell function: copies into `/nix/store` what each group below (in
/// `GROUPS_DIR`, in order) holds and registers it from the group's database
/// dump, so nix takes it as built.
macro_rules! import_groups {
    () => {
        r#"import_groups() {
  for g in /nix-frontend/groups/*/; do
    [ -f "${g}paths" ] || continue
    for p in "${g}"nix/store/* "${g}"nix/store/.[!.]*; do
      [ -e "$p" ] || [ -L "$p" ] || continue
      [ -e "/nix/store/${p##*/}" ] || [ -L "/nix/store/${p##*/}" ] || cp -a "$p" /nix/store/
    done
    nix-store --load-db < "${g}db"
  done
}
"#
    };
}

/// A group step: build the derivations given (`$2`…) on top of the groups
/// below, and keep in `/out` what their outputs' closure adds to those:
/// the store paths (`/out/nix/store`), their list (`/out/paths`) and their
/// registrations (`/out/db`). `$1` is the system, for messages. A
/// derivation missing from the store (its evaluation came from the cache,
/// not from this builder) exits with `STORE_PATH_MISSING`.
pub const GROUP_SCRIPT: &str = concat!(
    "set -eu\n",
    seed_store!(),
    import_groups!(),
    r#"system=$1; shift
for d; do
  [ -e "$d" ] || { echo "nix-frontend: $d is missing from the /nix store cache ($system)" >&2; exit 75; }
done
import_groups
nix-store --realise "$@" >/dev/null
t=/tmp/nix-frontend-group
mkdir -p "$t" /out/nix/store
cat /nix-frontend/groups/*/paths 2>/dev/null | LC_ALL=C sort -u > "$t/below"
nix-store --query --requisites $(nix-store --query --outputs "$@") | LC_ALL=C sort -u > "$t/closure"
LC_ALL=C comm -23 "$t/closure" "$t/below" > /out/paths
if [ -s /out/paths ]; then
  while read -r p; do cp -a "$p" /out/nix/store/; done < /out/paths
  nix-store --dump-db $(cat /out/paths) > /out/db
else
  : > /out/db
fi
"#
);

const SCRIPT: &str = concat!(
    "set -eu\n",
    seed_store!(),
    import_groups!(),
    r#"installable=$1 system=$2 roots=$3 max=$4 verify=$5 mode=$6
shift 6
# "$@": --override-input NAME FLAKEREF for each input a named context replaces.
t=/tmp/nix-frontend
mkdir -p "$t" /out/outputs
meta() {
  nix eval --json --system "$system" "$@" "$installable" --apply 'p: { mainProgram = p.meta.mainProgram or null; license = p.meta.license or null; }' 2>"$t/meta.err" || echo null
}
flake() { nix flake metadata --json "$@" "${installable%#*}" 2>"$t/flake.err" || echo null; }
# nix's last error line in FILE (the innermost error, after its trace) as a
# JSON string, "" when there is none.
err_json() { printf '"%s"' "$(grep 'error:' "$1" 2>/dev/null | tail -n1 | tr -d '\000-\037' | sed 's/^ *//; s/\\/\\\\/g; s/"/\\"/g')"; }
errors() { printf '{"meta":'; err_json "$t/meta.err"; printf ',"flake":'; err_json "$t/flake.err"; printf '}'; }
# The flake inputs BuildKit fetched ($NIX_FRONTEND_FETCHED: N:NARHASH), each
# added as the store path its lock names, so nix does not fetch it.
for f in ${NIX_FRONTEND_FETCHED:-}; do
  k=${f%%:*} h=${f#*:}
  p=$(nix-store --print-fixed-path --recursive sha256 "$(nix hash convert --hash-algo sha256 --to nix32 "$h")" source) || continue
  [ -e "$p" ] && continue
  rm -rf "$t/fetched"; mkdir -p "$t/fetched"; cp -a "/nix-frontend/fetched/$k" "$t/fetched/source"
  got=$(nix-store --add-fixed --recursive sha256 "$t/fetched/source")
  [ "$got" = "$p" ] || echo "nix-frontend: the checkout BuildKit fetched is not what flake.lock locks ($got, not $p): nix fetches the input itself" >&2
  rm -rf "$t/fetched"
done
if [ "$mode" = evaluate ] || { [ "$mode" = auto ] && [ -z "$(ls -A "$roots" 2>/dev/null)" ]; }; then
  # A store that never built this target (a fresh builder): evaluate only.
  # The frontend cuts the derivations into steps BuildKit caches and
  # exports, and builds them (see plan/groups.rs).
  mkdir -p /out/eval
  {
    printf '{"build":'; nix build --dry-run --json --system "$system" "$@" "$installable"
    printf ',"derivations":'; nix derivation show --recursive --system "$system" "$@" "$installable"
    printf '}\n'
  } > /out/eval/graph.json
  {
    printf '{"meta":'; meta "$@"
    printf ',"flake":'; flake "$@"
    printf ',"errors":'; errors
    printf '}\n'
  } > /out/eval/facts.json
  find /src -mindepth 1 -name .git -prune -o -print | sed 's|.*/||' | LC_ALL=C sort -u > /out/eval/names.txt
  exit 0
fi
if [ "$mode" = final ]; then
  # $installable is DRV^OUTPUTS; the groups below hold what it needs.
  drv=${installable%^*}
  [ -e "$drv" ] || { echo "nix-frontend: $drv is missing from the /nix store cache" >&2; exit 75; }
  import_groups
fi
nix build --print-build-logs --system "$system" --out-link "$t/result" "$@" "$installable"
outs=$(for r in "$t"/result*; do readlink "$r"; done)
nix path-info --json --recursive $outs > "$t/path-info.json"
if [ "$mode" = final ]; then
  # The evaluation's facts come from the first step's report.
  echo null > "$t/meta.json"; echo null > "$t/flake.json"
else
  meta "$@" > "$t/meta.json"
  flake "$@" > "$t/flake.json"
fi
nix store ls --json "$(readlink "$t/result")/bin" > "$t/bin.json" 2>/dev/null || echo null > "$t/bin.json"
# The first bytes of each program in bin/ and of a script's interpreter, for
# the frontend to check that they run on the image's platform.
hex() { od -An -tx1 -N20 "$1" 2>/dev/null | tr -d ' \n'; }
{
  printf '{'; sep=
  for f in "$(readlink "$t/result")"/bin/*; do
    [ -f "$f" ] || continue
    case ${f##*/} in *[\"\\]*) continue ;; esac
    h=$(hex "$f") i=
    case $h in 2321*) i=$(head -n1 "$f" | sed 's/^#! *//; s/[ \t].*//'); i=$(hex "$i") ;; esac
    printf '%s"%s":{"head":"%s","interpreter":"%s"}' "$sep" "${f##*/}" "$h" "$i"; sep=,
  done
  printf '}'
} > "$t/heads.json"
sep=
{
  printf '{"version":2,"outputs":['
  for o in $outs; do printf '%s"%s"' "$sep" "$o"; sep=,; done
  printf '],"pathInfo":'; cat "$t/path-info.json"
  printf ',"meta":'; cat "$t/meta.json"
  printf ',"bin":'; cat "$t/bin.json"
  printf ',"flake":'; cat "$t/flake.json"
  printf ',"heads":'; cat "$t/heads.json"
  printf ',"errors":'; errors
  printf '}\n'
} > /out/report.json
for o in $outs; do printf '%s\n' "$o" > "/out/outputs/${o##*/}"; done
# GC roots: the outputs and the derivation (with keep-outputs, its build
# dependencies too), one pair per build, newest first by name.
mkdir -p "$roots"
stamp=$(date +%s%N)
for r in "$t"/result*; do ln -sfn "$(readlink "$r")" "$roots/$stamp-out${r#"$t"/result}"; done
ln -sfn "$(nix-store --query --deriver "$(readlink "$t/result")")" "$roots/$stamp-drv"
if [ -n "$max" ]; then
  size() { du -sxb /nix/store | cut -f1; }
  if [ "$(size)" -gt "$max" ]; then
    echo "nix-frontend: store is $(size) bytes, budget $max: collecting garbage" >&2
    # First every project and target keeps only its newest build...
    for d in "${roots%/*}"/*/; do
      newest=$(ls -1 "$d" | sort -r | head -n1 | cut -d- -f1)
      for f in "$d"*; do case ${f##*/} in "$newest"-*) ;; *) rm -f "$f" ;; esac; done
    done
    nix-store --gc >&2
    # Other projects' newest builds are theirs to keep: no further pass.
    if [ "$(size)" -gt "$max" ]; then
      echo "nix-frontend: store is $(size) bytes after garbage collection, over the budget: the newest build of every project sharing this store is kept" >&2
    fi
    echo "nix-frontend: store is $(size) bytes after garbage collection" >&2
  fi
  echo "nix-frontend: store is $(size) bytes (budget $max)" >&2
fi
if [ "$verify" = 1 ]; then
  nix-store --verify --check-contents
  echo 'nix-frontend: store verified' >&2
fi
"#
);

/// How the nix step's script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Build the installable (the single-step design).
    Build,
    /// Build where the store cache built this target before; on a store
    /// that never did, evaluate only (`/out/eval`).
    Auto,
    /// Build `DRV^OUTPUTS` on top of the group steps (no evaluation).
    Final,
    /// Evaluate only, whatever the store built: the retry when a group or
    /// the final step found a derivation missing from the store.
    Evaluate,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Auto => "auto",
            Self::Final => "final",
            Self::Evaluate => "evaluate",
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Script {
    pub installable: String,
    pub system: String,
    /// Names this build's GC-root slot (see `store::root_key`).
    pub root_key: String,
    /// Collect garbage above this many bytes of `/nix/store`.
    pub max_size: Option<u64>,
    pub verify: bool,
    /// `--override-input` arguments, given to every nix command.
    pub overrides: Vec<String>,
    pub mode: Mode,
}

impl Script {
    /// The exec's argv: `sh -c SCRIPT NAME ARGS…`.
    pub fn argv(&self) -> Vec<String> {
        debug_assert!(SCRIPT.contains(OUT_DIR) && SCRIPT.contains(REPORT_FILE));
        debug_assert!(SCRIPT.contains(&format!("/out/{OUTPUTS_DIR}/")));
        debug_assert!(SCRIPT.contains(&format!("{GROUPS_DIR}/*/")));
        debug_assert!(SCRIPT.contains(&format!("{SEED_DIR}/.")));
        vec![
            "/bin/sh".into(),
            "-c".into(),
            SCRIPT.into(),
            NIX_ARGV0.into(),
            self.installable.clone(),
            self.system.clone(),
            format!("{ROOTS_DIR}/{}", self.root_key),
            self.max_size.map(|m| m.to_string()).unwrap_or_default(),
            if self.verify { "1" } else { "0" }.into(),
            self.mode.arg().into(),
        ]
        .into_iter()
        .chain(self.overrides.iter().cloned())
        .collect()
    }

    /// The final step's script: build `installable` (`DRV^OUTPUTS`) with
    /// this one's settings, on top of the groups.
    pub fn final_step(&self, installable: String) -> Self {
        Self {
            installable,
            overrides: Vec::new(),
            mode: Mode::Final,
            ..self.clone()
        }
    }
}

/// A group step's argv: `sh -c GROUP_SCRIPT NAME SYSTEM DRV…`.
pub fn group_argv(system: &str, drvs: &[String]) -> Vec<String> {
    let mut argv = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        GROUP_SCRIPT.to_owned(),
        GROUP_ARGV0.to_owned(),
        system.to_owned(),
    ];
    argv.extend(drvs.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_arguments_not_script() {
        let argv = Script {
            installable: "path:/src#app'; rm -rf /".into(),
            system: "x86_64-linux".into(),
            root_key: "default.default.default.app".into(),
            max_size: Some(1 << 20),
            verify: false,
            overrides: vec!["--override-input".into(), "lib".into(), "path:/x".into()],
            mode: Mode::Auto,
        }
        .argv();
        assert_eq!(argv[2], SCRIPT, "the script never changes");
        assert_eq!(argv[4], "path:/src#app'; rm -rf /");
        assert_eq!(argv[6], format!("{ROOTS_DIR}/default.default.default.app"));
        assert_eq!(argv[7], "1048576");
        assert_eq!(argv[8], "0");
        assert_eq!(argv[9], "auto");
        assert_eq!(argv[10..], ["--override-input", "lib", "path:/x"]);
    }

    #[test]
    fn scripts_are_shell_text() {
        // Escapes the Rust source must not turn into other bytes.
        assert!(SCRIPT.starts_with("set -eu\nseed_store() {\n"));
        assert!(GROUP_SCRIPT.starts_with("set -eu\nseed_store() {\n"));
        assert!(GROUP_SCRIPT.contains(&format!("{SEED_DIR}/.")));
        assert!(SCRIPT.contains("printf '}\\n'"));
        assert!(GROUP_SCRIPT.contains("exit 75;"));
        let argv = group_argv("x86_64-linux", &["/nix/store/a.drv".into()]);
        assert_eq!(
            argv[3..],
            ["nix-frontend-group", "x86_64-linux", "/nix/store/a.drv"]
        );
    }
}
