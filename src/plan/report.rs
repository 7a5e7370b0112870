//! What the nix step reports (`REPORT_FILE`, one JSON object): the
//! installable's outputs, the closure graph `nix path-info --json
//! --recursive` printed, `meta.mainProgram` and `meta.license`, `nix store
//! ls --json` of the main output's `bin/`, and `nix flake metadata --json`
//! (the flake's description, revision and locked inputs).
//!
//! Nix 2.19+ prints path-info as an object keyed by store path; older
//! versions as an array of objects with a `path` field. Both are read here.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StorePath {
    pub path: String,
    pub nar_size: u64,
    /// `sha256:…` as nix prints it (SRI or nix32), empty if nix gave none.
    pub nar_hash: String,
    pub references: Vec<String>,
}

/// What the nix step built, as the bridge read it back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Sorted by path.
    pub closure: Vec<StorePath>,
    /// The installable's output paths (`out` first).
    pub outputs: Vec<String>,
    /// `meta.mainProgram`, when the package has one.
    pub main_program: Option<String>,
    /// What the main output has in `bin/`.
    pub programs: Vec<String>,
    /// The first bytes of each program in `bin/` (and of a script's
    /// interpreter, when it is a file), by name: their architecture.
    pub heads: BTreeMap<String, Head>,
    /// nix's error line where the report's own `nix eval` of the package's
    /// meta (`meta`) or `nix flake metadata` (`flake`) failed.
    pub errors: BTreeMap<String, String>,
    /// `meta.license` as an SPDX expression, when nix knows it.
    pub license: Option<String>,
    pub flake: Flake,
}

/// The start of a program's file, as the nix step read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Head {
    /// Hex, up to 20 bytes.
    #[serde(default)]
    pub head: String,
    /// Of a script's interpreter, the same; empty when none was read.
    #[serde(default)]
    pub interpreter: String,
}

/// What `nix flake metadata` says of the built flake.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Flake {
    pub description: Option<String>,
    /// The source's revision (a git flake), when it has one.
    pub revision: Option<String>,
    /// Every locked input (`flake.lock`), by name, sorted.
    pub inputs: Vec<LockedInput>,
}

