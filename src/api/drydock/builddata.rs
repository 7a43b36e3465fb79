//! Build data of nodes (Drydock's format):
//! `GET /api/v1.0/nodes/{hostname}/builddata[?latest=true]`. Boot-action
//! reports are recorded here with generator `bootaction:<name>`.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::revisions::rfc3339;
use super::{AppState, HttpError};

/// Query of the build data route.
#[derive(Debug, Deserialize)]
pub struct BuildDataQuery {
    /// Only the newest record of each generator.
    latest: Option<bool>,
}

/// `GET /api/v1.0/nodes/{hostname}/builddata[?latest=true]` in Drydock's
/// format. Boot-action reports appear with generator `bootaction:<name>`.
pub async fn builddata(
    State(state): State<AppState>,
    Path(host): Path<String>,
    Query(q): Query<BuildDataQuery>,
) -> Result<Json<Vec<Value>>, HttpError> {
    let latest = q.latest.unwrap_or(false);
    let records = state.records(move |s| s.build_data(&host, latest)).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| {
                json!({
                    "node_name": r.node,
                    "generator": r.generator,
                    "collected_date": rfc3339(r.collected_at),
                    "task_id": r.task_id,
                    "data_format": r.data_format,
                    "data_element": r.data_element,
                })
            })
            .collect(),
    ))
}
