//! nix-frontend: a BuildKit frontend that builds a Nix flake into a small,
//! layered, reproducible image.
//!
//! The pipeline, one module per stage:
//! `spec` (text → [`spec::Spec`]) → `plan` (spec + fetched facts →
//! [`plan::Plan`], then the nix step's report → [`plan::ImagePlan`]) → `llb`
//! (plan → `Definition`). [`pipeline`] runs those stages in order over an
//! [`engine::Engine`]; `bridge` (the only I/O) is that engine for a real
//! BuildKit, [`engine::fake`] one from fixed facts. `proto` holds our own
//! subset of BuildKit's messages, `oci` the image formats, `image_ref` the
//! names of images, `sbom` the SPDX document of what nix built.

pub mod bridge;
pub mod debug;
pub mod diagnostic;
pub mod engine;
pub mod image_ref;
pub mod llb;
pub mod oci;
pub mod options;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod proto;
pub mod sbom;
pub mod span;
pub mod spec;
pub mod subrequest;
