//! The plan: what to run and what to package, decided from the spec and the
//! facts the bridge fetched (image configs, options). Pure: no I/O here.
//!
//! Two steps, because the image depends on what nix built:
//! 1. [`build`] plans the nix step (a [`Plan`]);
//! 2. [`image`] plans the image from that plan and the [`Report`] the nix
//!    step wrote (an [`ImagePlan`]).

mod config;
pub use config::arch_check;
mod context;
mod essentials;
mod groups;
mod layers;
mod lock;
mod named;
mod nix;
mod remote;
mod report;
mod script;
mod store;
mod users;

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::platform::{Platform, UnsupportedPlatform};
pub use context::{ContextFilter, dockerignore_patterns};
pub use essentials::{CA_FILE, Essential, NSSWITCH, ZONEINFO_DIR};
pub use groups::{
    Eval, EvalError, FACTS_FILE, GRAPH_FILE, GroupStep, NAMES_FILE, NixGraph, nix_graph,
};
pub use layers::{describe_layer, plan_layers};
pub use lock::{Prefetch, prefetchable};
pub use named::{
    ImageReplacement, InputSource, NamedError, image_replacement, input_overrides, input_source,
    listed, lock_inputs, needs_lock_inputs, not_an_input_source,
};
pub use remote::{
    GitHead, GitRemote, Named, Remote, RemoteError, git_identifier, packed_ref, redact,
};
pub use report::{Flake, LockedInput, Report, ReportError, StorePath, is_store_path};
pub use script::{GROUP_ARGV0, GROUPS_DIR, Mode, NIX_ARGV0, ROOTS_DIR, SEED_DIR, Script};
pub use users::UserFiles;

use crate::oci::ImageConfig;
pub use crate::options::{Network, NetworkMode};
use crate::span::{Located, Span};
use crate::spec;

/// Where the nix step sees things, and where it reports.
pub const SRC_DIR: &str = "/src";
pub const OUT_DIR: &str = "/out";
/// The nix step's report, in its output.
pub const REPORT_FILE: &str = "report.json";
/// One file per output of the installable, named like the store path, in
/// the nix step's output: what the layers holding outputs depend on.
pub const OUTPUTS_DIR: &str = "outputs";
/// Where the nix step mounts `nix.binary-caches` (context directories).
pub const CACHES_DIR: &str = "/nix-frontend/caches";
/// Where BuildKit secrets and the SSH agent appear in the nix step.
pub const SECRETS_DIR: &str = "/run/secrets";
pub const SSH_SOCK: &str = "/run/buildkit/ssh_agent.0";
/// Where the nix step mounts named contexts overriding flake inputs (`/N`).
pub const INPUTS_DIR: &str = "/nix-frontend/inputs";
/// Where the nix step sees the flake inputs BuildKit fetched.
pub const FETCHED_DIR: &str = "/nix-frontend/fetched";

/// The facts about an image the bridge fetched with ResolveImageConfig.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageFacts {
    /// As written in the spec.
    pub name: String,
    /// As BuildKit normalized it (BuildKit v0.12+; else the name as written).
    pub resolved: String,
    /// Empty when the engine has the image only locally (dockerd does that).
    pub digest: String,
    /// The raw image config JSON.
    #[serde(skip)]
    pub config: Vec<u8>,
    /// Where the image comes from, when not from a registry or the
    /// engine's image store.
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    Registry,
    /// The client's OCI layout (`oci-layout://`): `name` is `NAME@DIGEST`.
    OciLayout,
    /// A definition the client built (bake's `target:`): `name` is the
    /// input's name.
    Input,
}

/// Everything besides the spec that the plan depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// Where the spec is in the context (none: outside it), kept out of
    /// what nix sees.
    pub spec_paths: Vec<String>,
    pub target: Option<String>,
    /// The platform the image is for.
    pub platform: Platform,
    /// The platform the engine runs natively.
    pub build_platform: Platform,
    /// `BUILDKIT_CACHE_MOUNT_NS`.
    pub cache_ns: String,
    /// `SOURCE_DATE_EPOCH`; 0 when unset.
    pub epoch: i64,
    pub builder: ImageFacts,
    /// `None` for scratch.
    pub base: Option<ImageFacts>,
    /// Patterns from the context's `.dockerignore`.
    pub dockerignore: Vec<String>,
    /// `--label` values; they win over the spec's labels.
    pub labels: BTreeMap<String, String>,
    /// `--build-arg` values; `image.run` commands see those they mention.
    pub build_args: BTreeMap<String, String>,
    /// The context's git remote, when the client sent one (`vcs:source`).
    pub vcs_source: Option<String>,
    /// The context's commit (`vcs:revision`).
    pub vcs_revision: Option<String>,
    /// The commit of a git context: the flake's `self.rev`.
    pub revision: Option<String>,
    /// Flake inputs replaced by named contexts.
    pub overrides: Vec<Override>,
    /// Build on a fresh store as steps of the derivation graph (see
    /// `groups`), not as one nix step.
    pub nix_graph: bool,
    /// The flake's git inputs BuildKit fetches (see `lock`).
    pub prefetch: Vec<Prefetch>,
    /// `--network` and `--add-host`, for the nix steps and `image.run`.
    pub network: Network,
}

