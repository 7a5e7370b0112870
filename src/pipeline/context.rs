//! Remote and named contexts: what the build context is (a client local, a
//! git repository, an http archive), the files read from a fetched one
//! (spec, `.dockerignore`, the commit), and the `--build-context`s that
//! replace flake inputs or the builder and base images.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Failure, Session, SpecFile};
use crate::engine::{Engine, EngineError};
use crate::image_ref::{ImageRef, familiar};
use crate::llb::{ContextSource, Definition, Input, OciStore, is_plain_path};
use crate::options::Options;
use crate::plan::{self, Named, Override, Prefetch, Remote, RemoteError, redact};
use crate::spec::{Located, Target};

/// The caps a fetched context needs, by kind.
const GIT_CAPS: [&str; 3] = ["source.git", "source.git.keepgitdir", "source.git.fullurl"];
const HTTP_CAPS: [&str; 1] = ["source.http"];
/// Images from a client's OCI layout (BuildKit v0.11).
const OCI_LAYOUT_CAP: &str = "source.ocilayout";
/// The Inputs call (BuildKit v0.7).
const INPUTS_CAP: &str = "frontend.inputs";
/// Copies that take include/exclude patterns (BuildKit v0.9).
const COPY_PATTERNS: &str = "file.copy.includeexcludepatterns";
/// The git source checks `git.checksum` (BuildKit v0.22+).
const GIT_CHECKSUM: &str = "source.git.checksum";

