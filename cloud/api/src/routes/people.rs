//! `/api/people` and their credentials: who may open which door (the edge's access document is
//! built from these). Personal data: reading needs security, writing admin. PINs are write-only.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use cloud_store::{Credential, NewCredential, Person, Role};
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
        .route("/api/people", get(list).post(create))
        .route("/api/people/{id}", delete(remove))
        .route("/api/people/{id}/credentials", get(list_credentials).post(add_credential))
        .route("/api/credentials/{id}/revoke", post(revoke))
}

fn path_id(path: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    path.map(|Path(id)| id).map_err(|_| ApiError::validation("id", "must be a uuid"))
}

#[utoipa::path(get, path = "/api/people", tag = "people", security(("bearer" = [])), responses((status = 200, description = "the tenant's people (security)", body = Envelope<Vec<Person>>), (status = 403, description = "role too low", body = ErrorEnvelope)))]
async fn list(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<Vec<Person>>, ApiError> {
    caller.require(Role::Security)?;
    Ok(ApiResponse(state.store.list_people(caller.tenant_id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPersonRequest {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[utoipa::path(post, path = "/api/people", tag = "people", request_body = NewPersonRequest, security(("bearer" = [])), responses((status = 201, description = "added (admin)", body = Envelope<Person>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope)))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<NewPersonRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let name = check_text("name", &body.name, 200)?;
    if body.groups.len() > 100 {
        return Err(ApiError::validation("groups", "at most 100 groups"));
    }
    let mut groups = Vec::with_capacity(body.groups.len());
    for group in &body.groups {
        groups.push(check_text("groups", group, 100)?.to_owned());
    }
    let person = state.store.create_person(caller.tenant_id, name, &groups, body.enabled.unwrap_or(true)).await?;
    Ok((StatusCode::CREATED, ApiResponse(person)).into_response())
}

#[utoipa::path(delete, path = "/api/people/{id}", tag = "people", params(("id" = Uuid, Path, description = "person id")), security(("bearer" = [])), responses((status = 204, description = "removed with their credentials (admin)"), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such person in the tenant", body = ErrorEnvelope)))]
async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    if !state.store.delete_person(caller.tenant_id, path_id(id)?).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/people/{id}/credentials", tag = "people", params(("id" = Uuid, Path, description = "person id")), security(("bearer" = [])), responses((status = 200, description = "the person's credentials, without PINs (security)", body = Envelope<Vec<Credential>>), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such person in the tenant", body = ErrorEnvelope)))]
async fn list_credentials(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Vec<Credential>>, ApiError> {
    caller.require(Role::Security)?;
    let credentials = state.store.credentials(caller.tenant_id, path_id(id)?).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse(credentials))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCredentialRequest {
    /// Badge number as the reader reports it.
    #[serde(default)]
    badge: Option<String>,
    /// 4 to 12 digits; never returned.
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/api/people/{id}/credentials", tag = "people", request_body = NewCredentialRequest, params(("id" = Uuid, Path, description = "person id")), security(("bearer" = [])), responses((status = 201, description = "issued (admin)", body = Envelope<Credential>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such person in the tenant", body = ErrorEnvelope), (status = 409, description = "badge in use", body = ErrorEnvelope)))]
async fn add_credential(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
    JsonBody(body): JsonBody<NewCredentialRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let person = path_id(id)?;
    let badge = body.badge.as_deref().map(|b| check_text("badge", b, 64)).transpose()?;
    if let Some(pin) = &body.pin
        && (!(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::validation("pin", "must be 4 to 12 digits"));
    }
    if badge.is_none() && body.pin.is_none() {
        return Err(ApiError::validation("badge", "give a badge, a pin or both"));
    }
    if let (Some(from), Some(until)) = (body.valid_from, body.valid_until)
        && until <= from
    {
        return Err(ApiError::validation("valid_until", "must be after `valid_from`"));
    }
    let new =
        NewCredential { badge, pin: body.pin.as_deref(), valid_from: body.valid_from, valid_until: body.valid_until };
    let credential = state.store.add_credential(caller.tenant_id, person, &new).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, ApiResponse(credential)).into_response())
}

#[utoipa::path(post, path = "/api/credentials/{id}/revoke", tag = "people", params(("id" = Uuid, Path, description = "credential id")), security(("bearer" = [])), responses((status = 200, description = "revoked (security)", body = Envelope<Credential>), (status = 403, description = "role too low", body = ErrorEnvelope), (status = 404, description = "no such credential in the tenant", body = ErrorEnvelope)))]
async fn revoke(
    State(state): State<AppState>,
    caller: AuthUser,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<Credential>, ApiError> {
    // Security staff can revoke a lost badge at once; issuing stays with admins.
    caller.require(Role::Security)?;
    let credential = state.store.revoke_credential(caller.tenant_id, path_id(id)?).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse(credential))
}
