//! Event retention on native partitioning: whole daily partitions older than the cutoff are
//! dropped, nothing inside the window is lost, idempotency and RLS keep working.

use chrono::{Days, TimeDelta, Utc};
use cloud_store::{EventQuery, MaintenanceReport, Store};
use vigil_proto::{AckStatus, EventKind};

use crate::common::{event, event_rows, fresh_store, identity, provision};

async fn partitions(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn daily(day: chrono::NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

#[tokio::test]
async fn retention_drops_whole_old_partitions_and_keeps_the_window() {
    let store = fresh_store().await;
    let now = Utc::now();
    // Partitions around 400 and 365 days ago, as a server running back then would have made.
    store.ensure_partitions(now - Days::new(400)).await.unwrap();
    store.ensure_partitions(now - Days::new(365)).await.unwrap();
    let old_day = (now - Days::new(400)).date_naive();
    let cutoff_day = (now - Days::new(365)).date_naive();
    assert!(partitions(&store).await.contains(&daily(old_day)));

    let acme = provision(&store, "acme").await;
    let globex = provision(&store, "globex").await;
    let acme_edge = identity(&store, &acme).await;
    let globex_edge = identity(&store, &globex).await;
    let very_old = event(&acme, EventKind::SensorReading, now - Days::new(1000)); // events_default
    let old = event(&acme, EventKind::SensorReading, now - Days::new(400));
    // Inside the window by one hour: its day straddles the cutoff and must be kept whole.
    let edge_of_window = event(&acme, EventKind::SensorReading, now - Days::new(365) + TimeDelta::hours(1));
    let recent = event(&acme, EventKind::SensorReading, now - Days::new(2));
    let future = event(&acme, EventKind::SensorReading, now + Days::new(1000)); // events_default
    let batch = [very_old.clone(), old.clone(), edge_of_window.clone(), recent.clone(), future.clone()];
    assert_eq!(store.insert_events(&acme_edge, &batch).await.unwrap(), vec![AckStatus::Stored; 5]);
    let theirs = event(&globex, EventKind::SensorReading, now - Days::new(2));
    assert_eq!(store.insert_events(&globex_edge, std::slice::from_ref(&theirs)).await.unwrap(), [AckStatus::Stored]);
    assert_eq!(event_rows(&store).await, 6);

    // Retention off: nothing goes.
    let report = store.maintain_events(now, 0).await.unwrap();
    assert_eq!((report.dropped_partitions, report.deleted_default_rows), (0, 0), "{report:?}");
    assert_eq!(event_rows(&store).await, 6);

    let report = store.maintain_events(now, 365).await.unwrap();
    assert!(!report.timescale);
    // Days 407..=393 ago (all 15) and 372..=366 ago (7; the cutoff's day, 365 ago, stays).
    assert_eq!(report.dropped_partitions, 22, "{report:?}");
    assert_eq!(report.deleted_default_rows, 1, "{report:?}");
    let parts = partitions(&store).await;
    assert!(!parts.contains(&daily(old_day)), "{parts:?}");
    assert!(parts.contains(&daily(cutoff_day)), "{parts:?}");
    assert!(parts.contains(&"events_default".to_owned()), "{parts:?}");
    assert!(parts.contains(&daily(now.date_naive())), "{parts:?}");
    assert_eq!(event_rows(&store).await, 4);

    // What is left is exactly the window (and the future), still under row-level security.
    let page = store.list_events(acme.tenant_id, &EventQuery::default()).await.unwrap();
    let mut ids: Vec<_> = page.items.iter().map(|e| e.id).collect();
    ids.sort();
    let mut expected = vec![edge_of_window.id, recent.id, future.id];
    expected.sort();
    assert_eq!(ids, expected);
    let page = store.list_events(globex.tenant_id, &EventQuery::default()).await.unwrap();
    assert_eq!(page.items.iter().map(|e| e.id).collect::<Vec<_>>(), [theirs.id]);
    let mut tx = store.tenant_tx(globex.tenant_id).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(visible, 1, "RLS must still hide acme's events");
    drop(tx);

    // Idempotency still holds for the kept events; a second run changes nothing.
    assert_eq!(
        store.insert_events(&acme_edge, &[recent, edge_of_window]).await.unwrap(),
        vec![AckStatus::Duplicate; 2]
    );
    assert_eq!(
        store.maintain_events(now, 365).await.unwrap(),
        MaintenanceReport { created_partitions: 0, dropped_partitions: 0, deleted_default_rows: 0, timescale: false }
    );
    assert_eq!(event_rows(&store).await, 4);
    // A new day still ingests into its own partition.
    let today = event(&acme, EventKind::SensorReading, now);
    assert_eq!(store.insert_events(&acme_edge, &[today]).await.unwrap(), [AckStatus::Stored]);
}

#[tokio::test]
async fn short_retention_does_not_recreate_dropped_partitions() {
    let store = fresh_store().await;
    let now = Utc::now();
    let report = store.maintain_events(now, 3).await.unwrap();
    // The migration made days -7..=-1; those wholly before now - 3 days go.
    assert_eq!(report.dropped_partitions, 4, "{report:?}");
    let again = store.maintain_events(now, 3).await.unwrap();
    assert_eq!((again.created_partitions, again.dropped_partitions), (0, 0), "{again:?}");
    let parts = partitions(&store).await;
    assert!(parts.contains(&daily((now - Days::new(3)).date_naive())), "{parts:?}");
    assert!(!parts.contains(&daily((now - Days::new(4)).date_naive())), "{parts:?}");
}
