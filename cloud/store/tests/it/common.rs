//! Shared fixtures: the cluster, fresh databases and event builders.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use cloud_store::{Provisioned, Store};
use test_support::PgCluster;
use uuid::Uuid;
use vigil_proto::{
    AccessDecision, Alert, BoundingBox, CrossingDirection, DetectedObject, Detection, DeviceStatus, Event, EventKind,
    LineCrossing, MediaRef, MediaSaved, Motion, Payload, SensorReading, Severity, Source, SourceKind, Timestamp,
    TrackedObject, ZonePresence,
};

/// One cluster per test binary; torn down by its watchdog when the binary exits.
fn cluster() -> &'static PgCluster {
    static PG: OnceLock<PgCluster> = OnceLock::new();
    PG.get_or_init(|| PgCluster::start().expect("cannot start the test PostgreSQL cluster"))
}

/// URL of a new, empty database.
pub fn fresh_database_url() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    cluster().create_database(&format!("store_it_{n}")).unwrap()
}

/// A migrated store on a new database.
pub async fn fresh_store() -> Store {
    let store = Store::connect(&fresh_database_url()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A provisioned tenant/site/edge named after `tenant`.
pub async fn provision(store: &Store, tenant: &str) -> Provisioned {
    store.provision_edge(tenant, "hq", "edge-1", None).await.unwrap()
}

/// A well-formed payload for `kind`.
pub fn payload_for(kind: EventKind) -> Payload {
    match kind {
        EventKind::DetectionPerson | EventKind::DetectionVehicle | EventKind::Unknown => {
            Payload::Detection(Detection {
                model: "yolov8n".into(),
                frame_seq: 7,
                frame_width: 1920,
                frame_height: 1080,
                objects: vec![DetectedObject {
                    class_id: 0,
                    label: "person".into(),
                    score: 0.5,
                    bbox: BoundingBox { x: 0.25, y: 0.5, w: 0.125, h: 0.25 },
                    track: None,
                }],
                clip: None,
            })
        }
        EventKind::AccessGranted | EventKind::AccessDenied => Payload::Access(AccessDecision {
            door: "front".into(),
            credential: Some("badge-1".into()),
            person: None,
            reason: "valid_credential".into(),
        }),
        EventKind::SensorReading => {
            Payload::SensorReading(SensorReading { metric: "temperature".into(), value: 21.5, unit: "C".into() })
        }
        EventKind::AlertTriggered => {
            Payload::Alert(Alert { rule: Some("r1".into()), severity: Severity::Warning, message: "hot".into() })
        }
        EventKind::DeviceStatus => Payload::DeviceStatus(DeviceStatus { online: true, detail: None }),
        EventKind::MotionDetected => {
            Payload::Motion(Motion { score: 0.125, regions: vec![BoundingBox { x: 0.25, y: 0.5, w: 0.125, h: 0.25 }] })
        }
        EventKind::ObjectUpdated | EventKind::ObjectEnded => Payload::Object(TrackedObject {
            track: 3,
            class_id: 0,
            label: "person".into(),
            score: 0.75,
            bbox: BoundingBox { x: 0.25, y: 0.5, w: 0.125, h: 0.25 },
            first_seen: Timestamp(1_732_875_600_000_000),
            duration_ms: 1500,
            snapshot: Some(MediaRef { key: "snapshots/cam-1/1.jpg".into(), content_type: "image/jpeg".into() }),
        }),
        EventKind::LineCrossed => Payload::LineCrossing(LineCrossing {
            line: "door".into(),
            track: 3,
            label: "person".into(),
            direction: CrossingDirection::In,
            count_in: 4,
            count_out: 1,
        }),
        EventKind::ZoneEntered | EventKind::ZoneExited | EventKind::ZoneLoitering => {
            Payload::ZonePresence(ZonePresence { area: "till".into(), track: 3, label: "person".into(), dwell_ms: 0 })
        }
        EventKind::MediaSaved => Payload::Media(MediaSaved {
            media: MediaRef { key: "clips/cam-1/1.mp4".into(), content_type: "video/mp4".into() },
            event: Uuid::nil(),
            bytes: 1024,
            duration_ms: 5000,
        }),
    }
}

/// An event of `kind` from the provisioned edge's site at `at`.
pub fn event(p: &Provisioned, kind: EventKind, at: DateTime<Utc>) -> Event {
    Event {
        id: Uuid::now_v7(),
        tenant: p.tenant_id.as_uuid(),
        site: p.site_id,
        zone: Some("lobby".into()),
        source: Source { kind: SourceKind::Camera, id: "cam-1".into() },
        kind,
        occurred_at: Timestamp::from(at),
        payload: payload_for(kind),
    }
}

/// Number of rows in `events`.
pub async fn event_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(store.pool()).await.unwrap()
}

/// The identity ingest would see for the provisioned edge.
pub async fn identity(store: &Store, p: &Provisioned) -> cloud_store::EdgeIdentity {
    store.edge_by_token(&p.edge_token).await.unwrap().expect("fresh token authenticates")
}
