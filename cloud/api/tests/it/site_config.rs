//! The down link: a site's configuration document is versioned, composed from the site's access
//! configuration and the tenant's people, credentials and rules, long-polled by the site's edge,
//! and the version each edge runs is reported back.

use std::time::Duration;

use axum::http::StatusCode;
use cloud_store::Role;
use serde_json::{Value, json};

use crate::common::{bare_request, fresh_state, json_request, provision, send, token_for};

fn data(reply: &crate::common::Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    reply.json()["data"].clone()
}

fn access() -> Value {
    json!({
        "groups": [{ "id": "staff", "doors": ["front"], "schedule": "office" }],
        "doors": [{ "id": "front", "zone": "lobby", "reader": "reader-1", "lock": "lock-1" }],
        "schedules": [{ "id": "office", "windows": [{ "start": "07:00", "end": "19:00" }] }],
        "max_offline_hours": 24,
    })
}

#[tokio::test]
async fn the_edge_pulls_each_new_version_and_reports_what_it_runs() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let site_path = format!("/api/sites/{}/config", a.site_id);
    let access_path = format!("{site_path}/access");

    // Nothing managed yet: the document has no parts; the edge at version 0 gets it at once.
    let first = data(&send(&state, bare_request("GET", "/api/edge/config?after=0", Some(&a.edge_token))).await);
    let v1 = first["version"].as_u64().unwrap();
    assert!(first.get("access").is_none() && first.get("rules").is_none(), "{first}");
    // At that version, a long-poll waits and answers 204 (still current).
    let started = std::time::Instant::now();
    let same =
        send(&state, bare_request("GET", &format!("/api/edge/config?after={v1}&wait=1"), Some(&a.edge_token))).await;
    assert_eq!(same.status, StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A waiting edge is answered as soon as an administrator sets the access configuration.
    let poll = {
        let (state, token) = (state.clone(), a.edge_token.clone());
        tokio::spawn(async move {
            send(&state, bare_request("GET", &format!("/api/edge/config?after={v1}&wait=20"), Some(&token))).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let set = data(&send(&state, json_request("PUT", &access_path, Some(&admin), &access())).await);
    let v2 = set["version"].as_u64().unwrap();
    assert!(v2 > v1);
    let doc = data(&poll.await.unwrap());
    assert_eq!(doc["version"].as_u64(), Some(v2));
    assert_eq!(doc["access"]["doors"][0]["id"], "front");
    assert_eq!(doc["access"]["revision"].as_u64(), Some(v2));
    assert_eq!(doc["access"]["timezone"], "UTC");
    assert!(edge_siteconfig::check(&serde_json::from_value(doc.clone()).unwrap()).is_ok());

    // People, credentials and rules are part of it: each change is a new version.
    let person = data(
        &send(
            &state,
            json_request(
                "POST",
                "/api/people",
                Some(&admin),
                &json!({ "name": "Alice", "groups": ["staff", "elsewhere"] }),
            ),
        )
        .await,
    );
    let creds = format!("/api/people/{}/credentials", person["id"].as_str().unwrap());
    let cred = data(
        &send(&state, json_request("POST", &creds, Some(&admin), &json!({ "badge": "04A1", "pin": "9876" }))).await,
    );
    let rule = json!({
        "name": "Temperature Alert",
        "trigger": { "type": "event", "event_kind": "sensor.reading" },
        "conditions": [{ "type": "value", "metric": "temperature", "op": ">", "value": 30 }],
        "actions": [{ "type": "alert", "target": "facilities", "severity": "warning", "message": "hot" }],
    });
    data(&send(&state, json_request("POST", "/api/rules", Some(&admin), &rule)).await);
    let doc =
        data(&send(&state, bare_request("GET", &format!("/api/edge/config?after={v2}"), Some(&a.edge_token))).await);
    let v3 = doc["version"].as_u64().unwrap();
    assert!(v3 >= v2 + 3, "person, credential and rule each bump the version: {v2} → {v3}");
    assert_eq!(doc["access"]["people"][0]["groups"], json!(["staff"]), "groups the site does not define are left out");
    assert_eq!(doc["access"]["credentials"][0]["badge"], "04A1");
    assert_eq!(doc["access"]["credentials"][0]["pin"], "9876", "the edge compares PINs offline");
    assert_eq!(doc["rules"]["rules"][0]["name"], "Temperature Alert");
    let checked = edge_siteconfig::check(&serde_json::from_value(doc.clone()).unwrap()).unwrap();
    assert_eq!(checked.rules.unwrap().len(), 1);
    // Revoking the credential is a new version in which it is revoked.
    let revoke = format!("/api/credentials/{}/revoke", cred["id"].as_str().unwrap());
    data(&send(&state, json_request("POST", &revoke, Some(&admin), &json!({}))).await);
    let doc =
        data(&send(&state, bare_request("GET", &format!("/api/edge/config?after={v3}"), Some(&a.edge_token))).await);
    let v4 = doc["version"].as_u64().unwrap();
    assert_eq!(doc["access"]["credentials"][0]["revoked"], true);

    // People see the document with PINs redacted, and which version each edge runs.
    let view = data(&send(&state, bare_request("GET", &site_path, Some(&viewer))).await);
    assert_eq!(view["version"].as_u64(), Some(v4));
    assert_eq!(view["document"]["access"]["credentials"][0]["pin"], "set");
    assert!(!view.to_string().contains("9876"), "{view}");
    assert_eq!(view["problems"], json!([]));
    assert_eq!(view["edges"][0]["version"], Value::Null);
    assert_eq!(view["edges"][0]["in_sync"], false);

    // The edge reports: refused, then applied.
    let refused =
        json!({ "version": v4, "applied": false, "problems": ["access: door front: lock lock-1 is not a lock"] });
    data(&send(&state, json_request("POST", "/api/edge/config/report", Some(&a.edge_token), &refused)).await);
    let view = data(&send(&state, bare_request("GET", &site_path, Some(&viewer))).await);
    assert_eq!(view["edges"][0]["in_sync"], false);
    assert_eq!(view["edges"][0]["problems"]["problems"][0], "access: door front: lock lock-1 is not a lock");
    let applied = json!({ "version": v4, "applied": true });
    data(&send(&state, json_request("POST", "/api/edge/config/report", Some(&a.edge_token), &applied)).await);
    let view = data(&send(&state, bare_request("GET", &site_path, Some(&viewer))).await);
    assert_eq!((view["edges"][0]["version"].as_u64(), view["edges"][0]["in_sync"].as_bool()), (Some(v4), Some(true)));
    assert_eq!(view["edges"][0]["problems"], Value::Null);
    let edges = data(&send(&state, bare_request("GET", "/api/edges", Some(&viewer))).await);
    assert_eq!(edges[0]["config_version"].as_u64(), Some(v4));

    // Contradictory or oversized reports are refused.
    let bad = json!({ "version": v4, "applied": true, "problems": ["x"] });
    send(&state, json_request("POST", "/api/edge/config/report", Some(&a.edge_token), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    send(&state, bare_request("GET", "/api/edge/config?wait=31", Some(&a.edge_token)))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}

#[tokio::test]
async fn an_access_configuration_the_edge_would_refuse_is_refused_with_every_problem() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let path = format!("/api/sites/{}/config/access", a.site_id);
    let before = data(&send(&state, bare_request("GET", "/api/edge/config", Some(&a.edge_token))).await);

    let mut bad = access();
    bad["groups"][0]["schedule"] = json!("no-such-schedule");
    bad["schedules"][0]["windows"][0]["end"] = json!("25:99");
    let err = send(&state, json_request("PUT", &path, Some(&admin), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let message = err.to_string();
    assert!(message.contains("no-such-schedule") && message.contains("25:99"), "{message}");
    for (body, needle) in [
        (json!({ "people": [] }), "people"),
        (json!({ "doors": "front" }), "expected a sequence"),
        (json!([1, 2]), "object"),
        (json!({ "unknown_key": 1 }), "unknown_key"),
    ] {
        let err = send(&state, json_request("PUT", &path, Some(&admin), &body))
            .await
            .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    // Only administrators set it; nothing changed for the edge.
    send(&state, json_request("PUT", &path, Some(&security), &access()))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let after = data(&send(&state, bare_request("GET", "/api/edge/config", Some(&a.edge_token))).await);
    assert_eq!(after["version"], before["version"]);

    // A valid one is a new version carrying it.
    let v = before["version"].as_u64().unwrap();
    data(&send(&state, json_request("PUT", &path, Some(&admin), &access())).await);
    let doc =
        data(&send(&state, bare_request("GET", &format!("/api/edge/config?after={v}"), Some(&a.edge_token))).await);
    assert_eq!(doc["access"]["groups"][0]["id"], "staff");
}

#[tokio::test]
async fn camera_analytics_are_checked_against_the_cameras_the_edges_have() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let path = format!("/api/sites/{}/config/cameras", a.site_id);
    let cameras = json!([{ "id": "lobby-1", "lines": [{ "id": "entrance", "a": [0.5, 0.0], "b": [0.5, 1.0] }] }]);

    // Before any edge reported its cameras, any id is taken; the document carries them.
    let v = data(&send(&state, json_request("PUT", &path, Some(&admin), &cameras)).await)["version"].as_u64().unwrap();
    let doc = data(&send(&state, bare_request("GET", "/api/edge/config", Some(&a.edge_token))).await);
    assert_eq!(doc["version"].as_u64(), Some(v));
    assert_eq!(doc["cameras"][0]["lines"][0]["id"], "entrance");
    assert!(doc.get("access").is_none(), "setting cameras does not make the cloud manage doors: {doc}");

    // Bad geometry and connection settings are refused, naming the problem.
    let bad =
        json!([{ "id": "lobby-1", "url": "rtsp://x", "lines": [{ "id": "e", "a": [2.0, 0.0], "b": [0.5, 1.0] }] }]);
    let err = send(&state, json_request("PUT", &path, Some(&admin), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(err.to_string().contains("url"), "{err}");
    let bad = json!([{ "id": "lobby-1", "lines": [{ "id": "e", "a": [2.0, 0.0], "b": [0.5, 1.0] }] }]);
    let err = send(&state, json_request("PUT", &path, Some(&admin), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(err.to_string().contains("cameras[0].lines[0].a"), "{err}");
    send(&state, json_request("PUT", &path, Some(&admin), &json!({ "id": "x" })))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    // Once the edge reported its cameras, an id it does not have is refused.
    let health = json!({ "cameras": [{ "id": "lobby-1" }, { "id": "yard" }] });
    data(&send(&state, json_request("POST", "/api/edge/heartbeat", Some(&a.edge_token), &health)).await);
    let typo = json!([{ "id": "lobby-l" }]);
    let err = send(&state, json_request("PUT", &path, Some(&admin), &typo))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(err.to_string().contains("lobby-l") && err.to_string().contains("yard"), "{err}");
    data(&send(&state, json_request("PUT", &path, Some(&admin), &json!([{ "id": "yard" }]))).await);
}

#[tokio::test]
async fn the_edge_reports_what_cloud_rules_did_once_and_local_rules_are_skipped() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let rule = json!({
        "name": "Temperature Alert",
        "trigger": { "type": "event", "event_kind": "sensor.reading" },
        "actions": [{ "type": "log", "message": "hot" }],
    });
    let id = data(&send(&state, json_request("POST", "/api/rules", Some(&admin), &rule)).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = "2026-11-26T09:00:00.123456Z";
    let report = json!({ "executions": [
        { "rule_id": id, "rule_name": "Temperature Alert", "revision": 3, "at": at, "outcome": { "status": "fired" },
          "actions": [{ "action": "log", "summary": "hot", "result": { "status": "ok" } }] },
        { "rule_id": id, "rule_name": "Temperature Alert", "at": "2026-11-26T09:00:05Z",
          "outcome": { "status": "suppressed", "reason": "cooldown", "until": "2026-11-26T09:05:00Z" } },
        { "rule_id": "after-hours", "rule_name": "a local rule", "at": at, "outcome": { "status": "fired" } },
    ] });
    let path = "/api/edge/rule-executions";
    let first = data(&send(&state, json_request("POST", path, Some(&a.edge_token), &report)).await);
    assert_eq!((first["received"].as_u64(), first["stored"].as_u64()), (Some(3), Some(2)), "{first}");
    let again = data(&send(&state, json_request("POST", path, Some(&a.edge_token), &report)).await);
    assert_eq!(again["stored"].as_u64(), Some(0), "a report sent again adds nothing");
    let history = data(&send(&state, bare_request("GET", &format!("/api/rules/{id}/history"), Some(&admin))).await);
    let outcomes: Vec<&str> = history.as_array().unwrap().iter().map(|h| h["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, vec!["suppressed", "fired"], "{history}");
    assert_eq!(history[1]["detail"]["actions"][0]["result"]["status"], "ok", "{history}");

    let bad = json!({ "executions": [{ "rule_id": id }] });
    send(&state, json_request("POST", path, Some(&a.edge_token), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}

#[tokio::test]
async fn a_device_registry_is_checked_and_its_hashes_are_only_for_the_edge() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let path = format!("/api/sites/{}/config/devices", a.site_id);
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let registry = json!({ "site": "hq", "devices": [
        { "id": "reader-2", "zone": "lobby", "kind": "reader", "password_sha256": hash },
    ] });
    data(&send(&state, json_request("PUT", &path, Some(&admin), &registry)).await);
    let doc = data(&send(&state, bare_request("GET", "/api/edge/config", Some(&a.edge_token))).await);
    assert_eq!(doc["devices"]["devices"][0]["password_sha256"], hash, "the edge checks device logins offline");
    let view =
        data(&send(&state, bare_request("GET", &format!("/api/sites/{}/config", a.site_id), Some(&admin))).await);
    assert!(!view.to_string().contains(hash), "{view}");
    let bad = json!({ "site": "hq", "devices": [{ "id": "r", "zone": "lobby", "kind": "toaster", "password_sha256": hash }] });
    let err = send(&state, json_request("PUT", &path, Some(&admin), &bad))
        .await
        .error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(err.to_string().contains("toaster"), "{err}");
}
