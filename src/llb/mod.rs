//! Plan → LLB. One small emit function per plan step; the bytes and digests
//! depend on the plan alone, so golden tests can pin them.

mod dump;
mod graph;
mod ops;

pub use dump::dump;
pub use graph::{Graph, Lines, Output, digests};
pub use ops::platform;
pub use ops::{Attrs, Exec, FileAction, Local, Mount};

use crate::image::UserFiles;
use crate::plan::{CACHES_DIR, ImagePlan, OUT_DIR, Plan, SECRETS_DIR, SRC_DIR, SSH_SOCK};
use crate::proto::llb as pb;
use crate::spec::Span;

/// Facts of this build that are not part of the plan: where the spec and
/// context come from, and what the engine can do.
#[derive(Clone, Debug)]
pub struct Emit {
    pub session: String,
    /// The context's local name (`context` unless `contextkey` says otherwise).
    pub context_name: String,
    pub spec_filename: String,
    pub spec_text: String,
    pub no_cache: bool,
    /// The engine's `mergeop` cap is enabled.
    pub mergeop: bool,
    /// 0, or the number of the retry after the store cache lost paths: a
    /// retry's layer ops must be new vertices, not the failed ones again.
    pub attempt: u32,
    /// Run the nix step again even if BuildKit has it cached (that retry).
    pub rerun_nix: bool,
}

impl Emit {
    fn lines(&self, span: Option<Span>) -> Option<Lines> {
        Some(Lines::of(span?, &self.spec_text))
    }

    fn source(&self) -> Option<(&str, &str)> {
        Some((&self.spec_filename, &self.spec_text))
    }
}

/// Exit code of a layer op whose store path is gone from the store cache:
/// the cache was pruned after the (cached) nix step built it.
pub const STORE_PATH_MISSING: i32 = 75;

/// The script of a layer op: copy the listed store paths out of the store
/// cache with their times and modes, then fix the times of the directories
/// we create. `$1` is the epoch, the rest are store paths.
const LAYER_SCRIPT: &str = "set -eu\n\
epoch=$1; shift\n\
for p; do [ -e \"$p\" ] || [ -L \"$p\" ] || { echo \"nix-frontend: $p is missing from the /nix store cache\" >&2; exit 75; }; done\n\
mkdir -p /out/nix/store\n\
cp -a \"$@\" /out/nix/store/\n\
touch -h -d \"@$epoch\" /out/nix/store /out/nix\n";

/// The nix step: build the installable with the store cache mounted, and
/// report closure, outputs and main program into `/out`.
pub fn nix_build(plan: &Plan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let builder = builder(&mut g, plan, &p);
    let context = g.local(
        &Local {
            name: emit.context_name.clone(),
            session: emit.session.clone(),
            shared_key: emit.context_name.clone(),
            include: plan.nix.context.include.clone(),
            exclude: plan.nix.context.exclude.clone(),
            follow: Vec::new(),
        },
        "[context] load build context",
    );
    let mut mounts = vec![
        Mount::Bind {
            dest: SRC_DIR.into(),
            from: context,
            selector: String::new(),
        },
        store_cache(plan, &builder),
        Mount::Scratch {
            dest: OUT_DIR.into(),
        },
    ];
    if !plan.nix.binary_caches.is_empty() {
        let caches = g.local(
            &Local {
                name: emit.context_name.clone(),
                session: emit.session.clone(),
                shared_key: emit.context_name.clone(),
                include: plan.nix.binary_caches.clone(),
                exclude: Vec::new(),
                follow: Vec::new(),
            },
            "[context] load binary caches",
        );
        for (i, dir) in plan.nix.binary_caches.iter().enumerate() {
            mounts.push(Mount::Bind {
                dest: format!("{CACHES_DIR}/{i}"),
                from: caches.clone(),
                selector: dir.clone(),
            });
        }
    }
    for id in &plan.nix.secrets {
        mounts.push(Mount::Secret {
            dest: format!("{SECRETS_DIR}/{id}"),
            id: id.clone(),
        });
    }
    if plan.nix.ssh {
        mounts.push(Mount::Ssh {
            dest: SSH_SOCK.into(),
        });
    }
    let exec = Exec {
        args: vec!["/bin/sh".into(), "-c".into(), plan.nix.script.clone()],
        env: plan.nix.env.clone(),
        cwd: "/".into(),
        user: String::new(),
        root: builder.clone(),
        // BuildKit mounts a root without an output read-only, and nix needs
        // /tmp and a home; the root's output is simply not used.
        root_output: true,
        mounts,
        network: pb::NetMode::Unset,
        platform: p,
    };
    let name = format!("[nix] build {} ({})", plan.nix.flake.value, plan.system);
    let out = g.exec(&exec, &name, emit.lines(plan.nix.flake.span));
    if emit.no_cache || emit.rerun_nix {
        g.ignore_cache(&out[1].digest);
    }
    g.finish(out.get(1), emit.source())
}

