//! `GET /api/v1.0/revisions`: the history of revisions seen, newest first.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{AppState, HttpError};
use crate::design::Message;
use crate::services::{RevisionRecord, RevisionStatus};

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// At most this many revisions (default 100, max 1000).
    limit: Option<usize>,
}

/// One revision as the API shows it.
#[derive(Debug, Serialize)]
pub struct RevisionView {
    commit: String,
    tree: String,
    author: String,
    committer: String,
    signed_by: Option<String>,
    summary: String,
    committed_at: String,
    seen_at: String,
    status: RevisionStatus,
    messages: Vec<Message>,
}

impl From<RevisionRecord> for RevisionView {
    fn from(r: RevisionRecord) -> Self {
        RevisionView {
            commit: r.revision.commit,
            tree: r.revision.tree,
            author: r.revision.author,
            committer: r.revision.committer,
            signed_by: r.revision.signed_by,
            summary: r.revision.summary,
            committed_at: rfc3339(r.revision.committed_at),
            seen_at: rfc3339(r.seen_at),
            status: r.status,
            messages: r.messages,
        }
    }
}

/// Lists revisions newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RevisionView>>, HttpError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "InvalidLimit",
            format!("limit must be between 1 and 1000, got {limit}"),
        ));
    }
    let records = state.records(move |s| s.revisions(limit)).await?;
    Ok(Json(records.into_iter().map(RevisionView::from).collect()))
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-23T19:35:06Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm,
/// to avoid a date crate for one format.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_462_506), "2026-11-23T19:35:06Z");
    }
}
