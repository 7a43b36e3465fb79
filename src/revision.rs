//! A revision of the design repository, as the rest of slipway sees it.

use serde::{Deserialize, Serialize};

/// Identity and authorship of one commit (or of a plain directory read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// Full commit id (40 hex), or `dir:<sha256 of the files>` for a plain directory.
    pub commit: String,
    /// Tree id of the commit (empty for a directory).
    pub tree: String,
    pub author: String,
    pub committer: String,
    /// Signer of a signed commit, when the commit carries a signature.
    pub signed_by: Option<String>,
    /// First line of the commit message.
    pub summary: String,
    /// Commit time, seconds since the Unix epoch.
    pub committed_at: i64,
}
