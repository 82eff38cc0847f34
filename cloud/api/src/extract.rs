//! Authentication extractors.
//!
//! - [`EdgeAuth`]: an edge's bearer token (ingest).
//! - [`Tenant`]: a tenant API key (queries).
//!
//! Both answer 401 before any other validation of the request, never reveal whether a credential
//! exists but is revoked, record the tenant on the request span, and never log the credential.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cloud_store::{EdgeIdentity, TenantId};

use crate::error::ApiError;
use crate::state::AppState;

/// Longer bearer strings are rejected without a database lookup (ours are 64 characters).
const MAX_CREDENTIAL_LEN: usize = 512;

/// The authenticated edge behind `Authorization: Bearer <edge token>`.
#[derive(Debug, Clone, Copy)]
pub struct EdgeAuth(pub EdgeIdentity);

impl FromRequestParts<AppState> for EdgeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let edge =
            state.store.edge_by_token(token).await?.ok_or(ApiError::Unauthorized("unknown or revoked edge token"))?;
        record_tenant(edge.tenant_id);
        Ok(EdgeAuth(edge))
    }
}

/// The tenant behind `Authorization: Bearer <api key>`.
#[derive(Debug, Clone, Copy)]
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = bearer(parts)?;
        let tenant =
            state.store.api_key_tenant(key).await?.ok_or(ApiError::Unauthorized("unknown or revoked api key"))?;
        record_tenant(tenant);
        Ok(Tenant(tenant))
    }
}

/// The credential of an `Authorization: Bearer <credential>` header.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let (scheme, credential) = value.split_once(' ').ok_or(ApiError::Unauthorized("expected a Bearer credential"))?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(ApiError::Unauthorized("expected a Bearer credential"));
    }
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Err(ApiError::Unauthorized("unknown credential"));
    }
    Ok(credential)
}

fn record_tenant(tenant: TenantId) {
    tracing::Span::current().record("tenant", tracing::field::display(tenant));
}
