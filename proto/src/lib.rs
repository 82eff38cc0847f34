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
mod event;
mod time;

pub use event::{
    AccessDecision, AckStatus, Alert, BatchAck, BoundingBox, DetectedObject, Detection, DeviceStatus, Event, EventAck,
    EventBatch, EventKind, Payload, SensorReading, Severity, Source, SourceKind,
};
pub use time::Timestamp;

/// Version of the encoded shapes in this crate. The cloud rejects batches with a version it does
/// not speak, with a clear error, instead of guessing.
pub const SCHEMA_VERSION: u16 = 1;

/// Content type of CBOR request and response bodies.
pub const CBOR_CONTENT_TYPE: &str = "application/cbor";

/// Path of the cloud's batch ingest endpoint.
pub const INGEST_EVENTS_PATH: &str = "/api/ingest/events";
