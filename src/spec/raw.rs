//! The TOML shape of the spec (serde) and its checks into a [`Spec`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{
    DEFAULT_BUILDER, DEFAULT_FLAKE, DEFAULT_LAYERS, Image, Located, MAX_LAYERS, Span, Spec,
    SpecError, Target,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    flake: Option<Spanned<String>>,
    builder: Option<Spanned<String>>,
    src: Option<Spanned<Vec<Spanned<String>>>>,
    image: Option<RawImage>,
    targets: Option<BTreeMap<String, Spanned<RawTarget>>>,
}

/// A `[targets.NAME]` table: the top level's keys, each overriding it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    flake: Option<Spanned<String>>,
    builder: Option<Spanned<String>>,
    src: Option<Spanned<Vec<Spanned<String>>>>,
    image: Option<RawImage>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Option<Spanned<String>>,
    entrypoint: Option<Spanned<Vec<String>>>,
    cmd: Option<Spanned<Vec<String>>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    labels: Option<BTreeMap<String, Spanned<String>>>,
    expose: Option<Vec<Spanned<String>>>,
    layers: Option<Spanned<i64>>,
}

pub(super) fn parse(text: &str) -> Result<Spec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text))?;
    let top = Target {
        flake: check_flake(raw.flake)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_FLAKE.to_owned())),
        builder: check_builder(raw.builder)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_BUILDER.to_owned())),
        src: check_src(raw.src)?,
        image: check_image(raw.image.unwrap_or_default(), &Image::default())?,
    };
    let mut targets = BTreeMap::new();
    for (name, t) in raw.targets.unwrap_or_default() {
        let span: Span = t.span().into();
        let t = t.into_inner();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(invalid(
                "targets",
                format!("target name {name:?} is not usable with --target"),
                "name targets with letters, digits, `-` or `_`",
                span,
            ));
        }
        let target = Target {
            flake: check_flake(t.flake)?.unwrap_or_else(|| top.flake.clone()),
            builder: check_builder(t.builder)?.unwrap_or_else(|| top.builder.clone()),
            src: check_src(t.src)?.or_else(|| top.src.clone()),
            image: check_image(t.image.unwrap_or_default(), &top.image)?,
        };
        targets.insert(name, Located::new(target, span));
    }
    Ok(Spec {
        zero_config: false,
        top,
        targets,
    })
}

fn invalid(
    key: &str,
    message: impl Into<String>,
    hint: impl Into<String>,
    span: Span,
) -> SpecError {
    SpecError::Invalid {
        key: key.to_owned(),
        message: message.into(),
        hint: hint.into(),
        span,
    }
}

