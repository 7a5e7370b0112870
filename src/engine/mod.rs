//! The engine: what the pipeline asks of BuildKit, as a small trait. The
//! gRPC bridge implements it against a real daemon; [`fake::Fake`] answers
//! from fixed facts, for the debug commands and for tests of the paths only a
//! real daemon could otherwise show.
//!
//! Everything here is domain types: no protobuf or gRPC type crosses this
//! boundary except the LLB `Definition` the pipeline hands over to solve.

pub mod fake;

use std::collections::{BTreeMap, BTreeSet};

use crate::llb::{Definition, Lines, OciStore};
use crate::options::CacheImport;
use crate::plan::Platform;

/// The caps the engine reported as enabled (Ping).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub gateway: BTreeSet<String>,
    pub llb: BTreeSet<String>,
    /// The first worker's platforms as Ping lists them, `os/arch[/variant]`.
    pub worker_platforms: Vec<String>,
}

impl Caps {
    pub fn llb(&self, cap: &str) -> bool {
        self.llb.contains(cap)
    }

    pub fn gateway(&self, cap: &str) -> bool {
        self.gateway.contains(cap)
    }
}

/// A definition to solve, with the cache to consult for it.
#[derive(Clone, Debug)]
pub struct Solve {
    pub definition: Definition,
    /// Compute the result now (not lazily at export), so errors reach us.
    pub evaluate: bool,
    /// `--cache-from`: BuildKit consults only the imports of each request.
    pub cache_imports: Vec<CacheImport>,
}

/// An image's metadata (ResolveImageConfig).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageMeta {
    /// Empty when the engine has the image only locally (dockerd does that).
    pub digest: String,
    /// The image config JSON.
    pub config: Vec<u8>,
    /// The reference as BuildKit normalized it (v0.12+; else empty).
    pub reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveImage {
    pub reference: String,
    pub platform: Platform,
    /// `default` (dockerd: prefer a local image), `pull` or `local`.
    pub mode: String,
    /// The progress line shown while resolving.
    pub log_name: String,
    /// Resolve in the client's OCI layout, not a registry or image store.
    pub oci: Option<OciStore>,
}

/// A warning shown in the build output (BuildKit v0.10+), at spec lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The vertex it attaches to (the op that loaded the spec).
    pub vertex: String,
    pub short: String,
    pub detail: String,
    pub filename: String,
    pub text: String,
    pub lines: Vec<Lines>,
}

/// `google.protobuf.Any`, as BuildKit puts it in error details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detail {
    pub type_url: String,
    pub value: Vec<u8>,
}

/// An error from the engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    /// The gRPC code.
    pub code: i32,
    pub message: String,
    /// The vertex that failed, when BuildKit said (`errdefs.Vertex`).
    pub vertex: Option<String>,
    /// Passed on as they came: BuildKit's own source ranges and vertex.
    pub details: Vec<Detail>,
}

/// gRPC NotFound.
pub const CODE_NOT_FOUND: i32 = 5;

impl EngineError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            vertex: None,
            details: Vec::new(),
        }
    }

    /// A file or path that does not exist (as opposed to one that cannot be
    /// read). BuildKit sends ENOENT with code Unknown, hence the text too.
    pub fn is_not_found(&self) -> bool {
        self.code == CODE_NOT_FOUND || self.message.contains("no such file or directory")
    }

    /// The exit code of a process that failed, from BuildKit's message
    /// ("… did not complete successfully: exit code: N").
    pub fn exit_code(&self) -> Option<i32> {
        let (_, rest) = self.message.rsplit_once("exit code: ")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

/// What the pipeline hands back for Return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Returned {
    pub refs: Refs,
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// By platform id, as `refs.platforms` names them (BuildKit v0.11+).
    pub attestations: BTreeMap<String, Vec<Attestation>>,
}

/// An in-toto attestation the frontend made: the predicate is the file at
/// `path` in `ref`; BuildKit wraps it in a statement about the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    pub r#ref: String,
    pub path: String,
    pub predicate_type: String,
    pub metadata: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refs {
    /// An answer without a filesystem (subrequests).
    None,
    Single(String),
    /// By platform id (`linux/arm64`), with `refs.platforms` in metadata.
    Platforms(BTreeMap<String, String>),
}

/// A failed build as Return sends it (`google.rpc.Status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnError {
    pub code: i32,
    pub message: String,
    pub details: Vec<Detail>,
}

/// The calls a frontend makes. They take `&self` so that several can be in
/// flight at once (one connection multiplexes them; BuildKit serves each on
/// its own), as the pipeline does for the platforms of one build. A single
/// thread drives them: nothing here needs to be `Send`.
#[expect(
    async_fn_in_trait,
    reason = "used through generics on a current-thread runtime; no Send bound wanted"
)]
pub trait Engine {
    /// Solves a definition; the result's ref id ("" for an empty result).
    async fn solve(&self, req: Solve) -> Result<String, EngineError>;
    async fn read_file(&self, r#ref: &str, path: &str) -> Result<Vec<u8>, EngineError>;
    /// Whether `path` exists in `ref` and is a directory.
    async fn is_dir(&self, r#ref: &str, path: &str) -> Result<bool, EngineError>;
    /// The entries of the directory `path` of `ref`: name, and whether it
    /// is a directory.
    async fn read_dir(&self, r#ref: &str, path: &str) -> Result<Vec<(String, bool)>, EngineError>;
    async fn resolve_image(&self, req: ResolveImage) -> Result<ImageMeta, EngineError>;
    /// The definitions the client built for this build, by input name
    /// (`--build-context NAME=input:INPUT`; bake's `target:` contexts).
    async fn inputs(&self) -> Result<BTreeMap<String, Definition>, EngineError>;
    /// Shows a warning; engines without the Warn call only log it.
    async fn warn(&self, w: Warning) -> Result<(), EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exit_codes_and_not_found() {
        let e = EngineError::new(
            2,
            "process \"/bin/sh -c …\" did not complete successfully: exit code: 75",
        );
        assert_eq!(e.exit_code(), Some(75));
        assert_eq!(EngineError::new(2, "boom").exit_code(), None);
        assert!(EngineError::new(2, "open /x: no such file or directory").is_not_found());
        assert!(EngineError::new(CODE_NOT_FOUND, "gone").is_not_found());
        assert!(!EngineError::new(2, "permission denied").is_not_found());
    }
}