impl<E: Engine> Session<'_, E> {
    /// The build context, from the `context` option: a URL is fetched by
    /// BuildKit, anything else is the client's local.
    pub(super) fn context_source(&self) -> Result<ContextSource, Failure> {
        let Some(url) = self.opts.remote_context() else {
            return Ok(local(self.opts));
        };
        match Remote::parse(url) {
            None => Ok(local(self.opts)),
            Some(Err(e)) => Err(Failure::Remote {
                context: url.to_owned(),
                message: e.to_string(),
            }),
            Some(Ok(remote)) => self.remote_source(remote),
        }
    }

    fn remote_source(&self, mut remote: Remote) -> Result<ContextSource, Failure> {
        if let Remote::Git(git) = &mut remote {
            git.engine_checksum = self.caps.llb(GIT_CHECKSUM);
        }
        let caps: &[&'static str] = match remote {
            Remote::Git(_) => &GIT_CAPS,
            Remote::Http { .. } => &HTTP_CAPS,
        };
        if let Some(cap) = caps.iter().find(|c| !self.caps.llb(c)) {
            return Err(Failure::MissingCap {
                cap,
                what: "fetching a remote context",
            });
        }
        Ok(ContextSource::Remote {
            remote,
            patterns: self.caps.llb(COPY_PATTERNS),
        })
    }

    /// The fetched tree of `remote`, solved (lazily: files move on read)
    /// once per invocation.
    async fn tree(&self, remote: &Remote) -> Result<(String, String), Failure> {
        let (definition, vertex) = ContextSource::tree_definition(remote);
        let solved = Rc::clone(self.trees.borrow_mut().entry(vertex.clone()).or_default());
        let r = solved
            .get_or_try_init(|| async {
                self.solve(definition, false)
                    .await
                    .map_err(|e| remote_failure(remote, e))
            })
            .await?;
        Ok((r.clone(), vertex))
    }

    /// A file of `remote`'s tree (`path` from the tree's root); `None` when
    /// there is no such file.
    async fn tree_file(&self, remote: &Remote, path: &str) -> Result<Option<Vec<u8>>, Failure> {
        let (r, _) = self.tree(remote).await?;
        self.read_optional(&r, path)
            .await
            .map_err(|e| remote_failure(remote, e))
    }

    /// The spec from a fetched context, unless the client sent it itself.
    pub(super) async fn remote_spec(&self) -> Option<Result<SpecFile, Failure>> {
        let ContextSource::Remote { remote, .. } = &self.context else {
            return None;
        };
        if self.opts.has_dockerfile_local() {
            return None;
        }
        Some(
            async {
                let name = self.opts.filename_path();
                let path = in_dir(remote.subdir(), &name);
                let (r, vertex) = self.tree(remote).await?;
                let Some(bytes) = self
                    .read_optional(&r, &path)
                    .await
                    .map_err(|e| remote_failure(remote, e))?
                else {
                    return Err(Failure::RemoteSpec {
                        context: remote.shown(),
                        path,
                    });
                };
                let text = String::from_utf8(bytes).map_err(|_| Failure::SpecRead {
                    filename: name.clone(),
                    message: "the file is not UTF-8 text".into(),
                })?;
                Ok(SpecFile { name, text, vertex })
            }
            .await,
        )
    }

    /// The `.dockerignore` of a fetched context (`None`: the context is local).
    pub(super) async fn remote_dockerignore(&self) -> Option<Result<Option<String>, Failure>> {
        let ContextSource::Remote { remote, .. } = &self.context else {
            return None;
        };
        Some(
            async {
                let sub = remote.subdir();
                // The spec may come from the client (-f outside the context):
                // the directory is checked here, not by nix later.
                if !sub.is_empty() {
                    let (r, _) = self.tree(remote).await?;
                    let is_dir = self
                        .engine
                        .is_dir(&r, sub)
                        .await
                        .map_err(|e| remote_failure(remote, e))?;
                    if !is_dir {
                        return Err(Failure::Remote {
                            context: remote.shown(),
                            message: format!("no directory {sub} in it"),
                        });
                    }
                }
                // `<spec>.dockerignore` beside the spec wins, as in BuildKit.
                let beside = format!("{}.dockerignore", self.opts.filename_path());
                if let Some(b) = self.tree_file(remote, &beside).await? {
                    return Ok(Some(String::from_utf8_lossy(&b).into_owned()));
                }
                let path = in_dir(sub, ".dockerignore");
                self.tree_file(remote, &path)
                    .await
                    .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
            }
            .await,
        )
    }

    /// The commit of the build context, when it is a git repository.
    pub(super) async fn context_revision(&self) -> Result<Option<String>, Failure> {
        match &self.context {
            ContextSource::Remote { remote, .. } => self.revision(remote).await,
            ContextSource::Local { .. } | ContextSource::Input { .. } => Ok(None),
        }
    }

    /// The context's git remote: as buildx sends it (`vcs:source`, from a
    /// local checkout), else the fetched repository's.
    pub(super) fn vcs_source(&self) -> Option<String> {
        self.opts.vcs_source().or_else(|| match &self.context {
            ContextSource::Remote {
                remote: Remote::Git(git),
                ..
            } => Some(redact(&git.remote)),
            _ => None,
        })
    }

    /// The context's commit: `vcs:revision`, else the fetched one's.
    pub(super) fn vcs_revision(&self) -> Option<String> {
        self.opts.vcs_revision().or_else(|| self.revision.clone())
    }

    /// The commit BuildKit checked out: its `.git/HEAD` (detached at the
    /// commit), or the ref HEAD names.
    async fn revision(&self, remote: &Remote) -> Result<Option<String>, Failure> {
        let Remote::Git(git) = remote else {
            return Ok(None);
        };
        let text = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
        let rev = match text(self.tree_file(remote, ".git/HEAD").await?) {
            None => None,
            Some(head) => match head.strip_prefix("ref: ") {
                None => Some(head),
                Some(r) => match text(self.tree_file(remote, &format!(".git/{r}")).await?) {
                    Some(rev) => Some(rev),
                    None => text(self.tree_file(remote, ".git/packed-refs").await?).and_then(|p| {
                        p.lines()
                            .find_map(|l| l.strip_suffix(&format!(" {r}")).map(str::to_owned))
                    }),
                },
            },
        };
        // A SHA-1 or a SHA-256 commit id.
        let rev =
            rev.filter(|r| matches!(r.len(), 40 | 64) && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if let Some(want) = &git.checksum {
            // Fails closed: a checksum is checked, or the build stops.
            let Some(got) = &rev else {
                return Err(Failure::Remote {
                    context: remote.shown(),
                    message: format!(
                        "the commit of the checkout cannot be read, so checksum {want} cannot be checked"
                    ),
                });
            };
            if !got.to_ascii_lowercase().starts_with(want.as_str()) {
                return Err(Failure::Remote {
                    context: remote.shown(),
                    message: format!("the ref is commit {got}, not {want} (checksum)"),
                });
            }
        }
        Ok(rev)
    }

    /// Refuses what a fetched context cannot do on engines whose copies take
    /// no patterns: `src`, and `.dockerignore` wildcards.
    pub(super) fn check_filter(
        &self,
        target: &Target,
        dockerignore: &[String],
    ) -> Result<(), Failure> {
        let ContextSource::Remote {
            remote,
            patterns: false,
        } = &self.context
        else {
            return Ok(());
        };
        let what = if target.src.is_some() {
            "`src`"
        } else if dockerignore.iter().any(|p| !is_plain_path(p)) {
            "wildcard .dockerignore patterns"
        } else {
            return Ok(());
        };
        Err(Failure::RemoteFilter {
            context: remote.shown(),
            what: what.to_owned(),
        })
    }

    /// The `--build-context` that replaces `image` (the builder or the
    /// base), as `FROM` finds one in a Dockerfile: the image to use instead.
    pub(super) fn named_image(
        &self,
        named: &BTreeMap<String, String>,
        image: &Located<String>,
    ) -> Result<Option<NamedImage>, Failure> {
        let name = familiar(&image.value);
        let Some(value) = named.get(&name) else {
            return Ok(None);
        };
        match Named::parse(value) {
            Ok(Named::Image(r)) => Ok(Some(NamedImage::Registry(r))),
            Ok(Named::OciLayout { store, digest }) => {
                if !self.caps.llb(OCI_LAYOUT_CAP) {
                    return Err(Failure::MissingCap {
                        cap: OCI_LAYOUT_CAP,
                        what: "images from an oci-layout context",
                    });
                }
                Ok(Some(NamedImage::OciLayout {
                    // BuildKit's own Dockerfile frontend names it so too:
                    // the image's name, pinned to the layout's digest.
                    reference: pinned(&image.value, &digest),
                    store: OciStore {
                        session: self.opts.session_id.clone(),
                        store,
                    },
                }))
            }
            Ok(Named::Input(input)) => Ok(Some(NamedImage::Input(input))),
            // Meant as an image, so what is wrong with it is the message.
            Err(e @ RemoteError::OciLayout(_)) => Err(Failure::Named {
                name,
                message: e.to_string(),
                hint: "buildx names the layout: --build-context NAME=oci-layout://PATH[:TAG] or NAME=oci-layout://PATH@sha256:DIGEST".into(),
            }),
            _ => Err(Failure::Named {
                name,
                message: format!("replaces an image, so it must be an image, not {value:?}"),
                hint: "give an image: --build-context NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG]".into(),
            }),
        }
    }

    /// The named contexts that replace flake inputs: by `nix.override-inputs`,
    /// or by the name of an input in the flake's `flake.lock`. A context that
    /// is neither (nor an image of the spec) is an error.
    pub(super) async fn overrides(
        &self,
        target: &Target,
        named: &BTreeMap<String, String>,
        images: &[&Located<String>],
    ) -> Result<(Vec<Override>, Vec<ContextSource>), Failure> {
        let by_spec: BTreeMap<&str, &str> = target
            .nix
            .override_inputs
            .iter()
            .map(|(input, name)| (name.value.as_str(), input.as_str()))
            .collect();
        let taken: Vec<String> = images.iter().map(|i| familiar(&i.value)).collect();
        let mut lock_inputs: Option<Vec<String>> = None;
        let mut out = (Vec::new(), Vec::new());
        for (name, value) in named {
            if taken.contains(name) {
                continue;
            }
            let input = match by_spec.get(name.as_str()) {
                Some(i) => (*i).to_owned(),
                None => {
                    if lock_inputs.is_none() {
                        lock_inputs = Some(self.lock_inputs(target).await?);
                    }
                    let inputs = lock_inputs.as_deref().unwrap_or_default();
                    if !inputs.contains(name) {
                        return Err(Failure::Named {
                            name: name.clone(),
                            message: format!(
                                "is no input of the flake (its flake.lock has {}), no nix.override-inputs entry, and not the builder or base image",
                                listed(inputs.iter())
                            ),
                            hint: "name the context after a flake input, map it with [nix.override-inputs] INPUT = \"NAME\", or drop the --build-context".into(),
                        });
                    }
                    name.clone()
                }
            };
            let (source, revision) = self.named_source(name, value).await?;
            out.0.push(Override { input, revision });
            out.1.push(source);
        }
        Ok(out)
    }

    async fn named_source(
        &self,
        name: &str,
        value: &str,
    ) -> Result<(ContextSource, Option<String>), Failure> {
        let refused = |message: String| {
            Failure::Named {
            name: name.to_owned(),
            message,
            hint: "a flake input comes from a directory (--build-context NAME=DIR) or a git or archive URL".into(),
        }
        };
        match Named::parse(value).map_err(|e| refused(e.to_string()))? {
            Named::Local(local) => Ok((
                ContextSource::Local {
                    session: self.opts.session_for(&local),
                    name: local,
                },
                None,
            )),
            Named::Remote(remote) => {
                let revision = self.revision(&remote).await?;
                Ok((self.remote_source(remote)?, revision))
            }
            Named::Input(input) => {
                let definition = self.input(name, &input).await?;
                let input = Input::new(definition)
                    .ok_or_else(|| refused(format!("input {input:?} is empty")))?;
                Ok((ContextSource::Input(input), None))
            }
            Named::Image(_) | Named::OciLayout { .. } => {
                Err(refused("an image cannot replace a flake input".to_owned()))
            }
            Named::Unsupported(kind) => Err(refused(format!(
                "{kind} contexts are not supported by this frontend"
            ))),
        }
    }

    /// The definition of the client's input `input`, which the named
    /// context `name` names.
    pub(super) async fn input(&self, name: &str, input: &str) -> Result<Definition, Failure> {
        let inputs = self.inputs().await?;
        inputs.get(input).cloned().ok_or_else(|| Failure::Named {
            name: name.to_owned(),
            message: format!(
                "names input {input:?}, which the client did not send (it sent {})",
                listed(inputs.keys())
            ),
            hint: "with bake, name a target that this build depends on: contexts = { NAME = \"target:TARGET\" }".into(),
        })
    }

    /// The client's inputs (Inputs), asked for once per invocation.
    async fn inputs(&self) -> Result<&BTreeMap<String, Definition>, Failure> {
        if !self.caps.gateway(INPUTS_CAP) {
            return Err(Failure::MissingCap {
                cap: INPUTS_CAP,
                what: "input contexts",
            });
        }
        Ok(self.inputs.get_or_try_init(|| self.engine.inputs()).await?)
    }

    /// The top-level inputs in the flake's `flake.lock` (none without one).
    async fn lock_inputs(&self, target: &Target) -> Result<Vec<String>, Failure> {
        let bytes = self.flake_lock(target).await?;
        Ok(bytes.map(|b| root_inputs(&b)).unwrap_or_default())
    }

    /// The flake's `flake.lock`, when it has one; read once per invocation.
    pub(super) async fn flake_lock(&self, target: &Target) -> Result<Option<Vec<u8>>, Failure> {
        let (sub, _) = target.flake_parts();
        let path = in_dir(sub, "flake.lock");
        let read = Rc::clone(self.locks.borrow_mut().entry(path.clone()).or_default());
        let lock = read
            .get_or_try_init(|| async {
                Ok::<_, Failure>(match &self.context {
                    ContextSource::Remote { remote, .. } => {
                        self.tree_file(remote, &in_dir(remote.subdir(), &path))
                            .await?
                    }
                    ContextSource::Local { name, session } => {
                        self.local_file(name, session, &path).await?
                    }
                    // The build context itself is never an input.
                    ContextSource::Input { .. } => None,
                })
            })
            .await?;
        Ok(lock.clone())
    }

    /// The git inputs of the flake's lock that BuildKit fetches, and their
    /// sources; none where the engine cannot fetch git (nix does then).
    pub(super) async fn prefetch(
        &self,
        target: &Target,
    ) -> Result<(Vec<Prefetch>, Vec<ContextSource>), Failure> {
        if GIT_CAPS.iter().any(|c| !self.caps.llb(c)) {
            return Ok((Vec::new(), Vec::new()));
        }
        let Some(lock) = self.flake_lock(target).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let prefetch = plan::prefetchable(&lock);
        let sources = prefetch
            .iter()
            .map(|p| self.remote_source(Remote::Git(p.git.clone())))
            .collect::<Result<_, _>>()?;
        Ok((prefetch, sources))
    }
}

