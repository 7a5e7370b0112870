//! Image references: the name of an image in a registry,
//! `[HOST[:PORT]/]PATH[:TAG][@DIGEST]`, read as Docker reads it.
//!
//! The grammar is distribution/reference's (the parser is a crate tested
//! against it); the Docker Hub defaults are Docker's own: a first component
//! with no `.` or `:` that is not `localhost` is a path, not a host, so
//! `nixos/nix` is `docker.io/nixos/nix` and `alpine` is
//! `docker.io/library/alpine`. No tag is added: BuildKit resolves a name
//! without one as `latest` itself.

use std::fmt;

use container_image_dist_ref::ImgRef;
use container_image_dist_ref::err::Kind;

const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's old name, which Docker reads as `docker.io`.
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Docker Hub's namespace for a one-component name (`alpine`).
const OFFICIAL: &str = "library/";

/// A parsed image reference, with Docker Hub's host and namespace filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a text is no image reference, in words for a `… is not an image
/// reference: WHY` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("it is empty")]
    Empty,
    #[error("it has a space in it")]
    Space,
    #[error("it is a URL, and an image name has no scheme")]
    Url,
    #[error("repository names are lowercase")]
    Uppercase,
    #[error("64 hex digits are an image id, not a name")]
    Identifier,
    #[error("its tag is not 1 to 128 letters, digits, `_`, `.` or `-`")]
    Tag,
    #[error("its digest is not ALGORITHM:HEX (sha256 with 64 hex digits)")]
    Digest,
    #[error("its registry host or port is not a host name, an IP address or a port number")]
    Host,
    #[error("its name is longer than 255 characters")]
    TooLong,
    #[error("it is not [HOST[:PORT]/]NAME[:TAG][@DIGEST]")]
    Syntax,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if s.contains(char::is_whitespace) {
            return Err(ImageRefError::Space);
        }
        if s.contains("://") {
            return Err(ImageRefError::Url);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ImageRefError::Identifier);
        }
        let parsed = ImgRef::new(s).map_err(|e| {
            // `Debian:12`: what fails is the capital, whatever the parser
            // stopped at (a tag may have capitals, a name may not).
            let lower = match s.split_once('@') {
                Some((name, digest)) => format!("{}@{digest}", name.to_ascii_lowercase()),
                None => s.to_ascii_lowercase(),
            };
            if lower != s && ImgRef::new(&lower).is_ok() {
                ImageRefError::Uppercase
            } else {
                reason(e.kind())
            }
        })?;
        let (domain, path) = split_domain(parsed.name().to_str());
        // Docker takes a first component in capitals (`NixOS/nix`) for a
        // registry host, which then fails to resolve; a spec that writes one
        // meant Docker Hub's lowercase name.
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase);
        }
        Ok(Self {
            domain,
            path,
            tag: parsed.tag().map(str::to_owned),
            digest: parsed.digest().map(|d| d.to_str().to_owned()),
        })
    }

    /// The registry host (and port): `docker.io` for Docker Hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository in the registry: `library/alpine`, `nixos/nix`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag as written (none when the reference has none).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same image, pinned to `digest` (a tag is kept, as BuildKit
    /// keeps it).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// The reference as people write it and as BuildKit keys named
    /// contexts: Docker Hub's host and `library/` dropped, and a final
    /// `:latest` too (`docker.io/library/alpine:latest` is `alpine`).
    pub fn familiar(&self) -> String {
        let path = match self.path.strip_prefix(OFFICIAL) {
            Some(rest) if self.domain == DOCKER_HUB && !rest.contains('/') => rest,
            _ => &self.path,
        };
        let mut s = if self.domain == DOCKER_HUB {
            path.to_owned()
        } else {
            format!("{}/{path}", self.domain)
        };
        push_tag_digest(&mut s, self.tag(), self.digest());
        match s.strip_suffix(":latest") {
            Some(short) => short.to_owned(),
            None => s,
        }
    }
}

/// The reference in full, as BuildKit normalizes one:
/// `docker.io/library/alpine:3`, `docker.io/local/nix:test`.
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!("{}/{}", self.domain, self.path);
        push_tag_digest(&mut s, self.tag(), self.digest());
        f.write_str(&s)
    }
}

/// A named context's name in its familiar form, as BuildKit keys them; a
/// name that is no image reference (a flake input's) stays as it is.
pub fn familiar(name: &str) -> String {
    ImageRef::parse(name).map_or_else(|_| name.to_owned(), |r| r.familiar())
}

fn push_tag_digest(s: &mut String, tag: Option<&str>, digest: Option<&str>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
}

