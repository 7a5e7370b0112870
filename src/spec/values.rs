//! The spec's value types and their checks: what makes an image reference,
//! a context path, a port or a user acceptable. Each check names its key and
//! gives a hint, at the value's span.

use super::error::{SpecError, invalid};
use super::user::User;
use crate::image_ref::ImageRef;
use crate::span::{Located, Span};

/// Characters a value handed to a shell must not contain (a flake is passed
/// as an argument, but also shown in names and messages).
pub(super) fn unquotable(s: &str) -> bool {
    s.chars()
        .any(|c| "'\"`$\\".contains(c) || c.is_whitespace() || c.is_control())
}

/// A relative path inside the build context, without `./` or a trailing `/`.
pub(super) fn context_path(key: &str, p: &Located<String>) -> Result<String, SpecError> {
    let trimmed = p.value.trim_start_matches("./");
    if trimmed.is_empty() || p.value.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
        return Err(invalid(
            key,
            format!("{:?} is not a path inside the build context", p.value),
            "use relative paths without `..`, e.g. \"flake.nix\" or \"cmd\"",
            p.at(),
        ));
    }
    Ok(trimmed.trim_end_matches('/').to_owned())
}

pub(super) fn check_image_ref(key: &str, v: &Located<String>) -> Result<(), SpecError> {
    match ImageRef::parse(&v.value) {
        Ok(_) => Ok(()),
        Err(why) => Err(invalid(
            key,
            format!("{:?} is not an image reference: {why}", v.value),
            "write an image name like \"nixos/nix:2.24.0\" or \"name@sha256:…\"",
            v.at(),
        )),
    }
}

pub(super) fn check_argv(
    key: &str,
    v: Located<Vec<String>>,
) -> Result<Located<Vec<String>>, SpecError> {
    if v.value.first().is_none_or(|a| a.is_empty()) {
        let hint = if key == "image.shell" {
            "e.g. shell = [\"/bin/bash\", \"-c\"]".to_owned()
        } else {
            format!(
                "e.g. {key} = [\"bin/app\", \"--flag\"]; relative paths are inside the built package"
            )
        };
        return Err(invalid(
            key,
            "needs a program as its first element",
            hint,
            v.at(),
        ));
    }
    Ok(v)
}

/// `name`, `name:uid`, `name:uid:gid`, `uid` or `uid:gid`.
pub(super) fn check_user(u: Located<String>) -> Result<Located<User>, SpecError> {
    match User::parse(&u.value) {
        Ok(user) => Ok(Located {
            value: user,
            span: u.span,
        }),
        Err(message) => Err(invalid(
            "image.user",
            message,
            "write \"name\", \"name:uid\", \"name:uid:gid\", \"uid\" or \"uid:gid\", e.g. user = \"app:1000\"",
            u.at(),
        )),
    }
}

pub(super) fn check_port(p: Located<String>) -> Result<Located<String>, SpecError> {
    let (port, proto) = p.value.split_once('/').unwrap_or((&p.value, "tcp"));
    let port_ok =
        port.chars().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|n| n > 0);
    if !port_ok || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(invalid(
            "image.expose",
            format!("{:?} is not a port", p.value),
            "write \"PORT\" or \"PORT/PROTO\" with PROTO tcp, udp or sctp, e.g. \"8080/tcp\"",
            p.at(),
        ));
    }
    Ok(p)
}

/// `user` or `user:group`, names or ids, as `COPY --chown` takes them.
pub(super) fn check_owner(o: &Located<String>) -> Result<(), SpecError> {
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    let valid = match o.value.split_once(':') {
        Some((u, g)) => ok(u) && ok(g),
        None => ok(&o.value),
    };
    if valid {
        return Ok(());
    }
    Err(invalid(
        "image.copy.chown",
        format!("{:?} is not an owner", o.value),
        "write \"user\", \"user:group\" or numeric ids, e.g. chown = \"1000:1000\"",
        o.at(),
    ))
}

/// A file mode in octal: `"0644"` or `0o644`. An integer must be written in
/// octal: 644 in decimal is the sticky bit and r-----r--, never what was meant.
pub(super) fn file_mode(written: &str, value: toml::Value, span: Span) -> Result<u32, SpecError> {
    let n = match value {
        toml::Value::Integer(i) if written.starts_with("0o") => u32::try_from(i).ok(),
        toml::Value::String(s) if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) => {
            u32::from_str_radix(&s, 8).ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n <= 0o7777 => Ok(n),
        _ => Err(invalid(
            "image.copy.mode",
            format!("{written} is not an octal file mode"),
            "write an octal mode, e.g. mode = \"0644\" or mode = 0o644",
            span,
        )),
    }
}

