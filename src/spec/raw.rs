//! The TOML shape of the spec (serde) and its checks into a [`Spec`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Cache, Copy, DEFAULT_BUILDER, DEFAULT_FLAKE, DEFAULT_LAYERS, Image, Located, MAX_LAYERS, Nix,
    Span, Spec, SpecError, Target, User,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    flake: Option<Spanned<String>>,
    builder: Option<Spanned<String>>,
    src: Option<Spanned<Vec<Spanned<String>>>>,
    image: Option<RawImage>,
    nix: Option<RawNix>,
    cache: Option<RawCache>,
    targets: Option<BTreeMap<String, Spanned<RawTarget>>>,
}

/// A `[targets.NAME]` table: the top level's keys, each overriding it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    description: Option<Spanned<String>>,
    flake: Option<Spanned<String>>,
    builder: Option<Spanned<String>>,
    src: Option<Spanned<Vec<Spanned<String>>>>,
    image: Option<RawImage>,
    nix: Option<RawNix>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImage {
    base: Option<Spanned<String>>,
    run: Option<Vec<Spanned<String>>>,
    copy: Option<Vec<Spanned<RawCopy>>>,
    entrypoint: Option<Spanned<Vec<Spanned<String>>>>,
    cmd: Option<Spanned<Vec<Spanned<String>>>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    workdir: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    labels: Option<BTreeMap<String, Spanned<String>>>,
    expose: Option<Vec<Spanned<String>>>,
    layers: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCopy {
    src: Spanned<String>,
    dest: Spanned<String>,
    chown: Option<Spanned<String>>,
    mode: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "kebab-case")]
struct RawNix {
    options: Option<BTreeMap<String, Spanned<toml::Value>>>,
    secrets: Option<Vec<Spanned<String>>>,
    conf_secrets: Option<Vec<Spanned<String>>>,
    ssh: Option<bool>,
    binary_caches: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCache {
    max_size: Option<Spanned<String>>,
    verify: Option<bool>,
}

/// Build-arg expansion and the references it found.
struct Ctx<'a> {
    text: &'a str,
    /// `None`: references expand to the arg's name (for subrequests, which
    /// describe a spec without building it).
    args: Option<&'a BTreeMap<String, String>>,
    used: BTreeMap<String, Span>,
}

