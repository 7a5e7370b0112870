//! Spec errors: what is wrong, which key, where, and a hint.

use super::span::Span;

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

    /// Turns a toml error into ours: toml says "<what>, expected <what>", which
    /// splits naturally into a message and a hint; the key comes from the line.
    pub(super) fn from_toml(err: &toml::de::Error, text: &str) -> Self {
        let raw = err.message().trim_end().trim_end_matches('.');
        let span: Option<Span> = err.span().map(Into::into);
        let key = span.and_then(|s| key_on_line(text, s));
        let (what, expected) = match raw.split_once(", expected ") {
            Some((what, expected)) => (what.to_owned(), Some(expected.to_owned())),
            None => (raw.to_owned(), None),
        };
        let what = match what.strip_prefix("unknown field") {
            Some(rest) => format!("unknown key{rest}"),
            None => what,
        };
        let message = match &key {
            Some(k) if !what.contains(&format!("`{k}`")) => format!("`{k}`: {what}"),
            _ => what,
        };
        let hint = match expected {
            Some(e) => format!("expected {e}"),
            None => "the spec is TOML: strings need quotes, e.g. flake = \".#app\"".to_owned(),
        };
        Self::Toml {
            message,
            hint,
            span,
        }
    }
}

/// The key written on the line where `span` starts (`key = value`), if any.
fn key_on_line(text: &str, span: Span) -> Option<String> {
    let start = text.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    ok.then(|| key.to_owned())
}
