use proptest::prelude::*;
use uuid::Uuid;
use vigil_proto::{
    AccessDecision, Alert, DeviceStatus, Event, EventKind, Payload, SensorReading, Severity, Source, SourceKind,
    Timestamp,
};

use super::*;

fn event(n: u128, kind: EventKind) -> Event {
    let payload = match kind {
        EventKind::AlertTriggered => {
            Payload::Alert(Alert { rule: None, severity: Severity::Critical, message: format!("m{n}") })
        }
        EventKind::AccessGranted | EventKind::AccessDenied => Payload::Access(AccessDecision {
            door: "d1".into(),
            credential: Some(format!("badge-{n}")),
            person: None,
            reason: "valid_credential".into(),
        }),
        EventKind::SensorReading => {
            Payload::SensorReading(SensorReading { metric: "temperature".into(), value: n as f64, unit: "C".into() })
        }
        _ => Payload::DeviceStatus(DeviceStatus { online: true, detail: Some(format!("d{n}")) }),
    };
    Event {
        id: Uuid::from_u128(n),
        tenant: Uuid::nil(),
        site: Uuid::nil(),
        zone: None,
        source: Source { kind: SourceKind::Device, id: format!("dev{}", n % 3) },
        kind,
        occurred_at: Timestamp(n as i64),
        payload,
    }
}

fn alarm(n: u128) -> Event {
    event(n, EventKind::AlertTriggered)
}

fn ids(items: &[Spooled]) -> Vec<u128> {
    items.iter().map(|s| s.event.id.as_u128()).collect()
}

fn keys(items: &[Spooled]) -> Vec<SpoolKey> {
    items.iter().map(|s| s.key).collect()
}

#[test]
fn events_come_back_in_append_order_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[alarm(1), alarm(2)]).unwrap();
    spool.append(&[alarm(3)]).unwrap();
    let got = spool.peek(10).unwrap();
    assert_eq!(ids(&got), vec![1, 2, 3]);
    assert_eq!(ids(&spool.peek(2).unwrap()), vec![1, 2], "peek does not remove");
    spool.ack(&keys(&got[..2])).unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![3]);
    assert_eq!(spool.len(), 1);
}

#[test]
fn higher_classes_jump_the_queue_and_order_holds_within_a_class() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool
        .append(&[
            event(1, EventKind::SensorReading),
            event(2, EventKind::AccessGranted),
            event(3, EventKind::SensorReading),
            event(4, EventKind::AlertTriggered),
            event(5, EventKind::AccessDenied),
        ])
        .unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![4, 2, 5, 1, 3]);
    assert_eq!(ids(&spool.peek(2).unwrap()), vec![4, 2]);
    let depth = spool.depth();
    assert_eq!((depth.get(Class::Alarm), depth.get(Class::Access), depth.get(Class::Telemetry)), (1, 2, 2));
}

#[test]
fn survives_reopen_with_usage_and_growing_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (first, bytes_before);
    {
        let spool = Spool::open(dir.path()).unwrap();
        spool.append(&[alarm(1), alarm(2)]).unwrap();
        first = spool.peek(1).unwrap()[0].key;
        spool.ack(&[first]).unwrap();
        bytes_before = spool.bytes();
    }
    let spool = reopen(dir.path());
    assert_eq!(spool.bytes(), bytes_before, "usage is rebuilt at open");
    spool.append(&[alarm(3)]).unwrap();
    let got = spool.peek(10).unwrap();
    assert_eq!(ids(&got), vec![2, 3]);
    assert!(got.iter().all(|s| s.key.seq > first.seq));
}

#[test]
fn corrupt_records_are_quarantined_not_lost_and_do_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[alarm(1)]).unwrap();
    spool.insert_raw_for_test(Class::Alarm, b"\xff\x00garbage").unwrap();
    // A valid header with a flipped payload bit fails the checksum.
    let mut flipped = record::encode(&alarm(9)).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    spool.insert_raw_for_test(Class::Alarm, &flipped).unwrap();
    spool.append(&[alarm(2)]).unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![1, 2]);
    assert_eq!(spool.quarantined(), 2);
    assert_eq!(spool.len(), 2);
}

