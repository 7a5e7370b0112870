//! A readable listing of a Definition, for `nix-frontend llb` and golden tests.

use std::fmt::Write;

use prost::Message;

use super::graph::digests;
use crate::proto::llb as pb;

/// One block per op: short digest, kind, details, progress name.
pub fn dump(def: &pb::Definition) -> String {
    let ds = digests(def);
    let short = |d: &str| {
        d.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let mut s = String::new();
    for (bytes, digest) in def.def.iter().zip(&ds) {
        let op = match pb::Op::decode(bytes.as_slice()) {
            Ok(op) => op,
            Err(e) => {
                let _ = writeln!(s, "{} <undecodable: {e}>", short(digest));
                continue;
            }
        };
        let meta = def.metadata.get(digest);
        let mut name = meta
            .and_then(|m| m.description.get("llb.customname"))
            .map(|n| format!("  \"{n}\""))
            .unwrap_or_default();
        if let Some(p) = &op.platform {
            let variant = if p.variant.is_empty() {
                String::new()
            } else {
                format!("/{}", p.variant)
            };
            name.push_str(&format!("  [{}/{}{variant}]", p.os, p.architecture));
        }
        if meta.is_some_and(|m| m.ignore_cache) {
            name.push_str("  (ignores the cache)");
        }
        let inputs: Vec<String> = op
            .inputs
            .iter()
            .map(|i| format!("{}:{}", short(&i.digest), i.index))
            .collect();
        let _ = write!(s, "{}", short(digest));
        match &op.op {
            None => {
                let _ = writeln!(s, " result <- {}", inputs.join(" "));
            }
            Some(pb::op::Kind::Source(src)) => {
                let _ = writeln!(s, " source {}{name}", src.identifier);
                for (k, v) in &src.attrs {
                    let _ = writeln!(s, "    {k}={v}");
                }
            }
            Some(pb::op::Kind::Exec(e)) => {
                let _ = writeln!(s, " exec{name}");
                if let Some(m) = &e.meta {
                    let _ = writeln!(s, "    args: {:?}", m.args);
                    for env in &m.env {
                        let _ = writeln!(s, "    env: {env:?}");
                    }
                    for h in &m.extra_hosts {
                        let _ = writeln!(s, "    host: {} {}", h.host, h.ip);
                    }
                }
                let _ = writeln!(
                    s,
                    "    network: {:?}",
                    pb::NetMode::try_from(e.network).unwrap_or(pb::NetMode::Unset)
                );
                for m in &e.mounts {
                    let from = usize::try_from(m.input)
                        .ok()
                        .and_then(|i| inputs.get(i))
                        .map_or("scratch", String::as_str);
                    let kind = if m.mount_type == pb::MountType::Cache as i32 {
                        let c = m.cache_opt.clone().unwrap_or_default();
                        format!("cache id={} sharing={}", c.id, c.sharing)
                    } else if m.mount_type == pb::MountType::Secret as i32 {
                        format!("secret id={}", m.secret_opt.clone().unwrap_or_default().id)
                    } else if m.mount_type == pb::MountType::Ssh as i32 {
                        format!("ssh id={}", m.ssh_opt.clone().unwrap_or_default().id)
                    } else if m.readonly {
                        "bind ro".to_owned()
                    } else {
                        "bind rw".to_owned()
                    };
                    let sel = if m.selector.is_empty() {
                        String::new()
                    } else {
                        format!(" selector={}", m.selector)
                    };
                    let out = if m.output >= 0 {
                        format!(" -> output {}", m.output)
                    } else {
                        String::new()
                    };
                    let content = if m.content_cache == pb::MountContentCache::Off as i32 {
                        " content-key=off"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        "    mount {} {kind} from {from}{sel}{content}{out}",
                        m.dest
                    );
                }
            }
            Some(pb::op::Kind::File(f)) => {
                let _ = writeln!(s, " file <- [{}]{name}", inputs.join(" "));
                for a in &f.actions {
                    let what = match &a.action {
                        Some(pb::file_action::Action::Copy(c)) => {
                            let mut extra = String::new();
                            if c.attempt_unpack_docker_compatibility {
                                extra.push_str(", unpack");
                            }
                            if !c.include_patterns.is_empty() {
                                let _ = write!(extra, ", include {:?}", c.include_patterns);
                            }
                            if !c.exclude_patterns.is_empty() {
                                let _ = write!(extra, ", exclude {:?}", c.exclude_patterns);
                            }
                            format!(
                                "copy {} -> {} (from {}, time {}{extra})",
                                c.src, c.dest, a.secondary_input, c.timestamp
                            )
                        }
                        Some(pb::file_action::Action::Rm(r)) => format!("rm {}", r.path),
                        Some(pb::file_action::Action::Mkdir(d)) => {
                            format!("mkdir {} mode {:o} time {}", d.path, d.mode, d.timestamp)
                        }
                        Some(pb::file_action::Action::Mkfile(m)) => {
                            format!(
                                "mkfile {} mode {:o} {} bytes time {}",
                                m.path,
                                m.mode,
                                m.data.len(),
                                m.timestamp
                            )
                        }
                        None => "<empty>".into(),
                    };
                    let _ = writeln!(s, "    on {} {what} -> output {}", a.input, a.output);
                }
            }
            Some(pb::op::Kind::Merge(_)) => {
                let _ = writeln!(s, " merge [{}]{name}", inputs.join(" "));
            }
        }
    }
    if let Some(src) = &def.source {
        for (digest, locs) in &src.locations {
            for l in &locs.locations {
                for r in &l.ranges {
                    let line = |p: &Option<pb::Position>| p.map_or(0, |p| p.line);
                    let file = src
                        .infos
                        .get(l.source_index as usize)
                        .map_or("?", |i| i.filename.as_str());
                    let _ = writeln!(
                        s,
                        "source map: {} -> {file}:{}-{}",
                        short(digest),
                        line(&r.start),
                        line(&r.end)
                    );
                }
            }
        }
    }
    s
}
