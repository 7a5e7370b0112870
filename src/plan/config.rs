//! The image config of the result: the base's, with the spec's settings on
//! top, merged as a Dockerfile merges its instructions over `FROM`.

use std::collections::BTreeMap;

use serde_json::json;

use super::essentials::Essential;
use super::users::config_value;
use super::{ImageStep, Plan, PlanError, Report};
use crate::oci::{Healthcheck, History, ImageConfig, get_env, rfc3339, set_env};

/// The flake the image was built from, as the spec names it.
pub const FLAKE_LABEL: &str = "org.nix-frontend.flake";
/// The flake's locked inputs: `NAME=REV` (or the NAR hash), comma-separated.
pub const FLAKE_INPUTS_LABEL: &str = "org.nix-frontend.flake.inputs";

/// Used when the base has no PATH; Docker's own default.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The final config, with one history entry per layer in layer order:
/// `run`, then the image's own steps (`steps`, `image.copy` among them).
pub fn assemble(
    plan: &Plan,
    built: &Report,
    steps: &[ImageStep],
) -> Result<ImageConfig, PlanError> {
    let mut cfg = plan.image.base_config.clone();
    let spec = &plan.image.spec;
    let out = built.main_output();
    let created = rfc3339(plan.epoch);

    cfg.architecture = plan.platform.architecture.clone();
    cfg.os = plan.platform.os.clone();
    cfg.variant = Some(plan.platform.variant.clone()).filter(|v| !v.is_empty());
    cfg.created = Some(created.clone());
    let entry = |created_by: String| History {
        created: Some(created.clone()),
        created_by: Some(created_by),
        comment: Some("nix-frontend".into()),
        ..Default::default()
    };
    // One entry per layer, in their order, so the exporter invents none
    // with its time.
    for step in &plan.image.run {
        cfg.history
            .push(entry(format!("RUN /bin/sh -c {}", step.command.value)));
    }
    for step in steps {
        cfg.history.push(entry(step.created_by()));
    }
    cfg.rootfs.kind = "layers".into();

    check_entrypoint(plan, built)?;
    let c = &mut cfg.config;
    let argv = run(plan, built).ok_or_else(|| nothing_to_run(built))?;
    if let Some(program) = argv.first() {
        check_arch(plan, built, program)?;
    }
    c.entrypoint = argv.entrypoint;
    c.cmd = argv.cmd;

    // The spec's env first, then the package's bin in front of PATH, so a
    // PATH the spec sets still finds the package's programs.
    let mut env = c.env.take().unwrap_or_default();
    for (k, v) in &spec.env {
        set_env(&mut env, k, &v.value);
    }
    let path = get_env(&env, "PATH").unwrap_or(DEFAULT_PATH).to_owned();
    set_env(&mut env, "PATH", &format!("{out}/bin:{path}"));
    // Where the essentials put the CA bundle and zone files, unless set.
    let essentials = steps.iter().filter_map(|s| match s {
        ImageStep::Essential(e) => Some(e),
        _ => None,
    });
    for (k, v) in essentials.filter_map(Essential::env) {
        if get_env(&env, k).is_none() {
            set_env(&mut env, k, v);
        }
    }
    c.env = Some(env);
    if let Some(h) = &spec.healthcheck {
        let mut test = h.value.test.clone();
        // The program form resolves like `entrypoint`: bin/X is the package's.
        if test.first().is_some_and(|t| t == "CMD") && test.len() > 1 {
            let argv = resolve_argv(&test[1..], out);
            test.truncate(1);
            test.extend(argv);
        }
        // As a Dockerfile HEALTHCHECK: the base's is replaced, not merged.
        c.healthcheck = Some(Healthcheck {
            test,
            interval: h.value.interval,
            timeout: h.value.timeout,
            start_period: h.value.start_period,
            start_interval: h.value.start_interval,
            retries: h.value.retries,
        });
    }
    if let Some(s) = &spec.stop_signal {
        c.stop_signal = Some(s.value.clone());
    }
    if !spec.volumes.is_empty() {
        let volumes = c.volumes.get_or_insert_with(BTreeMap::new);
        for v in &spec.volumes {
            volumes.insert(v.value.clone(), json!({}));
        }
    }
    if let Some(s) = &spec.shell {
        c.shell = Some(s.value.clone());
    }

    if let Some(w) = &spec.workdir {
        c.working_dir = Some(w.value.clone());
    }
    if let Some(u) = &spec.user {
        c.user = Some(config_value(&u.value, plan.image.base.is_none()));
    }
    let labels = c.labels.get_or_insert_with(BTreeMap::new);
    // What the image was built from, below the spec's labels and --label.
    labels.insert(FLAKE_LABEL.into(), plan.nix.flake.value.clone());
    if !built.flake.inputs.is_empty() {
        let locked: Vec<String> = built
            .flake
            .inputs
            .iter()
            .map(|i| {
                let pin = i
                    .rev
                    .as_deref()
                    .or(i.nar_hash.as_deref())
                    // A relative `path:` input is locked by the flake itself.
                    .unwrap_or(&i.location);
                format!("{}={pin}", i.name)
            })
            .collect();
        labels.insert(FLAKE_INPUTS_LABEL.into(), locked.join(","));
    }
    if let Some(s) = &plan.image.vcs_source {
        labels.insert("org.opencontainers.image.source".into(), s.clone());
    }
    if let Some(r) = &plan.image.vcs_revision {
        labels.insert("org.opencontainers.image.revision".into(), r.clone());
    }
    for (k, v) in &spec.labels {
        labels.insert(k.clone(), v.value.clone());
    }
    for (k, v) in &plan.image.labels {
        labels.insert(k.clone(), v.clone());
    }
    if !spec.expose.is_empty() {
        let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
        for p in &spec.expose {
            let key = if p.value.contains('/') {
                p.value.clone()
            } else {
                format!("{}/tcp", p.value)
            };
            ports.insert(key, json!({}));
        }
    }
    Ok(cfg)
}

