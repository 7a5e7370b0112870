//! The pipeline against the fake engine: the paths that only a real daemon
//! used to reach (a pruned store, an unreadable base, lint findings), and
//! what every build must send.

use std::collections::BTreeMap;

use super::*;
use crate::engine::fake::{Failing, Fake, Kind};
use crate::engine::{Caps, Refs};
use crate::llb::{dump, op_named};

const SPEC: &str = "# syntax=local/nix-frontend:dev\nbuilder = \"local/nix:test\"\n";

fn caps() -> Caps {
    Caps {
        gateway: ["gateway.warnings".to_owned()].into(),
        llb: [
            "source.image",
            "source.local",
            "exec.mount.cache",
            "exec.mount.cache.sharing",
            "exec.mount.selector",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        // An amd64 engine that runs arm64 through an emulator.
        worker_platforms: vec!["linux/amd64".to_owned(), "linux/arm64".to_owned()],
    }
}

fn report(outputs: &[&str], paths: &[(&str, u64, &[&str])], bin: &[&str]) -> Vec<u8> {
    let info: serde_json::Map<String, serde_json::Value> = paths
        .iter()
        .map(|(p, size, refs)| {
            (
                (*p).to_owned(),
                serde_json::json!({"narSize": size, "narHash": "sha256-x", "references": refs}),
            )
        })
        .collect();
    let entries: serde_json::Map<String, serde_json::Value> = bin
        .iter()
        .map(|b| ((*b).to_owned(), serde_json::json!({"type": "regular"})))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "version": 2,
        "outputs": outputs,
        "pathInfo": info,
        "meta": {"mainProgram": null, "license": {"spdxId": "MIT"}},
        "bin": {"type": "directory", "entries": entries},
        "flake": {"description": "test app", "locks": {"root": "root", "nodes": {"root": {}}}},
    }))
    .unwrap()
}

const APP: &str = "/nix/store/aaaa-app";
const LIB: &str = "/nix/store/bbbb-lib";

fn fake(spec: &str) -> Fake {
    Fake {
        client_files: BTreeMap::from([("Dockerfile".to_owned(), spec.as_bytes().to_vec())]),
        report: report(
            &[APP],
            &[(APP, 1 << 20, &[LIB]), (LIB, 1 << 20, &[])],
            &["app"],
        ),
        ..Default::default()
    }
}

/// The fake's report, as JSON, changed by `edit`.
fn edit_report(f: &mut Fake, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut r: serde_json::Value = serde_json::from_slice(&f.report).unwrap();
    edit(&mut r);
    f.report = serde_json::to_vec(&r).unwrap();
}

fn run_with(fake: &Fake, options: &[(&str, &str)], caps: &Caps) -> Outcome {
    let vars = options
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (format!("BUILDKIT_FRONTEND_OPT_{i}"), format!("{k}={v}")))
        .chain([("BUILDKIT_SESSION_ID".to_owned(), "s".to_owned())]);
    let mut opts = Options::from_vars(vars);
    opts.or_workers(&caps.worker_platforms);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(super::run(fake, &opts, caps))
}

fn build(fake: &Fake, options: &[(&str, &str)]) -> Outcome {
    run_with(fake, options, &caps())
}

fn exit_75(vertex: Option<String>, argv0: &str) -> crate::engine::EngineError {
    crate::engine::EngineError {
        code: 2,
        message: format!(
            "process \"/bin/sh -c set -eu {argv0} 0 /nix/store/x\" did not complete successfully: exit code: 75"
        ),
        vertex,
        details: Vec::new(),
    }
}

#[test]
fn a_spec_in_a_subdirectory_is_left_out_by_its_path() {
    // `-f sub/app.toml`: BuildKit names the spec `app.toml`, read from its
    // own local; the context has an unrelated root `app.toml`.
    let mut f = fake(SPEC);
    f.spec_files = BTreeMap::from([("app.toml".to_owned(), SPEC.as_bytes().to_vec())]);
    f.client_files = BTreeMap::from([
        ("app.toml".to_owned(), b"not the spec".to_vec()),
        ("sub/app.toml".to_owned(), SPEC.as_bytes().to_vec()),
        ("sub/other/app.toml".to_owned(), b"another file".to_vec()),
    ]);
    let out = build(&f, &[("filename", "app.toml")]);
    assert!(out.result.is_ok(), "{}", message(&out));
    let exclude = &out.plan.unwrap().nix.context.exclude;
    assert!(exclude.contains(&"sub/app.toml".to_owned()), "{exclude:?}");
    assert!(!exclude.contains(&"app.toml".to_owned()), "{exclude:?}");
    assert!(
        !exclude.contains(&"sub/other/app.toml".to_owned()),
        "{exclude:?}"
    );
    // The root file of that name is the spec: left out by its name, and
    // nothing more is looked up.
    let mut f = fake(SPEC);
    f.spec_files = BTreeMap::from([("app.toml".to_owned(), SPEC.as_bytes().to_vec())]);
    f.client_files = BTreeMap::from([("app.toml".to_owned(), SPEC.as_bytes().to_vec())]);
    let out = build(&f, &[("filename", "app.toml")]);
    assert!(
        out.plan
            .unwrap()
            .nix
            .context
            .exclude
            .contains(&"app.toml".to_owned())
    );
    assert!(f.log().dirs.is_empty());
}

#[test]
fn a_failed_look_for_the_spec_in_the_context_names_the_spec() {
    // The third local read: the spec, its ignore file, then the spec's
    // name at the context's root.
    let mut f = fake(SPEC);
    f.failing.push(Failing {
        kind: Kind::Spec,
        nth: 2,
        error: Box::new(|_| crate::engine::EngineError::new(2, "session closed")),
    });
    let out = build(&f, &[]);
    let m = message(&out);
    assert!(
        m.contains("Dockerfile")
            && m.contains("looking for it in the build context: session closed"),
        "{m}"
    );
}

#[test]
fn a_build_returns_the_image_and_its_config() {
    let f = fake(SPEC);
    let out = build(&f, &[]);
    let r = out.result.unwrap();
    assert_eq!(r.refs, Refs::Single("image-0".into()));
    let config: serde_json::Value =
        serde_json::from_slice(&r.metadata["containerimage.config"]).unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], format!("{APP}/bin/app"));
    // The round trips of a build: the spec, then the ignore files beside
    // it and in the context side by side, the builder's config, the spec's
    // name at the context's root (where the spec is in the context), the
    // nix step and its report, the image. Nothing is looked up inside the
    // builder (the store seed makes its own `/nix`).
    let log = f.log();
    let kinds: Vec<Kind> = log.solved.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Spec,
            Kind::Spec,
            Kind::Dockerignore,
            Kind::Spec,
            Kind::Nix,
            Kind::Image
        ]
    );
    assert_eq!(log.resolves.len(), 1);
    assert!(log.stats.is_empty(), "{:?}", log.stats);
    // One report, read once.
    let nix_reads: Vec<_> = log
        .reads
        .iter()
        .filter(|(r, _)| r.starts_with("nix-"))
        .collect();
    assert_eq!(nix_reads.len(), 1, "{:?}", log.reads);
}

