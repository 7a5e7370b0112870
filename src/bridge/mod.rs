//! The bridge: the only async I/O. It connects to BuildKit over stdio, asks
//! for the caps, runs the pipeline against the gRPC client, and returns what
//! the pipeline made of it. It builds no LLB and decides nothing.

mod client;

pub use client::Client;

use crate::engine::EngineError;
use crate::options::Options;
use crate::pipeline;

/// In the environment of the floor image (see `bench/run.sh`): the engine
/// frontend to forward every build to, e.g. `dockerfile.v0`.
const FORWARD_VAR: &str = "NIX_FRONTEND_FORWARD";

/// Runs one frontend invocation. An error here means nothing could be
/// returned to BuildKit at all.
pub async fn run() -> Result<(), EngineError> {
    let mut opts = Options::from_env();
    let client = Client::connect_stdio()
        .await
        .map_err(|e| EngineError::new(14, format!("cannot connect to BuildKit over stdio: {e}")))?;
    let caps = client.ping().await?;
    opts.or_workers(&caps.worker_platforms);
    // The benchmark's floor: a gateway frontend that does nothing but hand
    // the build to the engine's own Dockerfile frontend (the options carry
    // `cmdline`, so that one does not follow the `# syntax=` line again).
    if let Ok(frontend) = std::env::var(FORWARD_VAR) {
        return client.forward(&frontend, opts.all()).await;
    }
    let waited_before = client.waited();
    let started = std::time::Instant::now();
    let outcome = pipeline::run(&client, &opts, &caps).await.result;
    if let Err(e) = &outcome {
        eprintln!("nix-frontend: {}", e.message);
    }
    let total = started.elapsed();
    let waited = client.waited().saturating_sub(waited_before);
    eprintln!(
        "nix-frontend: timings: total {total:?}, waiting on BuildKit {waited:?}, own work {:?}",
        total.saturating_sub(waited)
    );
    client.finish(outcome).await
}
