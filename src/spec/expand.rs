//! `${NAME}` in spec strings: build-arg references, expanded from
//! `--build-arg` values (`$${` is a literal `${`), and where each was used.

use std::collections::{BTreeMap, HashSet};

use toml::Spanned;

use super::error::{SpecError, invalid};
use crate::span::{Located, Span};

/// Expands build args in the strings of one spec, remembering every
/// reference it met.
pub(super) struct Expander<'a> {
    text: &'a str,
    /// `None`: a reference expands to the arg's name (for subrequests, which
    /// describe a spec without building it).
    pub args: Option<&'a BTreeMap<String, String>>,
    /// Every reference, with its first place.
    pub used: BTreeMap<String, Span>,
    /// The values (and lists) where a name stood in for an unknown value:
    /// their checks would judge the stand-in, not the value.
    stood_in: HashSet<Span>,
}

impl<'a> Expander<'a> {
    pub fn new(text: &'a str, args: Option<&'a BTreeMap<String, String>>) -> Self {
        Self {
            text,
            args,
            used: BTreeMap::new(),
            stood_in: HashSet::new(),
        }
    }

    /// Whether the value at `span` took a build arg whose value is not
    /// known here.
    pub fn stood_in(&self, span: Span) -> bool {
        self.stood_in.contains(&span)
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Expands `${NAME}` from build args; `$${` is a literal `${`. `key`
    /// names the value in errors.
    pub fn string(&mut self, key: &str, v: Spanned<String>) -> Result<Located<String>, SpecError> {
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
                    key,
                    format!("unclosed `${{` in {raw:?}"),
                    "write ${NAME}, or $${ for a literal ${",
                    span,
                ));
            };
            let name = &body[..end];
            if !is_arg_name(name) {
                return Err(invalid(
                    key,
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
                        key,
                        format!("build arg `{name}` is not defined"),
                        format!(
                            "pass --build-arg {name}=VALUE, or write $${{{name}}} for the literal text"
                        ),
                        span,
                    ));
                }
                // Describing, not building: the name stands in for the value,
                // so the rest of the spec can still be checked.
                None => {
                    self.stood_in.insert(span);
                    out.push_str(name);
                }
            }
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        Ok(Located::new(out, span))
    }

    /// Expands every item of a list; the list keeps its own span.
    pub fn strings(
        &mut self,
        key: &str,
        v: Spanned<Vec<Spanned<String>>>,
    ) -> Result<Located<Vec<String>>, SpecError> {
        let span: Span = v.span().into();
        let mut stood_in = false;
        let mut items = Vec::new();
        for s in v.into_inner() {
            let s = self.string(key, s)?;
            stood_in |= self.stood_in(s.at());
            items.push(s.value);
        }
        if stood_in {
            self.stood_in.insert(span);
        }
        Ok(Located::new(items, span))
    }
}

/// Letters, digits and `_`, not starting with a digit: what `ARG` accepts.
pub(super) fn is_arg_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(s: &str, args: &[(&str, &str)]) -> Result<String, SpecError> {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let text = format!("x = \"{s}\"");
        let mut e = Expander::new(&text, Some(&args));
        e.string("x", Spanned::new(4..text.len(), s.to_owned()))
            .map(|l| l.value)
    }

    #[test]
    fn expands_references_and_keeps_literals() {
        assert_eq!(expand("a${X}b", &[("X", "1")]).unwrap(), "a1b");
        assert_eq!(expand("$${X}", &[]).unwrap(), "${X}");
        assert_eq!(expand("$HOME", &[]).unwrap(), "$HOME");
        assert!(expand("${X", &[]).is_err());
        assert!(expand("${1X}", &[("1X", "")]).is_err());
        let e = expand("${Y}", &[]).unwrap_err();
        assert!(
            e.to_string().contains("build arg `Y` is not defined"),
            "{e}"
        );
    }
}