#[test]
fn cache_imports_go_with_every_solve() {
    let f = fake(SPEC);
    let imports = r#"[{"Type":"local","Attrs":{"src":"/c","digest":"sha256:1"}}]"#;
    build(&f, &[("cache-imports", imports)]).result.unwrap();
    assert!(f.log().solved.len() >= 4);
    for s in &f.log().solved {
        assert_eq!(
            s.request.cache_imports.len(),
            1,
            "{:?} without imports",
            s.kind
        );
        assert_eq!(s.request.cache_imports[0].attrs["src"], "/c");
    }
}

#[test]
fn the_store_pruned_under_a_cached_nix_step_reruns_nix() {
    let mut f = fake(SPEC);
    f.failing.push(Failing {
        kind: Kind::Image,
        nth: 0,
        error: Box::new(|def| exit_75(op_named(def, "[image] layer 1/"), "nix-frontend-layer")),
    });
    let out = build(&f, &[]);
    assert!(out.result.is_ok(), "{:?}", out.result.err());
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 2, "nix ran again");
    // The rerun is a new vertex, not one that ignores the cache (BuildKit
    // would prune the store cache of such an op).
    let first = op_named(&nix[0], "[nix] build .").unwrap();
    let rerun = op_named(&nix[1], "[nix] build .").unwrap();
    assert_ne!(first, rerun, "the rerun is a new vertex");
    assert!(!nix[1].metadata.get(&rerun).is_some_and(|m| m.ignore_cache));
    assert!(
        dump(&nix[1]).contains("NIX_FRONTEND_RUN="),
        "{}",
        dump(&nix[1])
    );
    let images = f.solved_of(Kind::Image);
    assert_eq!(images.len(), 2);
    assert!(
        dump(&images[1]).contains("NIX_FRONTEND_ATTEMPT=1"),
        "new layer vertices"
    );
    assert!(
        f.log()
            .warnings
            .iter()
            .any(|w| w.short.starts_with("StoreCachePruned")),
        "the user is told"
    );
}

#[test]
fn layer_ops_that_still_miss_the_paths_fail_with_a_hint() {
    let mut f = fake(SPEC);
    for nth in [0, 1] {
        f.failing.push(Failing {
            kind: Kind::Image,
            nth,
            error: Box::new(|def| exit_75(op_named(def, "[image] layer 1/"), "nix-frontend-layer")),
        });
    }
    let m = message(&build(&f, &[]));
    assert!(
        m.contains("the image's layer ops do not see the /nix store cache the nix step built into"),
        "{m}"
    );
    assert!(
        m.contains("\nhint: the /nix store cache was emptied while this build ran"),
        "{m}"
    );
    assert_eq!(f.solved_of(Kind::Image).len(), 2, "one retry");
}

#[test]
fn a_run_command_that_exits_75_is_not_a_pruned_store() {
    let spec = format!("{SPEC}[image]\nbase = \"debian:test\"\nrun = [\"exit 75\"]\n");
    let mut f = fake(&spec);
    f.failing.push(Failing {
        kind: Kind::Image,
        nth: 0,
        error: Box::new(|def| exit_75(op_named(def, "[image] run"), "exit 75")),
    });
    let out = build(&f, &[]);
    let err = out.result.unwrap_err();
    assert!(err.message.contains("exit code: 75"), "{}", err.message);
    assert_eq!(f.solved_of(Kind::Nix).len(), 1, "no rerun");
    // Without a vertex detail, the argv tells: not a layer op either.
    let mut f = fake(&spec);
    f.failing.push(Failing {
        kind: Kind::Image,
        nth: 0,
        error: Box::new(|_| exit_75(None, "exit 75")),
    });
    assert!(build(&f, &[]).result.is_err());
    assert_eq!(f.solved_of(Kind::Nix).len(), 1);
}

#[test]
fn an_unreadable_base_passwd_fails_the_build() {
    let spec = format!("{SPEC}[image]\nbase = \"debian:test\"\nuser = \"app\"\n");
    let mut f = fake(&spec);
    f.base_files.insert(
        "etc/passwd".into(),
        Err(crate::engine::EngineError::new(
            2,
            "open /etc/passwd: permission denied",
        )),
    );
    let err = build(&f, &[]).result.unwrap_err();
    assert!(
        err.message.starts_with(
            "Dockerfile line 5: `image.user`: cannot read /etc/passwd of the base: open /etc/passwd: permission denied"
        ),
        "{}",
        err.message
    );
    assert!(err.message.contains("\nhint: "), "{}", err.message);
    assert!(f.solved_of(Kind::Image).is_empty(), "no half-written image");
}

#[test]
fn a_base_without_passwd_gets_root_and_the_user() {
    let spec = format!("{SPEC}[image]\nbase = \"debian:test\"\nuser = \"app\"\n");
    let f = fake(&spec);
    let out = build(&f, &[]);
    assert!(out.result.is_ok(), "{:?}", out.result.err());
    let users = out.image.unwrap().users().cloned().unwrap();
    assert_eq!(
        users.passwd,
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    );
    // The base has the user: nothing written.
    let mut f = fake(&spec);
    f.base_files.insert(
        "etc/passwd".into(),
        Ok(b"root:x:0:0::/root:/bin/sh\napp:x:1500:1500::/home/app:/bin/sh\n".to_vec()),
    );
    let out = build(&f, &[]);
    assert!(out.image.unwrap().users().is_none());
}

#[test]
fn lint_findings_are_warnings_at_their_lines() {
    let spec = format!("{SPEC}[image]\nuser = \"admin:0\"\n");
    let f = fake(&spec);
    build(&f, &[]).result.unwrap();
    assert_eq!(f.log().warnings.len(), 1, "{:?}", f.log().warnings);
    let log = f.log();
    let w = &log.warnings[0];
    assert!(w.short.starts_with("UserIsRoot: "), "{}", w.short);
    assert_eq!((w.lines[0].start, w.lines[0].end), (4, 4));
    assert_eq!(
        w.vertex,
        op_named(&f.solved_of(Kind::Spec)[0], "[internal]").unwrap()
    );
    // Without the Warn call (BuildKit 0.8) the build still succeeds.
    let mut old = caps();
    old.gateway.clear();
    let f = fake(&spec);
    run_with(&f, &[], &old).result.unwrap();
    assert!(f.log().warnings.is_empty());
}

