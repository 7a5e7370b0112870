use super::*;

fn inputs() -> Inputs {
    Inputs {
        spec_paths: vec!["Dockerfile".into()],
        target: None,
        platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        cache_ns: String::new(),
        epoch: 0,
        builder: ImageFacts {
            name: "local/nix:test".into(),
            origin: Origin::Registry,
            resolved: String::new(),
            digest: String::new(),
            config: br#"{"config":{"Env":["PATH=/usr/bin:/bin"]}}"#.to_vec(),
        },
        base: None,
        dockerignore: vec!["target".into()],
        labels: BTreeMap::new(),
        build_args: BTreeMap::new(),
        vcs_source: None,
        vcs_revision: None,
        revision: None,
        overrides: Vec::new(),
        nix_graph: true,
        prefetch: Vec::new(),
        network: Network::default(),
    }
}

/// The nix step of an empty spec, for other modules' tests.
pub(super) fn nix_step_for_tests() -> NixStep {
    let spec = spec::parse("Dockerfile", "", &BTreeMap::new()).unwrap();
    build(&spec, &inputs()).unwrap().nix
}

#[test]
fn nix_step_from_spec() {
    let spec = spec::parse(
        "Dockerfile",
        "flake = \"./sub#app\"\nsrc = [\"sub\"]\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let plan = build(&spec, &inputs()).unwrap();
    assert_eq!(plan.nix.installable, "path:/src/sub#app");
    assert_eq!(plan.system, "x86_64-linux");
    assert_eq!(plan.nix.context.include, ["sub"]);
    // A checkout's `.git` is never part of what nix sees, and comes last.
    assert_eq!(plan.nix.context.exclude, ["target", "Dockerfile", ".git"]);
    assert!(plan.nix.env.iter().any(|e| e.starts_with("NIX_CONFIG=")));
    assert!(plan.nix.env.contains(&"PATH=/usr/bin:/bin".to_owned()));
    assert!(
        plan.nix
            .cache
            .id
            .starts_with("nix-frontend/store/default/config-")
    );
    assert!(plan.nix.cache.id.ends_with("/x86_64-linux"));
    assert_eq!(plan.nix.builder, "docker-image://local/nix:test");
}

#[test]
fn cache_id_follows_builder_namespace_and_platform() {
    let spec = spec::parse("Dockerfile", "", &BTreeMap::new()).unwrap();
    let a = build(&spec, &inputs()).unwrap().nix.cache.id;
    let mut other = inputs();
    other.builder.config = b"{}".to_vec();
    let b = build(&spec, &other).unwrap().nix.cache.id;
    assert_ne!(a, b, "a different builder must get a different store");
    let mut pinned = inputs();
    pinned.builder.digest = "sha256:abc".into();
    let c = build(&spec, &pinned).unwrap();
    assert!(c.nix.cache.id.contains("sha256-abc"));
    assert_eq!(c.nix.builder, "docker-image://local/nix:test@sha256:abc");
    let mut ns = inputs();
    ns.cache_ns = "proj".into();
    assert!(
        build(&spec, &ns)
            .unwrap()
            .nix
            .cache
            .id
            .starts_with("nix-frontend/store/proj/")
    );
    let mut arm = inputs();
    arm.platform = Platform::parse("linux/arm64").unwrap();
    assert!(
        build(&spec, &arm)
            .unwrap()
            .nix
            .cache
            .id
            .ends_with("/aarch64-linux")
    );
}

#[test]
fn zero_config_keeps_the_flake_in_the_context() {
    let spec = spec::parse("flake.nix", "# syntax=x\n", &BTreeMap::new()).unwrap();
    let mut i = inputs();
    i.spec_paths = vec!["flake.nix".into()];
    let plan = build(&spec, &i).unwrap();
    assert_eq!(plan.nix.context.exclude, ["target", ".git"]);
    assert_eq!(plan.nix.installable, "path:/src#default");
}

/// The nix step's `NIX_CONFIG=…` entry.
fn nix_config(plan: &Plan) -> &str {
    plan.nix
        .env
        .iter()
        .find(|e| e.starts_with("NIX_CONFIG="))
        .expect("a NIX_CONFIG")
}

#[test]
fn run_on_cross_builds_the_build_systems_package_for_the_target_image() {
    let text = "flake = \".#app-${TARGETARCH}\"\n[nix]\nrun-on = \"cross\"\n";
    let args = BTreeMap::from([("TARGETARCH".to_owned(), "arm64".to_owned())]);
    let spec = spec::parse("Dockerfile", text, &args).unwrap();
    let mut i = inputs();
    i.platform = Platform::parse("linux/arm64").unwrap();
    let plan = build(&spec, &i).unwrap();
    // Nix runs natively for its own system: nothing is emulated.
    assert_eq!(plan.system, "x86_64-linux");
    assert_eq!(plan.nix.platform.to_string(), "linux/amd64");
    assert_eq!(plan.nix.installable, "path:/src#app-arm64");
    let argv = plan.nix.script.argv();
    assert!(argv.contains(&"x86_64-linux".to_owned()), "--system");
    assert!(!argv.contains(&"aarch64-linux".to_owned()), "{argv:?}");
    let config = nix_config(&plan);
    assert!(!config.contains("extra-platforms"), "{config}");
    assert!(plan.nix.cache.id.ends_with("/x86_64-linux"));
    // The image is the target's.
    assert_eq!(plan.platform.to_string(), "linux/arm64");
}

#[test]
fn run_on_by_platform_cross_compiles_some_and_emulates_the_others() {
    let text = "flake = \".#app-${TARGETARCH}\"\n[nix]\nrun-on = { \"linux/aarch64\" = \"cross\", \"linux/s390x\" = \"build\" }\n";
    let plan_for = |platform: &str| {
        let platform = Platform::parse(platform).unwrap();
        let args = BTreeMap::from([("TARGETARCH".to_owned(), platform.architecture.clone())]);
        let spec = spec::parse("Dockerfile", text, &args).unwrap();
        let mut i = inputs();
        i.platform = platform;
        build(&spec, &i).unwrap()
    };
    // Named as cross: the build platform's own system and nix.
    let arm64 = plan_for("linux/arm64");
    assert_eq!(arm64.system, "x86_64-linux");
    assert_eq!(arm64.nix.platform.to_string(), "linux/amd64");
    assert_eq!(arm64.nix.installable, "path:/src#app-arm64");
    // Named as build: native nix for the target's system.
    let s390x = plan_for("linux/s390x");
    assert_eq!(s390x.system, "s390x-linux");
    assert_eq!(s390x.nix.platform.to_string(), "linux/amd64");
    // Not named: "target", today's default: the target's builder, emulated.
    let riscv = plan_for("linux/riscv64");
    assert_eq!(riscv.system, "riscv64-linux");
    assert_eq!(riscv.nix.platform.to_string(), "linux/riscv64");
    assert_eq!(riscv.nix.installable, "path:/src#app-riscv64");
    assert!(riscv.nix.cache.id.ends_with("/riscv64-linux"));
}

#[test]
fn run_on_table_default_applies_to_the_platforms_it_does_not_name() {
    let text = "[nix]\nrun-on = { default = \"build\", \"linux/arm64\" = \"target\" }\n";
    let spec = spec::parse("Dockerfile", text, &BTreeMap::new()).unwrap();
    let mut i = inputs();
    i.platform = Platform::parse("linux/riscv64").unwrap();
    assert_eq!(
        build(&spec, &i).unwrap().nix.platform.to_string(),
        "linux/amd64"
    );
    i.platform = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        build(&spec, &i).unwrap().nix.platform.to_string(),
        "linux/arm64"
    );
}

