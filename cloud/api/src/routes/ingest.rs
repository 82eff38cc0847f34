//! `POST /api/ingest/events` ([`vigil_proto::INGEST_EVENTS_PATH`]): edges upload event batches.
//!
//! Request: `Authorization: Bearer <edge token>`, `Content-Type: application/cbor`, body a CBOR
//! [`EventBatch`] of at most [`MAX_EVENTS`] events and [`MAX_BODY_BYTES`] bytes.
//! Response: 200 `application/cbor` [`BatchAck`] with one [`vigil_proto::EventAck`] per event, in
//! order. Errors are JSON envelopes: 401, 415, 413, 400 (undecodable body), 422 (schema), 503
//! (database down: retry the same batch later).
//!
//! Checks run in that order: credential, media type, size, decoding, schema, count. Nothing is
//! stored unless all pass; then every event gets its own verdict (see `cloud_store` for ingest
//! invariants). Replaying a batch is safe: already stored events come back as `duplicate`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use vigil_proto::{
    AckStatus, BatchAck, CBOR_CONTENT_TYPE, EventAck, EventBatch, INGEST_EVENTS_PATH, MIN_SCHEMA_VERSION,
    SCHEMA_VERSION, codec,
};

use crate::error::ApiError;
use crate::extract::EdgeAuth;
use crate::openapi::ErrorEnvelope;
use crate::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS: usize = 5000;

pub fn router() -> Router<AppState> {
    Router::new().route(INGEST_EVENTS_PATH, post(ingest).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)))
}

#[utoipa::path(post, path = "/api/ingest/events", tag = "ingest", request_body(content = Vec<u8>, content_type = "application/cbor", description = "CBOR EventBatch (see vigil-proto)"), security(("bearer" = [])), responses((status = 200, description = "CBOR BatchAck, one status per event", content_type = "application/cbor"), (status = 400, description = "undecodable body", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope),(status = 413, description = "too large", body = ErrorEnvelope),(status = 415, description = "not application/cbor", body = ErrorEnvelope),(status = 422, description = "unsupported schema version", body = ErrorEnvelope)))]
async fn ingest(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    _: CborBody,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                message: "request body too large".into(),
                details: json!({ "max_bytes": MAX_BODY_BYTES }),
            }
        } else {
            ApiError::BadRequest { message: "cannot read the request body".into(), details: None }
        }
    })?;
    let batch = decode_batch(&body)?;
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge {
            message: format!("a batch holds at most {MAX_EVENTS} events").into(),
            details: json!({ "max_events": MAX_EVENTS, "events": batch.events.len() }),
        });
    }

    let statuses = state.store.insert_events(&edge, &batch.events).await?;
    let rejected: Vec<&str> = statuses
        .iter()
        .filter_map(|s| match s {
            AckStatus::Rejected { reason } => Some(reason.as_str()),
            AckStatus::Stored | AckStatus::Duplicate => None,
        })
        .collect();
    if let Some(first) = rejected.first() {
        tracing::warn!(edge = %edge.edge_id, rejected = rejected.len(), first_reason = %first, "Events rejected.");
    }
    let results = batch.events.iter().zip(statuses).map(|(event, status)| EventAck { id: event.id, status }).collect();
    let ack = BatchAck { schema: SCHEMA_VERSION, results };
    let bytes = codec::encode(&ack).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(CBOR_CONTENT_TYPE))], bytes).into_response())
}

/// Decodes the body; a batch of another schema version is a 422 even when its shape no longer
/// decodes as this version's [`EventBatch`].
fn decode_batch(body: &[u8]) -> Result<EventBatch, ApiError> {
    /// Just the version field of any batch (other fields are skipped).
    #[derive(Deserialize)]
    struct SchemaProbe {
        schema: u16,
    }
    let unsupported = |got: u16| ApiError::UnsupportedSchema { got };
    let speaks = |v: u16| (MIN_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&v);
    match codec::decode::<EventBatch>(body) {
        Ok(batch) if speaks(batch.schema) => Ok(batch),
        Ok(batch) => Err(unsupported(batch.schema)),
        Err(error) => match codec::decode::<SchemaProbe>(body) {
            Ok(probe) if !speaks(probe.schema) => Err(unsupported(probe.schema)),
            _ => Err(ApiError::BadRequest {
                message: "the body is not a valid CBOR event batch".into(),
                details: Some(json!({ "reason": error.to_string() })),
            }),
        },
    }
}

/// Requires `Content-Type: application/cbor` (parameters allowed), checked before the body is read.
struct CborBody;

impl<S: Sync> FromRequestParts<S> for CborBody {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let is_cbor = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(CBOR_CONTENT_TYPE));
        if is_cbor { Ok(CborBody) } else { Err(ApiError::UnsupportedMediaType { expected: CBOR_CONTENT_TYPE }) }
    }
}
