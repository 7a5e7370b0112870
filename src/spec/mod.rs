//! The spec: the short TOML file a user writes instead of a Dockerfile.
//!
//! `parse` turns its text into a [`Spec`] whose values keep their [`Span`], so
//! that every later stage can point back at the line a problem comes from.
//! Defaults are filled in here; nothing in this module knows about BuildKit.

mod error;
mod expand;
mod lower;
mod toml;
mod user;
mod values;

use std::collections::BTreeMap;

use crate::platform::Platform;

pub use crate::span::{LineCol, Located, Span};
pub use error::SpecError;
pub use user::User;

/// The builder image used when the spec names none. A tag the frontend pins;
/// the cache id uses the resolved digest or config, never this tag.
pub const DEFAULT_BUILDER: &str = "nixos/nix:2.24.0";
pub const DEFAULT_FLAKE: &str = ".#default";
/// Layers of store paths when the spec sets no `image.layers`.
pub const DEFAULT_LAYERS: usize = 60;
/// overlayfs stacks at most 128 layers, and the base has some of its own.
pub const MAX_LAYERS: usize = 100;

/// A parsed spec: the top level plus named targets that inherit from it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Spec {
    /// True for a `flake.nix` used as the spec (`docker build -f flake.nix`).
    pub zero_config: bool,
    pub top: Target,
    pub targets: BTreeMap<String, Located<Target>>,
    /// Build args the spec refers to as `${NAME}`, with their first place.
    pub args: BTreeMap<String, Span>,
    pub cache: Cache,
    pub sbom: SbomSettings,
}

/// `[sbom]`: the SPDX document attached with `--sbom=true`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SbomSettings {
    /// `Organization: NAME` or `Person: NAME`: who distributes the packages.
    pub supplier: Option<Located<String>>,
}

/// What to build and how to package it; the top level is the default target.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Target {
    /// Shown by `--call targets`.
    pub description: Option<String>,
    pub flake: Located<String>,
    pub builder: Located<String>,
    /// Context paths handed to nix; `None` = the whole context.
    pub src: Option<Located<Vec<String>>>,
    pub image: Image,
    pub nix: Nix,
    /// Build args this target needs (`${NAME}` in its own tables or the top
    /// level's), with their first place.
    #[serde(skip)]
    pub args: BTreeMap<String, Span>,
}

/// `[nix]`: how nix itself runs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Nix {
    /// Extra nix.conf settings, e.g. `substituters`.
    pub options: BTreeMap<String, Located<String>>,
    /// `--secret` ids mounted at `/run/secrets/ID` in the nix step only.
    pub secrets: Vec<Located<String>>,
    /// `--secret` ids holding nix.conf lines (e.g. `access-tokens = …`),
    /// mounted like `secrets` and read by nix as user config files.
    pub conf_secrets: Vec<Located<String>>,
    /// Forward the client's SSH agent (`--ssh default`) for `git+ssh` inputs.
    pub ssh: bool,
    /// Context directories holding binary caches (`nix copy --to file://…`),
    /// used as substituters.
    pub binary_caches: Vec<Located<String>>,
    /// Where nix runs for another platform than the build platform.
    pub run_on: RunOnRule,
    /// Flake inputs (`a` or `a/b`) overridden by a named build context
    /// (`--build-context NAME=…`) when the build has one of that name:
    /// input → context name. A context named like a top-level input needs
    /// no entry.
    pub override_inputs: BTreeMap<String, Located<String>>,
}

/// `[nix] run-on`: where the nix step runs when the target platform is not
/// the build platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOn {
    /// In the builder image of the target platform, under emulation: all of
    /// nix (evaluation included) runs emulated, as a Dockerfile RUN would.
    #[default]
    Target,
    /// In the build platform's builder image, with `--system TARGET` and
    /// `extra-platforms`: evaluation runs natively, only the derivations'
    /// builders (programs of the target platform) run under emulation.
    Build,
    /// In the build platform's builder image, for the build platform's own
    /// system: the installable is a package that cross-compiles for the
    /// target (`flake = ".#app-${TARGETARCH}"`), so nothing is emulated.
    /// The image is the target's, and its programs are checked to be.
    Cross,
}

/// `[nix] run-on` for each target platform: one [`RunOn`] for all
/// (`run-on = "cross"`), or a table by platform
/// (`run-on = { "linux/arm64" = "cross" }`) whose other platforms get its
/// `default` key, else `"target"`: one build can cross-compile some
/// platforms and emulate the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOnRule {
    pub default: RunOn,
    /// Platforms with their own place.
    pub platforms: Vec<(Platform, RunOn)>,
}

impl RunOnRule {
    pub fn all(run_on: RunOn) -> Self {
        Self {
            default: run_on,
            platforms: Vec::new(),
        }
    }

    /// Where nix runs for the target platform `platform`.
    pub fn for_platform(&self, platform: &Platform) -> RunOn {
        self.platforms
            .iter()
            .find(|(p, _)| p == platform)
            .map_or(self.default, |(_, r)| *r)
    }
}

/// As written: a string when it is one place for all, else a table.
impl serde::Serialize for RunOnRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.platforms.is_empty() {
            return self.default.serialize(s);
        }
        let mut map = s.serialize_map(Some(self.platforms.len() + 1))?;
        map.serialize_entry("default", &self.default)?;
        for (p, r) in &self.platforms {
            map.serialize_entry(&p.to_string(), r)?;
        }
        map.end()
    }
}

