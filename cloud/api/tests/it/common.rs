//! Shared fixtures: the cluster, fresh app states, requests and event builders.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use cloud_api::auth::{AuthConfig, HashCost};
use cloud_api::media::MediaStore;
use cloud_api::{AppState, app};
use cloud_store::{Provisioned, Store};
use test_support::PgCluster;
use tower::ServiceExt as _;
use uuid::Uuid;
use vigil_proto::{
    AccessDecision, BatchAck, BoundingBox, CBOR_CONTENT_TYPE, DetectedObject, Detection, Event, EventBatch, EventKind,
    INGEST_EVENTS_PATH, Payload, SCHEMA_VERSION, Source, SourceKind, Timestamp, codec,
};

fn cluster() -> &'static PgCluster {
    static PG: OnceLock<PgCluster> = OnceLock::new();
    PG.get_or_init(|| PgCluster::start().expect("cannot start the test PostgreSQL cluster"))
}

/// App state on a new, migrated database, with media stored in a directory of its own.
pub async fn fresh_state() -> AppState {
    let url = fresh_database_url();
    let media = MediaStore::local(&fresh_dir("media"), 1024 * 1024).unwrap();
    state_on(&url, media).await
}

/// A new, empty database.
pub fn fresh_database_url() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    cluster().create_database(&format!("api_it_{n}")).unwrap()
}

/// A new directory that disappears with the test cluster.
pub fn fresh_dir(what: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = cluster().dir().join(format!("{what}-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// App state (as a freshly started cloud would build it) on the database at `url`, migrated.
pub async fn state_on(url: &str, media: MediaStore) -> AppState {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    AppState::build(store, test_auth_config()).await.unwrap().with_media(media)
}

/// Production settings except a cheap Argon2 cost (the hashes are still Argon2id).
pub fn test_auth_config() -> AuthConfig {
    AuthConfig { hash_cost: HashCost::TEST, ..AuthConfig::default() }
}

/// Provisions edge `edge-1` at site `hq` of `tenant`.
pub async fn provision(state: &AppState, tenant: &str) -> Provisioned {
    state.store.provision_edge(tenant, "hq", "edge-1", None).await.unwrap()
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn ack(&self) -> BatchAck {
        assert_eq!(self.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.headers[header::CONTENT_TYPE], CBOR_CONTENT_TYPE);
        codec::decode(&self.body).unwrap()
    }

    /// Asserts a JSON error envelope with `status` and `code`; returns the `error` object.
    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "{:?}", String::from_utf8_lossy(&self.body));
        let body = self.json();
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["timestamp"].as_str().is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()), "{body}");
        body["error"].clone()
    }
}

/// Runs one request through a fresh router.
pub async fn send(state: &AppState, request: Request<Body>) -> Reply {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply { status, headers, body }
}

/// `POST` to the ingest endpoint with an optional bearer token and content type.
pub fn ingest_request(token: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut request = Request::post(INGEST_EVENTS_PATH);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(Body::from(body)).unwrap()
}

/// Encodes `events` as a current-schema batch.
pub fn batch_bytes(events: &[Event]) -> Vec<u8> {
    codec::encode(&EventBatch { schema: SCHEMA_VERSION, sent_at: Timestamp::from(Utc::now()), events: events.to_vec() })
        .unwrap()
}

/// Uploads `events` as the provisioned edge and returns the acknowledgement.
pub async fn upload(state: &AppState, p: &Provisioned, events: &[Event]) -> BatchAck {
    send(state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), batch_bytes(events))).await.ack()
}

/// `GET path` with an optional bearer key.
pub fn get(path: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    request.body(Body::empty()).unwrap()
}

/// An event of `kind` (detections or access decisions) from the provisioned edge at `at`.
pub fn event(p: &Provisioned, kind: EventKind, at: DateTime<Utc>) -> Event {
    let payload = match kind {
        EventKind::AccessGranted | EventKind::AccessDenied => Payload::Access(AccessDecision {
            door: "front".into(),
            credential: None,
            person: Some("alice".into()),
            reason: "valid_credential".into(),
        }),
        _ => Payload::Detection(Detection {
            model: "yolov8n".into(),
            frame_seq: 1,
            frame_width: 640,
            frame_height: 480,
            objects: vec![DetectedObject {
                class_id: 0,
                label: "person".into(),
                score: 0.875,
                bbox: BoundingBox { x: 0.5, y: 0.25, w: 0.125, h: 0.5 },
                track: None,
            }],
            clip: None,
        }),
    };
    Event {
        id: Uuid::now_v7(),
        tenant: p.tenant_id.as_uuid(),
        site: p.site_id,
        zone: Some("lobby".into()),
        source: Source { kind: SourceKind::Camera, id: "cam-1".into() },
        kind,
        occurred_at: Timestamp::from(at),
        payload,
    }
}

/// A password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates a user with [`PASSWORD`] in `tenant` directly in the store (as the operator would).
pub async fn create_user(
    state: &AppState,
    tenant: cloud_store::TenantId,
    email: &str,
    role: cloud_store::Role,
) -> Uuid {
    let hash = state.auth.hasher.hash(PASSWORD.into()).await.unwrap();
    let username = email.split('@').next().unwrap();
    let new = cloud_store::NewUser { email, username, password_hash: &hash, full_name: None, role, site_ids: None };
    state.store.create_user(tenant, &new).await.unwrap().id
}

/// Logs in and returns `data` (tokens and user).
pub async fn login(state: &AppState, email: &str, password: &str) -> Reply {
    send(
        state,
        json_request("POST", "/api/auth/login", None, &serde_json::json!({ "email": email, "password": password })),
    )
    .await
}

/// Creates a user of `role` in `tenant` and returns an access token for them.
pub async fn token_for(
    state: &AppState,
    tenant: cloud_store::TenantId,
    email: &str,
    role: cloud_store::Role,
) -> String {
    create_user(state, tenant, email, role).await;
    let reply = login(state, email, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&reply.body));
    reply.json()["data"]["access_token"].as_str().unwrap().to_owned()
}

/// A JSON request with an optional bearer credential.
pub fn json_request(method: &str, path: &str, token: Option<&str>, body: &serde_json::Value) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// A bodiless request with an optional bearer credential.
pub fn bare_request(method: &str, path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}
