//! Frontend options: what BuildKit passes as `BUILDKIT_FRONTEND_OPT_<n>=key=value`
//! (the `docker build` flags), plus the session and workers. Pure parsing;
//! `from_env` is the only place that reads the environment.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::image_ref::familiar;

/// The last second LLB can carry: file times are int64 nanoseconds, which end
/// at 2262-04-11T23:47:16Z.
pub const MAX_EPOCH: i64 = i64::MAX / 1_000_000_000;

/// One `--cache-from` entry, as BuildKit's `cache-imports` option spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheImport {
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    opts: BTreeMap<String, String>,
    pub session_id: String,
    /// The platforms the first worker can run, `os/arch[/variant]`, native
    /// first, then those an emulator registered with binfmt_misc runs.
    pub worker_platforms: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("build arg SOURCE_DATE_EPOCH={0:?} is not a number of seconds from 1970 to 2262")]
    Epoch(String),
    #[error("cache-imports is not valid JSON: {0}")]
    CacheImports(String),
    #[error("input-metadata:{input} is not an object of base64 values: {message}")]
    InputMetadata { input: String, message: String },
    #[error("--network={0}: the nix step and image.run take default, host or none")]
    NetworkMode(String),
    #[error("--add-host {0:?} is not HOST:IP")]
    AddHost(String),
}

/// The network of the steps that run commands (`docker build --network`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// BuildKit's own: a network namespace with the engine's outbound route.
    #[default]
    Sandbox,
    /// The engine's host network (BuildKit's `network.host` entitlement).
    Host,
    /// Only a loopback device.
    None,
}

/// `--network` and `--add-host`, as the nix steps and `image.run` get them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Network {
    pub mode: NetworkMode,
    /// `(host, ip)` lines added to the steps' `/etc/hosts`, in order.
    pub hosts: Vec<(String, String)>,
}

impl Network {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Options {
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut o = Self::default();
        for (k, v) in vars {
            if k.starts_with("BUILDKIT_FRONTEND_OPT_") {
                // Keys never contain `=`; values may.
                if let Some((key, value)) = v.split_once('=') {
                    o.opts.insert(key.to_owned(), value.to_owned());
                }
            } else if k == "BUILDKIT_SESSION_ID" {
                o.session_id = v;
            } else if k == "BUILDKIT_WORKERS" {
                o.worker_platforms = worker_platforms(&v);
            }
        }
        o
    }

    /// The worker's platforms from Ping, where BUILDKIT_WORKERS named none.
    pub fn or_workers(&mut self, from_ping: &[String]) {
        if self.worker_platforms.is_empty() {
            self.worker_platforms = from_ping.to_vec();
        }
    }

