//! The shell script the nix step runs in the builder image.
//!
//! It builds, reports what it built into the output directory (closure graph,
//! output paths, `meta.mainProgram`, the programs in `bin/`), registers GC
//! roots for this project and target inside the store cache, and, when the
//! spec sets a budget, collects garbage. The step holds the cache mount's
//! lock (`sharing=locked`), so collection never races another build.

use super::{CLOSURE_FILE, MAIN_PROGRAM_FILE, OUT_DIR, OUTPUTS_FILE, PROGRAMS_FILE};

/// Where GC roots of nix-frontend builds live inside the store cache.
pub const ROOTS_DIR: &str = "/nix/var/nix/gcroots/nix-frontend";

pub struct Script<'a> {
    pub installable: &'a str,
    pub system: &'a str,
    /// Names this project and target's roots: `ns.target.attr`.
    pub root_key: &'a str,
    /// Collect garbage above this many bytes of `/nix/store`.
    pub max_size: Option<u64>,
    pub verify: bool,
}

impl Script<'_> {
    pub fn render(&self) -> String {
        let Script {
            installable,
            system,
            root_key,
            ..
        } = self;
        let mut s = format!(
            "set -eu\n\
             mkdir -p /tmp/nix-frontend {OUT_DIR}\n\
             nix build --print-build-logs --system {system} --out-link /tmp/nix-frontend/result '{installable}'\n\
             nix path-info --json --recursive /tmp/nix-frontend/result* > {OUT_DIR}/{CLOSURE_FILE}\n\
             for r in /tmp/nix-frontend/result*; do readlink \"$r\"; done > {OUT_DIR}/{OUTPUTS_FILE}\n\
             nix eval --json --system {system} '{installable}' --apply 'p: p.meta.mainProgram or null' > {OUT_DIR}/{MAIN_PROGRAM_FILE} 2>/dev/null || echo null > {OUT_DIR}/{MAIN_PROGRAM_FILE}\n\
             ls -1 /tmp/nix-frontend/result/bin > {OUT_DIR}/{PROGRAMS_FILE} 2>/dev/null || : > {OUT_DIR}/{PROGRAMS_FILE}\n\
             # GC roots: the outputs and the derivation (with keep-outputs, its build\n\
             # dependencies too), one pair per build, newest first by name.\n\
             roots={ROOTS_DIR}/{root_key}\n\
             mkdir -p \"$roots\"\n\
             stamp=$(date +%s%N)\n\
             for r in /tmp/nix-frontend/result*; do ln -sfn \"$(readlink \"$r\")\" \"$roots/$stamp-out${{r#/tmp/nix-frontend/result}}\"; done\n\
             ln -sfn \"$(nix-store --query --deriver \"$(readlink /tmp/nix-frontend/result)\")\" \"$roots/$stamp-drv\"\n"
        );
        if let Some(max) = self.max_size {
            s.push_str(&format!(
                "size() {{ du -sxb /nix/store | cut -f1; }}\n\
                 if [ \"$(size)\" -gt {max} ]; then\n\
                 \x20 echo \"nix-frontend: store is $(size) bytes, budget {max}: collecting garbage\" >&2\n\
                 \x20 # First every project and target keeps only its newest build...\n\
                 \x20 for d in {ROOTS_DIR}/*/; do\n\
                 \x20   newest=$(ls -1 \"$d\" | sort -r | head -n1 | cut -d- -f1)\n\
                 \x20   for f in \"$d\"*; do case ${{f##*/}} in \"$newest\"-*) ;; *) rm -f \"$f\" ;; esac; done\n\
                 \x20 done\n\
                 \x20 nix-store --gc >&2\n\
                 \x20 # ...then, if that is not enough, only this build is kept.\n\
                 \x20 if [ \"$(size)\" -gt {max} ]; then\n\
                 \x20   for f in {ROOTS_DIR}/*/*; do case $f in \"$roots/$stamp\"-*) ;; *) rm -f \"$f\" ;; esac; done\n\
                 \x20   nix-store --gc >&2\n\
                 \x20 fi\n\
                 \x20 echo \"nix-frontend: store is $(size) bytes after garbage collection\" >&2\n\
                 fi\n\
                 echo \"nix-frontend: store is $(size) bytes (budget {max})\" >&2\n"
            ));
        }
        if self.verify {
            s.push_str(
                "nix-store --verify --check-contents\necho 'nix-frontend: store verified' >&2\n",
            );
        }
        s
    }
}
