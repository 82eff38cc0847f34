//! `POST /api/ingest/events`.

use axum::http::{StatusCode, header};
use chrono::Utc;
use cloud_api::AppState;
use cloud_store::Store;
use serde::Serialize;
use vigil_proto::{AckStatus, CBOR_CONTENT_TYPE, EventKind, SCHEMA_VERSION, Timestamp, codec};

use crate::common::{batch_bytes, event, fresh_state, ingest_request, provision, send, upload};

#[tokio::test]
async fn batch_round_trip_then_replay_is_duplicate() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let now = Utc::now();
    let events: Vec<_> = [EventKind::DetectionPerson, EventKind::AccessDenied, EventKind::DetectionVehicle]
        .map(|k| event(&p, k, now))
        .into();

    let ack = upload(&state, &p, &events).await;
    assert_eq!(ack.schema, SCHEMA_VERSION);
    assert_eq!(ack.results.iter().map(|r| r.id).collect::<Vec<_>>(), events.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(ack.results.iter().all(|r| r.status == AckStatus::Stored), "{ack:?}");

    let replay = upload(&state, &p, &events).await;
    assert!(replay.results.iter().all(|r| r.status == AckStatus::Duplicate), "{replay:?}");

    let empty = upload(&state, &p, &[]).await;
    assert!(empty.results.is_empty());
}

#[tokio::test]
async fn per_event_rejections_come_back_in_order() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let other = state.store.provision_edge("acme", "warehouse", "edge-2", None).await.unwrap();
    let good = event(&p, EventKind::DetectionPerson, Utc::now());
    let foreign_site = event(&other, EventKind::DetectionPerson, Utc::now());
    let ack = upload(&state, &p, &[good.clone(), foreign_site.clone(), good]).await;
    assert_eq!(ack.results[0].status, AckStatus::Stored);
    assert_eq!(ack.results[1].id, foreign_site.id);
    assert!(matches!(&ack.results[1].status, AckStatus::Rejected { reason } if reason.contains("site")));
    assert_eq!(ack.results[2].status, AckStatus::Duplicate);
}

#[tokio::test]
async fn credentials_are_required() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let body = batch_bytes(&[event(&p, EventKind::DetectionPerson, Utc::now())]);

    let missing = send(&state, ingest_request(None, Some(CBOR_CONTENT_TYPE), body.clone())).await;
    missing.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");

    for token in ["wrong", p.api_key.as_str(), &"f".repeat(10_000)] {
        let reply = send(&state, ingest_request(Some(token), Some(CBOR_CONTENT_TYPE), body.clone())).await;
        reply.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }

    let mut basic = ingest_request(None, Some(CBOR_CONTENT_TYPE), body.clone());
    basic.headers_mut().insert(header::AUTHORIZATION, format!("Basic {}", p.edge_token).parse().unwrap());
    send(&state, basic).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // Authentication comes before any other check.
    send(&state, ingest_request(Some("wrong"), Some("application/json"), b"{}".to_vec()))
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    // A revoked edge is locked out at once.
    assert!(state.store.revoke_edge(p.tenant_id, p.edge_id).await.unwrap());
    send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), body))
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn content_type_must_be_cbor() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let body = batch_bytes(&[event(&p, EventKind::DetectionPerson, Utc::now())]);
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let reply = send(&state, ingest_request(Some(&p.edge_token), content_type, body.clone())).await;
        let error = reply.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE");
        assert_eq!(error["details"]["expected"], CBOR_CONTENT_TYPE);
    }
    // Parameters and case do not matter.
    let reply = send(&state, ingest_request(Some(&p.edge_token), Some("Application/CBOR; x=1"), body)).await;
    assert_eq!(reply.ack().results.len(), 1);
}