    /// `force-network-mode` and `add-hosts` (`--network`, `--add-host`).
    pub fn network(&self) -> Result<Network, OptionError> {
        let mode = match self.get("force-network-mode").unwrap_or_default() {
            "" | "default" | "sandbox" => NetworkMode::Sandbox,
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            other => return Err(OptionError::NetworkMode(other.to_owned())),
        };
        let mut hosts = Vec::new();
        for entry in self.get("add-hosts").unwrap_or_default().split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            // buildx sends `host=ip`; an IPv6 address has `:` in it.
            let (host, ip) = entry
                .split_once('=')
                .ok_or_else(|| OptionError::AddHost(entry.to_owned()))?;
            if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                return Err(OptionError::AddHost(entry.to_owned()));
            }
            hosts.push((host.to_owned(), ip.to_owned()));
        }
        Ok(Network { mode, hosts })
    }

    /// Every option as BuildKit gave it.
    pub fn all(&self) -> &BTreeMap<String, String> {
        &self.opts
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.opts.get(key).map(String::as_str)
    }

    /// The image config the client sent with its input `input` (buildx:
    /// `input-metadata:NAME`, a JSON object of base64 values); `None`
    /// without one.
    pub fn input_config(&self, input: &str) -> Result<Option<Vec<u8>>, OptionError> {
        let Some(json) = self.get(&format!("input-metadata:{input}")) else {
            return Ok(None);
        };
        let bad = |message: String| OptionError::InputMetadata {
            input: input.to_owned(),
            message,
        };
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        metadata
            .get("containerimage.config")
            .map(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b)
                    .map_err(|e| bad(e.to_string()))
            })
            .transpose()
    }

    /// The spec's file name; dockerd omits it for the default.
    pub fn filename(&self) -> String {
        match self.get("filename") {
            Some(f) if !f.is_empty() && f != "." => f.rsplit('/').next().unwrap_or(f).to_owned(),
            _ => "Dockerfile".to_owned(),
        }
    }

    /// The spec's path inside a remote context (`-f sub/Spec`): relative to
    /// the context's directory.
    pub fn filename_path(&self) -> String {
        match self.get("filename").map(|f| f.trim_start_matches("./")) {
            Some(f) if !f.is_empty() && f != "." => f.to_owned(),
            _ => "Dockerfile".to_owned(),
        }
    }

    /// Whether the client named the spec's local itself (stdin, or a spec
    /// outside a remote context): then the spec comes from that local.
    pub fn has_dockerfile_local(&self) -> bool {
        self.get("dockerfilekey").is_some_and(|k| !k.is_empty())
    }

    /// The context as a URL (`docker build URL`), when it is one.
    pub fn remote_context(&self) -> Option<&str> {
        self.get(&self.context_local()).filter(|v| !v.is_empty())
    }

    /// `--build-context NAME=VALUE` for `platform`: `context:NAME::PLATFORM`
    /// wins over `context:NAME`. Names in their familiar form.
    pub fn named_contexts(&self, platform: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut specific = BTreeMap::new();
        for (k, v) in self.prefixed("context:") {
            match k.split_once("::") {
                Some((name, p)) if p == platform => {
                    specific.insert(familiar(name), v);
                }
                Some(_) => {}
                None => {
                    out.insert(familiar(&k), v);
                }
            }
        }
        out.extend(specific);
        out
    }

    pub fn dockerfile_local(&self) -> String {
        self.get("dockerfilekey")
            .filter(|s| !s.is_empty())
            .unwrap_or("dockerfile")
            .to_owned()
    }

    /// `image-resolve-mode` (`--pull` sends `pull`); dockerd's `default`
    /// prefers a local image.
    pub fn resolve_mode(&self) -> String {
        match self.get("image-resolve-mode") {
            Some(m @ ("pull" | "local" | "default")) => m.to_owned(),
            _ => "default".to_owned(),
        }
    }

    /// The session that serves local `name` (BuildKit v0.16+ can route one
    /// local through another session).
    pub fn session_for(&self, name: &str) -> String {
        self.get(&format!("local-sessionid:{name}"))
            .map_or_else(|| self.session_id.clone(), str::to_owned)
    }

    pub fn context_local(&self) -> String {
        self.get("contextkey")
            .filter(|s| !s.is_empty())
            .unwrap_or("context")
            .to_owned()
    }

    pub fn target(&self) -> Option<String> {
        self.get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    }

    /// The build platform: what the worker runs natively.
    pub fn build_platform(&self) -> Option<&str> {
        self.worker_platforms.first().map(String::as_str)
    }

    /// `multi-platform` or `build-arg:BUILDKIT_MULTI_PLATFORM`: a result per
    /// platform even for one platform.
    pub fn multi_platform(&self) -> bool {
        ["multi-platform", "build-arg:BUILDKIT_MULTI_PLATFORM"]
            .iter()
            .any(|k| {
                self.get(k)
                    .is_some_and(|v| matches!(v, "1" | "true" | "True" | "TRUE"))
            })
    }

    /// `nix-graph` or `build-arg:NIX_FRONTEND_GRAPH`: on a fresh store,
    /// build the derivation graph as steps the build cache carries (the
    /// default), or, set to `0`/`false`, as the single nix step.
    pub fn nix_graph(&self) -> bool {
        ["nix-graph", "build-arg:NIX_FRONTEND_GRAPH"]
            .iter()
            .filter_map(|k| self.get(k))
            .all(|v| !matches!(v, "0" | "false" | "False" | "FALSE" | "off"))
    }

    pub fn platforms(&self) -> Vec<String> {
        self.get("platform")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn prefixed(&self, prefix: &str) -> BTreeMap<String, String> {
        self.opts
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_owned(), v.clone())))
            .collect()
    }

    pub fn build_args(&self) -> BTreeMap<String, String> {
        self.prefixed("build-arg:")
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.prefixed("label:")
    }

    /// `--no-cache`: present (any value) means the frontend's ops rebuild.
    pub fn no_cache(&self) -> bool {
        self.opts.contains_key("no-cache")
    }

    pub fn cache_ns(&self) -> String {
        self.get("build-arg:BUILDKIT_CACHE_MOUNT_NS")
            .unwrap_or_default()
            .to_owned()
    }

    pub fn source_date_epoch(&self) -> Result<i64, OptionError> {
        match self.get("build-arg:SOURCE_DATE_EPOCH").map(str::trim) {
            None | Some("") => Ok(0),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=MAX_EPOCH).contains(n))
                .ok_or_else(|| OptionError::Epoch(v.to_owned())),
        }
    }

    /// The context's git remote, as buildx sends it (`vcs:source`).
    pub fn vcs_source(&self) -> Option<String> {
        self.get("vcs:source")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The context's commit, as buildx sends it (`vcs:revision`).
    pub fn vcs_revision(&self) -> Option<String> {
        self.get("vcs:revision")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Whether the client asked for an SBOM (`--sbom=true`: `attest:sbom`)
    /// that we make ourselves: not when it names a scanner (`generator=`),
    /// which BuildKit then runs.
    pub fn sbom(&self) -> bool {
        let Some(v) = self.get("attest:sbom") else {
            return false;
        };
        let params: Vec<(&str, &str)> = v.split(',').filter_map(|kv| kv.split_once('=')).collect();
        !params
            .iter()
            .any(|(k, v)| *k == "generator" || (*k == "disabled" && *v == "true"))
    }

    /// `cache-imports`: `[{"Type": …, "Attrs": {…}}]`, forwarded to our
    /// solves; the legacy `cache-from` (comma list of refs) when it is absent.
    pub fn cache_imports(&self) -> Result<Vec<CacheImport>, OptionError> {
        let Some(raw) = self.get("cache-imports").filter(|s| !s.trim().is_empty()) else {
            return Ok(self
                .get("cache-from")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| CacheImport {
                    kind: "registry".into(),
                    attrs: BTreeMap::from([("ref".to_owned(), r.to_owned())]),
                })
                .collect());
        };
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(rename = "Type")]
            kind: String,
            #[serde(rename = "Attrs", default)]
            attrs: BTreeMap<String, String>,
        }
        let entries: Vec<Entry> =
            serde_json::from_str(raw).map_err(|e| OptionError::CacheImports(e.to_string()))?;
        Ok(entries
            .into_iter()
            .map(|e| CacheImport {
                kind: e.kind,
                attrs: e.attrs,
            })
            .collect())
    }
}