#[test]
fn a_missing_cap_fails_before_any_work() {
    let mut less = caps();
    less.llb.remove("exec.mount.cache");
    let f = fake(SPEC);
    let err = run_with(&f, &[], &less).result.unwrap_err();
    assert!(
        err.message
            .contains("lacks the capability `exec.mount.cache`"),
        "{}",
        err.message
    );
    assert!(f.solved_of(Kind::Nix).is_empty());
}

#[test]
fn options_reach_the_build() {
    let spec = format!("{SPEC}[image]\nbase = \"debian:test\"\n");
    let f = fake(&spec);
    build(
        &f,
        &[
            ("no-cache", ""),
            ("image-resolve-mode", "pull"),
            ("label:org.example.x", "1"),
        ],
    )
    .result
    .unwrap();
    let image = &f.solved_of(Kind::Image)[0];
    // The ops that mount the store cache run again by their environment:
    // BuildKit would prune the store of an op that ignores the cache.
    for name in ["[nix] build .", "[image] layer 1/"] {
        let op = op_named(image, name).unwrap();
        assert!(
            !image.metadata.get(&op).is_some_and(|m| m.ignore_cache),
            "{name} keeps the cache"
        );
    }
    let text = dump(image);
    assert_eq!(
        text.matches("NIX_FRONTEND_RUN=").count(),
        text.matches("mount /nix cache ").count(),
        "{text}"
    );
    assert!(f.log().resolves.iter().all(|r| r.mode == "pull"));
    assert_eq!(f.log().resolves.len(), 2, "builder and base");
}

#[test]
fn check_of_one_target_ignores_the_args_of_another() {
    let spec = format!("{SPEC}[targets.agent]\nflake = \".#${{AGENT}}\"\n");
    let f = fake(&spec);
    let out = build(&f, &[("requestid", "frontend.lint")]);
    let r = out.result.unwrap();
    assert_eq!(r.metadata["result.statuscode"], b"0");
    assert_eq!(
        f.solved_of(Kind::Nix).len(),
        1,
        "the entrypoint check built"
    );
    let f = fake(&spec);
    let r = build(&f, &[("requestid", "frontend.lint"), ("target", "agent")])
        .result
        .unwrap();
    assert_eq!(r.metadata["result.statuscode"], b"1");
    let text = String::from_utf8_lossy(&r.metadata["result.txt"]).into_owned();
    assert!(
        text.contains("UndefinedBuildArg: build arg `AGENT`"),
        "{text}"
    );
}

#[test]
fn an_unknown_request_is_unimplemented() {
    let f = fake(SPEC);
    let err = build(&f, &[("requestid", "frontend.nope")])
        .result
        .unwrap_err();
    assert_eq!(err.code, 12);
    assert_eq!(err.message, "unsupported request frontend.nope");
}

fn with_workers(platforms: &[&str]) -> (String, String) {
    let list: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            let mut parts = p.split('/');
            let os = parts.next().unwrap_or_default();
            let arch = parts.next().unwrap_or_default();
            match parts.next() {
                Some(v) => serde_json::json!({"os": os, "architecture": arch, "variant": v}),
                None => serde_json::json!({"os": os, "architecture": arch}),
            }
        })
        .collect();
    (
        "BUILDKIT_WORKERS".to_owned(),
        serde_json::json!([{"id": "w", "platforms": list}]).to_string(),
    )
}

fn run_env(fake: &Fake, options: &[(&str, &str)], env: &[(String, String)]) -> Outcome {
    let vars = options
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (format!("BUILDKIT_FRONTEND_OPT_{i}"), format!("{k}={v}")))
        .chain(env.iter().cloned());
    let mut opts = Options::from_vars(vars);
    let caps = caps();
    opts.or_workers(&caps.worker_platforms);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(super::run(fake, &opts, &caps))
}

#[test]
fn the_build_platform_comes_from_the_worker_or_fails() {
    let f = fake(SPEC);
    // Ping's workers stand in for BUILDKIT_WORKERS.
    let arm = Caps {
        worker_platforms: vec!["linux/arm64".to_owned()],
        ..caps()
    };
    let out = run_with(&f, &[], &arm);
    out.result.unwrap();
    assert_eq!(out.plan.unwrap().platform.architecture, "arm64");
    // Neither names one: no guess of linux/amd64.
    let none = Caps {
        worker_platforms: Vec::new(),
        ..caps()
    };
    let err = run_with(&f, &[], &none).result.unwrap_err();
    assert!(
        err.message
            .contains("BuildKit named no platform its worker runs"),
        "{}",
        err.message
    );
}

#[test]
fn several_platforms_give_a_ref_per_platform() {
    let f = fake(SPEC);
    let workers = with_workers(&["linux/amd64", "linux/arm64"]);
    let r = run_env(&f, &[("platform", "linux/amd64,linux/arm64")], &[workers])
        .result
        .unwrap();
    let Refs::Platforms(refs) = &r.refs else {
        panic!("want a map result: {:?}", r.refs);
    };
    assert_eq!(
        refs.keys().collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"]
    );
    let arm: serde_json::Value =
        serde_json::from_slice(&r.metadata["containerimage.config/linux/arm64"]).unwrap();
    assert_eq!(arm["architecture"], "arm64");
    let listed: serde_json::Value = serde_json::from_slice(&r.metadata["refs.platforms"]).unwrap();
    assert_eq!(listed["Platforms"][1]["ID"], "linux/arm64");
    assert_eq!(listed["Platforms"][1]["Platform"]["architecture"], "arm64");
    // One nix step per platform, each for its own system, in its own store.
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 2);
    let texts: Vec<String> = nix.iter().map(dump).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"aarch64-linux\"") && t.contains("/aarch64-linux sharing"))
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"x86_64-linux\"") && t.contains("/x86_64-linux sharing"))
    );
    // The builder is resolved for each platform.
    let platforms: Vec<String> = f
        .log()
        .resolves
        .iter()
        .map(|r| r.platform.to_string())
        .collect();
    assert!(
        platforms.contains(&"linux/arm64".to_owned()),
        "{platforms:?}"
    );
    // One platform asked as multi-platform: a map with one entry.
    let f = fake(SPEC);
    let r = run_env(
        &f,
        &[("platform", "linux/arm64"), ("multi-platform", "true")],
        &[],
    )
    .result
    .unwrap();
    assert!(matches!(r.refs, Refs::Platforms(ref m) if m.len() == 1));
}

