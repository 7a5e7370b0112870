//! Remote contexts: what a `context` option (or a `--build-context` value)
//! that is a URL names. Git when BuildKit's clients would take it as git
//! (`git@…`, `ssh://`, `git://`, or http(s) whose path ends in `.git`),
//! else an http(s) file, unpacked if it is an archive.

use serde::Serialize;

/// A context fetched by BuildKit rather than sent by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Remote {
    Git(GitRemote),
    Http { url: String },
}

/// A git repository, a ref in it and a directory of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitRemote {
    /// The remote as git fetches it (`https://…`, `ssh://…`, `git@host:path`).
    pub remote: String,
    /// Branch, tag or commit; empty: the remote's default branch.
    pub reference: String,
    /// The context's directory in the repository; empty: its root.
    pub subdir: String,
    /// A commit (prefix) the ref must resolve to (`?checksum=`): hex digits
    /// of a SHA-1 or SHA-256 commit id.
    pub checksum: Option<String>,
    /// BuildKit checks a full `checksum` itself at the fetch (its git
    /// source's `git.checksum`, cap `source.git.checksum`); the commit is
    /// checked after the fetch either way.
    pub engine_checksum: bool,
    /// Fetched over ssh: BuildKit needs the client's agent (`--ssh default`).
    pub ssh: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("subdirectory {0:?} leaves the repository")]
    Subdir(String),
    #[error("query key `{0}` is not one of ref, subdir, checksum, keep-git-dir, submodules")]
    Query(String),
    #[error("checksum={0:?} is not a commit: hex digits of a commit id (SHA-1 or SHA-256)")]
    Checksum(String),
    #[error("{0:?} names no image: an oci-layout context is STORE[:TAG]@sha256:DIGEST")]
    OciLayout(String),
    #[error("the commit of the checkout cannot be read, so checksum {0} cannot be checked")]
    ChecksumUnread(String),
    #[error("the ref is commit {got}, not {want} (checksum)")]
    ChecksumMismatch { got: String, want: String },
}

/// What a checkout's `.git/HEAD` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitHead {
    /// Detached at a commit, as BuildKit checks a ref out.
    Commit(String),
    /// On a ref (`refs/heads/main`), whose commit is in `.git/REF` or, once
    /// git packed it, in `.git/packed-refs`.
    Ref(String),
}

impl GitHead {
    pub fn parse(head: &str) -> Self {
        let head = head.trim();
        match head.strip_prefix("ref: ") {
            Some(r) => Self::Ref(r.to_owned()),
            None => Self::Commit(head.to_owned()),
        }
    }
}

/// The commit `.git/packed-refs` gives the ref `name`.
pub fn packed_ref(packed_refs: &str, name: &str) -> Option<String> {
    packed_refs.lines().find_map(|l| {
        l.trim()
            .strip_suffix(name)
            .and_then(|c| c.strip_suffix(' '))
            .map(str::to_owned)
    })
}

impl GitRemote {
    /// The commit read from the checkout (`None`: none could be), if it is
    /// a SHA-1 or SHA-256 commit id. With a `checksum`, it must be one and
    /// start with it: a checksum is checked, or the build stops.
    pub fn checked_commit(&self, read: Option<&str>) -> Result<Option<String>, RemoteError> {
        let commit = read
            .map(str::trim)
            .filter(|c| matches!(c.len(), 40 | 64) && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        let Some(want) = &self.checksum else {
            return Ok(commit);
        };
        match &commit {
            None => Err(RemoteError::ChecksumUnread(want.clone())),
            Some(got) if !got.to_ascii_lowercase().starts_with(want.as_str()) => {
                Err(RemoteError::ChecksumMismatch {
                    got: got.clone(),
                    want: want.clone(),
                })
            }
            Some(_) => Ok(commit),
        }
    }
}

impl Remote {
    /// `None` when `s` is not a URL (a local context).
    pub fn parse(s: &str) -> Option<Result<Self, RemoteError>> {
        let is_http = s.starts_with("https://") || s.starts_with("http://");
        let scp_like = s.starts_with("git@") && s.contains(':');
        let git_scheme = s.starts_with("ssh://") || s.starts_with("git://");
        if !(is_http || scp_like || git_scheme) {
            return None;
        }
        let (before_fragment, fragment) = match s.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (s, None),
        };
        let (base, query) = match before_fragment.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (before_fragment, None),
        };
        if is_http && !base.ends_with(".git") && !base.ends_with(".git/") {
            return Some(Ok(Self::Http { url: s.to_owned() }));
        }
        Some(git(base, query, fragment, !is_http).map(Self::Git))
    }

    /// How logs and errors show it (no credentials).
    pub fn shown(&self) -> String {
        match self {
            Self::Git(g) => {
                let mut s = redact(&g.remote);
                if !g.reference.is_empty() || !g.subdir.is_empty() {
                    s.push('#');
                    s.push_str(&g.reference);
                }
                if !g.subdir.is_empty() {
                    s.push(':');
                    s.push_str(&g.subdir);
                }
                s
            }
            Self::Http { url } => redact_query(url),
        }
    }

    /// The context's directory inside the fetched tree ("" = its root).
    pub fn subdir(&self) -> &str {
        match self {
            Self::Git(g) => &g.subdir,
            Self::Http { .. } => "",
        }
    }
}