/// A flake input (`a` or `a/b`) replaced by a named context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Override {
    pub input: String,
    /// The commit, when the context is a git repository (its `self.rev`).
    pub revision: Option<String>,
}

/// Where the nix step (and the layer ops, which share its store) runs for
/// `target`: the target platform itself, or with `nix.run-on = "build"` the
/// build platform. The builder image is resolved for this platform.
pub fn nix_platform(target: &spec::Target, platform: &Platform, build: &Platform) -> Platform {
    match target.nix.run_on.for_platform(platform) {
        spec::RunOn::Target => platform.clone(),
        spec::RunOn::Build | spec::RunOn::Cross => build.clone(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub target: Option<String>,
    pub platform: Platform,
    pub system: String,
    pub epoch: i64,
    #[serde(skip_serializing_if = "Network::is_default")]
    pub network: Network,
    pub nix: NixStep,
    pub image: ImageSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NixStep {
    /// Where the nix step and the layer ops run (see [`nix_platform`]).
    pub platform: Platform,
    /// `docker-image://` reference of the builder, pinned by digest if known.
    pub builder: String,
    pub env: Vec<String>,
    /// The builder image's own environment: what the layer ops run with, so
    /// that nix settings do not reach (and invalidate) them.
    pub builder_env: Vec<String>,
    /// The flake as written, for progress names and source maps.
    pub flake: Located<String>,
    /// What nix is asked to build, e.g. `path:/src#default`.
    pub installable: String,
    pub context: ContextFilter,
    pub cache: StoreCache,
    /// The script the exec runs, with its arguments.
    pub script: Script,
    /// `--secret` ids mounted at `SECRETS_DIR/ID`.
    pub secrets: Vec<String>,
    pub ssh: bool,
    /// Context directories mounted at `CACHES_DIR/N`.
    pub binary_caches: Vec<String>,
    /// Inputs overridden by the named context mounted at `INPUTS_DIR/N`.
    pub overrides: Vec<String>,
    /// Flake inputs fetched by BuildKit, mounted at `FETCHED_DIR/N`.
    pub prefetch: Vec<Prefetch>,
}

/// The persistent `/nix` cache mount. A new one starts as the builder
/// image's own `/nix` (empty where the builder has none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreCache {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageSettings {
    /// `docker-image://` reference of the base; `None` = scratch.
    pub base: Option<String>,
    /// The base's config as resolved (empty on scratch).
    #[serde(skip)]
    pub base_config: ImageConfig,
    pub spec: spec::Image,
    pub labels: BTreeMap<String, String>,
    /// `image.run`, in order, each with the environment it runs with.
    pub run: Vec<RunStep>,
    /// `vcs:source` and `vcs:revision`, for the image's OCI labels.
    pub vcs_source: Option<String>,
    pub vcs_revision: Option<String>,
}

/// One `image.run` command on the base.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunStep {
    pub command: Located<String>,
    /// The base's environment plus the build args the command mentions.
    pub env: Vec<String>,
    /// The base's working directory and user, as a Dockerfile RUN would use.
    pub cwd: String,
    pub user: String,
}

/// The image to assemble once the closure is known.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImagePlan {
    /// The frontend's own steps, in layer order: after the base and
    /// `image.run`, `image.copy` last. The LLB and the config's history
    /// are both made from this list.
    pub steps: Vec<ImageStep>,
    /// The installable's outputs: a layer holding one depends on the nix
    /// step's marker for it, so the nix step is part of the returned graph.
    pub outputs: Vec<String>,
    pub config: ImageConfig,
    /// For the user: what the plan had to give up (the layer budget).
    pub warnings: Vec<String>,
}

