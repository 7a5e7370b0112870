//! Golden tests of the plan and the LLB for every spec in the repository
//! (examples and test fixtures), with the op digests pinned: a change to
//! what the frontend sends BuildKit shows up here as a diff to review.
//!
//! `tests/golden/NAME.plan.json` and `NAME.llb.txt`, one pair per spec, made
//! with the same stand-in facts as `nix-frontend plan|llb` (no daemon).
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites them.

use std::fs;
use std::path::{Path, PathBuf};

use nix_frontend::debug;

/// A golden case: its name, the spec, the build args, whether MergeOp is on.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
);

const SPECS: &[Case] = &[
    ("hello", "examples/hello/Dockerfile", &[], false),
    ("hello-mergeop", "examples/hello/Dockerfile", &[], true),
    (
        "valkyrie-like",
        "examples/valkyrie-like/Dockerfile",
        &[],
        false,
    ),
    (
        "valkyrie-like-mergeop",
        "examples/valkyrie-like/Dockerfile",
        &[],
        true,
    ),
    (
        "keys",
        "tests/fixtures/keys.toml",
        &[("ZONE", "Europe/Test")],
        false,
    ),
    ("layered", "tests/fixtures/layered/Dockerfile", &[], true),
    (
        "cachework",
        "tests/fixtures/cachework/Dockerfile",
        &[],
        false,
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(path: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(path, got).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let want = fs::read_to_string(path).unwrap_or_default();
    if want != got {
        let diff: Vec<String> = diff_lines(&want, got);
        failures.push(format!("{}:\n{}", path.display(), diff.join("\n")));
    }
}

/// The lines only one side has, marked `-` (golden) and `+` (now).
fn diff_lines(want: &str, got: &str) -> Vec<String> {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out: Vec<String> = w
        .iter()
        .filter(|l| !g.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        g.iter()
            .filter(|l| !w.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}

#[test]
fn plan_and_llb_of_every_spec() {
    let dir = root().join("tests/golden");
    fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (name, spec, args, mergeop) in SPECS {
        let path = root().join(spec);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {spec}: {e}"));
        let req = debug::Request {
            filename: path.file_name().unwrap().to_string_lossy().into_owned(),
            text,
            mergeop: *mergeop,
            build_args: args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        let out = debug::run(&req)
            .unwrap_or_else(|d| panic!("{spec}: {}", d.render(&req.filename, &req.text)));
        check(
            &dir.join(format!("{name}.plan.json")),
            &(out.plan_text() + "\n"),
            &mut failures,
        );
        check(
            &dir.join(format!("{name}.llb.txt")),
            &out.llb_text(),
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "golden files differ (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn digests_do_not_depend_on_the_run() {
    // Emitting twice gives the same bytes: nothing random or map-ordered.
    let text = fs::read_to_string(root().join("examples/valkyrie-like/Dockerfile")).unwrap();
    let req = debug::Request {
        filename: "Dockerfile".into(),
        text,
        mergeop: true,
        ..Default::default()
    };
    let a = debug::run(&req).unwrap();
    let b = debug::run(&req).unwrap();
    assert_eq!(a.final_image, b.final_image);
    assert_eq!(a.nix, b.nix);
}
