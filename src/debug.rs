//! The debug commands' work, without a daemon: the pipeline runs against the
//! fake engine, whose facts are fixed stand-ins unless a golden case brings
//! its own. The output is the same on every machine, so tests can pin it.

use std::collections::BTreeMap;

use crate::engine::fake::{Failing, Fake, Kind};
use crate::engine::{Caps, EngineError, ImageMeta};
use crate::llb::{Definition, dump, op_named};
use crate::options::Options;
use crate::pipeline;
use crate::plan::{ImagePlan, Plan};
use crate::spec;

/// What the debug commands are asked for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub filename: String,
    pub text: String,
    /// Frontend options as `docker build` sends them (`target`,
    /// `platform`, `build-arg:NAME`, `no-cache`, …).
    pub options: BTreeMap<String, String>,
    /// Emit MergeOp (as for an engine with the `mergeop` cap).
    pub mergeop: bool,
    pub facts: Facts,
}

/// What the fake engine knows; `None` and empty fields get stand-ins.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The nix step's report; the stand-in is one output holding
    /// `bin/<attr>` (or the spec's `bin/X`), depending on one library.
    pub report: Option<Vec<u8>>,
    /// ResolveImageConfig answers by image name (config JSON).
    pub image_configs: BTreeMap<String, Vec<u8>>,
    /// Files of the base after `image.run` (`etc/passwd`, `etc/group`).
    pub base_files: BTreeMap<String, Vec<u8>>,
    /// The first image solve fails in a layer op with a missing store path,
    /// as when the store cache was pruned under a cached nix step.
    pub store_pruned: bool,
    /// Files of a fetched context (git, http) by their path in it
    /// (`sub/Dockerfile`, `.git/HEAD`), and other files of the client.
    pub context_files: BTreeMap<String, Vec<u8>>,
}

/// The definitions a build sends, with the plan they came from.
pub struct Output {
    pub plan: Option<Plan>,
    pub image: Option<ImagePlan>,
    /// Every solve, in order, with what it was.
    pub solved: Vec<(Kind, Definition)>,
}

/// The caps of an engine that has everything a build needs.
fn caps(mergeop: bool) -> Caps {
    let mut llb: std::collections::BTreeSet<String> = [
        "source.image",
        "source.local",
        "exec.mount.cache",
        "exec.mount.cache.sharing",
        "exec.mount.selector",
        "exec.mount.cache.content",
        "source.git",
        "source.git.keepgitdir",
        "source.git.fullurl",
        "source.http",
        "file.copy.includeexcludepatterns",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if mergeop {
        llb.insert("mergeop".into());
    }
    Caps {
        gateway: ["gateway.warnings", "reference.attestations"]
            .map(str::to_owned)
            .into(),
        llb,
        // The stand-in engine's worker: an amd64 machine, as the goldens'.
        worker_platforms: vec!["linux/amd64".to_owned()],
    }
}

/// The stand-in report: one output holding `bin/<attr>` (or the spec's
/// `bin/X` entrypoint), depending on one library.
fn stand_in_report(req: &Request) -> Vec<u8> {
    let spec = spec::parse_lenient(&req.filename, &req.text).ok();
    let target = spec
        .as_ref()
        .and_then(|s| s.target(req.options.get("target").map(String::as_str)).ok());
    let attr = target.map_or("default", |t| t.flake_parts().1);
    let attr = attr.rsplit('.').next().unwrap_or(attr).to_owned();
    let program = target
        .and_then(|t| t.image.entrypoint.as_ref())
        .and_then(|e| e.value.first())
        .and_then(|p| p.strip_prefix("bin/"))
        .map_or_else(|| attr.clone(), str::to_owned);
    let out = format!("/nix/store/00000000000000000000000000000000-{attr}");
    let lib = "/nix/store/11111111111111111111111111111111-lib";
    serde_json::to_vec(&serde_json::json!({
        "version": 2,
        "outputs": [out],
        "pathInfo": {
            out.clone(): {"narSize": 1000, "narHash": "sha256-stand-in", "references": [lib]},
            lib: {"narSize": 5000, "narHash": "sha256-stand-in", "references": []},
        },
        "meta": {"mainProgram": attr, "license": null},
        "bin": {"type": "directory", "entries": {program: {"type": "regular"}}},
        "flake": {"description": "stand-in", "locks": {"root": "root", "nodes": {"root": {}}}},
    }))
    .unwrap_or_default()
}

/// Runs the pipeline on the fake engine. An error is the message a user
/// would read (`FILE line N: …` and a hint).
pub fn run(req: &Request) -> Result<Output, String> {
    let mut vars: Vec<(String, String)> = req
        .options
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (format!("BUILDKIT_FRONTEND_OPT_{i}"), format!("{k}={v}")))
        .collect();
    vars.push((
        format!("BUILDKIT_FRONTEND_OPT_{}", vars.len()),
        format!("filename={}", req.filename),
    ));
    vars.push(("BUILDKIT_SESSION_ID".into(), "debug-session".into()));
    let mut opts = Options::from_vars(vars);

    let mut fake = Fake {
        client_files: req
            .facts
            .context_files
            .clone()
            .into_iter()
            .chain([(req.filename.clone(), req.text.clone().into_bytes())])
            .collect(),
        images: req
            .facts
            .image_configs
            .iter()
            .map(|(name, config)| {
                let meta = ImageMeta {
                    digest: String::new(),
                    config: config.clone(),
                    reference: String::new(),
                };
                (name.clone(), Ok(meta))
            })
            .collect(),
        report: req
            .facts
            .report
            .clone()
            .unwrap_or_else(|| stand_in_report(req)),
        base_files: req
            .facts
            .base_files
            .iter()
            .map(|(k, v)| (k.clone(), Ok(v.clone())))
            .collect(),
        ..Default::default()
    };
    if req.facts.store_pruned {
        fake.failing.push(Failing {
            kind: Kind::Image,
            nth: 0,
            error: Box::new(|def: &Definition| EngineError {
                code: 2,
                message: "process \"/bin/sh -c …\" did not complete successfully: exit code: 75"
                    .into(),
                vertex: op_named(def, "[image] layer 1/"),
                details: Vec::new(),
            }),
        });
    }
    let mut caps = caps(req.mergeop);
    // It runs every platform asked for, as an engine with emulators does.
    caps.worker_platforms.extend(opts.platforms());
    opts.or_workers(&caps.worker_platforms);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("cannot start a runtime for the debug commands: {e}"))?
        .block_on(pipeline::run(&fake, &opts, &caps));
    outcome.result.map_err(|e| e.message)?;
    Ok(Output {
        plan: outcome.plan,
        image: outcome.image,
        solved: fake
            .into_log()
            .solved
            .into_iter()
            .map(|s| (s.kind, s.request.definition))
            .collect(),
    })
}

impl Output {
    /// The last definition solved of `kind`.
    pub fn last(&self, kind: Kind) -> Option<&Definition> {
        self.solved
            .iter()
            .rev()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| d)
    }

    pub fn plan_text(&self) -> String {
        let v = serde_json::json!({
            "plan": self.plan,
            "image": self.image,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The nix step and the image as solved last, readable.
    pub fn llb_text(&self) -> String {
        let show = |k| self.last(k).map(dump).unwrap_or_default();
        format!(
            "# nix step\n{}\n# image\n{}",
            show(Kind::Nix),
            show(Kind::Image)
        )
    }
}
