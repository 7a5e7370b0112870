//! The op families we emit: sources, exec, file and merge. Each constructor
//! follows the Go client's conventions where BuildKit relies on them
//! (mounts sorted by destination, output numbering, `-1` for "none").

use std::collections::BTreeMap;

use super::graph::{Graph, Lines, Output};
use crate::proto::llb as pb;

pub fn platform(p: &crate::plan::Platform) -> pb::Platform {
    pb::Platform {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        ..Default::default()
    }
}

fn constraints() -> Option<pb::WorkerConstraints> {
    Some(pb::WorkerConstraints::default())
}

/// An OCI layout the client serves over its session (buildx's
/// `--build-context NAME=oci-layout://PATH`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciStore {
    pub session: String,
    /// The store's id, as the client named it.
    pub store: String,
}

impl Graph {
    /// `docker-image://…` for one platform; `oci-layout://…` with the
    /// client's store it is in.
    pub fn image(
        &mut self,
        identifier: &str,
        store: Option<&OciStore>,
        p: &pb::Platform,
        name: &str,
    ) -> Output {
        let attrs = store.map_or_else(BTreeMap::new, |s| {
            BTreeMap::from([
                ("oci.session".to_owned(), s.session.clone()),
                ("oci.store".to_owned(), s.store.clone()),
            ])
        });
        let op = pb::Op {
            op: Some(pb::op::Kind::Source(pb::SourceOp {
                identifier: identifier.to_owned(),
                attrs,
            })),
            platform: Some(p.clone()),
            constraints: constraints(),
            ..Default::default()
        };
        let digest = self.add(&op, name, None);
        Output { digest, index: 0 }
    }

    /// `local://NAME`: files from the client, filtered on the client side.
    pub fn local(&mut self, local: &Local, name: &str) -> Output {
        let mut attrs = BTreeMap::new();
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        if !local.session.is_empty() {
            attrs.insert("local.session".to_owned(), local.session.clone());
        }
        if !local.include.is_empty() {
            attrs.insert("local.includepattern".to_owned(), json(&local.include));
        }
        if !local.exclude.is_empty() {
            attrs.insert("local.excludepatterns".to_owned(), json(&local.exclude));
        }
        if !local.follow.is_empty() {
            attrs.insert("local.followpaths".to_owned(), json(&local.follow));
        }
        attrs.insert("local.sharedkeyhint".to_owned(), local.shared_key.clone());
        self.source(&format!("local://{}", local.name), attrs, name)
    }

    /// A source op with no platform: a local, `git://…`, `https://…`.
    pub fn source(
        &mut self,
        identifier: &str,
        attrs: BTreeMap<String, String>,
        name: &str,
    ) -> Output {
        let op = pb::Op {
            op: Some(pb::op::Kind::Source(pb::SourceOp {
                identifier: identifier.to_owned(),
                attrs,
            })),
            ..Default::default()
        };
        let digest = self.add(&op, name, None);
        Output { digest, index: 0 }
    }