/// One of the image's own layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStep {
    /// Files that create the spec's user where the base lacks it.
    Users(UserFiles),
    /// On scratch: `/tmp`, `nsswitch.conf`, CA bundle, zone files.
    Essential(Essential),
    /// Store paths, sorted.
    Store(Vec<String>),
    /// The image's Nix database of the closure: every store path, sorted.
    NixDb(Vec<String>),
    /// An `[[image.copy]]` entry: files of the context.
    Copy(Located<spec::Copy>),
}

impl ImageStep {
    /// The config history's `created_by` for this layer.
    pub fn created_by(&self) -> String {
        match self {
            Self::Users(_) => "nix-frontend: user".into(),
            Self::Essential(e) => format!("nix-frontend: {}", e.describe()),
            Self::Store(paths) => format!("nix-frontend: {}", describe_layer(paths)),
            Self::NixDb(_) => "nix-frontend: nix database".into(),
            Self::Copy(c) => format!("COPY {} {}", c.value.src, c.value.dest),
        }
    }
}

impl ImagePlan {
    /// The store-path layers, in order.
    pub fn store_layers(&self) -> impl Iterator<Item = &Vec<String>> {
        self.steps.iter().filter_map(|s| match s {
            ImageStep::Store(paths) => Some(paths),
            _ => None,
        })
    }

    pub fn users(&self) -> Option<&UserFiles> {
        self.steps.iter().find_map(|s| match s {
            ImageStep::Users(u) => Some(u),
            _ => None,
        })
    }
}

/// The most layers an image should have, base included. Docker's classic
/// image store refuses images deeper than 125 layers ("max depth
/// exceeded"), and every layer lengthens the overlay mount of a container:
/// keep room below that for what users add on top.
pub const LAYER_LIMIT: usize = 100;

/// `/etc/passwd` and `/etc/group` of the base (after `image.run`), read by
/// the bridge when the spec names a user on a non-scratch base; `None` for a
/// file the base does not have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseUsers {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Platform(#[from] UnsupportedPlatform),
    #[error("`{key}`: {message}")]
    Image {
        key: &'static str,
        message: String,
        hint: String,
        span: Option<Span>,
    },
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("the image config of {image} is not valid JSON: {message}")]
    BaseConfig { image: String, message: String },
}

impl PlanError {
    pub fn span(&self) -> Option<Span> {
        match self {
            Self::Spec(e) => e.span(),
            Self::Image { span, .. } => *span,
            _ => None,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Self::Spec(e) => e.hint(),
            Self::Platform(e) => e.hint(),
            Self::Image { hint, .. } => hint.clone(),
            Self::Report(_) | Self::Eval(_) => {
                "this is a bug in nix-frontend or the builder's nix; please report it".into()
            }
            Self::BaseConfig { .. } => "check that the image was built by a Docker/OCI tool".into(),
        }
    }
}

fn config_of(facts: &ImageFacts) -> Result<ImageConfig, PlanError> {
    ImageConfig::parse(&facts.config).map_err(|message| PlanError::BaseConfig {
        image: facts.name.clone(),
        message,
    })
}

/// Plans the nix step and the image settings that do not depend on it.
pub fn build(spec: &spec::Spec, inputs: &Inputs) -> Result<Plan, PlanError> {
    let target = spec.target(inputs.target.as_deref())?;
    // The system nix builds for: the target's, or with `run-on = "cross"`
    // the build platform's own (the installable cross-compiles).
    let for_system = match target.nix.run_on.for_platform(&inputs.platform) {
        spec::RunOn::Cross => &inputs.build_platform,
        spec::RunOn::Target | spec::RunOn::Build => &inputs.platform,
    };
    let system = for_system
        .nix_system()
        .ok_or_else(|| UnsupportedPlatform(for_system.to_string()))?;
    let builder_config = config_of(&inputs.builder)?;
    let nix = nix::plan(spec, target, inputs, system, &builder_config)?;

    let base_config = match &inputs.base {
        Some(b) => config_of(b)?,
        None => ImageConfig::default(),
    };
    if let (None, Some(first)) = (&inputs.base, target.image.run.first()) {
        return Err(PlanError::Image {
            key: "image.run",
            message: "needs a base image with a shell; the base is scratch".into(),
            hint: "set [image] base = \"…\" to an image with /bin/sh, or drop `run`".into(),
            span: first.span,
        });
    }
    let cwd = base_config
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let user = base_config.config.user.clone().unwrap_or_default();
    let run = target
        .image
        .run
        .iter()
        .map(|command| RunStep {
            command: command.clone(),
            env: run_env(base_config.env(), &inputs.build_args, &command.value),
            cwd: cwd.clone(),
            user: user.clone(),
        })
        .collect();
    let image = ImageSettings {
        base: inputs.base.as_ref().map(image_source),
        base_config,
        spec: target.image.clone(),
        labels: inputs.labels.clone(),
        run,
        vcs_source: inputs.vcs_source.clone(),
        vcs_revision: inputs.vcs_revision.clone(),
    };
    Ok(Plan {
        target: inputs.target.clone().filter(|t| !t.is_empty()),
        platform: inputs.platform.clone(),
        system: system.to_owned(),
        epoch: inputs.epoch,
        network: inputs.network.clone(),
        nix,
        image,
    })
}

