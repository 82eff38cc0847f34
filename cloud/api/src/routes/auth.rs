//! `/api/auth/*` and `/.well-known/jwks.json`.
//!
//! | endpoint | who | what |
//! |---|---|---|
//! | `POST /api/auth/register` | admin (superuser: any role) | create a user in the caller's tenant |
//! | `POST /api/auth/login` | anyone | email + password → access token + refresh token |
//! | `GET /api/auth/me` | any user | the caller's account |
//! | `PUT /api/auth/me` | any user | change username, full name, password (needs the current one) |
//! | `POST /api/auth/logout` | anyone with a refresh token | revoke its session |
//! | `POST /api/auth/refresh` | anyone with a refresh token | rotate: new access + refresh token |
//! | `POST /api/auth/reset-password` | anyone | `{email}` queues a reset token; `{token, new_password}` uses it |
//! | `GET /.well-known/jwks.json` | anyone | public signing keys |
//!
//! Registration is not self-service: users are created by an admin of their tenant (the first
//! admin by the operator, `vigil-cloud create-user`). Self-service sign-up would let anyone
//! create tenants, and a name squatted that way would capture an operator's later provisioning.
//!
//! Every endpoint here except `me` and the JWKS is rate limited per client IP and account
//! ([`crate::auth::AuthConfig::auth_rate_per_minute`]) and per client IP across accounts (ten
//! times that), answering 429 with `Retry-After`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use cloud_store::{NewUser, Refreshed, Role, User, UserUpdate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Keys;
use crate::auth::password::check_new_password;
use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Longest email accepted (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Longest username or full name.
const MAX_NAME_CHARS: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me).put(update_me))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/reset-password", post(reset_password))
        .route("/.well-known/jwks.json", get(jwks))
}

/// The client's IP address: the peer's, or behind a trusted proxy the last `X-Forwarded-For`
/// entry (`unknown` when the server was not started with connect info).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.auth.config.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
        {
            return Ok(ClientIp(ip.to_string()));
        }
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientIp(ip.unwrap_or_else(|| "unknown".into())))
    }
}

pub(crate) fn limit(state: &AppState, endpoint: &str, ip: &ClientIp, account: &str) -> Result<(), ApiError> {
    // Bounded: the limiter keeps keys for a minute, and the account comes from the request body.
    let account: String = account.trim().chars().take(MAX_EMAIL_LEN).collect::<String>().to_lowercase();
    let key = format!("{endpoint}|{}|{account}", ip.0);
    let ip_key = format!("{endpoint}|{}", ip.0);
    state.auth.ip_limiter.check(&ip_key).and_then(|()| state.auth.limiter.check(&key)).map_err(|retry_after| {
        tracing::warn!(endpoint, ip = %ip.0, "Auth rate limit hit.");
        ApiError::TooManyRequests { retry_after }
    })
}