/// `BUILDKIT_WORKERS` keys are `ID/Labels/Platforms` on BuildKit 0.8 and
/// lower-case later: look them up case-insensitively. The first worker's
/// platforms, as `os/arch[/variant]`.
fn worker_platforms(json: &str) -> Vec<String> {
    let Ok(workers) = serde_json::from_str::<Vec<Value>>(json) else {
        return Vec::new();
    };
    let field = |v: &Value, name: &str| -> Option<Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let Some(platforms) = workers.first().and_then(|w| field(w, "platforms")) else {
        return Vec::new();
    };
    platforms
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let s = |n: &str| {
                field(p, n)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
            if os.is_empty() || arch.is_empty() {
                return None;
            }
            Some(if variant.is_empty() {
                format!("{os}/{arch}")
            } else {
                format!("{os}/{arch}/{variant}")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn reads_options_and_defaults() {
        let o = opts(&[
            ("BUILDKIT_FRONTEND_OPT_0", "build-arg:A=x=y"),
            ("BUILDKIT_FRONTEND_OPT_1", "label:org.x=1"),
            (
                "BUILDKIT_FRONTEND_OPT_2",
                "platform=linux/amd64, linux/arm64",
            ),
            ("BUILDKIT_FRONTEND_OPT_3", "no-cache="),
            ("BUILDKIT_SESSION_ID", "s1"),
        ]);
        assert_eq!(o.build_args()["A"], "x=y");
        assert_eq!(o.labels()["org.x"], "1");
        assert_eq!(o.platforms(), ["linux/amd64", "linux/arm64"]);
        assert!(o.no_cache());
        assert_eq!(o.filename(), "Dockerfile");
        assert_eq!(o.dockerfile_local(), "dockerfile");
        assert_eq!(o.context_local(), "context");
        assert_eq!(o.session_id, "s1");
        assert_eq!(o.source_date_epoch(), Ok(0));
    }

    #[test]
    fn network_and_hosts() {
        let net = |mode: &str, hosts: &str| {
            opts(&[
                (
                    "BUILDKIT_FRONTEND_OPT_0",
                    &format!("force-network-mode={mode}"),
                ),
                ("BUILDKIT_FRONTEND_OPT_1", &format!("add-hosts={hosts}")),
            ])
            .network()
        };
        assert!(opts(&[]).network().unwrap().is_default());
        assert!(net("sandbox", "").unwrap().is_default());
        let n = net("none", "a.internal=10.0.0.1, b=fd00::1").unwrap();
        assert_eq!(n.mode, NetworkMode::None);
        assert_eq!(
            n.hosts,
            [
                ("a.internal".to_owned(), "10.0.0.1".to_owned()),
                ("b".to_owned(), "fd00::1".to_owned())
            ]
        );
        assert_eq!(net("host", "").unwrap().mode, NetworkMode::Host);
        assert_eq!(
            net("bridge", ""),
            Err(OptionError::NetworkMode("bridge".into()))
        );
        assert_eq!(
            net("", "a=not-an-ip"),
            Err(OptionError::AddHost("a=not-an-ip".into()))
        );
        assert_eq!(
            net("", "=1.2.3.4"),
            Err(OptionError::AddHost("=1.2.3.4".into()))
        );
    }

    #[test]
    fn workers_keys_in_either_case() {
        let old = r#"[{"ID":"x","Labels":{},"Platforms":[{"architecture":"amd64","os":"linux"}]}]"#;
        let new = r#"[{"id":"x","labels":{},"platforms":[{"architecture":"arm64","os":"linux","variant":"v8"}]}]"#;
        assert_eq!(worker_platforms(old), ["linux/amd64"]);
        assert_eq!(worker_platforms(new), ["linux/arm64/v8"]);
        assert!(worker_platforms("garbage").is_empty());
        let emulated = r#"[{"id":"x","platforms":[{"architecture":"amd64","os":"linux"},{"architecture":"arm64","os":"linux"},{"architecture":"arm","os":"linux","variant":"v7"}]}]"#;
        assert_eq!(
            worker_platforms(emulated),
            ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        );
    }

    #[test]
    fn epoch_and_cache_imports() {
        let o = opts(&[
            (
                "BUILDKIT_FRONTEND_OPT_0",
                "build-arg:SOURCE_DATE_EPOCH=1700000000",
            ),
            (
                "BUILDKIT_FRONTEND_OPT_1",
                r#"cache-imports=[{"Type":"local","Attrs":{"src":"/c"}}]"#,
            ),
        ]);
        assert_eq!(o.source_date_epoch(), Ok(1_700_000_000));
        let c = o.cache_imports().unwrap();
        assert_eq!(c[0].kind, "local");
        assert_eq!(c[0].attrs["src"], "/c");
        let bad = opts(&[(
            "BUILDKIT_FRONTEND_OPT_0",
            "build-arg:SOURCE_DATE_EPOCH=soon",
        )]);
        assert!(bad.source_date_epoch().is_err());
        // Nanoseconds in an int64 end in 2262: a later time cannot be a
        // file time in LLB.
        let last = opts(&[(
            "BUILDKIT_FRONTEND_OPT_0",
            "build-arg:SOURCE_DATE_EPOCH=9223372036",
        )]);
        assert_eq!(last.source_date_epoch(), Ok(9_223_372_036));
        let beyond = opts(&[(
            "BUILDKIT_FRONTEND_OPT_0",
            "build-arg:SOURCE_DATE_EPOCH=9223372037",
        )]);
        assert!(beyond.source_date_epoch().is_err());
    }

    #[test]
    fn legacy_cache_from() {
        let o = opts(&[("BUILDKIT_FRONTEND_OPT_0", "cache-from=r/a:cache, r/b")]);
        let c = o.cache_imports().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].attrs["ref"], "r/b");
        assert!(
            opts(&[("BUILDKIT_FRONTEND_OPT_0", "cache-from=")])
                .cache_imports()
                .unwrap()
                .is_empty()
        );
    }
}
