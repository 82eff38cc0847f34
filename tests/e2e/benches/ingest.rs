//! Store-and-forward throughput against a real local cloud and PostgreSQL. Prints a table.
//!
//! `cargo build --release --workspace --bins && cargo bench -p e2e --bench ingest`
//! Env: `VIGIL_BENCH_EVENTS` (default 20000).
//!
//! Rows: durable spool append (batches of 256); drain = spool peek → CBOR → HTTP → PostgreSQL →
//! ack → spool remove, one batch in flight like the edge's sender; cloud ingest = pre-encoded
//! batches of 2000 from 4 concurrent connections; bytes per event on the wire.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use edge_spool::{Spool, SpoolConfig};
use edge_uplink::{Uplink, UplinkConfig};
use test_support::{ChildGuard, PgCluster, free_port, workspace_bin};
use uuid::Uuid;
use vigil_proto::{
    AccessDecision, Event, EventBatch, EventKind, Payload, SCHEMA_VERSION, Source, SourceKind, Timestamp, codec,
};

fn events(n: usize, tenant: Uuid, site: Uuid) -> Vec<Event> {
    let now = Timestamp::from(std::time::SystemTime::now()).0;
    (0..n)
        .map(|i| Event {
            id: Uuid::now_v7(),
            tenant,
            site,
            zone: Some("lobby".into()),
            source: Source { kind: SourceKind::Device, id: format!("reader-{}", i % 16) },
            kind: EventKind::AccessGranted,
            occurred_at: Timestamp(now - (n - i) as i64 * 1000),
            payload: Payload::Access(AccessDecision {
                door: "front".into(),
                credential: Some(format!("badge-{i:08}")),
                person: Some("p-42".into()),
                reason: "valid_credential".into(),
            }),
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("VIGIL_BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let pg = PgCluster::start().unwrap();
    let db = pg.create_database("vigil").unwrap();
    let out = Command::new(workspace_bin("vigil-cloud"))
        .args(["--database-url", &db, "provision", "--tenant", "Bench", "--site", "HQ", "--edge", "e1"])
        .output()
        .unwrap();
    let ids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tenant = Uuid::parse_str(ids["tenant_id"].as_str().unwrap()).unwrap();
    let site = Uuid::parse_str(ids["site_id"].as_str().unwrap()).unwrap();
    let token = ids["edge_token"].as_str().unwrap().to_owned();
    let port = free_port();
    let mut cmd = Command::new(workspace_bin("vigil-cloud"));
    cmd.args(["--database-url", &db, "serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--media-dir")
        .arg(dir.path().join("cloud-media"))
        .env("RUST_LOG", "warn");
    let _cloud = ChildGuard::spawn_logged("cloud", &mut cmd, dir.path()).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{url}/health")).map(|r| !r.status().is_success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "cloud did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let uplink = Uplink::build(&UplinkConfig {
        url: url.clone(),
        token: token.clone(),
        ca_cert: None,
        timeout: Duration::from_secs(30),
    })
    .unwrap();

    println!("| what | events | seconds | events/s |");
    println!("|------|-------:|--------:|---------:|");
    // 1. Durable spool appends.
    let spool =
        Spool::open_with(&dir.path().join("spool"), SpoolConfig { max_bytes: u64::MAX, ..SpoolConfig::default() })
            .unwrap();
    let evs = events(n, tenant, site);
    let t = Instant::now();
    for chunk in evs.chunks(256) {
        spool.append(chunk).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    println!("| spool durable append (batches of 256) | {n} | {s:.2} | {:.0} |", n as f64 / s);

    // 2. Drain to the cloud, as the edge's sender does.
    let t = Instant::now();
    let mut sent = 0;
    let mut wire_bytes = 0usize;
    loop {
        let items = spool.peek(500).unwrap();
        if items.is_empty() {
            break;
        }
        let keys: Vec<_> = items.iter().map(|s| s.key).collect();
        let batch = EventBatch {
            schema: SCHEMA_VERSION,
            sent_at: Timestamp::from(std::time::SystemTime::now()),
            events: items.into_iter().map(|s| s.event).collect(),
        };
        wire_bytes += codec::encode(&batch).unwrap().len();
        let ack = rt.block_on(uplink.send(&batch)).unwrap();
        assert!(ack.results.iter().all(|r| r.status.is_persisted()));
        spool.ack(&keys).unwrap();
        sent += keys.len();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "| drain spool → cloud → PostgreSQL (batches of 500, 1 in flight) | {sent} | {s:.2} | {:.0} |",
        sent as f64 / s
    );

    // 3. Cloud ingest alone: pre-encoded batches of 2000, 4 connections.
    let batches: Vec<Vec<u8>> = events(n, tenant, site)
        .chunks(2000)
        .map(|c| {
            codec::encode(&EventBatch {
                schema: SCHEMA_VERSION,
                sent_at: Timestamp::from(std::time::SystemTime::now()),
                events: c.to_vec(),
            })
            .unwrap()
        })
        .collect();
    let client = reqwest::Client::new();
    let t = Instant::now();
    rt.block_on(async {
        let endpoint = format!("{url}{}", vigil_proto::INGEST_EVENTS_PATH);
        let mut handles = Vec::new();
        for lane in 0..4 {
            let mine: Vec<Vec<u8>> = batches.iter().skip(lane).step_by(4).cloned().collect();
            let (client, endpoint, token) = (client.clone(), endpoint.clone(), token.clone());
            handles.push(tokio::spawn(async move {
                for body in mine {
                    let r = client
                        .post(&endpoint)
                        .bearer_auth(&token)
                        .header("content-type", vigil_proto::CBOR_CONTENT_TYPE)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    let s = t.elapsed().as_secs_f64();
    println!("| cloud ingest (batches of 2000, 4 connections) | {n} | {s:.2} | {:.0} |", n as f64 / s);
    println!(
        "\nbytes per event on the wire (CBOR, batches of 500, access events): {:.1}",
        wire_bytes as f64 / sent as f64
    );
}
