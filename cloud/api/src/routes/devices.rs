//! `/api/devices`: doors, readers, locks and other site devices.
//!
//! | endpoint | role |
//! |---|---|
//! | `GET /api/devices`, `GET /api/devices/{id}`, `GET /api/devices/{id}/status` | any |
//! | `POST /api/devices` (register), `PUT /api/devices/{id}/config` | admin |
//! | `POST /api/devices/{id}/command` | security |
//!
//! A command is accepted with 202 and queued for the site's edge, which executes it locally (the
//! cloud never reaches a device directly). Another tenant's device is a 404.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cloud_store::{DEVICE_KINDS, Device, DeviceCommand, NewDevice, Role};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::cameras::check_text;
use crate::state::AppState;

/// Commands a device accepts.
pub const COMMANDS: [&str; 5] = ["lock", "unlock", "open", "reboot", "refresh_status"];
/// Largest `config` or `params` document, serialized.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/devices", get(list).post(create))
        .route("/api/devices/{id}", get(show))
        .route("/api/devices/{id}/status", get(status))
        .route("/api/devices/{id}/config", put(configure))
        .route("/api/devices/{id}/command", post(command))
}

fn device_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::validation("id", "must be a uuid"))
}

#[utoipa::path(get, path = "/api/devices", tag = "devices", security(("bearer" = [])), responses((status = 200, description = "the caller's devices", body = Envelope<Vec<Device>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Device>>, ApiError> {
    Ok(ApiResponse(state.store.list_devices(caller.tenant_id, caller.scope()).await?))
}

#[utoipa::path(get, path = "/api/devices/{id}", tag = "devices", params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 200, description = "one device", body = Envelope<Device>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Device>, ApiError> {
    let id = device_id(id)?;
    Ok(ApiResponse(state.store.device(caller.tenant_id, caller.scope(), id).await?.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(get, path = "/api/devices/{id}/status", tag = "devices", params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 200, description = "status and queued commands", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn status(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    let id = device_id(id)?;
    let device = state.store.device(caller.tenant_id, caller.scope(), id).await?.ok_or(ApiError::NotFound)?;
    let queued = state.store.queued_device_commands(caller.tenant_id, id).await?;
    let recent = state.store.recent_device_commands(caller.tenant_id, id, 20).await?;
    Ok(ApiResponse(json!({
        "id": device.id,
        "status": device.status,
        "last_seen_at": device.last_seen_at,
        "queued_commands": queued,
        "recent_commands": recent,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDeviceRequest {
    site_id: Uuid,
    #[serde(default)]
    zone_id: Option<Uuid>,
    name: String,
    kind: String,
}

#[utoipa::path(post, path = "/api/devices", tag = "devices", request_body = NewDeviceRequest, security(("bearer" = [])), responses((status = 201, description = "registered (admin)", body = Envelope<Device>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<NewDeviceRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if caller.sites.as_ref().is_some_and(|own| !own.contains(&body.site_id)) {
        return Err(ApiError::validation("site_id", "unknown or not accessible"));
    }
    let name = check_text("name", &body.name, 200)?;
    if !DEVICE_KINDS.contains(&body.kind.as_str()) {
        return Err(ApiError::validation("kind", format!("expected one of {}", DEVICE_KINDS.join(", "))));
    }
    let new = NewDevice { site_id: body.site_id, zone_id: body.zone_id, name, kind: &body.kind };
    let device = state.store.create_device(caller.tenant_id, &new).await?;
    Ok((StatusCode::CREATED, ApiResponse(device)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfigRequest {
    config: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(put, path = "/api/devices/{id}/config", tag = "devices", request_body = ConfigRequest, params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 200, description = "configuration replaced (admin)", body = Envelope<Device>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn configure(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<ConfigRequest>,
) -> Result<ApiResponse<Device>, ApiError> {
    caller.require(Role::Admin)?;
    let id = device_id(id)?;
    let config = serde_json::Value::Object(body.config);
    if config.to_string().len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::validation("config", format!("must be at most {MAX_DOCUMENT_BYTES} bytes")));
    }
    let device = state
        .store
        .set_device_config(caller.tenant_id, caller.scope(), id, &config)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ApiResponse(device))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    command: String,
    #[serde(default)]
    params: Option<serde_json::Map<String, serde_json::Value>>,
    /// Seconds the command stays valid (1..=86400, default 300): the edge never executes it later.
    #[serde(default)]
    expires_in_secs: Option<u32>,
}

#[utoipa::path(post, path = "/api/devices/{id}/command", tag = "devices", request_body = CommandRequest, params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 202, description = "queued for the site's edge (security)", body = Envelope<DeviceCommand>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn command(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<CommandRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Security)?;
    let id = device_id(id)?;
    if !COMMANDS.contains(&body.command.as_str()) {
        return Err(ApiError::validation("command", format!("expected one of {}", COMMANDS.join(", "))));
    }
    let params = serde_json::Value::Object(body.params.unwrap_or_default());
    if params.to_string().len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::validation("params", format!("must be at most {MAX_DOCUMENT_BYTES} bytes")));
    }
    let ttl = body.expires_in_secs.unwrap_or(300);
    if !(1..=86_400).contains(&ttl) {
        return Err(ApiError::validation("expires_in_secs", "must be 1..=86400"));
    }
    let queued = state
        .store
        .queue_device_command(
            caller.tenant_id,
            caller.scope(),
            id,
            &cloud_store::NewCommand {
                command: &body.command,
                params: &params,
                requested_by: caller.user_id,
                ttl_secs: ttl as i32,
            },
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(device = %id, command = %queued.command, by = %caller.user_id, "Device command queued.");
    Ok((StatusCode::ACCEPTED, ApiResponse(queued)).into_response())
}
