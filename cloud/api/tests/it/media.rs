//! Clip and snapshot uploads through the cloud into a real S3-protocol server (s3s-fs) and the
//! local filesystem; objects read back with a real S3 client (the `aws` CLI), independent of our code.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use cloud_api::AppState;
use cloud_api::media::{MediaStore, S3Settings, object_path};
use cloud_store::Provisioned;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use test_support::{S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, S3Server};
use uuid::Uuid;
use vigil_proto::{EventKind, MediaRef, Payload};

use crate::common::{
    Reply, bare_request, event, fresh_database_url, fresh_dir, json_request, provision, send, state_on, upload,
};

/// Short: s3s-fs keeps multipart state in a file named after the base64 of bucket and key.
const BUCKET: &str = "vgl";
/// The smallest part size S3 allows.
const PART: usize = 5 * 1024 * 1024;

fn s3_store(s3: &S3Server) -> MediaStore {
    let settings = S3Settings {
        bucket: BUCKET.into(),
        endpoint: Some(s3.endpoint()),
        region: S3_REGION.into(),
        path_style: true,
        allow_http: true,
        access_key_id: Some(S3_ACCESS_KEY.into()),
        secret_access_key: Some(S3_SECRET_KEY.into()),
    };
    MediaStore::s3(&settings, PART as u64).unwrap()
}

