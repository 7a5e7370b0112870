//! The `nix-frontend` binary. Without arguments it is the BuildKit frontend
//! (BuildKit starts it that way); with a command it is a debug tool that
//! needs no daemon.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use prost::Message;

use nix_frontend::debug;
use nix_frontend::engine::fake::Kind;

const USAGE: &str = "usage:
  nix-frontend                      run as a BuildKit frontend (stdin/stdout gRPC)
  nix-frontend spec FILE            print the parsed spec
  nix-frontend plan FILE            print the plan (image facts are stand-ins)
  nix-frontend llb FILE [--raw OUT] print the nix step's and the image's LLB; --raw
                                    writes the nix step's Definition (protobuf) to OUT
options: --target NAME  --platform OS/ARCH  --epoch SECONDS  --mergeop  --no-cache
         --build-arg NAME=VALUE
  nix-frontend sbom --report FILE [--eval DIR] --out FILE --platform OS/ARCH
                    --supplier TEXT --epoch SECONDS
                                    write the SPDX document of a nix step's report
                                    (what a build with --sbom runs in BuildKit)";

fn main() -> ExitCode {
    if std::env::args_os().len() == 1 {
        return frontend();
    }
    match cli() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nix-frontend: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn frontend() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nix-frontend: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(nix_frontend::bridge::run());
    // tokio's stdin reader thread cannot be cancelled; leave without waiting
    // for it once BuildKit has our result.
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("nix-frontend: {}", e.message);
            std::process::exit(1)
        }
    }
}

/// `nix-frontend sbom …`: the document of a nix step's report, written to
/// `--out` (BuildKit runs it in the frontend's image, which has no shell).
fn sbom(mut parser: lexopt::Parser) -> anyhow::Result<ExitCode> {
    use lexopt::prelude::*;
    let (mut report, mut eval, mut out, mut platform, mut supplier, mut epoch) =
        (None, None, None, None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("report") => report = Some(parser.value()?.string()?),
            Long("eval") => eval = Some(parser.value()?.string()?),
            Long("out") => out = Some(parser.value()?.string()?),
            Long("platform") => platform = Some(parser.value()?.string()?),
            Long("supplier") => supplier = Some(parser.value()?.string()?),
            Long("epoch") => epoch = Some(parser.value()?.parse::<i64>()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let (Some(report), Some(out), Some(platform), Some(supplier), Some(epoch)) =
        (report, out, platform, supplier, epoch)
    else {
        bail!("{USAGE}");
    };
    let read = |p: &str| std::fs::read(p).with_context(|| format!("cannot read {p}"));
    let report = read(&report)?;
    let eval = match &eval {
        Some(dir) => Some((
            read(&format!("{dir}/{}", nix_frontend::plan::GRAPH_FILE))?,
            read(&format!("{dir}/{}", nix_frontend::plan::FACTS_FILE))?,
        )),
        None => None,
    };
    let platform = nix_frontend::plan::Platform::parse(&platform)
        .map_err(|e| anyhow::anyhow!("--platform {platform}: {e}"))?;
    let doc = nix_frontend::sbom::from_report(
        &report,
        eval.as_ref().map(|(g, f)| (g.as_slice(), f.as_slice())),
        &platform,
        &supplier,
        epoch,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&out, doc).with_context(|| format!("cannot write {out}"))?;
    Ok(ExitCode::SUCCESS)
}

fn cli() -> anyhow::Result<ExitCode> {
    use lexopt::prelude::*;
    if std::env::args().nth(1).as_deref() == Some("sbom") {
        let mut parser = lexopt::Parser::from_env();
        parser.next()?;
        return sbom(parser);
    }
    let mut parser = lexopt::Parser::from_env();
    let mut command: Option<String> = None;
    let mut file: Option<String> = None;
    let mut raw: Option<String> = None;
    let mut req = debug::Request::default();
    let mut opt = |k: &str, v: String| req.options.insert(k.to_owned(), v);
    let mut mergeop = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("target") => _ = opt("target", parser.value()?.string()?),
            Long("platform") => _ = opt("platform", parser.value()?.string()?),
            // The same option a build gets, so the same bounds apply.
            Long("epoch") => _ = opt("build-arg:SOURCE_DATE_EPOCH", parser.value()?.string()?),
            Long("no-cache") => _ = opt("no-cache", String::new()),
            Long("mergeop") => mergeop = true,
            Long("build-arg") => {
                let v = parser.value()?.string()?;
                let (k, v) = v.split_once('=').unwrap_or((&v, ""));
                opt(&format!("build-arg:{k}"), v.to_owned());
            }
            Long("raw") => raw = Some(parser.value()?.string()?),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) if command.is_none() => command = Some(v.string()?),
            Value(v) if file.is_none() => file = Some(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    req.mergeop = mergeop;
    let (Some(command), Some(file)) = (command, file) else {
        bail!("{USAGE}");
    };
    req.text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
    req.filename = std::path::Path::new(&file)
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let mut stdout = std::io::stdout().lock();
    if command == "spec" {
        let args = req
            .options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("build-arg:")?.to_owned(), v.clone())))
            .collect();
        let target = req.options.get("target").map(String::as_str);
        return match nix_frontend::spec::parse_for_target(&req.filename, &req.text, &args, target) {
            Ok(spec) => {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&spec)?)?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let d = nix_frontend::diagnostic::Diagnostic::from(&e);
                eprintln!("{}", d.render(&req.filename, &req.text));
                Ok(ExitCode::FAILURE)
            }
        };
    }
    let out = match debug::run(&req) {
        Ok(out) => out,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match command.as_str() {
        "plan" => writeln!(stdout, "{}", out.plan_text())?,
        "llb" => {
            write!(stdout, "{}", out.llb_text())?;
            if let (Some(path), Some(nix)) = (raw, out.last(Kind::Nix)) {
                std::fs::write(&path, nix.encode_to_vec())
                    .with_context(|| format!("cannot write {path}"))?;
            }
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}
