//! Webhooks: `POST /api/v1.0/hooks/git` makes the reconciler look at the
//! branch head now instead of at the next poll.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::AppState;

/// Wakes the reconciler. The body (a forge's push payload) is ignored on
/// purpose: the pass reads the newest head itself, so a forged or stale
/// payload cannot make slipway apply anything but the branch head.
pub async fn git(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    state.trigger.notify_one();
    tracing::info!("git webhook: reconcile triggered");
    (
        StatusCode::ACCEPTED,
        Json(super::status::success(
            StatusCode::ACCEPTED,
            "Accepted",
            "reconcile triggered",
        )),
    )
}
