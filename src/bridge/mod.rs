//! The bridge: the only async code and the only I/O. It fetches every fact
//! the pure core needs (options, caps, the spec, image configs, the closure
//! nix built), runs the core, and hands its LLB to BuildKit.

mod client;
mod failure;
mod options;

use std::collections::BTreeMap;

pub use client::{Caps, Client};
pub use failure::Failure;
pub use options::{OptionError, Options};

use crate::diagnostic::Diagnostic;
use crate::llb::{self, Emit, Graph, Local};
use crate::plan::{self, BaseUsers, BuildResult, ImageFacts, Inputs, PlanError, Platform};
use crate::proto::gateway as gw;
use crate::spec;
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

/// The spec as read from the client.
struct SpecFile {
    name: String,
    text: String,
    /// The op that loaded it: warnings attach to this vertex.
    vertex: String,
}

/// Runs one frontend invocation: connect, build (or answer a subrequest),
/// Return. An error here means nothing could be returned to BuildKit at all.
pub async fn run() -> Result<(), tonic::Status> {
    let opts = Options::from_env();
    let mut client = Client::connect_stdio().await.map_err(|e| {
        tonic::Status::unavailable(format!("cannot connect to BuildKit over stdio: {e}"))
    })?;
    let caps = client.ping().await?;
    let mut spec_file = SpecFile {
        name: opts.filename(),
        text: String::new(),
        vertex: String::new(),
    };
    let waited_before = client.waited;
    let mut session = Session {
        waited_before,
        client: &mut client,
        opts: &opts,
        caps: &caps,
        started: std::time::Instant::now(),
    };
    let outcome = match opts.get("requestid").filter(|r| !r.is_empty()) {
        Some(request) => session.subrequest(request, &mut spec_file).await,
        None => session.build(&mut spec_file).await,
    };
    let outcome = outcome.map_err(|f| {
        eprintln!("nix-frontend: {f}");
        f.to_status(&spec_file.name, &spec_file.text)
    });
    client.finish(outcome).await
}

/// One invocation's connection, options and caps.
struct Session<'a> {
    client: &'a mut Client,
    opts: &'a Options,
    caps: &'a Caps,
    started: std::time::Instant,
    /// BuildKit time already spent before `started` (connecting, Ping).
    waited_before: std::time::Duration,
}

/// What the nix step needs, planned from the spec and the fetched facts.
#[derive(Clone)]
struct Planned {
    plan: plan::Plan,
    emit: Emit,
    cache_imports: Vec<gw::CacheOptionsEntry>,
}

