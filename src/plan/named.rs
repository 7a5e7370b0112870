//! Named contexts (`--build-context NAME=VALUE`): what each one replaces.
//! A context named like the builder or the base image replaces that image,
//! as `FROM` finds one in a Dockerfile; any other replaces a flake input,
//! the one `nix.override-inputs` maps it to or the `flake.lock` input of
//! its name. Pure: the pipeline reads the lock and fetches the contexts.

use std::collections::BTreeMap;

use super::{Named, Remote, RemoteError};
use crate::image_ref::{ImageRef, familiar};
use crate::span::Located;

/// A named context that cannot do what its name gives it to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("named context {name}: {message}")]
pub struct NamedError {
    pub name: String,
    pub message: String,
    pub hint: String,
}

/// What replaces the builder or the base image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageReplacement {
    /// `docker-image://REF`
    Registry(String),
    /// From the client's OCI layout `store`: the image's name pinned to
    /// the layout's digest, `NAME@DIGEST`.
    OciLayout { reference: String, store: String },
    /// A client's input (bake's `target:`).
    Input(String),
}

/// Where a context that replaces a flake input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// A directory of the client: the local of this name.
    Local(String),
    Remote(Remote),
    /// A definition the client built, by its input name.
    Input(String),
}

/// The context of `named` that replaces `image` (the builder or the base),
/// if one has its name.
pub fn image_replacement(
    named: &BTreeMap<String, String>,
    image: &str,
) -> Result<Option<ImageReplacement>, NamedError> {
    let name = familiar(image);
    let Some(value) = named.get(&name) else {
        return Ok(None);
    };
    let refused = |message: String, hint: &str| NamedError {
        name: name.clone(),
        message,
        hint: hint.to_owned(),
    };
    match Named::parse(value) {
        Ok(Named::Image(r)) => Ok(Some(ImageReplacement::Registry(r))),
        Ok(Named::OciLayout { store, digest }) => Ok(Some(ImageReplacement::OciLayout {
            // BuildKit's own Dockerfile frontend names it so too.
            reference: pinned(image, &digest),
            store,
        })),
        Ok(Named::Input(input)) => Ok(Some(ImageReplacement::Input(input))),
        // Meant as an image, so what is wrong with it is the message.
        Err(e @ RemoteError::OciLayout(_)) => Err(refused(
            e.to_string(),
            "buildx names the layout: --build-context NAME=oci-layout://PATH[:TAG] or NAME=oci-layout://PATH@sha256:DIGEST",
        )),
        _ => Err(refused(
            format!("replaces an image, so it must be an image, not {value:?}"),
            "give an image: --build-context NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG]",
        )),
    }
}

/// `name` in full, as BuildKit normalizes one, pinned to `digest`:
/// `alpine:3` is `docker.io/library/alpine:3@DIGEST`.
fn pinned(name: &str, digest: &str) -> String {
    match ImageRef::parse(name) {
        Ok(r) => r.with_digest(digest).to_string(),
        // The spec checked the name; what it let through stays as written.
        Err(_) => format!("{name}@{digest}"),
    }
}

/// The contexts of `named` that replace flake inputs, with the input that
/// `nix.override-inputs` maps each to (`None`: the input of its name).
/// Those named like one of `images` replace that image instead.
fn input_contexts<'a>(
    named: &'a BTreeMap<String, String>,
    override_inputs: &'a BTreeMap<String, Located<String>>,
    images: &[&str],
) -> impl Iterator<Item = (&'a String, Option<&'a String>)> {
    let taken: Vec<String> = images.iter().map(|i| familiar(i)).collect();
    named
        .keys()
        .filter(move |name| !taken.contains(name))
        .map(move |name| {
            // Of two inputs mapped to one context, the last one wins.
            let by_spec = override_inputs
                .iter()
                .rev()
                .find(|(_, context)| context.value == *name)
                .map(|(input, _)| input);
            (name, by_spec)
        })
}

/// Whether [`input_overrides`] needs the inputs of the flake's lock: a
/// context that `nix.override-inputs` does not map is named after one.
pub fn needs_lock_inputs(
    named: &BTreeMap<String, String>,
    override_inputs: &BTreeMap<String, Located<String>>,
    images: &[&str],
) -> bool {
    input_contexts(named, override_inputs, images).any(|(_, by_spec)| by_spec.is_none())
}

/// The flake inputs that contexts of `named` replace, as (context name,
/// input), in the contexts' order. `lock_inputs` are the top-level inputs
/// of the flake's `flake.lock`; a context that is neither mapped by
/// `nix.override-inputs`, nor named after one of them, nor named like one
/// of `images` is an error.
pub fn input_overrides(
    named: &BTreeMap<String, String>,
    override_inputs: &BTreeMap<String, Located<String>>,
    images: &[&str],
    lock_inputs: &[String],
) -> Result<Vec<(String, String)>, NamedError> {
    input_contexts(named, override_inputs, images)
        .map(|(name, by_spec)| match by_spec {
            Some(input) => Ok((name.clone(), input.clone())),
            None if lock_inputs.contains(name) => Ok((name.clone(), name.clone())),
            None => Err(NamedError {
                name: name.clone(),
                message: format!(
                    "is no input of the flake (its flake.lock has {}), no nix.override-inputs entry, and not the builder or base image",
                    listed(lock_inputs.iter())
                ),
                hint: "name the context after a flake input, map it with [nix.override-inputs] INPUT = \"NAME\", or drop the --build-context".into(),
            }),
        })
        .collect()
}