/// A user as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserJson {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    pub is_active: bool,
    pub is_superuser: bool,
    pub role: &'static str,
    pub site_ids: Option<Vec<Uuid>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserJson {
    fn from(u: User) -> Self {
        UserJson {
            id: u.id,
            tenant_id: u.tenant_id.as_uuid(),
            email: u.email,
            username: u.username,
            full_name: u.full_name,
            is_active: u.is_active,
            is_superuser: u.role == Role::Superuser,
            role: u.role.as_str(),
            site_ids: u.site_ids,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    username: String,
    password: String,
    #[serde(default)]
    full_name: Option<String>,
    role: String,
    #[serde(default)]
    site_ids: Option<Vec<Uuid>>,
}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest, security(("bearer" = [])), responses((status = 201, description = "user created in the caller's tenant (admin)", body = Envelope<UserJson>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 403, description = "role too low", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope),(status = 429, description = "rate limited; see Retry-After", body = ErrorEnvelope)))]
async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    caller: AuthUser,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    limit(&state, "register", &ip, &caller.user_id.to_string())?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        ApiError::validation("role", format!("expected one of {}", known.join(", ")))
    })?;
    if role > caller.role {
        return Err(ApiError::Forbidden { required: role });
    }
    let email = check_email(&body.email)?;
    let username = check_name("username", &body.username)?;
    let full_name = body.full_name.as_deref().map(|n| check_name("full_name", n)).transpose()?;
    check_new_password(&body.password, &email).map_err(|m| ApiError::validation("password", m))?;
    // A site-scoped admin may only create users within their own sites.
    let site_ids = match (&caller.sites, body.site_ids) {
        (None, requested) => requested,
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(requested)) if requested.iter().all(|s| own.contains(s)) => Some(requested),
        (Some(_), Some(_)) => return Err(ApiError::validation("site_ids", "unknown site")),
    };
    let password_hash = state.auth.hasher.hash(body.password).await?;
    let user = state
        .store
        .create_user(
            caller.tenant_id,
            &NewUser { email: &email, username, password_hash: &password_hash, full_name, role, site_ids },
        )
        .await?;
    tracing::info!(user = %user.id, role = %user.role, by = %caller.user_id, "User registered.");
    Ok((StatusCode::CREATED, ApiResponse(UserJson::from(user))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Tokens as served by login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: UserJson,
}

fn token_pair(state: &AppState, user: User, refresh: cloud_store::IssuedRefresh) -> Result<TokenPair, ApiError> {
    let ttl = state.auth.config.access_ttl;
    let claims = Keys::claims(user.id, user.tenant_id, user.role, user.site_ids.clone(), refresh.family_id, ttl);
    Ok(TokenPair {
        access_token: state.auth.keys.sign(&claims)?,
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
        refresh_token: refresh.token,
        refresh_expires_at: refresh.expires_at,
        user: user.into(),
    })
}

fn chrono_ttl(ttl: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7))
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest, responses((status = 200, description = "tokens", body = Envelope<TokenPair>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 429, description = "rate limited; see Retry-After", body = ErrorEnvelope)))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<ApiResponse<TokenPair>, ApiError> {
    limit(&state, "login", &ip, &body.email)?;
    if body.email.len() > MAX_EMAIL_LEN
        || body.email.contains('\0')
        || body.password.len() > crate::auth::password::MAX_PASSWORD_BYTES
    {
        return Err(ApiError::Unauthorized("invalid email or password"));
    }
    let found = state.store.user_for_login(&body.email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    // Always one Argon2 verification, so response time does not reveal whether the email exists.
    let ok = state.auth.hasher.verify(body.password, hash).await?;
    let user = match user {
        Some(user) if ok && user.is_active => user,
        _ => return Err(ApiError::Unauthorized("invalid email or password")),
    };
    let refresh =
        state.store.create_session(user.tenant_id, user.id, chrono_ttl(state.auth.config.refresh_ttl)).await?;
    tracing::info!(user = %user.id, "User logged in.");
    Ok(ApiResponse(token_pair(&state, user, refresh)?))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])), responses((status = 200, description = "the caller's account", body = Envelope<UserJson>), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn me(State(state): State<AppState>, caller: AuthUser) -> Result<ApiResponse<UserJson>, ApiError> {
    let user = own_account(&state, &caller).await?;
    Ok(ApiResponse(user.into()))
}

/// The caller's own account, looked up in the tenant of their token (not an acted-as tenant).
async fn own_account(state: &AppState, caller: &AuthUser) -> Result<User, ApiError> {
    state
        .store
        .user(caller.home_tenant_id, caller.user_id)
        .await?
        .ok_or(ApiError::Unauthorized("account no longer exists"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMeRequest {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    current_password: Option<String>,
}

#[utoipa::path(put, path = "/api/auth/me", tag = "auth", request_body = UpdateMeRequest, security(("bearer" = [])), responses((status = 200, description = "updated account", body = Envelope<UserJson>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 409, description = "name taken", body = ErrorEnvelope)))]
async fn update_me(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<UpdateMeRequest>,
) -> Result<ApiResponse<UserJson>, ApiError> {
    let tenant = caller.home_tenant_id;
    let username = body.username.as_deref().map(|n| check_name("username", n)).transpose()?;
    let full_name = body.full_name.as_deref().map(|n| check_name("full_name", n)).transpose()?;
    let mut password_hash = None;
    if let Some(password) = body.password {
        let current = body
            .current_password
            .ok_or_else(|| ApiError::validation("current_password", "required to change the password"))?;
        let account = own_account(&state, &caller).await?;
        let stored = state.store.password_hash(tenant, caller.user_id).await?;
        if !state.auth.hasher.verify(current, stored).await? {
            return Err(ApiError::validation("current_password", "does not match"));
        }
        check_new_password(&password, &account.email).map_err(|m| ApiError::validation("password", m))?;
        password_hash = Some(state.auth.hasher.hash(password).await?);
    }
    let update = UserUpdate { username, full_name, password_hash: password_hash.as_deref() };
    let user = state
        .store
        .update_user(tenant, caller.user_id, &update)
        .await?
        .ok_or(ApiError::Unauthorized("account no longer exists"))?;
    Ok(ApiResponse(user.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 200, description = "session revoked", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 429, description = "rate limited; see Retry-After", body = ErrorEnvelope)))]
async fn logout(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<ApiResponse<serde_json::Value>, ApiError> {
    limit(&state, "logout", &ip, "")?;
    state.store.revoke_session(&body.refresh_token).await?;
    Ok(ApiResponse(serde_json::json!({ "logged_out": true })))
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest, responses((status = 200, description = "rotated tokens", body = Envelope<TokenPair>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 429, description = "rate limited; see Retry-After", body = ErrorEnvelope)))]
async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<ApiResponse<TokenPair>, ApiError> {
    limit(&state, "refresh", &ip, "")?;
    match state.store.rotate_refresh(&body.refresh_token, chrono_ttl(state.auth.config.refresh_ttl)).await? {
        Refreshed::Rotated { user, next } => Ok(ApiResponse(token_pair(&state, user, next)?)),
        Refreshed::Reused { .. } => {
            Err(ApiError::Unauthorized("refresh token already used; the session has been revoked"))
        }
        Refreshed::Invalid => Err(ApiError::Unauthorized("invalid or expired refresh token")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/auth/reset-password", tag = "auth", request_body = ResetRequest, responses((status = 202, description = "reset requested (same answer for unknown emails)", body = Envelope<serde_json::Value>), (status = 200, description = "password set", body = Envelope<serde_json::Value>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 429, description = "rate limited; see Retry-After", body = ErrorEnvelope)))]
async fn reset_password(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    match (body.email, body.token, body.new_password) {
        (Some(email), None, None) => {
            limit(&state, "reset-password", &ip, &email)?;
            let email = check_email(&email)?;
            state.store.request_password_reset(&email, chrono_ttl(state.auth.config.reset_ttl)).await?;
            // The same answer whether or not the account exists.
            let body = serde_json::json!({ "message": "if the account exists, a reset link has been sent" });
            Ok((StatusCode::ACCEPTED, ApiResponse(body)).into_response())
        }
        (None, Some(token), Some(password)) => {
            limit(&state, "reset-password", &ip, "")?;
            check_new_password(&password, "").map_err(|m| ApiError::validation("new_password", m))?;
            let hash = state.auth.hasher.hash(password).await?;
            if !state.store.complete_password_reset(&token, &hash).await? {
                return Err(ApiError::validation("token", "invalid, used or expired reset token"));
            }
            Ok(ApiResponse(serde_json::json!({ "password_reset": true })).into_response())
        }
        _ => Err(ApiError::validation("body", "send either `email`, or `token` and `new_password`")),
    }
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, description = "JWKS (RFC 7517) of the RS256 signing keys", body = serde_json::Value)))]
async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.auth.keys.jwks())
}

fn check_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_LEN
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(ApiError::validation("email", "must be an email address")) }
}

fn check_name<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::validation(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(field, format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::validation(field, "must not contain control characters"));
    }
    Ok(value)
}
