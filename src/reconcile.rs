//! The reconcile loop: watch + timer + webhook -> newest head -> validate ->
//! plan -> apply. Each pass starts from "what is the newest head?", never from
//! "what event did I get?", so a burst of commits is coalesced to the newest.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `slipway serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// Branch to follow (`None`: the checked-out branch).
    pub branch: Option<String>,
    /// Design root inside the repository (`None`: `designs/` when present, else the root).
    pub design_dir: Option<String>,
    pub db: PathBuf,
    pub listen: SocketAddr,
    pub poll: Duration,
}

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Runs the server until Ctrl-C / SIGTERM.
pub async fn serve(_cfg: ServeConfig) -> Result<(), ServeError> {
    todo!()
}