/// The base's environment plus the build args a command mentions (as `$NAME`
/// or `${NAME}`), like ARG in a Dockerfile; the others stay out of the cache key.
fn run_env(base: &[String], args: &BTreeMap<String, String>, command: &str) -> Vec<String> {
    let mut env = base.to_vec();
    for (k, v) in args {
        let mentioned = command.contains(&format!("${{{k}}}"))
            || command.match_indices(&format!("${k}")).any(|(i, m)| {
                // `$FOO` mentions FOO, `$FOOBAR` does not.
                !command[i + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
        if mentioned {
            crate::oci::set_env(&mut env, k, v);
        }
    }
    env
}

impl Plan {
    /// Whether the bridge must read the base's users: a named user on a
    /// non-scratch base may or may not exist there.
    pub fn needs_base_users(&self) -> bool {
        self.image.base.is_some()
            && self
                .image
                .spec
                .user
                .as_ref()
                .is_some_and(|u| u.value.name.is_some())
    }
}

/// Plans the image from what the nix step built.
pub fn image(
    plan: &Plan,
    built: &Report,
    base_users: Option<&BaseUsers>,
) -> Result<ImagePlan, PlanError> {
    let budget = plan
        .image
        .spec
        .layers
        .as_ref()
        .map_or(spec::DEFAULT_LAYERS, |l| l.value);
    // The user files take one layer of the budget.
    let users = users::user_files(plan, base_users)?;
    let essentials = essentials::essentials(plan, built);
    let nix_db = plan.image.spec.nix_db;
    let requested = budget.saturating_sub(usize::from(users.is_some())).max(1);
    // Every other layer the image has, and the base's own.
    let base_layers = plan.image.base_config.rootfs.diff_ids.len();
    let others = plan.image.run.len()
        + usize::from(users.is_some())
        + essentials.len()
        + usize::from(nix_db)
        + plan.image.spec.copy.len();
    let room = LAYER_LIMIT.saturating_sub(base_layers + others).max(1);
    let mut warnings = Vec::new();
    let store_budget = requested.min(room);
    let layers = plan_layers(&built.closure, &built.outputs, store_budget);
    if store_budget < requested && layers.len() == store_budget {
        warnings.push(format!(
            "LayerLimit: the base's {base_layers} layers and {others} others leave {room} of the {LAYER_LIMIT} layers an image should have: the store paths take {room} layers, not up to {requested}"
        ));
    }
    let mut steps: Vec<ImageStep> = users.into_iter().map(ImageStep::Users).collect();
    steps.extend(essentials.into_iter().map(ImageStep::Essential));
    if nix_db {
        let mut all: Vec<String> = layers.iter().flatten().cloned().collect();
        all.sort();
        steps.extend(layers.into_iter().map(ImageStep::Store));
        steps.push(ImageStep::NixDb(all));
    } else {
        steps.extend(layers.into_iter().map(ImageStep::Store));
    }
    steps.extend(plan.image.spec.copy.iter().cloned().map(ImageStep::Copy));
    let config = config::assemble(plan, built, &steps)?;
    Ok(ImagePlan {
        steps,
        outputs: built.outputs.clone(),
        config,
        warnings,
    })
}

/// `docker-image://<name>[@digest]` (`oci-layout://<name>@<digest>` from a
/// client's layout, `input:<name>` for a client's input): a digest pins the
/// image exactly;
/// without one (local images on dockerd) the name is all there is. The name
/// is BuildKit's own normalized form when it gave one, since a short name
/// with a digest is not read the same way by every image store.
pub fn image_source(facts: &ImageFacts) -> String {
    match facts.origin {
        Origin::Registry => {}
        Origin::OciLayout => return format!("oci-layout://{}", facts.name),
        Origin::Input => return format!("input:{}", facts.name),
    }
    let name = if facts.resolved.is_empty() {
        &facts.name
    } else {
        &facts.resolved
    };
    if facts.digest.is_empty() || name.contains('@') {
        format!("docker-image://{name}")
    } else {
        format!("docker-image://{name}@{}", facts.digest)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
