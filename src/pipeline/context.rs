//! Remote and named contexts: what the build context is (a client local, a
//! git repository, an http archive), the files read from a fetched one
//! (spec, `.dockerignore`, the commit), and the `--build-context`s that
//! replace flake inputs or the builder and base images. What each context
//! replaces and which commit a checkout's `.git` names is decided in
//! `plan`; here the files are read and the contexts fetched.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Failure, Session, SpecFile};
use crate::engine::{Engine, EngineError};
use crate::llb::{self, ContextSource, Definition, Input, OciStore, is_plain_path};
use crate::options::Options;
use crate::plan::{
    self, GitHead, ImageReplacement, InputSource, Override, Prefetch, Remote, packed_ref, redact,
};
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
        let commit = match self.tree_text(remote, ".git/HEAD").await? {
            None => None,
            Some(head) => match GitHead::parse(&head) {
                GitHead::Commit(c) => Some(c),
                GitHead::Ref(r) => match self.tree_text(remote, &format!(".git/{r}")).await? {
                    Some(c) => Some(c),
                    None => self
                        .tree_text(remote, ".git/packed-refs")
                        .await?
                        .and_then(|p| packed_ref(&p, &r)),
                },
            },
        };
        git.checked_commit(commit.as_deref())
            .map_err(|e| Failure::Remote {
                context: remote.shown(),
                message: e.to_string(),
            })
    }

    /// A text file of `remote`'s tree, as [`Self::tree_file`] reads it.
    async fn tree_text(&self, remote: &Remote, path: &str) -> Result<Option<String>, Failure> {
        let bytes = self.tree_file(remote, path).await?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
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
        Ok(match plan::image_replacement(named, &image.value)? {
            None => None,
            Some(ImageReplacement::Registry(r)) => Some(NamedImage::Registry(r)),
            Some(ImageReplacement::OciLayout { reference, store }) => {
                if !self.caps.llb(OCI_LAYOUT_CAP) {
                    return Err(Failure::MissingCap {
                        cap: OCI_LAYOUT_CAP,
                        what: "images from an oci-layout context",
                    });
                }
                Some(NamedImage::OciLayout {
                    reference,
                    store: OciStore {
                        session: self.opts.session_id.clone(),
                        store,
                    },
                })
            }
            Some(ImageReplacement::Input(input)) => Some(NamedImage::Input(input)),
        })
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
        let by_spec = &target.nix.override_inputs;
        let images: Vec<&str> = images.iter().map(|i| i.value.as_str()).collect();
        let lock_inputs = if plan::needs_lock_inputs(named, by_spec, &images) {
            self.lock_inputs(target).await?
        } else {
            Vec::new()
        };
        let mut out = (Vec::new(), Vec::new());
        for (name, input) in plan::input_overrides(named, by_spec, &images, &lock_inputs)? {
            let (source, revision) = self.named_source(&name, &named[&name]).await?;
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
        match plan::input_source(name, value)? {
            InputSource::Local(local) => Ok((
                ContextSource::Local {
                    session: self.opts.session_for(&local),
                    name: local,
                },
                None,
            )),
            InputSource::Remote(remote) => {
                let revision = self.revision(&remote).await?;
                Ok((self.remote_source(remote)?, revision))
            }
            InputSource::Input(input) => {
                let definition = self.input(name, &input).await?;
                let held = Input::new(definition).ok_or_else(|| {
                    plan::not_an_input_source(name, format!("input {input:?} is empty"))
                })?;
                Ok((ContextSource::Input(held), None))
            }
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
                plan::listed(inputs.keys())
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

    /// The paths of the spec in the build context, to leave out of what
    /// nix sees. BuildKit gives a frontend the spec's file name only
    /// (buildx sends the spec's directory as a local of its own), so in a
    /// local context the spec is the file of that name at the root when its
    /// bytes are the spec's, else the files of that name and bytes below it
    /// (`-f sub/app.toml`), else nowhere (a spec outside the context). A
    /// fetched context's spec is read from it, by its path.
    pub(super) async fn spec_paths(&self) -> Result<&[String], Failure> {
        let paths = self
            .spec_paths
            .get_or_try_init(|| async {
                let ContextSource::Local { name, session } = &self.context else {
                    return Ok::<_, Failure>(vec![self.spec.name.clone()]);
                };
                let spec_local = self.opts.dockerfile_local();
                if *name == spec_local {
                    return Ok(vec![self.spec.name.clone()]);
                }
                let file = self
                    .spec
                    .name
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let failed = |e: EngineError| Failure::SpecRead {
                    filename: self.spec.name.clone(),
                    message: format!("looking for it in the build context: {}", e.message),
                };
                let spec = self.spec.text.as_bytes();
                if self
                    .local_file(name, session, &file)
                    .await
                    .map_err(failed)?
                    .as_deref()
                    == Some(spec)
                {
                    return Ok(vec![file]);
                }
                self.spec_copies(name, session, &file).await.map_err(failed)
            })
            .await?;
        Ok(paths)
    }

    /// The files named `file` below the root of the local `name` whose
    /// bytes are the spec's (only files of that name move).
    async fn spec_copies(
        &self,
        name: &str,
        session: &str,
        file: &str,
    ) -> Result<Vec<String>, EngineError> {
        /// Directories looked into at most: the local holds only the
        /// directories above files of that name.
        const MAX_DIRS: usize = 10_000;
        let read = llb::context_named(name, session, file);
        let r = self.solve(read.definition, false).await?;
        let spec = self.spec.text.as_bytes();
        let (mut found, mut dirs, mut seen) = (Vec::new(), vec![String::new()], 0);
        while let Some(dir) = dirs.pop() {
            seen += 1;
            if seen > MAX_DIRS {
                break;
            }
            for (entry, is_dir) in self
                .engine
                .read_dir(&r, if dir.is_empty() { "/" } else { &dir })
                .await?
            {
                let path = in_dir(&dir, &entry);
                if is_dir {
                    dirs.push(path);
                } else if entry == file
                    && !dir.is_empty()
                    && self.read_optional(&r, &path).await?.as_deref() == Some(spec)
                {
                    found.push(path);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The top-level inputs in the flake's `flake.lock` (none without one).
    async fn lock_inputs(&self, target: &Target) -> Result<Vec<String>, Failure> {
        let bytes = self.flake_lock(target).await?;
        Ok(bytes.map(|b| plan::lock_inputs(&b)).unwrap_or_default())
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

/// What replaces the builder or base image.
pub(super) enum NamedImage {
    /// `docker-image://REF`
    Registry(String),
    /// From the client's OCI layout: `NAME@DIGEST` in `store`.
    OciLayout { reference: String, store: OciStore },
    /// A client's input (bake's `target:`).
    Input(String),
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
