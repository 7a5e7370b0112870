use super::*;
use crate::debug;

fn request(text: &str, mergeop: bool) -> debug::Request {
    debug::Request {
        filename: "Dockerfile".into(),
        text: text.into(),
        mergeop,
        ..Default::default()
    }
}

#[test]
fn emission_is_deterministic() {
    let text = "flake = \".#hello\"\nbuilder = \"local/nix:test\"\n";
    let a = debug::run(&request(text, false)).unwrap();
    let b = debug::run(&request(text, false)).unwrap();
    assert_eq!(digests(&a.nix), digests(&b.nix));
    assert_eq!(digests(&a.final_image), digests(&b.final_image));
}

#[test]
fn nix_step_has_locked_cache_seeded_from_builder() {
    let out = debug::run(&request("builder = \"local/nix:test\"\n", false)).unwrap();
    let text = dump(&out.nix);
    assert!(
        text.contains("mount /nix cache id=nix-frontend/store/default/"),
        "{text}"
    );
    assert!(text.contains("sharing=2"), "{text}");
    assert!(text.contains("selector=/nix"), "{text}");
    assert!(text.contains("mount /src bind ro"), "{text}");
    assert!(
        text.contains("mount /out bind rw from scratch -> output 1"),
        "{text}"
    );
}

#[test]
fn source_map_points_at_flake_line() {
    let out = debug::run(&request(
        "builder = \"local/nix:test\"\n\nflake = \".#x\"\n",
        false,
    ))
    .unwrap();
    let text = dump(&out.nix);
    assert!(text.contains("-> Dockerfile:3-3"), "{text}");
}

#[test]
fn mergeop_only_when_asked() {
    let text = "builder = \"local/nix:test\"\n[image]\nbase = \"debian:12\"\n";
    let chained = dump(&debug::run(&request(text, false)).unwrap().final_image);
    let merged = dump(&debug::run(&request(text, true)).unwrap().final_image);
    assert!(!chained.contains(" merge "), "{chained}");
    assert!(merged.contains(" merge "), "{merged}");
}
