//! The plan: what to run and what to package, decided from the spec and the
//! facts the bridge fetched (image configs, options). Pure: no I/O here.
//!
//! Two steps, because the image depends on what nix built:
//! 1. [`build`] plans the nix step (a [`Plan`]);
//! 2. [`image`] plans the image from that plan and the closure the nix step
//!    reported (an [`ImagePlan`]).

mod closure;
mod layers;
mod platform;
mod script;

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use closure::{BuildResult, ClosureError, StorePath, is_store_path};
pub use layers::{describe_layer, plan_layers};
pub use platform::{Platform, UnsupportedPlatform};
pub use script::ROOTS_DIR;

use crate::image::{self, ImageConfig, UserFiles};
use crate::spec::{self, Located, Span};

/// Where the nix step sees things, and where it reports.
pub const SRC_DIR: &str = "/src";
pub const OUT_DIR: &str = "/out";
pub const CLOSURE_FILE: &str = "closure.json";
pub const OUTPUTS_FILE: &str = "outputs";
pub const MAIN_PROGRAM_FILE: &str = "main-program.json";
pub const PROGRAMS_FILE: &str = "programs";

/// Nix settings every nix step gets. Inside a BuildKit exec there are no build
/// users and no user namespaces for the sandbox, and seccomp filtering fails.
const NIX_CONFIG: &str = "experimental-features = nix-command flakes\n\
sandbox = false\n\
build-users-group =\n\
filter-syscalls = false\n\
warn-dirty = false\n\
keep-outputs = true";

/// Where the nix step mounts `nix.binary-caches` (context directories).
pub const CACHES_DIR: &str = "/nix-frontend/caches";
/// Where BuildKit secrets and the SSH agent appear in the nix step.
pub const SECRETS_DIR: &str = "/run/secrets";
pub const SSH_SOCK: &str = "/run/buildkit/ssh_agent.0";

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
    /// Whether the image has a `/nix` to seed the store cache from.
    pub has_nix: bool,
}

/// Everything besides the spec that the plan depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// The spec's file name in the context, kept out of what nix sees.
    pub spec_filename: String,
    pub target: Option<String>,
    pub platform: Platform,
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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub target: Option<String>,
    pub platform: Platform,
    pub system: String,
    pub epoch: i64,
    pub nix: NixStep,
    pub image: ImageSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NixStep {
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
    pub script: String,
    /// `--secret` ids mounted at `SECRETS_DIR/ID`.
    pub secrets: Vec<String>,
    pub ssh: bool,
    /// Context directories mounted at `CACHES_DIR/N`.
    pub binary_caches: Vec<String>,
}

/// Which context files the nix step sees.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextFilter {
    /// Empty = everything.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The persistent `/nix` cache mount.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreCache {
    pub id: String,
    /// Seed a new cache from the builder image's own `/nix`.
    pub seed_from_builder: bool,
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
    /// Store paths per layer, in layer order; each list sorted.
    pub layers: Vec<Vec<String>>,
    /// Files that create the spec's user where the base lacks it.
    pub users: Option<UserFiles>,
    pub config: ImageConfig,
}

/// `/etc/passwd` and `/etc/group` of the base (after `image.run`), read by the
/// bridge when the spec names a user on a non-scratch base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaseUsers {
    pub passwd: String,
    pub group: String,
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
    Closure(#[from] ClosureError),
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
            Self::Closure(_) => {
                "this is a bug in nix-frontend or the builder's nix; please report it".into()
            }
            Self::BaseConfig { .. } => "check that the image was built by a Docker/OCI tool".into(),
        }
    }
}

