//! The LLB a build sends, as the pipeline emits it on the fake engine:
//! properties every definition must have, beyond the pinned goldens.

use nix_frontend::debug;
use nix_frontend::engine::fake::Kind;
use nix_frontend::llb::{Definition, digests, dump, op_named};

fn request(text: &str, mergeop: bool) -> debug::Request {
    debug::Request {
        filename: "Dockerfile".into(),
        text: text.into(),
        mergeop,
        ..Default::default()
    }
}

fn last(out: &debug::Output, kind: Kind) -> Definition {
    out.last(kind).cloned().expect("solved")
}

#[test]
fn emission_is_deterministic() {
    let text = "flake = \".#hello\"\nbuilder = \"local/nix:test\"\n";
    let a = debug::run(&request(text, false)).unwrap();
    let b = debug::run(&request(text, false)).unwrap();
    assert_eq!(digests(&last(&a, Kind::Nix)), digests(&last(&b, Kind::Nix)));
    assert_eq!(
        digests(&last(&a, Kind::Image)),
        digests(&last(&b, Kind::Image))
    );
}

#[test]
fn nix_step_has_locked_cache_seeded_from_builder() {
    let out = debug::run(&request("builder = \"local/nix:test\"\n", false)).unwrap();
    let text = dump(&last(&out, Kind::Nix));
    // The store cache has no input (BuildKit keys it by its id alone); the
    // builder's /nix, which a new store is filled from, is a read-only bind.
    let cache = text
        .lines()
        .find(|l| l.contains("mount /nix cache "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(cache.contains("id=nix-frontend/store/default/"), "{cache}");
    assert!(cache.contains("sharing=2 from scratch"), "{cache}");
    assert!(cache.ends_with("from scratch"), "{cache}");
    let seed = text
        .lines()
        .find(|l| l.contains("mount /nix-frontend/seed "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(seed.contains(" bind ro from "), "{seed}");
    // Keyed by the seed op alone (the engine has the content-cache cap), not
    // by a hash of the builder's /nix.
    assert!(seed.ends_with(" selector=/nix content-key=off"), "{seed}");
    assert!(text.contains("mount /src bind ro"), "{text}");
    // The root is read-only (no snapshot of it per run); /out is the one
    // output, /tmp and the home are dropped.
    assert!(
        text.contains("mount /out bind rw from scratch -> output 0"),
        "{text}"
    );
    assert!(text.contains("mount / bind ro from "), "{text}");
    assert!(text.contains("mount /tmp bind rw from scratch\n"), "{text}");
    assert!(
        text.contains("mount /root bind rw from scratch\n"),
        "{text}"
    );
}

/// The layer ops mount the store the nix step built into: the same id and,
/// like it, no input, so no later solve can key it apart.
#[test]
fn layer_ops_mount_the_nix_steps_store_by_id_alone() {
    let out = debug::run(&request("builder = \"local/nix:test\"\n", false)).unwrap();
    let text = dump(&last(&out, Kind::Image));
    let caches: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("mount /nix cache "))
        .collect();
    assert!(caches.len() >= 2, "the nix step and a layer op: {text}");
    assert!(caches.iter().all(|l| *l == caches[0]), "{caches:#?}");
    assert!(caches[0].ends_with("from scratch"), "{}", caches[0]);
}

#[test]
fn source_map_points_at_flake_line() {
    let out = debug::run(&request(
        "builder = \"local/nix:test\"\n\nflake = \".#x\"\n",
        false,
    ))
    .unwrap();
    let text = dump(&last(&out, Kind::Nix));
    assert!(text.contains("-> Dockerfile:3-3"), "{text}");
}

#[test]
fn mergeop_only_when_asked() {
    let text = "builder = \"local/nix:test\"\n[image]\nbase = \"debian:12\"\n";
    let chained = dump(&last(
        &debug::run(&request(text, false)).unwrap(),
        Kind::Image,
    ));
    let merged = dump(&last(
        &debug::run(&request(text, true)).unwrap(),
        Kind::Image,
    ));
    assert!(!chained.contains(" merge "), "{chained}");
    assert!(merged.contains(" merge "), "{merged}");
}

/// The image graph holds the nix step, reached only through the layer of
/// the outputs (its marker mount): so a cache exported from the image
/// carries the nix step, and the other layers do not depend on it.
#[test]
fn nix_step_is_an_ancestor_of_the_image_through_the_outputs_layer() {
    let out = debug::run(&request("builder = \"local/nix:test\"\n", true)).unwrap();
    let nix = last(&out, Kind::Nix);
    let image = last(&out, Kind::Image);
    let nix_op = op_named(&nix, "[nix] build .").unwrap();
    assert_eq!(op_named(&image, "[nix] build ."), Some(nix_op.clone()));
    let text = dump(&image);
    let short = &nix_op["sha256:".len().."sha256:".len() + 12];
    let users: Vec<&str> = text
        .split("\n\n")
        .flat_map(|b| b.lines())
        .filter(|l| l.contains(&format!("from {short}:0")))
        .collect();
    assert_eq!(users.len(), 1, "one mount of the report: {text}");
    assert!(
        users[0].contains(
            "mount /nix-frontend/outputs/00000000000000000000000000000000-default bind ro"
        ) && users[0].contains("selector=/outputs/00000000000000000000000000000000-default"),
        "{}",
        users[0]
    );
    // The library's layer does not mount it: its block (up to the next op)
    // names no input of the nix step.
    let lib_layer: String = text
        .lines()
        .skip_while(|l| !l.contains("\"[image] layer 1/2: lib\""))
        .take_while(|l| l.starts_with(' ') || l.contains("layer 1/2: lib"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(lib_layer.contains("mount /nix cache"), "{lib_layer}");
    assert!(!lib_layer.contains(short), "{lib_layer}");
}

/// The dump's ops, one block each: its line and its indented details.
fn op_blocks(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        match blocks.last_mut() {
            Some(b) if line.starts_with(' ') => {
                b.push('\n');
                b.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks
}

/// `--no-cache` runs the ops that mount the store cache again by a new
/// environment, never by `ignore_cache`: BuildKit prunes every cache mount
/// of an ignored op's id before the solve, which would empty the store.
#[test]
fn no_cache_never_ignores_an_op_that_mounts_the_store() {
    let mut req = request("builder = \"local/nix:test\"\n", false);
    req.options.insert("no-cache".into(), String::new());
    let text = dump(&last(&debug::run(&req).unwrap(), Kind::Image));
    let blocks = op_blocks(&text);
    let store_ops: Vec<&String> = blocks
        .iter()
        .filter(|b| b.contains("mount /nix cache "))
        .collect();
    assert!(store_ops.len() >= 3, "the nix step and layer ops: {text}");
    for op in &store_ops {
        assert!(!op.contains("(ignores the cache)"), "{op}");
        assert!(
            op.contains("env: \"NIX_FRONTEND_RUN=debug-session.0\""),
            "{op}"
        );
    }
    // The ops that do not mount it are still marked.
    assert!(text.contains("(ignores the cache)"), "{text}");
}
