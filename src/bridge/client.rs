//! The LLBBridge client over the frontend's stdin/stdout.
//!
//! BuildKit serves gRPC (HTTP/2 without TLS) on a pipe pair given to the
//! frontend as fds 0 and 1, so stdout must carry nothing but frames. The
//! connection cannot be reopened: the connector hands the pipes out once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use hyper_util::rt::TokioIo;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::proto::gateway as gw;
use crate::proto::llb::{Definition, Platform};

/// Messages up to this size are accepted from the server (tonic's default
/// is 4 MiB; BuildKit 0.14+ sends up to 16 MiB).
const MAX_MESSAGE: usize = 64 << 20;

pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
    /// Time spent waiting on BuildKit, to tell the frontend's own work apart.
    pub waited: std::time::Duration,
}

/// The caps the engine reported as enabled.
#[derive(Clone, Debug, Default)]
pub struct Caps {
    pub gateway: BTreeSet<String>,
    pub llb: BTreeSet<String>,
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
            waited: std::time::Duration::ZERO,
        })
    }

    async fn call<Req, Resp>(
        &mut self,
        method: &'static str,
        req: Req,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("buildkit connection: {e}")))?;
        let path = PathAndQuery::from_static(method);
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let started = std::time::Instant::now();
        let reply = self.grpc.unary(tonic::Request::new(req), path, codec).await;
        self.waited += started.elapsed();
        Ok(reply?.into_inner())
    }

    pub async fn ping(&mut self) -> Result<Caps, tonic::Status> {
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
        Ok(Caps {
            gateway: enabled(pong.frontend_api_caps),
            llb: enabled(pong.llb_caps),
        })
    }

    /// Solves `def` and returns the result's ref id (empty = scratch).
    pub async fn solve(
        &mut self,
        def: Definition,
        evaluate: bool,
        cache_imports: Vec<gw::CacheOptionsEntry>,
    ) -> Result<String, tonic::Status> {
        let req = gw::SolveRequest {
            definition: Some(def),
            allow_result_return: true,
            allow_result_array_ref: true,
            evaluate,
            cache_imports,
            ..Default::default()
        };
        let resp: gw::SolveResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Solve", req)
            .await?;
        match resp.result.and_then(|r| r.result) {
            Some(gw::result::Kind::Ref(r)) => Ok(r.id),
            Some(gw::result::Kind::Refs(_)) => Err(tonic::Status::internal(
                "solve returned several refs for one definition",
            )),
            None => Ok(String::new()),
        }
    }

    pub async fn read_file(&mut self, r#ref: &str, path: &str) -> Result<Vec<u8>, tonic::Status> {
        let req = gw::ReadFileRequest {
            r#ref: r#ref.to_owned(),
            file_path: path.to_owned(),
        };
        let resp: gw::ReadFileResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/ReadFile", req)
            .await?;
        Ok(resp.data)
    }

    /// Whether `path` exists in `ref` and is a directory.
    pub async fn is_dir(&mut self, r#ref: &str, path: &str) -> Result<bool, tonic::Status> {
        let req = gw::StatFileRequest {
            r#ref: r#ref.to_owned(),
            path: path.to_owned(),
        };
        match self
            .call::<_, gw::StatFileResponse>("/moby.buildkit.v1.frontend.LLBBridge/StatFile", req)
            .await
        {
            // Go's os.FileMode marks directories with bit 31.
            Ok(r) => Ok(r.stat.is_some_and(|s| s.mode & (1 << 31) != 0)),
            Err(s) if s.code() == tonic::Code::NotFound || s.message().contains("no such file") => {
                Ok(false)
            }
            Err(s) => Err(s),
        }
    }

    pub async fn resolve_image_config(
        &mut self,
        reference: &str,
        platform: &Platform,
        resolve_mode: &str,
        log_name: &str,
    ) -> Result<gw::ResolveImageConfigResponse, tonic::Status> {
        let req = gw::ResolveImageConfigRequest {
            r#ref: reference.to_owned(),
            platform: Some(platform.clone()),
            resolve_mode: resolve_mode.to_owned(),
            log_name: log_name.to_owned(),
        };
        self.call(
            "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig",
            req,
        )
        .await
    }

    /// Shows a warning in the build output, attached to vertex `digest`.
    pub async fn warn(&mut self, req: gw::WarnRequest) -> Result<(), tonic::Status> {
        let _: gw::WarnResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Warn", req)
            .await?;
        Ok(())
    }

    pub async fn finish(
        &mut self,
        outcome: Result<gw::Result, gw::Status>,
    ) -> Result<(), tonic::Status> {
        let req = match outcome {
            Ok(result) => gw::ReturnRequest {
                result: Some(result),
                error: None,
            },
            Err(status) => gw::ReturnRequest {
                result: None,
                error: Some(status),
            },
        };
        let _: gw::ReturnResponse = self
            .call("/moby.buildkit.v1.frontend.LLBBridge/Return", req)
            .await?;
        Ok(())
    }
}
