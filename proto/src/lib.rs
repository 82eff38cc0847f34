//! The wire contract between a Vigil edge and the cloud.
//!
//! Architecture invariant: this is the only crate whose types cross the network. It does no IO and
//! knows nothing of tokio, HTTP or storage. Any change to an encoded shape bumps [`SCHEMA_VERSION`]
//! and the golden vectors in `tests`.
//!
//! The flow is: the edge wraps what happened in an [`Event`], groups events in an [`EventBatch`],
//! encodes it with [`codec::encode`] and POSTs it; the cloud answers with a [`BatchAck`] that has one
//! [`EventAck`] per event, and only then does the edge forget the event.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod codec;
pub mod config;
mod event;
mod time;

pub use config::{ConfigReport, SITE_CONFIG_SCHEMA, SiteConfig};
pub use event::{
    AccessDecision, AckStatus, Alert, BatchAck, BoundingBox, CrossingDirection, DetectedObject, Detection,
    DeviceStatus, Event, EventAck, EventBatch, EventKind, LineCrossing, MediaRef, MediaSaved, Motion, Payload,
    SensorReading, Severity, Source, SourceKind, TrackedObject, ZonePresence,
};
pub use time::Timestamp;

/// Version of the encoded shapes in this crate. The cloud rejects batches with a version it does
/// not speak, with a clear error, instead of guessing.
///
/// 2 added motion, object lifecycle, line, zone and media events and optional track/clip fields;
/// every schema-1 batch is also a valid schema-2 batch, so the cloud accepts
/// [`MIN_SCHEMA_VERSION`]`..=`[`SCHEMA_VERSION`] (edges in the field upgrade one by one).
pub const SCHEMA_VERSION: u16 = 2;

/// Oldest schema the cloud still accepts.
pub const MIN_SCHEMA_VERSION: u16 = 1;

/// Content type of CBOR request and response bodies.
pub const CBOR_CONTENT_TYPE: &str = "application/cbor";

/// Path of the cloud's batch ingest endpoint.
pub const INGEST_EVENTS_PATH: &str = "/api/ingest/events";