impl Session<'_> {
    async fn build(&mut self, spec_file: &mut SpecFile) -> Result<gw::Result, Failure> {
        read_spec(self.client, self.opts, spec_file).await?;
        let spec = spec::parse_for_target(
            &spec_file.name,
            &spec_file.text,
            &self.opts.build_args(),
            self.opts.target().as_deref(),
        )?;
        let planned = self.plan(&spec, spec_file).await?;
        self.warn(&spec, spec_file).await;
        let built = self.nix_step(&planned).await?;

        let Planned {
            plan,
            emit,
            cache_imports,
        } = &planned;
        // A named user on a non-scratch base: does the base (after `run`) have it?
        let base_users = if plan.needs_base_users() {
            let def = llb::base_users(plan, emit);
            let base_ref = self.client.solve(def, true, cache_imports.clone()).await?;
            let mut read = async |path: &str| {
                self.client
                    .read_file(&base_ref, path)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            Some(BaseUsers {
                passwd: read("etc/passwd").await,
                group: read("etc/group").await,
            })
        } else {
            None
        };
        let image_plan = plan::image(plan, &built, base_users.as_ref())?;
        let image_def = llb::image(plan, &image_plan, emit);
        // Evaluated now (not lazily at export), so a failure reaches us here.
        let image_ref = match self
            .client
            .solve(image_def, true, cache_imports.clone())
            .await
        {
            Ok(r) => r,
            // The nix step was a cache hit but its store paths are gone (the
            // store cache was pruned since): run nix again, then the image.
            Err(s)
                if s.message()
                    .contains(&format!("exit code: {}", llb::STORE_PATH_MISSING)) =>
            {
                let short = "StoreCachePruned: the /nix store cache lost paths of a cached nix step; running nix again";
                let detail =
                    "the build cache was pruned while the nix step's result was still cached";
                self.warning(spec_file, short, detail, None).await;
                let mut again = planned.clone();
                again.emit.rerun_nix = true;
                again.emit.attempt = 1;
                let built = self.nix_step(&again).await?;
                let image_plan = plan::image(plan, &built, base_users.as_ref())?;
                let image_def = llb::image(plan, &image_plan, &again.emit);
                self.client
                    .solve(image_def, true, cache_imports.clone())
                    .await?
            }
            Err(s) => return Err(s.into()),
        };
        let total = self.started.elapsed();
        let waited = self.client.waited.saturating_sub(self.waited_before);
        eprintln!(
            "nix-frontend: timings: total {total:?}, waiting on BuildKit {waited:?}, own work {:?}",
            total.saturating_sub(waited)
        );
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "containerimage.config".to_owned(),
            image_plan.config.to_bytes(),
        );
        Ok(gw::Result {
            result: Some(gw::result::Kind::Ref(gw::Ref { id: image_ref })),
            metadata,
        })
    }

    /// Checks caps, resolves images and plans the nix step.
    async fn plan(&mut self, spec: &spec::Spec, spec_file: &SpecFile) -> Result<Planned, Failure> {
        let (client, opts, caps) = (&mut *self.client, self.opts, self.caps);
        for (cap, what) in REQUIRED_LLB_CAPS {
            if !caps.llb.contains(cap) {
                return Err(Failure::MissingCap { cap, what });
            }
        }
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
        let pb_platform = llb::platform(&platform);

        let mode = opts.resolve_mode();
        let mut builder = resolve(client, "builder", &target.builder, &pb_platform, &mode).await?;
        builder.has_nix = image_has_nix(client, &builder, &pb_platform).await?;
        let base = match &target.image.base {
            Some(b) => Some(resolve(client, "image.base", b, &pb_platform, &mode).await?),
            None => None,
        };
        let dockerignore = read_dockerignore(client, opts).await;
        let inputs = Inputs {
            spec_filename: spec_file.name.clone(),
            target: opts.target(),
            platform,
            cache_ns: opts.cache_ns(),
            epoch: opts.source_date_epoch()?,
            builder,
            base,
            dockerignore,
            labels: opts.labels(),
            build_args: opts.build_args(),
        };
        let plan = plan::build(spec, &inputs)?;
        let emit = Emit {
            session: opts.session_for(&opts.context_local()),
            context_name: opts.context_local(),
            spec_filename: spec_file.name.clone(),
            spec_text: spec_file.text.clone(),
            no_cache: opts.no_cache(),
            mergeop: caps.llb.contains("mergeop"),
            attempt: 0,
            rerun_nix: false,
        };
        Ok(Planned {
            plan,
            emit,
            cache_imports: opts.cache_imports()?,
        })
    }

    /// Runs `nix build` and reads back what it reported.
    async fn nix_step(&mut self, planned: &Planned) -> Result<BuildResult, Failure> {
        let Planned {
            plan,
            emit,
            cache_imports,
        } = planned;
        let nix_ref = self
            .client
            .solve(llb::nix_build(plan, emit), true, cache_imports.clone())
            .await
            .map_err(|status| Failure::NixBuild {
                status,
                flake: plan.nix.flake.value.clone(),
                span: plan.nix.flake.span,
            })?;
        // The ref is the nix step's output directory itself.
        let mut read = async |name: &str| self.client.read_file(&nix_ref, name).await;
        let closure = read(plan::CLOSURE_FILE).await?;
        let outputs = read(plan::OUTPUTS_FILE).await?;
        let main_program = read(plan::MAIN_PROGRAM_FILE).await?;
        let programs = read(plan::PROGRAMS_FILE).await?;
        Ok(
            BuildResult::parse(&closure, &outputs, &main_program, &programs)
                .map_err(PlanError::from)?,
        )
    }

    /// Shows the spec's lint warnings in a normal build, where the engine
    /// has the Warn call (BuildKit v0.10+); a failed Warn is only logged.
    async fn warn(&mut self, spec: &spec::Spec, spec_file: &SpecFile) {
        let Ok(target) = spec.target(self.opts.target().as_deref()) else {
            return;
        };
        for w in subrequest::lint(spec, target, &self.opts.build_args(), None) {
            let short = format!("{}: {}", w.rule, w.detail);
            self.warning(spec_file, &short, w.description, w.span).await;
        }
    }

    /// One warning in the build output, attached to the spec's vertex; on
    /// engines without the Warn call (BuildKit before v0.10) only logged.
    async fn warning(
        &mut self,
        spec_file: &SpecFile,
        short: &str,
        detail: &str,
        span: Option<spec::Span>,
    ) {
        if !self.caps.gateway.contains("gateway.warnings") {
            eprintln!("nix-frontend: {short}");
            return;
        }
        let text = &spec_file.text;
        let ranges = span
            .map(|s| vec![llb::Lines::of(s, text).into()])
            .unwrap_or_default();
        let req = gw::WarnRequest {
            digest: spec_file.vertex.clone(),
            level: 1,
            short: short.as_bytes().to_vec(),
            detail: vec![detail.as_bytes().to_vec()],
            url: String::new(),
            info: Some(crate::proto::llb::SourceInfo {
                filename: spec_file.name.clone(),
                data: text.as_bytes().to_vec(),
                definition: None,
                language: "TOML".into(),
            }),
            ranges,
        };
        if let Err(e) = self.client.warn(req).await {
            eprintln!("nix-frontend: warning not shown: {}", e.message());
        }
    }

    /// `--call outline|targets|check` (and describe): an empty result whose
    /// metadata is the answer.
    async fn subrequest(
        &mut self,
        request: &str,
        spec_file: &mut SpecFile,
    ) -> Result<gw::Result, Failure> {
        let answer = if request == subrequest::DESCRIBE {
            subrequest::describe()
        } else {
            if ![subrequest::OUTLINE, subrequest::TARGETS, subrequest::LINT].contains(&request) {
                return Err(Failure::UnknownRequest(request.to_owned()));
            }
            read_spec(self.client, self.opts, spec_file).await?;
            let (name, text) = (spec_file.name.as_str(), spec_file.text.as_str());
            let args = self.opts.build_args();
            let target_name = self.opts.target();
            match request {
                subrequest::OUTLINE => {
                    let spec = spec::parse_lenient(name, text)?;
                    spec.target(target_name.as_deref())?;
                    subrequest::outline(&spec, target_name.as_deref(), &args, text)
                }
                subrequest::TARGETS => subrequest::targets(&spec::parse_lenient(name, text)?, text),
                _ => self.lint(spec_file).await,
            }
        };
        Ok(gw::Result {
            result: Some(gw::result::Kind::Ref(gw::Ref { id: String::new() })),
            metadata: answer.metadata(),
        })
    }

    /// The spec's warnings; when the spec is otherwise buildable, the nix
    /// step runs (usually a cache hit) so the entrypoint can be checked too.
    async fn lint(&mut self, spec_file: &SpecFile) -> subrequest::Answer {
        let (name, text) = (spec_file.name.as_str(), spec_file.text.as_str());
        let args = self.opts.build_args();
        let failed = |e: &dyn std::fmt::Display| {
            subrequest::lint_answer(&[], name, text, Some(e.to_string()))
        };
        let spec = match spec::parse_lenient(name, text) {
            Ok(s) => s,
            Err(e) => return failed(&Diagnostic::from(&e).render(name, text)),
        };
        let target = match spec.target(self.opts.target().as_deref()) {
            Ok(t) => t.clone(),
            Err(e) => return failed(&Diagnostic::from(&e).render(name, text)),
        };
        let mut warnings = subrequest::lint(&spec, &target, &args, None);
        if warnings.is_empty() {
            // Every arg is defined: build what a build would, with the values.
            let strict = spec::parse_for_target(name, text, &args, self.opts.target().as_deref());
            let built = match strict {
                Ok(spec) => match self.plan(&spec, spec_file).await {
                    Ok(planned) => self.nix_step(&planned).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.into()),
            };
            match built {
                Ok(b) => warnings = subrequest::lint(&spec, &target, &args, Some(&b.programs)),
                Err(e) => return failed(&e.to_status(name, text).message),
            }
        }
        subrequest::lint_answer(&warnings, name, text, None)
    }
}

