//! nix-frontend: a BuildKit frontend that builds a Nix flake into a small,
//! layered, reproducible image.
//!
//! The pipeline, one module per stage:
//! `spec` (text → [`spec::Spec`]) → `plan` (spec + fetched facts → [`plan::Plan`],
//! then closure → [`plan::ImagePlan`]) → `llb` (plan → `Definition`) → `bridge`
//! (the only async and I/O: talks to BuildKit). `proto` holds our own subset of
//! BuildKit's messages; `image` the image config and user files.

pub mod bridge;
pub mod debug;
pub mod diagnostic;
pub mod image;
pub mod llb;
pub mod plan;
pub mod proto;
pub mod spec;
pub mod subrequest;
