//! A build: for each target platform, plan the nix step, run it, read what
//! it built, plan and solve the image. Platforms are built side by side.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::{try_join, try_join_all};
use tokio::sync::OnceCell;

use super::context::NamedImage;
use super::{Failure, Session};
use crate::engine::{Attestation, Engine, EngineError, Refs, ResolveImage, Returned};
use crate::image_ref::familiar;
use crate::llb::{self, ClientImage, Emit, ImageGraph, LAYER_ARGV0, STORE_PATH_MISSING};
use crate::plan::{
    self, BaseUsers, Eval, FACTS_FILE, GRAPH_FILE, ImageFacts, ImagePlan, Inputs, NAMES_FILE,
    Origin, Plan, PlanError, Platform, REPORT_FILE, Report,
};
use crate::sbom::{self, Sbom};
use crate::spec::{self, Located, Spec};
use crate::subrequest;

/// The SBOM's file in its attestation's state.
const SBOM_FILE: &str = "sbom.spdx.json";

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

/// What the nix step needs, planned from the spec and the fetched facts.
#[derive(Clone)]
pub(super) struct Planned {
    pub plan: Plan,
    pub emit: Emit,
}

/// One platform's image: the ref to return and what it was planned from.
struct Built {
    platform: Platform,
    image_ref: String,
    plan: Plan,
    image: ImagePlan,
    /// The state holding this platform's SBOM, when one was asked for.
    sbom_ref: Option<String>,
}

