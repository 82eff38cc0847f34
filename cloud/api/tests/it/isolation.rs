//! OpenAPI-driven isolation and role walks: every documented operation is called by another
//! tenant with tenant A's ids (in paths, bodies and queries), and by A's viewer for every write.
//! An operation the walk does not know fails the test, so a new endpoint forces it to be extended.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cloud_store::Role;
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_proto::{AckStatus, CBOR_CONTENT_TYPE, EventKind};

use crate::common::{
    Reply, bare_request, batch_bytes, event, fresh_state, ingest_request, json_request, provision, send, token_for,
    upload,
};

const INGEST: &str = "POST /api/ingest/events";
const EDGE_COMMANDS: &str = "GET /api/edge/commands";
const EDGE_ACK: &str = "POST /api/edge/commands/{id}/ack";
const EDGE_HEARTBEAT: &str = "POST /api/edge/heartbeat";
const EDGE_CONFIG: &str = "GET /api/edge/config";
const EDGE_CONFIG_REPORT: &str = "POST /api/edge/config/report";
const EDGE_RULE_EXECUTIONS: &str = "POST /api/edge/rule-executions";

fn executions_for(rule: &str) -> Value {
    json!({ "executions": [{
        "rule_id": rule, "rule_name": "x", "at": chrono::Utc::now(), "outcome": { "status": "fired" }, "actions": []
    }] })
}
const EDGE_ENROL: &str = "POST /api/edge/enrol";
const EDGE_MEDIA: [&str; 3] =
    ["POST /api/edge/media", "PUT /api/edge/media/{id}/part", "POST /api/edge/media/{id}/complete"];
/// How many of [`Fixture::secrets`] are ids (the rest are credentials and names).
const IDS: usize = 14;

/// Operations a viewer may call although they are not GETs (their own session and password).
const SELF_SERVICE: [&str; 5] = [
    "POST /api/auth/login",
    "POST /api/auth/logout",
    "POST /api/auth/refresh",
    "POST /api/auth/reset-password",
    "PUT /api/auth/me",
];

fn data(reply: &Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    reply.json()["data"].clone()
}

fn id_of(reply: &Reply) -> String {
    data(reply)["id"].as_str().unwrap().to_owned()
}

fn rule_body(name: &str) -> Value {
    json!({
        "name": name,
        "trigger": { "type": "event", "event_kind": "detection.person" },
        "conditions": [{ "type": "time_between", "start": "18:00", "end": "06:00" }],
        "actions": [{ "type": "notify", "target": "security", "message": "Person after hours" }],
    })
}

fn hook_body() -> Value {
    json!({ "url": "https://hooks.example.com/vigil", "events": ["detection.person"], "secret": "webhook_secret_1234" })
}

/// Tenant A's resources, created through the API (and the ingest endpoint).
struct Fixture {
    site: String,
    edge: String,
    zone: String,
    camera: String,
    device: String,
    person: String,
    credential: String,
    rule: String,
    webhook: String,
    detection: String,
    /// A's uploaded snapshot (a media id).
    media: String,
    /// Every id and secret of tenant A that must never reach another tenant.
    secrets: Vec<String>,
}

impl Fixture {
    /// The id a `{id}` in `path` stands for.
    fn id_for(&self, path: &str) -> &str {
        let kind = path.trim_start_matches("/api/").split('/').next().unwrap();
        match kind {
            "cameras" => &self.camera,
            "sites" => &self.site,
            "edges" => &self.edge,
            "people" => &self.person,
            "credentials" => &self.credential,
            "rules" => &self.rule,
            "webhooks" => &self.webhook,
            "devices" => &self.device,
            "detections" => &self.detection,
            other => panic!("no id kind for {other} ({path})"),
        }
    }

    /// A value of A's for a query parameter that references a resource, if it does.
    fn query_value(&self, name: &str) -> Option<&str> {
        match name {
            "site" | "site_id" => Some(&self.site),
            "zone" | "zone_id" => Some(&self.zone),
            "camera" | "camera_id" => Some(&self.camera),
            "device" | "device_id" => Some(&self.device),
            "person" | "person_id" => Some(&self.person),
            _ => None,
        }
    }
}

