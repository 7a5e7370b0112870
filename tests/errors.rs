//! Golden tests for what a user reads when a spec is wrong.
//!
//! Each case in `tests/errors/` is `NAME.toml` (the spec text), optionally
//! `NAME.args` (one option a line: `--target X`, `--platform P`,
//! `--build-arg K=V`) and `NAME.err`: the error exactly as the CLI prints it,
//! i.e. `Diagnostic::render("Dockerfile", text)` plus a final newline. The
//! fixture's own name never reaches the rendering: every case is read as a
//! `Dockerfile`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test errors` rewrites the `.err` files.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use nix_frontend::debug;

/// So that a broken directory walk cannot pass with nothing checked.
const MIN_FIXTURES: usize = 30;
const SYNTAX_LINE: &str = "# syntax=local/nix-frontend:dev";
const FILENAME: &str = "Dockerfile";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect()
}

/// The case names: every `NAME.toml`, sorted.
fn cases(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = files(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Reads `NAME.args` into the request; an unknown line is the fixture's bug.
fn apply_args(req: &mut debug::Request, args: &str) -> Result<(), String> {
    for line in args.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (opt, value) = line
            .split_once([' ', '='])
            .ok_or_else(|| format!("`{line}`: expected `--option VALUE`"))?;
        let value = value.trim().to_owned();
        match opt {
            "--target" => _ = req.options.insert("target".into(), value),
            "--platform" => _ = req.options.insert("platform".into(), value),
            "--build-arg" => {
                let (k, v) = value.split_once('=').unwrap_or((&value, ""));
                req.options.insert(format!("build-arg:{k}"), v.to_owned());
            }
            _ => return Err(format!("`{line}`: unknown option `{opt}`")),
        }
    }
    Ok(())
}

/// A line-by-line comparison: `  ` same, `-` expected, `+` got.
fn diff(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(g.len()) {
        match (e.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => out.push_str(&format!("    {a}\n")),
            (a, b) => {
                if let Some(a) = a {
                    out.push_str(&format!("  - {a}\n"));
                }
                if let Some(b) = b {
                    out.push_str(&format!("  + {b}\n"));
                }
            }
        }
    }
    out
}

/// Runs one case; `Ok` holds the rendered error, `Err` what is wrong with
/// the case itself.
fn render(dir: &Path, name: &str) -> Result<String, String> {
    let text = fs::read_to_string(dir.join(format!("{name}.toml"))).map_err(|e| e.to_string())?;
    if text.lines().next() != Some(SYNTAX_LINE) {
        return Err(format!("the first line must be `{SYNTAX_LINE}`"));
    }
    let mut req = debug::Request {
        filename: FILENAME.to_owned(),
        text: text.clone(),
        ..Default::default()
    };
    let args_path = dir.join(format!("{name}.args"));
    let has_args = args_path.exists();
    if has_args {
        let args = fs::read_to_string(&args_path).map_err(|e| e.to_string())?;
        apply_args(&mut req, &args)?;
    }
    // What `docker build` prints: the pipeline's error, rendered.
    let rendered = match debug::run(&req) {
        Ok(_) => return Err("the spec was accepted, but this case expects an error".into()),
        Err(message) => message,
    };
    // Errors from the spec text must point at it; only an option
    // (--target, --platform) may fail without a line.
    if !rendered.starts_with(&format!("{FILENAME} line ")) && !has_args {
        return Err(format!("the error has no line number:\n{rendered}"));
    }
    if !rendered.contains("\nhint: ") {
        return Err(format!("the error has no hint:\n{rendered}"));
    }
    Ok(rendered + "\n")
}

#[test]
fn error_messages_match_goldens() {
    let dir = dir();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let names = cases(&dir);
    assert!(
        names.len() >= MIN_FIXTURES,
        "found {} cases in {}, expected at least {MIN_FIXTURES}",
        names.len(),
        dir.display()
    );

    let mut failures = Vec::new();
    let mut updated = 0;
    for name in &names {
        let got = match render(&dir, name) {
            Ok(got) => got,
            Err(why) => {
                failures.push(format!("{name}: {why}"));
                continue;
            }
        };
        let golden = dir.join(format!("{name}.err"));
        let expected = fs::read_to_string(&golden).ok();
        if update {
            if expected.as_deref() != Some(got.as_str()) {
                fs::write(&golden, &got).unwrap();
                updated += 1;
            }
            continue;
        }
        match expected {
            None => failures.push(format!(
                "{name}: no {name}.err; run with UPDATE_GOLDEN=1 to write it. got:\n{got}"
            )),
            Some(expected) if expected != got => failures.push(format!(
                "{name}: the error differs from {name}.err (- expected, + got):\n{}",
                diff(&expected, &got)
            )),
            Some(_) => {}
        }
    }

    // Stray `.err`/`.args` files whose `.toml` is gone (renamed cases).
    let known: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    for path in files(&dir) {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
        if matches!(ext.as_deref(), Some("err" | "args")) && !known.contains(stem.as_str()) {
            failures.push(format!("{}: no {stem}.toml for it", path.display()));
        }
    }

    if update {
        eprintln!(
            "UPDATE_GOLDEN: rewrote {updated} of {} goldens",
            names.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} error cases failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
