//! Plan → LLB. One small emit function per graph the pipeline solves; the
//! bytes and digests depend on the plan alone, so golden tests can pin them.
//! This stage reads the plan, never the spec.

use std::collections::BTreeMap;

mod context;
mod dump;
mod graph;
mod image;
mod local;
mod nix;
mod ops;

pub use context::{ContextSource, files as context_files, is_plain_path};
pub use dump::dump;
pub use graph::{Graph, Input, Lines, Output, digests, op_named, result_name};
pub use image::{ImageGraph, LAYER_ARGV0, attestation_file, attestation_sbom, base_users, image};
pub use local::{LocalRead, context_file, context_named, spec_file};
pub use nix::nix_build;
pub use ops::platform;
pub use ops::{Attrs, Exec, FileAction, Local, Mount, OciStore};

use crate::proto::llb as pb;
pub use crate::proto::llb::Definition;
use crate::span::Span;

/// Facts of this build that are not part of the plan: where the spec and
/// context come from, and what the engine can do.
#[derive(Clone, Debug)]
pub struct Emit {
    /// Where the build context comes from.
    pub context: ContextSource,
    /// The named contexts overriding flake inputs, in the order of the
    /// plan's `nix.overrides`.
    pub overrides: Vec<ContextSource>,
    /// The flake inputs BuildKit fetches, in the order of the plan's
    /// `nix.prefetch`.
    pub prefetched: Vec<ContextSource>,
    pub spec_filename: String,
    pub spec_text: String,
    pub no_cache: bool,
    /// The client session's id, new for every build: with `no_cache` or
    /// `rerun_nix` it makes the ops that mount the store cache new vertices
    /// (see [`Emit::rerun_env`]).
    pub run_id: String,
    /// The engine's `mergeop` cap is enabled.
    pub mergeop: bool,
    /// The engine's `exec.mount.cache.content` cap is enabled: the store
    /// cache's seed can be kept out of content-based keys.
    pub content_cache_off: bool,
    /// 0, or the number of the retry after the store cache lost paths: a
    /// retry's layer ops must be new vertices, not the failed ones again.
    pub attempt: u32,
    /// Run the nix step again even if BuildKit has it cached (that retry).
    pub rerun_nix: bool,
    /// With `rerun_nix`: the retry began with no graph, so the first step
    /// runs again, and keeps its new key once it gives a graph (the final
    /// step reads the evaluation of that run, not of the cached one).
    pub rerun_first: bool,
    /// The group steps and final step to build with, when the first nix
    /// step found a fresh store and only evaluated (see `plan::nix_graph`).
    pub nix_graph: Option<crate::plan::NixGraph>,
    /// Evaluate again in the first step (`Mode::Evaluate`): a group or the
    /// final step found a derivation missing from the store.
    pub reevaluate: bool,
    /// With `reevaluate`: the group steps run again too (one of them found
    /// its derivation missing).
    pub reevaluate_groups: bool,
    /// The builder and base images the client holds, by their identifier
    /// in the plan (`oci-layout://…`, `input:…`).
    pub client_images: BTreeMap<String, ClientImage>,
}

/// An image the client holds, as the builder or base.
#[derive(Clone, Debug)]
pub enum ClientImage {
    /// In an OCI layout the client serves.
    OciLayout(OciStore),
    /// A definition the client built: its result is the image's filesystem.
    Input(Input),
}

impl Emit {
    /// The environment entry that makes an op mounting the store cache run
    /// again: `--no-cache`, or the retry that runs nix again. Such ops are
    /// never marked `ignore_cache`: BuildKit then prunes the op's cache
    /// mounts before the solve (those without an input always, and those
    /// with one since moby/buildkit#5306), which would empty the store.
    pub fn rerun_env(&self) -> Option<String> {
        (self.no_cache || self.rerun_nix)
            .then(|| format!("NIX_FRONTEND_RUN={}.{}", self.run_id, self.attempt))
    }

    /// The builder or base image `identifier` names.
    fn image(&self, g: &mut Graph, identifier: &str, p: &pb::Platform, name: &str) -> Output {
        match self.client_images.get(identifier) {
            Some(ClientImage::Input(input)) => g.splice(input),
            Some(ClientImage::OciLayout(store)) => g.image(identifier, Some(store), p, name),
            None => g.image(identifier, None, p, name),
        }
    }

    fn lines(&self, span: Option<Span>) -> Option<Lines> {
        Some(Lines::of(span?, &self.spec_text))
    }

    fn source(&self) -> Option<(&str, &str)> {
        Some((&self.spec_filename, &self.spec_text))
    }
}

/// Exit code of a layer op whose store path is gone from the store cache:
/// the cache was pruned after the (cached) nix step built it.
pub const STORE_PATH_MISSING: i32 = 75;
