//! The OpenAPI document: served, complete, and a schema-driven smoke fuzz of every operation
//! (no input may produce a 5xx).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cloud_store::Role;
use serde_json::{Value, json};

use crate::common::{bare_request, fresh_state, provision, send, token_for};

#[tokio::test]
async fn the_document_is_served_and_lists_every_endpoint() {
    let state = fresh_state().await;
    let reply = send(&state, bare_request("GET", "/api/openapi.json", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations.sort();
    let expected = [
        "DELETE /api/cameras/{id}",
        "DELETE /api/edges/{id}",
        "DELETE /api/people/{id}",
        "DELETE /api/rules/{id}",
        "DELETE /api/webhooks/{id}",
        "GET /.well-known/jwks.json",
        "GET /api/auth/me",
        "GET /api/cameras",
        "GET /api/cameras/{id}",
        "GET /api/detections/recent",
        "GET /api/detections/{id}",
        "GET /api/devices",
        "GET /api/devices/{id}",
        "GET /api/devices/{id}/status",
        "GET /api/edge/commands",
        "GET /api/edge/config",
        "GET /api/edges",
        "GET /api/events",
        "GET /api/media/{id}",
        "GET /api/people",
        "GET /api/people/{id}/credentials",
        "GET /api/rules",
        "GET /api/rules/{id}/history",
        "GET /api/sensors",
        "GET /api/sites",
        "GET /api/sites/{id}/config",
        "GET /api/streams/status",
        "GET /api/webhooks",
        "GET /api/zones",
        "GET /health",
        "POST /api/auth/login",
        "POST /api/auth/logout",
        "POST /api/auth/refresh",
        "POST /api/auth/register",
        "POST /api/auth/reset-password",
        "POST /api/cameras",
        "POST /api/credentials/{id}/revoke",
        "POST /api/devices",
        "POST /api/devices/{id}/command",
        "POST /api/edge/commands/{id}/ack",
        "POST /api/edge/config/report",
        "POST /api/edge/enrol",
        "POST /api/edge/heartbeat",
        "POST /api/edge/media",
        "POST /api/edge/media/{id}/complete",
        "POST /api/edge/rule-executions",
        "POST /api/ingest/events",
        "POST /api/people",
        "POST /api/people/{id}/credentials",
        "POST /api/rules",
        "POST /api/rules/{id}/disable",
        "POST /api/rules/{id}/enable",
        "POST /api/sites/{id}/claim-codes",
        "POST /api/streams/start",
        "POST /api/streams/stop",
        "POST /api/webhooks/register",
        "POST /api/zones",
        "PUT /api/auth/me",
        "PUT /api/cameras/{id}",
        "PUT /api/devices/{id}/config",
        "PUT /api/edge/media/{id}/part",
        "PUT /api/rules/{id}",
        "PUT /api/sites/{id}/config/access",
        "PUT /api/sites/{id}/config/cameras",
        "PUT /api/sites/{id}/config/devices",
    ];
    assert_eq!(operations, expected);
    assert!(doc["components"]["schemas"]["Camera"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    let page = send(&state, bare_request("GET", "/api/docs", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&page.body).contains("/api/openapi.json"));
}

/// Every documented operation, with hostile ids and bodies, as an admin and anonymously:
/// 4xx or 2xx, never 5xx; and every secured operation refuses an anonymous caller.
#[tokio::test]
async fn no_documented_operation_fails_with_5xx_on_bad_input() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let admin = token_for(&state, p.tenant_id, "admin@acme.test", Role::Admin).await;
    let doc = send(&state, bare_request("GET", "/api/openapi.json", None)).await.json();

    let ids = ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "%00", "1'%20OR%20'1'='1", &"9".repeat(300)];
    let bodies: Vec<Option<String>> = vec![
        None,
        Some("{}".into()),
        Some("[]".into()),
        Some("null".into()),
        Some("{\"".into()),
        Some("\"\u{0}\"".into()),
        Some(json!({ "name": "\u{0}", "email": "a@b.c", "site_id": "x", "password": "p".repeat(5000) }).to_string()),
        Some(
            json!({ "site_id": p.site_id, "name": "x".repeat(10_000), "stream_url": "rtsp://\u{0}", "kind": "door" })
                .to_string(),
        ),
        Some(
            json!({ "command": "unlock", "params": { "deep": [[[[[[[[[[1]]]]]]]]]] }, "config": { "k": null } })
                .to_string(),
        ),
        Some(json!({ "refresh_token": "x".repeat(100_000) }).to_string()),
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation.get("security").is_some();
            for id in ids {
                let uri = path.replace("{id}", id);
                for body in &bodies {
                    for token in [Some(admin.as_str()), None] {
                        let mut request = Request::builder().method(method.to_uppercase().as_str()).uri(&uri);
                        if let Some(token) = token {
                            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                        }
                        let request = match body {
                            Some(b) => {
                                request.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.clone()))
                            }
                            None => request.body(Body::empty()),
                        }
                        .unwrap();
                        let reply = send(&state, request).await;
                        let what = format!("{method} {uri} {body:?} token={}", token.is_some());
                        assert!(!reply.status.is_server_error(), "{what}: {} {:?}", reply.status, reply.body);
                        if secured && token.is_none() && reply.status != StatusCode::TOO_MANY_REQUESTS {
                            assert!(
                                matches!(reply.status.as_u16(), 400 | 401 | 404 | 405),
                                "{what}: anonymous got {}",
                                reply.status
                            );
                            assert_ne!(reply.status, StatusCode::OK, "{what}");
                        }
                        if reply.status.is_client_error() && reply.status != StatusCode::NOT_FOUND {
                            let body: Value = reply.json();
                            assert_eq!(body["success"], false, "{what}");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 2000, "{checked}");
}

/// A plausible value for `schema` (refs resolved against `doc`), using `site` for site ids.
fn plausible(doc: &Value, schema: &Value, name: &str, site: &str, depth: usize) -> Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let key = reference.rsplit('/').next().unwrap();
        return plausible(doc, &doc["components"]["schemas"][key], name, site, depth + 1);
    }
    if depth > 6 {
        return Value::Null;
    }
    if let Some(options) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        let first = options.iter().find(|o| o.get("type") != Some(&json!("null"))).unwrap_or(&options[0]);
        return plausible(doc, first, name, site, depth + 1);
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_owned()
        }
        _ => "object".to_owned(),
    };
    match (kind.as_str(), schema["format"].as_str()) {
        ("string", Some("uuid")) if name.contains("site") => json!(site),
        ("string", Some("uuid")) => json!(uuid::Uuid::now_v7()),
        ("string", Some("date-time")) => json!("2026-01-01T00:00:00Z"),
        ("string", _) => json!(format!("{name}-value")),
        ("integer", _) | ("number", _) => json!(1),
        ("boolean", _) => json!(true),
        ("array", _) => json!([plausible(doc, &schema["items"], name, site, depth + 1)]),
        ("object", _) => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (key, prop) in props {
                    out.insert(key.clone(), plausible(doc, prop, key, site, depth + 1));
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// Schema-driven: for each operation with a JSON body, a plausible body from its schema and
/// every single-field mutation of it (missing, null, wrong type, huge, NUL, deep); never a 5xx.
#[tokio::test]
async fn schema_driven_body_mutations_never_fail_with_5xx() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let root = token_for(&state, p.tenant_id, "root@acme.test", Role::Superuser).await;
    let doc = send(&state, bare_request("GET", "/api/openapi.json", None)).await.json();
    let site = p.site_id.to_string();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema") else { continue };
            let base = plausible(&doc, schema, "body", &site, 0);
            let mut bodies = vec![base.clone()];
            if let Some(fields) = base.as_object() {
                for key in fields.keys() {
                    for mutation in [
                        None,
                        Some(Value::Null),
                        Some(json!(12345)),
                        Some(json!("text")),
                        Some(json!("x".repeat(20_000))),
                        Some(json!("\u{0}\u{202e}")),
                        Some(json!([[[[[[{}]]]]]])),
                        Some(json!({ "nested": { "deep": [1, "2", null] } })),
                        Some(json!(-1)),
                        Some(json!(1e308)),
                    ] {
                        let mut body = base.clone();
                        match mutation {
                            None => {
                                body.as_object_mut().unwrap().remove(key);
                            }
                            Some(v) => body[key] = v,
                        }
                        bodies.push(body);
                    }
                }
            }
            let uri = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            for body in bodies {
                let request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .header(header::AUTHORIZATION, format!("Bearer {root}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
                let reply = send(&state, request).await;
                assert!(
                    !reply.status.is_server_error(),
                    "{method} {uri} {body}: {} {:?}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                );
                sent += 1;
            }
        }
    }
    assert!(sent > 200, "{sent}");
}

/// PostgreSQL cannot store U+0000 in text or jsonb: nested in free-form JSON it is a 400, not a 500.
#[tokio::test]
async fn nul_characters_nested_in_json_documents_are_client_errors() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let admin = token_for(&state, p.tenant_id, "admin@acme.test", Role::Admin).await;
    let rule = json!({
        "name": "r",
        "trigger": { "type": "event", "event_kind": "detection.person" },
        "actions": [{ "type": "notify", "to": "a\u{0}b" }],
    });
    let reply = send(&state, crate::common::json_request("POST", "/api/rules", Some(&admin), &rule)).await;
    reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let device = json!({ "site_id": p.site_id, "name": "door", "kind": "door" });
    let device = send(&state, crate::common::json_request("POST", "/api/devices", Some(&admin), &device)).await.json();
    let id = device["data"]["id"].as_str().unwrap();
    let config = json!({ "config": { "k\u{0}": 1 } });
    let path = format!("/api/devices/{id}/config");
    let reply = send(&state, crate::common::json_request("PUT", &path, Some(&admin), &config)).await;
    reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}