fn check_flake(v: Option<Spanned<String>>) -> Result<Option<Located<String>>, SpecError> {
    let Some(v) = v else { return Ok(None) };
    let v = Located::<String>::from(v);
    let span = v.at();
    let (path, attr) = v.value.split_once('#').unwrap_or((&v.value, "default"));
    if !(path == "." || path.starts_with("./")) {
        return Err(invalid(
            "flake",
            format!("{:?} is not a flake in the build context", v.value),
            "write a path inside the context, e.g. flake = \".#app\" or \"./sub#app\"",
            span,
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(invalid(
            "flake",
            format!("{:?} leaves the build context", v.value),
            "the flake must be inside the build context; no `..`",
            span,
        ));
    }
    if attr.is_empty() || attr.contains(char::is_whitespace) {
        return Err(invalid(
            "flake",
            format!("{:?} has no usable attribute after `#`", v.value),
            "write the package after `#`, e.g. flake = \".#app\"",
            span,
        ));
    }
    Ok(Some(v))
}

fn check_builder(v: Option<Spanned<String>>) -> Result<Option<Located<String>>, SpecError> {
    let Some(v) = v else { return Ok(None) };
    let v = Located::<String>::from(v);
    check_image_ref("builder", &v)?;
    Ok(Some(v))
}

fn check_image_ref(key: &str, v: &Located<String>) -> Result<(), SpecError> {
    let bad = v.value.is_empty()
        || v.value.contains(char::is_whitespace)
        || v.value.contains("://")
        || v.value
            .chars()
            .any(|c| c.is_ascii_uppercase() && !v.value.contains('@'));
    if bad {
        return Err(invalid(
            key,
            format!("{:?} is not an image reference", v.value),
            "write an image name like \"nixos/nix:2.24.0\" or \"name@sha256:…\"",
            v.at(),
        ));
    }
    Ok(())
}

fn check_src(
    v: Option<Spanned<Vec<Spanned<String>>>>,
) -> Result<Option<Located<Vec<String>>>, SpecError> {
    let Some(v) = v else { return Ok(None) };
    let span: Span = v.span().into();
    let items = v.into_inner();
    if items.is_empty() {
        return Err(invalid(
            "src",
            "is empty, so nix would see no flake",
            "list the context paths the flake needs, e.g. src = [\"flake.nix\", \"flake.lock\", \"src\"], or drop `src` to use the whole context",
            span,
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let item_span: Span = item.span().into();
        let p = item.into_inner();
        let trimmed = p.trim_start_matches("./");
        if trimmed.is_empty() || p.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
            return Err(invalid(
                "src",
                format!("{p:?} is not a path inside the build context"),
                "use relative paths without `..`, e.g. \"flake.nix\" or \"cmd\"",
                item_span,
            ));
        }
        out.push(trimmed.trim_end_matches('/').to_owned());
    }
    Ok(Some(Located::new(out, span)))
}

/// Checks `[image]`, each key falling back to `inherit` (the top level's
/// image for a target, the empty image for the top level).
fn check_image(raw: RawImage, inherit: &Image) -> Result<Image, SpecError> {
    let base = match raw.base {
        Some(b) => {
            let b = Located::from(b);
            if b.value == "scratch" {
                None
            } else {
                check_image_ref("image.base", &b)?;
                Some(b)
            }
        }
        None => inherit.base.clone(),
    };
    let entrypoint = match raw.entrypoint {
        Some(e) => Some(check_argv("image.entrypoint", e)?),
        None => inherit.entrypoint.clone(),
    };
    let cmd = match raw.cmd {
        Some(c) => Some(Located::from(c)),
        None => inherit.cmd.clone(),
    };
    let mut env = inherit.env.clone();
    for (k, v) in raw.env.unwrap_or_default() {
        let v = Located::from(v);
        if k.is_empty() || k.contains('=') || k.contains(char::is_whitespace) {
            return Err(invalid(
                "image.env",
                format!("{k:?} is not a variable name"),
                "variable names have no `=` or spaces, e.g. env = { TZ = \"UTC\" }",
                v.at(),
            ));
        }
        env.insert(k, v);
    }
    let workdir = match raw.workdir {
        Some(w) => {
            let w = Located::from(w);
            if !w.value.starts_with('/') {
                return Err(invalid(
                    "image.workdir",
                    format!("{:?} is not an absolute path", w.value),
                    "write an absolute path, e.g. workdir = \"/app\"",
                    w.at(),
                ));
            }
            Some(w)
        }
        None => inherit.workdir.clone(),
    };
    let user = match raw.user {
        Some(u) => Some(check_user(Located::from(u))?),
        None => inherit.user.clone(),
    };
    let mut labels = inherit.labels.clone();
    for (k, v) in raw.labels.unwrap_or_default() {
        labels.insert(k, Located::from(v));
    }
    let expose = match raw.expose {
        Some(list) => list
            .into_iter()
            .map(|p| check_port(Located::from(p)))
            .collect::<Result<_, _>>()?,
        None => inherit.expose.clone(),
    };
    let layers = match raw.layers {
        Some(l) => {
            let span: Span = l.span().into();
            let n = *l.get_ref();
            match usize::try_from(n) {
                Ok(n @ 1..=MAX_LAYERS) => Some(Located::new(n, span)),
                _ => {
                    return Err(invalid(
                        "image.layers",
                        format!("{n} is not a layer budget"),
                        format!(
                            "write a number from 1 (the whole closure in one layer) to {MAX_LAYERS}; the default is {DEFAULT_LAYERS}"
                        ),
                        span,
                    ));
                }
            }
        }
        None => inherit.layers.clone(),
    };
    Ok(Image {
        base,
        entrypoint,
        cmd,
        env,
        workdir,
        user,
        labels,
        expose,
        layers,
    })
}

fn check_argv(key: &str, v: Spanned<Vec<String>>) -> Result<Located<Vec<String>>, SpecError> {
    let v = Located::from(v);
    if v.value.first().is_none_or(|a| a.is_empty()) {
        return Err(invalid(
            key,
            "needs a program as its first element",
            format!(
                "e.g. {key} = [\"bin/app\", \"--flag\"]; relative paths are inside the built package"
            ),
            v.at(),
        ));
    }
    Ok(v)
}

/// `name`, `name:uid`, `name:uid:gid`, `uid` or `uid:gid`.
fn check_user(u: Located<String>) -> Result<Located<String>, SpecError> {
    let parts: Vec<&str> = u.value.split(':').collect();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && !s.starts_with('-')
    };
    let id_ok = |s: &str| s.parse::<u32>().is_ok();
    let ok = match parts.as_slice() {
        [n] => name_ok(n),
        [n, id] => name_ok(n) && id_ok(id),
        [n, uid, gid] => name_ok(n) && !id_ok(n) && id_ok(uid) && id_ok(gid),
        _ => false,
    };
    if !ok {
        return Err(invalid(
            "image.user",
            format!("{:?} is not a user", u.value),
            "write \"name\", \"name:uid\", \"name:uid:gid\", \"uid\" or \"uid:gid\", e.g. user = \"app:1000\"",
            u.at(),
        ));
    }
    Ok(u)
}

fn check_port(p: Located<String>) -> Result<Located<String>, SpecError> {
    let (port, proto) = p.value.split_once('/').unwrap_or((&p.value, "tcp"));
    let port_ok = port.parse::<u16>().is_ok_and(|n| n > 0);
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