/// `[cache]`: the shared `/nix` store.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Cache {
    /// Collect garbage when the store is larger (bytes).
    pub max_size: Option<Located<u64>>,
    /// Verify the whole store after each build.
    pub verify: bool,
    /// Names this project's GC roots in the shared store.
    pub project: Option<Located<String>>,
}

/// `[[image.copy]]`: a file or directory from the context into the image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Copy {
    /// Relative to the context.
    pub src: String,
    /// Absolute; a trailing `/` copies into the directory.
    pub dest: String,
    pub chown: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Image {
    /// `None` = scratch.
    pub base: Option<Located<String>>,
    /// Shell commands run on the base before the closure is added.
    pub run: Vec<Located<String>>,
    pub copy: Vec<Located<Copy>>,
    pub entrypoint: Option<Located<Vec<String>>>,
    pub cmd: Option<Located<Vec<String>>>,
    pub env: BTreeMap<String, Located<String>>,
    pub workdir: Option<Located<String>>,
    pub user: Option<Located<User>>,
    pub labels: BTreeMap<String, Located<String>>,
    pub expose: Vec<Located<String>>,
    /// How many layers the frontend's own files may take (`None` = default).
    pub layers: Option<Located<usize>>,
    pub healthcheck: Option<Located<Healthcheck>>,
    /// `SIGTERM`, `TERM` or a number.
    pub stop_signal: Option<Located<String>>,
    /// Absolute paths.
    pub volumes: Vec<Located<String>>,
    pub shell: Option<Located<Vec<String>>>,
    pub defaults: Defaults,
    /// Register the closure in the image's own Nix database.
    pub nix_db: bool,
}

/// `[image] healthcheck`, in Docker's form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", argv…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Nanoseconds; 0 = Docker's default.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// `[image.defaults]`: what a minimal image needs, added on `scratch` only
/// (a base image has its own), each its own small layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Defaults {
    /// `/tmp`, mode 1777.
    pub tmp: bool,
    /// `/etc/nsswitch.conf` (`hosts: files dns`).
    pub nsswitch: bool,
    /// `/etc/ssl/certs/ca-certificates.crt` and `SSL_CERT_FILE`, when the
    /// closure holds a CA bundle (nixpkgs `cacert`).
    pub ca_certificates: bool,
    /// `/usr/share/zoneinfo` and `TZDIR`, when the closure holds tzdata.
    pub zoneinfo: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            tmp: true,
            nsswitch: true,
            ca_certificates: true,
            zoneinfo: true,
        }
    }
}

impl Spec {
    /// The target `--target` names, or the top level when it names none.
    pub fn target(&self, name: Option<&str>) -> Result<&Target, SpecError> {
        match name {
            None | Some("") => Ok(&self.top),
            // `--call targets` lists the top level as `default`.
            Some("default") if !self.targets.contains_key("default") => Ok(&self.top),
            Some(name) => match self.targets.get(name) {
                Some(t) => Ok(&t.value),
                None => Err(SpecError::UnknownTarget {
                    name: name.to_owned(),
                    known: self.targets.keys().cloned().collect(),
                }),
            },
        }
    }
}

impl Target {
    /// The flake's directory in the context (`""` = its root) and the
    /// attribute: `./sub#app` → (`sub`, `app`), `.` → (`""`, `default`).
    pub fn flake_parts(&self) -> (&str, &str) {
        let (path, attr) = self
            .flake
            .value
            .split_once('#')
            .unwrap_or((&self.flake.value, "default"));
        (
            path.strip_prefix('.').unwrap_or(path).trim_matches('/'),
            attr,
        )
    }

    fn zero_config() -> Self {
        Self {
            description: None,
            flake: Located::default_value(DEFAULT_FLAKE.to_owned()),
            builder: Located::default_value(DEFAULT_BUILDER.to_owned()),
            src: None,
            image: Image::default(),
            nix: Nix::default(),
            args: BTreeMap::new(),
        }
    }
}

/// Parses a spec, expanding `${NAME}` from `args` (an undefined one is an
/// error). `filename` decides the zero-config case: a `*.nix` file is a flake,
/// not TOML, and means "build `.#default` with every default".
pub fn parse(
    filename: &str,
    text: &str,
    args: &BTreeMap<String, String>,
) -> Result<Spec, SpecError> {
    parse_with(filename, text, Some((args, None)))
}

/// Like [`parse`] for a build of `target` (`None` = the top level): the
/// build args of other `[targets.NAME]` tables need no value, as a
/// Dockerfile's other stages need none.
pub fn parse_for_target(
    filename: &str,
    text: &str,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Spec, SpecError> {
    parse_with(
        filename,
        text,
        Some((args, Some(target.unwrap_or_default()))),
    )
}

/// Parses a spec to describe it (subrequests): `${NAME}` expands to `NAME`
/// instead of needing a value.
pub fn parse_lenient(filename: &str, text: &str) -> Result<Spec, SpecError> {
    parse_with(filename, text, None)
}

/// `strict`: the args, and which target must have them all (`None`: every
/// target; `Some("")`: only the top level).
fn parse_with(
    filename: &str,
    text: &str,
    strict: Option<(&BTreeMap<String, String>, Option<&str>)>,
) -> Result<Spec, SpecError> {
    if filename.ends_with(".nix") {
        return Ok(Spec {
            zero_config: true,
            top: Target::zero_config(),
            targets: BTreeMap::new(),
            args: BTreeMap::new(),
            cache: Cache::default(),
            sbom: SbomSettings::default(),
        });
    }
    lower::parse(text, strict)
}

#[cfg(test)]
mod tests;
