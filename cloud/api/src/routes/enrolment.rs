//! Enrolment and revocation of edges.
//!
//! | endpoint | who | what |
//! |---|---|---|
//! | `POST /api/sites/{id}/claim-codes` | admin | a one-time claim code for the site (shown once) |
//! | `POST /api/edge/enrol` | anyone with a code (rate limited) | code → a new edge and its token |
//! | `DELETE /api/edges/{id}` | admin | revoke the edge: its next request is a 401 |
//!
//! The enrol endpoint has no credential but the code: it answers one and the same 401 for an
//! unknown, expired or used code, and counts attempts per client IP like the login endpoint.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use cloud_store::{ClaimCode, EnrolRequest, MAX_CLAIM_TTL_HOURS, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::auth::{ClientIp, limit};
use crate::routes::cameras::check_text;
use crate::state::AppState;

/// Lifetime of a claim code unless the admin asks for another.
pub const DEFAULT_CLAIM_TTL_HOURS: u32 = 24;
/// Largest `hardware` / `version` text accepted from an enrolling edge.
const MAX_INFO_CHARS: usize = 200;
/// The one answer to a code that does not enrol anything.
const BAD_CODE: &str = "invalid, expired or already used claim code";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sites/{id}/claim-codes", post(create_claim_code))
        .route("/api/edge/enrol", post(enrol))
        .route("/api/edges/{id}", delete(revoke))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClaimCodeRequest {
    /// Hours the code stays valid (1..=168, default 24).
    #[serde(default)]
    ttl_hours: Option<u32>,
}

#[utoipa::path(post, path = "/api/sites/{id}/claim-codes", tag = "edge", params(("id" = Uuid, Path, description = "site id")), request_body(content = ClaimCodeRequest, description = "optional: no body, or `{}`, for the defaults"), security(("bearer" = [])), responses((status = 201, description = "a one-time claim code (admin); the code is shown only here", body = Envelope<ClaimCode>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such site", body = ErrorEnvelope)))]
async fn create_claim_code(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let Path(site_id) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    let request: ClaimCodeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ClaimCodeRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::validation("body", e.to_string()))?
    };
    let ttl = request.ttl_hours.unwrap_or(DEFAULT_CLAIM_TTL_HOURS);
    if ttl == 0 || ttl > MAX_CLAIM_TTL_HOURS {
        return Err(ApiError::validation("ttl_hours", format!("must be 1..={MAX_CLAIM_TTL_HOURS}")));
    }
    let code = state
        .store
        .create_claim_code(caller.tenant_id, caller.scope(), site_id, Some(caller.user_id), ttl)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(no_store((StatusCode::CREATED, ApiResponse(code)).into_response()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EnrolBody {
    /// The claim code, e.g. `ABCD-EFGH-JKMN` (case, dashes and spaces do not matter).
    code: String,
    /// The edge's name at the site (unique there); default `edge-<id prefix>`.
    #[serde(default)]
    name: Option<String>,
    /// What the box is (e.g. `x86_64 linux, 4 cores`).
    #[serde(default)]
    hardware: Option<String>,
    /// The edge software's version.
    #[serde(default)]
    version: Option<String>,
}

/// A new edge's identity and credential (served once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EnrolledJson {
    edge_id: Uuid,
    tenant_id: Uuid,
    site_id: Uuid,
    name: String,
    /// The edge's bearer token for every later request (shown only here).
    token: String,
    /// Base URL of the cloud's edge API when the operator configured one (`--public-url`); else
    /// `null` and the edge keeps the address it enrolled with.
    api_url: Option<String>,
}

#[utoipa::path(post, path = "/api/edge/enrol", tag = "edge", request_body = EnrolBody, responses((status = 201, description = "the edge exists; its token is served only here", body = Envelope<EnrolledJson>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "invalid, expired or already used claim code", body = ErrorEnvelope), (status = 409, description = "an edge of that name exists at the site", body = ErrorEnvelope), (status = 429, description = "too many attempts from this address", body = ErrorEnvelope)))]
async fn enrol(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(body): JsonBody<EnrolBody>,
) -> Result<Response, ApiError> {
    limit(&state, "enrol", &ip, "")?;
    let name = body.name.as_deref().map(|n| check_text("name", n, 200)).transpose()?;
    let mut info = serde_json::Map::new();
    for (field, value) in [("hardware", &body.hardware), ("version", &body.version)] {
        if let Some(value) = value {
            info.insert(field.to_owned(), check_text(field, value, MAX_INFO_CHARS)?.into());
        }
    }
    let request = EnrolRequest { name, info: serde_json::Value::Object(info) };
    let Some(enrolled) = state.store.enrol_edge(&body.code, &request).await? else {
        tracing::warn!(ip = %ip.0, "Enrolment refused: {BAD_CODE}.");
        return Err(ApiError::Unauthorized(BAD_CODE));
    };
    let reply = EnrolledJson {
        edge_id: enrolled.edge_id,
        tenant_id: enrolled.tenant_id.as_uuid(),
        site_id: enrolled.site_id,
        name: enrolled.name,
        token: enrolled.edge_token,
        api_url: state.public_url.as_deref().map(str::to_owned),
    };
    Ok(no_store((StatusCode::CREATED, ApiResponse(reply)).into_response()))
}

#[utoipa::path(delete, path = "/api/edges/{id}", tag = "edge", params(("id" = Uuid, Path, description = "edge id")), security(("bearer" = [])), responses((status = 200, description = "revoked (admin): the edge's token authenticates nothing from now on", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such active edge", body = ErrorEnvelope)))]
async fn revoke(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    let Path(id) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    if !state.store.revoke_edge_in(caller.tenant_id, caller.scope(), id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(ApiResponse(serde_json::json!({ "id": id, "revoked": true })))
}

/// A response carrying a secret must not be cached anywhere.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
