//! Batch ingest: statuses, idempotency, rejections, partition placement.

use chrono::{DateTime, Days, TimeZone as _, Utc};
use uuid::Uuid;
use vigil_proto::{AckStatus, EventKind, Payload, SensorReading, Timestamp};

use crate::common::{event, event_rows, fresh_store, identity, payload_for, provision};

fn rejected(status: &AckStatus) -> &str {
    match status {
        AckStatus::Rejected { reason } => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn replayed_batch_is_acknowledged_as_duplicate_and_stored_once() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let edge = identity(&store, &p).await;
    let now = Utc::now();
    let batch: Vec<_> = EventKind::ALL.iter().map(|&k| event(&p, k, now)).collect();

    let first = store.insert_events(&edge, &batch).await.unwrap();
    assert_eq!(first, vec![AckStatus::Stored; batch.len()]);
    assert_eq!(event_rows(&store).await, batch.len() as i64);

    let second = store.insert_events(&edge, &batch).await.unwrap();
    assert_eq!(second, vec![AckStatus::Duplicate; batch.len()]);
    assert_eq!(event_rows(&store).await, batch.len() as i64);

    assert_eq!(store.insert_events(&edge, &[]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn duplicates_inside_one_batch() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let edge = identity(&store, &p).await;
    let a = event(&p, EventKind::DetectionPerson, Utc::now());
    let b = event(&p, EventKind::DeviceStatus, Utc::now());
    let acks = store.insert_events(&edge, &[a.clone(), b.clone(), a.clone(), a, b]).await.unwrap();
    assert_eq!(
        acks,
        [AckStatus::Stored, AckStatus::Stored, AckStatus::Duplicate, AckStatus::Duplicate, AckStatus::Duplicate]
    );
    assert_eq!(event_rows(&store).await, 2);
}

#[tokio::test]
async fn invalid_events_are_rejected_one_by_one() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let other = store.provision_edge("acme", "warehouse", "edge-9", None).await.unwrap();
    let foreign = provision(&store, "globex").await;
    let edge = identity(&store, &p).await;
    let now = Utc::now();

    let good = event(&p, EventKind::SensorReading, now);
    let wrong_site = event(&other, EventKind::SensorReading, now);
    let wrong_tenant = event(&foreign, EventKind::SensorReading, now);
    let mut unknown_kind = event(&p, EventKind::DetectionPerson, now);
    unknown_kind.kind = EventKind::Unknown;
    let mut mismatched = event(&p, EventKind::AccessDenied, now);
    mismatched.payload = payload_for(EventKind::AlertTriggered);
    let mut too_late = event(&p, EventKind::DeviceStatus, now);
    too_late.occurred_at = Timestamp(i64::MAX);
    let mut too_early = event(&p, EventKind::DeviceStatus, now);
    too_early.occurred_at = Timestamp(-100_000 * 365 * 86_400 * 1_000_000);
    let mut nan = event(&p, EventKind::SensorReading, now);
    nan.payload = Payload::SensorReading(SensorReading { metric: "t".into(), value: f64::NAN, unit: "C".into() });
    let mut nul = event(&p, EventKind::SensorReading, now);
    nul.source.id = "cam\0".into();
    let mut nul_payload = event(&p, EventKind::SensorReading, now);
    nul_payload.payload = Payload::SensorReading(SensorReading { metric: "t\0".into(), value: 1.0, unit: "C".into() });
    let good_too = event(&p, EventKind::DetectionVehicle, now);

    let batch = [
        good,
        wrong_site,
        wrong_tenant,
        unknown_kind,
        mismatched,
        too_late,
        too_early,
        nan,
        nul,
        nul_payload,
        good_too,
    ];
    let acks = store.insert_events(&edge, &batch).await.unwrap();
    assert_eq!(acks.len(), batch.len());
    assert_eq!(acks[0], AckStatus::Stored);
    assert!(rejected(&acks[1]).contains("site"));
    assert!(rejected(&acks[2]).contains("tenant"));
    assert!(rejected(&acks[3]).contains("unknown event kind"));
    assert!(rejected(&acks[4]).contains("does not match kind access.denied"));
    assert!(rejected(&acks[5]).contains("occurred_at"));
    assert!(rejected(&acks[6]).contains("occurred_at"));
    assert!(rejected(&acks[7]).contains("non-finite"));
    assert!(rejected(&acks[8]).contains("NUL"));
    assert!(rejected(&acks[9]).contains("NUL"));
    assert_eq!(acks[10], AckStatus::Stored);
    assert_eq!(event_rows(&store).await, 2);
}

async fn partition_of(store: &cloud_store::Store, id: Uuid) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn events_far_from_now_land_in_the_default_partition() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let edge = identity(&store, &p).await;
    let now = Utc::now();
    let past = event(&p, EventKind::AlertTriggered, Utc.with_ymd_and_hms(1990, 1, 2, 3, 4, 5).unwrap());
    let future = event(&p, EventKind::AlertTriggered, Utc.with_ymd_and_hms(2200, 6, 7, 8, 9, 10).unwrap());
    let edges_of_range = event(&p, EventKind::AlertTriggered, DateTime::from_timestamp(253_402_300_799, 0).unwrap());
    let today = event(&p, EventKind::AlertTriggered, now);
    let acks =
        store.insert_events(&edge, &[past.clone(), future.clone(), edges_of_range, today.clone()]).await.unwrap();
    assert_eq!(acks, vec![AckStatus::Stored; 4]);

    assert_eq!(partition_of(&store, past.id).await, "events_default");
    assert_eq!(partition_of(&store, future.id).await, "events_default");
    assert_eq!(partition_of(&store, today.id).await, format!("events_p{}", now.format("%Y%m%d")));
}

#[tokio::test]
async fn partition_maintenance_skips_days_already_in_the_default_partition() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let edge = identity(&store, &p).await;
    let later = Utc::now() + Days::new(20);
    let early_bird = event(&p, EventKind::DeviceStatus, later);
    store.insert_events(&edge, std::slice::from_ref(&early_bird)).await.unwrap();
    assert_eq!(partition_of(&store, early_bird.id).await, "events_default");

    // The window around `later` covers 15 days; the one holding the row is skipped, not an error.
    let created = store.ensure_partitions(later).await.unwrap();
    assert_eq!(created, 14);
    assert_eq!(partition_of(&store, early_bird.id).await, "events_default");
    // Still one copy, still deduplicated.
    assert_eq!(store.insert_events(&edge, &[early_bird]).await.unwrap(), [AckStatus::Duplicate]);
}
