//! The debug commands' work, without a daemon: the facts the bridge would
//! fetch are replaced by fixed stand-ins, so the output is the same on every
//! machine and golden tests can pin it.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::llb::{self, Emit};
use crate::plan::{self, BuildResult, ImageFacts, Inputs, Plan, Platform, StorePath};
use crate::proto::llb::Definition;
use crate::spec;

/// What the debug commands are asked for.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub filename: String,
    pub text: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub epoch: i64,
    /// Emit MergeOp (as for an engine with the `mergeop` cap).
    pub mergeop: bool,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
}

/// The two definitions a build sends, with the plan they came from.
pub struct Output {
    pub spec: spec::Spec,
    pub plan: Plan,
    pub image: plan::ImagePlan,
    pub nix: Definition,
    pub final_image: Definition,
}

/// Stand-in for an image the bridge would resolve: no digest, an empty
/// config, and a `/nix` to seed from.
fn offline_image(name: &str) -> ImageFacts {
    ImageFacts {
        name: name.to_owned(),
        resolved: String::new(),
        digest: String::new(),
        config: b"{}".to_vec(),
        has_nix: true,
    }
}

/// Stand-in for what nix would build: one output holding `bin/<attr>` (or the
/// spec's `bin/X` entrypoint), depending on one library.
fn offline_closure(plan: &Plan) -> BuildResult {
    let attr = plan.nix.installable.rsplit('#').next().unwrap_or("default");
    let out = format!("/nix/store/00000000000000000000000000000000-{attr}");
    let lib = "/nix/store/11111111111111111111111111111111-lib".to_owned();
    BuildResult {
        closure: vec![
            StorePath {
                path: out.clone(),
                nar_size: 1000,
                references: vec![lib.clone()],
            },
            StorePath {
                path: lib,
                nar_size: 5000,
                references: Vec::new(),
            },
        ],
        outputs: vec![out],
        main_program: Some(attr.to_owned()),
        // The spec's `bin/X` entrypoint is taken to exist.
        programs: plan
            .image
            .spec
            .entrypoint
            .as_ref()
            .and_then(|e| e.value.first())
            .and_then(|p| p.strip_prefix("bin/"))
            .map_or_else(|| vec![attr.to_owned()], |p| vec![p.to_owned()]),
    }
}

pub fn run(req: &Request) -> Result<Output, Diagnostic> {
    let spec = spec::parse_for_target(
        &req.filename,
        &req.text,
        &req.build_args,
        req.target.as_deref(),
    )
    .map_err(|e| Diagnostic::from(&e))?;
    let target = spec
        .target(req.target.as_deref())
        .map_err(|e| Diagnostic::from(&e))?
        .clone();
    let platform = Platform::parse(req.platform.as_deref().unwrap_or("linux/amd64"))
        .map_err(|e| Diagnostic::from(&plan::PlanError::from(e)))?;
    let inputs = Inputs {
        spec_filename: req.filename.clone(),
        target: req.target.clone(),
        platform,
        cache_ns: String::new(),
        epoch: req.epoch,
        builder: offline_image(&target.builder.value),
        base: target.image.base.as_ref().map(|b| offline_image(&b.value)),
        dockerignore: Vec::new(),
        labels: BTreeMap::new(),
        build_args: req.build_args.clone(),
    };
    let fail = |e: plan::PlanError| Diagnostic::from(&e);
    let plan = plan::build(&spec, &inputs).map_err(fail)?;
    let built = offline_closure(&plan);
    // Stand-in for the base's users: none, so a named user is created.
    let base_users = plan.needs_base_users().then(plan::BaseUsers::default);
    let image_plan = plan::image(&plan, &built, base_users.as_ref()).map_err(fail)?;
    let emit = Emit {
        session: "debug-session".into(),
        context_name: "context".into(),
        spec_filename: req.filename.clone(),
        spec_text: req.text.clone(),
        no_cache: false,
        mergeop: req.mergeop,
        attempt: 0,
        rerun_nix: false,
    };
    let nix = llb::nix_build(&plan, &emit);
    let final_image = llb::image(&plan, &image_plan, &emit);
    Ok(Output {
        spec,
        plan,
        image: image_plan,
        nix,
        final_image,
    })
}

impl Output {
    pub fn plan_text(&self) -> String {
        let v = serde_json::json!({
            "plan": self.plan,
            "image": self.image,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    pub fn llb_text(&self) -> String {
        format!(
            "# nix step\n{}\n# image (closure stand-in: one output, one library)\n{}",
            llb::dump(&self.nix),
            llb::dump(&self.final_image)
        )
    }
}
