//! Which files of the build context nix sees: `src`, minus `.dockerignore`,
//! minus the spec itself.

use serde::Serialize;

/// The context as the nix step's local source filters it (on the client).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContextFilter {
    /// Empty = everything.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The patterns of a `.dockerignore`, as BuildKit reads the file: a
/// byte-order mark dropped, one pattern per line, trimmed, comments and
/// blank lines dropped, `!` exceptions kept (`! x` is `!x`), each pattern
/// cleaned as a path (`./x`, `x/` and `a/../x` are `x`) and relative to the
/// context root (a leading `/` removed).
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| match l.strip_prefix('!') {
            Some(rest) => clean(rest.trim()).map(|p| format!("!{p}")),
            None => clean(l),
        })
        .collect()
}

/// A pattern as a clean relative path: lexically, `.` and empty parts
/// dropped, `..` taken back; `None` when nothing is left (the root).
fn clean(pattern: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !pattern.starts_with('/') {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockerignore() {
        let p = dockerignore_patterns("# comment\n\n/target\r\n*.log\n!/keep.log\n/\n");
        assert_eq!(p, ["target", "*.log", "!keep.log"]);
    }

    #[test]
    fn reads_dockerignore_as_buildkit_does() {
        let p = dockerignore_patterns(
            "\u{feff}node_modules\n./build/\n! build/keep \nsrc//gen/./x\na/../docs\n!/\n",
        );
        assert_eq!(
            p,
            ["node_modules", "build", "!build/keep", "src/gen/x", "docs"]
        );
    }
}