/// A `--build-context` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// `docker-image://REF`
    Image(String),
    /// A directory of the client: `local:NAME` names the local.
    Local(String),
    Remote(Remote),
    /// `input:NAME`: a definition the client built (bake's `target:`),
    /// which the Inputs call hands over.
    Input(String),
    /// `oci-layout://STORE@DIGEST`: an image in an OCI layout the client
    /// serves (buildx resolves a path's tag to the digest).
    OciLayout {
        store: String,
        digest: String,
    },
    /// A value that is none of the above.
    Unsupported(String),
}

impl Named {
    pub fn parse(value: &str) -> Result<Self, RemoteError> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(Self::Image(r.to_owned()));
        }
        if let Some(l) = value.strip_prefix("local:") {
            return Ok(Self::Local(l.to_owned()));
        }
        if let Some(i) = value.strip_prefix("input:") {
            return Ok(Self::Input(i.to_owned()));
        }
        if let Some(layout) = value.strip_prefix("oci-layout://") {
            // buildx sends STORE:TAG@DIGEST; the store is the name alone.
            return match layout.split_once('@') {
                Some((named, digest)) if digest.starts_with("sha256:") => {
                    let store = match named.rsplit_once(':') {
                        Some((name, tag)) if !tag.contains('/') => name,
                        _ => named,
                    };
                    if store.is_empty() {
                        return Err(RemoteError::OciLayout(value.to_owned()));
                    }
                    Ok(Self::OciLayout {
                        store: store.to_owned(),
                        digest: digest.to_owned(),
                    })
                }
                _ => Err(RemoteError::OciLayout(value.to_owned())),
            };
        }
        match Remote::parse(value) {
            Some(r) => Ok(Self::Remote(r?)),
            None => Ok(Self::Unsupported(
                value.split_once(':').map_or(value, |(k, _)| k).to_owned(),
            )),
        }
    }
}

fn git(
    base: &str,
    query: Option<&str>,
    fragment: Option<&str>,
    ssh: bool,
) -> Result<GitRemote, RemoteError> {
    let mut reference = String::new();
    let mut subdir = String::new();
    let mut checksum = None;
    if let Some(f) = fragment {
        match f.split_once(':') {
            Some((r, d)) => {
                reference = r.to_owned();
                subdir = d.to_owned();
            }
            None => reference = f.to_owned(),
        }
    }
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "ref" => reference = v,
            "subdir" => subdir = v,
            "checksum" | "commit" => {
                let hex = v.bytes().all(|b| b.is_ascii_hexdigit());
                if v.is_empty() || !hex || v.len() > 64 {
                    return Err(RemoteError::Checksum(v));
                }
                checksum = Some(v.to_ascii_lowercase());
            }
            // The tree nix sees never has `.git` (the revision reaches the
            // flake as `self.rev`), and BuildKit fetches submodules anyway.
            "keep-git-dir" | "submodules" => {}
            other => return Err(RemoteError::Query(other.to_owned())),
        }
    }
    let subdir = clean_subdir(&subdir)?;
    let ssh = ssh && !base.starts_with("git://");
    Ok(GitRemote {
        remote: base.trim_end_matches('/').to_owned(),
        reference,
        subdir,
        checksum,
        engine_checksum: false,
        ssh,
    })
}

