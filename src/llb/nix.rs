//! The nix step: build the installable in the builder image with the store
//! cache mounted, and report into `/out`.

use super::Emit;
use super::context::{ContextSource, files as context_files};
use super::graph::{Graph, Output};
use super::ops::{self, Attrs, Exec, FileAction, Mount};
use crate::plan::{
    CACHES_DIR, FETCHED_DIR, GRAPH_FILE, GROUPS_DIR, INPUTS_DIR, Mode, OUT_DIR, OUTPUTS_DIR, Plan,
    SECRETS_DIR, SEED_DIR, SRC_DIR, SSH_SOCK,
};
use crate::proto::llb as pb;

/// The nix step alone; its result is the report directory.
pub fn nix_build(plan: &Plan, emit: &Emit) -> pb::Definition {
    let mut g = Graph::new();
    let out = nix_step(&mut g, plan, emit);
    g.finish(Some(&out), emit.source())
}

pub(super) fn builder(g: &mut Graph, plan: &Plan, p: &pb::Platform, emit: &Emit) -> Output {
    let id = &plan.nix.builder;
    let shown = id.trim_start_matches("docker-image://");
    emit.image(g, id, p, &format!("[nix] builder {shown}"))
}

/// What a new store cache starts as: the builder with a `/nix` made where it
/// has none (`mkdir -p` leaves an existing one as it is). Seeding from this
/// rather than the builder itself needs no look into the image first, so a
/// cached build asks BuildKit nothing before the nix step.
pub(super) fn store_seed(g: &mut Graph, builder: &Output, p: &pb::Platform) -> Output {
    let make = FileAction::Mkdir {
        path: "/nix".into(),
        attrs: Attrs {
            uid: 0,
            gid: 0,
            mode: 0o755,
            timestamp: 0,
        },
    };
    g.file(
        Some(builder),
        &[make],
        "[nix] store seed: the builder's /nix",
        None,
        p,
    )
}

/// The `/nix` store cache. It has no input, so BuildKit keys it by its id
/// alone: with a seed as its input BuildKit would key it by the seed's
/// record too, and a later solve that loaded the seed again would mount
/// another, new store. A nix step fills a new one from [`seed_mount`].
pub(super) fn store_cache(plan: &Plan) -> Mount {
    Mount::Cache {
        dest: "/nix".into(),
        id: plan.nix.cache.id.clone(),
    }
}

/// The builder's `/nix` at `SEED_DIR`, for a nix step to fill a new store
/// cache from. On engines that can say so its key is the seed op's own:
/// else a fresh builder (CI) hashes the builder's whole `/nix` before the
/// nix step can be matched.
fn seed_mount(seed: &Output, emit: &Emit) -> Mount {
    Mount::Seed {
        dest: SEED_DIR.into(),
        from: seed.clone(),
        selector: "/nix".into(),
        content_key: !emit.content_cache_off,
    }
}

/// Adds the nix step to `g`; returns its report output (`OUT_DIR`): the
/// first step's, or, with a graph to build (`emit.nix_graph`), the final
/// step's after the group steps.
pub(super) fn nix_step(g: &mut Graph, plan: &Plan, emit: &Emit) -> Output {
    nix_outputs(g, plan, emit).0
}

/// Adds the nix step to `g`; returns its report output, and with a graph
/// to build, the first step's output too: its evaluation (`GRAPH_FILE`,
/// `FACTS_FILE`) holds the package's facts the final step's report leaves
/// out.
pub(super) fn nix_outputs(g: &mut Graph, plan: &Plan, emit: &Emit) -> (Output, Option<Output>) {
    let p = ops::platform(&plan.nix.platform);
    let builder = builder(g, plan, &p, emit);
    let seed = store_seed(g, &builder, &p);
    let first = first_step(g, plan, emit, &builder, &seed);
    let Some(graph) = &emit.nix_graph else {
        return (first, None);
    };
    let mut groups: Vec<Output> = Vec::new();
    let n = graph.groups.len();
    for (k, step) in graph.groups.iter().enumerate() {
        let mut mounts = shared_mounts(g, plan, emit, &seed);
        mounts.extend(step.below.iter().map(|&b| group_mount(b, &groups[b])));
        // After the evaluation, which made the .drv files it builds. Without
        // this edge BuildKit may start a group before a re-run evaluation
        // (and cancel that), and a later solve may load the store cache's
        // seed apart from the evaluation's and mount another store (seen
        // with a builder from a registry on the containerd store). After an
        // evaluation the directory is empty: it adds nothing to the key.
        mounts.push(Mount::Bind {
            dest: EVALUATED_DIR.into(),
            from: first.clone(),
            selector: format!("/{OUTPUTS_DIR}"),
        });
        let mut exec = nix_exec(plan, &builder, step.argv.clone(), mounts);
        if emit.reevaluate_groups {
            // BuildKit keeps a failed step's error for the whole build: the
            // retry must be a step of another key.
            exec.env.push(REEVALUATED.into());
        }
        let name = format!("[nix] group {}/{n}: {}", k + 1, step.name);
        let out = g.exec(&exec, &name, emit.lines(plan.nix.flake.span));
        groups.push(out[0].clone());
    }
    let mut mounts = shared_mounts(g, plan, emit, &seed);
    mounts.extend(groups.iter().enumerate().map(|(b, o)| group_mount(b, o)));
    // The derivation graph, whose bytes follow from the installable's
    // derivation: it adds nothing to this step's key, and makes the first
    // step an ancestor of the image, so an exported cache carries it.
    mounts.push(Mount::Bind {
        dest: EVAL_DIR.into(),
        from: first.clone(),
        selector: format!("/{GRAPH_FILE}"),
    });
    let mut exec = nix_exec(plan, &builder, graph.final_script.argv(), mounts);
    if emit.reevaluate {
        exec.env.push(REEVALUATED.into());
    }
    exec.env.extend(emit.rerun_env());
    let name = format!(
        "[nix] build {} ({}) on {n} groups",
        plan.nix.flake.value, plan.system
    );
    let out = g.exec(&exec, &name, emit.lines(plan.nix.flake.span));
    (out[0].clone(), Some(first))
}

