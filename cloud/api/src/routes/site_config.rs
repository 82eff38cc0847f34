//! The down link: each site's versioned configuration document (`edge-siteconfig`), composed from
//! the site's access configuration and the tenant's people, credentials and rules.
//!
//! People see it (`GET /api/sites/{id}/config`, PINs redacted) with which version each of the
//! site's edges runs, and administrators set the site's access configuration
//! (`PUT /api/sites/{id}/config/access`). The site's edge long-polls `GET /api/edge/config?after=N`
//! for a version newer than the one it runs (204 when there is none before `wait` runs out, which
//! also tells the edge its configuration is still current) and reports what it did with it
//! (`POST /api/edge/config/report`). The cloud never connects to an edge.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use cloud_store::{Role, SiteConfigParts, SitePart};
use edge_siteconfig::{ConfigReport, SiteConfig, Sources};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, EdgeAuth, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::edge::MAX_WAIT_SECS;
use crate::state::AppState;

/// Largest part of a site's configuration an administrator may set.
const MAX_PART_BYTES: usize = 1 << 20;
/// How often a waiting edge's site version is checked.
const POLL: Duration = Duration::from_millis(500);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sites/{id}/config", get(show))
        .route("/api/sites/{id}/config/access", put(set_access))
        .route("/api/sites/{id}/config/cameras", put(set_cameras))
        .route("/api/sites/{id}/config/devices", put(set_devices))
        .route("/api/edge/config", get(edge_fetch))
        .route("/api/edge/config/report", post(edge_report))
}

fn compose(site: Uuid, parts: &SiteConfigParts, issued_at: DateTime<Utc>) -> SiteConfig {
    edge_siteconfig::compose(&Sources {
        site,
        version: u64::try_from(parts.version).unwrap_or(0),
        issued_at,
        timezone: &parts.timezone,
        access: parts.access.as_ref(),
        people: &parts.people,
        credentials: &parts.credentials,
        rules: &parts.rules,
        cameras: parts.cameras.as_ref(),
        devices: parts.devices.as_ref(),
    })
}

/// One edge of the site and the configuration it runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EdgeConfigState {
    id: Uuid,
    name: String,
    /// The version it reports running (`None`: no report yet).
    version: Option<i64>,
    in_sync: bool,
    /// `{version, problems}` when it refused the latest version it was offered.
    #[schema(value_type = Option<Object>)]
    problems: Option<serde_json::Value>,
}

/// `GET /api/sites/{id}/config`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SiteConfigView {
    version: i64,
    /// The document edges receive, PINs redacted.
    #[schema(value_type = Object)]
    document: SiteConfig,
    /// Why an edge would refuse this version (empty when it is acceptable).
    problems: Vec<String>,
    edges: Vec<EdgeConfigState>,
}

#[utoipa::path(get, path = "/api/sites/{id}/config", tag = "sites", params(("id" = Uuid, Path, description = "site id")), security(("bearer" = [])), responses((status = 200, description = "the site's configuration document (PINs redacted), its problems, and the version each edge runs", body = Envelope<SiteConfigView>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 404, description = "no such site", body = ErrorEnvelope)))]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<SiteConfigView>, ApiError> {
    let Path(site) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    let parts =
        state.store.site_config_parts(caller.tenant_id, site, caller.scope()).await?.ok_or(ApiError::NotFound)?;
    let document = compose(site, &parts, Utc::now());
    let problems = edge_siteconfig::check(&document).err().unwrap_or_default();
    let edges = state
        .store
        .list_edges(caller.tenant_id, Some(&[site]))
        .await?
        .into_iter()
        .filter(|e| e.revoked_at.is_none())
        .map(|e| EdgeConfigState {
            id: e.id,
            name: e.name,
            version: e.config_version,
            in_sync: e.config_version == Some(parts.version),
            problems: e.config_problems,
        })
        .collect();
    Ok(ApiResponse(SiteConfigView {
        version: parts.version,
        document: edge_siteconfig::redact(document),
        problems,
        edges,
    }))
}

