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
const NAME: &str = "nix-frontend-nix";

const SCRIPT: &str = r#"set -eu
installable=$1 system=$2 roots=$3 max=$4 verify=$5
shift 5
# "$@": --override-input NAME FLAKEREF for each input a named context replaces.
t=/tmp/nix-frontend
mkdir -p "$t" /out/outputs
nix build --print-build-logs --system "$system" --out-link "$t/result" "$@" "$installable"
outs=$(for r in "$t"/result*; do readlink "$r"; done)
nix path-info --json --recursive $outs > "$t/path-info.json"
nix eval --json --system "$system" "$@" "$installable" --apply 'p: { mainProgram = p.meta.mainProgram or null; license = p.meta.license or null; }' > "$t/meta.json" 2>/dev/null || echo null > "$t/meta.json"
nix store ls --json "$(readlink "$t/result")/bin" > "$t/bin.json" 2>/dev/null || echo null > "$t/bin.json"
nix flake metadata --json "$@" "${installable%#*}" > "$t/flake.json" 2>/dev/null || echo null > "$t/flake.json"
sep=
{
  printf '{"version":2,"outputs":['
  for o in $outs; do printf '%s"%s"' "$sep" "$o"; sep=,; done
  printf '],"pathInfo":'; cat "$t/path-info.json"
  printf ',"meta":'; cat "$t/meta.json"
  printf ',"bin":'; cat "$t/bin.json"
  printf ',"flake":'; cat "$t/flake.json"
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
    # ...then, if that is not enough, only this build is kept.
    if [ "$(size)" -gt "$max" ]; then
      for f in "${roots%/*}"/*/*; do case $f in "$roots/$stamp"-*) ;; *) rm -f "$f" ;; esac; done
      nix-store --gc >&2
    fi
    echo "nix-frontend: store is $(size) bytes after garbage collection" >&2
  fi
  echo "nix-frontend: store is $(size) bytes (budget $max)" >&2
fi
if [ "$verify" = 1 ]; then
  nix-store --verify --check-contents
  echo 'nix-frontend: store verified' >&2
fi
"#;

pub struct Script<'a> {
    pub installable: &'a str,
    pub system: &'a str,
    /// Names this build's GC-root slot (see `store::root_key`).
    pub root_key: &'a str,
    /// Collect garbage above this many bytes of `/nix/store`.
    pub max_size: Option<u64>,
    pub verify: bool,
    /// `--override-input` arguments, given to every nix command.
    pub overrides: &'a [String],
}

impl Script<'_> {
    /// The exec's argv: `sh -c SCRIPT NAME ARGS…`.
    pub fn argv(&self) -> Vec<String> {
        debug_assert!(SCRIPT.contains(OUT_DIR) && SCRIPT.contains(REPORT_FILE));
        debug_assert!(SCRIPT.contains(&format!("/out/{OUTPUTS_DIR}/")));
        vec![
            "/bin/sh".into(),
            "-c".into(),
            SCRIPT.into(),
            NAME.into(),
            self.installable.into(),
            self.system.into(),
            format!("{ROOTS_DIR}/{}", self.root_key),
            self.max_size.map(|m| m.to_string()).unwrap_or_default(),
            if self.verify { "1" } else { "0" }.into(),
        ]
        .into_iter()
        .chain(self.overrides.iter().cloned())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_arguments_not_script() {
        let argv = Script {
            installable: "path:/src#app'; rm -rf /",
            system: "x86_64-linux",
            root_key: "default.default.default.app",
            max_size: Some(1 << 20),
            verify: false,
            overrides: &["--override-input".into(), "lib".into(), "path:/x".into()],
        }
        .argv();
        assert_eq!(argv[2], SCRIPT, "the script never changes");
        assert_eq!(argv[4], "path:/src#app'; rm -rf /");
        assert_eq!(argv[6], format!("{ROOTS_DIR}/default.default.default.app"));
        assert_eq!(argv[7], "1048576");
        assert_eq!(argv[8], "0");
        assert_eq!(argv[9..], ["--override-input", "lib", "path:/x"]);
    }
}
