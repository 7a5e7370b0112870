//! Our own subset of BuildKit's protocol, as prost messages.
//!
//! Hand-written from field names and numbers (PROTOCOL.md) instead of taking
//! BuildKit's `.proto` files or the 2020 `buildkit-proto` crate: we need only a
//! few dozen messages, deterministic map order (`BTreeMap`) for stable op
//! digests, and no `protoc` at build time. Nothing outside `proto/`, `llb/` and
//! `bridge/` sees these types (the pipeline passes LLB `Definition`s along).

pub mod errdefs;
pub mod gateway;
pub mod llb;