/// `500MB`, `2GiB`, `1.5G`, `1048576`: bytes, at least 1 MiB.
pub(super) fn store_size(v: &Located<String>) -> Result<u64, SpecError> {
    match v.value.trim().parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() >= 1 << 20 => Ok(size.as_u64()),
        _ => Err(invalid(
            "cache.max-size",
            format!("{:?} is not a size of at least 1MiB", v.value),
            "write a size like \"500MB\" or \"2GiB\" (K, M, G, T: powers of 1000; Ki, Mi, Gi, Ti: of 1024)",
            v.at(),
        )),
    }
}

/// A duration as Docker's HEALTHCHECK takes it (`30s`, `1m30s`, `500ms`),
/// in nanoseconds: 0, or at least a millisecond.
pub(super) fn duration(key: &str, v: &Located<String>) -> Result<i64, SpecError> {
    let bad = || {
        invalid(
            key,
            format!("{:?} is not a duration of at least 1ms", v.value),
            "write a duration like \"30s\", \"1m30s\" or \"500ms\"",
            v.at(),
        )
    };
    let d = humantime::parse_duration(v.value.trim()).map_err(|_| bad())?;
    if d.is_zero() {
        return Ok(0);
    }
    if d < std::time::Duration::from_millis(1) {
        return Err(bad());
    }
    i64::try_from(d.as_nanos()).map_err(|_| bad())
}

/// `SIGTERM`, `TERM`, `SIGRTMIN+3` or a signal number (1 to 64).
pub(super) fn check_signal(v: &Located<String>) -> Result<(), SpecError> {
    let s = v.value.trim();
    let name = s.strip_prefix("SIG").unwrap_or(s);
    let ok = match name.parse::<u32>() {
        Ok(n) => (1..=64).contains(&n),
        Err(_) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
        }
    };
    if ok {
        return Ok(());
    }
    Err(invalid(
        "image.stop-signal",
        format!("{:?} is not a signal", v.value),
        "write a signal name or number, e.g. stop-signal = \"SIGTERM\" or \"SIGQUIT\"",
        v.at(),
    ))
}

/// An absolute path in the image.
pub(super) fn check_absolute(key: &str, v: &Located<String>) -> Result<(), SpecError> {
    if v.value.starts_with('/') && !v.value.split('/').any(|c| c == "..") {
        return Ok(());
    }
    Err(invalid(
        key,
        format!("{:?} is not an absolute path", v.value),
        "write an absolute path, e.g. \"/data\"",
        v.at(),
    ))
}

/// Names usable on a command line and in paths: `--target NAME`, secret ids,
/// a cache project. `.` and `..` are not: as a path segment (a secret's
/// `/run/secrets/ID`) they name another directory.
pub(super) fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(v: &str) -> Located<String> {
        Located::new(v.to_owned(), Span { start: 0, end: 1 })
    }

    #[test]
    fn sizes_in_both_unit_families() {
        assert_eq!(store_size(&at("500MB")).unwrap(), 500_000_000);
        assert_eq!(store_size(&at("2GiB")).unwrap(), 2 << 30);
        assert_eq!(store_size(&at("1048576")).unwrap(), 1 << 20);
        assert!(store_size(&at("1KB")).is_err(), "below 1 MiB");
        assert!(store_size(&at("lots")).is_err());
    }

    #[test]
    fn modes_are_octal_only() {
        let span = Span { start: 0, end: 1 };
        assert_eq!(
            file_mode("\"0644\"", toml::Value::String("0644".into()), span).unwrap(),
            0o644
        );
        assert_eq!(
            file_mode("0o755", toml::Value::Integer(0o755), span).unwrap(),
            0o755
        );
        assert!(file_mode("644", toml::Value::Integer(644), span).is_err());
    }

    #[test]
    fn context_paths_stay_inside() {
        assert_eq!(context_path("src", &at("./cmd/")).unwrap(), "cmd");
        assert!(context_path("src", &at("../x")).is_err());
        assert!(context_path("src", &at("/etc")).is_err());
    }
}
