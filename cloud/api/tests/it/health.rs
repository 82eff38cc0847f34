//! `GET /health`, fallbacks and cross-cutting headers.

use axum::http::{StatusCode, header};
use serde_json::json;
use vigil_proto::INGEST_EVENTS_PATH;

use crate::common::{fresh_state, get, send};

#[tokio::test]
async fn health_is_ok_with_a_database() {
    let state = fresh_state().await;
    let reply = send(&state, get("/health", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({ "status": "ok", "database": "ok" }));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let state = fresh_state().await;
    send(&state, get("/nope", None)).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    send(&state, get(INGEST_EVENTS_PATH, None)).await.error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let state = fresh_state().await;
    for (path, status) in [("/health", 200), ("/api/events", 401), ("/nope", 404)] {
        let reply = send(&state, get(path, None)).await;
        assert_eq!(reply.status.as_u16(), status, "{path}");
        let h = &reply.headers;
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::X_XSS_PROTECTION], "1; mode=block", "{path}");
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000", "{path}");
    }
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let dashboard = "https://dashboard.example.com";
    let state = fresh_state().await.with_cors_origins(vec![axum::http::HeaderValue::from_static(dashboard)]);
    let preflight = |origin: &str| {
        axum::http::Request::builder()
            .method("OPTIONS")
            .uri("/api/cameras")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let allowed = send(&state, preflight(dashboard)).await;
    assert!(allowed.status.is_success(), "{:?}", allowed.status);
    assert_eq!(allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], dashboard);
    assert_eq!(allowed.headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    let evil = send(&state, preflight("https://evil.example")).await;
    assert!(!evil.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    // Without configured origins there are no CORS headers at all.
    let plain = fresh_state().await;
    assert!(!send(&plain, preflight(dashboard)).await.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}
