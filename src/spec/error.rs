//! Spec errors: what is wrong, which key, where, and a hint.

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
    /// in TOML's words, with a hint that fits.
    pub(super) fn from_toml(err: &toml::de::Error, text: &str) -> Self {
        let raw = err.message().trim_end().trim_end_matches('.');
        let span: Option<Span> = err.span().map(Into::into);
        let key = span.and_then(|s| key_at(text, s));
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
            let (field, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
            let hint = if expected.is_empty() {
                "this table takes no keys".to_owned()
            } else {
                format!("expected {expected}")
            };
            (format!("unknown key {field}"), hint)
        } else if let Some(field) = raw.strip_prefix("missing field ") {
            (
                named(format!("missing key {field}")),
                format!("add {field}; each [[image.copy]] needs `src` and `dest`"),
            )
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

/// The dotted key a span belongs to: the nearest `key =` at or above it
/// (a multi-line array's items sit below their key), prefixed by the table
/// header above that, e.g. `image.cmd`; a target's tables read like the top
/// level's (`[targets.agent.image]` → `image.…`).
pub(super) fn key_at(text: &str, span: Span) -> Option<String> {
    let start = span.start.min(text.len());
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut key: Option<String> = None;
    for line in text[..line_end].lines().rev() {
        let t = line.trim_start();
        if t.starts_with('[') {
            let header = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default();
            let parts: Vec<&str> = header
                .split('.')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            let table = match parts.as_slice() {
                ["targets", _, rest @ ..] => rest.to_vec(),
                other => other.to_vec(),
            };
            return key.map(|k| {
                if table.is_empty() {
                    k
                } else {
                    format!("{}.{k}", table.join("."))
                }
            });
        }
        if key.is_none()
            && !t.starts_with('#')
            && let Some((k, _)) = t.split_once('=')
        {
            // A bare key, or a whole quoted one: `"--listen=0.0.0.0",` is a
            // string with `=` inside, not a key.
            let k = k.trim();
            let k = match k.strip_prefix('"') {
                Some(q) => q.strip_suffix('"').unwrap_or("\u{0}"),
                None => k,
            };
            let ok = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if ok {
                key = Some(k.to_owned());
            }
        }
    }
    key
}
