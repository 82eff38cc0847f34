//! Commands reach the site's edge: long-poll delivery with the edge token, acknowledgement with
//! the outcome, expiry, and isolation between edges (tenants and sites).

use std::time::Duration;

use axum::http::StatusCode;
use cloud_store::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{bare_request, fresh_state, json_request, provision, send, token_for};

fn data(reply: &crate::common::Reply) -> Value {
    reply.json()["data"].clone()
}

#[tokio::test]
async fn the_site_edge_fetches_executes_once_and_acknowledges_commands() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let lock = json!({ "site_id": a.site_id, "name": "lock-1", "kind": "lock" });
    let device = data(&send(&state, json_request("POST", "/api/devices", Some(&admin), &lock)).await);
    let path = format!("/api/devices/{}/command", device["id"].as_str().unwrap());

    // Nothing queued: an immediate answer, empty.
    let empty = send(&state, bare_request("GET", "/api/edge/commands", Some(&a.edge_token))).await;
    assert_eq!((empty.status, data(&empty)), (StatusCode::OK, json!([])));

    // A long-poll returns as soon as a command is queued.
    let poll = {
        let (state, token) = (state.clone(), a.edge_token.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let reply = send(&state, bare_request("GET", "/api/edge/commands?wait=10", Some(&token))).await;
            (reply, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unlock = json!({ "command": "unlock", "params": { "seconds": 5 } });
    let queued = data(&send(&state, json_request("POST", &path, Some(&security), &unlock)).await);
    let (reply, waited) = poll.await.unwrap();
    let got = data(&reply);
    assert!(waited < Duration::from_secs(5), "long-poll answered after {waited:?}");
    assert_eq!(got.as_array().unwrap().len(), 1, "{got}");
    let cmd = &got[0];
    assert_eq!(
        (cmd["id"].clone(), cmd["device"].as_str(), cmd["kind"].as_str()),
        (queued["id"].clone(), Some("lock-1"), Some("lock"))
    );
    assert_eq!((cmd["command"].as_str(), cmd["params"]["seconds"].as_i64()), (Some("unlock"), Some(5)));
    assert!(cmd["expires_at"].as_str().is_some());
    let id = Uuid::parse_str(cmd["id"].as_str().unwrap()).unwrap();

    // Delivered once: the next poll is empty, and the device's queue no longer lists it.
    assert_eq!(data(&send(&state, bare_request("GET", "/api/edge/commands", Some(&a.edge_token))).await), json!([]));
    assert!(
        state
            .store
            .queued_device_commands(a.tenant_id, Uuid::parse_str(device["id"].as_str().unwrap()).unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    // Another tenant's edge sees none of it and cannot settle it.
    assert_eq!(data(&send(&state, bare_request("GET", "/api/edge/commands", Some(&b.edge_token))).await), json!([]));
    let ack_path = format!("/api/edge/commands/{id}/ack");
    let done = json!({ "status": "done", "result": "unlocked front for 5 s" });
    send(&state, json_request("POST", &ack_path, Some(&b.edge_token), &done))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // A user token is not an edge credential.
    send(&state, json_request("POST", &ack_path, Some(&security), &done))
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let bad = json!({ "status": "maybe" });
    let reply = send(&state, json_request("POST", &ack_path, Some(&a.edge_token), &bad)).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "status");

    // The site's edge acknowledges: recorded once.
    let ok = send(&state, json_request("POST", &ack_path, Some(&a.edge_token), &done)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        state.store.device_command_status(a.tenant_id, id).await.unwrap(),
        Some(("done".to_owned(), Some("unlocked front for 5 s".to_owned())))
    );
    send(&state, json_request("POST", &ack_path, Some(&a.edge_token), &done))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");

    // An expired command is never delivered.
    let short = json!({ "command": "unlock", "expires_in_secs": 1 });
    let stale = data(&send(&state, json_request("POST", &path, Some(&security), &short)).await);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(data(&send(&state, bare_request("GET", "/api/edge/commands", Some(&a.edge_token))).await), json!([]));
    let stale_id = Uuid::parse_str(stale["id"].as_str().unwrap()).unwrap();
    assert_eq!(state.store.device_command_status(a.tenant_id, stale_id).await.unwrap().unwrap().0, "expired");
    let too_long = json!({ "command": "unlock", "expires_in_secs": 0 });
    let reply = send(&state, json_request("POST", &path, Some(&security), &too_long)).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "expires_in_secs");
    let reply = send(&state, bare_request("GET", "/api/edge/commands?wait=31", Some(&a.edge_token))).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "wait");
}

#[tokio::test]
async fn heartbeats_are_kept_per_edge_and_listed_in_the_tenant_only() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let viewer_a = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let admin_b = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;

    let edges = data(&send(&state, bare_request("GET", "/api/edges", Some(&viewer_a))).await);
    assert_eq!(edges.as_array().unwrap().len(), 1);
    assert!(edges[0]["last_heartbeat_at"].is_null());

    let health =
        json!({ "version": "0.1.0", "cameras": [{ "id": "cam-1", "state": "streaming" }], "spool": { "depth": 3 } });
    let reply = send(&state, json_request("POST", "/api/edge/heartbeat", Some(&a.edge_token), &health)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let edges = data(&send(&state, bare_request("GET", "/api/edges", Some(&viewer_a))).await);
    assert_eq!(edges[0]["health"], health);
    assert_eq!(edges[0]["id"], a.edge_id.to_string());
    assert!(edges[0]["last_heartbeat_at"].is_string());

    // Another tenant sees its own edge only, without A's health.
    let theirs = data(&send(&state, bare_request("GET", "/api/edges", Some(&admin_b))).await);
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    assert_eq!(theirs[0]["id"], b.edge_id.to_string());
    assert!(theirs[0]["health"].is_null());

    // Not an object, or a user token: refused.
    let reply = send(&state, json_request("POST", "/api/edge/heartbeat", Some(&a.edge_token), &json!([1, 2]))).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "health");
    let reply = send(&state, json_request("POST", "/api/edge/heartbeat", Some(&viewer_a), &health)).await;
    reply.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
