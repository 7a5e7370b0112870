//! The image's SBOM: an SPDX 2.3 document made from what nix built, not from
//! a scan. Scanners find no package database in a Nix image; we know the
//! exact runtime closure, its NAR hashes and references, and the flake's
//! locked inputs.
//!
//! - One package per store path of the runtime closure (nothing build-only,
//!   nothing of the builder image): name and version from the store path's
//!   name as `nix` splits it (the version starts at the first `-` not
//!   followed by a letter; a name without one takes the store hash as its
//!   version, which identifies that build), the NAR hash as its SHA256
//!   checksum, the store path as an identifier.
//! - PURL: the PURL spec has no Nix type (`pkg:nix` is a proposal no tool
//!   reads), so a store path is `pkg:generic/NAME@VERSION` with the NAR hash
//!   in the standard `checksum` qualifier; a GitHub input is `pkg:github`.
//! - `DEPENDS_ON` from each path to its references; the flake's main output
//!   is what the document `DESCRIBES`, and `HAS_PREREQUISITE` each locked
//!   input.
//! - `licenseDeclared` from `meta.license` where nix knows it (the main
//!   output's), `NOASSERTION` elsewhere.
//! - Deterministic: the namespace is a hash of the content, `created` is
//!   `SOURCE_DATE_EPOCH` (or 1970), everything sorted.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::oci::rfc3339;
use crate::plan::{LockedInput, Platform, Report, StorePath, hex};

/// The in-toto predicate type of an SPDX document: BuildKit runs no scanner
/// when a result carries one.
pub const PREDICATE_TYPE: &str = "https://spdx.dev/Document";

/// What the document is made from, besides the report.
pub struct Sbom<'a> {
    pub report: &'a Report,
    pub platform: &'a Platform,
    /// `Organization: …` or `Person: …`: who distributes these packages.
    pub supplier: &'a str,
    pub epoch: i64,
}

/// What `nix-frontend sbom` is given when BuildKit runs it: the SBOM is made
/// inside the build, from the nix step's files, because a closure of a few
/// thousand paths makes a document larger than the 4 MiB message BuildKit's
/// gateway takes from a frontend (see `tests/limits.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolArgs {
    /// The nix step's `report.json`.
    pub report: String,
    /// The directory of the first step's evaluation (`graph.json`,
    /// `facts.json`), when the report came from the derivation graph's
    /// final step, which leaves the package's facts to the evaluation.
    pub eval: Option<String>,
    pub out: String,
    pub platform: String,
    pub supplier: String,
    pub epoch: i64,
}

impl ToolArgs {
    /// The command line after `nix-frontend sbom`.
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec!["--report".to_owned(), self.report.clone()];
        if let Some(e) = &self.eval {
            argv.extend(["--eval".to_owned(), e.clone()]);
        }
        argv.extend([
            "--out".to_owned(),
            self.out.clone(),
            "--platform".to_owned(),
            self.platform.clone(),
            "--supplier".to_owned(),
            self.supplier.clone(),
            "--epoch".to_owned(),
            self.epoch.to_string(),
        ]);
        argv
    }
}

/// The document of the nix step's report (`eval`: the evaluation's
/// `graph.json` and `facts.json`, for a report of the final step).
pub fn from_report(
    report: &[u8],
    eval: Option<(&[u8], &[u8])>,
    platform: &Platform,
    supplier: &str,
    epoch: i64,
) -> Result<Vec<u8>, String> {
    let spliced;
    let report = match eval {
        Some((graph, facts)) => {
            let eval = crate::plan::Eval::parse(graph, facts).map_err(|e| e.to_string())?;
            spliced = eval.splice(report).map_err(|e| e.to_string())?;
            &spliced
        }
        None => report,
    };
    let report = Report::parse(report).map_err(|e| e.to_string())?;
    Ok(Sbom {
        report: &report,
        platform,
        supplier,
        epoch,
    }
    .to_bytes())
}

