//! The image: the base with `image.run`, the user files, one layer per
//! store-path group (merged where the engine can, else copied in a chain),
//! then `image.copy`.
//!
//! The nix step is part of this graph: the layer holding the installable's
//! outputs mounts the nix step's marker file for each (read-only, so its
//! cache key is the marker's content, the path). So the nix step is an
//! ancestor of the returned image, and a cache exported from the image
//! (`--cache-to …,mode=max`) carries it: a fresh builder that imports that
//! cache finds the nix step there instead of running nix. Every other layer
//! depends only on its own path list, so it stays a cache hit when only the
//! app changed.

use std::collections::BTreeSet;

use super::graph::{Graph, Output};
use super::nix::{builder, nix_outputs, nix_step, store_cache};
use super::ops::{self, Attrs, Exec, FileAction, Mount};
use super::{Emit, STORE_PATH_MISSING};
use crate::plan::{
    CA_FILE, Essential, ImagePlan, ImageStep, NSSWITCH, OUT_DIR, OUTPUTS_DIR, Plan, REPORT_FILE,
    UserFiles, ZONEINFO_DIR, describe_layer,
};
use crate::proto::llb as pb;

/// Where a layer op sees the nix step's marker of an output it copies.
const MARKERS_DIR: &str = "/nix-frontend/outputs";

/// The script of a layer op: copy the listed store paths out of the store
/// cache with their times and modes, then fix the times of the directories
/// we create. `$1` is the epoch, the rest are store paths.
///
/// The store is shared, and a derivation runs as root without nix's
/// sandbox: another build may have written into a path since nix made it.
/// So the paths are checked against the hashes nix registered, and a
/// changed one is repaired (rebuilt by nix) before it is copied; its build
/// directory is under `/out` (the root is read-only), and goes.
fn layer_script() -> String {
    format!(
        "set -eu\n\
epoch=$1; shift\n\
for p; do [ -e \"$p\" ] || [ -L \"$p\" ] || {{ echo \"nix-frontend: $p is missing from the /nix store cache\" >&2; exit {STORE_PATH_MISSING}; }}; done\n\
if ! nix-store --verify-path \"$@\" 2>/dev/null; then\n\
  echo 'nix-frontend: a store path changed after nix made it: repairing it' >&2\n\
  mkdir -p /out/.repair\n\
  TMPDIR=/out/.repair NIX_CONFIG='{REPAIR_CONFIG}' nix-store --repair-path \"$@\" >&2\n\
  rm -rf /out/.repair\n\
fi\n\
mkdir -p /out/nix/store\n\
cp -a \"$@\" /out/nix/store/\n\
touch -h -d \"@$epoch\" /out/nix/store /out/nix\n"
    )
}

/// What `nix-store --repair-path` needs to build inside a BuildKit exec
/// (as the nix step's settings; see `plan::nix`). A constant: the layer
/// ops' keys do not follow the spec's nix settings.
const REPAIR_CONFIG: &str = "sandbox = false\nbuild-users-group =\nfilter-syscalls = false";

/// The script of the nix-db layer: the closure's registrations, dumped from
/// the store cache's database and loaded into a new one under `/out`, with
/// fixed registration times where the builder has `sqlite3` (as nixpkgs'
/// dockerTools does); only the database is kept. `$1` is the epoch, the rest
/// are the closure's paths.
fn nix_db_script() -> String {
    format!(
        "set -eu\n\
epoch=$1; shift\n\
for p; do [ -e \"$p\" ] || [ -L \"$p\" ] || {{ echo \"nix-frontend: $p is missing from the /nix store cache\" >&2; exit {STORE_PATH_MISSING}; }}; done\n\
state=/out/nix/var/nix\n\
mkdir -p \"$state\"\n\
nix-store --dump-db \"$@\" | NIX_STATE_DIR=\"$state\" nix-store --load-db\n\
db=$state/db/db.sqlite\n\
if command -v sqlite3 >/dev/null 2>&1; then sqlite3 \"$db\" \"UPDATE ValidPaths SET registrationTime = $epoch\"; \\\n\
else echo 'nix-frontend: the builder has no sqlite3, so the image'\\''s Nix database records the time it was made' >&2; fi\n\
rm -f \"$db-wal\" \"$db-shm\" \"$state/db/big-lock\" \"$state/db/reserved\"\n\
find \"$state\" -mindepth 1 -maxdepth 1 ! -name db -exec rm -rf {{}} +\n\
find /out/nix -exec touch -h -d \"@$epoch\" {{}} +\n"
    )
}