/// The request body for an operation, referencing `r`'s resources where the operation takes
/// references (`true` then), else a valid body of the caller's own. `None` when the walk does not
/// know the operation. `n` keeps names unique.
fn body_for(op: &str, r: &Fixture, n: usize) -> Option<(Option<Value>, bool)> {
    let none = (None, false);
    Some(match op {
        "GET /.well-known/jwks.json"
        | "GET /health"
        | "GET /api/auth/me"
        | "GET /api/cameras"
        | "GET /api/cameras/{id}"
        | "DELETE /api/cameras/{id}"
        | "DELETE /api/edges/{id}"
        | "GET /api/detections/recent"
        | "GET /api/detections/{id}"
        | "GET /api/devices"
        | "GET /api/devices/{id}"
        | "GET /api/devices/{id}/status"
        | "GET /api/edges"
        | "GET /api/events"
        | "GET /api/people"
        | "DELETE /api/people/{id}"
        | "GET /api/people/{id}/credentials"
        | "POST /api/credentials/{id}/revoke"
        | "GET /api/rules"
        | "DELETE /api/rules/{id}"
        | "GET /api/rules/{id}/history"
        | "POST /api/rules/{id}/disable"
        | "POST /api/rules/{id}/enable"
        | "GET /api/sensors"
        | "GET /api/sites"
        | "GET /api/streams/status"
        | "GET /api/webhooks"
        | "DELETE /api/webhooks/{id}"
        | "GET /api/zones"
        | "GET /api/sites/{id}/config"
        | "GET /api/media/{id}" => none,
        "PUT /api/sites/{id}/config/access" => (Some(json!({ "doors": [] })), false),
        "PUT /api/sites/{id}/config/cameras" => (Some(json!([{ "id": "cam-1" }])), false),
        "PUT /api/sites/{id}/config/devices" => (Some(json!({ "site": "hq", "devices": [] })), false),
        "POST /api/auth/login" => (Some(json!({ "email": "admin@acme.test", "password": "guess" })), false),
        "POST /api/auth/logout" | "POST /api/auth/refresh" => (Some(json!({ "refresh_token": "not-a-token" })), false),
        "POST /api/auth/reset-password" => (Some(json!({ "email": "admin@acme.test" })), false),
        "PUT /api/auth/me" => (Some(json!({ "full_name": "Someone" })), false),
        "POST /api/auth/register" => (
            Some(json!({
                "email": format!("new{n}@globex.test"), "username": format!("new{n}"),
                "password": crate::common::PASSWORD, "role": "viewer", "site_ids": [r.site],
            })),
            true,
        ),
        "POST /api/cameras" => (
            Some(
                json!({ "site_id": r.site, "zone_id": r.zone, "name": format!("spy {n}"), "stream_url": "rtsp://10.0.0.9/s" }),
            ),
            true,
        ),
        "PUT /api/cameras/{id}" => (Some(json!({ "name": format!("pwned {n}") })), false),
        "POST /api/devices" => {
            (Some(json!({ "site_id": r.site, "zone_id": r.zone, "name": format!("spy {n}"), "kind": "door" })), true)
        }
        "POST /api/devices/{id}/command" => (Some(json!({ "command": "unlock", "params": { "seconds": 5 } })), false),
        "PUT /api/devices/{id}/config" => (Some(json!({ "config": { "unlock_seconds": 5 } })), false),
        "POST /api/people" => (Some(json!({ "name": format!("Mallory {n}") })), false),
        "POST /api/people/{id}/credentials" => (Some(json!({ "badge": format!("EVIL{n}") })), false),
        "POST /api/rules" => (Some(rule_body(&format!("Rule {n}"))), false),
        "PUT /api/rules/{id}" => (Some(rule_body(&format!("Renamed {n}"))), false),
        "POST /api/streams/start" | "POST /api/streams/stop" => (Some(json!({ "camera_id": r.camera })), true),
        "POST /api/webhooks/register" => (Some(hook_body()), false),
        "POST /api/zones" => (Some(json!({ "site_id": r.site, "name": format!("spy zone {n}") })), true),
        "POST /api/sites/{id}/claim-codes" => (Some(json!({ "ttl_hours": 1 })), false),
        _ => return None,
    })
}

fn request(method: &str, uri: &str, token: &str, body: Option<&Value>, act_as: Option<&str>) -> Request<Body> {
    let mut request =
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(tenant) = act_as {
        request = request.header("x-vigil-tenant", tenant);
    }
    match body {
        Some(body) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// The documented operations as `METHOD /path`, with their query parameter names.
fn operations(doc: &Value) -> Vec<(String, String, String, Vec<String>)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let query: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let method = method.to_uppercase();
            ops.push((format!("{method} {path}"), method, path.clone(), query));
        }
    }
    ops
}

