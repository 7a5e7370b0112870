//! A build: plan the nix step, run it, read what it built, plan and solve
//! the image.

use std::collections::BTreeMap;

use super::{Failure, Session};
use crate::engine::{Engine, EngineError, Refs, ResolveImage, Returned};
use crate::llb::{self, Emit, ImageGraph, STORE_PATH_MISSING};
use crate::plan::{
    self, BaseUsers, ImageFacts, ImagePlan, Inputs, Plan, PlanError, Platform, REPORT_FILE, Report,
};
use crate::spec::{self, Located, Spec};
use crate::subrequest;

/// LLB caps every build needs, and why.
const REQUIRED_LLB_CAPS: [(&str, &str); 5] = [
    ("source.image", "builder and base images"),
    ("source.local", "the build context"),
    ("exec.mount.cache", "the /nix store cache"),
    ("exec.mount.cache.sharing", "locking the /nix store cache"),
    (
        "exec.mount.selector",
        "seeding the store from the builder's /nix",
    ),
];

/// `$0` of the layer ops' script: BuildKit's message for a failed process
/// quotes its argv, which tells our layer ops apart from the user's `run`
/// commands where BuildKit names no vertex.
const LAYER_ARGV0: &str = "nix-frontend-layer";

/// What the nix step needs, planned from the spec and the fetched facts.
#[derive(Clone)]
pub(super) struct Planned {
    pub plan: Plan,
    pub emit: Emit,
}