/// An essential that needs a shell: `$1` is the epoch, `$2` a store path.
fn essential_script(e: &Essential) -> Option<(String, Option<String>)> {
    let link = |at: &str| {
        let parent = at.rsplit_once('/').map_or("/", |(p, _)| p);
        format!(
            "set -eu\nmkdir -p /out{parent}\nln -s \"$2\" /out{at}\nfor d in /out{at} $(p=/out{parent}; while [ \"$p\" != /out ]; do echo \"$p\"; p=${{p%/*}}; done) /out; do touch -h -d \"@$1\" \"$d\"; done\n"
        )
    };
    match e {
        Essential::Tmp => Some((
            "set -eu\nmkdir -p /out/tmp\nchmod 1777 /out/tmp\ntouch -h -d \"@$1\" /out/tmp /out\n"
                .into(),
            None,
        )),
        Essential::CaCertificates { bundle } => Some((link(CA_FILE), Some(bundle.clone()))),
        Essential::Zoneinfo { dir } => Some((link(ZONEINFO_DIR), Some(dir.clone()))),
        Essential::Nsswitch => None,
    }
}

/// The image definition, and which of its ops copy store paths (a failure
/// of one of those with `STORE_PATH_MISSING` means the store was pruned).
pub struct ImageGraph {
    pub definition: pb::Definition,
    pub layer_ops: BTreeSet<String>,
}

/// The base with `image.run` applied: what the closure goes on top of.
fn base_state(g: &mut Graph, plan: &Plan, p: &pb::Platform, emit: &Emit) -> Option<Output> {
    let base = plan.image.base.as_ref()?;
    let shown = base.trim_start_matches("docker-image://");
    let mut state = emit.image(g, base, p, &format!("[image] base {shown}"));
    for step in &plan.image.run {
        let exec = Exec {
            args: vec!["/bin/sh".into(), "-c".into(), step.command.value.clone()],
            env: step.env.clone(),
            cwd: step.cwd.clone(),
            user: step.user.clone(),
            root: state,
            root_output: true,
            mounts: Vec::new(),
            network: ops::net_mode(&plan.network),
            hosts: plan.network.hosts.clone(),
            platform: p.clone(),
        };
        let name = format!("[image] run {}", step.command.value);
        let out = g.exec(&exec, &name, emit.lines(step.command.span));
        if emit.no_cache {
            g.ignore_cache(&out[0].digest);
        }
        state = out[0].clone();
    }
    Some(state)
}

/// A state holding one file: the SBOM an attestation points into.
pub fn attestation_file(name: &str, data: Vec<u8>, plan: &Plan) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let file = FileAction::Mkfile {
        path: format!("/{name}"),
        data,
        attrs: Attrs {
            uid: 0,
            gid: 0,
            mode: 0o644,
            timestamp: plan.epoch.saturating_mul(1_000_000_000),
        },
    };
    let out = g.file(None, &[file], &format!("[image] sbom {name}"), None, &p);
    g.finish(Some(&out), None)
}

/// Where the SBOM exec sees the nix step's files and writes the document
/// (not under `/nix-frontend`: in the frontend's image that is the binary).
const SBOM_REPORT_DIR: &str = "/sbom/report";
const SBOM_EVAL_DIR: &str = "/sbom/eval";
const SBOM_OUT_DIR: &str = "/sbom/out";

