//! `/api/rules` and `/api/webhooks`: validation, roles, isolation.

use axum::http::StatusCode;
use cloud_store::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Reply, bare_request, fresh_state, json_request, provision, send, token_for};

fn data(reply: &Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    reply.json()["data"].clone()
}

fn after_hours() -> Value {
    json!({
        "name": "After hours",
        "trigger": { "type": "event", "event_kind": "detection.person" },
        "conditions": [{ "type": "time_between", "start": "18:00", "end": "06:00" }, { "type": "zone", "is": "restricted" }],
        "actions": [
            { "type": "notify", "target": "security", "message": "Person in {zone} after hours" },
            { "type": "lock_doors", "doors": "all" },
            { "type": "start_recording", "cameras": "zone", "duration_secs": 120 },
        ],
    })
}

#[tokio::test]
async fn rules_crud_enable_disable_history_and_isolation() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let other = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;

    send(&state, json_request("POST", "/api/rules", Some(&viewer), &after_hours()))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let created = send(&state, json_request("POST", "/api/rules", Some(&admin), &after_hours())).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let rule = data(&created);
    assert_eq!(rule["enabled"], true);
    let id = rule["id"].as_str().unwrap().to_owned();
    let dup = send(&state, json_request("POST", "/api/rules", Some(&admin), &after_hours())).await;
    assert_eq!(dup.error(StatusCode::CONFLICT, "CONFLICT")["details"]["field"], "name");

    let mut cases = Vec::new();
    let mut bad = after_hours();
    bad["trigger"] = json!({ "type": "event", "event_kind": "detection.unicorn" });
    cases.push((bad, "trigger.event_kind"));
    let mut bad = after_hours();
    bad["trigger"] = json!({ "type": "whenever" });
    cases.push((bad, "trigger"));
    let mut bad = after_hours();
    bad["trigger"] = json!({ "type": "schedule", "cron": "61 * * * *" });
    cases.push((bad, "trigger.cron"));
    let mut bad = after_hours();
    bad["conditions"][0]["end"] = json!("25:00");
    cases.push((bad, "conditions[0].end"));
    let mut bad = after_hours();
    bad["actions"][2]["duration_secs"] = json!(0);
    cases.push((bad, "actions[2].duration_secs"));
    let mut bad = after_hours();
    bad["actions"] = json!([]);
    cases.push((bad, "actions"));
    let mut bad = after_hours();
    bad["actions"] = json!([{ "type": "launch_missiles" }]);
    cases.push((bad, "actions"));
    let mut bad = after_hours();
    bad["conditions"] = json!({ "type": "x" });
    cases.push((bad, "conditions"));
    for (body, field) in cases {
        let reply = send(&state, json_request("POST", "/api/rules", Some(&admin), &body)).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], field, "{body}");
    }

    let disabled = data(&send(&state, bare_request("POST", &format!("/api/rules/{id}/disable"), Some(&admin))).await);
    assert_eq!(disabled["enabled"], false);
    send(&state, bare_request("POST", &format!("/api/rules/{id}/enable"), Some(&viewer)))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let enabled = data(&send(&state, bare_request("POST", &format!("/api/rules/{id}/enable"), Some(&admin))).await);
    assert_eq!(enabled["enabled"], true);
    let mut renamed = after_hours();
    renamed["name"] = json!("Night watch");
    let updated = data(&send(&state, json_request("PUT", &format!("/api/rules/{id}"), Some(&admin), &renamed)).await);
    assert_eq!(updated["name"], "Night watch");

    let rule_id = Uuid::parse_str(&id).unwrap();
    state.store.record_rule_execution(a.tenant_id, rule_id, None, "fired", &json!({ "actions": 2 })).await.unwrap();
    let history = data(&send(&state, bare_request("GET", &format!("/api/rules/{id}/history"), Some(&viewer))).await);
    assert_eq!(history[0]["outcome"], "fired");
    let list = data(&send(&state, bare_request("GET", "/api/rules", Some(&viewer))).await);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Another tenant: 404 on every id route, empty list.
    for (method, path) in [
        ("PUT", format!("/api/rules/{id}")),
        ("DELETE", format!("/api/rules/{id}")),
        ("POST", format!("/api/rules/{id}/enable")),
        ("POST", format!("/api/rules/{id}/disable")),
        ("GET", format!("/api/rules/{id}/history")),
    ] {
        let request = if method == "PUT" {
            json_request(method, &path, Some(&other), &renamed)
        } else {
            bare_request(method, &path, Some(&other))
        };
        send(&state, request).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(data(&send(&state, bare_request("GET", "/api/rules", Some(&other))).await), json!([]));

    let deleted = send(&state, bare_request("DELETE", &format!("/api/rules/{id}"), Some(&admin))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn webhooks_are_admin_only_validated_and_never_show_secrets() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let other = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;
    let hook = json!({
        "url": "https://hooks.example.com/vigil",
        "events": ["detection.person", "alert.triggered"],
        "secret": "webhook_secret_1234",
    });
    let register = |token: &str, body: &Value| json_request("POST", "/api/webhooks/register", Some(token), body);

    send(&state, register(&security, &hook)).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let created = send(&state, register(&admin, &hook)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let created = data(&created);
    assert!(created.get("secret").is_none(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    for (field, value) in [
        ("url", json!("http://hooks.example.com")),
        ("url", json!("https://169.254.169.254/latest")),
        ("events", json!([])),
        ("events", json!(["detection.unicorn"])),
        ("secret", json!("short")),
    ] {
        let mut body = hook.clone();
        body[field] = value;
        let reply = send(&state, register(&admin, &body)).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], field, "{body}");
    }

    let listed = data(&send(&state, bare_request("GET", "/api/webhooks", Some(&admin))).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("webhook_secret"), "{listed}");
    assert_eq!(data(&send(&state, bare_request("GET", "/api/webhooks", Some(&other))).await), json!([]));
    let path = format!("/api/webhooks/{id}");
    send(&state, bare_request("DELETE", &path, Some(&other))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(send(&state, bare_request("DELETE", &path, Some(&admin))).await.status, StatusCode::NO_CONTENT);
}