/// Plans the nix step.
pub fn build(spec: &spec::Spec, inputs: &Inputs) -> Result<Plan, PlanError> {
    let target = spec.target(inputs.target.as_deref())?;
    let system = inputs
        .platform
        .nix_system()
        .ok_or_else(|| UnsupportedPlatform(inputs.platform.to_string()))?;

    let (sub, attr) = target.flake_parts();
    let flake_dir = if sub.is_empty() {
        SRC_DIR.to_owned()
    } else {
        format!("{SRC_DIR}/{sub}")
    };
    let installable = format!("path:{flake_dir}#{attr}");

    let mut exclude = inputs.dockerignore.clone();
    // Binary caches are mounted on their own, not copied into the flake source.
    exclude.extend(target.nix.binary_caches.iter().map(|c| c.value.clone()));
    // The spec is packaging, not source: editing it must not rebuild with nix.
    // A zero-config spec is the flake itself and stays.
    if !spec.zero_config {
        exclude.push(inputs.spec_filename.clone());
    }
    let context = ContextFilter {
        include: target
            .src
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default(),
        exclude,
    };

    let builder_config =
        ImageConfig::parse(&inputs.builder.config).map_err(|message| PlanError::BaseConfig {
            image: inputs.builder.name.clone(),
            message,
        })?;
    let nix = &target.nix;
    let mut nix_config = NIX_CONFIG.to_owned();
    for (i, _) in nix.binary_caches.iter().enumerate() {
        // trusted: a cache from the build context is as trusted as the flake.
        nix_config.push_str(&format!(
            "\nextra-substituters = file://{CACHES_DIR}/{i}?trusted=1"
        ));
    }
    for (k, v) in &nix.options {
        nix_config.push_str(&format!("\n{k} = {}", v.value));
    }
    let builder_env = builder_config.env();
    let mut env = builder_env.clone();
    env.retain(|e| !e.starts_with("NIX_CONFIG=") && !e.starts_with("NIX_USER_CONF_FILES="));
    env.push(format!("NIX_CONFIG={nix_config}"));
    if !nix.conf_secrets.is_empty() {
        // Only the file names: the secret's content never enters the LLB.
        let files: Vec<String> = nix
            .conf_secrets
            .iter()
            .map(|s| format!("{SECRETS_DIR}/{}", s.value))
            .collect();
        env.push(format!("NIX_USER_CONF_FILES={}", files.join(":")));
    }
    if nix.ssh {
        env.push(format!("SSH_AUTH_SOCK={SSH_SOCK}"));
    }
    env.sort();
    let mut secrets: Vec<String> = nix
        .secrets
        .iter()
        .chain(&nix.conf_secrets)
        .map(|s| s.value.clone())
        .collect();
    secrets.sort();
    secrets.dedup();
    let attr_name = attr.rsplit('.').next().unwrap_or(attr);
    let root_key: String = format!(
        "{}.{}.{attr_name}",
        if inputs.cache_ns.is_empty() {
            "default"
        } else {
            &inputs.cache_ns
        },
        inputs
            .target
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or("default"),
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || "._-".contains(c) {
            c
        } else {
            '_'
        }
    })
    .collect();
    let script = script::Script {
        installable: &installable,
        system,
        root_key: &root_key,
        max_size: spec.cache.max_size.as_ref().map(|m| m.value),
        verify: spec.cache.verify,
    }
    .render();

    let nix = NixStep {
        builder: image_source(&inputs.builder),
        env,
        builder_env,
        flake: target.flake.clone(),
        installable: installable.clone(),
        context,
        cache: StoreCache {
            id: cache_id(&inputs.cache_ns, &inputs.builder, system),
            seed_from_builder: inputs.builder.has_nix,
        },
        script,
        secrets,
        ssh: nix.ssh,
        binary_caches: nix.binary_caches.iter().map(|c| c.value.clone()).collect(),
    };
    let base_raw = inputs
        .base
        .as_ref()
        .map(|b| b.config.clone())
        .unwrap_or_default();
    let base_cfg = ImageConfig::parse(&base_raw).map_err(|message| PlanError::BaseConfig {
        image: target
            .image
            .base
            .as_ref()
            .map(|b| b.value.clone())
            .unwrap_or_default(),
        message,
    })?;
    let field = |name: &str| {
        base_cfg
            .value()
            .pointer(&format!("/config/{name}"))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let cwd = field("WorkingDir").unwrap_or_else(|| "/".into());
    let user = field("User").unwrap_or_default();
    if let (None, Some(first)) = (&inputs.base, target.image.run.first()) {
        return Err(PlanError::Image {
            key: "image.run",
            message: "needs a base image with a shell; the base is scratch".into(),
            hint: "set [image] base = \"…\" to an image with /bin/sh, or drop `run`".into(),
            span: first.span,
        });
    }
    let run = target
        .image
        .run
        .iter()
        .map(|command| RunStep {
            command: command.clone(),
            env: run_env(&base_cfg.env(), &inputs.build_args, &command.value),
            cwd: cwd.clone(),
            user: user.clone(),
        })
        .collect();
    let image = ImageSettings {
        base: inputs.base.as_ref().map(image_source),
        base_config: base_cfg,
        spec: target.image.clone(),
        labels: inputs.labels.clone(),
        run,
    };
    Ok(Plan {
        target: inputs.target.clone().filter(|t| !t.is_empty()),
        platform: inputs.platform.clone(),
        system: system.to_owned(),
        epoch: inputs.epoch,
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
            env.retain(|e| e.split_once('=').is_none_or(|(n, _)| n != k));
            env.push(format!("{k}={v}"));
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
    built: &BuildResult,
    base_users: Option<&BaseUsers>,
) -> Result<ImagePlan, PlanError> {
    let budget = plan
        .image
        .spec
        .layers
        .as_ref()
        .map_or(spec::DEFAULT_LAYERS, |l| l.value);
    // The user files take one layer of the budget.
    let users = image::user_files(plan, base_users)?;
    let layers = plan_layers(
        &built.closure,
        &built.outputs,
        budget.saturating_sub(usize::from(users.is_some())).max(1),
    );
    let config = image::assemble(plan, built, &layers, users.as_ref())?;
    Ok(ImagePlan {
        layers,
        users,
        config,
    })
}

/// `docker-image://<name>[@digest]`: a digest pins the image exactly;
/// without one (local images on dockerd) the name is all there is. The name
/// is BuildKit's own normalized form when it gave one, since a short name
/// with a digest is not read the same way by every image store.
pub fn image_source(facts: &ImageFacts) -> String {
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

/// The store cache id: one store per namespace, builder image and system.
/// A tag can move, so the builder is identified by its digest, or by a hash
/// of its config when the engine reports none (local images).
fn cache_id(ns: &str, builder: &ImageFacts, system: &str) -> String {
    let identity = if builder.digest.is_empty() {
        let hash = Sha256::digest(&builder.config);
        format!("config-{}", &hex(&hash)[..16])
    } else {
        builder.digest.replace(':', "-")
    };
    let ns = if ns.is_empty() { "default" } else { ns };
    format!("nix-frontend/store/{ns}/{identity}/{system}")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
