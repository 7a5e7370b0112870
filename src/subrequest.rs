//! Subrequests (`docker buildx build --call outline|targets|check`, or
//! `--print` on older buildx): answers about the spec that need no image.
//! Pure: the bridge passes in the spec and returns what these build.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::spec::{Span, Spec, Target};

pub const OUTLINE: &str = "frontend.outline";
pub const TARGETS: &str = "frontend.targets";
pub const LINT: &str = "frontend.lint";
pub const DESCRIBE: &str = "frontend.subrequests.describe";

/// What a subrequest returns: the metadata of an empty result.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub json: Value,
    pub text: String,
    /// `Some` for lint: non-zero when there are warnings.
    pub status: Option<u8>,
}

impl Answer {
    pub fn metadata(&self) -> BTreeMap<String, Vec<u8>> {
        let mut m = BTreeMap::new();
        m.insert(
            "result.json".to_owned(),
            serde_json::to_vec(&self.json).unwrap_or_default(),
        );
        m.insert("result.txt".to_owned(), self.text.clone().into_bytes());
        m.insert("version".to_owned(), b"1.0.0".to_vec());
        if let Some(code) = self.status {
            m.insert(
                "result.statuscode".to_owned(),
                code.to_string().into_bytes(),
            );
        }
        m
    }
}

/// A lint finding, with the spec lines it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static str,
    pub description: &'static str,
    pub detail: String,
    pub span: Option<Span>,
}