/// The base with `image.run` applied: what the closure goes on top of.
fn base_state(g: &mut Graph, plan: &Plan, p: &pb::Platform, emit: &Emit) -> Option<Output> {
    let base = plan.image.base.as_ref()?;
    let shown = base.trim_start_matches("docker-image://");
    let mut state = g.image(base, p, &format!("[image] base {shown}"));
    for step in &plan.image.run {
        let exec = Exec {
            args: vec!["/bin/sh".into(), "-c".into(), step.command.value.clone()],
            env: step.env.clone(),
            cwd: step.cwd.clone(),
            user: step.user.clone(),
            root: state,
            root_output: true,
            mounts: Vec::new(),
            network: pb::NetMode::Unset,
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

/// The base after `image.run`, for the bridge to read its `/etc/passwd`.
pub fn base_users(plan: &Plan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let state = base_state(&mut g, plan, &p, emit);
    g.finish(state.as_ref(), emit.source())
}

/// The image: base and `image.run`, then the user files and one layer per
/// store-path group (merged where the engine can, else copied in a chain),
/// then `image.copy`.
pub fn image(plan: &Plan, image: &ImagePlan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let base = base_state(&mut g, plan, &p, emit);
    let builder = builder(&mut g, plan, &p);
    let ts = plan.epoch.saturating_mul(1_000_000_000);

    let mut parts: Vec<Output> = Vec::new();
    if let Some(u) = &image.users {
        parts.push(user_layer(&mut g, u, ts));
    }
    let n = image.layers.len();
    for (k, paths) in image.layers.iter().enumerate() {
        let mut args = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            LAYER_SCRIPT.to_owned(),
            "nix-frontend-layer".to_owned(),
            plan.epoch.to_string(),
        ];
        args.extend(paths.iter().cloned());
        let mut env = plan.nix.builder_env.clone();
        if emit.attempt > 0 {
            env.push(format!("NIX_FRONTEND_ATTEMPT={}", emit.attempt));
        }
        let exec = Exec {
            args,
            env,
            cwd: "/".into(),
            user: String::new(),
            root: builder.clone(),
            // Read-only: the copy writes only to /out, and BuildKit need not
            // make and keep a snapshot of the root for every layer.
            root_output: false,
            mounts: vec![
                store_cache(plan, &builder),
                Mount::Scratch {
                    dest: OUT_DIR.into(),
                },
            ],
            network: pb::NetMode::None,
            platform: p.clone(),
        };
        let name = format!(
            "[image] layer {}/{n}: {}",
            k + 1,
            crate::plan::describe_layer(paths)
        );
        let out = g.exec(&exec, &name, None);
        if emit.no_cache {
            g.ignore_cache(&out[0].digest);
        }
        parts.extend(out.into_iter().next());
    }

    let mut result = if emit.mergeop {
        let mut all: Vec<Output> = base.into_iter().collect();
        all.extend(parts);
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(g.merge(&all, "[image] merge layers")),
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
                    )
                }
            });
        }
        state
    };

    if !plan.image.spec.copy.is_empty() {
        let context = g.local(
            &Local {
                name: emit.context_name.clone(),
                session: emit.session.clone(),
                shared_key: emit.context_name.clone(),
                include: plan
                    .image
                    .spec
                    .copy
                    .iter()
                    .map(|c| c.value.src.clone())
                    .collect(),
                exclude: plan.nix.context.exclude.clone(),
                follow: Vec::new(),
            },
            "[context] load files to copy",
        );
        for c in &plan.image.spec.copy {
            let copy = FileAction::Copy {
                from: context.clone(),
                src: format!("/{}", c.value.src),
                dest: c.value.dest.clone(),
                timestamp: ts,
                owner: c.value.chown.clone(),
                mode: c.value.mode,
            };
            let name = format!("[image] copy {}", c.value.src);
            result = Some(g.file(result.as_ref(), &[copy], &name, emit.lines(c.span)));
        }
    }
    g.finish(result.as_ref(), emit.source())
}

fn builder(g: &mut Graph, plan: &Plan, p: &pb::Platform) -> Output {
    let shown = plan.nix.builder.trim_start_matches("docker-image://");
    g.image(&plan.nix.builder, p, &format!("[nix] builder {shown}"))
}

fn store_cache(plan: &Plan, builder: &Output) -> Mount {
    Mount::Cache {
        dest: "/nix".into(),
        id: plan.nix.cache.id.clone(),
        seed: plan
            .nix
            .cache
            .seed_from_builder
            .then(|| (builder.clone(), "/nix".to_owned())),
    }
}

fn user_layer(g: &mut Graph, u: &UserFiles, ts: i64) -> Output {
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
    let name = u.home.rsplit('/').next().unwrap_or_default();
    g.file(None, &actions, &format!("[image] user {name}"), None)
}

#[cfg(test)]
mod tests;