/// A state holding the SBOM `name`, made inside the build by the frontend's
/// own image (`tool`, a `docker-image://` source, run on the build platform
/// `build`) from the nix step's report: the document never travels through
/// a gRPC message.
pub fn attestation_sbom(
    name: &str,
    plan: &Plan,
    emit: &Emit,
    tool: &str,
    build: &crate::plan::Platform,
    supplier: &str,
) -> pb::Definition {
    let mut g = Graph::new();
    let bp = ops::platform(build);
    let (report, eval) = nix_outputs(&mut g, plan, emit);
    let shown = tool.trim_start_matches("docker-image://");
    let tool = emit.image(&mut g, tool, &bp, &format!("[image] sbom tool {shown}"));
    let mut mounts = vec![
        Mount::Bind {
            dest: SBOM_REPORT_DIR.into(),
            from: report,
            selector: String::new(),
        },
        Mount::Scratch {
            dest: SBOM_OUT_DIR.into(),
        },
    ];
    if let Some(eval) = &eval {
        mounts.push(Mount::Bind {
            dest: SBOM_EVAL_DIR.into(),
            from: eval.clone(),
            selector: String::new(),
        });
    }
    let args = crate::sbom::ToolArgs {
        report: format!("{SBOM_REPORT_DIR}/{REPORT_FILE}"),
        eval: eval.map(|_| SBOM_EVAL_DIR.to_owned()),
        out: format!("{SBOM_OUT_DIR}/{name}"),
        platform: plan.platform.to_string(),
        supplier: supplier.to_owned(),
        epoch: plan.epoch,
    };
    let mut argv = vec![FRONTEND_BINARY.to_owned(), "sbom".to_owned()];
    argv.extend(args.to_argv());
    let exec = Exec {
        args: argv,
        env: Vec::new(),
        cwd: "/".into(),
        user: String::new(),
        root: tool,
        root_output: false,
        mounts,
        network: pb::NetMode::None,
        hosts: Vec::new(),
        platform: bp.clone(),
    };
    let out = g.exec(&exec, &format!("[image] sbom {name}"), None);
    g.finish(Some(&out[0]), None)
}

/// The frontend's binary in its image.
const FRONTEND_BINARY: &str = "/nix-frontend";

/// The base after `image.run`, for the bridge to read its `/etc/passwd`.
pub fn base_users(plan: &Plan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let state = base_state(&mut g, plan, &p, emit);
    g.finish(state.as_ref(), emit.source())
}

/// What the image's layer ops share: where they run and what they read.
struct Layers<'a> {
    plan: &'a Plan,
    emit: &'a Emit,
    /// The image's platform, and the nix step's (where layer ops run).
    p: pb::Platform,
    np: pb::Platform,
    builder: Output,
    /// The nix step's output: the markers of the installable's outputs.
    report: Output,
    outputs: &'a [String],
    /// The epoch in nanoseconds.
    ts: i64,
}