fn location(span: Option<Span>, text: &str) -> Value {
    match span {
        Some(span) => {
            let (a, b) = span.lines(text);
            json!({"sourceIndex": 0, "ranges": [{"start": {"line": a.line}, "end": {"line": b.line}}]})
        }
        None => json!({"sourceIndex": -1}),
    }
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Outline and targets carry the raw files (`[][]byte`, base64 in JSON).
fn raw_sources(text: &str) -> Value {
    json!([base64(text)])
}

/// Lint carries `pb.SourceInfo` objects, so clients can show snippets.
fn source_infos(filename: &str, text: &str) -> Value {
    json!([{"filename": filename, "data": base64(text), "language": "TOML"}])
}

pub fn describe() -> Answer {
    let item = |name: &str, description: &str| json!({"name": name, "version": "1.0.0", "type": "rpc", "description": description});
    let json = json!([
        item(OUTLINE, "list the build args the spec uses"),
        item(TARGETS, "list the spec's targets"),
        item(LINT, "check the spec"),
    ]);
    let text = format!("{OUTLINE}\n{TARGETS}\n{LINT}\n");
    Answer {
        json,
        text,
        status: None,
    }
}

/// The build args the spec refers to, with values given and places.
pub fn outline(
    spec: &Spec,
    target: Option<&str>,
    args: &BTreeMap<String, String>,
    text: &str,
) -> Answer {
    let mut out_args = Vec::new();
    let mut txt = String::from("BUILD ARG\tVALUE\n");
    for (name, span) in &spec.args {
        let mut a = json!({"name": name, "location": location(Some(*span), text)});
        if let Some(v) = args.get(name) {
            a["value"] = json!(v);
        }
        txt.push_str(&format!(
            "{name}\t{}\n",
            args.get(name).map_or("<undefined>", String::as_str)
        ));
        out_args.push(a);
    }
    let t = target.and_then(|n| spec.targets.get(n)).map(|t| &t.value);
    let mut json =
        json!({"args": out_args, "secrets": [], "ssh": [], "sources": raw_sources(text)});
    if let Some(n) = target {
        json["name"] = json!(n);
    }
    if let Some(d) = t.and_then(|t| t.description.as_ref()) {
        json["description"] = json!(d);
    }
    Answer {
        json,
        text: txt,
        status: None,
    }
}

/// The top level (as `default`) and every `[targets.NAME]`.
pub fn targets(spec: &Spec, text: &str) -> Answer {
    let mut list = vec![json!({
        "name": "default",
        "default": true,
        "description": "the top level of the spec",
        "base": base_of(&spec.top),
    })];
    let mut txt =
        String::from("TARGET\tDESCRIPTION\ndefault (default)\tthe top level of the spec\n");
    for (name, t) in &spec.targets {
        let mut item =
            json!({"name": name, "base": base_of(&t.value), "location": location(t.span, text)});
        if let Some(d) = &t.value.description {
            item["description"] = json!(d);
        }
        txt.push_str(&format!(
            "{name}\t{}\n",
            t.value.description.as_deref().unwrap_or("")
        ));
        list.push(item);
    }
    Answer {
        json: json!({"targets": list, "sources": raw_sources(text)}),
        text: txt,
        status: None,
    }
}

fn base_of(t: &Target) -> String {
    t.image
        .base
        .as_ref()
        .map_or_else(|| "scratch".to_owned(), |b| b.value.clone())
}

/// Checks of one target that need no build; `programs` (the built
/// package's `bin/`, when the pipeline built it) adds the entrypoint check.
/// Only the build args this target needs count: another target's are no
/// reason for this build to fail.
pub fn lint(
    target: &Target,
    args: &BTreeMap<String, String>,
    programs: Option<&[String]>,
) -> Vec<Warning> {
    let mut w = Vec::new();
    for (name, span) in &target.args {
        if !args.contains_key(name) {
            w.push(Warning {
                rule: "UndefinedBuildArg",
                description: "a `${NAME}` in the spec has no --build-arg",
                detail: format!("build arg `{name}` is not defined; the build will fail"),
                span: Some(*span),
            });
        }
    }
    if let Some(src) = &target.src {
        let (flake_dir, _) = target.flake_parts();
        let flake_file = if flake_dir.is_empty() {
            "flake.nix".to_owned()
        } else {
            format!("{flake_dir}/flake.nix")
        };
        let covered = src
            .value
            .iter()
            .any(|p| flake_file == *p || flake_file.starts_with(&format!("{p}/")));
        if !covered {
            w.push(Warning {
                rule: "SrcMissesFlake",
                description: "`src` must include the flake",
                detail: format!(
                    "`src` does not include {flake_file}, so nix will not find the flake"
                ),
                span: src.span,
            });
        }
    }
    if let Some(u) = &target.image.user
        && let user = &u.value
        && user.uid == Some(0)
        && user.name.as_deref().is_some_and(|n| n != "root")
    {
        w.push(Warning {
            rule: "UserIsRoot",
            description: "a named user with uid 0 is root under another name",
            detail: format!("user \"{}\" has uid 0: the container runs as root", u.value),
            span: u.span,
        });
    }
    if let (Some(e), Some(programs)) = (&target.image.entrypoint, programs)
        && let Some(prog) = e.value.first().and_then(|p| p.strip_prefix("bin/"))
        && !programs.iter().any(|p| p == prog)
    {
        w.push(Warning {
            rule: "EntrypointNotFound",
            description: "the entrypoint is not a program of the built package",
            detail: format!(
                "bin/{prog} is not in the package's bin/ ({})",
                programs.join(", ")
            ),
            span: e.span,
        });
    }
    w
}

pub fn lint_answer(
    warnings: &[Warning],
    filename: &str,
    text: &str,
    build_error: Option<String>,
) -> Answer {
    let list: Vec<Value> = warnings
        .iter()
        .map(|w| {
            json!({
                "ruleName": w.rule,
                "description": w.description,
                "detail": w.detail,
                "location": location(w.span, text),
            })
        })
        .collect();
    let mut txt = String::new();
    for w in warnings {
        let place = w
            .span
            .map_or_else(String::new, |s| format!(" (line {})", s.lines(text).0.line));
        txt.push_str(&format!("{}: {}{place}\n", w.rule, w.detail));
    }
    if warnings.is_empty() && build_error.is_none() {
        txt.push_str("Check complete, no warnings found.\n");
    }
    let mut json = json!({"warnings": list, "sources": source_infos(filename, text)});
    if let Some(e) = &build_error {
        json["buildError"] = json!({"message": e});
        txt.push_str(&format!("error: {e}\n"));
    }
    Answer {
        json,
        text: txt,
        status: Some(u8::from(!warnings.is_empty() || build_error.is_some())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        crate::spec::parse_lenient("Dockerfile", text).unwrap()
    }

    #[test]
    fn outline_lists_used_args() {
        let text = "flake = \".#${APP}\"\n[image]\nenv = { V = \"${VERSION}\" }\n";
        let s = spec(text);
        let args = BTreeMap::from([("VERSION".to_owned(), "1".to_owned())]);
        let a = outline(&s, None, &args, text);
        let names: Vec<&str> = a.json["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["APP", "VERSION"]);
        assert_eq!(a.json["args"][1]["value"], "1");
        assert_eq!(
            a.json["args"][0]["location"]["ranges"][0]["start"]["line"],
            1
        );
    }

    #[test]
    fn targets_list_top_level_first() {
        let text = "[targets.agent]\ndescription = \"the agent\"\nflake = \".#agent\"\n";
        let a = targets(&spec(text), text);
        assert_eq!(a.json["targets"][0]["name"], "default");
        assert_eq!(a.json["targets"][1]["name"], "agent");
        assert_eq!(a.json["targets"][1]["description"], "the agent");
    }

    #[test]
    fn lint_finds_problems() {
        let text = "flake = \".#${APP}\"\nsrc = [\"cmd\"]\n[image]\nuser = \"admin:0\"\nentrypoint = [\"bin/nope\"]\n";
        let s = spec(text);
        let w = lint(&s.top, &BTreeMap::new(), Some(&["app".to_owned()]));
        let rules: Vec<&str> = w.iter().map(|w| w.rule).collect();
        assert_eq!(
            rules,
            [
                "UndefinedBuildArg",
                "SrcMissesFlake",
                "UserIsRoot",
                "EntrypointNotFound"
            ]
        );
        let a = lint_answer(&w, "Dockerfile", text, None);
        assert_eq!(a.status, Some(1));
        let clean = lint(&spec("src = [\"flake.nix\"]\n").top, &BTreeMap::new(), None);
        assert!(clean.is_empty());
    }

    #[test]
    fn lint_is_per_target() {
        // `${AGENT}` is used only by the agent target: building the top
        // level needs no value for it, building agent does.
        let text = "flake = \".#app\"\n[targets.agent]\nflake = \".#${AGENT}\"\n";
        let s = spec(text);
        let top = lint(&s.top, &BTreeMap::new(), None);
        assert!(top.is_empty(), "{top:?}");
        let agent = lint(&s.targets["agent"].value, &BTreeMap::new(), None);
        assert_eq!(agent.len(), 1);
        assert_eq!(agent[0].rule, "UndefinedBuildArg");
        // The top level's args are every target's.
        let text = "flake = \".#${APP}\"\n[targets.agent]\ndescription = \"a\"\n";
        let s = spec(text);
        assert_eq!(
            lint(&s.targets["agent"].value, &BTreeMap::new(), None).len(),
            1
        );
    }
}