#[test]
fn a_platform_the_engine_cannot_run_fails_before_any_work() {
    let f = fake(SPEC);
    let workers = with_workers(&["linux/amd64", "linux/arm64"]);
    let err = run_env(&f, &[("platform", "linux/amd64,linux/s390x")], &[workers])
        .result
        .unwrap_err();
    assert_eq!(
        err.message.lines().next().unwrap(),
        "Dockerfile: `--platform`: this engine cannot run linux/s390x (its worker runs linux/amd64, linux/arm64)"
    );
    assert!(
        err.message.contains("\nhint: register an emulator"),
        "{}",
        err.message
    );
    assert!(f.solved_of(Kind::Nix).is_empty(), "no work");
    assert!(f.log().resolves.is_empty(), "no work");
}

#[test]
fn platform_build_args_expand_per_platform() {
    let spec = format!(
        "{SPEC}[image]\nenv = {{ ARCH = \"${{TARGETARCH}}\", ON = \"${{BUILDPLATFORM}}\" }}\n"
    );
    let f = fake(&spec);
    let workers = with_workers(&["linux/amd64", "linux/arm64"]);
    let r = run_env(&f, &[("platform", "linux/amd64,linux/arm64")], &[workers])
        .result
        .unwrap();
    let env = |id: &str| -> Vec<String> {
        let c: serde_json::Value =
            serde_json::from_slice(&r.metadata[&format!("containerimage.config/{id}")]).unwrap();
        c["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(env("linux/arm64").contains(&"ARCH=arm64".to_owned()));
    assert!(env("linux/amd64").contains(&"ARCH=amd64".to_owned()));
    assert!(env("linux/arm64").contains(&"ON=linux/amd64".to_owned()));
    assert!(
        f.log().warnings.is_empty(),
        "TARGETARCH is defined: {:?}",
        f.log().warnings
    );
}

fn with_attestations() -> Caps {
    let mut c = caps();
    c.gateway.insert("reference.attestations".into());
    c
}

#[test]
fn an_sbom_is_an_attestation_per_platform() {
    let f = fake(SPEC);
    let r = run_with(&f, &[("attest:sbom", "type=sbom")], &with_attestations())
        .result
        .unwrap();
    let a = &r.attestations["linux/amd64"][0];
    assert_eq!(a.predicate_type, "https://spdx.dev/Document");
    assert_eq!(a.path, "/sbom.spdx.json");
    assert_eq!(a.r#ref, "attestation-0");
    // Keyed by platform id, so refs.platforms comes with the one ref.
    assert!(r.metadata.contains_key("refs.platforms"));
    let doc = &f.solved_of(Kind::Attestation)[0];
    assert!(
        dump(doc).contains("mkfile /sbom.spdx.json mode 644"),
        "{}",
        dump(doc)
    );
    // Without the option, or with a scanner named, none of ours.
    for opts in [&[][..], &[("attest:sbom", "type=sbom,generator=img")][..]] {
        let f = fake(SPEC);
        let r = run_with(&f, opts, &with_attestations()).result.unwrap();
        assert!(r.attestations.is_empty());
        assert!(f.solved_of(Kind::Attestation).is_empty());
    }
}

#[test]
fn an_sbom_on_an_engine_without_attestations_is_a_warning() {
    let f = fake(SPEC);
    let r = build(&f, &[("attest:sbom", "type=sbom")]).result.unwrap();
    assert!(r.attestations.is_empty());
    assert!(
        f.log()
            .warnings
            .iter()
            .any(|w| w.short.starts_with("NoSBOM"))
    );
}

const GIT_URL: &str = "https://example.org/team/app.git#main:sub";
const REV: &str = "0123456789abcdef0123456789abcdef01234567";

fn remote_caps(patterns: bool) -> Caps {
    let mut c = caps();
    for cap in [
        "source.git",
        "source.git.keepgitdir",
        "source.git.fullurl",
        "source.http",
    ] {
        c.llb.insert(cap.to_owned());
    }
    if patterns {
        c.llb.insert("file.copy.includeexcludepatterns".to_owned());
    }
    c
}

/// A git context: the spec in `sub/`, the commit in `.git/HEAD`.
fn git_fake(spec: &str) -> Fake {
    let mut f = fake(spec);
    f.client_files = BTreeMap::from([
        ("sub/Dockerfile".to_owned(), spec.as_bytes().to_vec()),
        (".git/HEAD".to_owned(), format!("{REV}\n").into_bytes()),
        (
            "sub/flake.lock".to_owned(),
            br#"{"nodes":{"root":{"inputs":{"greeting":"g"}}},"root":"root","version":7}"#.to_vec(),
        ),
    ]);
    f
}

/// The nix script's `--override-input` arguments.
fn override_args(o: &Outcome) -> Vec<String> {
    assert!(o.result.is_ok(), "{}", message(o));
    o.plan.as_ref().unwrap().nix.script.overrides.clone()
}

fn message(o: &Outcome) -> String {
    o.result
        .as_ref()
        .err()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

#[test]
fn a_git_context_gives_the_flake_its_commit() {
    let f = git_fake(SPEC);
    let o = run_with(&f, &[("context", GIT_URL)], &remote_caps(true));
    assert!(o.result.is_ok(), "{}", message(&o));
    let plan = o.plan.unwrap();
    assert_eq!(plan.nix.installable, format!("path:/src?rev={REV}#default"));
    // The spec and the commit were read from the fetched tree.
    let reads: Vec<String> = f.log().reads.iter().map(|(_, p)| p.clone()).collect();
    assert!(reads.contains(&"sub/Dockerfile".to_owned()), "{reads:?}");
    assert!(reads.contains(&".git/HEAD".to_owned()), "{reads:?}");
    // Every file came from one solve of the tree.
    assert_eq!(f.solved_of(Kind::Context).len(), 1);
    // Nix sees the subdirectory, without the spec.
    let nix = dump(f.solved_of(Kind::Nix).last().unwrap());
    assert!(
        nix.contains("copy /sub -> / (from 0, time -1, exclude [\"Dockerfile\", \".git\"])"),
        "{nix}"
    );
}

#[test]
fn a_fetch_failure_names_the_context_and_says_what_to_do() {
    let mut f = git_fake(SPEC);
    f.failing.push(Failing {
        kind: Kind::Context,
        nth: 0,
        error: Box::new(|_| {
            crate::engine::EngineError::new(2, "failed to fetch remote https://example.org/team/app.git: git error: exit status 128: fatal: could not read Username")
        }),
    });
    let o = run_with(&f, &[("context", GIT_URL)], &remote_caps(true));
    let m = message(&o);
    assert!(
        m.contains(
            "build context https://example.org/team/app.git#main:sub: failed to fetch remote"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "hint: a private repository needs a token: docker build --secret id=GIT_AUTH_TOKEN"
        ),
        "{m}"
    );
}

#[test]
fn a_subdir_without_the_spec_says_where_it_looked() {
    let f = git_fake(SPEC);
    let o = run_with(
        &f,
        &[("context", "https://example.org/team/app.git#main:nodir")],
        &remote_caps(true),
    );
    let m = message(&o);
    assert!(
        m.contains(
            "build context https://example.org/team/app.git#main:nodir: no nodir/Dockerfile in it"
        ),
        "{m}"
    );
    // With the spec from the client, the directory itself is checked.
    let mut f = git_fake(SPEC);
    f.client_files
        .insert("Dockerfile".into(), SPEC.as_bytes().to_vec());
    let o = run_with(
        &f,
        &[
            ("context", "https://example.org/team/app.git#main:nodir"),
            ("dockerfilekey", "dockerfile"),
        ],
        &remote_caps(true),
    );
    let m = message(&o);
    assert!(
        m.contains(
            "build context https://example.org/team/app.git#main:nodir: no directory nodir in it"
        ),
        "{m}"
    );
    assert!(m.contains("\nhint: "), "{m}");
}

#[test]
fn a_checksum_that_is_not_the_commit_fails() {
    let f = git_fake(SPEC);
    let url = "https://example.org/team/app.git?ref=main&subdir=sub&checksum=ffff";
    let m = message(&run_with(&f, &[("context", url)], &remote_caps(true)));
    assert!(
        m.contains(&format!("the ref is commit {REV}, not ffff")),
        "{m}"
    );
}

#[test]
fn a_checksum_fails_closed() {
    // The commit cannot be read: the checksum cannot be checked.
    let mut f = git_fake(SPEC);
    f.client_files.remove(".git/HEAD");
    let url = "https://example.org/team/app.git?ref=main&subdir=sub&checksum=0123";
    let m = message(&run_with(&f, &[("context", url)], &remote_caps(true)));
    assert!(
        m.contains("the commit of the checkout cannot be read, so checksum 0123 cannot be checked"),
        "{m}"
    );
    // A SHA-256 repository's commit is a commit.
    let rev256 = "ab".repeat(32);
    let mut f = git_fake(SPEC);
    f.client_files
        .insert(".git/HEAD".into(), format!("{rev256}\n").into_bytes());
    let url = format!("https://example.org/team/app.git?ref=main&subdir=sub&checksum={rev256}");
    let o = run_with(&f, &[("context", &url)], &remote_caps(true));
    assert!(o.result.is_ok(), "{}", message(&o));
    assert!(
        o.plan
            .unwrap()
            .nix
            .installable
            .contains(&format!("rev={rev256}"))
    );
    // BuildKit checks a whole commit id too, where it can.
    let source = |caps: &Caps| {
        let f = git_fake(SPEC);
        let url = format!("https://example.org/team/app.git?ref=main&subdir=sub&checksum={REV}");
        let o = run_with(&f, &[("context", &url)], caps);
        assert!(o.result.is_ok(), "{}", message(&o));
        dump(f.solved_of(Kind::Nix).last().unwrap())
    };
    assert!(!source(&remote_caps(true)).contains("git.checksum"));
    let mut caps = remote_caps(true);
    caps.llb.insert("source.git.checksum".into());
    assert!(source(&caps).contains(&format!("git.checksum={REV}")));
}

#[test]
fn without_copy_patterns_src_is_refused_and_plain_paths_are_removed() {
    let f = git_fake(&format!("{SPEC}src = [\"flake.nix\"]\n"));
    let m = message(&run_with(&f, &[("context", GIT_URL)], &remote_caps(false)));
    assert!(
        m.contains("this BuildKit cannot filter a fetched context by `src`"),
        "{m}"
    );
    let mut f = git_fake(SPEC);
    f.client_files
        .insert("Dockerfile".into(), SPEC.as_bytes().to_vec());
    let o = run_with(
        &f,
        &[("context", "https://example.org/team/app.git#main")],
        &remote_caps(false),
    );
    assert!(o.result.is_ok(), "{}", message(&o));
    let nix = dump(f.solved_of(Kind::Nix).last().unwrap());
    assert!(
        nix.contains("rm /Dockerfile") && nix.contains("rm /.git"),
        "{nix}"
    );
}

#[test]
fn a_named_context_overrides_the_flake_input_of_its_name() {
    let f = git_fake(SPEC);
    let o = run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "local:greeting")],
        &remote_caps(true),
    );
    assert_eq!(
        override_args(&o),
        [
            "--override-input",
            "greeting",
            "path:/nix-frontend/inputs/0"
        ]
    );
}

#[test]
fn a_named_context_that_names_nothing_is_an_error() {
    let f = git_fake(SPEC);
    let o = run_with(
        &f,
        &[("context", GIT_URL), ("context:nosuch", "local:nosuch")],
        &remote_caps(true),
    );
    let m = message(&o);
    assert!(
        m.contains("named context nosuch: is no input of the flake (its flake.lock has greeting)"),
        "{m}"
    );
    assert!(
        m.contains("\nhint: name the context after a flake input"),
        "{m}"
    );
}

#[test]
fn a_spec_key_maps_a_context_to_a_nested_input() {
    let f = fake(&format!(
        "{SPEC}[nix.override-inputs]\n\"lib/nixpkgs\" = \"pkgs\"\n"
    ));
    let o = build(&f, &[("context:pkgs", "local:pkgs")]);
    assert_eq!(
        override_args(&o),
        [
            "--override-input",
            "lib/nixpkgs",
            "path:/nix-frontend/inputs/0"
        ]
    );
}

#[test]
fn a_named_context_replaces_the_builder_image() {
    let f = fake(SPEC);
    let o = build(
        &f,
        &[("context:local/nix:test", "docker-image://example.org/nix:2")],
    );
    assert!(o.result.is_ok(), "{}", message(&o));
    let resolved: Vec<String> = f
        .log()
        .resolves
        .iter()
        .map(|r| r.reference.clone())
        .collect();
    assert_eq!(resolved, ["example.org/nix:2"]);
    let f = fake(SPEC);
    let m = message(&build(&f, &[("context:local/nix:test", "local:dir")]));
    assert!(
        m.contains("named context local/nix:test: replaces an image"),
        "{m}"
    );
}

fn with_inputs() -> Caps {
    let mut c = remote_caps(true);
    c.gateway.insert("frontend.inputs".to_owned());
    c
}

/// What a client built for this build: here, one file of a local.
fn client_input() -> Definition {
    llb::context_file("dep", "session-1", "greeting.txt").definition
}

#[test]
fn an_input_context_overrides_a_flake_input_with_the_clients_definition() {
    let mut f = git_fake(SPEC);
    f.inputs = BTreeMap::from([("dep".to_owned(), client_input())]);
    let o = run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "input:dep")],
        &with_inputs(),
    );
    assert_eq!(
        override_args(&o),
        [
            "--override-input",
            "greeting",
            "path:/nix-frontend/inputs/0"
        ]
    );
    assert_eq!(f.log().inputs_calls, 1);
    // The nix step's definition holds the input's ops as the client made
    // them (all but its terminal), and copies from the input's result.
    let input = client_input();
    let nix = &f.solved_of(Kind::Nix)[0];
    let in_nix = llb::digests(nix);
    let theirs = llb::digests(&input);
    for d in &theirs[..theirs.len() - 1] {
        assert!(
            in_nix.contains(d),
            "{d} is not in the nix step's definition"
        );
    }
    assert!(!in_nix.contains(&theirs[theirs.len() - 1]));
    let load = op_named(nix, "[context] load greeting").expect("the input's copy");
    let at = in_nix.iter().position(|d| *d == load).unwrap();
    let copy = <crate::proto::llb::Op as prost::Message>::decode(nix.def[at].as_slice()).unwrap();
    let result =
        <crate::proto::llb::Op as prost::Message>::decode(input.def.last().unwrap().as_slice())
            .unwrap()
            .inputs[0]
            .clone();
    assert_eq!(copy.inputs, [result]);
}

