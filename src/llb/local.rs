//! Reading single files from the client: the spec and `.dockerignore`.
//! Only the named file moves; the Solve is lazy and the transfer happens in
//! the ReadFile that follows.

use super::graph::Graph;
use super::ops::Local;
use crate::proto::llb::Definition;

/// A definition that reads one file from a client local, and the digest of
/// its source op (warnings attach to it).
pub struct LocalRead {
    pub definition: Definition,
    pub vertex: String,
}

/// The spec, `filename` in the local `local` (the `dockerfile` local).
/// Asked for as BuildKit's Dockerfile frontend asks for it before it hands
/// the build to us (`# syntax=`): the same followed paths, no patterns. A
/// local source is keyed by its session and those, so BuildKit has the file
/// already and nothing moves again.
pub fn spec_file(local: &str, session: &str, filename: &str) -> LocalRead {
    read(
        &Local {
            name: local.to_owned(),
            session: session.to_owned(),
            shared_key: local.to_owned(),
            include: Vec::new(),
            exclude: Vec::new(),
            follow: vec![filename.to_owned(), format!("{filename}.dockerignore")],
        },
        &format!("[internal] load spec from {filename}"),
    )
}

/// One file of a local (the context's `.dockerignore` or `flake.lock`).
pub fn context_file(local: &str, session: &str, path: &str) -> LocalRead {
    read(
        &Local {
            name: local.to_owned(),
            session: session.to_owned(),
            shared_key: format!("{local}-{path}"),
            include: vec![path.to_owned()],
            exclude: Vec::new(),
            follow: vec![path.to_owned()],
        },
        &format!("[internal] load {path}"),
    )
}

/// Every file of a local named `name`, at any depth, and the directories
/// above them: where a spec read from another local is in this one.
pub fn context_named(local: &str, session: &str, name: &str) -> LocalRead {
    let pattern = format!("**/{name}");
    read(
        &Local {
            name: local.to_owned(),
            session: session.to_owned(),
            shared_key: format!("{local}-{pattern}"),
            include: vec![pattern.clone()],
            exclude: Vec::new(),
            follow: Vec::new(),
        },
        &format!("[internal] find {name} in the context"),
    )
}

fn read(local: &Local, name: &str) -> LocalRead {
    let mut g = Graph::new();
    let src = g.local(local, name);
    let vertex = src.digest.clone();
    LocalRead {
        definition: g.finish(Some(&src), None),
        vertex,
    }
}
