//! The nix step: what nix builds, with which settings, which context files,
//! secrets and store.

use super::script::{Mode, Script};
use super::store::{cache_id, root_key};
use super::{
    CACHES_DIR, ContextFilter, INPUTS_DIR, Inputs, NixStep, SECRETS_DIR, SRC_DIR, SSH_SOCK,
    StoreCache, UnsupportedPlatform, image_source, nix_platform,
};
use crate::oci::ImageConfig;
use crate::spec::{Spec, Target};

/// The directory of a git checkout, left out of what nix sees.
const GIT_DIR: &str = ".git";

/// Nix settings every nix step gets. Inside a BuildKit exec there are no build
/// users and no user namespaces for the sandbox, and seccomp filtering fails.
const NIX_CONFIG: &str = "experimental-features = nix-command flakes\n\
sandbox = false\n\
build-users-group =\n\
filter-syscalls = false\n\
warn-dirty = false\n\
keep-outputs = true";

pub(super) fn plan(
    spec: &Spec,
    target: &Target,
    inputs: &Inputs,
    system: &str,
    builder_config: &ImageConfig,
) -> Result<NixStep, UnsupportedPlatform> {
    let platform = nix_platform(target, &inputs.platform, &inputs.build_platform);
    // The system nix itself runs as: its store is that system's.
    let native = platform
        .nix_system()
        .ok_or_else(|| UnsupportedPlatform(platform.to_string()))?;
    let (sub, attr) = target.flake_parts();
    let flake_dir = if sub.is_empty() {
        SRC_DIR.to_owned()
    } else {
        format!("{SRC_DIR}/{sub}")
    };
    // A path flake takes its revision as an attribute: `self.rev` and
    // `self.shortRev` without a `.git` (nor git) in the nix step.
    let rev = |r: &Option<String>| r.as_ref().map(|r| format!("?rev={r}")).unwrap_or_default();
    let installable = format!("path:{flake_dir}{}#{attr}", rev(&inputs.revision));
    let mut overrides = Vec::new();
    for (k, o) in inputs.overrides.iter().enumerate() {
        overrides.extend([
            "--override-input".to_owned(),
            o.input.clone(),
            format!("path:{INPUTS_DIR}/{k}{}", rev(&o.revision)),
        ]);
    }

    let mut exclude = inputs.dockerignore.clone();
    // Binary caches are mounted on their own, not copied into the flake source.
    exclude.extend(target.nix.binary_caches.iter().map(|c| c.value.clone()));
    // The spec is packaging, not source: editing it must not rebuild with nix.
    // A zero-config spec is the flake itself and stays.
    if !spec.zero_config {
        exclude.extend(inputs.spec_paths.iter().cloned());
    }
    // Nix never sees a checkout's `.git` (for a flake in a git repository it
    // takes the tracked files), and its index and logs differ per clone: two
    // fresh clones of one commit must be the same nix inputs. Last, so no
    // `.dockerignore` exception brings it back.
    exclude.push(GIT_DIR.to_owned());
    let context = ContextFilter {
        include: target
            .src
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default(),
        exclude,
    };

    let nix = &target.nix;
    let mut nix_config = NIX_CONFIG.to_owned();
    for (i, _) in nix.binary_caches.iter().enumerate() {
        // trusted: a cache from the build context is as trusted as the flake
        // (and gets a store of its own, see `store::cache_id`).
        nix_config.push_str(&format!(
            "\nextra-substituters = file://{CACHES_DIR}/{i}?trusted=1"
        ));
    }
    if native != system {
        // `run-on = "build"`: the derivations' builders are programs of the
        // target system, run by the kernel's binfmt emulator.
        nix_config.push_str(&format!("\nextra-platforms = {system}"));
    }
    for (k, v) in &nix.options {
        nix_config.push_str(&format!("\n{k} = {}", v.value));
    }
    let builder_env = builder_config.env().to_vec();
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
    if !inputs.prefetch.is_empty() {
        // `N:NARHASH` for each checkout at FETCHED_DIR/N.
        let fetched: Vec<String> = inputs
            .prefetch
            .iter()
            .enumerate()
            .map(|(k, p)| format!("{k}:{}", p.nar_hash))
            .collect();
        env.push(format!("NIX_FRONTEND_FETCHED={}", fetched.join(" ")));
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
    let root_key = root_key(
        &inputs.cache_ns,
        spec.cache.project.as_ref().map(|p| p.value.as_str()),
        inputs.vcs_source.as_deref(),
        inputs.target.as_deref(),
        attr,
        system,
    );
    let script = Script {
        installable: installable.clone(),
        system: system.to_owned(),
        root_key,
        max_size: spec.cache.max_size.as_ref().map(|m| m.value),
        verify: spec.cache.verify,
        overrides,
        mode: if inputs.nix_graph {
            Mode::Auto
        } else {
            Mode::Build
        },
    };

    Ok(NixStep {
        platform,
        builder: image_source(&inputs.builder),
        env,
        builder_env,
        flake: target.flake.clone(),
        installable,
        context,
        cache: StoreCache {
            id: cache_id(&inputs.cache_ns, &inputs.builder, native, nix),
        },
        script,
        secrets,
        ssh: nix.ssh,
        binary_caches: nix.binary_caches.iter().map(|c| c.value.clone()).collect(),
        overrides: inputs.overrides.iter().map(|o| o.input.clone()).collect(),
        prefetch: inputs.prefetch.clone(),
    })
}