/// One node of `flake.lock`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LockedInput {
    pub name: String,
    /// `github`, `git`, `path`, `tarball`, …
    pub kind: String,
    /// `github:owner/repo`, a URL, or a path.
    pub location: String,
    pub rev: Option<String>,
    /// `sha256-…` (SRI).
    pub nar_hash: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the nix step's report is not JSON we can read: {0}")]
    Json(String),
    #[error("nix reported no output path for the installable")]
    NoOutputs,
    #[error("store path {0:?} is not under /nix/store")]
    NotInStore(String),
    #[error("output {0} is missing from the closure nix reported")]
    OutputNotInClosure(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReport {
    outputs: Vec<String>,
    path_info: PathInfo,
    meta: Option<RawMeta>,
    /// `nix store ls --json DIR`: `{"type": "directory", "entries": {…}}`.
    bin: Option<Listing>,
    flake: Option<RawFlake>,
    /// Absent from the reports of older frontends' cached nix steps.
    #[serde(default)]
    heads: Option<BTreeMap<String, Head>>,
    #[serde(default)]
    errors: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    main_program: Option<String>,
    license: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawFlake {
    description: Option<String>,
    revision: Option<String>,
    locks: Option<Locks>,
}

#[derive(Deserialize)]
struct Locks {
    #[serde(default)]
    nodes: BTreeMap<String, Node>,
    root: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    locked: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    entries: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    #[serde(default)]
    path: Option<String>,
    nar_size: u64,
    #[serde(default)]
    nar_hash: Option<String>,
    #[serde(default)]
    references: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PathInfo {
    /// Nix 2.19 and later: `{ "/nix/store/…": { narSize, references, … } }`.
    /// A path that is not valid maps to `null`.
    Keyed(BTreeMap<String, Option<Info>>),
    /// Older Nix: `[ { path, narSize, references, … } ]`.
    Listed(Vec<Info>),
}

impl Report {
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let raw: RawReport =
            serde_json::from_slice(bytes).map_err(|e| ReportError::Json(e.to_string()))?;
        let mut closure: Vec<StorePath> = match raw.path_info {
            PathInfo::Keyed(map) => map
                .into_iter()
                .filter_map(|(path, i)| i.map(|i| store_path(path, i)))
                .collect(),
            PathInfo::Listed(list) => list
                .into_iter()
                .map(|i| match i.path.clone() {
                    Some(path) => Ok(store_path(path, i)),
                    None => Err(ReportError::Json("a path-info entry has no `path`".into())),
                })
                .collect::<Result<_, _>>()?,
        };
        closure.sort_by(|a, b| a.path.cmp(&b.path));
        closure.dedup_by(|a, b| a.path == b.path);
        if let Some(bad) = closure.iter().find(|p| !is_store_path(&p.path)) {
            return Err(ReportError::NotInStore(bad.path.clone()));
        }
        let outputs = raw.outputs;
        if outputs.is_empty() {
            return Err(ReportError::NoOutputs);
        }
        if let Some(bad) = outputs.iter().find(|p| !is_store_path(p)) {
            return Err(ReportError::NotInStore(bad.clone()));
        }
        if let Some(missing) = outputs
            .iter()
            .find(|o| !closure.iter().any(|p| &p.path == *o))
        {
            return Err(ReportError::OutputNotInClosure(missing.clone()));
        }
        let (main_program, license) = match raw.meta {
            Some(m) => (m.main_program, m.license.as_ref().and_then(spdx_license)),
            None => (None, None),
        };
        let main_program = main_program.filter(|m| !m.is_empty() && !m.contains('/'));
        let programs = raw
            .bin
            .map(|l| l.entries.into_keys().filter(|p| !p.contains('/')).collect())
            .unwrap_or_default();
        Ok(Self {
            closure,
            outputs,
            main_program,
            programs,
            heads: raw.heads.unwrap_or_default(),
            errors: raw
                .errors
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, e)| !e.is_empty())
                .collect(),
            license,
            flake: raw.flake.map(flake).unwrap_or_default(),
        })
    }

    /// The installable's main output (`out`).
    pub fn main_output(&self) -> &str {
        &self.outputs[0]
    }
}

