//! The closure graph `nix path-info --json --recursive` prints, and what the
//! nix step reports besides it.
//!
//! Nix 2.19+ prints an object keyed by store path; older versions an array of
//! objects with a `path` field. Both are read here.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StorePath {
    pub path: String,
    pub nar_size: u64,
    pub references: Vec<String>,
}

/// What the nix step found out, read back by the bridge with ReadFile.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuildResult {
    /// Sorted by path.
    pub closure: Vec<StorePath>,
    /// The installable's output paths (`out` first).
    pub outputs: Vec<String>,
    /// `meta.mainProgram`, when the package has one.
    pub main_program: Option<String>,
    /// What the main output has in `bin/`.
    pub programs: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClosureError {
    #[error("nix path-info printed JSON we cannot read: {0}")]
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
struct Info {
    #[serde(default)]
    path: Option<String>,
    nar_size: u64,
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

impl BuildResult {
    /// Reads the nix step's reports: path-info JSON, the output paths (one
    /// per line), `meta.mainProgram` as JSON (`null` when absent) and the
    /// names in the main output's `bin/` (one per line).
    pub fn parse(
        path_info: &[u8],
        outputs: &[u8],
        main_program: &[u8],
        programs: &[u8],
    ) -> Result<Self, ClosureError> {
        let info: PathInfo =
            serde_json::from_slice(path_info).map_err(|e| ClosureError::Json(e.to_string()))?;
        let mut closure: Vec<StorePath> = match info {
            PathInfo::Keyed(map) => map
                .into_iter()
                .filter_map(|(path, i)| i.map(|i| (path, i)))
                .map(|(path, i)| store_path(path, i))
                .collect(),
            PathInfo::Listed(list) => list
                .into_iter()
                .map(|i| match i.path.clone() {
                    Some(path) => Ok(store_path(path, i)),
                    None => Err(ClosureError::Json("an entry has no `path`".into())),
                })
                .collect::<Result<_, _>>()?,
        };
        closure.sort_by(|a, b| a.path.cmp(&b.path));
        closure.dedup_by(|a, b| a.path == b.path);
        if let Some(bad) = closure.iter().find(|p| !is_store_path(&p.path)) {
            return Err(ClosureError::NotInStore(bad.path.clone()));
        }
        let outputs = lines(outputs);
        if outputs.is_empty() {
            return Err(ClosureError::NoOutputs);
        }
        if let Some(bad) = outputs.iter().find(|p| !is_store_path(p)) {
            return Err(ClosureError::NotInStore(bad.clone()));
        }
        if let Some(missing) = outputs
            .iter()
            .find(|o| !closure.iter().any(|p| &p.path == *o))
        {
            return Err(ClosureError::OutputNotInClosure(missing.clone()));
        }
        let main_program = serde_json::from_slice::<Option<String>>(main_program)
            .ok()
            .flatten()
            .filter(|m| !m.is_empty() && !m.contains('/'));
        let programs = lines(programs)
            .into_iter()
            .filter(|p| !p.contains('/'))
            .collect();
        Ok(Self {
            closure,
            outputs,
            main_program,
            programs,
        })
    }

    /// The installable's main output (`out`).
    pub fn main_output(&self) -> &str {
        &self.outputs[0]
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn store_path(path: String, i: Info) -> StorePath {
    let mut references = i.references;
    references.sort();
    references.dedup();
    StorePath {
        path,
        nar_size: i.nar_size,
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

    const KEYED: &str = r#"{
      "/nix/store/bbb-hello": {"narSize": 400, "references": ["/nix/store/aaa-busybox", "/nix/store/ccc-greeting"]},
      "/nix/store/aaa-busybox": {"narSize": 1000000, "references": []},
      "/nix/store/ccc-greeting": {"narSize": 200, "references": []}
    }"#;

    #[test]
    fn reads_keyed_form() {
        let r = BuildResult::parse(
            KEYED.as_bytes(),
            b"/nix/store/bbb-hello\n",
            b"\"hello\"",
            b"hello\n",
        )
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
        assert_eq!(r.main_program.as_deref(), Some("hello"));
        assert_eq!(r.main_output(), "/nix/store/bbb-hello");
    }

    #[test]
    fn reads_listed_form() {
        let listed =
            r#"[{"path": "/nix/store/aaa-x", "narSize": 5, "references": ["/nix/store/aaa-x"]}]"#;
        let r = BuildResult::parse(listed.as_bytes(), b"/nix/store/aaa-x", b"null", b"").unwrap();
        assert_eq!(r.closure.len(), 1);
        assert_eq!(r.closure[0].nar_size, 5);
        assert_eq!(r.main_program, None);
    }

    #[test]
    fn rejects_paths_outside_the_store() {
        let bad = r#"{"/etc/passwd": {"narSize": 1, "references": []}}"#;
        let err =
            BuildResult::parse(bad.as_bytes(), b"/nix/store/aaa-x", b"null", b"").unwrap_err();
        assert_eq!(err, ClosureError::NotInStore("/etc/passwd".into()));
        assert!(!is_store_path("/nix/store/../etc"));
        assert!(!is_store_path("/nix/store/abc-x/bin"));
    }

    #[test]
    fn requires_an_output() {
        assert_eq!(
            BuildResult::parse(KEYED.as_bytes(), b"\n", b"null", b"").unwrap_err(),
            ClosureError::NoOutputs
        );
    }
}
