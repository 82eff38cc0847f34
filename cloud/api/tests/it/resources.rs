//! Sites, zones, cameras: role checks and tenant isolation through the API.

use axum::http::StatusCode;
use cloud_store::Role;
use serde_json::{Value, json};
use uuid::Uuid;
use vigil_proto::EventKind;

use crate::common::{Reply, bare_request, event, fresh_state, json_request, provision, send, token_for, upload};

fn data(reply: &Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    reply.json()["data"].clone()
}

fn camera_body(site: Uuid, name: &str) -> Value {
    json!({ "site_id": site, "name": name, "stream_url": "rtsp://admin:secret@10.0.0.5:554/s1" })
}

#[tokio::test]
async fn viewer_reads_admin_manages_cameras() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let admin = token_for(&state, p.tenant_id, "admin@acme.test", Role::Admin).await;
    let viewer = token_for(&state, p.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let security = token_for(&state, p.tenant_id, "sec@acme.test", Role::Security).await;

    // Viewer and security cannot register a camera; admin can.
    for token in [&viewer, &security] {
        let reply =
            send(&state, json_request("POST", "/api/cameras", Some(token), &camera_body(p.site_id, "door"))).await;
        reply.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let created =
        send(&state, json_request("POST", "/api/cameras", Some(&admin), &camera_body(p.site_id, "door"))).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let camera = data(&created);
    let id = camera["id"].as_str().unwrap().to_owned();
    assert_eq!(camera["stream_url"], "rtsp://admin:secret@10.0.0.5:554/s1");
    assert_eq!(camera["status"], "unknown");

    // Everyone reads; below admin the stream password is redacted.
    let listed = data(&send(&state, bare_request("GET", "/api/cameras", Some(&viewer))).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["stream_url"], "rtsp://admin:***@10.0.0.5:554/s1");
    let one = data(&send(&state, bare_request("GET", &format!("/api/cameras/{id}"), Some(&viewer))).await);
    assert_eq!(one["name"], "door");

    // Viewer cannot update or delete; admin can.
    let path = format!("/api/cameras/{id}");
    let rename = json!({ "name": "front door", "status": "online" });
    send(&state, json_request("PUT", &path, Some(&viewer), &rename)).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    send(&state, bare_request("DELETE", &path, Some(&viewer))).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let renamed = data(&send(&state, json_request("PUT", &path, Some(&admin), &rename)).await);
    assert_eq!((renamed["name"].as_str(), renamed["status"].as_str()), (Some("front door"), Some("online")));

    // Validation names the field; duplicates are 409 on `name`.
    let cases = [
        (json!({ "site_id": p.site_id, "name": "x", "stream_url": "file:///etc/passwd" }), "stream_url"),
        (json!({ "site_id": p.site_id, "name": " ", "stream_url": "rtsp://c/1" }), "name"),
        (json!({ "site_id": "hq", "name": "x", "stream_url": "rtsp://c/1" }), "site_id"),
        (json!({ "name": "x", "stream_url": "rtsp://c/1" }), "site_id"),
        (json!({ "site_id": Uuid::now_v7(), "name": "x", "stream_url": "rtsp://c/1" }), "site_id"),
        (
            json!({ "site_id": p.site_id, "zone_id": Uuid::now_v7(), "name": "x", "stream_url": "rtsp://c/1" }),
            "zone_id",
        ),
    ];
    for (body, field) in cases {
        let reply = send(&state, json_request("POST", "/api/cameras", Some(&admin), &body)).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], field, "{body}");
    }
    let dup =
        send(&state, json_request("POST", "/api/cameras", Some(&admin), &camera_body(p.site_id, "front door"))).await;
    assert_eq!(dup.error(StatusCode::CONFLICT, "CONFLICT")["details"]["field"], "name");
    let bad_status = send(&state, json_request("PUT", &path, Some(&admin), &json!({ "status": "on fire" }))).await;
    assert_eq!(bad_status.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "status");

    // Zones: admin creates, cameras join them, anyone lists.
    let zone = data(
        &send(
            &state,
            json_request("POST", "/api/zones", Some(&admin), &json!({ "site_id": p.site_id, "name": "lobby" })),
        )
        .await,
    );
    let zoned = data(&send(&state, json_request("PUT", &path, Some(&admin), &json!({ "zone_id": zone["id"] }))).await);
    assert_eq!(zoned["zone_id"], zone["id"]);
    let zones =
        data(&send(&state, bare_request("GET", &format!("/api/zones?site={}", p.site_id), Some(&viewer))).await);
    assert_eq!(zones[0]["name"], "lobby");
    let sites = data(&send(&state, bare_request("GET", "/api/sites", Some(&viewer))).await);
    assert_eq!(sites[0]["id"], p.site_id.to_string());
    let sensors = data(&send(&state, bare_request("GET", "/api/sensors", Some(&viewer))).await);
    assert_eq!(sensors, json!([]));

    let deleted = send(&state, bare_request("DELETE", &path, Some(&admin))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    send(&state, bare_request("GET", &path, Some(&admin))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// Tenant B's admin walks every camera endpoint with tenant A's ids: 404 or 400, never A's data.
#[tokio::test]
async fn another_tenants_ids_are_not_found() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin_a = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let admin_b = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;
    let camera = data(
        &send(&state, json_request("POST", "/api/cameras", Some(&admin_a), &camera_body(a.site_id, "vault"))).await,
    );
    let id = camera["id"].as_str().unwrap();
    let path = format!("/api/cameras/{id}");
    upload(&state, &a, &[event(&a, EventKind::DetectionPerson, chrono::Utc::now())]).await;

    send(&state, bare_request("GET", &path, Some(&admin_b))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let put = json_request("PUT", &path, Some(&admin_b), &json!({ "name": "pwned" }));
    send(&state, put).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    send(&state, bare_request("DELETE", &path, Some(&admin_b))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Registering a camera at A's site, or in A's zone, is refused as an unknown site.
    let steal =
        send(&state, json_request("POST", "/api/cameras", Some(&admin_b), &camera_body(a.site_id, "spy"))).await;
    assert_eq!(steal.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "site_id");
    let zone = json!({ "site_id": a.site_id, "name": "spy zone" });
    let steal_zone = send(&state, json_request("POST", "/api/zones", Some(&admin_b), &zone)).await;
    assert_eq!(steal_zone.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "site_id");

    // Lists show only B's things.
    for list in ["/api/cameras", "/api/zones", "/api/sensors"] {
        let items = data(&send(&state, bare_request("GET", list, Some(&admin_b))).await);
        assert_eq!(items, json!([]), "{list}");
    }
    let sites = data(&send(&state, bare_request("GET", "/api/sites", Some(&admin_b))).await);
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert_eq!(sites[0]["id"], b.site_id.to_string());
    let events = data(&send(&state, bare_request("GET", "/api/events", Some(&admin_b))).await);
    assert_eq!(events["items"], json!([]));
    let events =
        data(&send(&state, bare_request("GET", &format!("/api/events?site={}", a.site_id), Some(&admin_b))).await);
    assert_eq!(events["items"], json!([]));

    // A still has everything, untouched.
    let own = data(&send(&state, bare_request("GET", &path, Some(&admin_a))).await);
    assert_eq!(own["name"], "vault");
    let events = data(&send(&state, bare_request("GET", "/api/events", Some(&admin_a))).await);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);

    // Only a superuser may act on another tenant, and only by naming it.
    let header_request = |token: &str| {
        axum::http::Request::get(&path)
            .header("authorization", format!("Bearer {token}"))
            .header("x-vigil-tenant", a.tenant_id.to_string())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    send(&state, header_request(&admin_b)).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let root = token_for(&state, b.tenant_id, "root@operator.test", Role::Superuser).await;
    send(&state, bare_request("GET", &path, Some(&root))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(data(&send(&state, header_request(&root)).await)["name"], "vault");
}

#[tokio::test]
async fn events_accept_access_tokens_and_export_csv() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let other_site = state.store.provision_edge("acme", "warehouse", "edge-2", None).await.unwrap();
    upload(&state, &p, &[event(&p, EventKind::DetectionPerson, chrono::Utc::now())]).await;
    upload(&state, &other_site, &[event(&other_site, EventKind::AccessDenied, chrono::Utc::now())]).await;
    let viewer = token_for(&state, p.tenant_id, "viewer@acme.test", Role::Viewer).await;

    let json_page = data(&send(&state, bare_request("GET", "/api/events", Some(&viewer))).await);
    assert_eq!(json_page["items"].as_array().unwrap().len(), 2);
    // The API key still works.
    let by_key = data(&send(&state, bare_request("GET", "/api/events", Some(&p.api_key))).await);
    assert_eq!(by_key["items"].as_array().unwrap().len(), 2);

    for request in [
        bare_request("GET", "/api/events?format=csv&limit=1", Some(&viewer)),
        axum::http::Request::get("/api/events?limit=1")
            .header("authorization", format!("Bearer {viewer}"))
            .header("accept", "text/csv")
            .body(axum::body::Body::empty())
            .unwrap(),
    ] {
        let reply = send(&state, request).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["content-type"], "text/csv; charset=utf-8");
        assert!(reply.headers.contains_key("x-next-cursor"));
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "id,occurred_at,received_at,kind,site_id,edge_id,zone,source_kind,source_id,payload");
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].contains("access.denied"), "{text}");
    }
    let bad = send(&state, bare_request("GET", "/api/events?format=xml", Some(&viewer))).await;
    assert_eq!(bad.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "format");

    // A user scoped to one site sees only that site's events.
    let hash = state.auth.hasher.hash(crate::common::PASSWORD.into()).await.unwrap();
    let scoped = cloud_store::NewUser {
        email: "guard@acme.test",
        username: "guard",
        password_hash: &hash,
        full_name: None,
        role: Role::Security,
        site_ids: Some(vec![p.site_id]),
    };
    state.store.create_user(p.tenant_id, &scoped).await.unwrap();
    let reply = crate::common::login(&state, "guard@acme.test", crate::common::PASSWORD).await;
    let guard = data(&reply)["access_token"].as_str().unwrap().to_owned();
    let page = data(&send(&state, bare_request("GET", "/api/events", Some(&guard))).await);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["site_id"], p.site_id.to_string());
    let sites = data(&send(&state, bare_request("GET", "/api/sites", Some(&guard))).await);
    assert_eq!(sites.as_array().unwrap().len(), 1);
}

