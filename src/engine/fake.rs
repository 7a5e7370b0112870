//! An engine that answers from fixed facts: the client's files, image
//! configs, the nix step's report, the base's user files. It records what
//! the pipeline asked (every definition solved, every warning), and can be
//! told to fail a solve, so tests can drive paths that only a real daemon
//! reaches otherwise: a pruned store, an unreadable base, a lint finding.
//!
//! The debug commands (`nix-frontend plan|llb`) use it with stand-in facts.

use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;

use super::{Engine, EngineError, ImageMeta, ResolveImage, Solve, Warning};
use crate::llb::{Definition, result_name};
use crate::plan::{FACTS_FILE, GRAPH_FILE, NAMES_FILE, REPORT_FILE};

/// What a solved definition is, told by the progress name of its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// One file from a client local: the spec, a `flake.lock`.
    Spec,
    /// A fetched context (git, http) as it is.
    Context,
    Dockerignore,
    Nix,
    /// The base after `image.run` (to read its users).
    Base,
    Image,
    /// A state an attestation points into (the SBOM).
    Attestation,
}

impl Kind {
    fn of(def: &Definition) -> Self {
        let name = result_name(def);
        if name.starts_with("[internal] load .dockerignore") {
            Self::Dockerignore
        } else if name.starts_with("[internal] load ") || name.starts_with("[internal] find ") {
            Self::Spec
        } else if name.starts_with("[context] fetch") || name.starts_with("[context] unpack") {
            Self::Context
        } else if name.starts_with("[nix] build") {
            Self::Nix
        } else if name.starts_with("[image] base") || name.starts_with("[image] run") {
            Self::Base
        } else if name.starts_with("[image] sbom") {
            Self::Attestation
        } else {
            Self::Image
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Context => "context",
            Self::Dockerignore => "dockerignore",
            Self::Nix => "nix",
            Self::Base => "base",
            Self::Image => "image",
            Self::Attestation => "attestation",
        }
    }
}

/// A solve the fake answers with an error: the `nth` (0-based) solve of
/// `kind` fails with what `error` makes of the definition.
pub struct Failing {
    pub kind: Kind,
    pub nth: usize,
    pub error: Box<dyn Fn(&Definition) -> EngineError>,
}

/// A solve as the pipeline asked for it.
#[derive(Clone, Debug)]
pub struct Solved {
    pub kind: Kind,
    pub request: Solve,
}

#[derive(Default)]
pub struct Fake {
    /// The client's files: the spec (by file name) and `.dockerignore`;
    /// a fetched context's files by their path in it.
    pub client_files: BTreeMap<String, Vec<u8>>,
    /// The spec's own local (buildx sends the spec's directory apart),
    /// when it is not the context: the spec read comes from here.
    pub spec_files: BTreeMap<String, Vec<u8>>,
    /// ResolveImageConfig answers by name; other names get a stand-in: no
    /// digest and an empty config.
    pub images: BTreeMap<String, Result<ImageMeta, EngineError>>,
    /// What the nix step writes as its report.
    pub report: Vec<u8>,
    /// When set, the first nix step found a fresh store: it writes these
    /// (the derivation graph, the evaluation's facts, the context's names)
    /// and no report.
    pub evaluated: Option<[Vec<u8>; 3]>,
    /// Which nix solve (0 = the first) found the fresh store `evaluated`
    /// describes.
    pub evaluated_at: usize,
    /// Files of the base after `image.run`, by path; others do not exist.
    pub base_files: BTreeMap<String, Result<Vec<u8>, EngineError>>,
    pub failing: Vec<Failing>,
    /// The client's inputs (Inputs), by name.
    pub inputs: BTreeMap<String, Definition>,
    /// What the pipeline asked; read it with [`Fake::log`].
    pub log: RefCell<Log>,
}

/// What the pipeline asked of the fake.
#[derive(Default)]
pub struct Log {
    /// Every solve, in order.
    pub solved: Vec<Solved>,
    /// Every ReadFile: ref and path.
    pub reads: Vec<(String, String)>,
    /// Every StatFile: ref and path.
    pub stats: Vec<(String, String)>,
    /// Every ReadDir: ref and path.
    pub dirs: Vec<(String, String)>,
    pub resolves: Vec<ResolveImage>,
    /// How many times the inputs were asked for.
    pub inputs_calls: usize,
    pub warnings: Vec<Warning>,
}