/// Docker's rule for the registry host: the first component when it has a
/// `.` or a `:` or is `localhost`, else Docker Hub.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first == DOCKER_HUB_LEGACY => (DOCKER_HUB, rest),
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') {
        format!("{OFFICIAL}{path}")
    } else {
        path.to_owned()
    };
    (domain.to_owned(), path)
}

fn reason(kind: Kind) -> ImageRefError {
    use Kind as K;
    match kind {
        K::TagTooLong | K::TagInvalidChar | K::TagMissing => ImageRefError::Tag,
        K::AlgorithmMissing
        | K::InvalidOciAlgorithm
        | K::AlgorithmInvalidNumericPrefix
        | K::OciRegisteredAlgorithmWrongDigestLength
        | K::AlgorithmInvalidChar
        | K::AlgorithmTooLong
        | K::EncodedMissing
        | K::EncodedInvalidChar
        | K::EncodedNonLowerHex
        | K::OciRegisteredDigestInvalidChar
        | K::EncodingTooShort
        | K::EncodingTooLong => ImageRefError::Digest,
        K::HostMissing
        | K::HostComponentInvalidEnd
        | K::HostInvalidChar
        | K::HostTooLong
        | K::Ipv6InvalidChar
        | K::Ipv6TooLong
        | K::Ipv6BadColon
        | K::Ipv6TooManyHexDigits
        | K::Ipv6TooManyGroups
        | K::Ipv6TooFewGroups
        | K::Ipv6MissingClosingBracket
        | K::Port
        | K::PortInvalidChar
        | K::PortTooLong
        | K::PortMissing => ImageRefError::Host,
        K::NameTooLong | K::HostOrPathTooLong | K::PathTooLong => ImageRefError::TooLong,
        _ => ImageRefError::Syntax,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        ImageRef::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(full("alpine:3"), "docker.io/library/alpine:3");
        assert_eq!(full("alpine"), "docker.io/library/alpine");
        assert_eq!(full("local/nix:test"), "docker.io/local/nix:test");
        assert_eq!(full("docker.io/alpine"), "docker.io/library/alpine");
        assert_eq!(full("index.docker.io/a/b"), "docker.io/a/b");
        assert_eq!(full("docker.io/library/a/b"), "docker.io/library/a/b");
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(full("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(full("localhost/a"), "localhost/a");
        assert_eq!(full("example.org/nix:2"), "example.org/nix:2");
        assert_eq!(full("[::1]:5000/a:1"), "[::1]:5000/a:1");
        // Host names are not case-sensitive; repository names are lowercase.
        assert_eq!(full("Example.ORG/x"), "Example.ORG/x");
        let r = ImageRef::parse("localhost:5000/a/b:1").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "a/b", Some("1"))
        );
    }

    #[test]
    fn tags_and_digests() {
        let pinned = format!("nixos/nix:2.24.0@sha256:{HEX}");
        let r = ImageRef::parse(&pinned).unwrap();
        assert_eq!(r.tag(), Some("2.24.0"));
        assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(r.to_string(), format!("docker.io/{pinned}"));
        let r = ImageRef::parse("alpine").unwrap().with_digest("sha256:abc");
        assert_eq!(r.to_string(), "docker.io/library/alpine@sha256:abc");
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| ImageRef::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(f("index.docker.io/library/alpine"), "alpine");
        assert_eq!(f("library/alpine:3"), "alpine:3");
        assert_eq!(f("docker.io/local/nix:test"), "local/nix:test");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b");
        assert_eq!(f("localhost:5000/a:latest"), "localhost:5000/a");
        assert_eq!(
            f(&format!("alpine:latest@sha256:{HEX}")),
            format!("alpine:latest@sha256:{HEX}")
        );
        // A flake input's name is kept whatever it is.
        assert_eq!(familiar("nixpkgs"), "nixpkgs");
        assert_eq!(familiar("Dep_Input"), "Dep_Input");
    }

    #[test]
    fn refused() {
        use ImageRefError as E;
        for (s, why) in [
            ("", E::Empty),
            ("nixos/nix 2.24.0", E::Space),
            ("https://registry.example/debian:12", E::Url),
            ("NixOS/nix:2.24.0", E::Uppercase),
            ("Debian:12", E::Uppercase),
            (HEX, E::Identifier),
            ("a/b:", E::Tag),
            ("name@sha256:abc", E::Digest),
            ("example.org:x/a", E::Host),
            ("a//b", E::Syntax),
            ("-a", E::Syntax),
            ("a/", E::Syntax),
            (":tag", E::Syntax),
        ] {
            assert_eq!(ImageRef::parse(s), Err(why), "{s:?}");
        }
    }
}
