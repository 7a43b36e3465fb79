//! HTTP machinery shared by every dialect: the route description and the
//! router built from a table ([`routes`]), operator tokens ([`auth`]), the
//! admission limit of node routes ([`admission`]), request metrics
//! ([`metrics`]), body reading ([`body`]), connections ([`conn`]) and the
//! error type with its per-dialect [`error::Presenter`]. Knows no dialect:
//! a dialect (a folder beside this one) brings its table and its presenter.

pub mod admission;
pub mod auth;
pub mod body;
pub mod conn;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod state;
pub mod versions;

use std::time::Duration;

pub use auth::{is_loopback, Tokens};
pub use conn::ConnLimits;
pub use error::{HttpError, Presenter};
pub use state::{AppParts, AppState};

/// The largest request body accepted (413 above).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Default of `--max-in-flight`: node requests answered at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default of `--header-timeout` (nginx: 60 s; hyper: 30 s; a node sends
/// its header in one packet).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of `--body-timeout`: 1 MiB at 35 KB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of `--idle-timeout` (nginx's keep-alive: 75 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a shutdown waits for the requests being answered.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
