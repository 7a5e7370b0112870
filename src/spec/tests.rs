use std::collections::BTreeMap;

use super::*;

const FULL: &str = r#"# syntax=local/nix-frontend:dev
flake = ".#hello"
builder = "local/nix:test"
src = ["flake.nix", "src"]

[image]
base = "scratch"
entrypoint = ["bin/hello"]
cmd = ["--loud"]
env = { TZ = "UTC" }
workdir = "/data"
user = "app:1000"
labels = { "org.opencontainers.image.source" = "https://example.org/x" }
expose = ["8080/tcp", "53/udp"]

[targets.agent]
flake = ".#agent"
[targets.agent.image]
entrypoint = ["bin/agent"]
"#;

#[test]
fn parses_every_key() {
    let s = parse("Dockerfile", FULL, &BTreeMap::new()).unwrap();
    assert!(!s.zero_config);
    assert_eq!(s.top.flake.value, ".#hello");
    assert_eq!(s.top.builder.value, "local/nix:test");
    assert_eq!(s.top.src.as_ref().unwrap().value, ["flake.nix", "src"]);
    assert_eq!(s.top.image.base, None);
    assert_eq!(
        s.top.image.entrypoint.as_ref().unwrap().value,
        ["bin/hello"]
    );
    assert_eq!(s.top.image.env["TZ"].value, "UTC");
    assert_eq!(s.top.image.expose.len(), 2);
    let agent = s.target(Some("agent")).unwrap();
    assert_eq!(agent.flake.value, ".#agent");
    // Inherited from the top level.
    assert_eq!(agent.builder.value, "local/nix:test");
    assert_eq!(
        agent.image.user.as_ref().unwrap().value.to_string(),
        "app:1000"
    );
    assert_eq!(
        agent.image.entrypoint.as_ref().unwrap().value,
        ["bin/agent"]
    );
}

#[test]
fn defaults() {
    let s = parse("Dockerfile", "# syntax=x\n", &BTreeMap::new()).unwrap();
    assert_eq!(s.top.flake.value, DEFAULT_FLAKE);
    assert_eq!(s.top.builder.value, DEFAULT_BUILDER);
    assert_eq!(s.top.flake.span, None);
}

#[test]
fn zero_config_flake() {
    let s = parse(
        "flake.nix",
        "# syntax=x\n{ outputs = _: {}; }\n",
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(s.zero_config);
    assert_eq!(s.top.flake.value, ".#default");
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = "# syntax=x\nflake = \".#a\"\nflakes = \"x\"\n";
    let e = parse("Dockerfile", text, &BTreeMap::new()).unwrap_err();
    let (start, _) = e.span().unwrap().lines(text);
    assert_eq!(start.line, 3);
    assert!(e.to_string().contains("unknown key `flakes`"), "{e}");
    assert!(e.hint().contains("`flake`"), "{}", e.hint());
}

#[test]
fn spans_point_at_values() {
    let s = parse("Dockerfile", FULL, &BTreeMap::new()).unwrap();
    let (start, _) = s.top.flake.span.unwrap().lines(FULL);
    assert_eq!(start.line, 2);
}

#[test]
fn unknown_target_lists_known() {
    let s = parse("Dockerfile", FULL, &BTreeMap::new()).unwrap();
    let e = s.target(Some("nope")).unwrap_err();
    assert_eq!(e.hint(), "known targets: agent");
}

#[test]
fn a_shell_healthcheck_is_not_expanded() {
    // A build arg of the same name must not change the shell text, and an
    // undefined one is no error: the container's shell expands it.
    let text = "[image]\nhealthcheck = { test = \"wget -q http://localhost:${PORT}/\" }\nenv = { PORT = \"8080\" }\n";
    let args = BTreeMap::from([("PORT".to_owned(), "1; rm -rf /".to_owned())]);
    for args in [BTreeMap::new(), args] {
        let s = parse("Dockerfile", text, &args).unwrap();
        let h = s.top.image.healthcheck.as_ref().unwrap();
        assert_eq!(
            h.value.test,
            ["CMD-SHELL", "wget -q http://localhost:${PORT}/"]
        );
    }
    // The argv form is spec values, expanded as everywhere else.
    let text = "[image]\nhealthcheck = { test = [\"bin/check\", \"${PORT}\"] }\n";
    let args = BTreeMap::from([("PORT".to_owned(), "8080".to_owned())]);
    let s = parse("Dockerfile", text, &args).unwrap();
    assert_eq!(
        s.top.image.healthcheck.unwrap().value.test,
        ["CMD", "bin/check", "8080"]
    );
}

#[test]
fn a_subrequest_takes_an_image_from_a_build_arg() {
    let text = "builder = \"${BUILDER}\"\n[image]\nbase = \"${BASE}\"\n";
    // `--call check` parses without the args' values: nothing to check yet.
    assert!(parse_lenient("Dockerfile", text).is_ok());
    let args = BTreeMap::from([
        ("BUILDER".to_owned(), "local/nix:test".to_owned()),
        ("BASE".to_owned(), "Not A Ref".to_owned()),
    ]);
    let err = parse("Dockerfile", text, &args).unwrap_err();
    assert!(
        err.to_string().contains("is not an image reference"),
        "{err}"
    );
}

#[test]
fn a_value_from_an_unknown_build_arg_is_not_judged_by_its_stand_in() {
    // Each value's stand-in (the arg's name) would fail its key's check.
    let text = r#"flake = "${FLAKE}"
[image]
workdir = "${DIR}"
expose = ["${PORT}"]
stop-signal = "${SIG}"
volumes = ["${VOL}"]
healthcheck = { test = "true", interval = "${EVERY}" }
copy = [{ src = "etc", dest = "${DEST}" }]
[sbom]
supplier = "${SUPPLIER}"
[cache]
max-size = "${SIZE}"
[targets.prod.image]
workdir = "${PROD_DIR}"
"#;
    let spec = parse_lenient("Dockerfile", text).unwrap();
    assert_eq!(spec.top.image.workdir.unwrap().value, "DIR");
    // A build of the top level needs only its own args' values.
    let args: BTreeMap<String, String> = [
        ("FLAKE", ".#app"),
        ("DIR", "/app"),
        ("PORT", "8080"),
        ("SIG", "SIGTERM"),
        ("VOL", "/data"),
        ("EVERY", "30s"),
        ("DEST", "/etc/app/"),
        ("SUPPLIER", "Organization: Valkyrie"),
        ("SIZE", "10G"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let spec = parse_for_target("Dockerfile", text, &args, None).unwrap();
    assert_eq!(spec.top.image.workdir.unwrap().value, "/app");
    // A known value is still checked.
    let mut bad = args.clone();
    bad.insert("DIR".to_owned(), "app".to_owned());
    let err = parse_for_target("Dockerfile", text, &bad, None).unwrap_err();
    assert!(err.to_string().contains("is not an absolute path"), "{err}");
}