/// The supplier when the spec names none: the project the image is built
/// from, by its git remote (`vcs:source`), else `cache.project`, else the
/// flake's description; `NOASSERTION` when none of these is known.
pub fn default_supplier(
    vcs_source: Option<&str>,
    project: Option<&str>,
    description: Option<&str>,
) -> String {
    let repo = vcs_source.map(|s| {
        let s = s.trim_end_matches('/').trim_end_matches(".git");
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        // host/owner/repo (or git@host:owner/repo): the path names the project.
        let s = s.split_once('@').map_or(s, |(_, rest)| rest);
        s.split_once(['/', ':'])
            .map_or(s, |(_, path)| path)
            .to_owned()
    });
    match repo
        .filter(|r| !r.is_empty())
        .or_else(|| project.map(str::to_owned))
        .or_else(|| {
            description
                .filter(|d| !d.trim().is_empty())
                .map(str::to_owned)
        }) {
        Some(name) => format!("Organization: {name}"),
        None => "NOASSERTION".into(),
    }
}

/// `name` and `version` of a store path's name, as `nix` splits them.
pub fn name_version(store_name: &str) -> (&str, Option<&str>) {
    let bytes = store_name.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (&store_name[..i], Some(&store_name[i + 1..]));
        }
    }
    (store_name, None)
}

/// What a package's checksum is: nix's hash of the path, not of a file
/// anyone downloads.
const NAR_CHECKSUM: &str = "checksum: the SHA-256 of the store path's NAR serialization (nix's narHash), not of an archive";

/// A NAR hash (`sha256-<base64>` or `sha256:<hex>`) in hex.
fn sha256_hex(nar_hash: &str) -> Option<String> {
    if let Some(b64) = nar_hash.strip_prefix("sha256-") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        return (bytes.len() == 32).then(|| hex(&bytes));
    }
    let h = nar_hash.strip_prefix("sha256:")?;
    (h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// An SPDX element id from free text: `SPDXRef-` and `[A-Za-z0-9.-]`.
/// An SPDX element id for `text`, one-to-one: SPDX ids hold letters,
/// digits, `.` and `-` only, so `-` is written `--` and any other byte
/// `-XX` (hex). `a_b` and `a-b` (two flake inputs may be named so) get
/// `a-5Fb` and `a--b`.
fn spdx_id(kind: &str, text: &str) -> String {
    let mut id = format!("SPDXRef-{kind}-");
    for b in text.bytes() {
        match b {
            b'-' => id.push_str("--"),
            b if b.is_ascii_alphanumeric() || b == b'.' => id.push(char::from(b)),
            b => id.push_str(&format!("-{b:02X}")),
        }
    }
    id
}

/// Percent-encodes what a PURL component may not hold.
fn purl_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect()
}