#[test]
fn run_on_build_runs_nix_natively_for_the_target_system() {
    let spec = spec::parse(
        "Dockerfile",
        "[nix]\nrun-on = \"build\"\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let mut i = inputs();
    i.platform = Platform::parse("linux/arm64").unwrap();
    let plan = build(&spec, &i).unwrap();
    assert_eq!(plan.system, "aarch64-linux");
    assert_eq!(plan.nix.platform.to_string(), "linux/amd64");
    assert!(
        plan.nix.script.argv().contains(&"aarch64-linux".to_owned()),
        "--system"
    );
    let config = nix_config(&plan);
    assert!(
        config.contains("\nextra-platforms = aarch64-linux"),
        "{config}"
    );
    // The store is the build platform's: nix runs as x86_64-linux.
    assert!(
        plan.nix.cache.id.ends_with("/x86_64-linux"),
        "{}",
        plan.nix.cache.id
    );
    // By default nix runs in the target's builder, under emulation.
    let spec = spec::parse("Dockerfile", "", &BTreeMap::new()).unwrap();
    let plan = build(&spec, &i).unwrap();
    assert_eq!(plan.nix.platform.to_string(), "linux/arm64");
    assert!(plan.nix.cache.id.ends_with("/aarch64-linux"));
    let config = nix_config(&plan);
    assert!(!config.contains("extra-platforms"), "{config}");
}

#[test]
fn a_deep_base_leaves_fewer_layers_for_the_store_and_says_so() {
    let spec = spec::parse(
        "Dockerfile",
        "[image]\nbase = \"deep\"\nentrypoint = [\"bin/app\"]\n",
        &BTreeMap::new(),
    )
    .unwrap();
    let mut i = inputs();
    let diff_ids: Vec<String> = (0..97).map(|n| format!("sha256:{n:064}")).collect();
    i.base = Some(ImageFacts {
        name: "deep".into(),
        origin: Origin::Registry,
        resolved: String::new(),
        digest: String::new(),
        config: serde_json::to_vec(
            &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}}),
        )
        .unwrap(),
    });
    let plan = build(&spec, &i).unwrap();
    let report = Report::parse(br#"{"version":2,"outputs":["/nix/store/eee-app"],
      "pathInfo":{"/nix/store/aaa-a":{"narSize":9000000,"references":[]},"/nix/store/bbb-b":{"narSize":9000000,"references":[]},
        "/nix/store/ccc-c":{"narSize":9000000,"references":[]},"/nix/store/ddd-d":{"narSize":9000000,"references":[]},
        "/nix/store/eee-app":{"narSize":9000000,"references":["/nix/store/aaa-a","/nix/store/bbb-b","/nix/store/ccc-c","/nix/store/ddd-d"]}},
      "meta":null,"bin":{"type":"directory","entries":{"app":{}}},"flake":null}"#).unwrap();
    let planned = image(&plan, &report, Some(&BaseUsers::default())).unwrap();
    assert_eq!(
        planned.store_layers().count(),
        3,
        "97 base layers leave 3 of 100"
    );
    assert_eq!(planned.warnings.len(), 1);
    assert!(
        planned.warnings[0]
            .starts_with("LayerLimit: the base's 97 layers and 0 others leave 3 of the 100 layers"),
        "{}",
        planned.warnings[0]
    );
    // A shallow base keeps one layer per path and says nothing.
    i.base = Some(ImageFacts {
        config: b"{}".to_vec(),
        ..i.base.clone().unwrap()
    });
    let plan = build(&spec, &i).unwrap();
    let planned = image(&plan, &report, Some(&BaseUsers::default())).unwrap();
    assert_eq!(planned.store_layers().count(), 5);
    assert!(planned.warnings.is_empty());
}
