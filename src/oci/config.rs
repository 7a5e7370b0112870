//! The image config: the OCI image spec's `config` object, with Docker's own
//! additions (`Healthcheck`, `Shell`, `OnBuild`), read from a base image and
//! written with the result.
//!
//! Typed where we read or write a field; every field we do not know is kept
//! as it came (`other`), so a base image's settings survive. The oci-spec
//! crate's types would drop Docker's fields and unknown ones. Maps are
//! `BTreeMap`s, so the same config always serializes to the same bytes (the
//! image ID is the digest of those bytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// "The image JSON": platform, runtime config, layers and history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// "An combined date and time at which the image was created".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// "The execution parameters which SHOULD be used as a base when running a
/// container using the image."
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker's: how to check that the container is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Docker's: the shell for the shell form of RUN, CMD, ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Docker's `Healthcheck`; durations in nanoseconds, 0 = inherit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", …]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One entry per layer (or per step that made none: `empty_layer`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Reads a config as ResolveImageConfig returns it; no bytes mean none.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `config.Env`, empty when unset.
    pub fn env(&self) -> &[String] {
        self.config.env.as_deref().unwrap_or_default()
    }
}

/// RFC 3339 time of a Unix epoch second, as image configs spell it.
pub fn rfc3339(epoch: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Sets `KEY=value` in an environment list, replacing an earlier `KEY=`.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// The value of `KEY` in an environment list.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"OnBuild":["RUN x"],"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000}},"rootfs":{"type":"layers","diff_ids":["sha256:a"]},"moby.extra":{"k":1}}"#;
        let c = ImageConfig::parse(raw).unwrap();
        assert_eq!(c.env(), ["A=1"]);
        assert_eq!(c.config.other["OnBuild"], serde_json::json!(["RUN x"]));
        assert_eq!(
            c.config.healthcheck.as_ref().unwrap().interval,
            30_000_000_000
        );
        let again = ImageConfig::parse(&c.to_bytes()).unwrap();
        assert_eq!(again, c);
        assert!(
            String::from_utf8(c.to_bytes())
                .unwrap()
                .contains("\"moby.extra\"")
        );
    }

    #[test]
    fn nulls_read_as_unset() {
        let c = ImageConfig::parse(br#"{"config":{"Entrypoint":null,"Cmd":null}}"#).unwrap();
        assert_eq!(c.config.entrypoint, None);
        assert_eq!(ImageConfig::parse(b"").unwrap(), ImageConfig::default());
        assert!(ImageConfig::parse(b"[1]").is_err());
    }

    #[test]
    fn env_helpers() {
        let mut env = vec!["PATH=/bin".to_owned()];
        set_env(&mut env, "PATH", "/x:/bin");
        set_env(&mut env, "TZ", "UTC");
        assert_eq!(env, ["PATH=/x:/bin", "TZ=UTC"]);
        assert_eq!(get_env(&env, "TZ"), Some("UTC"));
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