/// `a/./b/` → `a/b`; `..` that leaves the root is refused.
fn clean_subdir(s: &str) -> Result<String, RemoteError> {
    let mut parts: Vec<&str> = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(RemoteError::Subdir(s.to_owned()));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A URL without its credentials (`user:password@` removed), as logs, labels
/// and the SBOM show it. What does not parse as a URL (an scp-like
/// `git@host:path`, a path) is shown as it is: it carries no password.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            // Only a URL without a host refuses these, and it has no credentials.
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.into()
        }
        _ => url.to_owned(),
    }
}

/// [`redact`], and every query value replaced by `redacted`: a presigned archive URL
/// carries its signature there (`X-Amz-Signature=…`).
pub fn redact_query(url: &str) -> String {
    let shown = redact(url);
    let Ok(mut u) = url::Url::parse(&shown) else {
        return shown;
    };
    let Some(query) = u.query().filter(|q| !q.is_empty()).map(str::to_owned) else {
        return shown;
    };
    let keys: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| format!("{k}=redacted"))
        .collect();
    u.set_query(Some(&keys.join("&")));
    u.into()
}

/// BuildKit's git source identifier for `g` (`git://host/path#ref`): the
/// scheme is dropped, `git.fullurl` carries the remote itself. The subdir
/// is never BuildKit's: the whole checkout is fetched with its `.git`, so
/// the commit can be read.
pub fn git_identifier(g: &GitRemote) -> String {
    let without_scheme = match g.remote.split_once("://") {
        Some((_, rest)) => redact(&format!("x://{rest}"))[4..].to_owned(),
        // scp-like `git@host:path`
        None => g
            .remote
            .split_once('@')
            .map_or(g.remote.as_str(), |(_, r)| r)
            .replacen(':', "/", 1),
    };
    let mut id = format!("git://{without_scheme}");
    if !g.reference.is_empty() {
        id.push('#');
        id.push_str(&g.reference);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_of(s: &str) -> GitRemote {
        match Remote::parse(s) {
            Some(Ok(Remote::Git(g))) => g,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn local_paths_are_not_remote() {
        for s in ["", ".", "/ctx", "context", "github.com/a/b"] {
            assert!(Remote::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn git_urls() {
        let g = git_of("https://example.org/o/r.git#main:sub/dir");
        assert_eq!(g.remote, "https://example.org/o/r.git");
        assert_eq!(
            (g.reference.as_str(), g.subdir.as_str()),
            ("main", "sub/dir")
        );
        assert!(!g.ssh);
        let g = git_of("git@example.org:o/r.git#v1");
        assert!(g.ssh);
        assert_eq!(git_identifier(&g), "git://example.org/o/r.git#v1");
        let g = git_of("ssh://git@example.org/o/r.git");
        assert!(g.ssh);
        assert_eq!(git_identifier(&g), "git://example.org/o/r.git");
        let g = git_of("git://example.org/r.git#:d");
        assert!(!g.ssh);
        assert_eq!((g.reference.as_str(), g.subdir.as_str()), ("", "d"));
    }

    #[test]
    fn query_form() {
        let g =
            git_of("https://example.org/r.git?ref=refs%2Fheads%2Fx&subdir=a/./b/&checksum=abc123");
        assert_eq!(g.reference, "refs/heads/x");
        assert_eq!(g.subdir, "a/b");
        assert_eq!(g.checksum.as_deref(), Some("abc123"));
        assert_eq!(
            Remote::parse("https://example.org/r.git?tag=1"),
            Some(Err(RemoteError::Query("tag".into())))
        );
        // A checksum that checks nothing is refused, not ignored.
        for bad in ["", "xyz", "main"] {
            assert_eq!(
                Remote::parse(&format!("https://example.org/r.git?checksum={bad}")),
                Some(Err(RemoteError::Checksum(bad.into())))
            );
        }
        assert_eq!(
            git_of("https://example.org/r.git?checksum=ABC")
                .checksum
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            Remote::parse("https://example.org/r.git#main:../x"),
            Some(Err(RemoteError::Subdir("../x".into())))
        );
    }

    #[test]
    fn named_values() {
        assert_eq!(
            Named::parse("docker-image://alpine:3"),
            Ok(Named::Image("alpine:3".into()))
        );
        assert_eq!(Named::parse("local:dep"), Ok(Named::Local("dep".into())));
        assert_eq!(Named::parse("input:dep"), Ok(Named::Input("dep".into())));
        assert!(matches!(
            Named::parse("https://example.org/r.git#v1"),
            Ok(Named::Remote(Remote::Git(_)))
        ));
        assert_eq!(
            Named::parse("oci-layout://store@sha256:00"),
            Ok(Named::OciLayout {
                store: "store".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            Named::parse("oci-layout://store:latest@sha256:00"),
            Ok(Named::OciLayout {
                store: "store".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            Named::parse("oci-layout://store"),
            Err(RemoteError::OciLayout("oci-layout://store".into()))
        );
    }

    #[test]
    fn commits_of_a_checkout() {
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(GitHead::parse(&format!("{c}\n")), GitHead::Commit(c.into()));
        assert_eq!(
            GitHead::parse("ref: refs/heads/main\n"),
            GitHead::Ref("refs/heads/main".into())
        );
        let packed = format!("# pack-refs with: peeled fully-peeled sorted\n{c} refs/heads/main\n");
        assert_eq!(packed_ref(&packed, "refs/heads/main").as_deref(), Some(c));
        assert_eq!(packed_ref(&packed, "refs/heads/other"), None);
        assert_eq!(packed_ref(&packed, "heads/main"), None);

        let mut g = git_of("https://example.org/r.git");
        assert_eq!(g.checked_commit(Some(c)), Ok(Some(c.to_owned())));
        assert_eq!(g.checked_commit(Some("main")), Ok(None), "not a commit id");
        assert_eq!(g.checked_commit(None), Ok(None));
        g.checksum = Some("0123".into());
        assert_eq!(
            g.checked_commit(Some(&c.to_uppercase())),
            Ok(Some(c.to_uppercase()))
        );
        assert_eq!(
            g.checked_commit(None),
            Err(RemoteError::ChecksumUnread("0123".into()))
        );
        g.checksum = Some("fff".into());
        assert_eq!(
            g.checked_commit(Some(c)),
            Err(RemoteError::ChecksumMismatch {
                got: c.into(),
                want: "fff".into()
            })
        );
    }

    #[test]
    fn http_files() {
        assert_eq!(
            Remote::parse("http://127.0.0.1:8/files/app.tar.gz"),
            Some(Ok(Remote::Http {
                url: "http://127.0.0.1:8/files/app.tar.gz".into()
            }))
        );
    }

    #[test]
    fn credentials_are_not_shown() {
        let r = Remote::parse("https://u:secret@example.org/r.git#main")
            .unwrap()
            .unwrap();
        assert_eq!(r.shown(), "https://example.org/r.git#main");
        let Remote::Git(g) = r else { panic!() };
        assert_eq!(git_identifier(&g), "git://example.org/r.git#main");
        // A token alone, and a lock's `git+https` URL.
        assert_eq!(
            redact("git+https://oauth2:TOKEN@example.org/o/r.git?ref=main"),
            "git+https://example.org/o/r.git?ref=main"
        );
        assert_eq!(
            redact("https://TOKEN@example.org/x"),
            "https://example.org/x"
        );
        assert_eq!(redact("git@example.org:o/r.git"), "git@example.org:o/r.git");
        assert_eq!(redact("/nix/store/bbb-source"), "/nix/store/bbb-source");
    }

    #[test]
    fn a_presigned_archive_url_is_shown_without_its_signature() {
        let r = Remote::parse(
            "https://u:p@bucket.example.org/app.tar.gz?X-Amz-Expires=600&X-Amz-Signature=deadbeef",
        )
        .unwrap()
        .unwrap();
        let shown = r.shown();
        assert_eq!(
            shown,
            "https://bucket.example.org/app.tar.gz?X-Amz-Expires=redacted&X-Amz-Signature=redacted"
        );
        assert!(!shown.contains("deadbeef") && !shown.contains("u:p"));
    }
}
