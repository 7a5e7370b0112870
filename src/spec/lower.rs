//! From the TOML shape to a [`Spec`]: defaults filled in, build args
//! expanded, every value checked, targets inheriting the top level.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{SpecError, invalid};
use super::expand::Expander;
use super::toml::{
    RawCache, RawCopy, RawDefaults, RawHealthcheck, RawImage, RawNix, RawSbom, RawSpec, Str, Strs,
};
use super::values::{
    check_absolute, check_argv, check_image_ref, check_owner, check_port, check_signal, check_user,
    context_path, duration, file_mode, is_plain_name, store_size, unquotable,
};
use super::{
    Cache, Copy, DEFAULT_BUILDER, DEFAULT_FLAKE, DEFAULT_LAYERS, Defaults, Healthcheck, Image,
    MAX_LAYERS, Nix, RunOn, RunOnRule, SbomSettings, Spec, Target,
};
use crate::platform::Platform;
use crate::span::{Located, Span};

/// Words in the names of nix.conf settings that hold credentials themselves
/// (`access-tokens`): written into `nix.options` they would travel in the
/// build definition, its cache keys and provenance. Settings that name a
/// file (`netrc-file`, `secret-key-files`) are fine with a `--secret` mount.
const SECRET_SETTINGS: [&str; 2] = ["token", "password"];

/// Whether `word` is a URL with a user or a password in it.
fn has_credentials(word: &str) -> bool {
    url::Url::parse(word).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
}

pub(super) fn parse(
    text: &str,
    strict: Option<(&BTreeMap<String, String>, Option<&str>)>,
) -> Result<Spec, SpecError> {
    let args = strict.map(|(a, _)| a);
    let only_target = strict.and_then(|(_, t)| t);
    let de = ::toml::Deserializer::parse(text).map_err(|e| SpecError::from_toml(&e, None))?;
    let raw: RawSpec = serde_path_to_error::deserialize(de)
        .map_err(|e| SpecError::from_toml(e.inner(), Some(e.path())))?;
    let mut lower = Lower {
        ex: Expander::new(text, args),
    };
    let mut top = Target {
        description: None,
        flake: lower
            .flake(raw.flake)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_FLAKE.to_owned())),
        builder: lower
            .builder(raw.builder)?
            .unwrap_or_else(|| Located::default_value(DEFAULT_BUILDER.to_owned())),
        src: lower.src(raw.src)?,
        image: lower.image(raw.image.unwrap_or_default(), &Image::default())?,
        nix: lower.nix(raw.nix.unwrap_or_default(), &Nix::default())?,
        args: BTreeMap::new(),
    };
    let cache = lower.cache(raw.cache.unwrap_or_default())?;
    let sbom = lower.sbom(raw.sbom.unwrap_or_default())?;
    // The top level's references are needed by every target: a build of
    // any target expands the top level too.
    top.args = std::mem::take(&mut lower.ex.used);
    let mut all_args = top.args.clone();
    let mut targets = BTreeMap::new();
    for (name, t) in raw.targets.unwrap_or_default() {
        let span: Span = t.span().into();
        let t = t.into_inner();
        if !is_plain_name(&name) {
            return Err(invalid(
                "targets",
                format!("target name {name:?} is not usable with --target"),
                "name targets with letters, digits, `-`, `_` or `.`",
                span,
            ));
        }
        // Another target than the one being built: its args need no value,
        // as a Dockerfile's other stages need none.
        let strict_args = lower.ex.args;
        if only_target.is_some_and(|t| t != name) {
            lower.ex.args = None;
        }
        let mut target = Target {
            description: t
                .description
                .map(|d| lower.ex.string("description", d))
                .transpose()?
                .map(|d| d.value),
            flake: lower.flake(t.flake)?.unwrap_or_else(|| top.flake.clone()),
            builder: lower
                .builder(t.builder)?
                .unwrap_or_else(|| top.builder.clone()),
            src: lower.src(t.src)?.or_else(|| top.src.clone()),
            image: lower.image(t.image.unwrap_or_default(), &top.image)?,
            nix: lower.nix(t.nix.unwrap_or_default(), &top.nix)?,
            args: top.args.clone(),
        };
        lower.ex.args = strict_args;
        for (arg, at) in std::mem::take(&mut lower.ex.used) {
            all_args.entry(arg.clone()).or_insert(at);
            target.args.entry(arg).or_insert(at);
        }
        targets.insert(name, Located::new(target, span));
    }
    Ok(Spec {
        zero_config: false,
        top,
        targets,
        args: all_args,
        cache,
        sbom,
    })
}

