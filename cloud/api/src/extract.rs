//! Authentication extractors.
//!
//! - [`EdgeAuth`]: an edge's bearer token (ingest).
//! - [`Tenant`]: a tenant API key (queries).
//! - [`AuthUser`]: a user's access token (JWT), with role and site scope.
//! - [`Reader`]: either of the last two, for read endpoints that API keys may use.
//!
//! All answer 401 before any other validation of the request, never reveal whether a credential
//! exists but is revoked, record the tenant on the request span, and never log the credential.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cloud_store::{EdgeIdentity, Role, SiteScope, TenantId};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Longer bearer strings are rejected without further work (tokens and keys are 64 characters,
/// access tokens under 2 KiB unless a user is scoped to very many sites).
const MAX_CREDENTIAL_LEN: usize = 16 * 1024;
/// Header with which a superuser acts on another tenant.
pub const ACT_AS_TENANT_HEADER: &str = "x-vigil-tenant";

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

/// A user authenticated by an access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthUser {
    pub user_id: Uuid,
    /// The tenant the user's account belongs to.
    pub home_tenant_id: TenantId,
    /// The tenant the request acts on: the user's own, or for a superuser the one named by
    /// the `X-Vigil-Tenant` header.
    pub tenant_id: TenantId,
    pub role: Role,
    /// Sites the user is limited to; `None` for all of the tenant's.
    pub sites: Option<Vec<Uuid>>,
}

impl AuthUser {
    /// `Ok` when the user's role is at least `role`, else 403.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role { Ok(()) } else { Err(ApiError::Forbidden { required: role }) }
    }

    /// The site scope for store queries.
    pub fn scope(&self) -> SiteScope<'_> {
        self.sites.as_deref()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        user_from_token(parts, state, token)
    }
}

fn user_from_token(parts: &Parts, state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let verified = state.auth.keys.verify(token).map_err(|error| {
        tracing::debug!(%error, "Access token refused.");
        ApiError::Unauthorized("invalid or expired access token")
    })?;
    let mut tenant_id = verified.tenant_id;
    if let Some(value) = parts.headers.get(ACT_AS_TENANT_HEADER) {
        if verified.role != Role::Superuser {
            return Err(ApiError::Forbidden { required: Role::Superuser });
        }
        let id = value.to_str().ok().and_then(|v| Uuid::parse_str(v.trim()).ok());
        tenant_id =
            TenantId::from_uuid(id.ok_or_else(|| ApiError::validation(ACT_AS_TENANT_HEADER, "must be a uuid"))?);
    }
    record_tenant(tenant_id);
    Ok(AuthUser {
        user_id: verified.user_id,
        home_tenant_id: verified.tenant_id,
        tenant_id,
        role: verified.role,
        sites: verified.sites,
    })
}

/// A caller of a read endpoint: a user's access token, or a tenant API key (which reads like a
/// viewer of every site).
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    pub tenant_id: TenantId,
    pub sites: Option<Vec<Uuid>>,
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credential = bearer(parts)?;
        // Access tokens are JWTs (three dot-separated parts); API keys are 64 hex characters.
        if credential.contains('.') {
            let user = user_from_token(parts, state, credential)?;
            return Ok(Reader { tenant_id: user.tenant_id, sites: user.sites });
        }
        let tenant = state
            .store
            .api_key_tenant(credential)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked api key"))?;
        record_tenant(tenant);
        Ok(Reader { tenant_id: tenant, sites: None })
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

/// A JSON request body whose rejections use the API's error envelope: a missing, unknown or
/// mistyped field is a `VALIDATION_ERROR` naming the field when serde says which.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::UnsupportedMediaType { expected: "application/json" })
            }
            Err(JsonRejection::JsonDataError(e)) => {
                let text = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
                Err(match serde_field(&text) {
                    Some(field) => ApiError::validation(field, text),
                    None => ApiError::validation("body", text),
                })
            }
            Err(_) => Err(ApiError::BadRequest { message: "the body is not valid JSON".into(), details: None }),
        }
    }
}

/// The field a serde error message names (`missing field `x``, `unknown field `x``, or a
/// path prefix `x: invalid type ..`).
fn serde_field(message: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.split(prefix).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    let (path, _) = message.split_once(": ")?;
    (!path.contains(' ') && !path.is_empty()).then(|| path.to_owned())
}