/// Reads the spec from the `dockerfile` local (only that one file moves).
async fn read_spec(
    client: &mut Client,
    opts: &Options,
    spec_file: &mut SpecFile,
) -> Result<(), Failure> {
    let filename = spec_file.name.clone();
    let filename = filename.as_str();
    let local = opts.dockerfile_local();
    let mut g = Graph::new();
    let src = g.local(
        &Local {
            name: local.clone(),
            session: opts.session_for(&local),
            shared_key: local,
            include: vec![filename.to_owned()],
            exclude: Vec::new(),
            follow: vec![filename.to_owned()],
        },
        &format!("[internal] load spec from {filename}"),
    );
    spec_file.vertex = src.digest.clone();
    let def = g.finish(Some(&src), None);
    let failed = |s: tonic::Status| Failure::SpecRead {
        filename: filename.to_owned(),
        message: s.message().to_owned(),
    };
    let r = client.solve(def, false, Vec::new()).await.map_err(failed)?;
    let bytes = client.read_file(&r, filename).await.map_err(failed)?;
    spec_file.text = String::from_utf8(bytes).map_err(|_| Failure::SpecRead {
        filename: filename.to_owned(),
        message: "the file is not UTF-8 text".into(),
    })?;
    Ok(())
}

/// The context's `.dockerignore` patterns; none when it has no such file.
async fn read_dockerignore(client: &mut Client, opts: &Options) -> Vec<String> {
    let local = opts.context_local();
    let mut g = Graph::new();
    let src = g.local(
        &Local {
            name: local.clone(),
            session: opts.session_for(&local),
            shared_key: format!("{local}-.dockerignore"),
            include: vec![".dockerignore".into()],
            exclude: Vec::new(),
            follow: vec![".dockerignore".into()],
        },
        "[internal] load .dockerignore",
    );
    let def = g.finish(Some(&src), None);
    let Ok(r) = client.solve(def, false, Vec::new()).await else {
        return Vec::new();
    };
    let Ok(bytes) = client.read_file(&r, ".dockerignore").await else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// ResolveImageConfig for the image a spec key names; a failure names the key.
async fn resolve(
    client: &mut Client,
    key: &'static str,
    image: &spec::Located<String>,
    platform: &crate::proto::llb::Platform,
    mode: &str,
) -> Result<ImageFacts, Failure> {
    // BuildKit normalizes the name itself, as it does for image sources.
    let name = image.value.as_str();
    let resp = client
        .resolve_image_config(
            name,
            platform,
            mode,
            &format!("[internal] load metadata for {name}"),
        )
        .await
        .map_err(|status| Failure::Resolve {
            key,
            image: name.to_owned(),
            message: status.message().to_owned(),
            span: image.span,
        })?;
    Ok(ImageFacts {
        name: name.to_owned(),
        resolved: resp.r#ref,
        digest: resp.digest,
        config: resp.config,
        has_nix: false,
    })
}

/// Whether the builder image has a `/nix` to seed the store cache from.
async fn image_has_nix(
    client: &mut Client,
    facts: &ImageFacts,
    platform: &crate::proto::llb::Platform,
) -> Result<bool, Failure> {
    let mut g = Graph::new();
    let img = g.image(
        &plan::image_source(facts),
        platform,
        &format!("[nix] builder {}", facts.name),
    );
    let def = g.finish(Some(&img), None);
    let r = client.solve(def, false, Vec::new()).await?;
    Ok(client.is_dir(&r, "/nix").await?)
}