impl<E: Engine> Session<'_, E> {
    pub(super) async fn build(&mut self) -> Result<Returned, Failure> {
        self.imports = self.opts.cache_imports()?;
        self.check_caps()?;
        let platforms = self.target_platforms()?;
        self.read_spec().await?;
        if self.opts.sbom() && !self.caps.gateway("reference.attestations") {
            self.warning(
                "NoSBOM: this BuildKit takes no attestations (v0.11+ does), so no SBOM is attached",
                "--sbom needs an engine that keeps attestations: the containerd image store, or a push",
                None,
            )
            .await;
        }
        // `.dockerignore` is read once, beside the first images' resolves:
        // planning is the first to need it.
        let dockerignore = OnceCell::new();
        let this = &*self;
        let built = try_join_all(
            platforms
                .iter()
                .enumerate()
                .map(|(i, p)| this.build_for(p, &dockerignore, i == 0)),
        )
        .await?;
        if let Some(first) = built.first() {
            self.planned = Some((first.plan.clone(), Some(first.image.clone())));
        }
        let multi = built.len() > 1 || self.opts.multi_platform();
        Ok(returned(built, multi))
    }

    pub(super) fn check_caps(&self) -> Result<(), Failure> {
        for (cap, what) in REQUIRED_LLB_CAPS {
            if !self.caps.llb(cap) {
                return Err(Failure::MissingCap { cap, what });
            }
        }
        Ok(())
    }

    /// The platform the engine runs natively: the first of its worker's.
    pub(super) fn build_platform(&self) -> Result<Platform, Failure> {
        self.opts
            .build_platform()
            .and_then(|p| Platform::parse(p).ok())
            .ok_or(Failure::NoBuildPlatform)
    }

    /// `--platform`, each once, checked against what the engine can run
    /// (natively or through an emulator): a platform it cannot run fails
    /// here, before any work.
    pub(super) fn target_platforms(&self) -> Result<Vec<Platform>, Failure> {
        let mut out: Vec<Platform> = Vec::new();
        for name in self.opts.platforms() {
            let p = Platform::parse(&name).map_err(PlanError::from)?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            out.push(self.build_platform()?);
        }
        let workers = &self.opts.worker_platforms;
        if !workers.is_empty() {
            let runs: Vec<Platform> = workers
                .iter()
                .filter_map(|w| Platform::parse(w).ok())
                .collect();
            if let Some(p) = out.iter().find(|p| !runs.contains(p)) {
                return Err(Failure::PlatformNotRunnable {
                    platform: p.to_string(),
                    runs: workers.join(", "),
                });
            }
        }
        Ok(out)
    }

    /// The build args for `platform`: the client's, and the platform ones a
    /// Dockerfile has (`TARGETARCH`, …), which cannot be overridden.
    pub(super) fn args_for(
        &self,
        platform: &Platform,
    ) -> Result<BTreeMap<String, String>, Failure> {
        let mut args = self.opts.build_args();
        args.extend(platform.build_args(&self.build_platform()?));
        Ok(args)
    }

    /// One platform, from the spec to the image's ref.
    async fn build_for(
        &self,
        platform: &Platform,
        dockerignore: &OnceCell<Vec<String>>,
        warn: bool,
    ) -> Result<Built, Failure> {
        let args = self.args_for(platform)?;
        let spec = spec::parse_for_target(
            &self.spec.name,
            &self.spec.text,
            &args,
            self.opts.target().as_deref(),
        )?;
        let dockerignore = async {
            dockerignore
                .get_or_try_init(|| self.dockerignore())
                .await
                .cloned()
        };
        let planned = self.plan(&spec, platform, dockerignore, &args).await?;
        if warn {
            self.warn_lint(&spec, &args).await;
        }
        let mut planned = planned;
        let report = self.nix_step(&mut planned).await?;
        if warn {
            self.warn_report(&report).await;
        }
        let base_users = self.base_users(&planned).await?;
        let sbom_ref = if self.opts.sbom() && self.caps.gateway("reference.attestations") {
            Some(self.sbom(&spec, &planned, &report).await?)
        } else {
            None
        };
        let (image_ref, plan, image) = self.image(planned, report, base_users.as_ref()).await?;
        Ok(Built {
            platform: platform.clone(),
            image_ref,
            plan,
            image,
            sbom_ref,
        })
    }

    /// The SPDX document of what nix built, in a state of its own. BuildKit
    /// makes it with the frontend's own image (the `source` it started us
    /// from), so a large closure's document needs no gRPC message; without
    /// one (the debug commands), it travels in the definition.
    async fn sbom(
        &self,
        spec: &Spec,
        planned: &Planned,
        report: &Report,
    ) -> Result<String, Failure> {
        let plan = &planned.plan;
        let supplier = match &spec.sbom.supplier {
            Some(s) => s.value.clone(),
            None => sbom::default_supplier(
                self.vcs_source().as_deref(),
                spec.cache.project.as_ref().map(|p| p.value.as_str()),
                report.flake.description.as_deref(),
            ),
        };
        if let Some(frontend) = self.opts.get("source").filter(|s| !s.is_empty()) {
            // Resolved and pinned as the builder is: an image only in the
            // engine's store is found by its digest.
            let build = self.build_platform()?;
            let image = Located::default_value(frontend.to_owned());
            let (facts, _) = self
                .resolve("sbom", &image, &build, &BTreeMap::new())
                .await?;
            let tool = plan::image_source(&facts);
            let def =
                llb::attestation_sbom(SBOM_FILE, plan, &planned.emit, &tool, &build, &supplier);
            return Ok(self.solve(def, true).await?);
        }
        let doc = Sbom {
            report,
            platform: &plan.platform,
            supplier: &supplier,
            epoch: plan.epoch,
        }
        .to_bytes();
        Ok(self
            .solve(llb::attestation_file(SBOM_FILE, doc, plan), false)
            .await?)
    }

    /// Resolves images and plans the nix step for `platform`. The context's
    /// `.dockerignore` patterns come from `dockerignore`, awaited beside the
    /// resolves.
    pub(super) async fn plan(
        &self,
        spec: &Spec,
        platform: &Platform,
        dockerignore: impl Future<Output = Result<Vec<String>, Failure>>,
        args: &BTreeMap<String, String>,
    ) -> Result<Planned, Failure> {
        let opts = self.opts;
        let target = spec.target(opts.target().as_deref())?;
        let build_platform = self.build_platform()?;
        let nix_platform = plan::nix_platform(target, platform, &build_platform);
        let named = opts.named_contexts(&platform.to_string());
        let builder = async {
            self.resolve("builder", &target.builder, &nix_platform, &named)
                .await
        };
        let base = async {
            match &target.image.base {
                Some(b) => Ok(Some(self.resolve("image.base", b, platform, &named).await?)),
                None => Ok::<_, Failure>(None),
            }
        };
        let mut images = vec![&target.builder];
        images.extend(&target.image.base);
        let overrides = self.overrides(target, &named, &images);
        let prefetch = self.prefetch(target);
        let (
            ((((builder, builder_held), base), (overrides, override_sources)), dockerignore),
            ((prefetch, prefetched), spec_paths),
        ) = try_join(
            try_join(try_join(try_join(builder, base), overrides), dockerignore),
            try_join(prefetch, self.spec_paths()),
        )
        .await?;
        let (base, base_held) = base.unzip();
        // The images the client holds, by the identifier the plan gives them.
        let client_images = [
            (Some(&builder), builder_held),
            (base.as_ref(), base_held.flatten()),
        ]
        .into_iter()
        .filter_map(|(facts, held)| Some((plan::image_source(facts?), held?)))
        .collect();
        self.check_filter(target, &dockerignore)?;
        let (vcs_source, vcs_revision) = (self.vcs_source(), self.vcs_revision());
        let inputs = Inputs {
            spec_paths: spec_paths.to_vec(),
            target: opts.target(),
            platform: platform.clone(),
            build_platform,
            cache_ns: opts.cache_ns(),
            epoch: opts.source_date_epoch()?,
            builder,
            base,
            dockerignore,
            labels: opts.labels(),
            build_args: args.clone(),
            vcs_source,
            vcs_revision,
            revision: self.revision.clone(),
            overrides,
            nix_graph: opts.nix_graph(),
            prefetch,
            network: opts.network()?,
        };
        let plan = plan::build(spec, &inputs)?;
        let emit = Emit {
            context: self.context.clone(),
            overrides: override_sources,
            prefetched,
            spec_filename: self.spec.name.clone(),
            spec_text: self.spec.text.clone(),
            no_cache: opts.no_cache(),
            run_id: opts.session_id.clone(),
            mergeop: self.caps.llb("mergeop"),
            content_cache_off: self.caps.llb("exec.mount.cache.content"),
            attempt: 0,
            rerun_nix: false,
            rerun_first: false,
            nix_graph: None,
            reevaluate: false,
            reevaluate_groups: false,
            client_images,
        };
        Ok(Planned { plan, emit })
    }

    /// ResolveImageConfig for the image a spec key names; a failure names the
    /// key. With it, the image as the client holds it, when it does.
    async fn resolve(
        &self,
        key: &'static str,
        image: &Located<String>,
        platform: &Platform,
        named: &BTreeMap<String, String>,
    ) -> Result<(ImageFacts, Option<ClientImage>), Failure> {
        // BuildKit normalizes the name itself, as it does for image sources.
        // A `--build-context` of the image's name replaces it.
        let (name, oci) = match self.named_image(named, image)? {
            None => (image.value.clone(), None),
            Some(NamedImage::Registry(r)) => (r, None),
            Some(NamedImage::OciLayout { reference, store }) => (reference, Some(store)),
            Some(NamedImage::Input(input)) => return self.input_image(image, input).await,
        };
        let meta = self
            .engine
            .resolve_image(ResolveImage {
                reference: name.clone(),
                platform: platform.clone(),
                mode: self.opts.resolve_mode(),
                log_name: format!("[internal] load metadata for {name} ({platform})"),
                oci: oci.clone(),
            })
            .await
            .map_err(|e| Failure::Resolve {
                key,
                image: name.clone(),
                message: e.message,
                span: image.span,
            })?;
        let origin = if oci.is_some() {
            Origin::OciLayout
        } else {
            Origin::Registry
        };
        let facts = ImageFacts {
            name,
            resolved: meta.reference,
            digest: meta.digest,
            config: meta.config,
            origin,
        };
        Ok((facts, oci.map(ClientImage::OciLayout)))
    }

    /// A client's input as the builder or base: its config is the one the
    /// client sent with it (none: an empty config).
    async fn input_image(
        &self,
        image: &Located<String>,
        input: String,
    ) -> Result<(ImageFacts, Option<ClientImage>), Failure> {
        let name = familiar(&image.value);
        let definition = self.input(&name, &input).await?;
        let Some(held) = llb::Input::new(definition) else {
            return Err(Failure::Named {
                name,
                message: format!("input {input:?} is empty"),
                hint: "give a target that builds an image with a shell and, for the builder, nix"
                    .into(),
            });
        };
        let config = self
            .opts
            .input_config(&input)?
            .unwrap_or_else(|| b"{}".to_vec());
        let facts = ImageFacts {
            name: input,
            resolved: String::new(),
            digest: String::new(),
            config,
            origin: Origin::Input,
        };
        Ok((facts, Some(ClientImage::Input(held))))
    }

    /// The context's `.dockerignore` patterns; none when it has no such file.
    /// As BuildKit reads them: `<spec>.dockerignore` beside the spec wins
    /// over the context's `.dockerignore`.
    pub(super) async fn dockerignore(&self) -> Result<Vec<String>, Failure> {
        if let Some(read) = self.remote_dockerignore().await {
            return Ok(read?
                .map(|t| plan::dockerignore_patterns(&t))
                .unwrap_or_default());
        }
        let failed = |e: EngineError| Failure::Dockerignore(e.message);
        let beside = format!("{}.dockerignore", self.opts.filename());
        let (spec_local, local) = (self.opts.dockerfile_local(), self.opts.context_local());
        // Both at once: a build waits for one round trip, not two.
        let (beside, context) = futures_util::future::join(
            self.local_file(&spec_local, &self.opts.session_for(&spec_local), &beside),
            self.local_file(&local, &self.opts.session_for(&local), ".dockerignore"),
        )
        .await;
        let read = match beside.map_err(failed)? {
            Some(b) => Some(b),
            None => context.map_err(failed)?,
        };
        Ok(read
            .map(|b| plan::dockerignore_patterns(&String::from_utf8_lossy(&b)))
            .unwrap_or_default())
    }

    /// Runs `nix build` and reads back what it reported. Where the first
    /// nix step found a fresh store and only evaluated, the derivation graph
    /// it reported is built as group steps and a final step (see
    /// `plan::nix_graph`), which `planned.emit` then carries for the image.
    pub(super) async fn nix_step(&self, planned: &mut Planned) -> Result<Report, Failure> {
        let Planned { plan, emit } = planned;
        let nix_failed = |error: EngineError| Failure::NixBuild {
            error: Box::new(error),
            flake: plan.nix.flake.value.clone(),
            span: plan.nix.flake.span,
        };
        loop {
            let r = match self.solve(llb::nix_build(plan, emit), true).await {
                Ok(r) => r,
                Err(e) if emit.nix_graph.is_some() && !emit.reevaluate && is_missing_drv(&e) => {
                    self.warning(
                        "StoreCacheMissing: a derivation of the cached evaluation is not in the /nix store cache; evaluating again",
                        "the build cache held the evaluation but not every step built from it",
                        None,
                    )
                    .await;
                    emit.reevaluate = true;
                    emit.reevaluate_groups = e.message.contains(plan::GROUP_ARGV0);
                    continue;
                }
                // The steps still do not see the evaluation's store: seen
                // with a builder pulled from a registry on the containerd
                // image store, where the store cache a later solve mounts is
                // not the one the evaluation wrote. Build in one step.
                Err(e) if emit.nix_graph.is_some() && is_missing_drv(&e) => {
                    self.warning(
                        "StoreCacheUnshared: the steps of the derivation graph do not see the evaluation's /nix store cache; building in one nix step",
                        "the build is correct but gets no per-step cache; NIX_FRONTEND_GRAPH=0 goes straight to one step",
                        None,
                    )
                    .await;
                    emit.nix_graph = None;
                    emit.reevaluate = false;
                    emit.reevaluate_groups = false;
                    plan.nix.script.mode = plan::Mode::Build;
                    continue;
                }
                Err(e) => return Err(nix_failed(e)),
            };
            // The ref is the nix step's output directory itself.
            let report = if let Some(graph) = &emit.nix_graph {
                let report = self.engine.read_file(&r, REPORT_FILE).await?;
                graph.eval.splice(&report).map_err(PlanError::from)?
            } else if let Some(report) = self.read_optional(&r, REPORT_FILE).await? {
                report
            } else {
                // The evaluation's three files, side by side.
                let (graph, facts, names) = futures_util::future::try_join3(
                    self.engine.read_file(&r, GRAPH_FILE),
                    self.engine.read_file(&r, FACTS_FILE),
                    self.read_optional(&r, NAMES_FILE),
                )
                .await?;
                let eval = Eval::parse(&graph, &facts).map_err(PlanError::from)?;
                let names = String::from_utf8_lossy(names.as_deref().unwrap_or_default());
                emit.nix_graph = Some(plan::nix_graph(&plan.nix, eval, &names));
                continue;
            };
            return Ok(Report::parse(&report).map_err(PlanError::from)?);
        }
    }

    /// A named user on a non-scratch base: does the base (after `run`)
    /// have it? Only "no such file" means the base lacks a file.
    async fn base_users(&self, planned: &Planned) -> Result<Option<BaseUsers>, Failure> {
        let Planned { plan, emit } = planned;
        if !plan.needs_base_users() {
            return Ok(None);
        }
        let r = self.solve(llb::base_users(plan, emit), true).await?;
        let span = plan.image.spec.user.as_ref().and_then(|u| u.span);
        let read = async |path: &'static str| match self.read_optional(&r, path).await {
            Ok(b) => Ok(b.map(|b| String::from_utf8_lossy(&b).into_owned())),
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
        &self,
        planned: Planned,
        built: Report,
        base_users: Option<&BaseUsers>,
    ) -> Result<(String, Plan, ImagePlan), Failure> {
        let image = plan::image(&planned.plan, &built, base_users)?;
        for w in &image.warnings {
            self.warning(w, "the image's layers are counted with the base's", None)
                .await;
        }
        let ImageGraph {
            definition,
            layer_ops,
        } = llb::image(&planned.plan, &image, &planned.emit);
        match self.solve(definition, true).await {
            Ok(r) => Ok((r, planned.plan, image)),
            Err(e) if is_store_miss(&e, &layer_ops) => {
                self.warning(
                    "StoreCachePruned: the /nix store cache lost paths of a cached nix step; running nix again",
                    "the build cache was pruned while the nix step's result was still cached",
                    None,
                )
                .await;
                let mut again = planned;
                again.emit.rerun_nix = true;
                again.emit.rerun_first = again.emit.nix_graph.is_none();
                again.emit.attempt = 1;
                let built = self.nix_step(&mut again).await?;
                let image = plan::image(&again.plan, &built, base_users)?;
                let graph = llb::image(&again.plan, &image, &again.emit);
                match self.solve(graph.definition, true).await {
                    Ok(r) => Ok((r, again.plan, image)),
                    // The nix step just built them: the layer ops were given
                    // another store than the one it built into.
                    Err(e) if is_store_miss(&e, &graph.layer_ops) => Err(Failure::StoreUnshared {
                        flake: again.plan.nix.flake.value.clone(),
                        span: again.plan.nix.flake.span,
                    }),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What the nix step could not read of the package or flake: nix's
    /// error, where it would otherwise be a missing entrypoint or SBOM fact.
    async fn warn_report(&self, report: &Report) {
        for (what, error) in &report.errors {
            let (short, why) = match what.as_str() {
                "meta" => (
                    "NixMetaFailed: nix could not evaluate the package's meta",
                    "meta.mainProgram picks the entrypoint and meta.license goes into the SBOM",
                ),
                "flake" => (
                    "NixFlakeMetadataFailed: nix flake metadata failed",
                    "the flake's description and locked inputs go into the labels and the SBOM",
                ),
                _ => continue,
            };
            self.warning(&format!("{short}: {error}"), why, None).await;
        }
    }

    /// Shows the spec's lint warnings in a normal build, where the engine
    /// has the Warn call (BuildKit v0.10+).
    async fn warn_lint(&self, spec: &Spec, args: &BTreeMap<String, String>) {
        let Ok(target) = spec.target(self.opts.target().as_deref()) else {
            return;
        };
        for w in subrequest::lint(target, args, None) {
            let short = format!("{}: {}", w.rule, w.detail);
            self.warning(&short, w.description, w.span).await;
        }
    }
}

/// What Return carries: one ref and its config, or (several platforms, or
/// `multi-platform` asked for) a ref per platform with `refs.platforms`.
/// Attestations are keyed by platform id, so with them `refs.platforms` is
/// sent for one ref too.
fn returned(built: Vec<Built>, multi: bool) -> Returned {
    let mut metadata = BTreeMap::new();
    let mut attestations = BTreeMap::new();
    let mut listed = Vec::new();
    for b in &built {
        if let Some(r) = &b.sbom_ref {
            attestations.insert(
                b.platform.to_string(),
                vec![Attestation {
                    r#ref: r.clone(),
                    path: format!("/{SBOM_FILE}"),
                    predicate_type: sbom::PREDICATE_TYPE.to_owned(),
                    metadata: BTreeMap::from([("reason".to_owned(), b"sbom".to_vec())]),
                }],
            );
        }
        let mut p =
            serde_json::json!({"architecture": b.platform.architecture, "os": b.platform.os});
        if !b.platform.variant.is_empty() {
            p["variant"] = serde_json::json!(b.platform.variant);
        }
        listed.push(serde_json::json!({"ID": b.platform.to_string(), "Platform": p}));
    }
    let platforms =
        serde_json::to_vec(&serde_json::json!({ "Platforms": listed })).unwrap_or_default();
    if !multi && built.len() == 1 {
        let b = &built[0];
        metadata.insert(
            "containerimage.config".to_owned(),
            b.image.config.to_bytes(),
        );
        if !attestations.is_empty() {
            metadata.insert("refs.platforms".to_owned(), platforms);
        }
        return Returned {
            refs: Refs::Single(b.image_ref.clone()),
            metadata,
            attestations,
        };
    }
    let mut refs = BTreeMap::new();
    for b in built {
        let id = b.platform.to_string();
        metadata.insert(
            format!("containerimage.config/{id}"),
            b.image.config.to_bytes(),
        );
        refs.insert(id, b.image_ref);
    }
    metadata.insert("refs.platforms".to_owned(), platforms);
    Returned {
        refs: Refs::Platforms(refs),
        metadata,
        attestations,
    }
}

/// Whether a group or final nix step found a derivation missing from the
/// store: our scripts' exit code, and their argv in BuildKit's message.
fn is_missing_drv(e: &EngineError) -> bool {
    e.exit_code() == Some(STORE_PATH_MISSING)
        && (e.message.contains(plan::GROUP_ARGV0) || e.message.contains(plan::NIX_ARGV0))
}

/// Whether a failed solve is one of our layer ops finding a store path
/// missing from the store cache: our exit code, and the op by the vertex
/// BuildKit names or by the argv its message quotes. (For a failed layer
/// op, sid's BuildKit, Docker 28.5, names a vertex that is not one of the
/// definition's digests: seen, the retry never ran there on the vertex
/// alone.)
fn is_store_miss(e: &EngineError, layer_ops: &BTreeSet<String>) -> bool {
    e.exit_code() == Some(STORE_PATH_MISSING)
        && (e.vertex.as_ref().is_some_and(|v| layer_ops.contains(v))
            || e.message.contains(LAYER_ARGV0))
}