/// The top-level inputs of a `flake.lock`: the names a context may take to
/// replace an input without a `nix.override-inputs` entry. None for a lock
/// that is not JSON (nix reports it).
pub fn lock_inputs(lock: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(lock) else {
        return Vec::new();
    };
    let root = v["root"].as_str().unwrap_or("root");
    v["nodes"][root]["inputs"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Where the context `name` = `value`, which replaces a flake input, comes
/// from.
pub fn input_source(name: &str, value: &str) -> Result<InputSource, NamedError> {
    let refused = |message: String| not_an_input_source(name, message);
    match Named::parse(value).map_err(|e| refused(e.to_string()))? {
        Named::Local(local) => Ok(InputSource::Local(local)),
        Named::Remote(remote) => Ok(InputSource::Remote(remote)),
        Named::Input(input) => Ok(InputSource::Input(input)),
        Named::Image(_) | Named::OciLayout { .. } => {
            Err(refused("an image cannot replace a flake input".to_owned()))
        }
        Named::Unsupported(kind) => Err(refused(format!(
            "{kind} contexts are not supported by this frontend"
        ))),
    }
}

/// The context `name` cannot replace a flake input, for `message`.
pub fn not_an_input_source(name: &str, message: String) -> NamedError {
    NamedError {
        name: name.to_owned(),
        message,
        hint: "a flake input comes from a directory (--build-context NAME=DIR) or a git or archive URL".into(),
    }
}

/// Names for a message: "a, b", or "none".
pub fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contexts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn mapped(pairs: &[(&str, &str)]) -> BTreeMap<String, Located<String>> {
        pairs
            .iter()
            .map(|(input, name)| {
                (
                    (*input).to_owned(),
                    Located::default_value((*name).to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn an_image_is_replaced_by_its_familiar_name() {
        let named = contexts(&[("alpine", "docker-image://example.org/alpine:3")]);
        assert_eq!(
            image_replacement(&named, "docker.io/library/alpine:latest"),
            Ok(Some(ImageReplacement::Registry(
                "example.org/alpine:3".into()
            )))
        );
        assert_eq!(image_replacement(&named, "alpine:3"), Ok(None));
    }

    #[test]
    fn a_layout_pins_the_image_name() {
        let named = contexts(&[("local/nix:test", "oci-layout://store1@sha256:abc")]);
        assert_eq!(
            image_replacement(&named, "local/nix:test"),
            Ok(Some(ImageReplacement::OciLayout {
                reference: "docker.io/local/nix:test@sha256:abc".into(),
                store: "store1".into(),
            }))
        );
    }

    #[test]
    fn an_image_is_replaced_by_images_only() {
        let named = contexts(&[("alpine", "local:dir"), ("nix", "oci-layout://store")]);
        let e = image_replacement(&named, "alpine").unwrap_err();
        assert!(e.message.contains("must be an image"), "{e}");
        let e = image_replacement(&named, "nix").unwrap_err();
        assert!(e.message.contains("names no image"), "{e}");
        assert!(e.hint.contains("oci-layout://PATH"), "{}", e.hint);
    }

    #[test]
    fn inputs_by_spec_by_lock_and_images_left_out() {
        let named = contexts(&[
            ("alpine", "docker-image://alpine:3"),
            ("dep", "local:dep"),
            ("mine", "local:mine"),
        ]);
        let by_spec = mapped(&[("nixpkgs/lib", "mine")]);
        let images = ["alpine:latest", "nixos/nix:2.24.0"];
        assert!(needs_lock_inputs(&named, &by_spec, &images));
        assert_eq!(
            input_overrides(&named, &by_spec, &images, &["dep".to_owned()]),
            Ok(vec![
                ("dep".to_owned(), "dep".to_owned()),
                ("mine".to_owned(), "nixpkgs/lib".to_owned()),
            ])
        );
        let e = input_overrides(&named, &by_spec, &images, &[]).unwrap_err();
        assert_eq!(e.name, "dep");
        assert!(e.message.contains("its flake.lock has none"), "{e}");
        // Mapped by the spec alone: the lock is not read.
        let named = contexts(&[("mine", "local:mine")]);
        assert!(!needs_lock_inputs(&named, &by_spec, &images));
    }

    #[test]
    fn reads_lock_inputs() {
        let lock = br#"{"nodes":{"dep":{"locked":{}},"root":{"inputs":{"dep":"dep","greeting":"greeting_2"}}},"root":"root","version":7}"#;
        assert_eq!(lock_inputs(lock), ["dep", "greeting"]);
        assert!(lock_inputs(b"not json").is_empty());
    }

    #[test]
    fn input_sources() {
        assert_eq!(
            input_source("dep", "local:dep"),
            Ok(InputSource::Local("dep".into()))
        );
        assert_eq!(
            input_source("dep", "input:t"),
            Ok(InputSource::Input("t".into()))
        );
        assert!(matches!(
            input_source("dep", "https://example.org/r.git"),
            Ok(InputSource::Remote(Remote::Git(_)))
        ));
        let e = input_source("dep", "docker-image://alpine").unwrap_err();
        assert_eq!(e.message, "an image cannot replace a flake input");
        let e = input_source("dep", "s3://bucket").unwrap_err();
        assert_eq!(e.message, "s3 contexts are not supported by this frontend");
    }
}