#[tokio::test]
async fn undecodable_bodies_are_bad_requests() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let valid = batch_bytes(&[event(&p, EventKind::DetectionPerson, Utc::now())]);

    // Deterministic pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let truncated = valid[..valid.len() / 2].to_vec();
    let mut trailing = valid.clone();
    trailing.push(0);
    let json = br#"{"schema":1,"events":[]}"#.to_vec();

    for (name, body) in
        [("noise", noise), ("truncated", truncated), ("trailing", trailing), ("json", json), ("empty", vec![])]
    {
        let reply = send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), body)).await;
        let error = reply.error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        assert!(error["details"]["reason"].is_string(), "{name}: {error}");
    }
    // Nothing was stored along the way.
    let page = state.store.list_events(p.tenant_id, &Default::default()).await.unwrap();
    assert!(page.items.is_empty());
}

#[tokio::test]
async fn other_schema_versions_are_unprocessable() {
    #[derive(Serialize)]
    struct FutureBatch {
        schema: u16,
        envelopes: Vec<u32>,
    }
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;

    // A v2 batch of today's shape...
    let mut batch = vigil_proto::EventBatch {
        schema: SCHEMA_VERSION + 1,
        sent_at: Timestamp::from(Utc::now()),
        events: vec![event(&p, EventKind::DetectionPerson, Utc::now())],
    };
    let reply =
        send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), codec::encode(&batch).unwrap()))
            .await;
    let error = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "UNSUPPORTED_SCHEMA");
    assert_eq!(error["details"]["got"], SCHEMA_VERSION + 1);
    assert_eq!(error["details"]["supported"], serde_json::json!([1, 2]));

    // ...and one whose shape this build cannot decode at all.
    let future = codec::encode(&FutureBatch { schema: 7, envelopes: vec![1, 2] }).unwrap();
    send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), future))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "UNSUPPORTED_SCHEMA");

    batch.schema = 0;
    send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), codec::encode(&batch).unwrap()))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "UNSUPPORTED_SCHEMA");

    // Edges still on schema 1 (a subset of 2) keep uploading while they wait for their update.
    batch.schema = 1;
    let reply =
        send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), codec::encode(&batch).unwrap()))
            .await;
    assert_eq!(reply.status, StatusCode::OK);
    let ack: vigil_proto::BatchAck = codec::decode(&reply.body).unwrap();
    assert_eq!(ack.results[0].status, AckStatus::Stored);
}

#[tokio::test]
async fn size_limits() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;

    let huge = vec![0u8; cloud_api::routes::ingest::MAX_BODY_BYTES + 1];
    let reply = send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), huge)).await;
    reply.error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");

    let now = Utc::now();
    let many: Vec<_> =
        (0..=cloud_api::routes::ingest::MAX_EVENTS).map(|_| event(&p, EventKind::DetectionPerson, now)).collect();
    let reply = send(&state, ingest_request(Some(&p.edge_token), Some(CBOR_CONTENT_TYPE), batch_bytes(&many))).await;
    let error = reply.error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_eq!(error["details"]["max_events"], 5000);

    // Exactly the maximum is fine.
    let ack = upload(&state, &p, &many[..5000]).await;
    assert!(ack.results.iter().all(|r| r.status == AckStatus::Stored));
}

#[tokio::test]
async fn database_down_is_service_unavailable() {
    let url = format!("postgres://postgres@127.0.0.1:{}/gone", test_support::free_port());
    let (kid, pem) = cloud_api::auth::tokens::generate_key().unwrap();
    let keys = cloud_api::auth::Keys::from_pems(&[(kid, pem)]).unwrap();
    let state = AppState::new(Store::connect_lazy(&url).unwrap(), crate::common::test_auth_config(), keys).unwrap();
    let (ingest, health) = tokio::join!(
        send(&state, ingest_request(Some("any"), Some(CBOR_CONTENT_TYPE), vec![])),
        send(&state, crate::common::get("/health", None)),
    );
    let error = ingest.error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE");
    assert!(!error.to_string().contains("127.0.0.1"), "internal detail leaked: {error}");
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json(), serde_json::json!({ "status": "degraded", "database": "unreachable" }));
}