/// `meta.license` as nixpkgs writes it (an attrset with `spdxId`, a list
/// of them, or a bare SPDX id or expression) as an SPDX expression,
/// checked against the SPDX license list (`spdx`; deprecated ids such as
/// `GPL-2.0` are still ids of the list).
///
/// The rule for a list: nixpkgs does not say whether `[ a b ]` is a choice,
/// so it is read as all of them, `a AND b` (claiming a choice the package
/// may not offer would be wrong; claiming both is what a reviewer checks
/// anyway). A license without an SPDX id (`unfree`, most custom ones), or
/// an id the list does not know, makes the whole license unknown: no
/// expression, which the SBOM writes as `NOASSERTION`.
fn spdx_license(v: &serde_json::Value) -> Option<String> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Object(o) => o
            .get("spdxId")
            .and_then(|s| s.as_str())
            .map(|s| s.trim().to_owned()),
        _ => None,
    };
    let terms: Vec<String> = match v {
        serde_json::Value::Array(list) => list.iter().map(one).collect::<Option<_>>()?,
        other => vec![one(other)?],
    };
    let mode = spdx::ParseMode {
        allow_deprecated: true,
        ..spdx::ParseMode::STRICT
    };
    let valid = |e: &str| !e.is_empty() && spdx::Expression::parse_mode(e, mode).is_ok();
    if terms.is_empty() || !terms.iter().all(|t| valid(t)) {
        return None;
    }
    let expression = if terms.len() == 1 {
        terms[0].clone()
    } else {
        // Each term kept whole: `(MIT OR Apache-2.0) AND BSD-3-Clause`.
        terms
            .iter()
            .map(|t| {
                if t.contains(' ') {
                    format!("({t})")
                } else {
                    t.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    valid(&expression).then_some(expression)
}

fn flake(raw: RawFlake) -> Flake {
    let mut inputs = Vec::new();
    if let Some(locks) = raw.locks {
        let root = locks.root.unwrap_or_else(|| "root".into());
        for (name, node) in locks.nodes {
            let Some(locked) = node.locked.filter(|_| name != root) else {
                continue;
            };
            let s = |k: &str| locked.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let kind = s("type").unwrap_or_default();
            let location = match (kind.as_str(), s("owner"), s("repo")) {
                ("github" | "gitlab" | "sourcehut", Some(o), Some(r)) => format!("{kind}:{o}/{r}"),
                // A lock's URL may carry a token (`git+https://oauth2:TOKEN@…`);
                // the location goes into a label and the SBOM.
                _ => s("url")
                    .map(|u| super::redact(&u))
                    .or_else(|| s("path"))
                    .unwrap_or_default(),
            };
            inputs.push(LockedInput {
                name,
                kind,
                location,
                rev: s("rev"),
                nar_hash: s("narHash"),
            });
        }
    }
    Flake {
        description: raw.description,
        revision: raw.revision,
        inputs,
    }
}

fn store_path(path: String, i: Info) -> StorePath {
    let mut references = i.references;
    references.sort();
    references.dedup();
    StorePath {
        path,
        nar_size: i.nar_size,
        nar_hash: i.nar_hash.unwrap_or_default(),
        references,
    }
}

/// `/nix/store/<hash>-<name>` with nothing after the name: anything else in
/// a path list would let a crafted closure copy arbitrary files.
pub fn is_store_path(p: &str) -> bool {
    p.strip_prefix("/nix/store/").is_some_and(|rest| {
        !rest.is_empty()
            && !rest.contains('/')
            && rest != "."
            && rest != ".."
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-._?=".contains(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outputs: &str, path_info: &str, main: &str, bin: &str) -> Vec<u8> {
        format!(
            r#"{{"version":2,"outputs":{outputs},"pathInfo":{path_info},"meta":{{"mainProgram":{main},"license":null}},"bin":{bin},"flake":null}}"#
        )
        .into_bytes()
    }

    #[test]
    fn reads_license_and_locked_inputs() {
        let text = r#"{"version":2,"outputs":["/nix/store/aaa-x"],"pathInfo":{"/nix/store/aaa-x":{"narSize":1,"references":[]}},
          "meta":{"mainProgram":null,"license":[{"spdxId":"MIT","free":true},{"spdxId":"Apache-2.0"}]},"bin":null,
          "flake":{"description":"d","locks":{"root":"root","version":7,"nodes":{
            "root":{"inputs":{"lib":"lib","nixpkgs":"nixpkgs","private":"private"}},
            "lib":{"locked":{"type":"path","path":"/nix/store/bbb-source","narHash":"sha256-L"},"original":{"type":"path","path":"./lib"}},
            "private":{"locked":{"type":"git","url":"https://oauth2:TOKEN@git.example.org/team/private.git","rev":"def"}},
            "nixpkgs":{"locked":{"type":"github","owner":"NixOS","repo":"nixpkgs","rev":"abc","narHash":"sha256-N"}}}}}}"#;
        let r = Report::parse(text.as_bytes()).unwrap();
        assert_eq!(r.license.as_deref(), Some("MIT AND Apache-2.0"));
        assert_eq!(r.flake.description.as_deref(), Some("d"));
        assert_eq!(r.flake.inputs.len(), 3);
        assert_eq!(r.flake.inputs[1].location, "github:NixOS/nixpkgs");
        // A lock's credentials never reach the label or the SBOM.
        assert_eq!(
            r.flake.inputs[2].location,
            "https://git.example.org/team/private.git"
        );
        assert_eq!(r.flake.inputs[1].rev.as_deref(), Some("abc"));
        assert_eq!(r.flake.inputs[0].location, "/nix/store/bbb-source");
        assert_eq!(r.flake.inputs[0].nar_hash.as_deref(), Some("sha256-L"));
        // A license nix describes without an SPDX id is not claimed.
        let unknown = serde_json::json!({"shortName": "unfree"});
        assert_eq!(spdx_license(&unknown), None);
    }

    #[test]
    fn licenses_are_checked_against_the_spdx_list() {
        let l = |v: serde_json::Value| spdx_license(&v);
        use serde_json::json;
        assert_eq!(l(json!({"spdxId": "MIT"})).as_deref(), Some("MIT"));
        // A deprecated id is still one of the list.
        assert_eq!(l(json!({"spdxId": "GPL-2.0"})).as_deref(), Some("GPL-2.0"));
        // An expression stays whole inside a list.
        assert_eq!(
            l(json!(["MIT OR Apache-2.0", {"spdxId": "BSD-3-Clause"}])).as_deref(),
            Some("(MIT OR Apache-2.0) AND BSD-3-Clause")
        );
        assert_eq!(
            l(json!("Apache-2.0 WITH LLVM-exception")).as_deref(),
            Some("Apache-2.0 WITH LLVM-exception")
        );
        // Not in the list, not an expression, or one unknown term: unknown.
        assert_eq!(l(json!({"spdxId": "Not-A-License"})), None);
        assert_eq!(l(json!("MIT AND")), None);
        assert_eq!(l(json!([{"spdxId": "MIT"}, {"shortName": "unfree"}])), None);
        assert_eq!(l(json!([])), None);
    }

    const KEYED: &str = r#"{
      "/nix/store/bbb-hello": {"narSize": 400, "narHash": "sha256-x", "references": ["/nix/store/aaa-busybox", "/nix/store/ccc-greeting"]},
      "/nix/store/aaa-busybox": {"narSize": 1000000, "references": []},
      "/nix/store/ccc-greeting": {"narSize": 200, "references": []}
    }"#;

    #[test]
    fn reads_keyed_form() {
        let bin =
            r#"{"type":"directory","entries":{"hello":{"type":"regular","executable":true}}}"#;
        let r = Report::parse(&report(
            r#"["/nix/store/bbb-hello"]"#,
            KEYED,
            "\"hello\"",
            bin,
        ))
        .unwrap();
        let paths: Vec<_> = r.closure.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/nix/store/aaa-busybox",
                "/nix/store/bbb-hello",
                "/nix/store/ccc-greeting"
            ]
        );
        assert_eq!(r.closure[1].references.len(), 2);
        assert_eq!(r.closure[1].nar_hash, "sha256-x");
        assert_eq!(r.main_program.as_deref(), Some("hello"));
        assert_eq!(r.programs, ["hello"]);
        assert_eq!(r.main_output(), "/nix/store/bbb-hello");
    }

    #[test]
    fn reads_listed_form() {
        let listed =
            r#"[{"path": "/nix/store/aaa-x", "narSize": 5, "references": ["/nix/store/aaa-x"]}]"#;
        let r = Report::parse(&report(r#"["/nix/store/aaa-x"]"#, listed, "null", "null")).unwrap();
        assert_eq!(r.closure.len(), 1);
        assert_eq!(r.closure[0].nar_size, 5);
        assert_eq!(r.main_program, None);
        assert!(r.programs.is_empty());
    }

    #[test]
    fn rejects_paths_outside_the_store() {
        let bad = r#"{"/etc/passwd": {"narSize": 1, "references": []}}"#;
        let err =
            Report::parse(&report(r#"["/nix/store/aaa-x"]"#, bad, "null", "null")).unwrap_err();
        assert_eq!(err, ReportError::NotInStore("/etc/passwd".into()));
        assert!(!is_store_path("/nix/store/../etc"));
        assert!(!is_store_path("/nix/store/abc-x/bin"));
    }

    #[test]
    fn requires_an_output_in_the_closure() {
        assert_eq!(
            Report::parse(&report("[]", KEYED, "null", "null")).unwrap_err(),
            ReportError::NoOutputs
        );
        assert_eq!(
            Report::parse(&report(r#"["/nix/store/zzz-x"]"#, KEYED, "null", "null")).unwrap_err(),
            ReportError::OutputNotInClosure("/nix/store/zzz-x".into())
        );
        assert!(matches!(
            Report::parse(b"not json").unwrap_err(),
            ReportError::Json(_)
        ));
    }
}