/// `bin/X` names a program of the package: one it lacks would give an image
/// that cannot start.
fn check_entrypoint(plan: &Plan, built: &Report) -> Result<(), PlanError> {
    let Some(e) = &plan.image.spec.entrypoint else {
        return Ok(());
    };
    let Some(prog) = e.value.first().and_then(|p| p.strip_prefix("bin/")) else {
        return Ok(());
    };
    if built.programs.iter().any(|p| p == prog) {
        return Ok(());
    }
    let have = if built.programs.is_empty() {
        "it has no bin/".to_owned()
    } else {
        format!("it has: {}", built.programs.join(", "))
    };
    Err(PlanError::Image {
        key: "image.entrypoint",
        message: format!("bin/{prog} is not a program of {}", built.main_output()),
        hint: format!("{have}; or give an absolute path for a program of the base"),
        span: e.span,
    })
}

/// An ELF file's class (1: 32-bit, 2: 64-bit) and machine, from its first
/// 20 bytes in hex; `None` for anything else (a script, a short file).
fn elf_of(hex: &str) -> Option<(u8, u16)> {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    if bytes.len() < 20 || bytes[..4] != *b"\x7fELF" {
        return None;
    }
    let m = [bytes[18], bytes[19]];
    let machine = match bytes[5] {
        2 => u16::from_be_bytes(m),
        _ => u16::from_le_bytes(m),
    };
    Some((bytes[4], machine))
}

/// The ELF class and machine of a platform's programs, and its name for
/// them; `None` for a platform we do not check.
fn elf_for(architecture: &str) -> Option<((u8, u16), &'static str)> {
    Some(match architecture {
        "amd64" => ((2, 62), "x86-64"),
        "arm64" => ((2, 183), "AArch64"),
        "arm" => ((1, 40), "ARM"),
        "386" => ((1, 3), "x86"),
        "riscv64" => ((2, 243), "RISC-V 64"),
        "ppc64le" => ((2, 21), "PowerPC 64"),
        "s390x" => ((2, 22), "s390x"),
        _ => return None,
    })
}

/// The name of the machine an ELF header names, for messages.
fn machine_name(elf: (u8, u16)) -> String {
    [
        "amd64", "arm64", "arm", "386", "riscv64", "ppc64le", "s390x",
    ]
    .iter()
    .find_map(|a| {
        elf_for(a)
            .filter(|(e, _)| *e == elf)
            .map(|(_, n)| n.to_owned())
    })
    .unwrap_or_else(|| format!("ELF machine {} ({}-bit)", elf.1, 32 * u32::from(elf.0)))
}

/// What the image runs.
struct Run {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
}

impl Run {
    /// The program that runs first: the entrypoint's, else the cmd's.
    fn first(&self) -> Option<&String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .find_map(|argv| argv.first())
    }
}

