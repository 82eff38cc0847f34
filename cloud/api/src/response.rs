//! The success envelope: `{"success":true,"data":...,"timestamp":"RFC 3339"}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// A JSON success response wrapping `data`.
#[derive(Debug)]
pub struct ApiResponse<T>(pub T);

#[derive(Serialize)]
struct Envelope<'a, T> {
    success: bool,
    data: &'a T,
    timestamp: String,
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        Json(Envelope { success: true, data: &self.0, timestamp: now_rfc3339() }).into_response()
    }
}

/// Now, as the envelopes write it (`2024-12-29T10:00:00.123Z`).
pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How instants appear in response data: RFC 3339, UTC, microseconds (`2024-12-29T10:00:00.123456Z`).
pub(crate) fn rfc3339_micros(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}
