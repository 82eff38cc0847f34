use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// One thing that happened at a site, as the edge saw it.
///
/// `id` is a UUIDv7 minted by the edge when the event is created; it is the idempotency key the
/// cloud deduplicates on, so an event replayed after a lost acknowledgement is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(with = "uuid_bytes")]
    pub id: Uuid,
    #[serde(with = "uuid_bytes")]
    pub tenant: Uuid,
    #[serde(with = "uuid_bytes")]
    pub site: Uuid,
    /// Zone inside the site, when the source belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub source: Source,
    pub kind: EventKind,
    /// When it happened (edge clock), not when it was sent or stored.
    pub occurred_at: Timestamp,
    pub payload: Payload,
}

/// What produced an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    /// The camera, device or rule id as configured at the site.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Camera,
    Device,
    Rule,
    Edge,
}

/// The seed's event types, plus device status. Encoded as the dotted string.
///
/// A kind this build does not know decodes as [`EventKind::Unknown`] so that one event from a newer
/// edge cannot make a whole batch undecodable; the cloud rejects it per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "detection.person")]
    DetectionPerson,
    #[serde(rename = "detection.vehicle")]
    DetectionVehicle,
    #[serde(rename = "access.granted")]
    AccessGranted,
    #[serde(rename = "access.denied")]
    AccessDenied,
    #[serde(rename = "sensor.reading")]
    SensorReading,
    #[serde(rename = "alert.triggered")]
    AlertTriggered,
    #[serde(rename = "device.status")]
    DeviceStatus,
    /// A motion episode started on a camera (schema 2).
    #[serde(rename = "motion.detected")]
    MotionDetected,
    /// A tracked object's periodic update (schema 2); its start is the `detection.*` event.
    #[serde(rename = "object.updated")]
    ObjectUpdated,
    /// A tracked object left the view (schema 2).
    #[serde(rename = "object.ended")]
    ObjectEnded,
    /// A tracked object crossed a counting line (schema 2).
    #[serde(rename = "line.crossed")]
    LineCrossed,
    #[serde(rename = "zone.entered")]
    ZoneEntered,
    #[serde(rename = "zone.exited")]
    ZoneExited,
    /// An object stayed in a zone longer than the zone's loitering time (schema 2).
    #[serde(rename = "zone.loitering")]
    ZoneLoitering,
    /// A clip or snapshot referenced by an earlier event is complete on the edge (schema 2).
    #[serde(rename = "media.saved")]
    MediaSaved,
    #[serde(other, rename = "unknown")]
    Unknown,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
        EventKind::DetectionPerson,
        EventKind::DetectionVehicle,
        EventKind::AccessGranted,
        EventKind::AccessDenied,
        EventKind::SensorReading,
        EventKind::AlertTriggered,
        EventKind::DeviceStatus,
        EventKind::MotionDetected,
        EventKind::ObjectUpdated,
        EventKind::ObjectEnded,
        EventKind::LineCrossed,
        EventKind::ZoneEntered,
        EventKind::ZoneExited,
        EventKind::ZoneLoitering,
        EventKind::MediaSaved,
    ];

    /// The dotted name used on the wire, in the database and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DetectionPerson => "detection.person",
            EventKind::DetectionVehicle => "detection.vehicle",
            EventKind::AccessGranted => "access.granted",
            EventKind::AccessDenied => "access.denied",
            EventKind::SensorReading => "sensor.reading",
            EventKind::AlertTriggered => "alert.triggered",
            EventKind::DeviceStatus => "device.status",
            EventKind::MotionDetected => "motion.detected",
            EventKind::ObjectUpdated => "object.updated",
            EventKind::ObjectEnded => "object.ended",
            EventKind::LineCrossed => "line.crossed",
            EventKind::ZoneEntered => "zone.entered",
            EventKind::ZoneExited => "zone.exited",
            EventKind::ZoneLoitering => "zone.loitering",
            EventKind::MediaSaved => "media.saved",
            EventKind::Unknown => "unknown",
        }
    }

    /// Parses a dotted name; `None` for anything that is not a known kind.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether `payload` is the shape this kind carries.
    pub fn accepts(self, payload: &Payload) -> bool {
        matches!(
            (self, payload),
            (EventKind::DetectionPerson | EventKind::DetectionVehicle, Payload::Detection(_))
                | (EventKind::AccessGranted | EventKind::AccessDenied, Payload::Access(_))
                | (EventKind::SensorReading, Payload::SensorReading(_))
                | (EventKind::AlertTriggered, Payload::Alert(_))
                | (EventKind::DeviceStatus, Payload::DeviceStatus(_))
                | (EventKind::MotionDetected, Payload::Motion(_))
                | (EventKind::ObjectUpdated | EventKind::ObjectEnded, Payload::Object(_))
                | (EventKind::LineCrossed, Payload::LineCrossing(_))
                | (EventKind::ZoneEntered | EventKind::ZoneExited | EventKind::ZoneLoitering, Payload::ZonePresence(_))
                | (EventKind::MediaSaved, Payload::Media(_))
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind-specific data. Tagged with `type` so the JSON the cloud serves is self-describing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Detection(Detection),
    Access(AccessDecision),
    SensorReading(SensorReading),
    Alert(Alert),
    DeviceStatus(DeviceStatus),
    Motion(Motion),
    Object(TrackedObject),
    LineCrossing(LineCrossing),
    ZonePresence(ZonePresence),
    Media(MediaSaved),
}

/// Objects a detector found in one analysed frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Model identifier as configured on the edge (file stem or name).
    pub model: String,
    pub frame_seq: u64,
    pub frame_width: u32,
    pub frame_height: u32,
    pub objects: Vec<DetectedObject>,
    /// Clip recorded for this event, when the camera records: a `media.saved` event follows once it
    /// is complete (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<MediaRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedObject {
    /// Class index in the model's output.
    pub class_id: u32,
    /// Class name in the model (e.g. `person`).
    pub label: String,
    pub score: f32,
    pub bbox: BoundingBox,
    /// Tracker id, stable while the object stays in view (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<u64>,
}

