//! Why a build failed, and how that reaches `docker build`: a status whose
//! message names the spec line and whose `errdefs.Source` detail lets
//! BuildKit show the snippet.

use base64::Engine as _;

use crate::diagnostic::Diagnostic;
use crate::engine::{Detail, EngineError, ReturnError};
use crate::options::OptionError;
use crate::plan::{NamedError, PlanError};
use crate::spec;

/// gRPC code Unknown: BuildKit prints the message once (other codes are
/// repeated as prefixes).
const CODE_UNKNOWN: i32 = 2;
/// gRPC code Unimplemented: tells clients the frontend lacks a request.
const CODE_UNIMPLEMENTED: i32 = 12;

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
    #[error("cannot read the context's .dockerignore: {0}")]
    Dockerignore(String),
    #[error("`--platform`: this engine cannot run {platform} (its worker runs {runs})")]
    PlatformNotRunnable { platform: String, runs: String },
    /// Neither BUILDKIT_WORKERS nor Ping named a platform the worker runs.
    #[error("BuildKit named no platform its worker runs, so what runs natively is unknown")]
    NoBuildPlatform,
    /// A remote context (git, http) could not be fetched or read.
    #[error("build context {context}: {message}")]
    Remote { context: String, message: String },
    /// The remote context has no spec where the client said.
    #[error("build context {context}: no {path} in it")]
    RemoteSpec { context: String, path: String },
    /// The engine's copies take no patterns (BuildKit before v0.9), and
    /// `src` or `.dockerignore` need them.
    #[error("build context {context}: this BuildKit cannot filter a fetched context by {what}")]
    RemoteFilter { context: String, what: String },
    #[error("named context {name}: {message}")]
    Named {
        name: String,
        message: String,
        hint: String,
    },
    #[error("unsupported request {0}")]
    UnknownRequest(String),
    #[error("`{key}`: cannot use image {image:?}: {message}")]
    Resolve {
        key: &'static str,
        image: String,
        message: String,
        span: Option<spec::Span>,
    },
    /// The base has the file but it cannot be read: writing our own would
    /// drop the base's users, root included.
    #[error("`image.user`: cannot read {path} of the base: {message}")]
    BaseUsers {
        path: &'static str,
        message: String,
        span: Option<spec::Span>,
    },
    /// An error from the engine, passed on as it came (it may carry BuildKit's
    /// own source ranges and vertex details).
    #[error("{}", .0.message)]
    Engine(EngineError),
    /// `nix build` failed: the engine's error, placed at the `flake` line
    /// (Docker 20.10 shows no snippet from the source map, so the line is
    /// in the text too).
    #[error("`flake` {flake}: nix build failed: {}", .error.message)]
    NixBuild {
        error: Box<EngineError>,
        flake: String,
        span: Option<spec::Span>,
    },
    /// The layer ops found the paths the nix step had just built missing:
    /// the store cache was emptied or replaced during the build.
    #[error(
        "`flake` {flake}: the image's layer ops do not see the /nix store cache the nix step built into, even after building again"
    )]
    StoreUnshared {
        flake: String,
        span: Option<spec::Span>,
    },
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

impl From<spec::SpecError> for Failure {
    fn from(e: spec::SpecError) -> Self {
        Self::Plan(e.into())
    }
}

impl From<NamedError> for Failure {
    fn from(e: NamedError) -> Self {
        Self::Named {
            name: e.name,
            message: e.message,
            hint: e.hint,
        }
    }
}

