//! The one error type of the HTTP API and its JSON envelope.
//!
//! Every failure leaves as
//! `{"success":false,"error":{"code","message","details"?},"timestamp"}` with a stable `code`.
//!
//! Invariant: internal error text (database messages, source chains) never reaches a response.
//! Server-side failures put the error into the response extensions instead; [`log_errors`], which
//! runs inside the request's trace span, logs it there.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloud_store::StoreError;
use serde_json::{Value, json};

use crate::response::now_rfc3339;

/// Everything a handler or extractor can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `VALIDATION_ERROR`: a request parameter is invalid; `field` names it.
    Validation { field: Cow<'static, str>, message: String },
    /// 400 `BAD_REQUEST`: the request body cannot be understood.
    BadRequest { message: Cow<'static, str>, details: Option<Value> },
    /// 401 `UNAUTHORIZED`: missing, malformed, unknown or revoked credential.
    Unauthorized(&'static str),
    /// 403 `FORBIDDEN`: authenticated, but the role is below `required`.
    Forbidden { required: cloud_store::Role },
    /// 409 `CONFLICT`: something with the same `field` exists.
    Conflict { field: Cow<'static, str> },
    /// 429 `RATE_LIMITED`: too many requests; retry after the given time (also `Retry-After`).
    TooManyRequests { retry_after: std::time::Duration },
    /// 404 `NOT_FOUND`: no such route or resource (also another tenant's resource).
    NotFound,
    /// 405 `METHOD_NOT_ALLOWED`.
    MethodNotAllowed,
    /// 413 `PAYLOAD_TOO_LARGE`: body or batch over a limit.
    PayloadTooLarge { message: Cow<'static, str>, details: Value },
    /// 415 `UNSUPPORTED_MEDIA_TYPE`: wrong `Content-Type`.
    UnsupportedMediaType { expected: &'static str },
    /// 422 `UNSUPPORTED_SCHEMA`: a wire schema version this build does not speak.
    UnsupportedSchema { got: u16 },
    /// 503 `SERVICE_UNAVAILABLE`: a dependency other than the database (media storage) is down
    /// or not configured; the message says which.
    Unavailable(&'static str),
    /// 409 `INCOMPLETE`: an upload cannot complete while parts are missing (`details.missing`).
    Incomplete { missing: Vec<u64> },
    /// 422 `MEDIA_MISMATCH`: the assembled object differs from what was announced.
    Mismatch { bytes: u64, sha256: String },
    /// 503 `SERVICE_UNAVAILABLE` or 500 `INTERNAL_ERROR`, depending on the store error; 400 for
    /// [`StoreError::Invalid`].
    Store(StoreError),
    /// 500 `INTERNAL_ERROR`.
    Internal(anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store(error)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

impl ApiError {
    /// A [`ApiError::Validation`] for `field`.
    pub fn validation(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError::Validation { field: field.into(), message: message.into() }
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Option<Value>) {
        match self {
            ApiError::Validation { field, message } => (
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("invalid `{field}`: {message}"),
                Some(json!({ "field": field })),
            ),
            ApiError::BadRequest { message, details } => {
                (StatusCode::BAD_REQUEST, "BAD_REQUEST", message.to_string(), details.clone())
            }
            ApiError::Unauthorized(message) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", (*message).to_owned(), None),
            ApiError::Forbidden { required } => (
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this action needs the {required} role or higher"),
                Some(json!({ "required_role": required.as_str() })),
            ),
            ApiError::Conflict { field } => conflict(field),
            ApiError::Store(StoreError::Conflict { field }) => conflict(field),
            ApiError::TooManyRequests { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests; retry later".to_owned(),
                Some(json!({ "retry_after_seconds": retry_after_secs(*retry_after) })),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "no such resource".to_owned(), None),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed here".to_owned(), None)
            }
            ApiError::PayloadTooLarge { message, details } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message.to_string(), Some(details.clone()))
            }
            ApiError::UnsupportedMediaType { expected } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("Content-Type must be {expected}"),
                Some(json!({ "expected": expected })),
            ),
            ApiError::UnsupportedSchema { got } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNSUPPORTED_SCHEMA",
                format!("unsupported schema version {got}"),
                Some(json!({
                    "got": got,
                    "supported": (vigil_proto::MIN_SCHEMA_VERSION..=vigil_proto::SCHEMA_VERSION).collect::<Vec<_>>(),
                })),
            ),
            ApiError::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", (*message).to_owned(), None)
            }
            ApiError::Incomplete { missing } => (
                StatusCode::CONFLICT,
                "INCOMPLETE",
                format!("{} part(s) missing", missing.len()),
                Some(json!({ "missing": missing })),
            ),
            ApiError::Mismatch { bytes, sha256 } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "MEDIA_MISMATCH",
                "the stored object's size or sha256 differs from the announce; upload it again".to_owned(),
                Some(json!({ "bytes": bytes, "sha256": sha256 })),
            ),
            ApiError::Store(StoreError::Invalid { field, reason }) => (
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                format!("invalid `{field}`: {reason}"),
                Some(json!({ "field": field })),
            ),
            ApiError::Store(e) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "the database is unavailable; retry later".to_owned(),
                None,
            ),
            ApiError::Store(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error".to_owned(), None)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, details) = self.parts();
        let mut error = json!({ "code": code, "message": message });
        if let Some(details) = details {
            error["details"] = details;
        }
        let body = json!({ "success": false, "error": error, "timestamp": now_rfc3339() });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::TooManyRequests { retry_after } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(*retry_after)));
        }
        let cause = match self {
            ApiError::Store(e) if status.is_server_error() => Some(chain(&e)),
            ApiError::Internal(e) => Some(chain(&*e)),
            _ => None,
        };
        if let Some(cause) = cause {
            response.extensions_mut().insert(ServerFailure(Arc::from(cause)));
        }
        response
    }
}

fn conflict(field: &str) -> (StatusCode, &'static str, String, Option<Value>) {
    (StatusCode::CONFLICT, "CONFLICT", format!("`{field}` is already taken"), Some(json!({ "field": field })))
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_secs(d: std::time::Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The hidden cause of a 5xx response, for [`log_errors`].
#[derive(Debug, Clone)]
struct ServerFailure(Arc<str>);

/// Middleware: logs the cause of server-side failures inside the request span.
pub async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(ServerFailure(cause)) = response.extensions().get::<ServerFailure>() {
        tracing::error!(status = response.status().as_u16(), error = %cause, "Request failed.");
    }
    response
}

/// `error: source: source ...`, like anyhow's `{:#}`, but skipping a source whose text its parent
/// already ends with (some driver errors print their source themselves *and* expose it).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut previous = out.clone();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !previous.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        previous = text;
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_skips_repeated_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(io).context("error communicating: refused").context("unavailable");
        assert_eq!(chain(&*error), "unavailable: error communicating: refused");
    }
}
