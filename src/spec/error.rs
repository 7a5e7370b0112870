//! Spec errors: what is wrong, which key, where, and a hint.

use serde_path_to_error::{Path, Segment};

use crate::span::Span;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The text is not TOML, or a value has the wrong type or key name.
    #[error("{message}")]
    Toml {
        message: String,
        hint: String,
        span: Option<Span>,
    },
    /// A key is TOML-valid but its value is not acceptable.
    #[error("`{key}`: {message}")]
    Invalid {
        key: String,
        message: String,
        hint: String,
        span: Span,
    },
    #[error("unknown target `{name}`")]
    UnknownTarget { name: String, known: Vec<String> },
}

impl SpecError {
    pub fn span(&self) -> Option<Span> {
        match self {
            Self::Toml { span, .. } => *span,
            Self::Invalid { span, .. } => Some(*span),
            Self::UnknownTarget { .. } => None,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Self::Toml { hint, .. } | Self::Invalid { hint, .. } => hint.clone(),
            Self::UnknownTarget { known, .. } if known.is_empty() => {
                "the spec defines no [targets.NAME] tables; drop --target".to_owned()
            }
            Self::UnknownTarget { known, .. } => format!("known targets: {}", known.join(", ")),
        }
    }

    /// Turns a toml error into ours: toml speaks serde ("invalid type: …,
    /// expected …"); we say which key, what was expected and what was found,
    /// in TOML's words, with a hint that fits. `path` is where the
    /// deserializer was; `None` for text that is not TOML.
    pub(super) fn from_toml(err: &toml::de::Error, path: Option<&Path>) -> Self {
        let raw = err.message().trim_end().trim_end_matches('.');
        let span: Option<Span> = err.span().map(Into::into);
        let key = path.map(key_path).filter(|k| !k.is_empty());
        let named = |what: String| match &key {
            Some(k) if !what.contains(&format!("`{k}`")) => format!("`{k}`: {what}"),
            _ => what,
        };
        let (message, hint) = if let Some(rest) = raw.strip_prefix("invalid type: ") {
            let (found, expected) = rest
                .split_once(", expected ")
                .unwrap_or((rest, "another type"));
            (
                named(format!(
                    "expected {}, found {}",
                    toml_words(expected),
                    toml_words(found)
                )),
                "the README lists every key with its type and an example".to_owned(),
            )
        } else if let Some(rest) = raw.strip_prefix("unknown field ") {
            // The path ends at the unknown key: the table is what holds it.
            let table = key
                .as_deref()
                .and_then(|k| k.rsplit_once('.'))
                .map(|(t, _)| t);
            let (field, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
            let hint = if expected.is_empty() {
                "this table takes no keys".to_owned()
            } else {
                format!("expected {expected}")
            };
            let message = match table {
                Some(t) => format!("`{t}`: unknown key {field}"),
                None => format!("unknown key {field}"),
            };
            (message, hint)
        } else if let Some(field) = raw.strip_prefix("missing field ") {
            let hint = match key.as_deref() {
                Some("image.copy") => {
                    format!("add {field}; each [[image.copy]] needs `src` and `dest`")
                }
                Some(k) => format!("add {field} to `{k}`"),
                None => format!("add {field}"),
            };
            (named(format!("missing key {field}")), hint)
        } else if raw.starts_with("duplicate key") {
            (
                raw.to_owned(),
                "each key may appear once in a table; remove one".to_owned(),
            )
        } else if raw.contains("literal string") || raw.contains("string values must be quoted") {
            (
                raw.to_owned(),
                "strings need quotes, e.g. flake = \".#app\"".to_owned(),
            )
        } else if raw == "invalid basic string, expected `\"`" {
            (
                "unclosed string".to_owned(),
                "end it with `\"` on the same line, or write a multi-line string as \"\"\"…\"\"\""
                    .to_owned(),
            )
        } else {
            let (what, expected) = raw.split_once(", expected ").unwrap_or((raw, ""));
            let hint = if expected.is_empty() {
                "the spec is TOML: strings need quotes, tables are [name], e.g. flake = \".#app\""
                    .to_owned()
            } else {
                format!("expected {}", toml_words(expected))
            };
            (named(toml_words(what)), hint)
        };
        Self::Toml {
            message,
            hint,
            span,
        }
    }
}

/// The dotted key the deserializer was at, e.g. `image.cmd`: array
/// positions and toml's own wrapper keys (a `Spanned` value is a table of
/// `$__serde_spanned_private_*` inside) left out, a key that is not bare
/// quoted as TOML quotes it, and a target's tables read like the top
/// level's (`targets.agent.image.cmd` is `image.cmd`).
fn key_path(path: &Path) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } if !key.starts_with("$__") => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let keys = match keys.as_slice() {
        ["targets", _, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    keys.iter()
        .map(|k| {
            let bare = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if bare {
                (*k).to_owned()
            } else {
                format!("{k:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// serde's names for types, in TOML's words.
fn toml_words(s: &str) -> String {
    let mut s = s
        .replace("a sequence", "an array")
        .replace("sequence", "array")
        .replace("a map", "a table")
        .replace("i64", "an integer");
    for raw in super::toml::TABLE_NAMES {
        s = s.replace(&format!("struct {raw}"), "a table");
    }
    s
}

pub(super) fn invalid(
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
