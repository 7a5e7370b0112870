//! The pipeline: one frontend invocation, from options to what is returned,
//! over an [`Engine`]. It is the only place the flow lives:
//!
//! ```text
//! read spec ─▶ spec::parse ─▶ resolve builder/base ─▶ plan::build
//!   ─▶ solve nix step ─▶ read report ─▶ plan::image ─▶ solve image ─▶ Returned
//! ```
//!
//! Everything it decides comes from `spec`, `plan` and `llb`; everything it
//! learns comes from the engine. The bridge runs it against BuildKit, the
//! debug commands and tests against [`crate::engine::fake::Fake`].

mod build;
mod context;
mod failure;
mod request;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use tokio::sync::OnceCell;

use crate::engine::{Caps, Engine, EngineError, ReturnError, Returned, Solve, Warning};
use crate::llb::{self, ContextSource, Definition, Lines};
use crate::options::{CacheImport, Options};
use crate::plan::{ImagePlan, Plan};
use crate::span::Span;

pub use failure::Failure;

/// What an invocation returns, and what it planned on the way (for the
/// debug commands; the bridge returns only `result`).
pub struct Outcome {
    pub result: Result<Returned, ReturnError>,
    pub plan: Option<Plan>,
    pub image: Option<ImagePlan>,
}

/// Runs one invocation: a build, or the subrequest `requestid` names.
pub async fn run<E: Engine>(engine: &E, opts: &Options, caps: &Caps) -> Outcome {
    let mut s = Session {
        engine,
        opts,
        caps,
        spec: SpecFile {
            name: opts.filename(),
            text: String::new(),
            vertex: String::new(),
        },
        imports: Vec::new(),
        planned: None,
        context: context::local(opts),
        revision: None,
        trees: RefCell::default(),
        locks: RefCell::default(),
        inputs: OnceCell::new(),
        spec_paths: OnceCell::new(),
    };
    let outcome = match opts.get("requestid").filter(|r| !r.is_empty()) {
        Some(request) => s.subrequest(request).await,
        None => s.build().await,
    };
    let result = outcome.map_err(|f| f.to_return(&s.spec.name, &s.spec.text));
    let (plan, image) = match s.planned {
        Some((plan, image)) => (Some(plan), image),
        None => (None, None),
    };
    Outcome {
        result,
        plan,
        image,
    }
}

/// The spec as read from the client.
struct SpecFile {
    name: String,
    text: String,
    /// The op that loaded it: warnings attach to this vertex.
    vertex: String,
}

/// A file read once per invocation: `None` when it does not exist.
type ReadOnce = Rc<OnceCell<Option<Vec<u8>>>>;

/// One invocation's engine, options and caps, and what it has read so far.
struct Session<'a, E> {
    engine: &'a E,
    opts: &'a Options,
    caps: &'a Caps,
    spec: SpecFile,
    /// `--cache-from`, passed on every solve: BuildKit consults only the
    /// imports of the request that carries a definition.
    imports: Vec<CacheImport>,
    /// The last plan made, and its image plan once there is one.
    planned: Option<(Plan, Option<ImagePlan>)>,
    /// Where the build context comes from.
    context: ContextSource,
    /// The build context's commit, when it is a git repository.
    revision: Option<String>,
    /// The fetched trees (git, http) solved so far, by their vertex: each
    /// is solved once, however many of its files are read.
    trees: RefCell<BTreeMap<String, Rc<OnceCell<String>>>>,
    /// The `flake.lock` files read so far, by path: the named contexts and
    /// the inputs BuildKit fetches both read it, once.
    locks: RefCell<BTreeMap<String, ReadOnce>>,
    /// The client's inputs, once asked for.
    inputs: OnceCell<BTreeMap<String, Definition>>,
    /// Where the spec is in the build context, once looked up.
    spec_paths: OnceCell<Vec<String>>,
}

impl<E: Engine> Session<'_, E> {
    /// `path` of the solved `r`; `None` when there is no such file.
    async fn read_optional(&self, r: &str, path: &str) -> Result<Option<Vec<u8>>, EngineError> {
        match self.engine.read_file(r, path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One file of the client local `name` (only that file moves); `None`
    /// when there is no such file.
    async fn local_file(
        &self,
        name: &str,
        session: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let read = llb::context_file(name, session, path);
        let r = self.solve(read.definition, false).await?;
        self.read_optional(&r, path).await
    }

    async fn solve(&self, definition: Definition, evaluate: bool) -> Result<String, EngineError> {
        self.engine
            .solve(Solve {
                definition,
                evaluate,
                cache_imports: self.imports.clone(),
            })
            .await
    }

    /// Reads the spec (from the `dockerfile` local, only that one file
    /// moves; or from a fetched context) and the context's commit.
    async fn read_spec(&mut self) -> Result<(), Failure> {
        self.context = self.context_source()?;
        let (spec, revision) =
            futures_util::future::join(self.fetch_spec(), self.context_revision()).await;
        self.spec = spec?;
        self.revision = revision?;
        Ok(())
    }

    /// The spec, read from its local (the `dockerfile` one), or from a
    /// fetched context.
    async fn fetch_spec(&self) -> Result<SpecFile, Failure> {
        if let Some(spec) = self.remote_spec().await {
            return spec;
        }
        let local = self.opts.dockerfile_local();
        let name = self.spec.name.clone();
        let read = llb::spec_file(&local, &self.opts.session_for(&local), &name);
        let failed = |e: EngineError| Failure::SpecRead {
            filename: name.clone(),
            message: e.message,
        };
        let r = self.solve(read.definition, false).await.map_err(failed)?;
        let bytes = self.engine.read_file(&r, &name).await.map_err(failed)?;
        let text = String::from_utf8(bytes).map_err(|_| Failure::SpecRead {
            filename: name.clone(),
            message: "the file is not UTF-8 text".into(),
        })?;
        Ok(SpecFile {
            name,
            text,
            vertex: read.vertex,
        })
    }

    /// One warning in the build output, attached to the spec's vertex; on
    /// engines without the Warn call (BuildKit before v0.10) only logged.
    async fn warning(&self, short: &str, detail: &str, span: Option<Span>) {
        if !self.caps.gateway("gateway.warnings") {
            eprintln!("nix-frontend: {short}");
            return;
        }
        let w = Warning {
            vertex: self.spec.vertex.clone(),
            short: short.to_owned(),
            detail: detail.to_owned(),
            filename: self.spec.name.clone(),
            text: self.spec.text.clone(),
            lines: span
                .map(|s| vec![Lines::of(s, &self.spec.text)])
                .unwrap_or_default(),
        };
        if let Err(e) = self.engine.warn(w).await {
            eprintln!("nix-frontend: warning not shown: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests;
