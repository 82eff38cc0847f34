//! Upload throughput of a 50 MiB clip through the cloud's media API into each backend: the local
//! filesystem and a real S3-protocol server (s3s-fs on loopback). Requests go through the whole
//! router in process (`app(state).oneshot`, no TCP between edge and cloud), parts as an edge sends
//! them; "complete" includes the cloud's verification (S3: reading the object back).
//!
//! `cargo bench -p cloud-api --bench media_upload` (needs PostgreSQL 15 and s3s-fs: tests/setup/deps.sh).
//! Printed, never asserted.

use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, header};
use cloud_api::auth::{AuthConfig, HashCost};
use cloud_api::media::{MediaStore, S3Settings};
use cloud_api::{AppState, app};
use cloud_store::Store;
use sha2::{Digest as _, Sha256};
use test_support::{PgCluster, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, S3Server};
use tower::ServiceExt as _;

const MIB: usize = 1024 * 1024;
const SIZE: usize = 50 * MIB;
const PART: u64 = 8 * MIB as u64;

async fn call(state: &AppState, request: Request<Body>) -> serde_json::Value {
    let response = app(state.clone()).oneshot(request).await.expect("router");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    assert!(status.is_success(), "{status} {}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<serde_json::Value>(&body).expect("json")["data"].clone()
}

/// (seconds for the parts, seconds to complete)
async fn upload(state: &AppState, token: &str, key: &str, file: &[u8]) -> (f64, f64) {
    let sha = hex::encode(Sha256::digest(file));
    let announce = serde_json::json!({ "key": key, "content_type": "video/mp4", "bytes": file.len(), "sha256": sha });
    let request = Request::post("/api/edge/media")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(announce.to_string()))
        .expect("request");
    let started = Instant::now();
    let state_json = call(state, request).await;
    let id = state_json["id"].as_str().expect("id").to_owned();
    let part = state_json["part_size"].as_u64().expect("part size") as usize;
    for (n, chunk) in file.chunks(part).enumerate() {
        let request = Request::put(format!("/api/edge/media/{id}/part?n={n}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(chunk.to_vec()))
            .expect("request");
        call(state, request).await;
    }
    let parts = started.elapsed().as_secs_f64();
    let request = Request::post(format!("/api/edge/media/{id}/complete"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let started = Instant::now();
    let done = call(state, request).await;
    assert_eq!(done["complete"], true);
    (parts, started.elapsed().as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let pg = PgCluster::start().expect("PostgreSQL");
    let s3 = S3Server::start(&["vgl"]).expect("s3s-fs");
    let dir = tempfile_dir();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let file: Vec<u8> = (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let backends: Vec<(&str, MediaStore)> = vec![
        ("local filesystem", MediaStore::local(&dir, PART).expect("local store")),
        (
            "S3 (s3s-fs, loopback)",
            MediaStore::s3(
                &S3Settings {
                    bucket: "vgl".into(),
                    endpoint: Some(s3.endpoint()),
                    region: S3_REGION.into(),
                    path_style: true,
                    allow_http: true,
                    access_key_id: Some(S3_ACCESS_KEY.into()),
                    secret_access_key: Some(S3_SECRET_KEY.into()),
                },
                PART,
            )
            .expect("s3 store"),
        ),
    ];
    println!("media upload through the cloud API, {} MiB in {} MiB parts", SIZE / MIB, PART as usize / MIB);
    println!("{:<24} {:>10} {:>12} {:>12} {:>10}", "backend", "parts s", "complete s", "total s", "MiB/s");
    for (i, (name, media)) in backends.into_iter().enumerate() {
        runtime.block_on(async {
            let url = pg.create_database(&format!("bench_{i}")).expect("database");
            let store = Store::connect(&url).await.expect("connect");
            store.migrate().await.expect("migrate");
            let config = AuthConfig { hash_cost: HashCost::TEST, ..AuthConfig::default() };
            let state = AppState::build(store, config).await.expect("state").with_media(media);
            let p = state.store.provision_edge("bench", "hq", "edge", None).await.expect("provision");
            let (parts, complete) = upload(&state, &p.edge_token, "clips/cam/bench.mp4", &file).await;
            let total = parts + complete;
            println!("{name:<24} {parts:>10.2} {complete:>12.2} {total:>12.2} {:>10.1}", (SIZE / MIB) as f64 / total);
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-media-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
