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
use super::nix::{builder, nix_step, store_cache};
use super::ops::{self, Attrs, Exec, FileAction, Local, Mount};
use super::{Emit, STORE_PATH_MISSING};
use crate::plan::{ImagePlan, OUT_DIR, OUTPUTS_DIR, Plan, UserFiles, describe_layer};
use crate::proto::llb as pb;

/// Where a layer op sees the nix step's marker of an output it copies.
const MARKERS_DIR: &str = "/nix-frontend/outputs";

/// The script of a layer op: copy the listed store paths out of the store
/// cache with their times and modes, then fix the times of the directories
/// we create. `$1` is the epoch, the rest are store paths.
fn layer_script() -> String {
    format!(
        "set -eu\n\
epoch=$1; shift\n\
for p; do [ -e \"$p\" ] || [ -L \"$p\" ] || {{ echo \"nix-frontend: $p is missing from the /nix store cache\" >&2; exit {STORE_PATH_MISSING}; }}; done\n\
mkdir -p /out/nix/store\n\
cp -a \"$@\" /out/nix/store/\n\
touch -h -d \"@$epoch\" /out/nix/store /out/nix\n"
    )
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

/// The base after `image.run`, for the bridge to read its `/etc/passwd`.
pub fn base_users(plan: &Plan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    let state = base_state(&mut g, plan, &p, emit);
    g.finish(state.as_ref(), emit.source())
}

pub fn image(plan: &Plan, image: &ImagePlan, emit: &Emit) -> ImageGraph {
    let mut g = Graph::new();
    let p = ops::platform(&plan.platform);
    // The layer ops run where the nix step ran: they share its store.
    let np = ops::platform(&plan.nix.platform);
    let base = base_state(&mut g, plan, &p, emit);
    let report = nix_step(&mut g, plan, emit);
    let builder = builder(&mut g, plan, &np);
    let ts = plan.epoch.saturating_mul(1_000_000_000);

    let mut parts: Vec<Output> = Vec::new();
    if let Some(u) = &image.users {
        parts.push(user_layer(&mut g, u, ts, &p));
    }
    let mut layer_ops = BTreeSet::new();
    let n = image.layers.len();
    let script = layer_script();
    for (k, paths) in image.layers.iter().enumerate() {
        let mut args = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            script.clone(),
            "nix-frontend-layer".to_owned(),
            plan.epoch.to_string(),
        ];
        args.extend(paths.iter().cloned());
        let mut env = plan.nix.builder_env.clone();
        if emit.attempt > 0 {
            env.push(format!("NIX_FRONTEND_ATTEMPT={}", emit.attempt));
        }
        let mut mounts = vec![
            store_cache(plan, &builder, emit),
            Mount::Scratch {
                dest: OUT_DIR.into(),
            },
        ];
        for out in paths.iter().filter(|p| image.outputs.contains(p)) {
            let name = out.rsplit('/').next().unwrap_or(out);
            mounts.push(Mount::Bind {
                dest: format!("{MARKERS_DIR}/{name}"),
                from: report.clone(),
                selector: format!("/{OUTPUTS_DIR}/{name}"),
            });
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
            mounts,
            network: pb::NetMode::None,
            platform: np.clone(),
        };
        let name = format!("[image] layer {}/{n}: {}", k + 1, describe_layer(paths));
        let out = g.exec(&exec, &name, None);
        if emit.no_cache {
            g.ignore_cache(&out[0].digest);
        }
        layer_ops.insert(out[0].digest.clone());
        parts.extend(out.into_iter().next());
    }

    let mut result = if emit.mergeop {
        let mut all: Vec<Output> = base.into_iter().collect();
        all.extend(parts);
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(g.merge(&all, "[image] merge layers", &p)),
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
                        &p,
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
            result = Some(g.file(result.as_ref(), &[copy], &name, emit.lines(c.span), &p));
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
    let name = u.home.rsplit('/').next().unwrap_or_default();
    g.file(None, &actions, &format!("[image] user {name}"), None, p)
}
