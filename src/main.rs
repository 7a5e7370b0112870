//! The `nix-frontend` binary. Without arguments it is the BuildKit frontend
//! (BuildKit starts it that way); with a command it is a debug tool that
//! needs no daemon.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use prost::Message;

use nix_frontend::debug;

const USAGE: &str = "usage:
  nix-frontend                      run as a BuildKit frontend (stdin/stdout gRPC)
  nix-frontend spec FILE            print the parsed spec
  nix-frontend plan FILE            print the plan (image facts are stand-ins)
  nix-frontend llb FILE [--raw OUT] print both LLB definitions; --raw writes the
                                    nix step's Definition (protobuf) to OUT
options: --target NAME  --platform OS/ARCH  --epoch SECONDS  --mergeop
         --build-arg NAME=VALUE";

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
            eprintln!("nix-frontend: {}", e.message());
            std::process::exit(1)
        }
    }
}

fn cli() -> anyhow::Result<ExitCode> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut command: Option<String> = None;
    let mut file: Option<String> = None;
    let mut raw: Option<String> = None;
    let mut req = debug::Request::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("target") => req.target = Some(parser.value()?.string()?),
            Long("platform") => req.platform = Some(parser.value()?.string()?),
            Long("epoch") => req.epoch = parser.value()?.parse()?,
            Long("mergeop") => req.mergeop = true,
            Long("build-arg") => {
                let v = parser.value()?.string()?;
                let (k, v) = v.split_once('=').unwrap_or((&v, ""));
                req.build_args.insert(k.to_owned(), v.to_owned());
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
    let (Some(command), Some(file)) = (command, file) else {
        bail!("{USAGE}");
    };
    req.text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
    req.filename = std::path::Path::new(&file)
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let out = match debug::run(&req) {
        Ok(out) => out,
        Err(d) => {
            eprintln!("{}", d.render(&req.filename, &req.text));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    match command.as_str() {
        "spec" => writeln!(stdout, "{}", serde_json::to_string_pretty(&out.spec)?)?,
        "plan" => writeln!(stdout, "{}", out.plan_text())?,
        "llb" => {
            write!(stdout, "{}", out.llb_text())?;
            if let Some(path) = raw {
                std::fs::write(&path, out.nix.encode_to_vec())
                    .with_context(|| format!("cannot write {path}"))?;
            }
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}