#[test]
fn refused_events_move_to_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[alarm(1), alarm(2)]).unwrap();
    let key = spool.peek(1).unwrap()[0].key;
    spool.quarantine(key, "site mismatch").unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![2]);
    assert_eq!(spool.quarantined(), 1);
}

#[test]
fn a_second_open_of_the_same_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _spool = Spool::open(dir.path()).unwrap();
    let err = Spool::open(dir.path()).unwrap_err();
    assert!(err.to_string().starts_with("cannot open spool at"), "{err}");
}

fn record_len(e: &Event) -> u64 {
    record::encode(e).unwrap().len() as u64
}

#[test]
fn over_the_bound_telemetry_goes_before_detections_and_alarms_and_access_never_go() {
    let dir = tempfile::tempdir().unwrap();
    let one = record_len(&event(10, EventKind::SensorReading));
    // Room for about six records.
    let spool =
        Spool::open_with(dir.path(), SpoolConfig { max_bytes: one * 6 + one / 2, ..SpoolConfig::default() }).unwrap();
    let detection = |n| {
        let mut e = event(n, EventKind::SensorReading);
        e.kind = EventKind::DetectionPerson;
        e.payload = Payload::Detection(vigil_proto::Detection {
            model: "m".into(),
            frame_seq: 0,
            frame_width: 1,
            frame_height: 1,
            objects: vec![],
            clip: None,
        });
        e
    };
    spool.append(&[event(10, EventKind::SensorReading), event(11, EventKind::SensorReading)]).unwrap();
    spool.append(&[detection(20), detection(21)]).unwrap();
    spool.append(&[alarm(30), event(31, EventKind::AccessDenied)]).unwrap();
    // Two more alarms do not fit: telemetry goes first, oldest first.
    let report = spool.append(&[alarm(32), alarm(33)]).unwrap();
    assert_eq!(report.evicted.get(Class::Telemetry), 2, "{report:?}");
    assert_eq!(report.evicted.get(Class::Detection), 0);
    // Two more: now detections go.
    let report = spool.append(&[event(34, EventKind::AccessGranted), alarm(35)]).unwrap();
    assert_eq!(report.evicted.get(Class::Detection), 2, "{report:?}");
    // Nothing evictable is left: security events are still accepted, over the bound.
    let report = spool.append(&[alarm(36), event(37, EventKind::AccessGranted)]).unwrap();
    assert_eq!(report.evicted.total(), 0);
    assert!(spool.bytes() > one * 6);
    let mut kept = ids(&spool.peek(100).unwrap());
    kept.sort();
    assert_eq!(kept, vec![30, 31, 32, 33, 34, 35, 36, 37]);
}