/// The client's local build context (`context`, or what `contextkey` names).
pub(super) fn local(opts: &Options) -> ContextSource {
    let name = opts.context_local();
    ContextSource::Local {
        session: opts.session_for(&name),
        name,
    }
}

/// The root node's inputs of a `flake.lock`.
fn root_inputs(lock: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(lock) else {
        return Vec::new();
    };
    let root = v["root"].as_str().unwrap_or("root");
    v["nodes"][root]["inputs"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// What replaces the builder or base image.
pub(super) enum NamedImage {
    /// `docker-image://REF`
    Registry(String),
    /// From the client's OCI layout: `NAME@DIGEST` in `store`.
    OciLayout { reference: String, store: OciStore },
    /// A client's input (bake's `target:`).
    Input(String),
}

/// `name` in full, as BuildKit normalizes one, pinned to `digest`:
/// `alpine:3` is `docker.io/library/alpine:3@DIGEST`.
fn pinned(name: &str, digest: &str) -> String {
    match ImageRef::parse(name) {
        Ok(r) => r.with_digest(digest).to_string(),
        // The spec checked the name; what it let through stays as written.
        Err(_) => format!("{name}@{digest}"),
    }
}

/// Names for a message: "a, b", or "none".
fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn in_dir(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    }
}

fn remote_failure(remote: &Remote, e: EngineError) -> Failure {
    Failure::Remote {
        context: remote.shown(),
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_names_as_buildkit() {
        assert_eq!(
            pinned("alpine:3", "sha256:0"),
            "docker.io/library/alpine:3@sha256:0"
        );
        assert_eq!(
            pinned("localhost:5000/a/b", "sha256:0"),
            "localhost:5000/a/b@sha256:0"
        );
    }

    #[test]
    fn reads_root_inputs() {
        let lock = br#"{"nodes":{"dep":{"locked":{}},"root":{"inputs":{"dep":"dep","greeting":"greeting_2"}}},"root":"root","version":7}"#;
        assert_eq!(root_inputs(lock), ["dep", "greeting"]);
        assert!(root_inputs(b"not json").is_empty());
    }
}