#[utoipa::path(put, path = "/api/sites/{id}/config/access", tag = "sites", params(("id" = Uuid, Path, description = "site id")), request_body(content = Object, description = "the site's access configuration: doors, areas, groups, schedules, holidays, degraded, max_offline_hours, lockdown_override_groups (edge-access site document without people, credentials, schema, revision, issued_at and timezone)"), security(("bearer" = [])), responses((status = 200, description = "set (admin); the site's new configuration version", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field (every problem in the message)", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such site", body = ErrorEnvelope)))]
async fn set_access(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(access): JsonBody<serde_json::Value>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    edge_siteconfig::check_access_input(&access).map_err(|p| ApiError::validation("access", p.join("; ")))?;
    set_part(&state, &caller, id, SitePart::Access, access).await
}

#[utoipa::path(put, path = "/api/sites/{id}/config/cameras", tag = "sites", params(("id" = Uuid, Path, description = "site id")), request_body(content = Object, description = "each camera's analytics: [{id, motion, filters, lines, zones}] with the keys of the edge file's [[cameras]] (coordinates are fractions of the picture); connection settings stay on the site"), security(("bearer" = [])), responses((status = 200, description = "set (admin); the site's new configuration version", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field (every problem in the message)", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such site", body = ErrorEnvelope)))]
async fn set_cameras(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(cameras): JsonBody<serde_json::Value>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    if !cameras.is_array() {
        return Err(ApiError::validation("cameras", "must be a JSON array of cameras"));
    }
    set_part(&state, &caller, id, SitePart::Cameras, cameras).await
}

#[utoipa::path(put, path = "/api/sites/{id}/config/devices", tag = "sites", params(("id" = Uuid, Path, description = "site id")), request_body(content = Object, description = "the site's device registry, as the edge's devices file: {site, devices: [{id, zone, kind, password_sha256, config?, firmware?}]} (password hashes are never served back)"), security(("bearer" = [])), responses((status = 200, description = "set (admin); the site's new configuration version", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field (every problem in the message)", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such site", body = ErrorEnvelope)))]
async fn set_devices(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(devices): JsonBody<serde_json::Value>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    if !devices.is_object() {
        return Err(ApiError::validation("devices", "must be a JSON object {site, devices}"));
    }
    set_part(&state, &caller, id, SitePart::Devices, devices).await
}

/// Checks the document the site's edges would get with `value` as `part`, then stores it.
async fn set_part(
    state: &AppState,
    caller: &AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    part: SitePart,
    value: serde_json::Value,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    let field = match part {
        SitePart::Access => "access",
        SitePart::Cameras => "cameras",
        SitePart::Devices => "devices",
    };
    let Path(site) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    if caller.sites.as_ref().is_some_and(|own| !own.contains(&site)) {
        return Err(ApiError::NotFound);
    }
    let text = value.to_string();
    if text.len() > MAX_PART_BYTES || text.contains("\\u0000") {
        return Err(ApiError::validation(field, format!("at most {MAX_PART_BYTES} bytes, no NUL")));
    }
    let mut parts =
        state.store.site_config_parts(caller.tenant_id, site, caller.scope()).await?.ok_or(ApiError::NotFound)?;
    match part {
        SitePart::Access => parts.access = Some(value.clone()),
        SitePart::Cameras => {
            parts.cameras = Some(value.clone());
            check_camera_ids(state, caller, site, &value).await?;
        }
        SitePart::Devices => parts.devices = Some(value.clone()),
    }
    let prefix = format!("{field}: ");
    let problems = edge_siteconfig::check(&compose(site, &parts, Utc::now())).err().unwrap_or_default();
    let own: Vec<&str> = problems.iter().filter_map(|p| p.strip_prefix(prefix.as_str())).collect();
    if !own.is_empty() {
        return Err(ApiError::validation(field, own.join("; ")));
    }
    let version = state
        .store
        .set_site_config_part(caller.tenant_id, site, part, &value, Some(caller.user_id))
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(%site, part = field, version, by = %caller.user_id, "Site configuration set.");
    Ok(ApiResponse(serde_json::json!({ "site_id": site, "version": version })))
}

