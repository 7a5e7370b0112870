//! The LLBBridge client over the frontend's stdin/stdout, and the one place
//! where wire messages become domain values and back.
//!
//! BuildKit serves gRPC (HTTP/2 without TLS) on a pipe pair given to the
//! frontend as fds 0 and 1, so stdout must carry nothing but frames. The
//! connection cannot be reopened: the connector hands the pipes out once.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use prost::Message;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::engine::{
    Caps, Detail, Engine, EngineError, ImageMeta, Refs, ResolveImage, ReturnError, Returned, Solve,
    Warning,
};
use crate::proto::gateway as gw;
use crate::proto::{errdefs, llb as pb};

/// Messages up to this size are accepted from the server (tonic's default
/// is 4 MiB; BuildKit 0.14+ sends up to 16 MiB).
const MAX_MESSAGE: usize = 64 << 20;

pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
    /// Time with at least one call in flight: BuildKit's time, to tell the
    /// frontend's own work apart (overlapping calls count once).
    waited: Cell<Duration>,
    in_flight: Cell<usize>,
    since: Cell<Option<Instant>>,
}

impl Client {
    pub async fn connect_stdio() -> Result<Self, tonic::transport::Error> {
        let io = Arc::new(Mutex::new(Some(tokio::io::join(
            tokio::io::stdin(),
            tokio::io::stdout(),
        ))));
        let connector = tower::service_fn(move |_: Uri| {
            let io = io.clone();
            async move {
                let taken = io
                    .lock()
                    .map_err(|_| std::io::Error::other("stdio lock poisoned"))?
                    .take();
                taken.map(TokioIo::new).ok_or_else(|| {
                    std::io::Error::other("the stdio connection to BuildKit is gone")
                })
            }
        });
        let channel = Endpoint::from_static("http://localhost")
            .connect_with_connector(connector)
            .await?;
        let grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE);
        Ok(Self {
            grpc,
            waited: Cell::new(Duration::ZERO),
            in_flight: Cell::new(0),
            since: Cell::new(None),
        })
    }

    /// Time spent waiting on BuildKit so far.
    pub fn waited(&self) -> Duration {
        self.waited.get()
    }

    fn begin_wait(&self) {
        if self.in_flight.get() == 0 {
            self.since.set(Some(Instant::now()));
        }
        self.in_flight.set(self.in_flight.get() + 1);
    }

    fn end_wait(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        if self.in_flight.get() == 0
            && let Some(t) = self.since.take()
        {
            self.waited.set(self.waited.get() + t.elapsed());
        }
    }

    async fn call<Req, Resp>(&self, method: &'static str, req: Req) -> Result<Resp, EngineError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        // A clone shares the one connection: calls made side by side are
        // multiplexed on it.
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|e| EngineError::new(14, format!("buildkit connection: {e}")))?;
        let path = PathAndQuery::from_static(method);
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        self.begin_wait();
        let reply = grpc.unary(tonic::Request::new(req), path, codec).await;
        self.end_wait();
        Ok(reply.map_err(engine_error)?.into_inner())
    }

    pub async fn ping(&self) -> Result<Caps, EngineError> {
        let pong: gw::PongResponse = self
            .call(
                "/moby.buildkit.v1.frontend.LLBBridge/Ping",
                gw::PingRequest {},
            )
            .await?;
        let enabled = |caps: Vec<gw::ApiCap>| {
            caps.into_iter()
                .filter(|c| c.enabled)
                .map(|c| c.id)
                .collect()
        };
        let worker_platforms = pong
            .workers
            .first()
            .map(|w| {
                w.platforms
                    .iter()
                    .filter(|p| !p.os.is_empty() && !p.architecture.is_empty())
                    .map(|p| {
                        [&p.os, &p.architecture, &p.variant]
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Caps {
            gateway: enabled(pong.frontend_api_caps),
            llb: enabled(pong.llb_caps),
            worker_platforms,
        })
    }

    /// Hands the whole build to the engine's frontend `frontend` with
    /// `opts`, and returns what it made, as it made it.
    pub async fn forward(
        &self,
        frontend: &str,
        opts: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let req = gw::SolveRequest {
            frontend: frontend.to_owned(),
            frontend_opt: opts.clone(),
            allow_result_return: true,
            allow_result_array_ref: true,
            ..Default::default()
        };
        let solved = self
            .call::<_, gw::SolveResponse>("/moby.buildkit.v1.frontend.LLBBridge/Solve", req)
            .await;
        let req = match solved {
            Ok(resp) => gw::ReturnRequest {
                result: resp.result,
                error: None,
            },
            Err(e) => failed(e.code, e.message, Vec::new()),
        };
        self.send_return(req).await
    }

    async fn send_return(&self, req: gw::ReturnRequest) -> Result<(), EngineError> {
        let _: gw::ReturnResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Return", req)
            .await?;
        Ok(())
    }

    /// Return: the result, or the error the build failed with.
    pub async fn finish(&self, outcome: Result<Returned, ReturnError>) -> Result<(), EngineError> {
        let req = match outcome {
            Ok(r) => gw::ReturnRequest {
                result: Some(result(r)),
                error: None,
            },
            Err(e) => failed(e.code, e.message, e.details.into_iter().map(any).collect()),
        };
        self.send_return(req).await
    }
}

impl Engine for Client {
    async fn solve(&self, req: Solve) -> Result<String, EngineError> {
        let req = gw::SolveRequest {
            definition: Some(req.definition),
            allow_result_return: true,
            allow_result_array_ref: true,
            evaluate: req.evaluate,
            cache_imports: req
                .cache_imports
                .into_iter()
                .map(|c| gw::CacheOptionsEntry {
                    r#type: c.kind,
                    attrs: c.attrs,
                })
                .collect(),
            ..Default::default()
        };
        let resp: gw::SolveResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Solve", req)
            .await?;
        match resp.result.and_then(|r| r.result) {
            Some(gw::result::Kind::Ref(r)) => Ok(r.id),
            Some(gw::result::Kind::Refs(_)) => Err(EngineError::new(
                13,
                "solve returned several refs for one definition",
            )),
            None => Ok(String::new()),
        }
    }

    async fn read_file(&self, r#ref: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        let req = gw::ReadFileRequest {
            r#ref: r#ref.to_owned(),
            file_path: path.to_owned(),
        };
        let resp: gw::ReadFileResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/ReadFile", req)
            .await?;
        Ok(resp.data)
    }

    async fn is_dir(&self, r#ref: &str, path: &str) -> Result<bool, EngineError> {
        let req = gw::StatFileRequest {
            r#ref: r#ref.to_owned(),
            path: path.to_owned(),
        };
        match self
            .call::<_, gw::StatFileResponse>("/moby.buildkit.v1.frontend.LLBBridge/StatFile", req)
            .await
        {
            Ok(r) => Ok(r.stat.is_some_and(|s| s.is_dir())),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn read_dir(&self, r#ref: &str, path: &str) -> Result<Vec<(String, bool)>, EngineError> {
        let req = gw::ReadDirRequest {
            r#ref: r#ref.to_owned(),
            dir_path: path.to_owned(),
            include_pattern: String::new(),
        };
        let resp: gw::ReadDirResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/ReadDir", req)
            .await?;
        Ok(resp
            .entries
            .into_iter()
            .map(|e| {
                let dir = e.is_dir();
                (e.path, dir)
            })
            .collect())
    }

    async fn resolve_image(&self, req: ResolveImage) -> Result<ImageMeta, EngineError> {
        let (resolver_type, session_id, store_id) = match req.oci {
            Some(o) => (1, o.session, o.store),
            None => (0, String::new(), String::new()),
        };
        let req = gw::ResolveImageConfigRequest {
            r#ref: req.reference,
            platform: Some(crate::llb::platform(&req.platform)),
            resolve_mode: req.mode,
            log_name: req.log_name,
            resolver_type,
            session_id,
            store_id,
        };
        let resp: gw::ResolveImageConfigResponse = self
            .call(
                "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig",
                req,
            )
            .await?;
        Ok(ImageMeta {
            digest: resp.digest,
            config: resp.config,
            reference: resp.r#ref,
        })
    }

    async fn inputs(&self) -> Result<BTreeMap<String, pb::Definition>, EngineError> {
        let resp: gw::InputsResponse = self
            .call(
                "/moby.buildkit.v1.frontend.LLBBridge/Inputs",
                gw::InputsRequest {},
            )
            .await?;
        Ok(resp.definitions)
    }

    async fn warn(&self, w: Warning) -> Result<(), EngineError> {
        let req = gw::WarnRequest {
            digest: w.vertex,
            level: 1,
            short: w.short.into_bytes(),
            detail: vec![w.detail.into_bytes()],
            url: String::new(),
            info: Some(pb::SourceInfo {
                filename: w.filename,
                data: w.text.into_bytes(),
                definition: None,
                language: "TOML".into(),
            }),
            ranges: w.lines.into_iter().map(pb::Range::from).collect(),
        };
        let _: gw::WarnResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Warn", req)
            .await?;
        Ok(())
    }
}

/// A gRPC error as the pipeline sees it. tonic keeps the server's encoded
/// `google.rpc.Status` in `details()`: its details carry BuildKit's own
/// source ranges and the failed vertex.
fn engine_error(s: tonic::Status) -> EngineError {
    let details: Vec<Detail> = gw::Status::decode(s.details())
        .map(|st| st.details)
        .unwrap_or_default()
        .into_iter()
        .map(|a| Detail {
            type_url: a.type_url,
            value: a.value,
        })
        .collect();
    EngineError {
        code: s.code() as i32,
        message: s.message().to_owned(),
        vertex: details.iter().find_map(vertex_of),
        details,
    }
}

/// The digest in an `errdefs.Vertex` detail, JSON or protobuf.
fn vertex_of(d: &Detail) -> Option<String> {
    if d.type_url.ends_with("errdefs.Vertex+json") {
        #[derive(serde::Deserialize)]
        struct V {
            digest: String,
        }
        return serde_json::from_slice::<V>(&d.value).ok().map(|v| v.digest);
    }
    if d.type_url.ends_with("errdefs.Vertex") {
        return errdefs::Vertex::decode(d.value.as_slice())
            .ok()
            .map(|v| v.digest);
    }
    None
}

/// A Return of an error.
fn failed(code: i32, message: String, details: Vec<gw::Any>) -> gw::ReturnRequest {
    gw::ReturnRequest {
        result: None,
        error: Some(gw::Status {
            code,
            message,
            details,
        }),
    }
}

fn any(d: Detail) -> gw::Any {
    gw::Any {
        type_url: d.type_url,
        value: d.value,
    }
}

fn result(r: Returned) -> gw::Result {
    let kind = match r.refs {
        Refs::None => gw::result::Kind::Ref(gw::Ref { id: String::new() }),
        Refs::Single(id) => gw::result::Kind::Ref(gw::Ref { id }),
        Refs::Platforms(refs) => gw::result::Kind::Refs(gw::RefMap {
            refs: refs
                .into_iter()
                .map(|(k, id)| (k, gw::Ref { id }))
                .collect(),
        }),
    };
    let attestations = r
        .attestations
        .into_iter()
        .map(|(platform, list)| {
            let attestation = list
                .into_iter()
                .map(|a| gw::Attestation {
                    kind: 0,
                    metadata: a.metadata,
                    r#ref: Some(gw::Ref { id: a.r#ref }),
                    path: a.path,
                    in_toto_predicate_type: a.predicate_type,
                })
                .collect();
            (platform, gw::Attestations { attestation })
        })
        .collect();
    gw::Result {
        result: Some(kind),
        metadata: r.metadata,
        attestations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vertex_details_in_both_encodings() {
        let json = Detail {
            type_url: "github.com/moby/buildkit/errdefs.Vertex+json".into(),
            value: br#"{"digest":"sha256:abc"}"#.to_vec(),
        };
        assert_eq!(vertex_of(&json).as_deref(), Some("sha256:abc"));
        let proto = Detail {
            type_url: "type.googleapis.com/errdefs.Vertex".into(),
            value: errdefs::Vertex {
                digest: "sha256:def".into(),
            }
            .encode_to_vec(),
        };
        assert_eq!(vertex_of(&proto).as_deref(), Some("sha256:def"));
        let other = Detail {
            type_url: "github.com/moby/buildkit/errdefs.Source+json".into(),
            value: b"{}".to_vec(),
        };
        assert_eq!(vertex_of(&other), None);
    }
}
