//! The Vigil cloud HTTP API.
//!
//! [`app`] builds the whole router (what tests drive with `oneshot`); [`server`] runs it with
//! graceful shutdown; `src/main.rs` (`vigil-cloud`) is the thin binary around both.
//!
//! Architecture invariants:
//! - Handlers are thin: they authenticate (see [`extract`]), validate, call one `cloud_store`
//!   function scoped by the caller's tenant, and shape the response.
//! - Every response is either a JSON envelope (see [`response`] and [`error`]), the CBOR
//!   acknowledgement of the ingest endpoint, the literal health document, the JWKS, the OpenAPI
//!   document and its docs page, or the CSV export of events.
//! - A role check precedes every change ([`extract::AuthUser::require`]); another tenant's id is a
//!   404 like a missing one.
//! - Internal error text never reaches a client; it is logged in the request span.
//! - Every response carries the security headers of [`SECURITY_HEADERS`].

pub mod auth;
pub mod error;
pub mod extract;
pub mod media;
pub mod openapi;
pub mod response;
pub mod routes;
pub mod server;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use response::ApiResponse;
pub use state::AppState;

/// Longest a request may take before the client gets a 503 (the edge then retries).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a media part upload may take (a part over a slow, capped uplink).
pub const PART_UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Headers added to every response (from the seed's security requirements).
pub const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_XSS_PROTECTION, "1; mode=block"),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
];

/// The complete application: routes, JSON fallbacks, tracing, timeout and security headers.
pub fn app(state: AppState) -> Router {
    let [nosniff, frame, xss, hsts] =
        SECURITY_HEADERS.map(|(name, value)| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    let layers = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(nosniff)
        .layer(frame)
        .layer(xss)
        .layer(hsts)
        .layer(axum::middleware::from_fn(error::log_errors));
    let cors = (!state.cors_origins.is_empty()).then(|| cors(&state.cors_origins));
    let parts = routes::media::part_router()
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, PART_UPLOAD_TIMEOUT));
    routes::router()
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .merge(parts)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(layers)
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

/// The seed's CORS policy for the configured origins: credentials allowed, methods GET, POST, PUT,
/// DELETE, request headers Authorization and Content-Type.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

/// The span every request runs in; `tenant` is filled in by the auth extractors.
fn request_span(request: &Request) -> tracing::Span {
    let matched_path = request.extensions().get::<MatchedPath>().map_or("", MatchedPath::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        matched_path,
        tenant = tracing::field::Empty,
    )
}