/// Camera ids must be cameras the site's edges have (as their heartbeats report them), so a typo
/// cannot make the edges refuse a whole version (doors included). Not checked before any edge has
/// reported its cameras.
async fn check_camera_ids(
    state: &AppState,
    caller: &AuthUser,
    site: Uuid,
    cameras: &serde_json::Value,
) -> Result<(), ApiError> {
    let edges = state.store.list_edges(caller.tenant_id, Some(&[site])).await?;
    let reported: Vec<&str> = edges
        .iter()
        .filter(|e| e.revoked_at.is_none())
        .filter_map(|e| e.health.as_ref()?.get("cameras")?.as_array())
        .flatten()
        .filter_map(|c| c.get("id")?.as_str())
        .collect();
    if edges.iter().all(|e| e.health.is_none()) {
        return Ok(());
    }
    let unknown: Vec<String> = cameras
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id")?.as_str())
        .filter(|id| !reported.contains(id))
        .map(|id| format!("no camera {id:?} at this site's edges (they have: {})", reported.join(", ")))
        .collect();
    if unknown.is_empty() { Ok(()) } else { Err(ApiError::validation("cameras", unknown.join("; "))) }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchQuery {
    /// The version the edge runs (or refused last): only a newer one is returned.
    after: Option<u64>,
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/api/edge/config", tag = "edge", params(("after" = Option<u64>, Query, description = "the version the edge has: only a newer one is returned (default 0)"), ("wait" = Option<u64>, Query, description = "long-poll: seconds to wait for a newer version (0..=30, default 0)")), security(("bearer" = [])), responses((status = 200, description = "a newer configuration document for the edge's site (PINs included)", body = Envelope<serde_json::Value>), (status = 204, description = "the edge's version is still current"), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope)))]
async fn edge_fetch(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    query: Result<Query<FetchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::validation("after", "after and wait must be non-negative integers"))?;
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::validation("wait", "must be an integer from 0 to 30"));
    }
    let after = i64::try_from(q.after.unwrap_or(0)).map_err(|_| ApiError::validation("after", "too large"))?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let version = state.store.site_config_version(&edge).await?.ok_or(ApiError::NotFound)?;
        if version > after {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
    let parts = state.store.site_config_parts(edge.tenant_id, edge.site_id, None).await?.ok_or(ApiError::NotFound)?;
    let document = compose(edge.site_id, &parts, Utc::now());
    tracing::info!(edge = %edge.edge_id, version = document.version, "Configuration sent to the edge.");
    Ok(ApiResponse(document).into_response())
}

#[utoipa::path(post, path = "/api/edge/config/report", tag = "edge", request_body(content = Object, description = "{version, applied, problems}: what the edge did with a configuration version"), security(("bearer" = [])), responses((status = 200, description = "recorded", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope)))]
async fn edge_report(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    JsonBody(report): JsonBody<ConfigReport>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    let version = i64::try_from(report.version).map_err(|_| ApiError::validation("version", "too large"))?;
    if report.problems.len() > 200 || report.problems.iter().any(|p| p.chars().count() > 2000 || p.contains('\0')) {
        return Err(ApiError::validation("problems", "at most 200 problems of 2000 characters, no NUL"));
    }
    if report.applied && !report.problems.is_empty() {
        return Err(ApiError::validation("problems", "must be empty when applied"));
    }
    let problems = (!report.applied).then(|| serde_json::json!(report.problems));
    state.store.record_config_report(&edge, version, problems.as_ref()).await?;
    if report.applied {
        tracing::info!(edge = %edge.edge_id, version, "The edge runs this configuration.");
    } else {
        tracing::warn!(edge = %edge.edge_id, version, problems = report.problems.len(), "The edge refused a configuration.");
    }
    Ok(ApiResponse(serde_json::json!({ "edge_id": edge.edge_id, "version": version, "applied": report.applied })))
}
