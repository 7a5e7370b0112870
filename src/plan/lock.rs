//! Flake inputs BuildKit fetches for nix: the git inputs `flake.lock` locks
//! to a commit and a NAR hash.
//!
//! BuildKit fetches them as git sources (cached, and exported with the
//! build cache like any step), the nix step adds each checkout to the store
//! as the fixed-output path the lock names (`source`, recursive SHA-256 of
//! its NAR hash), and nix, finding that path valid, does not fetch the
//! input itself. The lock is not changed (no `--override-input`), so what
//! nix evaluates is what it would evaluate on its own: a checkout that is
//! not what the lock says is not used, and nix fetches as before.
//!
//! Other lock types (`github`, `tarball`, `path`, …) are left to nix.

use serde::{Deserialize, Serialize};

use super::GitRemote;

/// A git input nix would fetch, as BuildKit fetches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Prefetch {
    /// The node's name in `flake.lock`.
    pub node: String,
    pub git: GitRemote,
    /// `sha256-…` (SRI), as locked.
    pub nar_hash: String,
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    nodes: std::collections::BTreeMap<String, Node>,
}

#[derive(Deserialize)]
struct Node {
    locked: Option<Locked>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Locked {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    rev: Option<String>,
    nar_hash: Option<String>,
    #[serde(default)]
    submodules: bool,
    #[serde(default)]
    lfs: bool,
}

/// The git inputs of `lock` (a `flake.lock`) that BuildKit can fetch: an
/// http(s) or ssh remote, a full commit, a NAR hash, no submodules or LFS
/// (a checkout of those is not what nix hashes). A lock that is not JSON
/// we can read gives none: nix reports it.
pub fn prefetchable(lock: &[u8]) -> Vec<Prefetch> {
    let Ok(lock) = serde_json::from_slice::<Lock>(lock) else {
        return Vec::new();
    };
    lock.nodes
        .into_iter()
        .filter_map(|(node, n)| {
            let l = n.locked?;
            let (url, rev, nar_hash) = (l.url?, l.rev?, l.nar_hash?);
            let fetchable = ["https://", "http://", "ssh://"]
                .iter()
                .any(|s| url.starts_with(s));
            let commit = rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit());
            if l.kind != "git" || !fetchable || !commit || l.submodules || l.lfs {
                return None;
            }
            if !nar_hash.starts_with("sha256-") {
                return None;
            }
            Some(Prefetch {
                node,
                git: GitRemote {
                    ssh: url.starts_with("ssh://"),
                    remote: url,
                    reference: rev,
                    subdir: String::new(),
                    checksum: None,
                    engine_checksum: false,
                },
                nar_hash,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_inputs_locked_to_a_commit() {
        let rev = "0123456789abcdef0123456789abcdef01234567";
        let lock = format!(
            r#"{{"nodes":{{
              "dep":{{"locked":{{"type":"git","url":"http://127.0.0.1:1/dep.git","rev":"{rev}","narHash":"sha256-AAAA","lastModified":1}}}},
              "subs":{{"locked":{{"type":"git","url":"https://x/y.git","rev":"{rev}","narHash":"sha256-B","submodules":true}}}},
              "local":{{"locked":{{"type":"git","url":"file:///src/z","rev":"{rev}","narHash":"sha256-C"}}}},
              "short":{{"locked":{{"type":"git","url":"https://x/y.git","rev":"0123","narHash":"sha256-D"}}}},
              "gh":{{"locked":{{"type":"github","owner":"o","repo":"r","rev":"{rev}","narHash":"sha256-E"}}}},
              "root":{{"inputs":{{"dep":"dep"}}}}
            }},"root":"root","version":7}}"#
        );
        let p = prefetchable(lock.as_bytes());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].node, "dep");
        assert_eq!(p[0].git.remote, "http://127.0.0.1:1/dep.git");
        assert_eq!(p[0].git.reference, rev);
        assert_eq!(p[0].nar_hash, "sha256-AAAA");
        assert!(prefetchable(b"not json").is_empty());
    }
}
