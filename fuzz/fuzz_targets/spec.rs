//! The spec parser and planner on arbitrary text: whatever a user writes,
//! the frontend answers with a plan or a diagnostic, never a panic or a hang.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use nix_frontend::{debug, spec};

const FILENAME: &str = "Dockerfile";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As subrequests (`--call targets`) read a spec: undefined args are "".
    let lenient = spec::parse_lenient(FILENAME, text);
    if let Err(e) = &lenient {
        let _ = nix_frontend::diagnostic::Diagnostic::from(e).render(FILENAME, text);
    }

    // As a build reads it, without build args: the default target.
    check(debug::Request {
        filename: FILENAME.to_owned(),
        text: text.to_owned(),
        ..Default::default()
    });

    // With every referenced build arg defined, so that the planner sees
    // expanded values, once per target and on the other platform.
    let Ok(parsed) = lenient else { return };
    let build_args: BTreeMap<String, String> = parsed
        .args
        .keys()
        .map(|k| (k.clone(), format!("v{}", k.len())))
        .collect();
    let targets = std::iter::once(None).chain(parsed.targets.keys().take(4).cloned().map(Some));
    for (i, target) in targets.enumerate() {
        let mut options: BTreeMap<String, String> = build_args
            .iter()
            .map(|(k, v)| (format!("build-arg:{k}"), v.clone()))
            .collect();
        options.insert(
            "build-arg:SOURCE_DATE_EPOCH".into(),
            "1700000000".into(),
        );
        let platform = if i % 2 == 0 { "linux/amd64" } else { "linux/arm64/v8" };
        options.insert("platform".into(), platform.into());
        if let Some(t) = target {
            options.insert("target".into(), t);
        }
        check(debug::Request {
            filename: FILENAME.to_owned(),
            text: text.to_owned(),
            options,
            mergeop: i % 2 == 1,
            ..Default::default()
        });
    }
});

/// Runs a request to the end: a plan and both LLB dumps, or a rendered error.
fn check(req: debug::Request) {
    match debug::run(&req) {
        Ok(out) => {
            let _ = out.plan_text();
            let _ = out.llb_text();
        }
        Err(rendered) => {
            assert!(
                rendered.starts_with(FILENAME),
                "a diagnostic must start with the file name: {rendered:?}"
            );
        }
    }
}
