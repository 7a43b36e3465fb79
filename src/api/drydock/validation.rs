//! `POST /api/v1.0/validatedesign`: validates the design a reference names
//! and answers Drydock's Status object (200 valid, 400 invalid).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::body::{bad_request, blocking, parse_json, RawBody};
use super::read_design;
use super::{AppState, HttpError};
use crate::design::Status;

/// Drydock's request body; only `href` is required.
#[derive(Debug, Deserialize)]
pub struct ValidateRequest {
    /// `design` in Drydock's clients; not checked.
    #[allow(dead_code)]
    rel: Option<String>,
    /// The design reference.
    href: Option<String>,
    /// `application/x-yaml` in Drydock's clients; not checked.
    #[allow(dead_code)]
    #[serde(rename = "type")]
    media_type: Option<String>,
}

/// Validates the design `href` names.
pub async fn validate(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Status>), HttpError> {
    let req: ValidateRequest = parse_json(&body)?;
    let href = req
        .href
        .ok_or_else(|| bad_request("missing required field `href` (the design reference)"))?;
    let src = state.design.clone();
    let status = blocking(move || {
        let files = read_design(&src, &href)?;
        Ok(crate::validate(&files).status())
    })
    .await?;
    let code = if status.code == 200 {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((code, Json(status)))
}
