//! `GET /api/sites`, `GET|POST /api/zones`, `GET /api/sensors`: the tenant's places and sensors,
//! limited to the caller's sites. Reading needs any role; creating a zone needs admin.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cloud_store::{Role, Sensor, Site, Zone};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::cameras::check_text;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sites", get(list_sites))
        .route("/api/zones", get(list_zones).post(create_zone))
        .route("/api/sensors", get(list_sensors))
}

#[utoipa::path(get, path = "/api/sites", tag = "sites", security(("bearer" = [])), responses((status = 200, description = "the caller's sites", body = Envelope<Vec<Site>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list_sites(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Site>>, ApiError> {
    Ok(ApiResponse(state.store.list_sites(caller.tenant_id, caller.scope()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneFilter {
    site: Option<Uuid>,
}

#[utoipa::path(get, path = "/api/zones", tag = "sites", params(("site" = Option<Uuid>, Query, description = "only this site's zones")), security(("bearer" = [])), responses((status = 200, description = "zones", body = Envelope<Vec<Zone>>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list_zones(
    State(state): State<AppState>,
    caller: AuthUser,
    filter: Result<Query<ZoneFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiResponse<Vec<Zone>>, ApiError> {
    let Query(filter) = filter.map_err(|_| ApiError::validation("site", "must be a uuid (the only parameter)"))?;
    Ok(ApiResponse(state.store.list_zones(caller.tenant_id, caller.scope(), filter.site).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewZoneRequest {
    site_id: Uuid,
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[utoipa::path(post, path = "/api/zones", tag = "sites", request_body = NewZoneRequest, security(("bearer" = [])), responses((status = 201, description = "created (admin)", body = Envelope<Zone>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn create_zone(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<NewZoneRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if caller.sites.as_ref().is_some_and(|own| !own.contains(&body.site_id)) {
        return Err(ApiError::validation("site_id", "unknown or not accessible"));
    }
    let name = check_text("name", &body.name, 200)?;
    let kind = check_text("type", body.kind.as_deref().unwrap_or("general"), 64)?;
    let zone = state.store.create_zone(caller.tenant_id, body.site_id, name, kind).await?;
    Ok((StatusCode::CREATED, ApiResponse(zone)).into_response())
}

#[utoipa::path(get, path = "/api/sensors", tag = "sites", security(("bearer" = [])), responses((status = 200, description = "sensors", body = Envelope<Vec<Sensor>>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list_sensors(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Sensor>>, ApiError> {
    Ok(ApiResponse(state.store.list_sensors(caller.tenant_id, caller.scope()).await?))
}
