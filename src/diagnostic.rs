//! What a user reads when something is wrong: a one-line message naming the
//! spec file and line, then a `hint:` line. Rendered the same way by the
//! frontend (into the build error) and by the debug commands.

use crate::plan::PlanError;
use crate::spec::{Span, SpecError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub hint: String,
    pub span: Option<Span>,
}

impl Diagnostic {
    /// `FILE line N: message` and, on the next line, `hint: …`. Docker 20.10
    /// prints no snippet of the spec, so the line number is in the text.
    pub fn render(&self, filename: &str, text: &str) -> String {
        let place = match self.span {
            Some(span) => format!("{filename} line {}", span.lines(text).0.line),
            None => filename.to_owned(),
        };
        let mut s = format!("{place}: {}", self.message);
        if !self.hint.is_empty() {
            s.push_str("\nhint: ");
            s.push_str(&self.hint);
        }
        s
    }

    /// The 1-based first and last line of the span.
    pub fn lines(&self, text: &str) -> Option<(usize, usize)> {
        let (a, b) = self.span?.lines(text);
        Some((a.line, b.line))
    }
}

impl From<&SpecError> for Diagnostic {
    fn from(e: &SpecError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
            span: e.span(),
        }
    }
}

impl From<&PlanError> for Diagnostic {
    fn from(e: &PlanError) -> Self {
        Self {
            message: e.to_string(),
            hint: e.hint(),
            span: e.span(),
        }
    }
}