struct Lower<'a> {
    ex: Expander<'a>,
}

impl Lower<'_> {
    fn flake(&mut self, v: Option<Str>) -> Result<Option<Located<String>>, SpecError> {
        let Some(v) = v else { return Ok(None) };
        let v = self.ex.string("flake", v)?;
        if self.ex.stood_in(v.at()) {
            return Ok(Some(v));
        }
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

    fn builder(&mut self, v: Option<Str>) -> Result<Option<Located<String>>, SpecError> {
        let Some(v) = v else { return Ok(None) };
        let v = self.ex.string("builder", v)?;
        self.lenient(v.at(), check_image_ref("builder", &v), || ())?;
        Ok(Some(v))
    }

    /// `checked`, unless the value at `at` took a build arg whose value is
    /// not known here (a subrequest's lenient parse, or another target than
    /// the one being built): then the check judged a stand-in, and
    /// `stand_in` gives the value to go on with.
    fn lenient<T>(
        &self,
        at: Span,
        checked: Result<T, SpecError>,
        stand_in: impl FnOnce() -> T,
    ) -> Result<T, SpecError> {
        match checked {
            Err(_) if self.ex.stood_in(at) => Ok(stand_in()),
            r => r,
        }
    }

    /// A program and its arguments.
    fn argv(&mut self, key: &str, v: Strs) -> Result<Located<Vec<String>>, SpecError> {
        let v = self.ex.strings(key, v)?;
        let stand_in = v.clone();
        self.lenient(v.at(), check_argv(key, v), || stand_in)
    }

    fn src(&mut self, v: Option<Strs>) -> Result<Option<Located<Vec<String>>>, SpecError> {
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
            let item = self.ex.string("src", item)?;
            let path =
                self.lenient(item.at(), context_path("src", &item), || item.value.clone())?;
            out.push(path);
        }
        Ok(Some(Located::new(out, span)))
    }

    /// One `nix.options` value as nix.conf writes it.
    fn option_value(
        &mut self,
        key: &str,
        v: Spanned<toml::Value>,
    ) -> Result<Located<String>, SpecError> {
        let span: Span = v.span().into();
        let mut text = |s: String| {
            self.ex
                .string("nix.options", Spanned::new(span.start..span.end, s))
                .map(|l| l.value)
        };
        let value = match v.into_inner() {
            toml::Value::String(s) => text(s)?,
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => {
                let mut words = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => words.push(text(s)?),
                        other => words.push(other.to_string()),
                    }
                }
                words.join(" ")
            }
            other => {
                return Err(invalid(
                    "nix.options",
                    format!("`{key}` has a {} value", other.type_str()),
                    "nix.conf values are strings, numbers, booleans or lists of strings",
                    span,
                ));
            }
        };
        if value.contains('\n') {
            return Err(invalid(
                "nix.options",
                format!("the value of `{key}` spans several lines"),
                "write it on one line, or as a list of strings",
                span,
            ));
        }
        Ok(Located::new(value, span))
    }

    fn nix(&mut self, raw: RawNix, inherit: &Nix) -> Result<Nix, SpecError> {
        let mut options = inherit.options.clone();
        for (k, v) in raw.options.unwrap_or_default() {
            let span: Span = v.span().into();
            let key_ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !key_ok {
                return Err(invalid(
                    "nix.options",
                    format!("`{k}` is not a nix.conf setting"),
                    "write settings as in nix.conf, e.g. options = { substituters = \"file:///cache\" }",
                    span,
                ));
            }
            if SECRET_SETTINGS.iter().any(|s| k.contains(s)) {
                return Err(invalid(
                    "nix.options",
                    format!(
                        "`{k}` holds a credential, and options are written into the build definition"
                    ),
                    format!(
                        "put the line `{k} = …` in a file, pass it with docker build --secret id=nixconf,src=FILE and list the id in nix.conf-secrets"
                    ),
                    span,
                ));
            }
            let value = self.option_value(&k, v)?;
            // The value too (a build arg may have put a credential there):
            // `https://user:token@cache.example.org` is as secret as a token.
            if value.value.split_whitespace().any(has_credentials) {
                return Err(invalid(
                    "nix.options",
                    format!(
                        "`{k}` has a URL with a user or password in it, and options are written into the build definition"
                    ),
                    "give the URL without them, and the credentials in a netrc file: docker build --secret id=netrc,src=FILE, nix.secrets = [\"netrc\"] and options = { netrc-file = \"/run/secrets/netrc\" }; or a nix.conf line through nix.conf-secrets",
                    value.at(),
                ));
            }
            options.insert(k, value);
        }
        let secrets = self.ids(raw.secrets, "nix.secrets", &inherit.secrets)?;
        let conf_secrets = self.ids(raw.conf_secrets, "nix.conf-secrets", &inherit.conf_secrets)?;
        let binary_caches = match raw.binary_caches {
            Some(list) => list
                .into_iter()
                .map(|c| {
                    let c = self.ex.string("nix.binary-caches", c)?;
                    let path =
                        self.lenient(c.at(), context_path("nix.binary-caches", &c), || {
                            c.value.clone()
                        })?;
                    Ok(Located {
                        value: path,
                        span: c.span,
                    })
                })
                .collect::<Result<Vec<_>, SpecError>>()?,
            None => inherit.binary_caches.clone(),
        };
        let run_on = match raw.run_on {
            Some(r) => self.run_on(r)?,
            None => inherit.run_on.clone(),
        };
        let mut override_inputs = inherit.override_inputs.clone();
        for (input, name) in raw.override_inputs.unwrap_or_default() {
            let name = self.ex.string("nix.override-inputs", name)?;
            let input_ok = input.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
            if !input_ok {
                return Err(invalid(
                    "nix.override-inputs",
                    format!("`{input}` is not a flake input path"),
                    "name an input of the flake, or of one of its inputs: override-inputs = { \"lib\" = \"my-lib\", \"lib/nixpkgs\" = \"nixpkgs\" }",
                    name.at(),
                ));
            }
            if name.value.is_empty() || name.value.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "nix.override-inputs",
                    format!("{:?} is not a build context name", name.value),
                    "write the NAME of docker build --build-context NAME=DIR",
                    name.at(),
                ));
            }
            override_inputs.insert(input, name);
        }
        Ok(Nix {
            options,
            secrets,
            conf_secrets,
            ssh: raw.ssh.unwrap_or(inherit.ssh),
            binary_caches,
            run_on,
            override_inputs,
        })
    }

    /// `[nix] run-on`: `"target"`, `"build"` or `"cross"` for every
    /// platform, or a table of them by platform with an optional `default`.
    fn run_on(&mut self, v: Spanned<toml::Value>) -> Result<RunOnRule, SpecError> {
        const KEY: &str = "nix.run-on";
        let span: Span = v.span().into();
        let range = v.span();
        match v.into_inner() {
            toml::Value::String(one) => {
                let one = self.ex.string(KEY, Spanned::new(range, one))?;
                let place = self.lenient(one.at(), run_on_place(&one.value, one.at()), || {
                    RunOn::default()
                })?;
                Ok(RunOnRule::all(place))
            }
            toml::Value::Table(table) => {
                let mut rule = RunOnRule::default();
                // The key each of `rule.platforms` was written as.
                let mut keys: Vec<String> = Vec::new();
                for (key, value) in table {
                    let toml::Value::String(value) = value else {
                        return Err(invalid(
                            KEY,
                            format!("the value for {key:?} is not a string"),
                            RUN_ON_HINT,
                            span,
                        ));
                    };
                    let place = run_on_place(&value, span)?;
                    if key == "default" {
                        rule.default = place;
                        continue;
                    }
                    let platform = Platform::parse(&key).map_err(|e| {
                        invalid(
                            KEY,
                            format!("{key:?} is not a platform we build"),
                            e.hint(),
                            span,
                        )
                    })?;
                    if let Some(i) = rule.platforms.iter().position(|(p, _)| *p == platform) {
                        return Err(invalid(
                            KEY,
                            format!("{:?} and {key:?} are both {platform}", keys[i]),
                            "give each platform once",
                            span,
                        ));
                    }
                    keys.push(key);
                    rule.platforms.push((platform, place));
                }
                Ok(rule)
            }
            _ => Err(invalid(
                KEY,
                "must be a string or a table",
                "write run-on = \"cross\", or by platform: run-on = { \"linux/arm64\" = \"cross\", default = \"target\" }",
                span,
            )),
        }
    }

    /// `--secret` ids: letters, digits, `-`, `_`, `.`.
    fn ids(
        &mut self,
        list: Option<Vec<Str>>,
        key: &str,
        inherit: &[Located<String>],
    ) -> Result<Vec<Located<String>>, SpecError> {
        let Some(list) = list else {
            return Ok(inherit.to_vec());
        };
        list.into_iter()
            .map(|id| {
                let id = self.ex.string(key, id)?;
                if is_plain_name(&id.value) {
                    Ok(id)
                } else {
                    Err(invalid(
                        key,
                        format!("{:?} is not a secret id", id.value),
                        "ids are letters, digits, `-`, `_` or `.` (not `.` or `..` alone), as in docker build --secret id=netrc,src=…",
                        id.at(),
                    ))
                }
            })
            .collect()
    }

    fn sbom(&mut self, raw: RawSbom) -> Result<SbomSettings, SpecError> {
        let supplier = match raw.supplier {
            Some(s) => {
                let s = self.ex.string("sbom.supplier", s)?;
                let ok = ["Organization: ", "Person: "].iter().any(|p| {
                    s.value
                        .strip_prefix(p)
                        .is_some_and(|n| !n.trim().is_empty())
                });
                if !ok && !self.ex.stood_in(s.at()) {
                    return Err(invalid(
                        "sbom.supplier",
                        format!("{:?} is not an SPDX supplier", s.value),
                        "write \"Organization: NAME\" or \"Person: NAME\", e.g. supplier = \"Organization: Valkyrie\"",
                        s.at(),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        Ok(SbomSettings { supplier })
    }

    fn cache(&mut self, raw: RawCache) -> Result<Cache, SpecError> {
        let max_size = match raw.max_size {
            Some(m) => {
                let m = self.ex.string("cache.max-size", m)?;
                Some(Located {
                    value: self.lenient(m.at(), store_size(&m), || 0)?,
                    span: m.span,
                })
            }
            None => None,
        };
        let project = match raw.project {
            Some(p) => {
                let p = self.ex.string("cache.project", p)?;
                if !is_plain_name(&p.value) {
                    return Err(invalid(
                        "cache.project",
                        format!("{:?} is not a project name", p.value),
                        "write letters, digits, `-`, `_` or `.`, e.g. project = \"valkyrie\"",
                        p.at(),
                    ));
                }
                Some(p)
            }
            None => None,
        };
        Ok(Cache {
            max_size,
            verify: raw.verify.unwrap_or(false),
            project,
        })
    }

    /// Checks `[image]`, each key falling back to `inherit` (the top level's
    /// image for a target, the empty image for the top level).
    fn image(&mut self, raw: RawImage, inherit: &Image) -> Result<Image, SpecError> {
        let base = match raw.base {
            Some(b) => {
                let b = self.ex.string("image.base", b)?;
                if b.value == "scratch" {
                    None
                } else {
                    self.lenient(b.at(), check_image_ref("image.base", &b), || ())?;
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
            Some(e) => Some(self.argv("image.entrypoint", e)?),
            None => inherit.entrypoint.clone(),
        };
        let cmd = match raw.cmd {
            Some(c) => Some(self.ex.strings("image.cmd", c)?),
            None => inherit.cmd.clone(),
        };
        let mut env = inherit.env.clone();
        for (k, v) in raw.env.unwrap_or_default() {
            let v = self.ex.string("image.env", v)?;
            if !super::expand::is_arg_name(&k) {
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
                let w = self.ex.string("image.workdir", w)?;
                if !w.value.starts_with('/') && !self.ex.stood_in(w.at()) {
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
            Some(u) => {
                let u = self.ex.string("image.user", u)?;
                let stand_in = Located::new(
                    super::user::User {
                        name: Some(u.value.clone()),
                        uid: None,
                        gid: None,
                    },
                    u.at(),
                );
                Some(self.lenient(u.at(), check_user(u), || stand_in)?)
            }
            None => inherit.user.clone(),
        };
        let mut labels = inherit.labels.clone();
        for (k, v) in raw.labels.unwrap_or_default() {
            let v = self.ex.string("image.labels", v)?;
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
                .map(|p| {
                    let p = self.ex.string("image.expose", p)?;
                    let stand_in = p.clone();
                    self.lenient(p.at(), check_port(p), || stand_in)
                })
                .collect::<Result<_, _>>()?,
            None => inherit.expose.clone(),
        };
        let layers = match raw.layers {
            Some(l) => Some(layer_budget(&l)?),
            None => inherit.layers.clone(),
        };
        let healthcheck = match raw.healthcheck {
            Some(h) => Some(self.healthcheck(h)?),
            None => inherit.healthcheck.clone(),
        };
        let stop_signal = match raw.stop_signal {
            Some(s) => {
                let s = self.ex.string("image.stop-signal", s)?;
                self.lenient(s.at(), check_signal(&s), || ())?;
                Some(s)
            }
            None => inherit.stop_signal.clone(),
        };
        let volumes = match raw.volumes {
            Some(list) => list
                .into_iter()
                .map(|v| {
                    let v = self.ex.string("image.volumes", v)?;
                    self.lenient(v.at(), check_absolute("image.volumes", &v), || ())?;
                    Ok(v)
                })
                .collect::<Result<_, SpecError>>()?,
            None => inherit.volumes.clone(),
        };
        let shell = match raw.shell {
            Some(s) => Some(self.argv("image.shell", s)?),
            None => inherit.shell.clone(),
        };
        let defaults = match raw.defaults {
            Some(d) => defaults(d, inherit.defaults),
            None => inherit.defaults,
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
            healthcheck,
            stop_signal,
            volumes,
            shell,
            defaults,
            nix_db: raw.nix_db.unwrap_or(inherit.nix_db),
        })
    }

    fn healthcheck(
        &mut self,
        h: Spanned<RawHealthcheck>,
    ) -> Result<Located<Healthcheck>, SpecError> {
        let span: Span = h.span().into();
        let h = h.into_inner();
        let tspan: Span = h.test.span().into();
        let bad_test = || {
            invalid(
                "image.healthcheck.test",
                "is neither a command nor NONE",
                "write test = \"curl -f http://localhost/\" (a shell command), [\"bin/check\", \"--quick\"] (a program) or \"NONE\"",
                tspan,
            )
        };
        let test = match h.test.into_inner() {
            toml::Value::String(s) if s.trim() == "NONE" => vec!["NONE".to_owned()],
            // Shell text, run by the container's shell at every check: there
            // `${NAME}` is the container's environment, as in a Dockerfile
            // HEALTHCHECK, never a build arg spliced into the text.
            toml::Value::String(s) if !s.trim().is_empty() => vec!["CMD-SHELL".to_owned(), s],
            toml::Value::Array(items) if !items.is_empty() => {
                let mut argv = vec!["CMD".to_owned()];
                for item in items {
                    let toml::Value::String(s) = item else {
                        return Err(bad_test());
                    };
                    argv.push(
                        self.ex
                            .string(
                                "image.healthcheck.test",
                                Spanned::new(tspan.start..tspan.end, s),
                            )?
                            .value,
                    );
                }
                if argv[1].is_empty() {
                    return Err(bad_test());
                }
                argv
            }
            _ => return Err(bad_test()),
        };
        let mut time = |key: &str, v: Option<Str>| -> Result<i64, SpecError> {
            match v {
                Some(v) => {
                    let v = self.ex.string(key, v)?;
                    let checked = duration(key, &v);
                    if self.ex.stood_in(v.at()) {
                        return Ok(checked.unwrap_or(0));
                    }
                    checked
                }
                None => Ok(0),
            }
        };
        let interval = time("image.healthcheck.interval", h.interval)?;
        let timeout = time("image.healthcheck.timeout", h.timeout)?;
        let start_period = time("image.healthcheck.start-period", h.start_period)?;
        let start_interval = time("image.healthcheck.start-interval", h.start_interval)?;
        let retries = match h.retries {
            Some(r) => {
                let rspan: Span = r.span().into();
                let n = r.into_inner();
                if n < 0 {
                    return Err(invalid(
                        "image.healthcheck.retries",
                        format!("{n} is not a number of retries"),
                        "write a number from 0 (Docker's default, 3) up",
                        rspan,
                    ));
                }
                n
            }
            None => 0,
        };
        Ok(Located::new(
            Healthcheck {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            },
            span,
        ))
    }

    fn copy(&mut self, c: Spanned<RawCopy>) -> Result<Located<Copy>, SpecError> {
        let span: Span = c.span().into();
        let c = c.into_inner();
        let src = self.ex.string("image.copy.src", c.src)?;
        let src = self.lenient(src.at(), context_path("image.copy.src", &src), || {
            src.value.clone()
        })?;
        let dest = self.ex.string("image.copy.dest", c.dest)?;
        if !dest.value.starts_with('/') && !self.ex.stood_in(dest.at()) {
            return Err(invalid(
                "image.copy.dest",
                format!("{:?} is not an absolute path", dest.value),
                "write an absolute path; end it with `/` to copy into a directory",
                dest.at(),
            ));
        }
        let chown = match c.chown {
            Some(o) => {
                let o = self.ex.string("image.copy.chown", o)?;
                self.lenient(o.at(), check_owner(&o), || ())?;
                Some(o.value)
            }
            None => None,
        };
        let mode = match c.mode {
            Some(m) => {
                let mspan: Span = m.span().into();
                let written = self
                    .ex
                    .text()
                    .get(mspan.start..mspan.end)
                    .unwrap_or_default()
                    .to_owned();
                Some(file_mode(&written, m.into_inner(), mspan)?)
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

fn defaults(raw: RawDefaults, inherit: Defaults) -> Defaults {
    Defaults {
        tmp: raw.tmp.unwrap_or(inherit.tmp),
        nsswitch: raw.nsswitch.unwrap_or(inherit.nsswitch),
        ca_certificates: raw.ca_certificates.unwrap_or(inherit.ca_certificates),
        zoneinfo: raw.zoneinfo.unwrap_or(inherit.zoneinfo),
    }
}

fn layer_budget(l: &Spanned<i64>) -> Result<Located<usize>, SpecError> {
    let span: Span = l.span().into();
    let n = *l.get_ref();
    match usize::try_from(n) {
        Ok(n @ 1..=MAX_LAYERS) => Ok(Located::new(n, span)),
        _ => Err(invalid(
            "image.layers",
            format!("{n} is not a layer budget"),
            format!(
                "write a number from 1 (the whole closure in one layer) to {MAX_LAYERS}; the default is {DEFAULT_LAYERS}"
            ),
            span,
        )),
    }
}

const RUN_ON_HINT: &str = "write \"target\" (the target platform's builder, emulated), \"build\" (the build platform's nix, emulated builders only) or \"cross\" (the build platform's nix and system, for a cross-compiling installable)";

/// One `run-on` place.
fn run_on_place(value: &str, span: Span) -> Result<RunOn, SpecError> {
    match value {
        "target" => Ok(RunOn::Target),
        "build" => Ok(RunOn::Build),
        "cross" => Ok(RunOn::Cross),
        other => Err(invalid(
            "nix.run-on",
            format!("{other:?} is not where nix can run"),
            RUN_ON_HINT,
            span,
        )),
    }
}
