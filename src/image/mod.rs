//! The OCI image config we return with the result, and the user files a
//! scratch image needs.
//!
//! The config is kept as JSON (`serde_json::Value`, whose maps are sorted) so
//! that a base image's fields we do not know (Healthcheck, Shell, …) survive
//! and the bytes are the same for the same inputs.

mod user;

use serde_json::{Map, Value, json};

pub use user::UserFiles;

use crate::plan::{BaseUsers, BuildResult, Plan, PlanError};

/// Used when the base has no PATH; Docker's own default.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct ImageConfig(Value);

impl ImageConfig {
    /// Parses a config as ResolveImageConfig returns it; empty means none.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(json!({})));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !v.is_object() {
            return Err("not a JSON object".into());
        }
        Ok(Self(v))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    /// `config.Env`.
    pub fn env(&self) -> Vec<String> {
        strings(self.0.pointer("/config/Env"))
    }

    fn config_mut(&mut self) -> &mut Map<String, Value> {
        let root = self.0.as_object_mut().expect("checked in parse");
        let c = root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("made an object above")
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 3339 time of a Unix epoch second, as image configs spell it.
pub fn rfc3339(epoch: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The final config: the base's, with the spec's settings on top.
pub fn assemble(
    plan: &Plan,
    built: &BuildResult,
    layers: &[Vec<String>],
    users: Option<&UserFiles>,
) -> Result<ImageConfig, PlanError> {
    let mut cfg = plan.image.base_config.clone();
    let spec = &plan.image.spec;
    let out = built.main_output();
    let created = rfc3339(plan.epoch);

    let root = cfg.0.as_object_mut().expect("checked in parse");
    root.insert("architecture".into(), json!(plan.platform.architecture));
    root.insert("os".into(), json!(plan.platform.os));
    if plan.platform.variant.is_empty() {
        root.remove("variant");
    } else {
        root.insert("variant".into(), json!(plan.platform.variant));
    }
    root.insert("created".into(), json!(created));
    let mut history: Vec<Value> = root
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Same order as the layers: the user files first, then the store paths.
    for step in &plan.image.run {
        history.push(json!({
            "created": created,
            "created_by": format!("RUN /bin/sh -c {}", step.command.value),
            "comment": "nix-frontend",
        }));
    }
    if users.is_some() {
        history.push(json!({
            "created": created,
            "created_by": "nix-frontend: user",
            "comment": "nix-frontend",
        }));
    }
    for layer in layers {
        let shown = crate::plan::describe_layer(layer);
        history.push(json!({
            "created": created,
            "created_by": format!("nix-frontend: {shown}"),
            "comment": "nix-frontend",
        }));
    }
    // One per `image.copy` (each is a layer), so the exporter invents none
    // with its own time.
    for c in &spec.copy {
        history.push(json!({
            "created": created,
            "created_by": format!("COPY {} {}", c.value.src, c.value.dest),
            "comment": "nix-frontend",
        }));
    }
    root.insert("history".into(), Value::Array(history));
    let diff_ids = root
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .cloned()
        .unwrap_or_else(|| json!([]));
    root.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );

    // `bin/X` names a program of the package: one it lacks would give an
    // image that cannot start.
    if let Some(e) = &spec.entrypoint
        && let Some(prog) = e.value.first().and_then(|p| p.strip_prefix("bin/"))
        && !built.programs.iter().any(|p| p == prog)
    {
        let have = if built.programs.is_empty() {
            "it has no bin/".to_owned()
        } else {
            format!("it has: {}", built.programs.join(", "))
        };
        return Err(PlanError::Image {
            key: "image.entrypoint",
            message: format!("bin/{prog} is not a program of {out}"),
            hint: format!("{have}; or give an absolute path for a program of the base"),
            span: e.span,
        });
    }
    let c = cfg.config_mut();
    // The spec's, else meta.mainProgram, else the one program in bin/.
    let entrypoint = match (
        &spec.entrypoint,
        &built.main_program,
        built.programs.as_slice(),
    ) {
        (Some(e), _, _) => Some(resolve_argv(&e.value, out)),
        (None, Some(m), _) => Some(vec![format!("{out}/bin/{m}")]),
        (None, None, [only]) => Some(vec![format!("{out}/bin/{only}")]),
        _ => None,
    };
    match entrypoint {
        Some(e) => {
            c.insert("Entrypoint".into(), json!(e));
            // As in a Dockerfile: a new ENTRYPOINT drops the base's CMD.
            c.remove("Cmd");
        }
        None if c.get("Entrypoint").is_some_and(|e| !e.is_null()) || spec.cmd.is_some() => {}
        None => {
            let (message, hint) = if built.programs.is_empty() {
                (
                    format!("nothing to run: {out} has no meta.mainProgram and no bin/"),
                    "set [image] entrypoint = [\"…\"] or add meta.mainProgram to the package"
                        .to_owned(),
                )
            } else {
                (
                    format!(
                        "which program to run? {out} has no meta.mainProgram and several in bin/"
                    ),
                    format!(
                        "set [image] entrypoint to one of: {}",
                        built
                            .programs
                            .iter()
                            .map(|p| format!("[\"bin/{p}\"]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            };
            return Err(PlanError::Image {
                key: "image.entrypoint",
                message,
                hint,
                span: None,
            });
        }
    }
    if let Some(cmd) = &spec.cmd {
        c.insert("Cmd".into(), json!(resolve_argv(&cmd.value, out)));
    }

    // The spec's env first, then the package's bin in front of PATH, so a
    // PATH the spec sets still finds the package's programs.
    let mut env = strings(c.get("Env"));
    for (k, v) in &spec.env {
        set_env(&mut env, k, &v.value);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    set_env(&mut env, "PATH", &format!("{out}/bin:{path}"));
    c.insert("Env".into(), json!(env));

    if let Some(w) = &spec.workdir {
        c.insert("WorkingDir".into(), json!(w.value));
    }
    if let Some(u) = &spec.user {
        c.insert(
            "User".into(),
            json!(u.value.config_value(plan.image.base.is_none())),
        );
    }
    let labels = c.entry("Labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    let labels = labels.as_object_mut().expect("made an object above");
    for (k, v) in &spec.labels {
        labels.insert(k.clone(), json!(v.value));
    }
    for (k, v) in &plan.image.labels {
        labels.insert(k.clone(), json!(v));
    }
    if !spec.expose.is_empty() {
        let ports = c.entry("ExposedPorts").or_insert_with(|| json!({}));
        if !ports.is_object() {
            *ports = json!({});
        }
        let ports = ports.as_object_mut().expect("made an object above");
        for p in &spec.expose {
            let key = if p.value.contains('/') {
                p.value.clone()
            } else {
                format!("{}/tcp", p.value)
            };
            ports.insert(key, json!({}));
        }
    }
    Ok(cfg)
}

/// The files that make the spec's user exist: always for a named user on
/// scratch; on another base when its `/etc/passwd` (after `image.run`) lacks
/// the name.
pub fn user_files(plan: &Plan, base: Option<&BaseUsers>) -> Result<Option<UserFiles>, PlanError> {
    let Some(u) = &plan.image.spec.user else {
        return Ok(None);
    };
    let user = &u.value;
    if plan.image.base.is_none() {
        return Ok(user.files(None));
    }
    let empty = BaseUsers::default();
    let base = base.unwrap_or(&empty);
    let uid_of = |name: &str| {
        base.passwd
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .map(|l| l.split(':').nth(2).and_then(|u| u.parse::<u32>().ok()))
    };
    match &user.name {
        Some(name) => match uid_of(name) {
            None => Ok(user.files(Some(base))),
            // The base has the name: a different uid in the spec is a conflict.
            Some(existing) if user.uid.is_some() && existing != user.uid => Err(PlanError::Image {
                key: "image.user",
                message: format!(
                    "the base already has user `{name}` with uid {}, not {}",
                    existing.map_or_else(|| "?".to_owned(), |u| u.to_string()),
                    user.uid.unwrap_or_default()
                ),
                hint: format!("write user = \"{name}\" to use the base's, or choose another name"),
                span: u.span,
            }),
            Some(_) => Ok(None),
        },
        None => Ok(None),
    }
}

/// Relative program paths are inside the built package.
fn resolve_argv(argv: &[String], out: &str) -> Vec<String> {
    let mut v = argv.to_vec();
    if let Some(first) = v.first_mut()
        && !first.starts_with('/')
        && first.contains('/')
    {
        *first = format!("{out}/{}", first.trim_start_matches("./"));
    }
    v
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_programs_resolve_inside_the_package() {
        let v = resolve_argv(&["bin/hello".into(), "x".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["/nix/store/abc-hello/bin/hello", "x"]);
        let v = resolve_argv(&["/bin/sh".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["/bin/sh"]);
        // A bare word is a command looked up on PATH, as in a Dockerfile.
        let v = resolve_argv(&["hello".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["hello"]);
    }

    #[test]
    fn rfc3339_of_epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