/// Axis-aligned box in frame coordinates normalised to 0..=1 (x, y = top-left).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// An access decision taken at a door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDecision {
    pub door: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Machine-readable reason (`valid_credential`, `outside_schedule`, `revoked`, ...).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// What was measured (`temperature`, `humidity`, `co2`, ...).
    pub metric: String,
    pub value: f64,
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub online: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where motion was seen when a motion episode started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Motion {
    /// Fraction of the (unmasked) picture that changed, 0..=1.
    pub score: f32,
    pub regions: Vec<BoundingBox>,
}

/// A tracked object: its periodic update or its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedObject {
    pub track: u64,
    pub class_id: u32,
    pub label: String,
    /// Best score seen so far.
    pub score: f32,
    /// Last known box.
    pub bbox: BoundingBox,
    pub first_seen: crate::Timestamp,
    /// Time in view so far (update) or in total (end).
    pub duration_ms: u64,
    /// JPEG of the object's best frame with its box, once the object ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<MediaRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossingDirection {
    In,
    Out,
}

/// A tracked object crossed a counting line; the counters are the line's totals since the edge started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCrossing {
    pub line: String,
    pub track: u64,
    pub label: String,
    pub direction: CrossingDirection,
    pub count_in: u64,
    pub count_out: u64,
}

/// An object entered, left or lingers in a camera zone (a polygon in the picture).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonePresence {
    /// The polygon's id in the camera's configuration.
    pub area: String,
    pub track: u64,
    pub label: String,
    /// Time inside so far (0 on entry).
    pub dwell_ms: u64,
}

/// A media object stored on the edge (and later uploaded), by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// Object key, e.g. `clips/cam-1/0193….mp4`; the same key is used in object storage.
    pub key: String,
    /// `video/mp4` or `image/jpeg`.
    pub content_type: String,
}

/// A clip or snapshot is complete on the edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSaved {
    pub media: MediaRef,
    /// The event that references it.
    #[serde(with = "uuid_bytes")]
    pub event: Uuid,
    pub bytes: u64,
    /// Clip length; 0 for a snapshot.
    pub duration_ms: u64,
}

/// What an edge uploads in one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// [`crate::SCHEMA_VERSION`] of the sender.
    pub schema: u16,
    pub sent_at: crate::Timestamp,
    pub events: Vec<Event>,
}

/// The cloud's answer to an [`EventBatch`]: one entry per event, in the batch's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchAck {
    pub schema: u16,
    pub results: Vec<EventAck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAck {
    #[serde(with = "uuid_bytes")]
    pub id: Uuid,
    pub status: AckStatus,
}

/// Fate of one event in the cloud. `Stored` and `Duplicate` both mean "durably in the database":
/// the edge may forget the event. `Rejected` means it never will be stored as sent; the edge keeps
/// it aside (quarantine) instead of retrying forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AckStatus {
    Stored,
    Duplicate,
    Rejected { reason: String },
}

impl AckStatus {
    /// Whether the event is durably stored in the cloud.
    pub fn is_persisted(&self) -> bool {
        matches!(self, AckStatus::Stored | AckStatus::Duplicate)
    }
}

/// UUIDs travel as 16-byte CBOR byte strings, not 36-character text.
mod uuid_bytes {
    use serde::{Deserializer, Serializer, de};
    use uuid::Uuid;

    pub fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(id.as_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Uuid;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 16-byte uuid")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Uuid, E> {
                Uuid::from_slice(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uuid, E> {
                Uuid::parse_str(v).map_err(E::custom)
            }
        }
        d.deserialize_bytes(V)
    }
}
