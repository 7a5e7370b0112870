//! Positions in the spec text. A `Span` is a byte range; it becomes a 1-based
//! line and column only at the edge, where a user or BuildKit reads it.

use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Self {
        Self {
            start: r.start,
            end: r.end,
        }
    }
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

impl Span {
    /// Where the span starts and ends in `text`, as 1-based lines and columns.
    /// An end on the first byte of a line is pulled back to the previous line,
    /// so a span covering a whole line does not spill onto the next.
    pub fn lines(self, text: &str) -> (LineCol, LineCol) {
        let start = line_col(text, self.start);
        let end_at = if self.end > self.start {
            self.end - 1
        } else {
            self.start
        };
        (start, line_col(text, end_at))
    }
}

fn line_col(text: &str, offset: usize) -> LineCol {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    LineCol {
        line,
        col: before[line_start..].chars().count() + 1,
    }
}

/// A value from the spec, with where it was written (`None` for defaults).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Located<T> {
    pub value: T,
    #[serde(skip)]
    pub span: Option<Span>,
}

impl<T> Located<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self {
            value,
            span: Some(span),
        }
    }

    pub fn default_value(value: T) -> Self {
        Self { value, span: None }
    }

    /// Where the value was written, or the start of the file for a default.
    pub fn at(&self) -> Span {
        self.span.unwrap_or(Span { start: 0, end: 0 })
    }
}

impl<T> From<toml::Spanned<T>> for Located<T> {
    fn from(s: toml::Spanned<T>) -> Self {
        let span = s.span().into();
        Self::new(s.into_inner(), span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        let (s, e) = Span::from(6..12).lines(text);
        assert_eq!((s.line, s.col), (2, 1));
        assert_eq!((e.line, e.col), (2, 6));
    }

    #[test]
    fn span_ending_at_newline_stays_on_its_line() {
        let text = "a = 1\nb = 2\n";
        let (s, e) = Span::from(0..6).lines(text);
        assert_eq!((s.line, e.line), (1, 1));
    }
}
