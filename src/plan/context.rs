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

/// The patterns of a `.dockerignore`, as BuildKit's local source takes them:
/// one per line, comments and blank lines dropped, a leading `/` removed
/// (patterns are relative to the context root), `!` exceptions kept.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(rest) => format!("!{}", rest.trim_start_matches('/')),
            None => l.trim_start_matches('/').to_owned(),
        })
        .filter(|l| !l.is_empty() && l != "!")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockerignore() {
        let p = dockerignore_patterns("# comment\n\n/target\r\n*.log\n!/keep.log\n/\n");
        assert_eq!(p, ["target", "*.log", "!keep.log"]);
    }
}
