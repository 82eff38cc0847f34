//! The edge's side of the control plane (edge token): it fetches the commands queued for its site
//! (long-poll) and reports what it did with each. The cloud never connects to an edge; edges behind
//! NAT and firewalls only make outbound HTTPS requests.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use cloud_store::{COMMAND_OUTCOMES, EdgeCommand, EdgeStatus};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, EdgeAuth, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Longest long-poll an edge may ask for.
pub const MAX_WAIT_SECS: u64 = 30;
const BATCH: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/edge/commands", get(commands))
        .route("/api/edge/commands/{id}/ack", post(ack))
        .route("/api/edge/heartbeat", post(heartbeat))
        .route("/api/edges", get(list_edges))
}

/// Largest health document an edge may send.
const MAX_HEALTH_BYTES: usize = 16 * 1024;

#[utoipa::path(post, path = "/api/edge/heartbeat", tag = "edge", request_body(content = Object, description = "the edge's health: version, uptime, cameras, spool depth per class, oldest unsent event, disk free"), security(("bearer" = [])), responses((status = 200, description = "recorded", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope)))]
async fn heartbeat(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    JsonBody(health): JsonBody<serde_json::Value>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    if !health.is_object() {
        return Err(ApiError::validation("health", "must be a JSON object"));
    }
    let text = health.to_string();
    if text.len() > MAX_HEALTH_BYTES || text.contains("\\u0000") {
        return Err(ApiError::validation("health", format!("at most {MAX_HEALTH_BYTES} bytes, no NUL")));
    }
    state.store.record_heartbeat(&edge, &health).await?;
    Ok(ApiResponse(serde_json::json!({ "edge_id": edge.edge_id })))
}

#[utoipa::path(get, path = "/api/edges", tag = "edge", security(("bearer" = [])), responses((status = 200, description = "the caller's edges with their latest heartbeat", body = Envelope<Vec<EdgeStatus>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list_edges(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<EdgeStatus>>, ApiError> {
    Ok(ApiResponse(state.store.list_edges(caller.tenant_id, caller.scope()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/api/edge/commands", tag = "edge", params(("wait" = Option<u64>, Query, description = "long-poll: seconds to wait for a command (0..=30, default 0)")), security(("bearer" = [])), responses((status = 200, description = "commands for the edge's site, oldest first (now delivered)", body = Envelope<Vec<EdgeCommand>>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope)))]
async fn commands(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<ApiResponse<Vec<EdgeCommand>>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::validation("wait", "must be an integer from 0 to 30"))?;
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::validation("wait", "must be an integer from 0 to 30"));
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let found = state.store.take_edge_commands(&edge, BATCH).await?;
        if !found.is_empty() || Instant::now() >= deadline {
            if !found.is_empty() {
                tracing::info!(edge = %edge.edge_id, commands = found.len(), "Commands delivered to the edge.");
            }
            return Ok(ApiResponse(found));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    /// `done`, `failed` or `expired`.
    status: String,
    /// What happened, for people (at most 2000 characters).
    #[serde(default)]
    result: Option<String>,
}

#[utoipa::path(post, path = "/api/edge/commands/{id}/ack", tag = "edge", request_body = AckRequest, params(("id" = Uuid, Path, description = "command id")), security(("bearer" = [])), responses((status = 200, description = "recorded", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope), (status = 404, description = "no such pending command for this edge's site", body = ErrorEnvelope)))]
async fn ack(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<AckRequest>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    if !COMMAND_OUTCOMES.contains(&body.status.as_str()) {
        return Err(ApiError::validation("status", format!("expected one of {}", COMMAND_OUTCOMES.join(", "))));
    }
    let result = body.result.unwrap_or_default();
    if result.chars().count() > 2000 || result.contains('\0') {
        return Err(ApiError::validation("result", "at most 2000 characters, no NUL"));
    }
    if !state.store.ack_edge_command(&edge, id, &body.status, &result).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(edge = %edge.edge_id, command = %id, status = %body.status, "Command acknowledged by the edge.");
    Ok(ApiResponse(serde_json::json!({ "id": id, "status": body.status })))
}
