//! `POST /api/streams/start`, `POST /api/streams/stop` (security) and `GET /api/streams/status`
//! (any role). Start and stop are queued for the camera's site edge (202), which owns the video
//! pipeline; status reports each camera's last known state and the latest request.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloud_store::{Role, StreamCommand, StreamStatus};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/streams/start", post(start))
        .route("/api/streams/stop", post(stop))
        .route("/api/streams/status", get(status))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StreamRequest {
    camera_id: Uuid,
}

async fn queue(state: &AppState, caller: &AuthUser, camera: Uuid, action: &str) -> Result<Response, ApiError> {
    caller.require(Role::Security)?;
    let queued = state
        .store
        .queue_stream_command(caller.tenant_id, caller.scope(), camera, action, caller.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(camera = %camera, action, by = %caller.user_id, "Stream request queued.");
    Ok((StatusCode::ACCEPTED, ApiResponse(queued)).into_response())
}

#[utoipa::path(post, path = "/api/streams/start", tag = "streams", request_body = StreamRequest, security(("bearer" = [])), responses((status = 202, description = "queued for the site's edge (security)", body = Envelope<StreamCommand>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such camera in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn start(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<StreamRequest>,
) -> Result<Response, ApiError> {
    queue(&state, &caller, body.camera_id, "start").await
}

#[utoipa::path(post, path = "/api/streams/stop", tag = "streams", request_body = StreamRequest, security(("bearer" = [])), responses((status = 202, description = "queued for the site's edge (security)", body = Envelope<StreamCommand>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such camera in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn stop(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<StreamRequest>,
) -> Result<Response, ApiError> {
    queue(&state, &caller, body.camera_id, "stop").await
}

#[utoipa::path(get, path = "/api/streams/status", tag = "streams", security(("bearer" = [])), responses((status = 200, description = "per-camera stream state", body = Envelope<Vec<StreamStatus>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn status(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<StreamStatus>>, ApiError> {
    Ok(ApiResponse(state.store.stream_statuses(caller.tenant_id, caller.scope()).await?))
}