pub(super) fn parse(
    text: &str,
    strict: Option<(&BTreeMap<String, String>, Option<&str>)>,
) -> Result<Spec, SpecError> {
    let args = strict.map(|(a, _)| a);
    let only_target = strict.and_then(|(_, t)| t);
    let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text))?;
    let mut cx = Ctx {
        text,
        args,
        used: BTreeMap::new(),
    };
    let top = Target {
        description: None,
        flake: cx
            .flake(raw.flake)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_FLAKE.to_owned())),
        builder: cx
            .builder(raw.builder)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_BUILDER.to_owned())),
        src: cx.src(raw.src)?,
        image: cx.image(raw.image.unwrap_or_default(), &Image::default())?,
        nix: cx.nix(raw.nix.unwrap_or_default(), &Nix::default())?,
    };
    let cache = check_cache(raw.cache.unwrap_or_default())?;
    let mut targets = BTreeMap::new();
    for (name, t) in raw.targets.unwrap_or_default() {
        let span: Span = t.span().into();
        let t = t.into_inner();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            return Err(invalid(
                "targets",
                format!("target name {name:?} is not usable with --target"),
                "name targets with letters, digits, `-`, `_` or `.`",
                span,
            ));
        }
        // Another target than the one being built: its args need no value.
        let strict_args = cx.args;
        if only_target.is_some_and(|t| t != name) {
            cx.args = None;
        }
        let target = Target {
            description: t
                .description
                .map(|d| cx.string(d))
                .transpose()?
                .map(|d| d.value),
            flake: cx.flake(t.flake)?.unwrap_or_else(|| top.flake.clone()),
            builder: cx
                .builder(t.builder)?
                .unwrap_or_else(|| top.builder.clone()),
            src: cx.src(t.src)?.or_else(|| top.src.clone()),
            image: cx.image(t.image.unwrap_or_default(), &top.image)?,
            nix: cx.nix(t.nix.unwrap_or_default(), &top.nix)?,
        };
        cx.args = strict_args;
        targets.insert(name, Located::new(target, span));
    }
    Ok(Spec {
        zero_config: false,
        top,
        targets,
        args: cx.used,
        cache,
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

/// Characters a value handed to `sh -c` in single quotes must not contain.
fn unquotable(s: &str) -> bool {
    s.chars()
        .any(|c| "'\"`$\\".contains(c) || c.is_whitespace() || c.is_control())
}

impl Ctx<'_> {
    /// The spec key a value belongs to, for messages about build args.
    fn key(&self, span: Span) -> String {
        super::error::key_at(self.text, span).unwrap_or_else(|| "build arg".to_owned())
    }

    /// Expands `${NAME}` from build args; `$${` is a literal `${`.
    fn string(&mut self, v: Spanned<String>) -> Result<Located<String>, SpecError> {
        let span: Span = v.span().into();
        let raw = v.into_inner();
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw.as_str();
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix("${") {
                out.push_str("${");
                rest = tail;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                out.push('$');
                rest = after;
                continue;
            };
            let Some(end) = body.find('}') else {
                return Err(invalid(
                    &self.key(span),
                    format!("unclosed `${{` in {raw:?}"),
                    "write ${NAME}, or $${ for a literal ${",
                    span,
                ));
            };
            let name = &body[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(
                    &self.key(span),
                    format!("`${{{name}}}` is not a build arg reference"),
                    "build arg names are letters, digits and `_`, e.g. ${VERSION}",
                    span,
                ));
            }
            self.used.entry(name.to_owned()).or_insert(span);
            match self.args.map(|a| a.get(name)) {
                Some(Some(value)) => out.push_str(value),
                Some(None) => {
                    return Err(invalid(
                        &self.key(span),
                        format!("build arg `{name}` is not defined"),
                        format!(
                            "pass --build-arg {name}=VALUE, or write $${{{name}}} for the literal text"
                        ),
                        span,
                    ));
                }
                // Describing, not building: the name stands in for the value,
                // so the rest of the spec can still be checked.
                None => out.push_str(name),
            }
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        Ok(Located::new(out, span))
    }

    fn strings(
        &mut self,
        v: Spanned<Vec<Spanned<String>>>,
    ) -> Result<Located<Vec<String>>, SpecError> {
        let span: Span = v.span().into();
        let items = v
            .into_inner()
            .into_iter()
            .map(|s| self.string(s).map(|l| l.value))
            .collect::<Result<_, _>>()?;
        Ok(Located::new(items, span))
    }

    fn flake(&mut self, v: Option<Spanned<String>>) -> Result<Option<Located<String>>, SpecError> {
        let Some(v) = v else { return Ok(None) };
        let v = self.string(v)?;
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
        if attr.is_empty() || attr.contains('#') || unquotable(&v.value) {
            return Err(invalid(
                "flake",
                format!("{:?} is not a usable installable", v.value),
                "write a path and an attribute without spaces or quotes, e.g. flake = \".#app\"",
                span,
            ));
        }
        Ok(Some(v))
    }

    fn builder(
        &mut self,
        v: Option<Spanned<String>>,
    ) -> Result<Option<Located<String>>, SpecError> {
        let Some(v) = v else { return Ok(None) };
        let v = self.string(v)?;
        check_image_ref("builder", &v)?;
        Ok(Some(v))
    }

    fn src(
        &mut self,
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
            let item = self.string(item)?;
            out.push(context_path("src", &item)?);
        }
        Ok(Some(Located::new(out, span)))
    }

    fn nix(&mut self, raw: RawNix, inherit: &Nix) -> Result<Nix, SpecError> {
        let mut options = inherit.options.clone();
        for (k, v) in raw.options.unwrap_or_default() {
            let span: Span = v.span().into();
            let value = match v.into_inner() {
                toml::Value::String(s) => self.string(Spanned::new(span.start..span.end, s))?.value,
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Array(items) => {
                    let mut words = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => {
                                words.push(
                                    self.string(Spanned::new(span.start..span.end, s))?.value,
                                );
                            }
                            other => words.push(other.to_string()),
                        }
                    }
                    words.join(" ")
                }
                other => {
                    return Err(invalid(
                        "nix.options",
                        format!("`{k}` has a {} value", other.type_str()),
                        "nix.conf values are strings, numbers, booleans or lists of strings",
                        span,
                    ));
                }
            };
            let key_ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if value.contains('\n') {
                return Err(invalid(
                    "nix.options",
                    format!("the value of `{k}` spans several lines"),
                    "write it on one line, or as a list of strings",
                    span,
                ));
            }
            if !key_ok {
                return Err(invalid(
                    "nix.options",
                    format!("`{k}` is not a nix.conf setting"),
                    "write settings as in nix.conf, e.g. options = { substituters = \"file:///cache\" }",
                    span,
                ));
            }
            options.insert(k, Located::new(value, span));
        }
        let mut ids = |list: Option<Vec<Spanned<String>>>,
                       key: &str,
                       inherit: &Vec<Located<String>>| {
            let Some(list) = list else {
                return Ok(inherit.clone());
            };
            list.into_iter()
                .map(|id| {
                    let id = self.string(id)?;
                    let ok = !id.value.is_empty()
                        && id.value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if ok {
                        Ok(id)
                    } else {
                        Err(invalid(
                            key,
                            format!("{:?} is not a secret id", id.value),
                            "ids are letters, digits, `-`, `_` or `.`, as in docker build --secret id=netrc,src=…",
                            id.at(),
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let secrets = ids(raw.secrets, "nix.secrets", &inherit.secrets)?;
        let conf_secrets = ids(raw.conf_secrets, "nix.conf-secrets", &inherit.conf_secrets)?;
        let binary_caches = match raw.binary_caches {
            Some(list) => list
                .into_iter()
                .map(|c| {
                    let c = self.string(c)?;
                    let path = context_path("nix.binary-caches", &c)?;
                    Ok(Located {
                        value: path,
                        span: c.span,
                    })
                })
                .collect::<Result<Vec<_>, SpecError>>()?,
            None => inherit.binary_caches.clone(),
        };
        Ok(Nix {
            options,
            secrets,
            conf_secrets,
            ssh: raw.ssh.unwrap_or(inherit.ssh),
            binary_caches,
        })
    }

    /// Checks `[image]`, each key falling back to `inherit` (the top level's
    /// image for a target, the empty image for the top level).
    fn image(&mut self, raw: RawImage, inherit: &Image) -> Result<Image, SpecError> {
        let base = match raw.base {
            Some(b) => {
                let b = self.string(b)?;
                if b.value == "scratch" {
                    None
                } else {
                    check_image_ref("image.base", &b)?;
                    Some(b)
                }
            }
            None => inherit.base.clone(),
        };
        // `run` is shell: build args reach it as environment variables, as
        // ARG does in a Dockerfile, so `${NAME}` is left to the shell.
        let run = match raw.run {
            Some(list) => {
                let mut out = Vec::new();
                for r in list {
                    let r = Located::from(r);
                    if r.value.trim().is_empty() {
                        return Err(invalid(
                            "image.run",
                            "has an empty command",
                            "remove it or write a shell command",
                            r.at(),
                        ));
                    }
                    out.push(r);
                }
                out
            }
            None => inherit.run.clone(),
        };
        let copy = match raw.copy {
            Some(list) => list
                .into_iter()
                .map(|c| self.copy(c))
                .collect::<Result<_, _>>()?,
            None => inherit.copy.clone(),
        };
        let entrypoint = match raw.entrypoint {
            Some(e) => Some(check_argv("image.entrypoint", self.strings(e)?)?),
            None => inherit.entrypoint.clone(),
        };
        let cmd = match raw.cmd {
            Some(c) => Some(self.strings(c)?),
            None => inherit.cmd.clone(),
        };
        let mut env = inherit.env.clone();
        for (k, v) in raw.env.unwrap_or_default() {
            let v = self.string(v)?;
            let name_ok = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(invalid(
                    "image.env",
                    format!("{k:?} is not a variable name"),
                    "variable names are letters, digits and `_`, e.g. env = { TZ = \"UTC\" }",
                    v.at(),
                ));
            }
            env.insert(k, v);
        }
        let workdir = match raw.workdir {
            Some(w) => {
                let w = self.string(w)?;
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
            Some(u) => Some(check_user(self.string(u)?)?),
            None => inherit.user.clone(),
        };
        let mut labels = inherit.labels.clone();
        for (k, v) in raw.labels.unwrap_or_default() {
            let v = self.string(v)?;
            if k.is_empty() {
                return Err(invalid(
                    "image.labels",
                    "a label has an empty name",
                    "write labels like { \"org.opencontainers.image.source\" = \"…\" }",
                    v.at(),
                ));
            }
            labels.insert(k, v);
        }
        let expose = match raw.expose {
            Some(list) => list
                .into_iter()
                .map(|p| self.string(p).and_then(check_port))
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
            run,
            copy,
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

    fn copy(&mut self, c: Spanned<RawCopy>) -> Result<Located<Copy>, SpecError> {
        let span: Span = c.span().into();
        let c = c.into_inner();
        let src = self.string(c.src)?;
        let src = context_path("image.copy.src", &src)?;
        let dest = self.string(c.dest)?;
        if !dest.value.starts_with('/') {
            return Err(invalid(
                "image.copy.dest",
                format!("{:?} is not an absolute path", dest.value),
                "write an absolute path; end it with `/` to copy into a directory",
                dest.at(),
            ));
        }
        let chown = match c.chown {
            Some(o) => {
                let o = self.string(o)?;
                let ok = |p: &str| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                };
                let valid = match o.value.split_once(':') {
                    Some((u, g)) => ok(u) && ok(g),
                    None => ok(&o.value),
                };
                if !valid {
                    return Err(invalid(
                        "image.copy.chown",
                        format!("{:?} is not an owner", o.value),
                        "write \"user\", \"user:group\" or numeric ids, e.g. chown = \"1000:1000\"",
                        o.at(),
                    ));
                }
                Some(o.value)
            }
            None => None,
        };
        let mode = match c.mode {
            Some(m) => {
                let mspan: Span = m.span().into();
                // An integer must be written in octal (0o644): 644 in decimal
                // is the sticky bit and r-----r--, never what was meant.
                let written = self
                    .text
                    .get(mspan.start..mspan.end)
                    .unwrap_or_default()
                    .to_owned();
                let n = match m.into_inner() {
                    toml::Value::Integer(i) if written.starts_with("0o") => u32::try_from(i).ok(),
                    toml::Value::String(s) if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) => {
                        u32::from_str_radix(&s, 8).ok()
                    }
                    _ => None,
                };
                match n {
                    Some(n) if n <= 0o7777 => Some(n),
                    _ => {
                        return Err(invalid(
                            "image.copy.mode",
                            format!("{written} is not an octal file mode"),
                            "write an octal mode, e.g. mode = \"0644\" or mode = 0o644",
                            mspan,
                        ));
                    }
                }
            }
            None => None,
        };
        Ok(Located::new(
            Copy {
                src,
                dest: dest.value,
                chown,
                mode,
            },
            span,
        ))
    }
}

fn check_cache(raw: RawCache) -> Result<Cache, SpecError> {
    let max_size = match raw.max_size {
        Some(m) => {
            let span: Span = m.span().into();
            match parse_size(m.get_ref()) {
                Some(n) if n >= 1 << 20 => Some(Located::new(n, span)),
                _ => {
                    return Err(invalid(
                        "cache.max-size",
                        format!("{:?} is not a size of at least 1MiB", m.get_ref()),
                        "write a size like \"500MB\" or \"2GiB\" (K, M, G, T: powers of 1000; Ki, Mi, Gi, Ti: of 1024)",
                        span,
                    ));
                }
            }
        }
        None => None,
    };
    Ok(Cache {
        max_size,
        verify: raw.verify.unwrap_or(false),
    })
}

/// `500MB`, `2GiB`, `1.5G`, `1048576`: bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim().trim_end_matches('B').trim_end_matches('b');
    let scale: f64 = match unit {
        "" => 1.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * scale;
    (0.0..1e18).contains(&bytes).then_some(bytes as u64)
}

/// A relative path inside the build context, without `./` or a trailing `/`.
fn context_path(key: &str, p: &Located<String>) -> Result<String, SpecError> {
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

fn check_image_ref(key: &str, v: &Located<String>) -> Result<(), SpecError> {
    let name = v.value.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or_default();
    let bad = v.value.is_empty()
        || v.value.contains(char::is_whitespace)
        || v.value.contains("://")
        || name.contains("//")
        || name.starts_with(['-', '/', '.', ':'])
        || name.ends_with([':', '/'])
        || last.starts_with(':')
        || name.chars().any(|c| c.is_ascii_uppercase());
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

fn check_argv(key: &str, v: Located<Vec<String>>) -> Result<Located<Vec<String>>, SpecError> {
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
fn check_user(u: Located<String>) -> Result<Located<User>, SpecError> {
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

fn check_port(p: Located<String>) -> Result<Located<String>, SpecError> {
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
