//! Why a build failed, and how that reaches `docker build`: a
//! `google.rpc.Status` whose message names the spec line and whose
//! `errdefs.Source` detail lets BuildKit show the snippet.

use base64::Engine as _;
use prost::Message;

use super::options::OptionError;
use crate::diagnostic::Diagnostic;
use crate::plan::PlanError;
use crate::proto::gateway as gw;
use crate::spec;

/// gRPC code Unknown: BuildKit prints the message once (other codes are
/// repeated as prefixes).
const CODE_UNKNOWN: i32 = 2;

/// Why a build failed, with what the user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Option(#[from] OptionError),
    #[error("this BuildKit lacks the capability `{cap}` ({what})")]
    MissingCap {
        cap: &'static str,
        what: &'static str,
    },
    #[error("cannot read the spec {filename:?}: {message}")]
    SpecRead { filename: String, message: String },
    #[error("building for several platforms at once ({0}) is not supported yet")]
    MultiPlatform(String),
    #[error("unsupported request {0}")]
    UnknownRequest(String),
    #[error("`{key}`: cannot use image {image:?}: {message}")]
    Resolve {
        key: &'static str,
        image: String,
        message: String,
        span: Option<spec::Span>,
    },
    /// An error from the engine, passed on as it came (it may carry BuildKit's
    /// own source ranges and vertex details).
    #[error("{}", .0.message())]
    Engine(tonic::Status),
    /// `nix build` failed: the engine's error, placed at the `flake` line
    /// (Docker 20.10 shows no snippet from the source map, so the line is
    /// in the text too).
    #[error("`flake` {flake}: nix build failed: {}", .status.message())]
    NixBuild {
        status: tonic::Status,
        flake: String,
        span: Option<spec::Span>,
    },
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Self::Engine(s)
    }
}

impl From<spec::SpecError> for Failure {
    fn from(e: spec::SpecError) -> Self {
        Self::Plan(e.into())
    }
}

impl Failure {
    fn diagnostic(&self) -> Diagnostic {
        match self {
            Self::Plan(e) => e.into(),
            other => Diagnostic {
                message: other.to_string(),
                hint: match other {
                    Self::MissingCap { .. } => "use Docker 20.10 or newer with BuildKit enabled (DOCKER_BUILDKIT=1 or buildx)".into(),
                    Self::SpecRead { .. } => "pass the spec with -f, e.g. docker build -f nix-frontend.toml .".into(),
                    Self::MultiPlatform(_) => "build one --platform at a time".into(),
                    Self::NixBuild { status, .. } if status.message().contains("secret") => {
                        "pass every id in nix.secrets and nix.conf-secrets, e.g. docker build --secret id=netrc,src=$HOME/.netrc".into()
                    }
                    Self::NixBuild { status, .. } if status.message().to_lowercase().contains("ssh") => {
                        "nix.ssh needs docker build --ssh default (with an ssh-agent running)".into()
                    }
                    Self::NixBuild { .. } => "the nix log above says why; `nix flake show` lists the flake's attributes".into(),
                    Self::Resolve { .. } => "build or pull the image first (docker image ls shows what the engine has), or fix its name".into(),
                    Self::Option(OptionError::Epoch(_)) => "pass seconds since 1970, e.g. --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)".into(),
                    _ => String::new(),
                },
                span: match other {
                    Self::NixBuild { span, .. } | Self::Resolve { span, .. } => *span,
                    _ => None,
                },
            },
        }
    }

    /// The `google.rpc.Status` for Return, with an `errdefs.Source` detail
    /// so `docker build` shows the spec line.
    pub fn to_status(&self, filename: &str, text: &str) -> gw::Status {
        let engine = match self {
            Self::Engine(s) => Some((s, s.message().to_owned())),
            Self::NixBuild { status, .. } => {
                Some((status, self.diagnostic().render(filename, text)))
            }
            _ => None,
        };
        if let Self::UnknownRequest(_) = self {
            // UNIMPLEMENTED tells clients the frontend lacks this request.
            return gw::Status {
                code: 12,
                message: self.to_string(),
                details: Vec::new(),
            };
        }
        if let Some((s, message)) = engine {
            // tonic keeps the server's encoded google.rpc.Status in details();
            // its details carry BuildKit's own source ranges and vertex.
            let details = gw::Status::decode(s.details())
                .map(|st| st.details)
                .unwrap_or_default();
            return gw::Status {
                code: CODE_UNKNOWN,
                message,
                details,
            };
        }
        let d = self.diagnostic();
        let mut details = Vec::new();
        if let Some((start, end)) = d.lines(text) {
            details.push(source_detail(filename, text, start, end));
        }
        gw::Status {
            code: CODE_UNKNOWN,
            message: d.render(filename, text),
            details,
        }
    }
}

/// `errdefs.Source` as JSON: BuildKit drops a protobuf value silently.
fn source_detail(filename: &str, text: &str, start: usize, end: usize) -> gw::Any {
    let pos = |line: usize| serde_json::json!({"line": line, "character": 0});
    let value = serde_json::json!({
        "info": {
            "filename": filename,
            "data": base64::engine::general_purpose::STANDARD.encode(text),
        },
        "ranges": [{"start": pos(start), "end": pos(end)}],
    });
    gw::Any {
        type_url: "github.com/moby/buildkit/errdefs.Source+json".into(),
        value: serde_json::to_vec(&value).unwrap_or_default(),
    }
}
