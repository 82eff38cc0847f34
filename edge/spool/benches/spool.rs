//! Spool throughput: durable appends (fsync per append call) and drains. Prints a table.
//!
//! `cargo bench -p edge-spool --bench spool`. Env `VIGIL_BENCH_EVENTS` (default 20000).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use edge_spool::{Spool, SpoolConfig};
use uuid::Uuid;
use vigil_proto::{AccessDecision, Event, EventKind, Payload, Source, SourceKind, Timestamp, codec};

fn access_event(n: u64) -> Event {
    Event {
        id: Uuid::now_v7(),
        tenant: Uuid::now_v7(),
        site: Uuid::now_v7(),
        zone: Some("lobby".into()),
        source: Source { kind: SourceKind::Device, id: format!("reader-{}", n % 8) },
        kind: EventKind::AccessGranted,
        occurred_at: Timestamp(1_764_000_000_000_000 + n as i64),
        payload: Payload::Access(AccessDecision {
            door: "front".into(),
            credential: Some(format!("badge-{n:08}")),
            person: Some("p-42".into()),
            reason: "valid_credential".into(),
        }),
    }
}

fn main() {
    let n: u64 = std::env::var("VIGIL_BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let events: Vec<Event> = (0..n).map(access_event).collect();
    println!("events: {n}, CBOR bytes per event: {}", codec::encode(&events[0]).unwrap().len());
    println!("| batch per append | durable appends/s (events) | drain peek+ack events/s (batches of 500) |");
    println!("|-----------------:|---------------------------:|-----------------------------------------:|");
    for batch in [1usize, 16, 256] {
        let dir = tempfile::tempdir().unwrap();
        let spool =
            Spool::open_with(dir.path(), SpoolConfig { max_bytes: u64::MAX, ..SpoolConfig::default() }).unwrap();
        // Appends of one event fsync each time: measure fewer of them.
        let count = if batch == 1 { (n as usize).min(3000) } else { n as usize };
        let t = Instant::now();
        for chunk in events[..count].chunks(batch) {
            spool.append(chunk).unwrap();
        }
        let append_rate = count as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        loop {
            let got = spool.peek(500).unwrap();
            if got.is_empty() {
                break;
            }
            let keys: Vec<_> = got.iter().map(|s| s.key).collect();
            spool.ack(&keys).unwrap();
        }
        let drain_rate = count as f64 / t.elapsed().as_secs_f64();
        println!("| {batch} | {append_rate:.0} | {drain_rate:.0} |");
    }
}
