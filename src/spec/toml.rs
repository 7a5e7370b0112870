//! The spec's TOML shape, as serde reads it: every key the spec may have,
//! each value with its byte span. Nothing is checked here beyond the types;
//! `lower` turns this into a [`super::Spec`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub(super) type Str = Spanned<String>;
pub(super) type Strs = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub flake: Option<Str>,
    pub builder: Option<Str>,
    pub src: Option<Strs>,
    pub image: Option<RawImage>,
    pub nix: Option<RawNix>,
    pub cache: Option<RawCache>,
    pub sbom: Option<RawSbom>,
    pub targets: Option<BTreeMap<String, Spanned<RawTarget>>>,
}

/// A `[targets.NAME]` table: the top level's keys, each overriding it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub description: Option<Str>,
    pub flake: Option<Str>,
    pub builder: Option<Str>,
    pub src: Option<Strs>,
    pub image: Option<RawImage>,
    pub nix: Option<RawNix>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawImage {
    pub base: Option<Str>,
    pub run: Option<Vec<Str>>,
    pub copy: Option<Vec<Spanned<RawCopy>>>,
    pub entrypoint: Option<Strs>,
    pub cmd: Option<Strs>,
    pub env: Option<BTreeMap<String, Str>>,
    pub workdir: Option<Str>,
    pub user: Option<Str>,
    pub labels: Option<BTreeMap<String, Str>>,
    pub expose: Option<Vec<Str>>,
    pub layers: Option<Spanned<i64>>,
    pub healthcheck: Option<Spanned<RawHealthcheck>>,
    pub stop_signal: Option<Str>,
    pub volumes: Option<Vec<Str>>,
    pub shell: Option<Strs>,
    pub defaults: Option<RawDefaults>,
    pub nix_db: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHealthcheck {
    /// A shell command, an argv (`["bin/check", "--quick"]`) or `"NONE"`.
    pub test: Spanned<toml::Value>,
    pub interval: Option<Str>,
    pub timeout: Option<Str>,
    pub start_period: Option<Str>,
    pub start_interval: Option<Str>,
    pub retries: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawDefaults {
    pub tmp: Option<bool>,
    pub nsswitch: Option<bool>,
    pub ca_certificates: Option<bool>,
    pub zoneinfo: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCopy {
    pub src: Str,
    pub dest: Str,
    pub chown: Option<Str>,
    pub mode: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawNix {
    pub options: Option<BTreeMap<String, Spanned<toml::Value>>>,
    pub secrets: Option<Vec<Str>>,
    pub conf_secrets: Option<Vec<Str>>,
    pub ssh: Option<bool>,
    pub binary_caches: Option<Vec<Str>>,
    /// A place for all platforms, or a table by platform.
    pub run_on: Option<Spanned<toml::Value>>,
    pub override_inputs: Option<BTreeMap<String, Str>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCache {
    pub max_size: Option<Str>,
    pub verify: Option<bool>,
    pub project: Option<Str>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSbom {
    pub supplier: Option<Str>,
}

/// serde's names for our tables, as the user knows them: "a table".
pub(super) const TABLE_NAMES: [&str; 9] = [
    "RawHealthcheck",
    "RawDefaults",
    "RawSbom",
    "RawImage",
    "RawNix",
    "RawCache",
    "RawCopy",
    "RawTarget",
    "RawSpec",
];
