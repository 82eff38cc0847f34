//! `/api/cameras`: list and get (any role), register, update and delete (admin).
//!
//! Another tenant's camera, or one outside the caller's sites, is a 404 exactly like a camera
//! that does not exist. Stream URLs may embed credentials: only admins see them; other roles get
//! the URL with its password replaced by `***`.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cloud_store::{Camera, CameraUpdate, NewCamera, Role};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Longest stream URL accepted.
const MAX_URL_LEN: usize = 2048;
/// Camera statuses a client may set.
const STATUSES: [&str; 4] = ["unknown", "online", "offline", "disabled"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cameras", get(list).post(create))
        .route("/api/cameras/{id}", get(show).put(update).delete(remove))
}

fn camera_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::validation("id", "must be a uuid"))
}

/// The camera as `caller` may see it.
fn shown(caller: &AuthUser, mut camera: Camera) -> Camera {
    if caller.role < Role::Admin {
        camera.stream_url = redact_url(&camera.stream_url);
    }
    camera
}

/// `rtsp://user:secret@host/x` → `rtsp://user:***@host/x`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[utoipa::path(get, path = "/api/cameras", tag = "cameras", security(("bearer" = [])), responses((status = 200, description = "the caller's cameras", body = Envelope<Vec<Camera>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Camera>>, ApiError> {
    let cameras = state.store.list_cameras(caller.tenant_id, caller.scope()).await?;
    Ok(ApiResponse(cameras.into_iter().map(|c| shown(&caller, c)).collect()))
}

#[utoipa::path(get, path = "/api/cameras/{id}", tag = "cameras", params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 200, description = "one camera", body = Envelope<Camera>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Camera>, ApiError> {
    let id = camera_id(id)?;
    let camera = state.store.camera(caller.tenant_id, caller.scope(), id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse(shown(&caller, camera)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCameraRequest {
    site_id: Uuid,
    #[serde(default)]
    zone_id: Option<Uuid>,
    name: String,
    stream_url: String,
}

#[utoipa::path(post, path = "/api/cameras", tag = "cameras", request_body = NewCameraRequest, security(("bearer" = [])), responses((status = 201, description = "registered (admin)", body = Envelope<Camera>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<NewCameraRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if caller.sites.as_ref().is_some_and(|own| !own.contains(&body.site_id)) {
        return Err(ApiError::validation("site_id", "unknown or not accessible"));
    }
    let name = check_text("name", &body.name, 200)?;
    let stream_url = check_stream_url(&body.stream_url)?;
    let new = NewCamera { site_id: body.site_id, zone_id: body.zone_id, name, stream_url };
    let camera = state.store.create_camera(caller.tenant_id, &new).await?;
    tracing::info!(camera = %camera.id, site = %camera.site_id, "Camera registered.");
    Ok((StatusCode::CREATED, ApiResponse(camera)).into_response())
}

/// Distinguishes an absent field from an explicit `null`.
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateCameraRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stream_url: Option<String>,
    /// `null` removes the camera from its zone.
    #[serde(default, deserialize_with = "double_option")]
    zone_id: Option<Option<Uuid>>,
    #[serde(default)]
    status: Option<String>,
}

#[utoipa::path(put, path = "/api/cameras/{id}", tag = "cameras", request_body = UpdateCameraRequest, params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 200, description = "updated (admin)", body = Envelope<Camera>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<UpdateCameraRequest>,
) -> Result<ApiResponse<Camera>, ApiError> {
    caller.require(Role::Admin)?;
    let id = camera_id(id)?;
    let name = body.name.as_deref().map(|n| check_text("name", n, 200)).transpose()?;
    let stream_url = body.stream_url.as_deref().map(check_stream_url).transpose()?;
    let status = body.status.as_deref().map(check_status).transpose()?;
    let update = CameraUpdate { name, stream_url, zone_id: body.zone_id, status };
    let camera =
        state.store.update_camera(caller.tenant_id, caller.scope(), id, &update).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse(camera))
}

#[utoipa::path(delete, path = "/api/cameras/{id}", tag = "cameras", params(("id" = Uuid, Path, description = "resource id")), security(("bearer" = [])), responses((status = 204, description = "deleted (admin)"), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 404, description = "no such resource in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let id = camera_id(id)?;
    if !state.store.delete_camera(caller.tenant_id, caller.scope(), id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(camera = %id, "Camera deleted.");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A trimmed, non-empty, bounded text without control characters.
pub fn check_text<'a>(field: &'static str, value: &'a str, max_chars: usize) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        Err(ApiError::validation(field, "must not be empty"))
    } else if value.chars().count() > max_chars {
        Err(ApiError::validation(field, format!("must be at most {max_chars} characters")))
    } else if value.chars().any(char::is_control) {
        Err(ApiError::validation(field, "must not contain control characters"))
    } else {
        Ok(value)
    }
}

fn check_stream_url(url: &str) -> Result<&str, ApiError> {
    let url = url.trim();
    let scheme_ok = ["rtsp://", "rtsps://", "http://", "https://"]
        .iter()
        .any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
    if !scheme_ok {
        return Err(ApiError::validation("stream_url", "must be an rtsp://, rtsps://, http:// or https:// URL"));
    }
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::validation("stream_url", "must be a URL of at most 2048 characters without spaces"));
    }
    Ok(url)
}

fn check_status(status: &str) -> Result<&str, ApiError> {
    STATUSES
        .iter()
        .find(|s| **s == status)
        .copied()
        .ok_or_else(|| ApiError::validation("status", format!("expected one of {}", STATUSES.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_checked() {
        assert_eq!(redact_url("rtsp://admin:secret@10.0.0.5:554/s1"), "rtsp://admin:***@10.0.0.5:554/s1");
        assert_eq!(redact_url("rtsp://10.0.0.5/s1"), "rtsp://10.0.0.5/s1");
        assert!(check_stream_url("rtsp://cam/1").is_ok());
        assert!(check_stream_url("file:///etc/passwd").is_err());
        assert!(check_stream_url("rtsp://cam/a b").is_err());
    }
}
