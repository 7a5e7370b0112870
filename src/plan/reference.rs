//! Image names as BuildKit's `docker-image://` sources want them: the
//! registry and `library/` spelled out, `:latest` when no tag is given.

pub fn normalize(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_host = |s: &str| s.contains('.') || s.contains(':') || s == "localhost";
    let full = match rest {
        None => format!("docker.io/library/{first}"),
        Some(_) if is_host(first) => name.to_owned(),
        Some(_) => format!("docker.io/{name}"),
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if last.contains(':') || last.contains('@') {
        full
    } else {
        format!("{full}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spells_out_defaults() {
        assert_eq!(normalize("ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(normalize("nixos/nix:2.24.0"), "docker.io/nixos/nix:2.24.0");
        assert_eq!(normalize("local/nix:test"), "docker.io/local/nix:test");
        assert_eq!(normalize("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(
            normalize("example.org/a/b@sha256:ab"),
            "example.org/a/b@sha256:ab"
        );
    }
}
