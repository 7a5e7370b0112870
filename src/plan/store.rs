//! Which `/nix` store a build uses, and where its GC roots live in it.
//!
//! A store is a BuildKit cache mount shared by every build with the same id,
//! so the id is the trust boundary: builds that share it trust each other's
//! store paths. It is keyed by namespace, builder and system, and a spec that
//! changes what nix trusts (substituters, keys, a binary cache from the
//! context) gets a store of its own.

use sha2::{Digest, Sha256};

use super::{ImageFacts, hex};
use crate::spec::Nix;

/// nix.conf settings that decide which store paths nix accepts from where,
/// or that run code of the spec's choosing with the store's rights: remote
/// builders (whose outputs the store takes), a post-build hook, plugins.
fn lowers_trust(setting: &str) -> bool {
    let setting = setting.strip_prefix("extra-").unwrap_or(setting);
    setting.contains("substituters")
        || setting.contains("trusted")
        || matches!(
            setting,
            "require-sigs" | "builders" | "post-build-hook" | "plugin-files"
        )
}

/// The store cache id: `nix-frontend/store/NS/BUILDER/SYSTEM[/trust-HASH]`.
/// A tag can move, so the builder is identified by its digest, or by a hash
/// of its config when the engine reports none (local images).
pub fn cache_id(ns: &str, builder: &ImageFacts, system: &str, nix: &Nix) -> String {
    let identity = if builder.digest.is_empty() {
        let hash = Sha256::digest(&builder.config);
        format!("config-{}", &hex(&hash)[..16])
    } else {
        builder.digest.replace(':', "-")
    };
    let ns = if ns.is_empty() { "default" } else { ns };
    let mut id = format!("nix-frontend/store/{ns}/{identity}/{system}");
    if let Some(trust) = trust_hash(nix) {
        id.push_str(&format!("/trust-{trust}"));
    }
    id
}

/// A hash of every setting that changes what the store accepts; `None` when
/// the spec keeps nix's defaults.
fn trust_hash(nix: &Nix) -> Option<String> {
    let mut lines: Vec<String> = nix
        .options
        .iter()
        .filter(|(k, _)| lowers_trust(k))
        .map(|(k, v)| format!("{k}={}\n", v.value))
        .collect();
    // A context binary cache is trusted as the flake is (`?trusted=1`).
    lines.extend(
        nix.binary_caches
            .iter()
            .map(|c| format!("binary-cache={}\n", c.value)),
    );
    // A nix.conf from a secret is opaque: it may set any of the above. Its
    // content never enters the plan, so the store follows its id.
    lines.extend(
        nix.conf_secrets
            .iter()
            .map(|c| format!("conf-secret={}\n", c.value)),
    );
    if lines.is_empty() {
        return None;
    }
    Some(hex(&Sha256::digest(lines.concat().as_bytes()))[..16].to_owned())
}

/// The GC-root slot of a build: `NS.PROJECT.TARGET.ATTR.SYSTEM`, in characters a
/// file name can hold. A project is what identifies it: the spec's
/// `cache.project`, else the context's git remote (`vcs:source`), else
/// `default` — projects left at `default` that build the same attribute in
/// one namespace share a slot. With a git remote, a `cache.project` is
/// suffixed with the remote's hash, so a spec cannot take over the slot of
/// another repository's project by naming it.
pub fn root_key(
    ns: &str,
    project: Option<&str>,
    vcs_source: Option<&str>,
    target: Option<&str>,
    attr: &str,
    system: &str,
) -> String {
    let vcs = vcs_source
        .filter(|s| !s.is_empty())
        .map(|src| format!("vcs-{}", &hex(&Sha256::digest(src.as_bytes()))[..12]));
    let project = match (project, vcs) {
        (Some(p), Some(vcs)) => format!("{p}-{vcs}"),
        (Some(p), None) => p.to_owned(),
        (None, Some(vcs)) => vcs,
        (None, None) => "default".to_owned(),
    };
    let ns = if ns.is_empty() { "default" } else { ns };
    let target = target.filter(|t| !t.is_empty()).unwrap_or("default");
    let attr = attr.rsplit('.').next().unwrap_or(attr);
    format!("{ns}.{project}.{target}.{attr}.{system}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Origin;
    use crate::span::Located;

    fn builder() -> ImageFacts {
        ImageFacts {
            name: "b".into(),
            origin: Origin::Registry,
            resolved: String::new(),
            digest: "sha256:abc".into(),
            config: Vec::new(),
        }
    }

    #[test]
    fn trust_settings_get_their_own_store() {
        let plain = cache_id("", &builder(), "x86_64-linux", &Nix::default());
        assert_eq!(plain, "nix-frontend/store/default/sha256-abc/x86_64-linux");
        let mut other = Nix::default();
        other
            .options
            .insert("max-jobs".into(), Located::default_value("4".into()));
        assert_eq!(cache_id("", &builder(), "x86_64-linux", &other), plain);
        for key in [
            "substituters",
            "extra-substituters",
            "trusted-public-keys",
            "require-sigs",
            "builders",
            "extra-builders",
            "post-build-hook",
            "plugin-files",
            "extra-plugin-files",
        ] {
            let mut n = Nix::default();
            n.options.insert(
                key.into(),
                Located::default_value("https://cache.example.org".into()),
            );
            let id = cache_id("", &builder(), "x86_64-linux", &n);
            assert!(id.starts_with(&format!("{plain}/trust-")), "{key}: {id}");
        }
        let mut cache = Nix {
            binary_caches: vec![Located::default_value("nix-cache".into())],
            ..Default::default()
        };
        let a = cache_id("", &builder(), "x86_64-linux", &cache);
        cache.binary_caches = vec![Located::default_value("other-cache".into())];
        let b = cache_id("", &builder(), "x86_64-linux", &cache);
        assert!(a.contains("/trust-") && b.contains("/trust-") && a != b);
        let secret = Nix {
            conf_secrets: vec![Located::default_value("netrc-conf".into())],
            ..Default::default()
        };
        let c = cache_id("", &builder(), "x86_64-linux", &secret);
        assert!(c.starts_with(&format!("{plain}/trust-")), "{c}");
    }

    #[test]
    fn root_slots_are_per_project() {
        let s = "x86_64-linux";
        assert_eq!(
            root_key("", None, None, None, "default", s),
            "default.default.default.default.x86_64-linux"
        );
        let a = root_key(
            "",
            None,
            Some("https://example.org/a.git"),
            None,
            "default",
            s,
        );
        let b = root_key(
            "",
            None,
            Some("https://example.org/b.git"),
            None,
            "default",
            s,
        );
        assert_ne!(a, b);
        let agent = root_key(
            "ns",
            Some("valkyrie"),
            Some("x"),
            Some("agent"),
            "packages.x86_64-linux.agent",
            "aarch64-linux",
        );
        assert!(
            agent.starts_with("ns.valkyrie-vcs-") && agent.ends_with(".agent.agent.aarch64-linux"),
            "{agent}"
        );
        // Naming another repository's project does not give its slot.
        let other = root_key(
            "ns",
            Some("valkyrie"),
            Some("y"),
            Some("agent"),
            "packages.x86_64-linux.agent",
            "aarch64-linux",
        );
        assert_ne!(agent, other);
        assert_eq!(
            root_key("ns", Some("valkyrie"), None, None, "agent", s),
            "ns.valkyrie.default.agent.x86_64-linux"
        );
        assert_eq!(
            root_key("a/b", None, None, None, "x", s),
            "a_b.default.default.x.x86_64-linux"
        );
    }
}