/// Deterministic, incompressible-looking bytes.
fn file(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn announce_body(key: &str, bytes: &[u8], event: Option<Uuid>) -> Value {
    let content_type = if key.ends_with(".jpg") { "image/jpeg" } else { "video/mp4" };
    json!({ "key": key, "content_type": content_type, "bytes": bytes.len(), "sha256": sha256(bytes), "event": event })
}

async fn announce(state: &AppState, token: &str, body: &Value) -> Reply {
    send(state, json_request("POST", "/api/edge/media", Some(token), body)).await
}

fn part_request(token: &str, id: &str, n: u64, data: Vec<u8>) -> Request<Body> {
    Request::put(format!("/api/edge/media/{id}/part?n={n}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(data))
        .unwrap()
}

async fn put_part(state: &AppState, token: &str, id: &str, n: u64, whole: &[u8], part_size: usize) -> Reply {
    let start = n as usize * part_size;
    let data = whole[start..(start + part_size).min(whole.len())].to_vec();
    send(state, part_request(token, id, n, data)).await
}

async fn complete(state: &AppState, token: &str, id: &str) -> Reply {
    send(state, bare_request("POST", &format!("/api/edge/media/{id}/complete"), Some(token))).await
}

#[track_caller]
fn data(reply: &Reply) -> Value {
    assert!(reply.status.is_success(), "{} {:?}", reply.status, String::from_utf8_lossy(&reply.body));
    reply.json()["data"].clone()
}

/// A detection event whose clip is `key`, uploaded by the edge.
async fn detection_with_clip(state: &AppState, p: &Provisioned, key: &str) -> Uuid {
    let mut e = event(p, EventKind::DetectionPerson, Utc::now());
    if let Payload::Detection(d) = &mut e.payload {
        d.clip = Some(MediaRef { key: key.into(), content_type: "video/mp4".into() });
    }
    upload(state, p, std::slice::from_ref(&e)).await;
    e.id
}

/// The `media` of the event `id` in `GET /api/events`.
async fn event_media(state: &AppState, api_key: &str, id: Uuid) -> Value {
    let page = data(&send(state, bare_request("GET", "/api/events", Some(api_key))).await);
    let item = page["items"].as_array().unwrap().iter().find(|e| e["id"] == id.to_string()).cloned();
    item.unwrap_or_else(|| panic!("event {id} not listed: {page}"))["media"].clone()
}

/// Announce, send some parts, "cut", restart the cloud on the same database and store, resume,
/// complete: the object equals the file. Returns the media id, the object path and the last state.
async fn interrupted_upload(
    make_state: impl AsyncFn() -> AppState,
    whole: &[u8],
    key: &str,
) -> (String, String, AppState, Provisioned) {
    let state = make_state().await;
    let p = provision(&state, "acme").await;
    let event = detection_with_clip(&state, &p, key).await;
    let media = event_media(&state, &p.api_key, event).await;
    assert_eq!(media["available"], false, "{media}");
    assert_eq!(media["key"], key);

    let first = data(&announce(&state, &p.edge_token, &announce_body(key, whole, Some(event))).await);
    let id = first["id"].as_str().unwrap().to_owned();
    let part_size = first["part_size"].as_u64().unwrap() as usize;
    let parts = first["parts"].as_u64().unwrap();
    assert_eq!(parts, whole.len().div_ceil(part_size) as u64);
    assert!(parts >= 3, "a multi-part file: {parts} parts of {part_size}");
    assert_eq!(first["received"], json!([]));
    assert_eq!(first["complete"], false);

    // Parts 0 and 2 arrive, then the link drops.
    for n in [0, 2] {
        let reply = put_part(&state, &p.edge_token, &id, n, whole, part_size).await;
        assert_eq!(data(&reply)["part"], n);
    }
    // Completing now names what is missing.
    let early = complete(&state, &p.edge_token, &id).await;
    let error = early.error(StatusCode::CONFLICT, "INCOMPLETE");
    let missing: Vec<u64> = (1..parts).filter(|n| *n != 2).collect();
    assert_eq!(error["details"]["missing"], json!(missing));
    drop(state);

    // The cloud restarts (new process state, same database and store); the edge announces again.
    let state = make_state().await;
    let again = data(&announce(&state, &p.edge_token, &announce_body(key, whole, Some(event))).await);
    assert_eq!(again["id"], id.as_str(), "the same upload");
    assert_eq!(again["received"], json!([0, 2]));
    // Part 0 resent (a retry after a lost answer) replaces the first copy.
    data(&put_part(&state, &p.edge_token, &id, 0, whole, part_size).await);
    for n in missing {
        data(&put_part(&state, &p.edge_token, &id, n, whole, part_size).await);
    }
    let done = data(&complete(&state, &p.edge_token, &id).await);
    assert_eq!(done["complete"], true);
    // Completing or announcing again changes nothing.
    assert_eq!(data(&complete(&state, &p.edge_token, &id).await)["complete"], true);
    let later = data(&announce(&state, &p.edge_token, &announce_body(key, whole, Some(event))).await);
    assert_eq!((later["id"].as_str(), later["complete"].as_bool()), (Some(id.as_str()), Some(true)));

    // The event links to the object, which users read back.
    let media = event_media(&state, &p.api_key, event).await;
    assert_eq!(media["available"], true, "{media}");
    assert_eq!(media["bytes"], whole.len());
    assert_eq!(media["url"], format!("/api/media/{id}"));
    let read = send(&state, bare_request("GET", &format!("/api/media/{id}"), Some(&p.api_key))).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.headers[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(read.body.len(), whole.len());
    assert!(read.body == whole, "the object read through the API differs from the file");
    let path = object_path(p.tenant_id.as_uuid(), p.site_id, key).to_string();
    (id, path, state, p)
}

#[tokio::test]
async fn a_multipart_upload_to_s3_resumes_after_a_cut_and_a_cloud_restart() {
    let s3 = S3Server::start(&[BUCKET]).unwrap();
    let url = fresh_database_url();
    let whole = file(2 * PART + 123_457, 7);
    let key = format!("clips/cam-1/{}.mp4", Uuid::now_v7());
    let (_, path, _, _) = interrupted_upload(async || state_on(&url, s3_store(&s3)).await, &whole, &key).await;

    // A real S3 client, independent of our code, reads the object back.
    let stored = s3.get_object(BUCKET, &path).unwrap_or_else(|e| panic!("{e:#}\n{}", s3.log()));
    assert_eq!(stored.len(), whole.len());
    assert_eq!(sha256(&stored), sha256(&whole));
    assert_eq!(s3.list_keys(BUCKET, "").unwrap(), [path], "exactly one object, under tenant/site/key");
}

#[tokio::test]
async fn the_filesystem_backend_resumes_and_assembles_the_same_way() {
    let url = fresh_database_url();
    let dir = fresh_dir("media-fs");
    let whole = file(3 * 1024 * 1024 + 5, 11);
    let key = format!("clips/cam-2/{}.mp4", Uuid::now_v7());
    let (_, path, _, _) =
        interrupted_upload(async || state_on(&url, MediaStore::local(&dir, 1024 * 1024).unwrap()).await, &whole, &key)
            .await;
    let stored = std::fs::read(dir.join(&path)).unwrap();
    assert!(stored == whole, "the file on disk differs");
    let staging: Vec<_> = std::fs::read_dir(dir.join("_staging")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(staging.is_empty(), "staged parts left behind: {staging:?}");
}

#[tokio::test]
async fn bad_keys_sizes_and_mismatches_are_refused_and_lose_nothing() {
    let s3 = S3Server::start(&[BUCKET]).unwrap();
    let url = fresh_database_url();
    let state = state_on(&url, s3_store(&s3)).await;
    let p = provision(&state, "acme").await;
    let token = p.edge_token.as_str();
    let small = file(1000, 3);

    for (key, content_type, field) in [
        ("clips/../../other-tenant/x.mp4", "video/mp4", "key"),
        ("clips/cam/../x.mp4", "video/mp4", "key"),
        ("/etc/passwd", "video/mp4", "key"),
        ("recordings/cam/x.mp4", "video/mp4", "key"),
        ("clips/cam/x.mp4", "image/jpeg", "key"),
        ("clips/cam/x.exe", "video/mp4", "key"),
    ] {
        let body = json!({ "key": key, "content_type": content_type, "bytes": 1000, "sha256": sha256(&small) });
        let error = announce(&state, token, &body).await.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(error["details"]["field"], field, "{key}");
    }
    let long_key = format!("clips/cam/{}.mp4", "a".repeat(400));
    let error = announce(&state, token, &announce_body(&long_key, &small, None)).await;
    assert_eq!(error.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "key");
    for (bytes, sha, field) in [
        (0u64, sha256(&small), "bytes"),
        (1000, "ABC".into(), "sha256"),
        (1000, "0".repeat(64).to_uppercase() + "x", "sha256"),
    ] {
        let body = json!({ "key": "clips/cam/x.mp4", "content_type": "video/mp4", "bytes": bytes, "sha256": sha });
        let error = announce(&state, token, &body).await.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(error["details"]["field"], field);
    }
    // A user's credential is not an edge's.
    assert_eq!(
        announce(&state, &p.api_key, &announce_body("clips/cam/x.mp4", &small, None)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Parts of the wrong size or number.
    let up = data(&announce(&state, token, &announce_body("snapshots/cam/s1.jpg", &small, None)).await);
    let id = up["id"].as_str().unwrap().to_owned();
    assert_eq!(up["parts"], 1);
    let too_big = send(&state, part_request(token, &id, 0, file(1001, 3))).await;
    too_big.error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let short = send(&state, part_request(token, &id, 0, small[..999].to_vec())).await;
    assert_eq!(short.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "body");
    let beyond = send(&state, part_request(token, &id, 1, small.clone())).await;
    assert_eq!(beyond.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR")["details"]["field"], "n");
    data(&send(&state, part_request(token, &id, 0, small.clone())).await);
    assert_eq!(data(&complete(&state, token, &id).await)["complete"], true);
    // Another file under a completed key is a conflict; the stored object is kept.
    let other = file(1000, 4);
    announce(&state, token, &announce_body("snapshots/cam/s1.jpg", &other, None))
        .await
        .error(StatusCode::CONFLICT, "CONFLICT");
    let path = object_path(p.tenant_id.as_uuid(), p.site_id, "snapshots/cam/s1.jpg").to_string();
    assert!(s3.get_object(BUCKET, &path).unwrap() == small);
    // A part for a complete upload is refused.
    send(&state, part_request(token, &id, 0, small.clone())).await.error(StatusCode::CONFLICT, "CONFLICT");

    // A file whose bytes do not match the announced SHA-256: refused at completion, nothing
    // stored under the key, and the upload starts over.
    let announced = file(1000, 5);
    let up = data(&announce(&state, token, &announce_body("snapshots/cam/s2.jpg", &announced, None)).await);
    let id = up["id"].as_str().unwrap().to_owned();
    data(&send(&state, part_request(token, &id, 0, file(1000, 6))).await);
    let refused = complete(&state, token, &id).await;
    let error = refused.error(StatusCode::UNPROCESSABLE_ENTITY, "MEDIA_MISMATCH");
    assert_eq!(error["details"]["sha256"], sha256(&file(1000, 6)));
    let path = object_path(p.tenant_id.as_uuid(), p.site_id, "snapshots/cam/s2.jpg").to_string();
    assert!(s3.get_object(BUCKET, &path).is_err(), "a mismatching object must not stay readable");
    let again = data(&announce(&state, token, &announce_body("snapshots/cam/s2.jpg", &announced, None)).await);
    assert_eq!((again["id"].as_str(), &again["received"]), (Some(id.as_str()), &json!([])));
    data(&send(&state, part_request(token, &id, 0, announced.clone())).await);
    assert_eq!(data(&complete(&state, token, &id).await)["complete"], true);
    assert!(s3.get_object(BUCKET, &path).unwrap() == announced);

    // The edge re-records a file before finishing (different size): the upload restarts for it.
    let v1 = file(2000, 8);
    let v2 = file(1500, 9);
    let up = data(&announce(&state, token, &announce_body("clips/cam/re.mp4", &v1, None)).await);
    data(&put_part(&state, token, up["id"].as_str().unwrap(), 0, &v1, PART).await);
    let up2 = data(&announce(&state, token, &announce_body("clips/cam/re.mp4", &v2, None)).await);
    assert_eq!(up2["received"], json!([]));
    data(&put_part(&state, token, up2["id"].as_str().unwrap(), 0, &v2, PART).await);
    data(&complete(&state, token, up2["id"].as_str().unwrap()).await);
    let path = object_path(p.tenant_id.as_uuid(), p.site_id, "clips/cam/re.mp4").to_string();
    assert!(s3.get_object(BUCKET, &path).unwrap() == v2);
}

#[tokio::test]
async fn other_tenants_and_other_sites_cannot_touch_or_read_an_upload() {
    let s3 = S3Server::start(&[BUCKET]).unwrap();
    let url = fresh_database_url();
    let state = state_on(&url, s3_store(&s3)).await;
    let a = provision(&state, "acme").await;
    let a_branch = state.store.provision_edge("acme", "branch", "edge-2", None).await.unwrap();
    let b = provision(&state, "globex").await;
    let whole = file(3000, 1);
    let key = "clips/cam-1/a.mp4";

    let up = data(&announce(&state, &a.edge_token, &announce_body(key, &whole, None)).await);
    let id = up["id"].as_str().unwrap().to_owned();
    for (who, token) in [("other tenant's edge", &b.edge_token), ("same tenant, other site", &a_branch.edge_token)] {
        let reply = send(&state, part_request(token, &id, 0, whole.clone())).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{who}: part");
        assert_eq!(complete(&state, token, &id).await.status, StatusCode::NOT_FOUND, "{who}: complete");
        // Announcing the same key makes that edge's own upload, under its own prefix.
        let own = data(&announce(&state, token, &announce_body(key, &whole, None)).await);
        assert_ne!(own["id"], id.as_str(), "{who}");
    }
    data(&put_part(&state, &a.edge_token, &id, 0, &whole, PART).await);
    data(&complete(&state, &a.edge_token, &id).await);
    let read = send(&state, bare_request("GET", &format!("/api/media/{id}"), Some(&a.api_key))).await;
    assert!(read.status == StatusCode::OK && read.body == whole);
    for (who, token) in [("other tenant's key", &b.api_key), ("edge token", &a.edge_token)] {
        let reply = send(&state, bare_request("GET", &format!("/api/media/{id}"), Some(token))).await;
        assert!(matches!(reply.status, StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED), "{who}: {}", reply.status);
    }
    // Only A's one object exists, under A's tenant and site.
    assert_eq!(s3.list_keys(BUCKET, "").unwrap(), [object_path(a.tenant_id.as_uuid(), a.site_id, key).to_string()]);
}