/// The seed's role rule: a viewer cannot command a door, security can; admins manage devices.
#[tokio::test]
async fn viewer_cannot_command_a_door_security_can() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let user = token_for(&state, a.tenant_id, "user@acme.test", Role::User).await;
    let other_admin = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;

    let door = json!({ "site_id": a.site_id, "name": "front door", "kind": "door" });
    send(&state, json_request("POST", "/api/devices", Some(&security), &door))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let created = send(&state, json_request("POST", "/api/devices", Some(&admin), &door)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = data(&created)["id"].as_str().unwrap().to_owned();
    let bad_kind = json!({ "site_id": a.site_id, "name": "x", "kind": "toaster" });
    let reply = send(&state, json_request("POST", "/api/devices", Some(&admin), &bad_kind)).await;
    assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "kind");

    let command_path = format!("/api/devices/{id}/command");
    let unlock = json!({ "command": "unlock", "params": { "seconds": 5 } });
    for token in [&viewer, &user] {
        let reply = send(&state, json_request("POST", &command_path, Some(token), &unlock)).await;
        assert_eq!(reply.error(StatusCode::FORBIDDEN, "FORBIDDEN")["details"]["required_role"], "security");
    }
    let queued = send(&state, json_request("POST", &command_path, Some(&security), &unlock)).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    assert_eq!(data(&queued)["status"], "queued");
    let admin_lock =
        send(&state, json_request("POST", &command_path, Some(&admin), &json!({ "command": "lock" }))).await;
    assert_eq!(admin_lock.status, StatusCode::ACCEPTED);
    let bogus =
        send(&state, json_request("POST", &command_path, Some(&security), &json!({ "command": "explode" }))).await;
    assert_eq!(bogus.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "command");

    // Anyone in the tenant reads the device and its queue; config is admin-only.
    let status = data(&send(&state, bare_request("GET", &format!("/api/devices/{id}/status"), Some(&viewer))).await);
    let queue: Vec<&str> =
        status["queued_commands"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    assert_eq!(queue, ["unlock", "lock"]);
    let config_path = format!("/api/devices/{id}/config");
    let config = json!({ "config": { "unlock_seconds": 5 } });
    send(&state, json_request("PUT", &config_path, Some(&security), &config))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let configured = data(&send(&state, json_request("PUT", &config_path, Some(&admin), &config)).await);
    assert_eq!(configured["config"]["unlock_seconds"], 5);
    assert_eq!(
        data(&send(&state, bare_request("GET", "/api/devices", Some(&viewer))).await).as_array().unwrap().len(),
        1
    );

    // Another tenant's admin gets 404 everywhere and queues nothing.
    for (method, path, body) in [
        ("GET", format!("/api/devices/{id}"), None),
        ("GET", format!("/api/devices/{id}/status"), None),
        ("PUT", config_path.clone(), Some(config.clone())),
        ("POST", command_path.clone(), Some(unlock.clone())),
    ] {
        let request = match body {
            Some(body) => json_request(method, &path, Some(&other_admin), &body),
            None => bare_request(method, &path, Some(&other_admin)),
        };
        send(&state, request).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(data(&send(&state, bare_request("GET", "/api/devices", Some(&other_admin))).await), json!([]));
    let id = Uuid::parse_str(&id).unwrap();
    assert_eq!(state.store.queued_device_commands(a.tenant_id, id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn detections_recent_and_by_id_stay_in_the_tenant() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let now = chrono::Utc::now();
    let person = event(&a, EventKind::DetectionPerson, now);
    let denied = event(&a, EventKind::AccessDenied, now);
    upload(&state, &a, &[person.clone(), denied.clone()]).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let other = token_for(&state, b.tenant_id, "viewer@globex.test", Role::Viewer).await;

    let recent = data(&send(&state, bare_request("GET", "/api/detections/recent", Some(&viewer))).await);
    let ids: Vec<&str> = recent.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [person.id.to_string()]);
    let by_key = data(&send(&state, bare_request("GET", "/api/detections/recent?limit=1", Some(&a.api_key))).await);
    assert_eq!(by_key.as_array().unwrap().len(), 1);
    let bad = send(&state, bare_request("GET", "/api/detections/recent?limit=0", Some(&viewer))).await;
    assert_eq!(bad.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "limit");

    let one = data(&send(&state, bare_request("GET", &format!("/api/detections/{}", person.id), Some(&viewer))).await);
    assert_eq!(one["kind"], "detection.person");
    // Not a detection, unknown, or another tenant's: 404 alike.
    for (token, id) in [(&viewer, denied.id), (&viewer, Uuid::now_v7()), (&other, person.id)] {
        let reply = send(&state, bare_request("GET", &format!("/api/detections/{id}"), Some(token))).await;
        reply.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(data(&send(&state, bare_request("GET", "/api/detections/recent", Some(&other))).await), json!([]));
}

#[tokio::test]
async fn streams_are_started_by_security_and_scoped_to_the_tenant() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let other = token_for(&state, b.tenant_id, "sec@globex.test", Role::Security).await;
    let camera =
        data(&send(&state, json_request("POST", "/api/cameras", Some(&admin), &camera_body(a.site_id, "gate"))).await);
    let body = json!({ "camera_id": camera["id"] });

    send(&state, json_request("POST", "/api/streams/start", Some(&viewer), &body))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    send(&state, json_request("POST", "/api/streams/start", Some(&other), &body))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let started = send(&state, json_request("POST", "/api/streams/start", Some(&security), &body)).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    assert_eq!(data(&started)["action"], "start");
    let stopped = send(&state, json_request("POST", "/api/streams/stop", Some(&security), &body)).await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED);
    let missing = send(&state, json_request("POST", "/api/streams/stop", Some(&security), &json!({}))).await;
    assert_eq!(missing.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "camera_id");

    let status = data(&send(&state, bare_request("GET", "/api/streams/status", Some(&viewer))).await);
    assert_eq!(status[0]["camera_id"], camera["id"]);
    assert_eq!(status[0]["last_action"], "stop");
    assert_eq!(data(&send(&state, bare_request("GET", "/api/streams/status", Some(&other))).await), json!([]));
}

#[tokio::test]
async fn people_and_credentials_roles_isolation_and_write_only_pins() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    let admin = token_for(&state, a.tenant_id, "admin@acme.test", Role::Admin).await;
    let security = token_for(&state, a.tenant_id, "sec@acme.test", Role::Security).await;
    let viewer = token_for(&state, a.tenant_id, "viewer@acme.test", Role::Viewer).await;
    let other = token_for(&state, b.tenant_id, "admin@globex.test", Role::Admin).await;

    let alice = json!({ "name": "Alice", "groups": ["staff"] });
    send(&state, json_request("POST", "/api/people", Some(&security), &alice))
        .await
        .error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let person = data(&send(&state, json_request("POST", "/api/people", Some(&admin), &alice)).await);
    let id = person["id"].as_str().unwrap().to_owned();
    // People are personal data: viewers cannot list them.
    send(&state, bare_request("GET", "/api/people", Some(&viewer))).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(data(&send(&state, bare_request("GET", "/api/people", Some(&security))).await)[0]["name"], "Alice");

    let creds = format!("/api/people/{id}/credentials");
    let badge = json!({ "badge": "04A1B2C3", "pin": "4321" });
    let issued = send(&state, json_request("POST", &creds, Some(&admin), &badge)).await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let credential = data(&issued);
    assert_eq!(credential["has_pin"], true);
    assert!(!issued.json().to_string().contains("4321"), "the PIN leaked");
    let dup = send(&state, json_request("POST", &creds, Some(&admin), &json!({ "badge": "04A1B2C3" }))).await;
    assert_eq!(dup.error(StatusCode::CONFLICT, "CONFLICT")["details"]["field"], "badge");
    for (body, field) in [
        (json!({ "pin": "12" }), "pin"),
        (json!({ "pin": "12ab" }), "pin"),
        (json!({}), "badge"),
        (
            json!({ "badge": "X", "valid_from": "2026-01-02T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z" }),
            "valid_until",
        ),
    ] {
        let reply = send(&state, json_request("POST", &creds, Some(&admin), &body)).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], field, "{body}");
    }
    let listed = send(&state, bare_request("GET", &creds, Some(&security))).await;
    assert!(!String::from_utf8_lossy(&listed.body).contains("4321"));
    assert_eq!(data(&listed).as_array().unwrap().len(), 1);

    // Another tenant: 404 for the person, their credentials and revocation; nothing listed.
    let cred_id = credential["id"].as_str().unwrap();
    send(&state, bare_request("GET", &creds, Some(&other))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    send(&state, json_request("POST", &creds, Some(&other), &json!({ "badge": "EVIL" })))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let revoke = format!("/api/credentials/{cred_id}/revoke");
    send(&state, bare_request("POST", &revoke, Some(&other))).await.error(StatusCode::NOT_FOUND, "NOT_FOUND");
    send(&state, bare_request("DELETE", &format!("/api/people/{id}"), Some(&other)))
        .await
        .error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(data(&send(&state, bare_request("GET", "/api/people", Some(&other))).await), json!([]));

    // Security revokes a lost badge; admin removes the person.
    send(&state, bare_request("POST", &revoke, Some(&viewer))).await.error(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(data(&send(&state, bare_request("POST", &revoke, Some(&security))).await)["revoked"], true);
    let gone = send(&state, bare_request("DELETE", &format!("/api/people/{id}"), Some(&admin))).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
}
