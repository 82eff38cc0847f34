//! Listing: tenant isolation, filters, keyset pagination.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use cloud_store::{EventQuery, TenantId};
use uuid::Uuid;
use vigil_proto::{AckStatus, EventKind, Payload};

use crate::common::{event, fresh_store, identity, provision};

#[tokio::test]
async fn tenants_see_only_their_own_events() {
    let store = fresh_store().await;
    let a = provision(&store, "acme").await;
    let b = provision(&store, "globex").await;
    let edge_a = identity(&store, &a).await;
    let batch: Vec<_> = (0..5).map(|_| event(&a, EventKind::DetectionPerson, Utc::now())).collect();
    store.insert_events(&edge_a, &batch).await.unwrap();

    let page_a = store.list_events(a.tenant_id, &EventQuery::default()).await.unwrap();
    assert_eq!(page_a.items.len(), 5);
    assert!(page_a.items.iter().all(|e| e.tenant_id == a.tenant_id.as_uuid()));

    let page_b = store.list_events(b.tenant_id, &EventQuery::default()).await.unwrap();
    assert!(page_b.items.is_empty());
    assert!(page_b.next_cursor.is_none());
    // Even when B names A's site explicitly.
    let q = EventQuery { site: Some(a.site_id), ..EventQuery::default() };
    assert!(store.list_events(b.tenant_id, &q).await.unwrap().items.is_empty());
    let nobody = TenantId::from_uuid(Uuid::now_v7());
    assert!(store.list_events(nobody, &EventQuery::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn stored_events_round_trip() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let edge = identity(&store, &p).await;
    let sent = event(&p, EventKind::DetectionPerson, Utc::now());
    store.insert_events(&edge, std::slice::from_ref(&sent)).await.unwrap();

    let got = store.list_events(p.tenant_id, &EventQuery::default()).await.unwrap().items.remove(0);
    assert_eq!(got.id, sent.id);
    assert_eq!((got.tenant_id, got.site_id, got.edge_id), (p.tenant_id.as_uuid(), p.site_id, p.edge_id));
    assert_eq!(got.zone.as_deref(), Some("lobby"));
    assert_eq!((got.source_kind.as_str(), got.source_id.as_str()), ("camera", "cam-1"));
    assert_eq!(got.kind, "detection.person");
    assert_eq!(got.occurred_at.timestamp_micros(), sent.occurred_at.as_micros());
    assert!(got.received_at >= got.occurred_at - Duration::seconds(5));
    assert_eq!(got.payload["type"], "detection");
    let back: Payload = serde_json::from_value(got.payload).unwrap();
    assert_eq!(back, sent.payload);
}

#[tokio::test]
async fn filters_and_cursor_pagination() {
    let store = fresh_store().await;
    let p = provision(&store, "acme").await;
    let q = store.provision_edge("acme", "warehouse", "edge-2", None).await.unwrap();
    let edge_p = identity(&store, &p).await;
    let edge_q = identity(&store, &q).await;
    let base = Utc::now() - Duration::hours(1);

    // 25 events at the hq site, one second apart, alternating kinds; three share a timestamp so
    // the id breaks ties.
    let mut hq = Vec::new();
    for i in 0..25 {
        let kind = if i % 2 == 0 { EventKind::DetectionPerson } else { EventKind::SensorReading };
        let at = if i < 3 { base } else { base + Duration::seconds(i) };
        hq.push(event(&p, kind, at));
    }
    let acks = store.insert_events(&edge_p, &hq).await.unwrap();
    assert!(acks.iter().all(|a| *a == AckStatus::Stored));
    let warehouse: Vec<_> = (0..4).map(|i| event(&q, EventKind::AccessGranted, base + Duration::seconds(i))).collect();
    store.insert_events(&edge_q, &warehouse).await.unwrap();

    // Walk the hq site in pages of 10.
    let mut query = EventQuery { site: Some(p.site_id), limit: 10, ..EventQuery::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list_events(p.tenant_id, &query).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|e| (e.occurred_at, e.id)));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let unique: HashSet<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), 25, "pages overlap");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "not strictly newest first");
    assert_eq!(unique, hq.iter().map(|e| e.id).collect());

    // Kind filter (tenant-wide): 13 persons at hq.
    let persons = EventQuery { kind: Some(EventKind::DetectionPerson), ..EventQuery::default() };
    let page = store.list_events(p.tenant_id, &persons).await.unwrap();
    assert_eq!(page.items.len(), 13);
    assert!(page.items.iter().all(|e| e.kind == "detection.person"));

    // Site filter.
    let wh = EventQuery { site: Some(q.site_id), ..EventQuery::default() };
    assert_eq!(store.list_events(p.tenant_id, &wh).await.unwrap().items.len(), 4);

    // Time window: from inclusive, to exclusive -> seconds 10..20 = 10 hq events + none at the
    // warehouse (its events are at seconds 0..4).
    let window = EventQuery {
        from: Some(base + Duration::seconds(10)),
        to: Some(base + Duration::seconds(20)),
        ..EventQuery::default()
    };
    let page = store.list_events(p.tenant_id, &window).await.unwrap();
    assert_eq!(page.items.len(), 10);
    assert!(page.next_cursor.is_none());

    // Limits are clamped.
    let zero = EventQuery { limit: 0, ..EventQuery::default() };
    let page = store.list_events(p.tenant_id, &zero).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next_cursor.is_some());
}