/// sled's background flusher may hold the file lock for a moment after the last handle drops.
fn reopen(path: &std::path::Path) -> Spool {
    for _ in 0..200 {
        match Spool::open(path) {
            Ok(s) => return s,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    Spool::open(path).unwrap()
}

// Model-based test: random appends, peeks, acks, corruptions and reopens against an in-memory model.
#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AckFirst(usize),
    Reopen,
}

fn kind_of(k: u8) -> EventKind {
    [EventKind::AlertTriggered, EventKind::AccessGranted, EventKind::SensorReading, EventKind::DeviceStatus]
        [k as usize % 4]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn behaves_like_a_priority_queue_model(ops in prop::collection::vec(prop_oneof![
        prop::collection::vec(0u8..4, 1..6).prop_map(Op::Append),
        (1usize..8).prop_map(Op::AckFirst),
        Just(Op::Reopen),
    ], 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        // Model: per class, FIFO of ids.
        let mut model: Vec<Vec<u128>> = vec![Vec::new(); Class::COUNT];
        let mut next = 0u128;
        for op in ops {
            match op {
                Op::Append(kinds) => {
                    let events: Vec<Event> = kinds.iter().map(|k| { next += 1; event(next, kind_of(*k)) }).collect();
                    for e in &events { model[Class::of(e.kind) as usize].push(e.id.as_u128()); }
                    spool.append(&events).unwrap();
                }
                Op::AckFirst(n) => {
                    let got = spool.peek(n).unwrap();
                    spool.ack(&keys(&got)).unwrap();
                    let mut left = got.len();
                    for q in model.iter_mut() {
                        let take = left.min(q.len());
                        q.drain(..take);
                        left -= take;
                    }
                }
                Op::Reopen => {
                    drop(spool);
                    spool = reopen(dir.path());
                }
            }
            let expect: Vec<u128> = model.iter().flatten().copied().collect();
            prop_assert_eq!(ids(&spool.peek(1000).unwrap()), expect.clone());
            prop_assert_eq!(spool.len(), expect.len());
        }
    }
}

#[test]
fn oldest_is_the_earliest_head_across_classes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(spool.oldest().unwrap(), None);
    spool.append(&[event(30, EventKind::SensorReading), event(20, EventKind::AccessGranted)]).unwrap();
    spool.append(&[event(10, EventKind::SensorReading)]).unwrap();
    // Heads: access 20, telemetry 30 (appended first); the telemetry record at 10 is behind it.
    let oldest = spool.oldest().unwrap().unwrap();
    assert_eq!(oldest, event(20, EventKind::AccessGranted).occurred_at);
}

/// Free space the disk-guard test pretends to have (one test uses it: no races).
static FAKE_FREE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

fn fake_free(_: &Path) -> std::io::Result<u64> {
    Ok(FAKE_FREE.load(std::sync::atomic::Ordering::Relaxed))
}

#[test]
fn a_filling_disk_evicts_the_evictable_first_then_refuses_without_breaking_the_spool() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig { max_bytes: 1 << 30, reserve_bytes: 1000, floor_bytes: 100, free_space: Some(fake_free) };
    let spool = Spool::open_with(dir.path(), config).unwrap();
    FAKE_FREE.store(1 << 20, Relaxed);
    spool.append(&[event(1, EventKind::SensorReading), event(2, EventKind::DetectionPerson), alarm(3)]).unwrap();
    assert_eq!(spool.len(), 3);
    assert_eq!(spool.disk(), DiskState { free_bytes: Some(1 << 20), low: false, full: false });

    // Low: old evictable records go, new evictable ones are not stored; alarms and access are.
    FAKE_FREE.store(500, Relaxed);
    let report = spool.append(&[event(4, EventKind::SensorReading), event(5, EventKind::AccessDenied)]).unwrap();
    assert_eq!(report.evicted.get(Class::Telemetry), 2, "{report:?}");
    assert_eq!(report.evicted.get(Class::Detection), 1, "{report:?}");
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![3, 5]);

    // Full: nothing is written; alarms are refused (the caller retries), detections reported evicted.
    FAKE_FREE.store(50, Relaxed);
    let err = spool.append(&[alarm(6), event(7, EventKind::DetectionPerson)]).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    let report = spool.append(&[event(8, EventKind::DetectionPerson)]).unwrap();
    assert_eq!(report.evicted.get(Class::Detection), 1);
    assert_eq!(spool.refused_disk_full(), 1);
    assert!(spool.disk().full);
    // Removing is writing too: acknowledgements wait (the events are sent again, deduplicated).
    let waiting = spool.peek(10).unwrap();
    assert!(spool.ack(&keys(&waiting)).unwrap_err().is_disk_full());
    assert_eq!(spool.len(), 2);

    // Space comes back: the same alarm is stored, everything still reads and acks.
    FAKE_FREE.store(1 << 20, Relaxed);
    spool.append(&[alarm(6)]).unwrap();
    let all = spool.peek(10).unwrap();
    assert_eq!(ids(&all), vec![3, 6, 5]);
    spool.ack(&keys(&all)).unwrap();
    assert!(spool.is_empty());
}