impl Fake {
    pub fn log(&self) -> Ref<'_, Log> {
        self.log.borrow()
    }

    pub fn into_log(self) -> Log {
        self.log.into_inner()
    }

    /// The definitions solved of `kind`, in order.
    pub fn solved_of(&self, kind: Kind) -> Vec<Definition> {
        self.log
            .borrow()
            .solved
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.request.definition.clone())
            .collect()
    }

    /// Whether `ref` (a "spec-N") is the result of the spec's own read.
    fn is_spec_read(&self, r#ref: &str) -> bool {
        let Some(nth) = r#ref
            .strip_prefix("spec-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return false;
        };
        let log = self.log.borrow();
        log.solved
            .iter()
            .filter(|s| s.kind == Kind::Spec)
            .nth(nth)
            .is_some_and(|s| {
                result_name(&s.request.definition).starts_with("[internal] load spec from")
            })
    }

    fn not_found(what: &str) -> EngineError {
        EngineError::new(
            super::CODE_NOT_FOUND,
            format!("{what}: no such file or directory"),
        )
    }
}

impl Engine for Fake {
    async fn solve(&self, req: Solve) -> Result<String, EngineError> {
        let kind = Kind::of(&req.definition);
        let mut log = self.log.borrow_mut();
        let nth = log.solved.iter().filter(|s| s.kind == kind).count();
        let failure = self
            .failing
            .iter()
            .find(|f| f.kind == kind && f.nth == nth)
            .map(|f| (f.error)(&req.definition));
        log.solved.push(Solved { kind, request: req });
        match failure {
            Some(e) => Err(e),
            None => Ok(format!("{}-{nth}", kind.prefix())),
        }
    }

    async fn read_file(&self, r#ref: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        self.log
            .borrow_mut()
            .reads
            .push((r#ref.to_owned(), path.to_owned()));
        let path = path.trim_start_matches('/');
        let kind = r#ref.split('-').next().unwrap_or_default();
        let found = match kind {
            "spec" if !self.spec_files.is_empty() && self.is_spec_read(r#ref) => {
                self.spec_files.get(path).cloned()
            }
            "spec" | "context" => self.client_files.get(path).cloned(),
            "dockerignore" => self.client_files.get(".dockerignore").cloned(),
            "nix" => match (
                &self.evaluated,
                r#ref == format!("nix-{}", self.evaluated_at),
                path,
            ) {
                (Some(e), true, GRAPH_FILE) => Some(e[0].clone()),
                (Some(e), true, FACTS_FILE) => Some(e[1].clone()),
                (Some(e), true, NAMES_FILE) => Some(e[2].clone()),
                (Some(_), true, _) => None,
                (_, _, REPORT_FILE) => Some(self.report.clone()),
                _ => None,
            },
            "base" => match self.base_files.get(path) {
                Some(r) => return r.clone(),
                None => None,
            },
            _ => None,
        };
        found.ok_or_else(|| Self::not_found(path))
    }

    async fn read_dir(&self, r#ref: &str, path: &str) -> Result<Vec<(String, bool)>, EngineError> {
        self.log
            .borrow_mut()
            .dirs
            .push((r#ref.to_owned(), path.to_owned()));
        // The client's files under `path`: the fake's locals hold every
        // client file, whatever their include patterns.
        let dir = path.trim_matches('/');
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut entries: Vec<(String, bool)> = self
            .client_files
            .keys()
            .filter_map(|f| f.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((d, _)) => (d.to_owned(), true),
                None => (rest.to_owned(), false),
            })
            .collect();
        entries.sort();
        entries.dedup();
        Ok(entries)
    }

    async fn is_dir(&self, r#ref: &str, path: &str) -> Result<bool, EngineError> {
        self.log
            .borrow_mut()
            .stats
            .push((r#ref.to_owned(), path.to_owned()));
        // Only a fetched context is asked about: a directory of it is one
        // some file is under.
        let dir = format!("{}/", path.trim_matches('/'));
        Ok(r#ref.starts_with("context-") && self.client_files.keys().any(|f| f.starts_with(&dir)))
    }

    async fn resolve_image(&self, req: ResolveImage) -> Result<ImageMeta, EngineError> {
        self.log.borrow_mut().resolves.push(req.clone());
        match self.images.get(&req.reference) {
            Some(r) => r.clone(),
            None => Ok(ImageMeta {
                digest: String::new(),
                config: b"{}".to_vec(),
                reference: String::new(),
            }),
        }
    }

    async fn inputs(&self) -> Result<BTreeMap<String, Definition>, EngineError> {
        self.log.borrow_mut().inputs_calls += 1;
        Ok(self.inputs.clone())
    }

    async fn warn(&self, w: Warning) -> Result<(), EngineError> {
        self.log.borrow_mut().warnings.push(w);
        Ok(())
    }
}