    /// Runs a process; returns the outputs of its writable mounts, in the
    /// order the `Scratch` mounts were given (the root's first if kept).
    pub fn exec(&mut self, e: &Exec, name: &str, lines: Option<Lines>) -> Vec<Output> {
        let mut inputs: Vec<Output> = Vec::new();
        let mut input_of = |o: &Output| -> i64 {
            let i = inputs.iter().position(|x| x == o).unwrap_or_else(|| {
                inputs.push(o.clone());
                inputs.len() - 1
            });
            i as i64
        };
        let mut mounts = vec![pb::Mount {
            input: input_of(&e.root),
            dest: "/".into(),
            output: if e.root_output { 0 } else { -1 },
            // BuildKit mounts a root without an output read-only anyway.
            readonly: !e.root_output,
            ..Default::default()
        }];
        for m in &e.mounts {
            mounts.push(match m {
                Mount::Bind {
                    dest,
                    from,
                    selector,
                } => pb::Mount {
                    input: input_of(from),
                    selector: selector.clone(),
                    dest: dest.clone(),
                    output: -1,
                    readonly: true,
                    ..Default::default()
                },
                Mount::Seed {
                    dest,
                    from,
                    selector,
                    content_key,
                } => pb::Mount {
                    input: input_of(from),
                    selector: selector.clone(),
                    dest: dest.clone(),
                    output: -1,
                    readonly: true,
                    content_cache: if *content_key {
                        pb::MountContentCache::Default
                    } else {
                        pb::MountContentCache::Off
                    } as i32,
                    ..Default::default()
                },
                Mount::Cache { dest, id } => pb::Mount {
                    input: -1,
                    dest: dest.clone(),
                    output: -1,
                    mount_type: pb::MountType::Cache as i32,
                    cache_opt: Some(pb::CacheOpt {
                        id: id.clone(),
                        sharing: pb::CacheSharing::Locked as i32,
                    }),
                    ..Default::default()
                },
                Mount::Scratch { dest } => pb::Mount {
                    input: -1,
                    dest: dest.clone(),
                    output: 0, // numbered below
                    ..Default::default()
                },
                Mount::Discard { dest } => pb::Mount {
                    input: -1,
                    dest: dest.clone(),
                    output: -1,
                    ..Default::default()
                },
                Mount::Secret { dest, id } => pb::Mount {
                    input: -1,
                    dest: dest.clone(),
                    output: -1,
                    mount_type: pb::MountType::Secret as i32,
                    secret_opt: Some(pb::SecretOpt {
                        id: id.clone(),
                        mode: 0o400,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Mount::Ssh { dest } => pb::Mount {
                    input: -1,
                    dest: dest.clone(),
                    output: -1,
                    mount_type: pb::MountType::Ssh as i32,
                    ssh_opt: Some(pb::SecretOpt {
                        id: "default".into(),
                        mode: 0o600,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            });
        }
        mounts.sort_by(|a, b| a.dest.cmp(&b.dest));
        // Outputs are numbered in mount order, as the Go client does.
        let mut next = 0;
        let mut outputs_by_dest = BTreeMap::new();
        for m in &mut mounts {
            if m.output >= 0 {
                m.output = next;
                outputs_by_dest.insert(m.dest.clone(), next);
                next += 1;
            }
        }
        let op = pb::Op {
            inputs: inputs
                .iter()
                .map(|o| pb::Input {
                    digest: o.digest.clone(),
                    index: o.index,
                })
                .collect(),
            op: Some(pb::op::Kind::Exec(pb::ExecOp {
                meta: Some(pb::Meta {
                    args: e.args.clone(),
                    env: e.env.clone(),
                    cwd: e.cwd.clone(),
                    user: e.user.clone(),
                    extra_hosts: e
                        .hosts
                        .iter()
                        .map(|(host, ip)| pb::HostIp {
                            host: host.clone(),
                            ip: ip.clone(),
                        })
                        .collect(),
                }),
                mounts,
                network: e.network as i32,
                security: pb::SecurityMode::Sandbox as i32,
            })),
            platform: Some(e.platform.clone()),
            constraints: constraints(),
        };
        let digest = self.add(&op, name, lines);
        let mut wanted: Vec<&str> = Vec::new();
        if e.root_output {
            wanted.push("/");
        }
        wanted.extend(e.mounts.iter().filter_map(|m| match m {
            Mount::Scratch { dest } => Some(dest.as_str()),
            _ => None,
        }));
        wanted
            .into_iter()
            .map(|d| Output {
                digest: digest.clone(),
                index: outputs_by_dest[d],
            })
            .collect()
    }

    /// A chain of file actions on `base` (`None` = scratch).
    pub fn file(
        &mut self,
        base: Option<&Output>,
        actions: &[FileAction],
        name: &str,
        lines: Option<Lines>,
        platform: &pb::Platform,
    ) -> Output {
        let mut inputs: Vec<Output> = base.into_iter().cloned().collect();
        for a in actions {
            if let FileAction::Copy { from, .. }
            | FileAction::Select { from, .. }
            | FileAction::Unpack { from, .. } = a
                && !inputs.contains(from)
            {
                inputs.push(from.clone());
            }
        }
        let n = inputs.len() as i64;
        let index_of = |o: &Output| inputs.iter().position(|x| x == o).map_or(-1, |i| i as i64);
        let last = actions.len().saturating_sub(1);
        let pb_actions = actions
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let input = if k == 0 {
                    base.map_or(-1, &index_of)
                } else {
                    n + k as i64 - 1
                };
                let (secondary_input, action) = a.to_pb(input, &index_of);
                pb::FileAction {
                    input,
                    secondary_input,
                    output: if k == last { 0 } else { -1 },
                    action: Some(action),
                }
            })
            .collect();
        let op = pb::Op {
            inputs: inputs
                .iter()
                .map(|o| pb::Input {
                    digest: o.digest.clone(),
                    index: o.index,
                })
                .collect(),
            op: Some(pb::op::Kind::File(pb::FileOp {
                actions: pb_actions,
            })),
            // Context copies are the same for every platform: none given.
            platform: (!platform.os.is_empty()).then(|| platform.clone()),
            constraints: constraints(),
        };
        let digest = self.add(&op, name, lines);
        Output { digest, index: 0 }
    }

    /// Stacks `layers` as separate layers (BuildKit v0.10+, cap `mergeop`).
    pub fn merge(&mut self, layers: &[Output], name: &str, platform: &pb::Platform) -> Output {
        let op = pb::Op {
            inputs: layers
                .iter()
                .map(|o| pb::Input {
                    digest: o.digest.clone(),
                    index: o.index,
                })
                .collect(),
            op: Some(pb::op::Kind::Merge(pb::MergeOp {
                inputs: (0..layers.len() as i64)
                    .map(|input| pb::MergeInput { input })
                    .collect(),
            })),
            platform: Some(platform.clone()),
            constraints: constraints(),
        };
        let digest = self.add(&op, name, None);
        Output { digest, index: 0 }
    }
}

/// A `local://` source.
pub struct Local {
    pub name: String,
    pub session: String,
    pub shared_key: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub follow: Vec<String>,
}

pub struct Exec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub root: Output,
    /// Keep the root filesystem as an output (else it is mounted read-only).
    pub root_output: bool,
    pub mounts: Vec<Mount>,
    pub network: pb::NetMode,
    /// `(host, ip)` lines for the exec's `/etc/hosts`.
    pub hosts: Vec<(String, String)>,
    pub platform: pb::Platform,
}

/// The exec network `network` asks for.
pub fn net_mode(network: &crate::plan::Network) -> pb::NetMode {
    match network.mode {
        crate::plan::NetworkMode::Sandbox => pb::NetMode::Unset,
        crate::plan::NetworkMode::Host => pb::NetMode::Host,
        crate::plan::NetworkMode::None => pb::NetMode::None,
    }
}

pub enum Mount {
    /// Read-only bind of `selector` inside `from`.
    Bind {
        dest: String,
        from: Output,
        selector: String,
    },
    /// Read-only bind of `selector` inside `from`, keyed by `from`'s op
    /// alone where the engine can say so (`content_key` false, BuildKit
    /// v0.13+); else BuildKit hashes `selector` before it can match the exec
    /// in a cache.
    Seed {
        dest: String,
        from: Output,
        selector: String,
        content_key: bool,
    },
    /// A persistent cache, `sharing=locked`, with no input: BuildKit keys
    /// it by `id` alone, so every step and solve that names `id` mounts the
    /// same directory. It starts empty.
    Cache { dest: String, id: String },
    /// An empty writable directory that becomes an output.
    Scratch { dest: String },
    /// An empty writable directory dropped after the step: no output, so
    /// nothing of it is kept (`exec.mount.bind.readwrite-nooutput`).
    Discard { dest: String },
    /// A `--secret` as a read-only file; nothing of it is in the LLB.
    Secret { dest: String, id: String },
    /// The client's `--ssh default` agent socket.
    Ssh { dest: String },
}

/// Owner, mode and time of a file the frontend creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub uid: u32,
    pub gid: u32,
    pub mode: i32,
    /// Unix nanoseconds.
    pub timestamp: i64,
}

pub enum FileAction {
    /// Copies `src` of `from` to `dest`; `mode` `None` and `timestamp` -1
    /// keep the source's; `owner` is `user[:group]`, names or ids.
    Copy {
        from: Output,
        src: String,
        dest: String,
        timestamp: i64,
        owner: Option<String>,
        mode: Option<u32>,
    },
    Mkdir {
        path: String,
        attrs: Attrs,
    },
    /// `path` and its missing parents, mode 0755, owned by `owner`
    /// (`user[:group]`, names or ids, as for `Copy`), if it is not there.
    Parents {
        path: String,
        owner: Option<String>,
        timestamp: i64,
    },
    Mkfile {
        path: String,
        data: Vec<u8>,
        attrs: Attrs,
    },
    /// Copies the contents of directory `src` of `from` to `/`, only what
    /// `include` (empty: everything) and not `exclude` match, relative to
    /// `src` (cap `file.copy.includeexcludepatterns` when either is set).
    Select {
        from: Output,
        src: String,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    /// Copies file `src` of `from` to `/`, unpacked when it is an archive
    /// (tar, optionally compressed), as Docker does with `ADD`.
    Unpack {
        from: Output,
        src: String,
    },
    /// Removes `path`, if there is one.
    Rm {
        path: String,
    },
}

fn chown(uid: u32, gid: u32) -> Option<pb::ChownOpt> {
    let id = |n| {
        Some(pb::UserOpt {
            user: Some(pb::user_opt::User::ById(n)),
        })
    };
    Some(pb::ChownOpt {
        user: id(uid),
        group: id(gid),
    })
}

/// `user[:group]`; names are looked up in the `/etc/passwd` and
/// `/etc/group` of the action's own input, as Dockerfile COPY --chown does.
fn owner(spec: &str, input: i64) -> Option<pb::ChownOpt> {
    let one = |part: &str| {
        let user = match part.parse::<u32>() {
            Ok(id) => pb::user_opt::User::ById(id),
            Err(_) => pb::user_opt::User::ByName(pb::NamedUserOpt {
                name: part.to_owned(),
                input,
            }),
        };
        Some(pb::UserOpt { user: Some(user) })
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    Some(pb::ChownOpt {
        user: one(user),
        group: group.and_then(one),
    })
}

impl FileAction {
    fn to_pb(
        &self,
        input: i64,
        index_of: &dyn Fn(&Output) -> i64,
    ) -> (i64, pb::file_action::Action) {
        use pb::file_action::Action;
        match self {
            Self::Copy {
                from,
                src,
                dest,
                timestamp,
                owner: chown_to,
                mode,
            } => (
                index_of(from),
                Action::Copy(pb::FileActionCopy {
                    src: src.clone(),
                    dest: dest.clone(),
                    owner: chown_to.as_deref().and_then(|o| owner(o, input)),
                    mode: mode.map_or(-1, |m| m as i32),
                    dir_copy_contents: true,
                    create_dest_path: true,
                    allow_wildcard: true,
                    timestamp: *timestamp,
                    ..Default::default()
                }),
            ),
            Self::Select {
                from,
                src,
                include,
                exclude,
            } => (
                index_of(from),
                Action::Copy(pb::FileActionCopy {
                    src: src.clone(),
                    dest: "/".into(),
                    mode: -1,
                    dir_copy_contents: true,
                    create_dest_path: true,
                    timestamp: -1,
                    include_patterns: include.clone(),
                    exclude_patterns: exclude.clone(),
                    ..Default::default()
                }),
            ),
            Self::Unpack { from, src } => (
                index_of(from),
                Action::Copy(pb::FileActionCopy {
                    src: src.clone(),
                    dest: "/".into(),
                    mode: -1,
                    attempt_unpack_docker_compatibility: true,
                    create_dest_path: true,
                    timestamp: -1,
                    ..Default::default()
                }),
            ),
            Self::Parents {
                path,
                owner: chown_to,
                timestamp,
            } => (
                -1,
                Action::Mkdir(pb::FileActionMkDir {
                    path: path.clone(),
                    mode: 0o755,
                    make_parents: true,
                    owner: chown_to.as_deref().and_then(|o| owner(o, input)),
                    timestamp: *timestamp,
                }),
            ),
            Self::Rm { path } => (
                -1,
                Action::Rm(pb::FileActionRm {
                    path: path.clone(),
                    allow_not_found: true,
                    allow_wildcard: false,
                }),
            ),
            Self::Mkdir { path, attrs } => (
                -1,
                Action::Mkdir(pb::FileActionMkDir {
                    path: path.clone(),
                    mode: attrs.mode,
                    make_parents: true,
                    owner: chown(attrs.uid, attrs.gid),
                    timestamp: attrs.timestamp,
                }),
            ),
            Self::Mkfile { path, data, attrs } => (
                -1,
                Action::Mkfile(pb::FileActionMkFile {
                    path: path.clone(),
                    mode: attrs.mode,
                    data: data.clone(),
                    owner: chown(attrs.uid, attrs.gid),
                    timestamp: attrs.timestamp,
                }),
            ),
        }
    }
}
