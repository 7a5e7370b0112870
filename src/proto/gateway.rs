//! LLBBridge messages (BuildKit package `moby.buildkit.v1.frontend`): the calls
//! a frontend makes, and what they carry. Unknown fields from newer servers are
//! skipped by prost on decode, so this subset stays valid as BuildKit grows.

use std::collections::BTreeMap;

use super::llb::{Definition, Platform};

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PingRequest {}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PongResponse {
    #[prost(message, repeated, tag = "1")]
    pub frontend_api_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "2")]
    pub llb_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "3")]
    pub workers: Vec<WorkerRecord>,
}

/// A worker as Ping describes it; only its platforms are read.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WorkerRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, repeated, tag = "3")]
    pub platforms: Vec<Platform>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ApiCap {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    #[prost(bool, tag = "3")]
    pub deprecated: bool,
    #[prost(string, tag = "4")]
    pub disabled_reason: String,
    #[prost(string, tag = "5")]
    pub disabled_reason_msg: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResolveImageConfigRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(message, optional, tag = "2")]
    pub platform: Option<Platform>,
    #[prost(string, tag = "3")]
    pub resolve_mode: String,
    #[prost(string, tag = "4")]
    pub log_name: String,
    /// BuildKit v0.11+: 0 registry, 1 the client's OCI layout (in
    /// `session_id`'s store `store_id`).
    #[prost(int32, tag = "5")]
    pub resolver_type: i32,
    #[prost(string, tag = "6")]
    pub session_id: String,
    #[prost(string, tag = "7")]
    pub store_id: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ResolveImageConfigResponse {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(bytes = "vec", tag = "2")]
    pub config: Vec<u8>,
    /// BuildKit v0.12+: the reference as BuildKit normalized it.
    #[prost(string, tag = "3")]
    pub r#ref: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SolveRequest {
    #[prost(message, optional, tag = "1")]
    pub definition: Option<Definition>,
    #[prost(string, tag = "2")]
    pub frontend: String,
    #[prost(btree_map = "string, string", tag = "3")]
    pub frontend_opt: BTreeMap<String, String>,
    #[prost(bool, tag = "5")]
    pub allow_result_return: bool,
    #[prost(bool, tag = "6")]
    pub allow_result_array_ref: bool,
    #[prost(message, repeated, tag = "12")]
    pub cache_imports: Vec<CacheOptionsEntry>,
    #[prost(bool, tag = "14")]
    pub evaluate: bool,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct CacheOptionsEntry {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub attrs: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SolveResponse {
    #[prost(message, optional, tag = "3")]
    pub result: Option<Result>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Result {
    #[prost(oneof = "result::Kind", tags = "3, 4")]
    pub result: Option<result::Kind>,
    #[prost(btree_map = "string, bytes", tag = "10")]
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// BuildKit v0.11+ (cap `reference.attestations`), by platform id.
    #[prost(btree_map = "string, message", tag = "12")]
    pub attestations: BTreeMap<String, Attestations>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Attestations {
    #[prost(message, repeated, tag = "1")]
    pub attestation: Vec<Attestation>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Attestation {
    /// 0 = in-toto (a predicate file), 1 = a bundle of statements.
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(btree_map = "string, bytes", tag = "2")]
    pub metadata: BTreeMap<String, Vec<u8>>,
    #[prost(message, optional, tag = "3")]
    pub r#ref: Option<Ref>,
    #[prost(string, tag = "4")]
    pub path: String,
    #[prost(string, tag = "5")]
    pub in_toto_predicate_type: String,
}

pub mod result {
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "3")]
        Ref(super::Ref),
        #[prost(message, tag = "4")]
        Refs(super::RefMap),
    }
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Ref {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct RefMap {
    #[prost(btree_map = "string, message", tag = "1")]
    pub refs: BTreeMap<String, Ref>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadFileRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub file_path: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadFileResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct StatFileRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub path: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct StatFileResponse {
    #[prost(message, optional, tag = "1")]
    pub stat: Option<Stat>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadDirRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub dir_path: String,
    #[prost(string, tag = "3")]
    pub include_pattern: String,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReadDirResponse {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Stat>,
}

/// fsutil's Stat; `mode` is a Go `os.FileMode` (directory = bit 31).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Stat {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(uint32, tag = "2")]
    pub mode: u32,
}

impl Stat {
    /// Go's `os.FileMode` marks directories with bit 31.
    pub fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReturnRequest {
    #[prost(message, optional, tag = "1")]
    pub result: Option<Result>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Status>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct ReturnResponse {}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// BuildKit v0.10+ (cap `gateway.warnings`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WarnRequest {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(int64, tag = "2")]
    pub level: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub short: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub detail: Vec<Vec<u8>>,
    #[prost(string, tag = "5")]
    pub url: String,
    #[prost(message, optional, tag = "6")]
    pub info: Option<super::llb::SourceInfo>,
    #[prost(message, repeated, tag = "7")]
    pub ranges: Vec<super::llb::Range>,
}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct WarnResponse {}

/// BuildKit v0.7+ (cap `frontend.inputs`): the definitions the client built
/// for this frontend (bake's `target:` contexts reach it as `input:NAME`).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InputsRequest {}

#[derive(Clone, PartialEq, ::prost::Message)]
pub struct InputsResponse {
    #[prost(btree_map = "string, message", tag = "1")]
    pub definitions: BTreeMap<String, Definition>,
}