impl<E: Engine> Session<'_, E> {
    pub(super) async fn build(&mut self) -> Result<Returned, Failure> {
        self.read_spec().await?;
        let spec = spec::parse_for_target(
            &self.spec.name,
            &self.spec.text,
            &self.opts.build_args(),
            self.opts.target().as_deref(),
        )?;
        let planned = self.plan(&spec).await?;
        self.warn_lint(&spec).await;
        let built = self.nix_step(&planned).await?;
        let base_users = self.base_users(&planned).await?;
        let (image_ref, image) = self.image(planned, built, base_users.as_ref()).await?;
        let metadata =
            BTreeMap::from([("containerimage.config".to_owned(), image.config.to_bytes())]);
        Ok(Returned {
            refs: Refs::Single(image_ref),
            metadata,
        })
    }

    /// Checks caps, resolves images and plans the nix step.
    pub(super) async fn plan(&mut self, spec: &Spec) -> Result<Planned, Failure> {
        for (cap, what) in REQUIRED_LLB_CAPS {
            if !self.caps.llb(cap) {
                return Err(Failure::MissingCap { cap, what });
            }
        }
        let opts = self.opts;
        let target = spec.target(opts.target().as_deref())?.clone();
        let platforms = opts.platforms();
        if platforms.len() > 1 {
            return Err(Failure::MultiPlatform(platforms.join(",")));
        }
        let platform_name = platforms
            .first()
            .cloned()
            .or_else(|| opts.worker_platform.clone())
            .unwrap_or_else(|| "linux/amd64".to_owned());
        let platform = Platform::parse(&platform_name).map_err(PlanError::from)?;

        let mut builder = self.resolve("builder", &target.builder, &platform).await?;
        builder.has_nix = self.has_nix(&builder, &platform).await?;
        let base = match &target.image.base {
            Some(b) => Some(self.resolve("image.base", b, &platform).await?),
            None => None,
        };
        let dockerignore = self.dockerignore().await?;
        let inputs = Inputs {
            spec_filename: self.spec.name.clone(),
            target: opts.target(),
            platform,
            cache_ns: opts.cache_ns(),
            epoch: opts.source_date_epoch()?,
            builder,
            base,
            dockerignore,
            labels: opts.labels(),
            build_args: opts.build_args(),
            vcs_source: opts.vcs_source(),
        };
        let plan = plan::build(spec, &inputs)?;
        self.planned = Some((plan.clone(), None));
        let emit = Emit {
            session: opts.session_for(&opts.context_local()),
            context_name: opts.context_local(),
            spec_filename: self.spec.name.clone(),
            spec_text: self.spec.text.clone(),
            no_cache: opts.no_cache(),
            mergeop: self.caps.llb("mergeop"),
            attempt: 0,
            rerun_nix: false,
        };
        Ok(Planned { plan, emit })
    }

    /// ResolveImageConfig for the image a spec key names; a failure names the key.
    async fn resolve(
        &mut self,
        key: &'static str,
        image: &Located<String>,
        platform: &Platform,
    ) -> Result<ImageFacts, Failure> {
        // BuildKit normalizes the name itself, as it does for image sources.
        let name = image.value.clone();
        let meta = self
            .engine
            .resolve_image(ResolveImage {
                reference: name.clone(),
                platform: platform.clone(),
                mode: self.opts.resolve_mode(),
                log_name: format!("[internal] load metadata for {name}"),
            })
            .await
            .map_err(|e| Failure::Resolve {
                key,
                image: name.clone(),
                message: e.message,
                span: image.span,
            })?;
        Ok(ImageFacts {
            name,
            resolved: meta.reference,
            digest: meta.digest,
            config: meta.config,
            has_nix: false,
        })
    }

    /// Whether the builder image has a `/nix` to seed the store cache from.
    async fn has_nix(&mut self, facts: &ImageFacts, platform: &Platform) -> Result<bool, Failure> {
        let def = llb::builder_only(&plan::image_source(facts), platform);
        let r = self.solve(def, false).await?;
        Ok(self.engine.is_dir(&r, "/nix").await?)
    }

    /// The context's `.dockerignore` patterns; none when it has no such file.
    async fn dockerignore(&mut self) -> Result<Vec<String>, Failure> {
        let local = self.opts.context_local();
        let read = llb::dockerignore(&local, &self.opts.session_for(&local));
        let failed = |e: EngineError| Failure::Dockerignore(e.message);
        let r = self.solve(read.definition, false).await.map_err(failed)?;
        match self.engine.read_file(&r, ".dockerignore").await {
            Ok(bytes) => Ok(plan::dockerignore_patterns(&String::from_utf8_lossy(
                &bytes,
            ))),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(failed(e)),
        }
    }

    /// Runs `nix build` and reads back what it reported.
    pub(super) async fn nix_step(&mut self, planned: &Planned) -> Result<Report, Failure> {
        let Planned { plan, emit } = planned;
        let nix_failed = |error: EngineError| Failure::NixBuild {
            error,
            flake: plan.nix.flake.value.clone(),
            span: plan.nix.flake.span,
        };
        let r = self
            .solve(llb::nix_build(plan, emit), true)
            .await
            .map_err(nix_failed)?;
        // The ref is the nix step's output directory itself.
        let report = self.engine.read_file(&r, REPORT_FILE).await?;
        Ok(Report::parse(&report).map_err(PlanError::from)?)
    }

    /// A named user on a non-scratch base: does the base (after `run`)
    /// have it? Only "no such file" means the base lacks a file.
    async fn base_users(&mut self, planned: &Planned) -> Result<Option<BaseUsers>, Failure> {
        let Planned { plan, emit } = planned;
        if !plan.needs_base_users() {
            return Ok(None);
        }
        let r = self.solve(llb::base_users(plan, emit), true).await?;
        let span = plan.image.spec.user.as_ref().and_then(|u| u.span);
        let mut read = async |path: &'static str| match self.engine.read_file(&r, path).await {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Failure::BaseUsers {
                path,
                message: e.message,
                span,
            }),
        };
        Ok(Some(BaseUsers {
            passwd: read("/etc/passwd").await?,
            group: read("/etc/group").await?,
        }))
    }

    /// Plans and solves the image. The solve is evaluated now (not lazily at
    /// export), so a failure reaches us here: if a layer op finds its store
    /// paths gone (the store cache was pruned while the nix step's result
    /// stayed cached), nix runs again and the image is solved once more.
    async fn image(
        &mut self,
        planned: Planned,
        built: Report,
        base_users: Option<&BaseUsers>,
    ) -> Result<(String, ImagePlan), Failure> {
        let image = plan::image(&planned.plan, &built, base_users)?;
        self.planned = Some((planned.plan.clone(), Some(image.clone())));
        let graph = llb::image(&planned.plan, &image, &planned.emit);
        let ImageGraph {
            definition,
            layer_ops,
        } = graph;
        match self.solve(definition, true).await {
            Ok(r) => Ok((r, image)),
            Err(e) if e.exit_code() == Some(STORE_PATH_MISSING) && is_layer_op(&e, &layer_ops) => {
                self.warning(
                    "StoreCachePruned: the /nix store cache lost paths of a cached nix step; running nix again",
                    "the build cache was pruned while the nix step's result was still cached",
                    None,
                )
                .await;
                let mut again = planned;
                again.emit.rerun_nix = true;
                again.emit.attempt = 1;
                let built = self.nix_step(&again).await?;
                let image = plan::image(&again.plan, &built, base_users)?;
                self.planned = Some((again.plan.clone(), Some(image.clone())));
                let graph = llb::image(&again.plan, &image, &again.emit);
                let r = self.solve(graph.definition, true).await?;
                Ok((r, image))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Shows the spec's lint warnings in a normal build, where the engine
    /// has the Warn call (BuildKit v0.10+).
    async fn warn_lint(&mut self, spec: &Spec) {
        let Ok(target) = spec.target(self.opts.target().as_deref()) else {
            return;
        };
        for w in subrequest::lint(target, &self.opts.build_args(), None) {
            let short = format!("{}: {}", w.rule, w.detail);
            self.warning(&short, w.description, w.span).await;
        }
    }
}

/// Whether a failed solve failed in one of our layer ops: by the vertex
/// BuildKit names, else by the argv its message quotes.
fn is_layer_op(e: &EngineError, layer_ops: &std::collections::BTreeSet<String>) -> bool {
    match &e.vertex {
        Some(v) => layer_ops.contains(v),
        None => e.message.contains(LAYER_ARGV0),
    }
}
