//! Golden tests of the plan and the LLB, op digests pinned: a change to what
//! the frontend sends BuildKit shows up here as a snapshot diff to review.
//!
//! Each case is a directory `tests/golden/NAME/` whose `case.toml` names a
//! spec (a file in the case, or a path in the repository) and carries what
//! the engine would tell: options as `docker build` sends them, image
//! configs, the base's user files, the nix step's report, a pruned store.
//! The pipeline runs against the fake engine with those facts; the plan and
//! the LLB of the nix step and the image are snapshots (`insta`, under
//! `tests/snapshots/`). A changed snapshot fails the test and is written
//! next to it as `.snap.new`; accepting it is a decision:
//! `INSTA_UPDATE=always cargo test --test golden` (or `cargo insta review`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix_frontend::debug::{self, Facts};
use nix_frontend::engine::fake::Kind;
use nix_frontend::proto::llb as pb;
use prost::Message;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    spec: String,
    #[serde(default)]
    mergeop: bool,
    #[serde(default)]
    options: BTreeMap<String, String>,
    #[serde(default)]
    facts: CaseFacts,
}

/// File names are relative to the case directory.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaseFacts {
    report: Option<String>,
    #[serde(default)]
    image_configs: BTreeMap<String, String>,
    #[serde(default)]
    base_files: BTreeMap<String, String>,
    #[serde(default)]
    store_pruned: bool,
    /// A fetched context's files: path in it → file in the case.
    #[serde(default)]
    context_files: BTreeMap<String, String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn request(case_file: &Path) -> debug::Request {
    let dir = case_file.parent().expect("a case directory");
    let text = String::from_utf8(read(case_file)).expect("UTF-8");
    let case: Case =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", case_file.display()));
    // A spec of the case's own, else one of the repository's.
    let spec = [dir.join(&case.spec), root().join(&case.spec)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{}: no spec {}", case_file.display(), case.spec));
    let facts = Facts {
        report: case.facts.report.map(|f| read(&dir.join(f))),
        image_configs: case
            .facts
            .image_configs
            .iter()
            .map(|(name, f)| (name.clone(), read(&dir.join(f))))
            .collect(),
        base_files: case
            .facts
            .base_files
            .iter()
            .map(|(path, f)| (path.clone(), read(&dir.join(f))))
            .collect(),
        store_pruned: case.facts.store_pruned,
        context_files: case
            .facts
            .context_files
            .iter()
            .map(|(path, f)| (path.clone(), read(&dir.join(f))))
            .collect(),
    };
    debug::Request {
        filename: spec
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        text: String::from_utf8(read(&spec)).expect("UTF-8"),
        options: case.options,
        mergeop: case.mergeop,
        facts,
    }
}

#[test]
fn plan_and_llb_of_every_case() {
    insta::glob!("golden/*/case.toml", |path| {
        let req = request(path);
        let out = debug::run(&req).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        insta::assert_snapshot!("plan", out.plan_text());
        insta::assert_snapshot!("llb", out.llb_text());
        if let Some(def) = out.last(Kind::Attestation) {
            insta::assert_snapshot!("sbom", attested_file(def));
        }
    });
}

/// The file an attestation's state makes (the SBOM), as text.
fn attested_file(def: &pb::Definition) -> String {
    def.def
        .iter()
        .filter_map(|b| pb::Op::decode(b.as_slice()).ok())
        .find_map(|op| match op.op {
            Some(pb::op::Kind::File(f)) => f.actions.into_iter().find_map(|a| match a.action {
                Some(pb::file_action::Action::Mkfile(m)) => String::from_utf8(m.data).ok(),
                _ => None,
            }),
            _ => None,
        })
        .expect("an attestation state makes one file")
}

/// Every example and fixture spec of the repository has a case.
#[test]
fn every_spec_has_a_case() {
    let cases: Vec<String> = fs::read_dir(root().join("tests/golden"))
        .expect("tests/golden")
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("case.toml")).ok())
        .filter_map(|t| toml::from_str::<Case>(&t).ok())
        .map(|c| c.spec)
        .collect();
    let mut specs = Vec::new();
    for dir in ["examples", "tests/fixtures"] {
        for entry in fs::read_dir(root().join(dir))
            .expect("a directory")
            .flatten()
        {
            let p = entry.path();
            let spec = if p.is_dir() { p.join("Dockerfile") } else { p };
            if spec.extension().is_none_or(|e| e == "toml") && spec.is_file() {
                let rel = spec.strip_prefix(root()).expect("inside").to_string_lossy();
                specs.push(rel.into_owned());
            }
        }
    }
    let missing: Vec<&String> = specs.iter().filter(|s| !cases.contains(s)).collect();
    assert!(!specs.is_empty());
    assert!(
        missing.is_empty(),
        "specs without a golden case: {missing:?}"
    );
}