#[test]
fn an_input_the_client_did_not_send_is_an_error() {
    let mut f = git_fake(SPEC);
    f.inputs = BTreeMap::from([("other".to_owned(), client_input())]);
    let m = message(&run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "input:dep")],
        &with_inputs(),
    ));
    assert!(
        m.contains("named context greeting: names input \"dep\", which the client did not send (it sent other)"),
        "{m}"
    );
    assert!(m.contains("\nhint: with bake, name a target"), "{m}");
}

#[test]
fn input_contexts_need_the_inputs_cap() {
    let f = git_fake(SPEC);
    let m = message(&run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "input:dep")],
        &remote_caps(true),
    ));
    assert!(m.contains("lacks the capability `frontend.inputs`"), "{m}");
    assert_eq!(f.log().inputs_calls, 0);
}

#[test]
fn an_oci_layout_context_replaces_the_builder_from_the_clients_store() {
    let f = fake(SPEC);
    let mut c = caps();
    c.llb.insert("source.ocilayout".to_owned());
    let o = run_with(
        &f,
        &[("context:local/nix:test", "oci-layout://store1@sha256:abc")],
        &c,
    );
    assert!(o.result.is_ok(), "{}", message(&o));
    let resolve = f.log().resolves[0].clone();
    assert_eq!(resolve.reference, "docker.io/local/nix:test@sha256:abc");
    assert_eq!(
        resolve.oci,
        Some(crate::llb::OciStore {
            session: "s".into(),
            store: "store1".into()
        })
    );
    let nix = &f.solved_of(Kind::Nix)[0];
    let source = nix
        .def
        .iter()
        .filter_map(|b| <crate::proto::llb::Op as prost::Message>::decode(b.as_slice()).ok())
        .find_map(|op| match op.op {
            Some(crate::proto::llb::op::Kind::Source(s))
                if s.identifier.starts_with("oci-layout://") =>
            {
                Some(s)
            }
            _ => None,
        })
        .expect("an oci-layout source");
    assert_eq!(
        source.identifier,
        "oci-layout://docker.io/local/nix:test@sha256:abc"
    );
    assert_eq!(
        source.attrs,
        BTreeMap::from([
            ("oci.session".to_owned(), "s".to_owned()),
            ("oci.store".to_owned(), "store1".to_owned())
        ])
    );
    // Without the cap, one line says so.
    let f = fake(SPEC);
    let m = message(&build(
        &f,
        &[("context:local/nix:test", "oci-layout://store1@sha256:abc")],
    ));
    assert!(m.contains("lacks the capability `source.ocilayout`"), "{m}");
}