impl Layers<'_> {
    /// A small exec in the builder with its own environment and no network.
    fn small_exec(&self, args: Vec<String>, mounts: Vec<Mount>) -> Exec {
        Exec {
            args,
            env: self.plan.nix.builder_env.clone(),
            cwd: "/".into(),
            user: String::new(),
            root: self.builder.clone(),
            // Read-only: the ops write only to /out, and BuildKit need not
            // make and keep a snapshot of the root for each.
            root_output: false,
            mounts,
            network: pb::NetMode::None,
            hosts: Vec::new(),
            platform: self.np.clone(),
        }
    }

    /// A small exec that reads the store cache: a retry after the store
    /// lost paths (`emit.attempt`) makes it a new vertex, and so does
    /// `--no-cache` (never `ignore_cache`: see `Emit::rerun_env`).
    fn store_exec(&self, args: Vec<String>, mounts: Vec<Mount>) -> Exec {
        let mut exec = self.small_exec(args, mounts);
        if self.emit.attempt > 0 {
            exec.env
                .push(format!("NIX_FRONTEND_ATTEMPT={}", self.emit.attempt));
        }
        if self.emit.no_cache {
            exec.env.extend(self.emit.rerun_env());
        }
        exec
    }

    fn args(
        &self,
        script: String,
        argv0: &str,
        rest: impl IntoIterator<Item = String>,
    ) -> Vec<String> {
        let mut args = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            script,
            argv0.to_owned(),
            self.plan.epoch.to_string(),
        ];
        args.extend(rest);
        args
    }

    fn essential(&self, g: &mut Graph, e: &Essential) -> Output {
        let name = format!("[image] essential {}", e.describe());
        match essential_script(e) {
            Some((script, arg)) => {
                let args = self.args(script, "nix-frontend-essential", arg);
                let exec = self.small_exec(args, vec![scratch_out()]);
                g.exec(&exec, &name, None)[0].clone()
            }
            None => {
                let root = |mode| Attrs {
                    uid: 0,
                    gid: 0,
                    mode,
                    timestamp: self.ts,
                };
                let actions = [
                    FileAction::Mkdir {
                        path: "/etc".into(),
                        attrs: root(0o755),
                    },
                    FileAction::Mkfile {
                        path: "/etc/nsswitch.conf".into(),
                        data: NSSWITCH.as_bytes().to_vec(),
                        attrs: root(0o644),
                    },
                ];
                let made = g.file(None, &actions, &name, None, &self.p);
                fix_times(g, made, self.ts, &name, &self.p)
            }
        }
    }

    /// Store paths copied out of the store cache; the layer holding an
    /// output mounts its marker.
    fn store(&self, g: &mut Graph, paths: &[String], k: usize, n: usize) -> Output {
        let args = self.args(layer_script(), LAYER_ARGV0, paths.iter().cloned());
        let mut mounts = vec![store_cache(self.plan), scratch_out()];
        for out in paths.iter().filter(|p| self.outputs.contains(p)) {
            let name = out.rsplit('/').next().unwrap_or(out);
            mounts.push(Mount::Bind {
                dest: format!("{MARKERS_DIR}/{name}"),
                from: self.report.clone(),
                selector: format!("/{OUTPUTS_DIR}/{name}"),
            });
        }
        let exec = self.store_exec(args, mounts);
        let name = format!("[image] layer {}/{n}: {}", k + 1, describe_layer(paths));
        g.exec(&exec, &name, None)[0].clone()
    }

    fn nix_db(&self, g: &mut Graph, paths: &[String]) -> Output {
        let args = self.args(nix_db_script(), LAYER_ARGV0, paths.iter().cloned());
        let mounts = vec![store_cache(self.plan), scratch_out()];
        g.exec(&self.store_exec(args, mounts), "[image] nix database", None)[0].clone()
    }
}

/// `$0` of the ops that read the store cache: BuildKit's message for a
/// failed process quotes its argv, which tells them apart from the user's
/// `run` commands where BuildKit names no vertex.
pub const LAYER_ARGV0: &str = "nix-frontend-layer";

fn scratch_out() -> Mount {
    Mount::Scratch {
        dest: OUT_DIR.into(),
    }
}

