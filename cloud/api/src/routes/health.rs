//! `GET /health`: liveness plus database reachability, for load balancers and the e2e harness.
//!
//! Answers 200 `{"status":"ok","database":"ok"}` when the database answers `SELECT 1` within
//! [`PING_TIMEOUT`], else 503 `{"status":"degraded","database":"unreachable"}`. Unauthenticated,
//! and deliberately not wrapped in the envelope so that probes can match it literally.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::chain;
use crate::state::AppState;

/// Path of the health endpoint.
pub const PATH: &str = "/health";
/// How long the database gets to answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(health))
}

#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "{\"status\":\"ok\",\"database\":\"ok\"}", body = serde_json::Value), (status = 503, description = "database unreachable", body = serde_json::Value)))]
async fn health(State(state): State<AppState>) -> Response {
    let error = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({ "status": "ok", "database": "ok" }))).into_response(),
        Ok(Err(e)) => chain(&e),
        Err(_) => format!("no answer within {PING_TIMEOUT:?}"),
    };
    tracing::warn!(%error, "Health check found the database unreachable.");
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "degraded", "database": "unreachable" }))).into_response()
}