#[test]
fn an_input_context_replaces_the_builder_with_its_config() {
    let mut f = fake(SPEC);
    f.inputs = BTreeMap::from([("nixb".to_owned(), client_input())]);
    let config = br#"{"config":{"Env":["PATH=/opt/nix/bin:/bin","FROM_INPUT=1"]}}"#;
    let metadata = serde_json::json!({
        "containerimage.config": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, config),
    })
    .to_string();
    let mut c = caps();
    c.gateway.insert("frontend.inputs".to_owned());
    let o = run_with(
        &f,
        &[
            ("context:local/nix:test", "input:nixb"),
            ("input-metadata:nixb", &metadata),
        ],
        &c,
    );
    assert!(o.result.is_ok(), "{}", message(&o));
    // Nothing is resolved: the image is the client's, with its config.
    assert!(f.log().resolves.is_empty());
    let plan = o.plan.as_ref().unwrap();
    assert_eq!(plan.nix.builder, "input:nixb");
    assert!(
        plan.nix.builder_env.contains(&"FROM_INPUT=1".to_owned()),
        "{:?}",
        plan.nix.builder_env
    );
    let in_nix = llb::digests(&f.solved_of(Kind::Nix)[0]);
    let theirs = llb::digests(&client_input());
    assert!(
        theirs[..theirs.len() - 1]
            .iter()
            .all(|d| in_nix.contains(d)),
        "{}",
        dump(&f.solved_of(Kind::Nix)[0])
    );
    // Bad metadata is one line naming it.
    let f2 = Fake {
        inputs: f.inputs.clone(),
        ..fake(SPEC)
    };
    let m = message(&run_with(
        &f2,
        &[
            ("context:local/nix:test", "input:nixb"),
            ("input-metadata:nixb", "[1]"),
        ],
        &c,
    ));
    assert!(
        m.contains("input-metadata:nixb is not an object of base64 values"),
        "{m}"
    );
}

