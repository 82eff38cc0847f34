//! Enrolment end to end through the router: claim code → enrol → ingest with the new token;
//! reuse, expiry and revocation; one code raced by many edges creates one edge.

use axum::http::{StatusCode, header};
use cloud_store::{Provisioned, Role};
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_proto::{AckStatus, CBOR_CONTENT_TYPE, EventKind};

use crate::common::{
    Reply, bare_request, batch_bytes, event, fresh_state, ingest_request, json_request, provision, send, token_for,
};

fn claim_path(site: Uuid) -> String {
    format!("/api/sites/{site}/claim-codes")
}

async fn new_code(state: &cloud_api::AppState, admin: &str, site: Uuid) -> String {
    let reply = send(state, json_request("POST", &claim_path(site), Some(admin), &json!({}))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let data = reply.json()["data"].clone();
    let code = data["code"].as_str().unwrap().to_owned();
    assert_eq!(data["site_id"], site.to_string());
    code
}

async fn enrol(state: &cloud_api::AppState, code: &str, name: Option<&str>) -> Reply {
    let mut body = json!({ "code": code, "hardware": "x86_64, 4 cores", "version": "0.1.0" });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    send(state, json_request("POST", "/api/edge/enrol", None, &body)).await
}

/// The enrolled edge as a `Provisioned`, to reuse the event builders.
fn as_edge(base: &Provisioned, data: &Value) -> Provisioned {
    Provisioned {
        tenant_id: base.tenant_id,
        site_id: Uuid::parse_str(data["site_id"].as_str().unwrap()).unwrap(),
        edge_id: Uuid::parse_str(data["edge_id"].as_str().unwrap()).unwrap(),
        edge_token: data["token"].as_str().unwrap().to_owned(),
        api_key: base.api_key.clone(),
    }
}

async fn ingest_status(state: &cloud_api::AppState, edge: &Provisioned) -> StatusCode {
    let events = [event(edge, EventKind::AccessDenied, chrono::Utc::now())];
    let reply =
        send(state, ingest_request(Some(&edge.edge_token), Some(CBOR_CONTENT_TYPE), batch_bytes(&events))).await;
    if reply.status == StatusCode::OK {
        assert!(reply.ack().results.iter().all(|r| r.status == AckStatus::Stored));
    }
    reply.status
}

#[tokio::test]
async fn a_claim_code_enrols_one_edge_once_and_revocation_locks_it_out() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let code = new_code(&state, &admin, a.site_id).await;
    // Grouped, from the unambiguous alphabet.
    assert_eq!(code.len(), 14, "{code}");
    assert!(code.split('-').all(|g| g.len() == 4 && g.bytes().all(|b| cloud_store::CLAIM_ALPHABET.contains(&b))));
    // Stored hashed only: the code is in no row.
    let text: Vec<String> = {
        let mut tx = state.store.pool().begin().await.unwrap();
        sqlx::query("SELECT set_config('vigil.system', 'on', true)").execute(&mut *tx).await.unwrap();
        sqlx::query_scalar("SELECT row_to_json(c)::text FROM claim_codes c").fetch_all(&mut *tx).await.unwrap()
    };
    assert_eq!(text.len(), 1);
    assert!(!text[0].contains(&code.replace('-', "")) && !text[0].contains(&code), "{text:?}");

    // Typed in lower case with spaces: still the code.
    let reply = enrol(&state, &code.to_lowercase().replace('-', " "), Some("hq-edge-2")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let data = reply.json()["data"].clone();
    assert_eq!(data["tenant_id"], a.tenant_id.to_string());
    assert_eq!(data["site_id"], a.site_id.to_string());
    assert_eq!(data["name"], "hq-edge-2");
    assert!(data["api_url"].is_null());
    let edge = as_edge(&a, &data);
    assert_eq!(edge.edge_token.len(), 64);
    assert_ne!(edge.edge_token, a.edge_token);

    // The token works for ingest, heartbeats and commands.
    assert_eq!(ingest_status(&state, &edge).await, StatusCode::OK);
    let beat =
        send(&state, json_request("POST", "/api/edge/heartbeat", Some(&edge.edge_token), &json!({"v": 1}))).await;
    assert_eq!(beat.status, StatusCode::OK);
    let listed = send(&state, bare_request("GET", "/api/edges", Some(&admin))).await.json();
    let mine = listed["data"].as_array().unwrap().iter().find(|e| e["id"] == data["edge_id"]).unwrap().clone();
    assert_eq!(mine["name"], "hq-edge-2");

    // Used: the same code again is the one indistinguishable error, and creates nothing.
    let again = enrol(&state, &code, Some("hq-edge-3")).await;
    let used = again.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let unknown = enrol(&state, "ABCD-EFGH-JKMN", None).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let garbage = enrol(&state, "not a code", None).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(used["message"], unknown["message"]);
    assert_eq!(used["message"], garbage["message"]);

    // Expired: refused with the same error.
    let old = new_code(&state, &admin, a.site_id).await;
    {
        let mut tx = state.store.pool().begin().await.unwrap();
        sqlx::query("SELECT set_config('vigil.system', 'on', true)").execute(&mut *tx).await.unwrap();
        sqlx::query("UPDATE claim_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let expired = enrol(&state, &old, None).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(expired["message"], unknown["message"]);
    let edges = state.store.list_edges(a.tenant_id, None).await.unwrap();
    assert_eq!(edges.len(), 2, "the provisioned edge and the enrolled one: {edges:?}");

    // Revocation: the enrolled edge's next request is a 401; the other edge is untouched.
    let path = format!("/api/edges/{}", edge.edge_id);
    let revoked = send(&state, bare_request("DELETE", &path, Some(&admin))).await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&revoked.body));
    assert_eq!(ingest_status(&state, &edge).await, StatusCode::UNAUTHORIZED);
    let beat = send(&state, json_request("POST", "/api/edge/heartbeat", Some(&edge.edge_token), &json!({}))).await;
    assert_eq!(beat.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ingest_status(&state, &a).await, StatusCode::OK);
    // Revoking again: no such active edge.
    assert_eq!(send(&state, bare_request("DELETE", &path, Some(&admin))).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn claim_codes_need_an_admin_of_the_site_and_validate_their_input() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let admin_b = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;

    let reply = send(&state, json_request("POST", &claim_path(a.site_id), Some(&security), &json!({}))).await;
    reply.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Another tenant's site: not found, like a site that does not exist.
    let reply = send(&state, json_request("POST", &claim_path(a.site_id), Some(&admin_b), &json!({}))).await;
    reply.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let reply = send(&state, json_request("POST", &claim_path(Uuid::now_v7()), Some(&admin), &json!({}))).await;
    reply.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // No body at all: the defaults (24 h).
    let reply = send(&state, bare_request("POST", &claim_path(a.site_id), Some(&admin))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&reply.body));
    let expires = chrono::DateTime::parse_from_rfc3339(reply.json()["data"]["expires_at"].as_str().unwrap()).unwrap();
    let hours = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    for body in [json!({ "ttl_hours": 0 }), json!({ "ttl_hours": 1000 }), json!({ "ttl": 1 }), json!("x")] {
        let reply = send(&state, json_request("POST", &claim_path(a.site_id), Some(&admin), &body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    // B cannot revoke A's edge.
    let path = format!("/api/edges/{}", a.edge_id);
    send(&state, bare_request("DELETE", &path, Some(&admin_b))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    send(&state, bare_request("DELETE", &path, Some(&security))).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // A name taken at the site is a conflict and leaves the code usable.
    let code = new_code(&state, &admin, a.site_id).await;
    enrol(&state, &code, Some("edge-1")).await.error(StatusCode::CONFLICT, "CONFLICT");
    let reply = enrol(&state, &code, Some("edge-2")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&reply.body));
}

#[tokio::test]
async fn one_code_raced_by_many_edges_creates_exactly_one() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let code = new_code(&state, &admin, a.site_id).await;
    // Fewer racers than the per-address rate limit, so every one reaches the database.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (state, code) = (state.clone(), code.clone());
            tokio::spawn(async move { enrol(&state, &code, Some(&format!("racer-{i}"))).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| matches!(*s, StatusCode::CREATED | StatusCode::UNAUTHORIZED)), "{statuses:?}");
    let edges = state.store.list_edges(a.tenant_id, None).await.unwrap();
    assert_eq!(edges.iter().filter(|e| e.name.starts_with("racer-")).count(), 1, "{edges:?}");
}

#[tokio::test]
async fn enrolment_attempts_are_rate_limited_per_address() {
    let state = fresh_state().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(enrol(&state, "ABCD-EFGH-JKMN", None).await.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[11], StatusCode::TOO_MANY_REQUESTS);
}
