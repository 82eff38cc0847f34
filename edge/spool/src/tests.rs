use uuid::Uuid;
use vigil_proto::{Alert, Event, EventKind, Payload, Severity, Source, SourceKind, Timestamp};

use super::*;

fn event(n: u128) -> Event {
    Event {
        id: Uuid::from_u128(n),
        tenant: Uuid::nil(),
        site: Uuid::nil(),
        zone: None,
        source: Source { kind: SourceKind::Rule, id: format!("r{}", n % 3) },
        kind: EventKind::AlertTriggered,
        occurred_at: Timestamp(n as i64),
        payload: Payload::Alert(Alert { rule: None, severity: Severity::Info, message: format!("m{n}") }),
    }
}

fn ids(items: &[Spooled]) -> Vec<u128> {
    items.iter().map(|s| s.event.id.as_u128()).collect()
}

#[test]
fn events_come_back_in_append_order_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[event(1), event(2)]).unwrap();
    spool.append(&[event(3)]).unwrap();
    let got = spool.peek(10).unwrap();
    assert_eq!(ids(&got), vec![1, 2, 3]);
    assert_eq!(ids(&spool.peek(2).unwrap()), vec![1, 2], "peek does not remove");
    spool.ack(&[got[0].seq, got[1].seq]).unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![3]);
    assert_eq!(spool.len(), 1);
}

#[test]
fn survives_reopen_and_keeps_growing_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let first_seq;
    {
        let spool = Spool::open(dir.path()).unwrap();
        spool.append(&[event(1), event(2)]).unwrap();
        first_seq = spool.peek(1).unwrap()[0].seq;
        spool.ack(&[first_seq]).unwrap();
    }
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[event(3)]).unwrap();
    let got = spool.peek(10).unwrap();
    assert_eq!(ids(&got), vec![2, 3]);
    assert!(got.iter().all(|s| s.seq > first_seq));
}

#[test]
fn corrupt_records_are_quarantined_not_lost_and_do_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[event(1)]).unwrap();
    spool.insert_raw_for_test(b"\xff\x00garbage").unwrap();
    spool.append(&[event(2)]).unwrap();
    assert_eq!(ids(&spool.peek(10).unwrap()), vec![1, 2]);
    assert_eq!(spool.quarantined(), 1);
    assert_eq!(spool.len(), 2);
}

#[test]
fn refused_events_move_to_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    spool.append(&[event(1), event(2)]).unwrap();
    let seq = spool.peek(1).unwrap()[0].seq;
    spool.quarantine(seq, "site mismatch").unwrap();
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