#[test]
fn bad_client_images_and_inputs_are_one_line_each() {
    let mut c = remote_caps(true);
    c.gateway.insert("frontend.inputs".to_owned());
    c.llb.insert("source.ocilayout".to_owned());
    // An oci-layout value without a digest, for the builder.
    let f = fake(SPEC);
    let m = message(&run_with(
        &f,
        &[("context:local/nix:test", "oci-layout://store1")],
        &c,
    ));
    assert!(
        m.contains("named context local/nix:test: \"oci-layout://store1\" names no image: an oci-layout context is STORE[:TAG]@sha256:DIGEST"),
        "{m}"
    );
    assert!(m.contains("\nhint: buildx names the layout"), "{m}");
    // An input with an empty result, as the builder and as a flake input.
    let mut f = fake(SPEC);
    f.inputs = BTreeMap::from([("nixb".to_owned(), Definition::default())]);
    let m = message(&run_with(
        &f,
        &[("context:local/nix:test", "input:nixb")],
        &c,
    ));
    assert!(
        m.contains("named context local/nix:test: input \"nixb\" is empty"),
        "{m}"
    );
    assert!(
        m.contains("\nhint: give a target that builds an image"),
        "{m}"
    );
    let mut f = git_fake(SPEC);
    f.inputs = BTreeMap::from([("dep".to_owned(), Definition::default())]);
    let m = message(&run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "input:dep")],
        &c,
    ));
    assert!(
        m.contains("named context greeting: input \"dep\" is empty"),
        "{m}"
    );
}

/// A fresh store: the first nix step evaluates the app on a library.
fn evaluated(spec: &str) -> Fake {
    let graph = br#"{"build":[{"drvPath":"/nix/store/d1-app.drv","outputs":{"out":"/nix/store/aaaa-app"}}],
      "derivations":{"/nix/store/d1-app.drv":{"inputDrvs":{"/nix/store/d2-lib.drv":{}},"inputSrcs":["/nix/store/s-main.c"]},
        "/nix/store/d2-lib.drv":{"inputDrvs":{},"inputSrcs":[]}}}"#;
    let facts = br#"{"meta":{"mainProgram":"tool","license":null},"flake":{"description":"evaluated","locks":{"root":"root","nodes":{"root":{}}}}}"#;
    let mut f = fake(spec);
    f.evaluated = Some([graph.to_vec(), facts.to_vec(), b"main.c\n".to_vec()]);
    // The final step knows nothing of the flake: the evaluation tells.
    edit_report(&mut f, |r| {
        r["meta"] = serde_json::Value::Null;
        r["flake"] = serde_json::Value::Null;
        r["bin"]["entries"]["tool"] = serde_json::json!({"type": "regular"});
    });
    f
}

#[test]
fn a_fresh_store_builds_the_graph_as_group_steps() {
    let f = evaluated(SPEC);
    let out = build(&f, &[]);
    let r = out.result.unwrap();
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 2, "evaluation, then the graph");
    let graph = dump(&nix[1]);
    assert!(
        graph.contains("[nix] group 1/1: dependencies (1 derivations)"),
        "{graph}"
    );
    assert!(graph.contains("/nix/store/d2-lib.drv"));
    assert!(
        graph.contains("/nix/store/d1-app.drv^out"),
        "the final step's installable"
    );
    let image = dump(&f.solved_of(Kind::Image)[0]);
    assert!(
        image.contains("on 1 groups"),
        "the layers hold the final step's outputs"
    );
    // The evaluation's facts reach the image: its mainProgram.
    let config: serde_json::Value =
        serde_json::from_slice(&r.metadata["containerimage.config"]).unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], format!("{APP}/bin/tool"));
    // The single-step design, when asked for: no group steps.
    let mut single = fake(SPEC);
    single.evaluated = None;
    let out = build(&single, &[("build-arg:NIX_FRONTEND_GRAPH", "0")]);
    assert!(out.result.is_ok());
    assert_eq!(out.plan.unwrap().nix.script.mode, crate::plan::Mode::Build);
    assert!(!dump(&single.solved_of(Kind::Nix)[0]).contains("[nix] group"));
}

/// The store pruned under a cached single nix step, and the rerun finds
/// the store fresh: it evaluates, and the graph is built on that rerun's
/// evaluation, not on the cached step (which holds a report, no graph).
#[test]
fn a_rerun_that_evaluates_builds_the_graph_on_its_own_evaluation() {
    // The cached step's report names no program (`evaluated`'s is the final
    // step's), so the spec does.
    let mut f = evaluated(&format!("{SPEC}[image]\nentrypoint = [\"bin/tool\"]\n"));
    f.evaluated_at = 1;
    f.failing.push(Failing {
        kind: Kind::Image,
        nth: 0,
        error: Box::new(|def| exit_75(op_named(def, "[image] layer 1/"), "nix-frontend-layer")),
    });
    let out = build(&f, &[]);
    assert!(out.result.is_ok(), "{}", message(&out));
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 3, "the cached step, its rerun, then the graph");
    // The first step's op: its line and details, up to the next op.
    let first_step = |text: &str| {
        let mut lines = text.lines().skip_while(|l| {
            !(l.contains(" exec  \"[nix] build ") && l.contains("(x86_64-linux)\""))
        });
        let head = lines.next().unwrap_or_else(|| panic!("{text}"));
        let rest: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).collect();
        format!("{head}\n{}", rest.join("\n"))
    };
    assert!(!first_step(&dump(&nix[0])).contains("NIX_FRONTEND_RUN="));
    let rerun = first_step(&dump(&nix[1]));
    assert!(rerun.contains("NIX_FRONTEND_RUN="), "{rerun}");
    let graph = dump(&nix[2]);
    assert!(graph.contains("[nix] group 1/1"), "{graph}");
    assert_eq!(
        first_step(&graph),
        rerun,
        "the graph reads the rerun's evaluation"
    );
}