impl Failure {
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            Self::Plan(e) => e.into(),
            other => Diagnostic {
                message: other.to_string(),
                hint: other.hint(),
                span: match other {
                    Self::NixBuild { span, .. }
                    | Self::StoreUnshared { span, .. }
                    | Self::Resolve { span, .. }
                    | Self::BaseUsers { span, .. } => *span,
                    _ => None,
                },
            },
        }
    }

    fn hint(&self) -> String {
        match self {
            Self::MissingCap { .. } => {
                "use Docker 20.10 or newer with BuildKit enabled (DOCKER_BUILDKIT=1 or buildx)".into()
            }
            Self::SpecRead { .. } => {
                "pass the spec with -f, e.g. docker build -f nix-frontend.toml .".into()
            }
            Self::NoBuildPlatform => "the engine's worker reports no platforms (docker buildx inspect lists them); use a builder whose worker does".into(),
            Self::PlatformNotRunnable { platform, .. } => format!(
                "register an emulator for it (Debian: apt-get install qemu-user-static binfmt-support, which adds it to binfmt_misc with the F flag), then restart the Docker daemon so BuildKit sees it; or build {platform} on a machine of that architecture"
            ),
            Self::NixBuild { error, .. } if error.message.contains("secret") => {
                "pass every id in nix.secrets and nix.conf-secrets, e.g. docker build --secret id=netrc,src=$HOME/.netrc".into()
            }
            Self::NixBuild { error, .. } if error.message.to_lowercase().contains("ssh") => {
                "nix.ssh needs docker build --ssh default (with an ssh-agent running)".into()
            }
            Self::StoreUnshared { .. } => {
                "the /nix store cache was emptied while this build ran: by `docker builder prune`, by BuildKit's garbage collection, or by another build of this store that marks its steps to ignore the cache (BuildKit then prunes the cache mount, as an older nix-frontend's --no-cache did); build again".into()
            }
            Self::NixBuild { .. } => {
                "the nix log above says why; `nix flake show` lists the flake's attributes".into()
            }
            Self::Resolve { message, .. } if message.contains("unknown scheme oci-layout") => {
                "this engine's image store reads no OCI layouts (Docker's classic store); use the containerd image store, or load the image and name it with docker-image://".into()
            }
            Self::Resolve { .. } => {
                "build or pull the image first (docker image ls shows what the engine has), or fix its name".into()
            }
            Self::BaseUsers { .. } => {
                "check the base image's /etc/passwd and /etc/group (and what image.run does to them)".into()
            }
            Self::Remote { message, .. }
                if ["401", "403", "Authentication", "could not read Username", "terminal prompts disabled"]
                    .iter()
                    .any(|s| message.contains(s)) =>
            {
                "a private repository needs a token: docker build --secret id=GIT_AUTH_TOKEN,env=TOKEN (or GIT_AUTH_HEADER with the whole header)".into()
            }
            Self::Remote { .. } => {
                "check the URL and the ref (#REF:SUBDIR); BuildKit fetches it from the daemon's network, and a private repository needs --secret id=GIT_AUTH_TOKEN".into()
            }
            Self::RemoteSpec { .. } => {
                "the spec is read from the context's directory (URL#REF:SUBDIR); name it with -f, relative to that directory".into()
            }
            Self::RemoteFilter { .. } => {
                "use Docker 23 or newer (BuildKit v0.9+), or build from a local checkout, or drop `src` and wildcard .dockerignore patterns".into()
            }
            Self::Named { hint, .. } => hint.clone(),
            Self::Option(OptionError::Epoch(_)) => {
                "pass seconds since 1970, e.g. --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)".into()
            }
            _ => String::new(),
        }
    }

    /// The status for Return, with an `errdefs.Source` detail so `docker
    /// build` shows the spec line.
    pub fn to_return(&self, filename: &str, text: &str) -> ReturnError {
        match self {
            Self::UnknownRequest(_) => ReturnError {
                code: CODE_UNIMPLEMENTED,
                message: self.to_string(),
                details: Vec::new(),
            },
            // The engine's own details carry its source ranges and vertex.
            Self::Engine(e) => ReturnError {
                code: CODE_UNKNOWN,
                message: e.message.clone(),
                details: e.details.clone(),
            },
            Self::NixBuild { error, .. } => ReturnError {
                code: CODE_UNKNOWN,
                message: self.diagnostic().render(filename, text),
                details: error.details.clone(),
            },
            _ => {
                let d = self.diagnostic();
                let details = d
                    .lines(text)
                    .map(|(start, end)| vec![source_detail(filename, text, start, end)])
                    .unwrap_or_default();
                ReturnError {
                    code: CODE_UNKNOWN,
                    message: d.render(filename, text),
                    details,
                }
            }
        }
    }
}

/// `errdefs.Source` as JSON: BuildKit drops a protobuf value silently.
fn source_detail(filename: &str, text: &str, start: usize, end: usize) -> Detail {
    let pos = |line: usize| serde_json::json!({"line": line, "character": 0});
    let value = serde_json::json!({
        "info": {
            "filename": filename,
            "data": base64::engine::general_purpose::STANDARD.encode(text),
        },
        "ranges": [{"start": pos(start), "end": pos(end)}],
    });
    Detail {
        type_url: "github.com/moby/buildkit/errdefs.Source+json".into(),
        value: serde_json::to_vec(&value).unwrap_or_default(),
    }
}