pub fn image(plan: &Plan, image: &ImagePlan, emit: &Emit) -> ImageGraph {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    // The layer ops run where the nix step ran: they share its store.
    let np = ops::platform(&plan.nix.platform);
    let base = base_state(&mut g, plan, &p, emit);
    let report = nix_step(&mut g, plan, emit);
    let builder = builder(&mut g, plan, &np, emit);
    let layers = Layers {
        plan,
        emit,
        ts: plan.epoch.saturating_mul(1_000_000_000),
        p,
        np,
        builder,
        report,
        outputs: &image.outputs,
    };

    let mut parts: Vec<Output> = Vec::new();
    let mut copies = Vec::new();
    let mut layer_ops = BTreeSet::new();
    let n = image.store_layers().count();
    let mut k = 0;
    for step in &image.steps {
        let out = match step {
            ImageStep::Users(u) => user_layer(&mut g, u, layers.ts, &layers.p),
            ImageStep::Essential(e) => layers.essential(&mut g, e),
            ImageStep::Store(paths) => {
                k += 1;
                let out = layers.store(&mut g, paths, k - 1, n);
                layer_ops.insert(out.digest.clone());
                out
            }
            ImageStep::NixDb(paths) => {
                let out = layers.nix_db(&mut g, paths);
                layer_ops.insert(out.digest.clone());
                out
            }
            ImageStep::Copy(c) => {
                copies.push(c);
                continue;
            }
        };
        // The user files are made by FileOps alone: always the same bytes.
        // The ops that mount the store run again by their environment
        // instead (see `Emit::rerun_env`).
        if emit.no_cache && matches!(step, ImageStep::Essential(_)) {
            g.ignore_cache(&out.digest);
        }
        parts.push(out);
    }
    let p = &layers.p;
    let ts = layers.ts;

    let mut result = if emit.mergeop {
        let mut all: Vec<Output> = base.into_iter().collect();
        all.extend(parts);
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(g.merge(&all, "[image] merge layers", p)),
        }
    } else {
        // Without MergeOp each part is copied onto the one below; unchanged
        // parts stay cache hits and keep their diffIDs because every time
        // inside them is fixed.
        let mut state = base;
        let total = parts.len();
        for (k, part) in parts.into_iter().enumerate() {
            state = Some(match state {
                None => part,
                Some(below) => {
                    let copy = FileAction::Copy {
                        from: part,
                        src: "/".into(),
                        dest: "/".into(),
                        timestamp: -1,
                        owner: None,
                        mode: None,
                    };
                    g.file(
                        Some(&below),
                        &[copy],
                        &format!("[image] stack layer {}/{total}", k + 1),
                        None,
                        p,
                    )
                }
            });
        }
        state
    };

    if !copies.is_empty() {
        let include: Vec<String> = copies.iter().map(|c| c.value.src.clone()).collect();
        let context = super::context::files(
            &mut g,
            &emit.context,
            &include,
            &plan.nix.context.exclude,
            "[context] load files to copy",
        );
        for c in copies {
            let mut actions = Vec::new();
            // BuildKit v0.21+ gives the directories a copy creates the
            // copy's mode (0640 makes a directory no one can enter), older
            // ones 0755: the destination's directory is made first, 0755
            // and the copy's owner, as every engine made it before.
            let dir = match c.value.dest.strip_suffix('/') {
                Some(d) => d,
                None => c.value.dest.rsplit_once('/').map_or("", |(d, _)| d),
            };
            if c.value.mode.is_some() && !dir.is_empty() {
                actions.push(FileAction::Parents {
                    path: dir.to_owned(),
                    owner: c.value.chown.clone(),
                    timestamp: ts,
                });
            }
            actions.push(FileAction::Copy {
                from: context.clone(),
                src: format!("/{}", c.value.src),
                dest: c.value.dest.clone(),
                timestamp: ts,
                owner: c.value.chown.clone(),
                mode: c.value.mode,
            });
            let name = format!("[image] copy {}", c.value.src);
            result = Some(g.file(result.as_ref(), &actions, &name, emit.lines(c.span), p));
        }
    }
    ImageGraph {
        definition: g.finish(result.as_ref(), emit.source()),
        layer_ops,
    }
}

fn user_layer(g: &mut Graph, u: &UserFiles, ts: i64, p: &pb::Platform) -> Output {
    let root = |mode| Attrs {
        uid: 0,
        gid: 0,
        mode,
        timestamp: ts,
    };
    let actions = [
        FileAction::Mkdir {
            path: "/etc".into(),
            attrs: root(0o755),
        },
        FileAction::Mkfile {
            path: "/etc/passwd".into(),
            data: u.passwd.clone().into_bytes(),
            attrs: root(0o644),
        },
        FileAction::Mkfile {
            path: "/etc/group".into(),
            data: u.group.clone().into_bytes(),
            attrs: root(0o644),
        },
        FileAction::Mkdir {
            path: "/home".into(),
            attrs: root(0o755),
        },
        FileAction::Mkdir {
            path: u.home.clone(),
            attrs: Attrs {
                uid: u.uid,
                gid: u.gid,
                mode: 0o755,
                timestamp: ts,
            },
        },
    ];
    let name = format!(
        "[image] user {}",
        u.home.rsplit('/').next().unwrap_or_default()
    );
    let made = g.file(None, &actions, &name, None, p);
    fix_times(g, made, ts, &name, p)
}

/// `made` copied whole onto scratch with every time set to `ts`: a FileOp's
/// `mkfile` into a directory it made leaves that directory with the time
/// of the build, and a copy sets a directory's time after its contents.
fn fix_times(g: &mut Graph, made: Output, ts: i64, name: &str, p: &pb::Platform) -> Output {
    let copy = FileAction::Copy {
        from: made,
        src: "/".into(),
        dest: "/".into(),
        timestamp: ts,
        owner: None,
        mode: None,
    };
    g.file(None, &[copy], &format!("{name} (fixed times)"), None, p)
}