#[test]
fn a_derivation_missing_from_the_store_evaluates_again() {
    let mut f = evaluated(SPEC);
    f.failing.push(Failing {
        kind: Kind::Nix,
        nth: 1,
        error: Box::new(|def| {
            exit_75(
                op_named(def, "[nix] build . (x86_64-linux) on"),
                "nix-frontend-nix",
            )
        }),
    });
    let out = build(&f, &[]);
    assert!(out.result.is_ok(), "{}", message(&out));
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 3);
    assert!(
        dump(&nix[2]).contains("evaluate"),
        "the retry evaluates whatever the store built"
    );
    assert!(
        f.log()
            .warnings
            .iter()
            .any(|w| w.short.starts_with("StoreCacheMissing"))
    );
    // Evaluated once more only: a second miss builds in one step (whose
    // report, unlike the fake's final step's, has the package's facts).
    let mut f = evaluated(&format!("{SPEC}[image]\nentrypoint = [\"bin/tool\"]\n"));
    for nth in [1, 2] {
        f.failing.push(Failing {
            kind: Kind::Nix,
            nth,
            error: Box::new(|_| exit_75(None, "nix-frontend-group")),
        });
    }
    let out = build(&f, &[]);
    assert!(out.result.is_ok(), "{}", message(&out));
    let nix = f.solved_of(Kind::Nix);
    assert_eq!(nix.len(), 4);
    assert!(!dump(&nix[3]).contains("[nix] group"), "one step");
    assert_eq!(out.plan.unwrap().nix.script.mode, crate::plan::Mode::Build);
    assert!(
        f.log()
            .warnings
            .iter()
            .any(|w| w.short.starts_with("StoreCacheUnshared"))
    );
    assert!(!dump(&f.solved_of(Kind::Image)[0]).contains("on 1 groups"));
}

#[test]
fn the_specs_own_dockerignore_wins() {
    let mut f = fake(SPEC);
    f.client_files
        .insert(".dockerignore".into(), b"from-context\n".to_vec());
    let out = build(&f, &[]);
    let exclude = out.plan.unwrap().nix.context.exclude;
    assert_eq!(exclude[0], "from-context", "{exclude:?}");
    // Beside the spec, `<spec>.dockerignore` is read instead, as BuildKit does.
    f.client_files.insert(
        "Dockerfile.dockerignore".into(),
        b"\xef\xbb\xbf./beside/\n".to_vec(),
    );
    let out = build(&f, &[]);
    let exclude = out.plan.unwrap().nix.context.exclude;
    assert_eq!(exclude[0], "beside", "{exclude:?}");
    assert!(!exclude.contains(&"from-context".to_owned()));
}

#[test]
fn run_on_cross_builds_natively_and_checks_the_programs() {
    let spec = format!("{SPEC}flake = \".#app-${{TARGETARCH}}\"\n[nix]\nrun-on = \"cross\"\n");
    let with_head = |head: &str| {
        let mut f = fake(&spec);
        edit_report(&mut f, |r| {
            r["heads"] = serde_json::json!({"app": {"head": head, "interpreter": ""}});
        });
        f
    };
    let arm = "7f454c460201010000000000000000000300b700";
    let f = with_head(arm);
    let out = build(&f, &[("platform", "linux/arm64")]);
    assert!(out.result.is_ok(), "{}", message(&out));
    let plan = out.plan.unwrap();
    assert_eq!(
        plan.nix.platform.to_string(),
        "linux/amd64",
        "nix runs natively"
    );
    assert_eq!(plan.nix.installable, "path:/src#app-arm64");
    let config: serde_json::Value =
        serde_json::from_slice(&out.result.unwrap().metadata["containerimage.config"]).unwrap();
    assert_eq!(config["architecture"], "arm64");
    // A cross package that built amd64 programs is refused.
    let f = with_head("7f454c4602010100000000000000000003003e00");
    let m = message(&build(&f, &[("platform", "linux/arm64")]));
    assert!(
        m.contains("is built for x86-64, not for linux/arm64"),
        "{m}"
    );
}

#[test]
fn a_program_for_another_platform_is_refused() {
    let x86 = "7f454c4602010100000000000000000003003e00";
    let with_heads = |head: &str| {
        let mut f = fake(SPEC);
        edit_report(&mut f, |r| {
            r["heads"] = serde_json::json!({"app": {"head": head, "interpreter": ""}});
        });
        f
    };
    let f = with_heads(x86);
    assert!(build(&f, &[]).result.is_ok(), "amd64 on amd64");
    let out = build(&f, &[("platform", "linux/arm64")]);
    let err = out.result.unwrap_err();
    assert!(
        err.message
            .contains("bin/app is built for x86-64, not for linux/arm64 (AArch64)"),
        "{}",
        err.message
    );
    assert!(err.message.contains("hint:"), "{}", err.message);
    // A script: its interpreter is checked.
    let mut f = with_heads("2321");
    edit_report(&mut f, |r| {
        r["heads"]["app"]["interpreter"] = serde_json::json!(x86)
    });
    let err = build(&f, &[("platform", "linux/arm64")])
        .result
        .unwrap_err();
    // `--call check` warns of it, without building the image.
    let r = build(
        &f,
        &[("platform", "linux/arm64"), ("requestid", "frontend.lint")],
    )
    .result
    .unwrap();
    let text = String::from_utf8_lossy(&r.metadata["result.txt"]).into_owned();
    assert!(
        text.contains(
            "WrongArchitecture: the interpreter of bin/app is built for x86-64, not for linux/arm64 (AArch64)"
        ),
        "{text}"
    );
    assert!(
        err.message
            .contains("the interpreter of bin/app is built for x86-64"),
        "{}",
        err.message
    );
}

#[test]
fn what_the_report_could_not_read_is_a_warning() {
    let mut f = fake(SPEC);
    edit_report(&mut f, |r| {
        r["errors"] = serde_json::json!({"meta": "error: boom in meta.license", "flake": ""});
    });
    assert!(build(&f, &[]).result.is_ok());
    let warnings: Vec<String> = f.log().warnings.iter().map(|w| w.short.clone()).collect();
    assert_eq!(
        warnings,
        ["NixMetaFailed: nix could not evaluate the package's meta: error: boom in meta.license"]
    );
}

#[test]
fn flake_lock_is_read_once_for_overrides_and_fetched_inputs() {
    let mut f = git_fake(SPEC);
    let rev = "0123456789abcdef0123456789abcdef01234567";
    f.client_files.insert(
        "sub/flake.lock".into(),
        format!(
            r#"{{"nodes":{{"root":{{"inputs":{{"greeting":"g","dep":"dep"}}}},
              "dep":{{"locked":{{"type":"git","url":"https://example.org/dep.git","rev":"{rev}","narHash":"sha256-AAAA"}}}}}},
              "root":"root","version":7}}"#
        )
        .into_bytes(),
    );
    let o = run_with(
        &f,
        &[("context", GIT_URL), ("context:greeting", "local:greeting")],
        &remote_caps(true),
    );
    assert!(o.result.is_ok(), "{}", message(&o));
    assert_eq!(o.plan.as_ref().unwrap().nix.prefetch[0].node, "dep");
    assert_eq!(override_args(&o)[1], "greeting");
    let lock_reads = f
        .log()
        .reads
        .iter()
        .filter(|(_, p)| p == "sub/flake.lock")
        .count();
    assert_eq!(lock_reads, 1);
}