impl Sbom<'_> {
    /// The document, as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.document()).unwrap_or_default()
    }

    pub fn document(&self) -> Value {
        let report = self.report;
        let root = report.main_output();
        let mut packages: Vec<Value> = report
            .closure
            .iter()
            .map(|p| self.path_package(p, p.path == root))
            .collect();
        packages.extend(report.flake.inputs.iter().map(|i| self.input_package(i)));
        packages.sort_by(|a, b| a["SPDXID"].as_str().cmp(&b["SPDXID"].as_str()));

        let id_of = |path: &str| spdx_id("Package", path.trim_start_matches("/nix/store/"));
        let mut relationships: Vec<(String, &str, String)> = Vec::new();
        relationships.push(("SPDXRef-DOCUMENT".into(), "DESCRIBES", id_of(root)));
        for p in &report.closure {
            for r in p.references.iter().filter(|r| **r != p.path) {
                relationships.push((id_of(&p.path), "DEPENDS_ON", id_of(r)));
            }
        }
        for i in &report.flake.inputs {
            relationships.push((
                id_of(root),
                "HAS_PREREQUISITE",
                spdx_id("FlakeInput", &i.name),
            ));
        }
        relationships.sort();
        relationships.dedup();

        let root_name = name_version(
            root.trim_start_matches("/nix/store/")
                .split_once('-')
                .map_or(root, |(_, n)| n),
        )
        .0;
        let name = format!("{root_name} ({})", self.platform);
        // Same content, same namespace: a hash of everything the document says.
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        for p in &report.closure {
            h.update(p.path.as_bytes());
            h.update(p.nar_hash.as_bytes());
        }
        for i in &report.flake.inputs {
            h.update(format!("{}={}:{:?}:{:?}", i.name, i.location, i.rev, i.nar_hash).as_bytes());
        }
        let namespace = format!(
            "https://spdx.org/spdxdocs/nix-frontend/{}-{}",
            purl_part(root_name),
            &hex(&h.finalize())[..32]
        );
        json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": name,
            "documentNamespace": namespace,
            "creationInfo": {
                "created": rfc3339(self.epoch),
                "creators": [format!("Tool: nix-frontend-{}", env!("CARGO_PKG_VERSION"))],
            },
            "packages": packages,
            "relationships": relationships
                .into_iter()
                .map(|(a, t, b)| json!({"spdxElementId": a, "relationshipType": t, "relatedSpdxElement": b}))
                .collect::<Vec<_>>(),
        })
    }

    fn path_package(&self, p: &StorePath, is_root: bool) -> Value {
        let base = p.path.trim_start_matches("/nix/store/");
        let (hash, store_name) = base.split_once('-').unwrap_or((base, base));
        let (name, version) = name_version(store_name);
        let version = version.unwrap_or(hash);
        let checksum = sha256_hex(&p.nar_hash);
        let mut purl = format!("pkg:generic/{}@{}", purl_part(name), purl_part(version));
        if let Some(c) = &checksum {
            purl.push_str(&format!("?checksum=sha256:{c}"));
        }
        let mut pkg = json!({
            "SPDXID": spdx_id("Package", base),
            "name": name,
            "versionInfo": version,
            "supplier": self.supplier,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": if is_root {
                self.report.license.clone().unwrap_or_else(|| "NOASSERTION".into())
            } else {
                "NOASSERTION".into()
            },
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl},
                {"referenceCategory": "OTHER", "referenceType": "nix-store-path", "referenceLocator": p.path},
            ],
        });
        if let Some(c) = checksum {
            pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": c}]);
            pkg["comment"] = json!(NAR_CHECKSUM);
        }
        if is_root {
            pkg["primaryPackagePurpose"] = json!("APPLICATION");
        }
        pkg
    }

    fn input_package(&self, i: &LockedInput) -> Value {
        let version = i
            .rev
            .clone()
            .or_else(|| i.nar_hash.clone())
            .unwrap_or_else(|| "NOASSERTION".into());
        let (supplier, download, purl) = match i
            .location
            .strip_prefix("github:")
            .and_then(|r| r.split_once('/'))
        {
            Some((owner, repo)) => (
                format!("Organization: {owner}"),
                match &i.rev {
                    Some(rev) => format!("git+https://github.com/{owner}/{repo}@{rev}"),
                    None => "NOASSERTION".into(),
                },
                Some(format!(
                    "pkg:github/{}/{}@{}",
                    purl_part(owner),
                    purl_part(repo),
                    purl_part(&version)
                )),
            ),
            None => (self.supplier.to_owned(), "NOASSERTION".into(), None),
        };
        let mut pkg = json!({
            "SPDXID": spdx_id("FlakeInput", &i.name),
            "name": i.name,
            "versionInfo": version,
            "supplier": supplier,
            "downloadLocation": download,
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": format!("flake input ({}): {}", i.kind, i.location),
            "primaryPackagePurpose": "SOURCE",
        });
        if let Some(c) = i.nar_hash.as_deref().and_then(sha256_hex) {
            pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": c}]);
            pkg["comment"] = json!(format!(
                "flake input ({}): {}; {NAR_CHECKSUM}",
                i.kind, i.location
            ));
        }
        if let Some(p) = purl {
            pkg["externalRefs"] = json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p}]);
        }
        pkg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Flake;

    fn sp(path: &str, hash: &str, refs: &[&str]) -> StorePath {
        StorePath {
            path: path.into(),
            nar_size: 1,
            nar_hash: hash.into(),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn report() -> Report {
        let sri = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        Report {
            closure: vec![
                sp("/nix/store/aaa-busybox-1.36.1", &sri, &[]),
                sp(
                    "/nix/store/bbb-app",
                    &sri,
                    &["/nix/store/aaa-busybox-1.36.1", "/nix/store/bbb-app"],
                ),
            ],
            outputs: vec!["/nix/store/bbb-app".into()],
            main_program: None,
            programs: vec![],
            heads: Default::default(),
            errors: Default::default(),
            license: Some("MIT".into()),
            flake: Flake {
                description: None,
                revision: None,
                inputs: vec![LockedInput {
                    name: "lib".into(),
                    kind: "path".into(),
                    location: "/nix/store/ccc-source".into(),
                    rev: None,
                    nar_hash: Some(sri.clone()),
                }],
            },
        }
    }

    #[test]
    fn suppliers_from_what_names_the_project() {
        assert_eq!(
            default_supplier(Some("https://example.org/acme/valkyrie.git"), None, None),
            "Organization: acme/valkyrie"
        );
        assert_eq!(
            default_supplier(Some("git@example.org:acme/valkyrie.git"), Some("p"), None),
            "Organization: acme/valkyrie"
        );
        assert_eq!(
            default_supplier(None, Some("valkyrie"), Some("d")),
            "Organization: valkyrie"
        );
        assert_eq!(
            default_supplier(None, None, Some("A tool")),
            "Organization: A tool"
        );
        assert_eq!(default_supplier(None, None, None), "NOASSERTION");
    }

    #[test]
    fn names_and_versions_as_nix_splits_them() {
        assert_eq!(name_version("busybox-1.36.1"), ("busybox", Some("1.36.1")));
        assert_eq!(
            name_version("python3.11-requests-2.31.0"),
            ("python3.11-requests", Some("2.31.0"))
        );
        assert_eq!(name_version("app"), ("app", None));
        assert_eq!(
            name_version("glibc-2.39-52-bin"),
            ("glibc", Some("2.39-52-bin"))
        );
    }

    #[test]
    fn one_package_per_path_and_input_with_relationships() {
        let platform = Platform::parse("linux/amd64").unwrap();
        let r = report();
        let doc = Sbom {
            report: &r,
            platform: &platform,
            supplier: "Organization: example",
            epoch: 0,
        }
        .document();
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 3);
        let app = packages.iter().find(|p| p["name"] == "app").unwrap();
        assert_eq!(app["versionInfo"], "bbb", "no version: the store hash");
        assert_eq!(app["licenseDeclared"], "MIT");
        assert_eq!(app["checksums"][0]["checksumValue"], "07".repeat(32));
        assert_eq!(
            app["externalRefs"][1]["referenceLocator"],
            "/nix/store/bbb-app"
        );
        let bb = packages.iter().find(|p| p["name"] == "busybox").unwrap();
        assert_eq!(bb["versionInfo"], "1.36.1");
        assert!(
            bb["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .starts_with("pkg:generic/busybox@1.36.1?checksum=sha256:0707")
        );
        let rels: Vec<String> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["spdxElementId"].as_str().unwrap(),
                    r["relationshipType"].as_str().unwrap(),
                    r["relatedSpdxElement"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            rels,
            [
                "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-bbb--app",
                "SPDXRef-Package-bbb--app DEPENDS_ON SPDXRef-Package-aaa--busybox--1.36.1",
                "SPDXRef-Package-bbb--app HAS_PREREQUISITE SPDXRef-FlakeInput-lib",
            ]
        );
        // One id per name: `-` and `_` do not meet.
        assert_eq!(spdx_id("FlakeInput", "a-b"), "SPDXRef-FlakeInput-a--b");
        assert_eq!(spdx_id("FlakeInput", "a_b"), "SPDXRef-FlakeInput-a-5Fb");
        assert_ne!(spdx_id("FlakeInput", "a-5Fb"), spdx_id("FlakeInput", "a_b"));
        // The checksum says what it is a checksum of.
        let app = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "app")
            .unwrap();
        assert!(
            app["comment"]
                .as_str()
                .unwrap()
                .contains("NAR serialization")
        );
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        // The same report gives the same bytes, and another a new namespace.
        let again = Sbom {
            report: &r,
            platform: &platform,
            supplier: "Organization: example",
            epoch: 0,
        };
        assert_eq!(again.to_bytes(), again.to_bytes());
        let mut other = report();
        other.closure[0].path = "/nix/store/ddd-busybox-1.37.0".into();
        let other_doc = Sbom {
            report: &other,
            platform: &platform,
            supplier: "x",
            epoch: 0,
        }
        .document();
        assert_ne!(other_doc["documentNamespace"], doc["documentNamespace"]);
    }
}