/// In the environment of the steps that run again after the evaluation did.
const REEVALUATED: &str = "NIX_FRONTEND_REEVALUATED=1";

/// Where a step sees the first step's derivation graph.
const EVAL_DIR: &str = "/nix-frontend/graph.json";
/// Where a group step mounts the first step's (empty) markers directory.
const EVALUATED_DIR: &str = "/nix-frontend/evaluated";

fn group_mount(index: usize, from: &Output) -> Mount {
    Mount::Bind {
        // Zero-padded: the script imports them in the order of their names.
        dest: format!("{GROUPS_DIR}/{index:04}"),
        from: from.clone(),
        selector: String::new(),
    }
}

/// What every nix step mounts: the store cache and its seed, `/out`, the
/// binary caches, secrets and the ssh agent.
fn shared_mounts(g: &mut Graph, plan: &Plan, emit: &Emit, seed: &Output) -> Vec<Mount> {
    let mut mounts = vec![
        store_cache(plan),
        seed_mount(seed, emit),
        Mount::Scratch {
            dest: OUT_DIR.into(),
        },
    ];
    if !plan.nix.binary_caches.is_empty() {
        let caches = context_files(
            g,
            &emit.context,
            &plan.nix.binary_caches,
            &[],
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
    mounts
}

/// The nix steps' writable places besides `/nix` and `/out`: `/tmp` and
/// the home (the builder's `HOME`, else root's), empty and dropped after
/// the step. On disk, not tmpfs: a derivation builds in `/tmp`.
fn scratch_dirs(plan: &Plan) -> [Mount; 2] {
    let home = plan
        .nix
        .builder_env
        .iter()
        .find_map(|e| e.strip_prefix("HOME="))
        .filter(|h| h.starts_with('/') && *h != "/" && *h != "/tmp")
        .unwrap_or("/root");
    [
        Mount::Discard {
            dest: "/tmp".into(),
        },
        Mount::Discard { dest: home.into() },
    ]
}

fn nix_exec(plan: &Plan, builder: &Output, args: Vec<String>, mut mounts: Vec<Mount>) -> Exec {
    mounts.extend(scratch_dirs(plan));
    Exec {
        args,
        env: plan.nix.env.clone(),
        cwd: "/".into(),
        user: String::new(),
        root: builder.clone(),
        // Read-only: nix writes only to `/nix`, `/out` and the scratch
        // directories, and no root snapshot is made per run.
        root_output: false,
        mounts,
        network: ops::net_mode(&plan.network),
        hosts: plan.network.hosts.clone(),
        platform: ops::platform(&plan.nix.platform),
    }
}

/// Each of `sources` whole at `DIR/N`, named by `name(N)`.
fn input_mounts(
    g: &mut Graph,
    sources: &[ContextSource],
    dir: &str,
    name: impl Fn(usize) -> String,
) -> Vec<Mount> {
    sources
        .iter()
        .enumerate()
        .map(|(k, source)| Mount::Bind {
            dest: format!("{dir}/{k}"),
            from: context_files(g, source, &[], &[], &name(k)),
            selector: String::new(),
        })
        .collect()
}

/// The first nix step: the context at `SRC_DIR`, the flake inputs a named
/// context replaces, and what every nix step mounts.
fn first_step(g: &mut Graph, plan: &Plan, emit: &Emit, builder: &Output, seed: &Output) -> Output {
    let context = context_files(
        g,
        &emit.context,
        &plan.nix.context.include,
        &plan.nix.context.exclude,
        "[context] load build context",
    );
    let mut mounts = vec![Mount::Bind {
        dest: SRC_DIR.into(),
        from: context,
        selector: String::new(),
    }];
    mounts.extend(shared_mounts(g, plan, emit, seed));
    let overridden = |k: usize| {
        let input = plan.nix.overrides.get(k).map_or("", String::as_str);
        format!("[context] load {input} (overrides the flake input)")
    };
    mounts.extend(input_mounts(g, &emit.overrides, INPUTS_DIR, overridden));
    let fetched = |k: usize| {
        let node = plan.nix.prefetch.get(k).map_or("", |p| p.node.as_str());
        format!("[nix] fetch input {node} (flake.lock)")
    };
    mounts.extend(input_mounts(g, &emit.prefetched, FETCHED_DIR, fetched));
    let argv = if emit.reevaluate {
        let mut again = plan.nix.script.clone();
        again.mode = Mode::Evaluate;
        again.argv()
    } else {
        plan.nix.script.argv()
    };
    let mut exec = nix_exec(plan, builder, argv, mounts);
    // Where the retry began with a graph, the first step's result stands:
    // only the final one runs again.
    if emit.no_cache || emit.rerun_first {
        exec.env.extend(emit.rerun_env());
    }
    let name = format!("[nix] build {} ({})", plan.nix.flake.value, plan.system);
    let out = g.exec(&exec, &name, emit.lines(plan.nix.flake.span));
    out[0].clone()
}