/// The image's entrypoint and cmd over the base's. The package's entrypoint
/// (the spec's, else meta.mainProgram, else the one program in bin/)
/// replaces the base's and, as a Dockerfile ENTRYPOINT does, drops its cmd;
/// the spec's cmd replaces the cmd. `None`: nothing to run.
fn run(plan: &Plan, built: &Report) -> Option<Run> {
    let spec = &plan.image.spec;
    let out = built.main_output();
    let base = &plan.image.base_config.config;
    let (mut entrypoint, mut cmd) = (base.entrypoint.clone(), base.cmd.clone());
    let ours = match (
        &spec.entrypoint,
        &built.main_program,
        built.programs.as_slice(),
    ) {
        (Some(e), _, _) => Some(resolve_argv(&e.value, out)),
        (None, Some(m), _) => Some(vec![format!("{out}/bin/{m}")]),
        (None, None, [only]) => Some(vec![format!("{out}/bin/{only}")]),
        _ => None,
    };
    match ours {
        Some(e) => {
            entrypoint = Some(e);
            cmd = None;
        }
        None if entrypoint.as_ref().is_some_and(|e| !e.is_empty()) || spec.cmd.is_some() => {}
        None => return None,
    }
    if let Some(c) = &spec.cmd {
        cmd = Some(resolve_argv(&c.value, out));
    }
    Some(Run { entrypoint, cmd })
}

/// The program the image runs first (the entrypoint's, else the cmd's),
/// when it is one of the package's `bin/`, is a program of the image's
/// platform (a script: its interpreter). `assemble` makes this check, and
/// `--call check`, which makes no config, makes it alone.
pub fn arch_check(plan: &Plan, built: &Report) -> Result<(), PlanError> {
    match run(plan, built).as_ref().and_then(Run::first) {
        Some(program) => check_arch(plan, built, program),
        None => Ok(()),
    }
}

/// `program`, when it is one of the package's `bin/`, is a program of the
/// image's platform (a script: its interpreter).
fn check_arch(plan: &Plan, built: &Report, program: &str) -> Result<(), PlanError> {
    let Some(name) = program
        .strip_prefix(built.main_output())
        .and_then(|p| p.strip_prefix("/bin/"))
    else {
        return Ok(());
    };
    let (Some(head), Some((want, want_name))) =
        (built.heads.get(name), elf_for(&plan.platform.architecture))
    else {
        return Ok(());
    };
    let (what, elf) = match elf_of(&head.head) {
        Some(elf) => (format!("bin/{name}"), elf),
        None => match elf_of(&head.interpreter) {
            Some(elf) => (format!("the interpreter of bin/{name}"), elf),
            None => return Ok(()),
        },
    };
    if elf == want {
        return Ok(());
    }
    Err(PlanError::Image {
        key: "flake",
        message: format!(
            "{what} is built for {}, not for {} ({want_name})",
            machine_name(elf),
            plan.platform
        ),
        hint: format!(
            "build the package for {}: pick the installable per platform, e.g. flake = \".#app-${{TARGETARCH}}\", or drop nix.run-on",
            plan.platform
        ),
        span: plan.nix.flake.span,
    })
}

fn nothing_to_run(built: &Report) -> PlanError {
    let out = built.main_output();
    let (message, hint) = if built.programs.is_empty() {
        (
            format!("nothing to run: {out} has no meta.mainProgram and no bin/"),
            "set [image] entrypoint = [\"…\"] or add meta.mainProgram to the package".to_owned(),
        )
    } else {
        (
            format!("which program to run? {out} has no meta.mainProgram and several in bin/"),
            format!(
                "set [image] entrypoint to one of: {}",
                built
                    .programs
                    .iter()
                    .map(|p| format!("[\"bin/{p}\"]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    PlanError::Image {
        key: "image.entrypoint",
        message,
        hint,
        span: None,
    }
}

/// Relative program paths are inside the built package.
fn resolve_argv(argv: &[String], out: &str) -> Vec<String> {
    let mut v = argv.to_vec();
    if let Some(first) = v.first_mut()
        && !first.starts_with('/')
        && first.contains('/')
    {
        *first = format!("{out}/{}", first.trim_start_matches("./"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_machine() {
        // x86-64 and AArch64 ELF64 little-endian headers (first 20 bytes).
        let x86 = "7f454c4602010100000000000000000003003e00";
        let arm = "7f454c460201010000000000000000000300b700";
        assert_eq!(elf_of(x86), Some((2, 62)));
        assert_eq!(elf_of(arm), Some((2, 183)));
        assert_eq!(elf_of("2321"), None, "a script");
        assert_eq!(elf_of("7f454c46zz"), None);
        assert_eq!(machine_name((2, 62)), "x86-64");
        assert_eq!(machine_name((1, 8)), "ELF machine 8 (32-bit)");
        assert_eq!(elf_for("arm64").map(|e| e.0), Some((2, 183)));
    }

    #[test]
    fn relative_programs_resolve_inside_the_package() {
        let v = resolve_argv(&["bin/hello".into(), "x".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["/nix/store/abc-hello/bin/hello", "x"]);
        let v = resolve_argv(&["/bin/sh".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["/bin/sh"]);
        // A bare word is a command looked up on PATH, as in a Dockerfile.
        let v = resolve_argv(&["hello".into()], "/nix/store/abc-hello");
        assert_eq!(v, ["hello"]);
    }
}
