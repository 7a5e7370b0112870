//! Image formats: the image config and the user database files an image
//! carries. A leaf: it knows nothing of specs or plans, only the formats.

mod config;
pub mod passwd;

pub use config::{Healthcheck, History, ImageConfig, RootFs, RunConfig, get_env, rfc3339, set_env};
