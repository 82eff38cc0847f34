//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations, served at
//! `/api/openapi.json`, with an interactive page at `/api/docs`.
//!
//! Invariant: every route of [`crate::routes::router`] appears here (a test compares them).

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes;
use crate::state::AppState;

/// Path of the document.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Path of the interactive page.
pub const DOCS_PATH: &str = "/api/docs";

/// The success envelope (see [`crate::response::ApiResponse`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    /// RFC 3339.
    pub timestamp: String,
}

/// The error envelope (see [`crate::error::ApiError`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
    /// RFC 3339.
    pub timestamp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: VALIDATION_ERROR, BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT,
    /// RATE_LIMITED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_SCHEMA,
    /// SERVICE_UNAVAILABLE, INTERNAL_ERROR.
    pub code: String,
    pub message: String,
    /// E.g. `{"field": "email"}` for validation errors.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token, or a tenant API key (events), or an edge token (ingest)")
                    .build(),
            ),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Vigil cloud API", description = "Multi-tenant smart security: auth, resources, events."),
    paths(
        routes::health::health,
        routes::ingest::ingest,
        routes::events::list,
        routes::auth::register,
        routes::auth::login,
        routes::auth::me,
        routes::auth::update_me,
        routes::auth::logout,
        routes::auth::refresh,
        routes::auth::reset_password,
        routes::auth::jwks,
        routes::sites::list_sites,
        routes::sites::list_zones,
        routes::sites::create_zone,
        routes::sites::list_sensors,
        routes::cameras::list,
        routes::cameras::show,
        routes::cameras::create,
        routes::cameras::update,
        routes::cameras::remove,
        routes::devices::list,
        routes::devices::show,
        routes::devices::status,
        routes::devices::create,
        routes::devices::configure,
        routes::devices::command,
        routes::edge::commands,
        routes::edge::ack,
        routes::edge::heartbeat,
        routes::edge::list_edges,
        routes::site_config::show,
        routes::site_config::set_access,
        routes::site_config::set_cameras,
        routes::site_config::set_devices,
        routes::site_config::edge_fetch,
        routes::site_config::edge_report,
        routes::rules::edge_executions,
        routes::enrolment::create_claim_code,
        routes::enrolment::enrol,
        routes::enrolment::revoke,
        routes::media::announce,
        routes::media::put_part,
        routes::media::complete,
        routes::media::read,
        routes::detections::recent,
        routes::detections::show,
        routes::streams::start,
        routes::streams::stop,
        routes::streams::status,
        routes::people::list,
        routes::people::create,
        routes::people::remove,
        routes::people::list_credentials,
        routes::people::add_credential,
        routes::people::revoke,
        routes::rules::list,
        routes::rules::create,
        routes::rules::update,
        routes::rules::remove,
        routes::rules::enable,
        routes::rules::disable,
        routes::rules::history,
        routes::rules::register_webhook,
        routes::rules::list_webhooks,
        routes::rules::delete_webhook,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(DOCUMENT_PATH, get(|| async { axum::Json(ApiDoc::openapi()) }))
        .route(DOCS_PATH, get(|| async { docs_page().into_response() }))
}

/// A Redoc page for the document (the script comes from a CDN; the API serves no JavaScript).
fn docs_page() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vigil cloud API</title></head><body>",
        "<redoc spec-url=\"/api/openapi.json\"></redoc>",
        "<script src=\"https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js\"></script>",
        "</body></html>"
    ))
}
