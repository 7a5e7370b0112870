//! Where the build context (and each named context) comes from: a client
//! local, or a tree BuildKit fetches itself (a git checkout, an http file
//! unpacked). Whatever the source, the nix step and the copies get the same
//! thing: the context's directory, filtered by `src` and `.dockerignore`.

use std::collections::BTreeMap;

use super::graph::{Graph, Input, Output};
use super::ops::{FileAction, Local};
use crate::plan::{Remote, git_identifier};
use crate::proto::llb::{self as pb, Definition};

/// The secrets BuildKit's git source reads for private repositories (per
/// host first: `GIT_AUTH_TOKEN.<host>`), as the Dockerfile frontend names
/// them. They reach the fetch only, never an exec or the image.
const GIT_AUTH_TOKEN: &str = "GIT_AUTH_TOKEN";
const GIT_AUTH_HEADER: &str = "GIT_AUTH_HEADER";
/// The file name the http source gives what it downloads.
const HTTP_FILE: &str = "context";

#[derive(Clone, Debug, PartialEq)]
pub enum ContextSource {
    /// Sent by the client: filtered on the client side.
    Local { name: String, session: String },
    /// Fetched by BuildKit, filtered by a copy. `patterns`: the engine's
    /// copies take include/exclude patterns; without, only plain paths can
    /// be left out (removed after the copy).
    Remote { remote: Remote, patterns: bool },
    /// A definition the client built (`input:NAME`).
    Input(Input),
}

impl ContextSource {
    /// The fetched tree as it is (a git checkout keeps its `.git`, so the
    /// commit can be read), for reading files from it.
    pub fn tree_definition(remote: &Remote) -> (Definition, String) {
        let mut g = Graph::new();
        let tree = tree(&mut g, remote);
        let vertex = tree.digest.clone();
        (g.finish(Some(&tree), None), vertex)
    }
}

/// The whole fetched tree of `remote`.
fn tree(g: &mut Graph, remote: &Remote) -> Output {
    match remote {
        Remote::Git(git) => {
            let mut attrs = BTreeMap::from([
                ("git.fullurl".to_owned(), git.remote.clone()),
                ("git.keepgitdir".to_owned(), "true".to_owned()),
                ("git.authtokensecret".to_owned(), GIT_AUTH_TOKEN.to_owned()),
                (
                    "git.authheadersecret".to_owned(),
                    GIT_AUTH_HEADER.to_owned(),
                ),
            ]);
            if git.ssh {
                attrs.insert("git.mountsshsock".into(), "default".into());
            }
            // BuildKit compares the whole commit id; a prefix is ours to check.
            if let Some(c) = git.checksum.as_ref().filter(|c| matches!(c.len(), 40 | 64))
                && git.engine_checksum
            {
                attrs.insert("git.checksum".into(), c.clone());
            }
            g.source(
                &git_identifier(git),
                attrs,
                &format!("[context] fetch {}", remote.shown()),
            )
        }
        Remote::Http { url } => {
            let file = g.source(
                url,
                BTreeMap::from([("http.filename".to_owned(), HTTP_FILE.to_owned())]),
                &format!("[context] fetch {}", remote.shown()),
            );
            let unpack = FileAction::Unpack {
                from: file,
                src: format!("/{HTTP_FILE}"),
            };
            g.file(
                None,
                &[unpack],
                "[context] unpack",
                None,
                &pb::Platform::default(),
            )
        }
    }
}

/// The context's files `include` (empty: all) matches and `exclude` does
/// not, relative to the context's directory.
pub fn files(
    g: &mut Graph,
    source: &ContextSource,
    include: &[String],
    exclude: &[String],
    name: &str,
) -> Output {
    match source {
        ContextSource::Local {
            name: local,
            session,
        } => g.local(
            &Local {
                name: local.clone(),
                session: session.clone(),
                shared_key: local.clone(),
                include: include.to_vec(),
                exclude: exclude.to_vec(),
                follow: Vec::new(),
            },
            name,
        ),
        ContextSource::Input(input) => {
            let from = g.splice(input);
            g.file(
                None,
                &[FileAction::Select {
                    from,
                    src: "/".into(),
                    include: include.to_vec(),
                    exclude: exclude.to_vec(),
                }],
                name,
                None,
                &pb::Platform::default(),
            )
        }
        ContextSource::Remote { remote, patterns } => {
            let t = tree(g, remote);
            let sub = remote.subdir();
            let mut exclude = exclude.to_vec();
            // The checkout keeps its `.git` for us to read the commit; no
            // copy of it does (the nix step's filter may say so already).
            if matches!(remote, Remote::Git(_))
                && sub.is_empty()
                && !exclude.iter().any(|e| e == ".git")
            {
                exclude.push(".git".into());
            }
            // Without patterns the pipeline allowed only plain paths (and
            // no `src`): those are removed after the copy.
            let (include, exclude, removed) = if *patterns {
                (include.to_vec(), exclude, Vec::new())
            } else {
                (Vec::new(), Vec::new(), exclude)
            };
            let mut actions = vec![FileAction::Select {
                from: t,
                src: format!("/{sub}"),
                include,
                exclude,
            }];
            actions.extend(removed.into_iter().map(|p| FileAction::Rm {
                path: format!("/{}", p.trim_matches('/')),
            }));
            g.file(None, &actions, name, None, &pb::Platform::default())
        }
    }
}

/// Whether `pattern` names one path (no wildcard, no exception): what a
/// removal can leave out where copies take no patterns.
pub fn is_plain_path(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.contains(['*', '?', '[', '!', '\\'])
}