async fn tenant_a(state: &cloud_api::AppState) -> (Fixture, cloud_store::Provisioned, String, String) {
    let a = provision(state, "acme").await;
    let admin = token_for(state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let viewer = token_for(state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let post = |path: &'static str, body: Value| json_request("POST", path, Some(&admin), &body);
    let zone = id_of(&send(state, post("/api/zones", json!({ "site_id": a.site_id, "name": "vault" }))).await);
    let camera = id_of(
        &send(
            state,
            post(
                "/api/cameras",
                json!({ "site_id": a.site_id, "zone_id": zone, "name": "vault cam", "stream_url": "rtsp://u:p@10.0.0.5/s" }),
            ),
        )
        .await,
    );
    let device = id_of(
        &send(
            state,
            post(
                "/api/devices",
                json!({ "site_id": a.site_id, "zone_id": zone, "name": "vault door", "kind": "door" }),
            ),
        )
        .await,
    );
    let person = id_of(&send(state, post("/api/people", json!({ "name": "Alice" }))).await);
    let creds = format!("/api/people/{person}/credentials");
    let credential = id_of(
        &send(state, json_request("POST", &creds, Some(&admin), &json!({ "badge": "04A1B2C3", "pin": "4321" }))).await,
    );
    let rule = id_of(&send(state, post("/api/rules", rule_body("After hours"))).await);
    let access = json!({
        "groups": [{ "id": "vault-staff", "doors": ["vault-door"] }],
        "doors": [{ "id": "vault-door", "zone": "vault", "reader": "vault-reader", "lock": "vault-lock" }],
    });
    let set =
        send(state, json_request("PUT", &format!("/api/sites/{}/config/access", a.site_id), Some(&admin), &access))
            .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&set.body));
    let webhook = id_of(&send(state, post("/api/webhooks/register", hook_body())).await);
    let detection = event(&a, EventKind::DetectionPerson, chrono::Utc::now());
    let access = event(&a, EventKind::AccessDenied, chrono::Utc::now());
    let ack = upload(state, &a, &[detection.clone(), access.clone()]).await;
    assert!(ack.results.iter().all(|r| r.status == AckStatus::Stored), "{ack:?}");
    // A stream command, so that A has a stream status.
    let started = send(state, post("/api/streams/start", json!({ "camera_id": camera }))).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    let me = data(&send(state, bare_request("GET", "/api/auth/me", Some(&admin))).await);
    // An uploaded snapshot.
    let jpeg = b"\xff\xd8not really a jpeg\xff\xd9".to_vec();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&jpeg));
    let announce =
        json!({ "key": "snapshots/cam-a/s1.jpg", "content_type": "image/jpeg", "bytes": jpeg.len(), "sha256": sha });
    let media = id_of(&send(state, json_request("POST", "/api/edge/media", Some(&a.edge_token), &announce)).await);
    let part = Request::put(format!("/api/edge/media/{media}/part?n=0"))
        .header(header::AUTHORIZATION, format!("Bearer {}", a.edge_token))
        .body(Body::from(jpeg))
        .unwrap();
    data(&send(state, part).await);
    let done =
        send(state, bare_request("POST", &format!("/api/edge/media/{media}/complete"), Some(&a.edge_token))).await;
    assert_eq!(data(&done)["complete"], true);

    let secrets = vec![
        a.tenant_id.as_uuid().to_string(),
        a.site_id.to_string(),
        a.edge_id.to_string(),
        zone.clone(),
        camera.clone(),
        device.clone(),
        person.clone(),
        credential.clone(),
        rule.clone(),
        webhook.clone(),
        detection.id.to_string(),
        access.id.to_string(),
        me["id"].as_str().unwrap().to_owned(),
        media.clone(),
        a.edge_token.clone(),
        a.api_key.clone(),
        "vault".into(),
        "04A1B2C3".into(),
        "vault-door".into(),
    ];
    let fixture = Fixture {
        site: a.site_id.to_string(),
        edge: a.edge_id.to_string(),
        zone,
        camera,
        device,
        person,
        credential,
        rule,
        webhook,
        detection: detection.id.to_string(),
        media,
        secrets,
    };
    (fixture, a, admin, viewer)
}

