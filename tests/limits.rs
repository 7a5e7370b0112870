//! A large closure: what the frontend sends BuildKit stays within the size of
//! one gRPC message BuildKit takes.
//!
//! BuildKit serves the frontend's LLBBridge with a grpc-go server made with
//! no size options (`frontend/gateway/gateway.go`, `serveLLBBridgeForwarder`,
//! in v0.8 and v0.13 as Docker 20.10 and 26.1 ship them), so each request the
//! frontend sends (a Solve with its definition, the Return with the image
//! config) is received only up to grpc-go's default of 4 MiB. The SBOM
//! travels inside a definition (a file the attestation's state makes), so it
//! counts too.

use std::collections::BTreeMap;

use nix_frontend::debug::{self, Facts};
use nix_frontend::engine::fake::Kind;
use prost::Message;

/// grpc-go's default largest received message.
const GRPC_LIMIT: usize = 4 << 20;
const PATHS: usize = 5_000;

/// A store path name of `i`: 32 characters of nix's base-32 alphabet.
fn store_path(i: usize, name: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let mut n = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let hash: String = (0..32)
        .map(|_| {
            let c = ALPHABET[(n % 32) as usize] as char;
            n = n.rotate_left(5) ^ 0x5851_f42d_4c95_7f2d;
            c
        })
        .collect();
    format!("/nix/store/{hash}-{name}")
}

/// A nix step report of `PATHS` store paths: the app refers to the first
/// 50, each other path to up to 4 of those after it (a closure as deep and
/// as wide as a large nixpkgs one), every one with a license.
fn report() -> Vec<u8> {
    let names: Vec<String> = (0..PATHS)
        .map(|i| match i {
            0 => store_path(0, "app"),
            i => store_path(i, &format!("lib{i}-1.{}.{}", i % 7, i % 13)),
        })
        .collect();
    let mut info = serde_json::Map::new();
    for (i, path) in names.iter().enumerate() {
        let refs: Vec<&String> = if i == 0 {
            names[1..=50].iter().collect()
        } else {
            (1..=4)
                .map(|k| i * 4 + k)
                .filter(|&j| j < PATHS)
                .map(|j| &names[j])
                .collect()
        };
        let hash = format!("sha256-{:0<43}=", format!("{i:x}"));
        info.insert(
            path.clone(),
            serde_json::json!({"narSize": 100_000 + i * 37, "narHash": hash, "references": refs}),
        );
    }
    let locks: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| {
            (
                format!("input{i}"),
                serde_json::json!({
                    "locked": {"type": "github", "owner": "acme", "repo": format!("lib{i}"),
                               "rev": format!("{i:0>40}"), "narHash": format!("sha256-{i:0>43}=")},
                    "original": {"type": "github", "owner": "acme", "repo": format!("lib{i}")},
                }),
            )
        })
        .chain([(
            "root".to_owned(),
            serde_json::json!({"inputs": (0..40).map(|i| (format!("input{i}"), format!("input{i}"))).collect::<BTreeMap<_, _>>()}),
        )])
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": 2,
        "outputs": [names[0]],
        "pathInfo": info,
        "meta": {"mainProgram": "app", "license": [{"spdxId": "MIT"}, {"spdxId": "Apache-2.0"}]},
        "bin": {"type": "directory", "entries": {"app": {"type": "regular", "executable": true}}},
        "flake": {"description": "a large closure", "locks": {"root": "root", "version": 7, "nodes": locks}},
    }))
    .expect("JSON")
}

#[test]
fn a_large_closure_fits_in_one_grpc_message() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("tests/fixtures/layered/Dockerfile")).unwrap();
    let report = report();
    for mergeop in [false, true] {
        let req = debug::Request {
            filename: "Dockerfile".into(),
            text: spec.clone(),
            options: BTreeMap::from([("attest:sbom".to_owned(), "type=sbom".to_owned())]),
            mergeop,
            facts: Facts {
                report: Some(report.clone()),
                ..Facts::default()
            },
        };
        let out = debug::run(&req).unwrap_or_else(|e| panic!("{e}"));
        let image = out.image.as_ref().expect("an image plan");
        let paths: usize = image.store_layers().map(Vec::len).sum();
        assert_eq!(paths, PATHS, "every path is in a layer");
        let mut sbom = 0;
        for (kind, def) in &out.solved {
            let size = def.encoded_len();
            println!("mergeop={mergeop} {kind:?}: {size} bytes");
            if *kind == Kind::Attestation {
                sbom = size;
                continue;
            }
            assert!(
                size < GRPC_LIMIT / 2,
                "{kind:?} definition of {size} bytes is near BuildKit's {GRPC_LIMIT}"
            );
        }
        // Sent in the definition, the document alone is over the limit:
        // why BuildKit makes it (below).
        assert!(sbom > GRPC_LIMIT, "the SBOM of {PATHS} paths: {sbom} bytes");
        // The frontend started from its image (`source`): BuildKit makes the
        // document, and the definition is small whatever the closure.
        let mut from_image = req.clone();
        from_image
            .options
            .insert("source".into(), "local/nix-frontend:dev".into());
        let built = debug::run(&from_image).unwrap_or_else(|e| panic!("{e}"));
        let (_, def) = built
            .solved
            .iter()
            .find(|(k, _)| *k == Kind::Attestation)
            .expect("an attestation");
        println!(
            "mergeop={mergeop} SBOM made in BuildKit: {} bytes",
            def.encoded_len()
        );
        assert!(def.encoded_len() < 64 << 10);
        let config = serde_json::to_vec(&image.config).expect("JSON");
        println!("mergeop={mergeop} config: {} bytes", config.len());
        assert!(config.len() < 64 << 10, "config of {} bytes", config.len());
    }
}

/// What BuildKit runs for a build with `--sbom` (`nix-frontend sbom` in the
/// frontend's image) writes the document the frontend would have sent: the
/// golden case's SBOM, byte for byte.
#[test]
fn the_sbom_tool_writes_the_golden_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("nixfe-sbom-tool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("sbom.spdx.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_nix-frontend"))
        .args(["sbom", "--report"])
        .arg(root.join("tests/golden/layered-sbom/report.json"))
        .arg("--out")
        .arg(&out)
        .args([
            "--platform",
            "linux/amd64",
            "--supplier",
            "Organization: acme/layered",
        ])
        .args(["--epoch", "1700000000"])
        .status()
        .expect("runs");
    assert!(status.success());
    let written = std::fs::read_to_string(&out).unwrap();
    let snap = std::fs::read_to_string(
        root.join("tests/snapshots/golden__sbom@layered-sbom__case.toml.snap"),
    )
    .unwrap();
    // The snapshot is the document after insta's header.
    let golden = snap.splitn(3, "---\n").nth(2).expect("a snapshot body");
    assert_eq!(written.trim_end(), golden.trim_end());
    std::fs::remove_dir_all(&dir).ok();
}