#[track_caller]
fn assert_no_leak(what: &str, reply: &Reply, fixture: &Fixture) {
    assert!(!reply.status.is_server_error(), "{what}: {} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    if reply.status.is_success() {
        let text = String::from_utf8_lossy(&reply.body);
        for secret in &fixture.secrets {
            assert!(!text.contains(secret.as_str()), "{what}: {} leaked {secret}: {text}", reply.status);
        }
    }
}

/// A client error that names the offending field (`details.field`).
fn names_a_field(reply: &Reply) -> bool {
    reply.status == StatusCode::BAD_REQUEST && reply.json()["error"]["details"]["field"].is_string()
}

#[tokio::test]
async fn another_tenant_walking_every_documented_operation_with_our_ids_gets_nothing() {
    let state = fresh_state().await;
    let (fixture, a, admin_a, _) = tenant_a(&state).await;
    let b = provision(&state, "globex").await;
    let mut tokens = vec![("api key", b.api_key.clone())];
    for (email, role) in [
        ("admin@globex.test", Role::Admin),
        ("sec@globex.test", Role::Security),
        ("user@globex.test", Role::User),
        ("viewer@globex.test", Role::Viewer),
        ("root@globex.test", Role::Superuser),
    ] {
        tokens.push((role.as_str(), token_for(&state, b.tenant_id, email, role).await));
    }
    let admin_b = tokens[1].1.clone();
    // B's own camera and site, to aim A's references at from B's side.
    let own_camera = id_of(
        &send(
            &state,
            json_request(
                "POST",
                "/api/cameras",
                Some(&admin_b),
                &json!({ "site_id": b.site_id, "name": "own", "stream_url": "rtsp://10.1.0.5/s" }),
            ),
        )
        .await,
    );

    let doc = send(&state, bare_request("GET", "/api/openapi.json", None)).await.json();
    let mut covered = BTreeSet::new();
    let mut uncovered = Vec::new();
    let mut n = 0usize;
    let mut calls = 0usize;
    for (op, method, path, query) in operations(&doc) {
        if op == INGEST {
            // B's edge uploads events claiming A's tenant and site: each one is rejected.
            let mut forged = event(&b, EventKind::DetectionPerson, chrono::Utc::now());
            forged.tenant = a.tenant_id.as_uuid();
            let mut other_site = event(&b, EventKind::DetectionPerson, chrono::Utc::now());
            other_site.site = a.site_id;
            let reply = send(
                &state,
                ingest_request(Some(&b.edge_token), Some(CBOR_CONTENT_TYPE), batch_bytes(&[forged, other_site])),
            )
            .await;
            let ack = reply.ack();
            assert!(ack.results.iter().all(|r| matches!(r.status, AckStatus::Rejected { .. })), "{ack:?}");
            // A's user tokens are not edge credentials.
            for (role, token) in &tokens {
                let reply = send(&state, ingest_request(Some(token), Some(CBOR_CONTENT_TYPE), batch_bytes(&[]))).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "ingest as {role}");
            }
            covered.insert(op);
            continue;
        }
        if op == EDGE_HEARTBEAT {
            // B's edge reports for itself only; user tokens are not edge credentials.
            let health = json!({ "version": "b" });
            let reply = send(&state, json_request("POST", "/api/edge/heartbeat", Some(&b.edge_token), &health)).await;
            assert_eq!(reply.status, StatusCode::OK);
            for (role, token) in &tokens {
                let reply = send(&state, json_request("POST", "/api/edge/heartbeat", Some(token), &health)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "heartbeat as {role}");
            }
            let edges_a = state.store.list_edges(a.tenant_id, None).await.unwrap();
            assert!(edges_a.iter().all(|e| e.health.is_none()), "B's heartbeat landed on A's edge");
            covered.insert(op);
            continue;
        }
        if op == EDGE_RULE_EXECUTIONS {
            // B's edge reporting executions of A's rule stores nothing; user tokens are not edge
            // credentials.
            let body = executions_for(&fixture.rule);
            let reply =
                send(&state, json_request("POST", "/api/edge/rule-executions", Some(&b.edge_token), &body)).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.json()["data"]["stored"], 0, "B's edge wrote A's rule history");
            for (role, token) in &tokens {
                let reply = send(&state, json_request("POST", "/api/edge/rule-executions", Some(token), &body)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "rule executions as {role}");
            }
            covered.insert(op);
            continue;
        }
        if op == EDGE_CONFIG || op == EDGE_CONFIG_REPORT {
            // B's edge gets its own site's document and reports for itself only; user tokens are
            // not edge credentials.
            let fetched = send(&state, bare_request("GET", "/api/edge/config?after=0", Some(&b.edge_token))).await;
            assert_eq!(fetched.status, StatusCode::OK);
            let text = fetched.json().to_string();
            assert!(!fixture.secrets.iter().any(|s| text.contains(s.as_str())), "B's edge saw A's data: {text}");
            assert!(!text.contains("4321"), "B's edge saw A's PIN: {text}");
            let report = json!({ "version": 99, "applied": true });
            let reply =
                send(&state, json_request("POST", "/api/edge/config/report", Some(&b.edge_token), &report)).await;
            assert_eq!(reply.status, StatusCode::OK);
            let edges_a = state.store.list_edges(a.tenant_id, None).await.unwrap();
            assert!(edges_a.iter().all(|e| e.config_version.is_none()), "B's report landed on A's edge");
            for (role, token) in &tokens {
                let reply = send(&state, bare_request("GET", "/api/edge/config", Some(token))).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge config as {role}");
                let reply = send(&state, json_request("POST", "/api/edge/config/report", Some(token), &report)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge report as {role}");
            }
            covered.insert(op);
            continue;
        }
        if op == EDGE_ENROL {
            // No credential but a claim code: A's ids, secrets and anything guessed are not codes,
            // whoever sends them, and the answer tells nothing.
            for guess in fixture.secrets.iter().map(String::as_str).chain(["ABCD-EFGH-JKMN", ""]) {
                for (role, token) in &tokens {
                    let body = json!({ "code": guess, "name": format!("spy {n}") });
                    n += 1;
                    let reply = send(&state, json_request("POST", "/api/edge/enrol", Some(token), &body)).await;
                    assert_no_leak(&format!("enrol as B's {role}"), &reply, &fixture);
                    assert!(
                        matches!(reply.status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS),
                        "enrol with {guess:?} as {role}: {}",
                        reply.status
                    );
                }
            }
            let edges_a = state.store.list_edges(a.tenant_id, None).await.unwrap();
            assert_eq!(edges_a.len(), 1, "an edge appeared at A's site: {edges_a:?}");
            covered.insert(op);
            continue;
        }
        if op == EDGE_COMMANDS || op == EDGE_ACK {
            // B's edge fetches only its own site's commands and cannot settle A's; user tokens are
            // not edge credentials.
            let fetched = send(&state, bare_request("GET", "/api/edge/commands", Some(&b.edge_token))).await;
            assert_eq!(fetched.status, StatusCode::OK);
            let text = fetched.json().to_string();
            assert!(!fixture.secrets.iter().any(|s| text.contains(s.as_str())), "B's edge saw A's data: {text}");
            for id in &fixture.secrets[..IDS] {
                let ack = json!({ "status": "done" });
                let path = format!("/api/edge/commands/{id}/ack");
                let reply = send(&state, json_request("POST", &path, Some(&b.edge_token), &ack)).await;
                assert!(
                    matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
                    "{path}: {}",
                    reply.status
                );
                for (role, token) in &tokens {
                    let reply = send(&state, json_request("POST", &path, Some(token), &ack)).await;
                    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge ack as {role}");
                }
            }
            for (role, token) in &tokens {
                let reply = send(&state, bare_request("GET", "/api/edge/commands", Some(token))).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge commands as {role}");
            }
            covered.insert(op);
            continue;
        }
        if EDGE_MEDIA.contains(&op.as_str()) {
            // B's edge cannot add to, complete or learn about A's uploads; user tokens are not edge
            // credentials.
            for id in &fixture.secrets[..IDS] {
                let part = Request::put(format!("/api/edge/media/{id}/part?n=0"))
                    .header(header::AUTHORIZATION, format!("Bearer {}", b.edge_token))
                    .body(Body::from(vec![0u8; 24]))
                    .unwrap();
                let done = bare_request("POST", &format!("/api/edge/media/{id}/complete"), Some(&b.edge_token));
                for reply in [send(&state, part).await, send(&state, done).await] {
                    assert_no_leak(&format!("edge media {id}"), &reply, &fixture);
                    assert!(
                        matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
                        "{id}: {}",
                        reply.status
                    );
                }
            }
            let announce = json!({ "key": "snapshots/cam-a/s1.jpg", "content_type": "image/jpeg", "bytes": 24, "sha256": "0".repeat(64) });
            let own = send(&state, json_request("POST", "/api/edge/media", Some(&b.edge_token), &announce)).await;
            assert_no_leak("B's announce of A's key", &own, &fixture);
            assert_eq!(data(&own)["received"], json!([]), "B's edge got its own upload");
            for (role, token) in &tokens {
                let reply = send(&state, json_request("POST", "/api/edge/media", Some(token), &announce)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "announce as {role}");
                let path = format!("/api/edge/media/{}/complete", fixture.media);
                let reply = send(&state, bare_request("POST", &path, Some(token))).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "complete as {role}");
            }
            covered.insert(op);
            continue;
        }
        let Some((_, refs_in_body)) = body_for(&op, &fixture, 0) else {
            uncovered.push(op);
            continue;
        };
        // Every one of A's ids in the path parameter; A's references in query and body.
        let uris: Vec<String> = if path.contains('{') {
            fixture.secrets[..IDS].iter().map(|id| path.replace("{id}", id)).collect()
        } else {
            let mut uris = vec![path.clone()];
            let refs: Vec<String> =
                query.iter().filter_map(|name| fixture.query_value(name).map(|v| format!("{name}={v}"))).collect();
            if !refs.is_empty() {
                uris.push(format!("{path}?{}", refs.join("&")));
            }
            uris
        };
        for uri in &uris {
            for (role, token) in &tokens {
                n += 1;
                let body = body_for(&op, &fixture, n).unwrap().0;
                let reply = send(&state, request(&method, uri, token, body.as_ref(), None)).await;
                let what = format!("{method} {uri} as B's {role}");
                assert_no_leak(&what, &reply, &fixture);
                calls += 1;
                let status = reply.status;
                if path.contains('{') {
                    // A's id in the path: refused or not found, whatever the role.
                    assert!(
                        matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED),
                        "{what}: {status} {:?}",
                        String::from_utf8_lossy(&reply.body)
                    );
                } else if refs_in_body {
                    // A's references in the body: refused, not found or a 400 naming the field.
                    assert!(
                        matches!(
                            status,
                            StatusCode::NOT_FOUND
                                | StatusCode::FORBIDDEN
                                | StatusCode::UNAUTHORIZED
                                | StatusCode::TOO_MANY_REQUESTS
                        ) || names_a_field(&reply),
                        "{what}: {status} {:?}",
                        String::from_utf8_lossy(&reply.body)
                    );
                }
            }
        }
        covered.insert(op);
    }
    assert!(uncovered.is_empty(), "operations the isolation walk does not cover: {uncovered:?}");
    assert!(covered.len() >= 40 && calls > 500, "{} operations, {calls} calls", covered.len());

    // References to A's zone from B's own resources.
    for (method, path, body) in [
        ("PUT", format!("/api/cameras/{own_camera}"), json!({ "zone_id": fixture.zone })),
        (
            "POST",
            "/api/cameras".to_owned(),
            json!({ "site_id": b.site_id, "zone_id": fixture.zone, "name": "zoned", "stream_url": "rtsp://10.1.0.6/s" }),
        ),
        (
            "POST",
            "/api/devices".to_owned(),
            json!({ "site_id": b.site_id, "zone_id": fixture.zone, "name": "d", "kind": "door" }),
        ),
    ] {
        let reply = send(&state, request(method, &path, &admin_b, Some(&body), None)).await;
        assert_no_leak(&format!("{method} {path}"), &reply, &fixture);
        assert!(names_a_field(&reply) || reply.status == StatusCode::NOT_FOUND, "{method} {path}: {}", reply.status);
    }
    // Naming A's tenant is for superusers only; B's admin is refused.
    let reply = send(
        &state,
        request("GET", &format!("/api/cameras/{}", fixture.camera), &admin_b, None, Some(&fixture.secrets[0])),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // A's things are all still there, untouched.
    for path in [
        format!("/api/cameras/{}", fixture.camera),
        format!("/api/devices/{}", fixture.device),
        format!("/api/people/{}/credentials", fixture.person),
        format!("/api/rules/{}/history", fixture.rule),
        format!("/api/detections/{}", fixture.detection),
        format!("/api/media/{}", fixture.media),
    ] {
        let reply = send(&state, bare_request("GET", &path, Some(&admin_a))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let camera =
        data(&send(&state, bare_request("GET", &format!("/api/cameras/{}", fixture.camera), Some(&admin_a))).await);
    assert_eq!(camera["name"], "vault cam");
    let rules = data(&send(&state, bare_request("GET", "/api/rules", Some(&admin_a))).await);
    assert_eq!(rules[0]["name"], "After hours");
    assert_eq!(rules[0]["enabled"], true);
    let webhooks = data(&send(&state, bare_request("GET", "/api/webhooks", Some(&admin_a))).await);
    assert_eq!(webhooks.as_array().unwrap().len(), 1);
    let creds = data(
        &send(&state, bare_request("GET", &format!("/api/people/{}/credentials", fixture.person), Some(&admin_a)))
            .await,
    );
    assert_eq!(creds[0]["id"], fixture.credential.as_str());
    assert!(creds[0]["revoked_at"].is_null(), "{creds}");
    let commands =
        state.store.queued_device_commands(a.tenant_id, Uuid::parse_str(&fixture.device).unwrap()).await.unwrap();
    assert!(commands.is_empty(), "B queued commands on A's device: {commands:?}");
}

/// A viewer may read but not change anything: every documented non-GET operation but their own
/// session and password is 403 (ingest takes edge credentials only: 401).
#[tokio::test]
async fn a_viewer_is_refused_every_write() {
    let state = fresh_state().await;
    let (fixture, _, _, viewer) = tenant_a(&state).await;
    let doc = send(&state, bare_request("GET", "/api/openapi.json", None)).await.json();
    let mut uncovered = Vec::new();
    let mut writes = 0;
    for (op, method, path, _) in operations(&doc) {
        if method == "GET" {
            continue;
        }
        if op == INGEST {
            let reply = send(&state, ingest_request(Some(&viewer), Some(CBOR_CONTENT_TYPE), batch_bytes(&[]))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            continue;
        }
        if op == EDGE_HEARTBEAT {
            let reply = send(&state, json_request("POST", &path, Some(&viewer), &json!({ "version": "x" }))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge credentials only");
            continue;
        }
        if op == EDGE_RULE_EXECUTIONS {
            let reply = send(&state, json_request("POST", &path, Some(&viewer), &executions_for(&fixture.rule))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge credentials only");
            continue;
        }
        if op == EDGE_CONFIG_REPORT {
            let report = json!({ "version": 1, "applied": true });
            let reply = send(&state, json_request("POST", &path, Some(&viewer), &report)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge credentials only");
            continue;
        }
        if op == EDGE_ENROL {
            // Unauthenticated (a claim code is the credential): a viewer's token changes nothing.
            let body = json!({ "code": "ABCD-EFGH-JKMN" });
            let reply = send(&state, json_request("POST", &path, Some(&viewer), &body)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a claim code, not a user, enrols");
            continue;
        }
        if EDGE_MEDIA.contains(&op.as_str()) {
            let path = path.replace("{id}", &fixture.media);
            let reply = send(&state, json_request(&method, &path, Some(&viewer), &json!({}))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{op}: edge credentials only");
            continue;
        }
        if op == EDGE_ACK {
            let path = path.replace("{id}", &fixture.device);
            let reply = send(&state, json_request("POST", &path, Some(&viewer), &json!({ "status": "done" }))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "edge credentials only");
            continue;
        }
        let Some((body, _)) = body_for(&op, &fixture, 1000 + writes) else {
            uncovered.push(op);
            continue;
        };
        let uri = if path.contains("{id}") { path.replace("{id}", fixture.id_for(&path)) } else { path.clone() };
        let reply = send(&state, request(&method, &uri, &viewer, body.as_ref(), None)).await;
        assert!(!reply.status.is_server_error(), "{op}: {}", reply.status);
        if SELF_SERVICE.contains(&op.as_str()) {
            assert_ne!(reply.status, StatusCode::FORBIDDEN, "{op}");
        } else {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{op}: {:?}", String::from_utf8_lossy(&reply.body));
        }
        writes += 1;
    }
    assert!(uncovered.is_empty(), "operations the role walk does not cover: {uncovered:?}");
    assert!(writes >= 20, "{writes}");
}
