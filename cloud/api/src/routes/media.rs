//! Clips and snapshots: the edge's resumable upload (edge token) and the users' read.
//!
//! Upload protocol (the edge never holds bucket credentials; every byte goes through the cloud):
//! 1. `POST /api/edge/media` `{key, content_type, bytes, sha256, event?}` → the upload's state:
//!    `{id, part_size, parts, received: [part numbers], complete}`. Idempotent per key: announcing
//!    again (after a cut, a restart of either side) returns the same upload and what it holds.
//! 2. `PUT /api/edge/media/{id}/part?n=<part>`, body = the part's bytes (`part_size` bytes, the
//!    last one the rest); a resent part replaces the earlier copy.
//! 3. `POST /api/edge/media/{id}/complete` → the object is assembled, its size and SHA-256 checked
//!    against the announce, and only then linked to the event (`409` when parts are missing,
//!    `422` when the stored object does not match: the upload restarts from nothing).
//!
//! Users read a complete object with `GET /api/media/{id}` (the id is in the event's `media`).

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use cloud_store::{EdgeIdentity, MediaPart, MediaUpload, NewMedia};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{EdgeAuth, JsonBody, Reader};
use crate::media::{self, MediaError, MediaStore, object_path, part_count, part_len};
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::state::AppState;

/// Every route but the part upload (which has its own timeout, see [`crate::app`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/edge/media", post(announce))
        .route("/api/edge/media/{id}/complete", post(complete))
        .route("/api/media/{id}", get(read))
}

/// The part upload: bodies up to the part size (checked in the handler), long requests allowed.
pub fn part_router() -> Router<AppState> {
    Router::new().route("/api/edge/media/{id}/part", put(put_part).layer(DefaultBodyLimit::disable()))
}

/// An edge announces a file it will upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnounceRequest {
    /// `clips/<camera>/<name>.mp4` or `snapshots/<camera>/<name>.jpg`.
    pub key: String,
    /// `video/mp4` or `image/jpeg`, matching the key.
    pub content_type: String,
    /// Size of the whole file.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    /// The event that references the file.
    #[serde(default)]
    pub event: Option<Uuid>,
}

/// Where an upload stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadState {
    pub id: Uuid,
    pub key: String,
    /// Every part but the last has this many bytes.
    pub part_size: u64,
    /// How many parts the file has.
    pub parts: u64,
    /// Part numbers (0-based) the cloud already holds.
    pub received: Vec<u64>,
    /// The object is stored and verified; nothing more to send.
    pub complete: bool,
}

impl UploadState {
    fn of(upload: &MediaUpload, parts: &[MediaPart]) -> UploadState {
        let (bytes, part_size) = (upload.bytes as u64, upload.part_size as u64);
        UploadState {
            id: upload.id,
            key: upload.key.clone(),
            part_size,
            parts: part_count(bytes, part_size),
            received: if upload.is_complete() { Vec::new() } else { parts.iter().map(|p| p.part as u64).collect() },
            complete: upload.is_complete(),
        }
    }
}

fn media_store(state: &AppState) -> Result<&MediaStore, ApiError> {
    state.media.as_ref().ok_or(ApiError::Unavailable("media storage is not configured"))
}

fn path_id(id: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, ApiError> {
    id.map(|Path(id)| id).map_err(|_| ApiError::validation("id", "must be a uuid"))
}

fn storage_error(error: MediaError) -> ApiError {
    match error {
        MediaError::NotFound => ApiError::NotFound,
        other => {
            tracing::warn!(error = %crate::error::chain(&other), "Media storage failed.");
            ApiError::Unavailable("media storage is unavailable; retry later")
        }
    }
}

#[utoipa::path(post, path = "/api/edge/media", tag = "media", request_body = AnnounceRequest, security(("bearer" = [])), responses((status = 200, description = "the upload's state (the same upload when announced again)", body = Envelope<UploadState>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope), (status = 409, description = "another file was already stored under this key", body = ErrorEnvelope), (status = 503, description = "media storage unavailable", body = ErrorEnvelope)))]
async fn announce(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    JsonBody(body): JsonBody<AnnounceRequest>,
) -> Result<ApiResponse<UploadState>, ApiError> {
    media::check_key(&body.key, &body.content_type).map_err(|why| ApiError::validation("key", why))?;
    if body.bytes == 0 || body.bytes > media::MAX_OBJECT_BYTES {
        return Err(ApiError::validation("bytes", format!("must be from 1 to {}", media::MAX_OBJECT_BYTES)));
    }
    if body.sha256.len() != 64 || !body.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError::validation("sha256", "must be 64 lowercase hex digits"));
    }
    let store = media_store(&state)?;
    let new = NewMedia {
        key: &body.key,
        content_type: &body.content_type,
        bytes: body.bytes as i64,
        sha256: &body.sha256,
        part_size: store.part_size() as i64,
        event_id: body.event,
    };
    let announced = state.store.announce_media(&edge, &new).await?;
    let path = object_path(edge.tenant_id.as_uuid(), edge.site_id, &body.key);
    if let Some(old) = &announced.replaced_multipart {
        store.abort(&path, announced.upload.id, Some(old), 0).await;
    }
    let upload = announced.upload;
    if !upload.is_complete() && upload.multipart_id.is_none() && store.is_multipart() {
        let ours = store.begin(&path).await.map_err(storage_error)?;
        if let Some(ours) = ours {
            let current = state.store.set_media_multipart(&edge, upload.id, &ours).await?;
            if current.as_deref() != Some(ours.as_str()) {
                // Another announce of the same key won the race: its multipart upload is the one.
                store.abort(&path, upload.id, Some(&ours), 0).await;
            }
        }
    }
    if announced.parts.is_empty() && !upload.is_complete() {
        tracing::info!(edge = %edge.edge_id, key = %upload.key, bytes = upload.bytes, "Media upload announced.");
    }
    Ok(ApiResponse(UploadState::of(&upload, &announced.parts)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartQuery {
    n: u64,
}

/// One received part.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartReceived {
    pub id: Uuid,
    pub part: u64,
    pub bytes: u64,
}

/// The edge's own upload, or 404 (another site's or tenant's id looks like a missing one).
async fn edge_upload(
    state: &AppState,
    edge: &EdgeIdentity,
    id: Uuid,
) -> Result<(MediaUpload, Vec<MediaPart>), ApiError> {
    state.store.edge_media_upload(edge, id).await?.ok_or(ApiError::NotFound)
}

#[utoipa::path(put, path = "/api/edge/media/{id}/part", tag = "media", params(("id" = Uuid, Path, description = "upload id"), ("n" = u64, Query, description = "part number, 0-based")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the part's bytes: part_size bytes, the last part the rest"), security(("bearer" = [])), responses((status = 200, description = "stored", body = Envelope<PartReceived>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope), (status = 404, description = "no such upload for this edge's site", body = ErrorEnvelope), (status = 409, description = "the upload is already complete", body = ErrorEnvelope), (status = 413, description = "larger than the part size", body = ErrorEnvelope), (status = 503, description = "media storage unavailable", body = ErrorEnvelope)))]
async fn put_part(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    id: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<PartQuery>, QueryRejection>,
    request: Request,
) -> Result<ApiResponse<PartReceived>, ApiError> {
    let id = path_id(id)?;
    let Query(PartQuery { n }) = query.map_err(|_| ApiError::validation("n", "must be a part number"))?;
    let store = media_store(&state)?;
    let (upload, _) = edge_upload(&state, &edge, id).await?;
    if upload.is_complete() {
        return Err(ApiError::Conflict { field: "id".into() });
    }
    let (bytes, part_size) = (upload.bytes as u64, upload.part_size as u64);
    let parts = part_count(bytes, part_size);
    if n >= parts {
        return Err(ApiError::validation("n", format!("this file has parts 0 to {}", parts - 1)));
    }
    let expected = part_len(bytes, part_size, n);
    let data =
        axum::body::to_bytes(request.into_body(), expected as usize).await.map_err(|_| ApiError::PayloadTooLarge {
            message: "the body is larger than this part".into(),
            details: json!({ "max_bytes": expected }),
        })?;
    if data.len() as u64 != expected {
        return Err(ApiError::validation("body", format!("part {n} has {expected} bytes, got {}", data.len())));
    }
    let path = object_path(edge.tenant_id.as_uuid(), edge.site_id, &upload.key);
    let multipart = upload.multipart_id.as_deref();
    if store.is_multipart() && multipart.is_none() {
        // Restarted after a failed verification: the edge announces again to get a new one.
        return Err(ApiError::Conflict { field: "id".into() });
    }
    let etag = store.put_part(&path, upload.id, multipart, n as u32, data).await.map_err(storage_error)?;
    if !state.store.record_media_part(&edge, id, n as i32, expected as i64, &etag).await? {
        return Err(ApiError::Conflict { field: "id".into() });
    }
    Ok(ApiResponse(PartReceived { id, part: n, bytes: expected }))
}

#[utoipa::path(post, path = "/api/edge/media/{id}/complete", tag = "media", params(("id" = Uuid, Path, description = "upload id")), security(("bearer" = [])), responses((status = 200, description = "stored and verified (also when it already was)", body = Envelope<UploadState>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid edge token", body = ErrorEnvelope), (status = 404, description = "no such upload for this edge's site", body = ErrorEnvelope), (status = 409, description = "parts are missing (details.missing)", body = ErrorEnvelope), (status = 422, description = "the assembled object's size or sha256 differs from the announce; the upload restarts", body = ErrorEnvelope), (status = 503, description = "media storage unavailable", body = ErrorEnvelope)))]
async fn complete(
    State(state): State<AppState>,
    EdgeAuth(edge): EdgeAuth,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<UploadState>, ApiError> {
    let id = path_id(id)?;
    let store = media_store(&state)?;
    let (upload, parts) = edge_upload(&state, &edge, id).await?;
    if upload.is_complete() {
        return Ok(ApiResponse(UploadState::of(&upload, &[])));
    }
    let (bytes, part_size) = (upload.bytes as u64, upload.part_size as u64);
    let count = part_count(bytes, part_size);
    let missing: Vec<u64> = (0..count).filter(|n| !parts.iter().any(|p| p.part as u64 == *n)).collect();
    if !missing.is_empty() {
        return Err(ApiError::Incomplete { missing });
    }
    let path = object_path(edge.tenant_id.as_uuid(), edge.site_id, &upload.key);
    let etags = parts.iter().map(|p| p.etag.clone()).collect();
    match store.complete(&path, upload.id, upload.multipart_id.as_deref(), etags, bytes, &upload.sha256).await {
        Ok(()) => {}
        Err(MediaError::Mismatch { bytes: got, sha256 }) => {
            state.store.restart_media(&edge, id).await?;
            tracing::warn!(edge = %edge.edge_id, key = %upload.key, announced = bytes, got, "Media upload failed verification; restarting it.");
            return Err(ApiError::Mismatch { bytes: got, sha256 });
        }
        Err(MediaError::NotFound) => {
            // A part or the multipart upload is gone from the store (expired, cleaned): start over.
            state.store.restart_media(&edge, id).await?;
            return Err(ApiError::Incomplete { missing: (0..count).collect() });
        }
        Err(other) => return Err(storage_error(other)),
    }
    let done = state.store.complete_media(&edge, id).await?.ok_or(ApiError::NotFound)?;
    tracing::info!(edge = %edge.edge_id, key = %done.key, bytes = done.bytes, store = store.describe(), "Media stored.");
    Ok(ApiResponse(UploadState::of(&done, &[])))
}

#[utoipa::path(get, path = "/api/media/{id}", tag = "media", params(("id" = Uuid, Path, description = "media id (an event's media.id)")), security(("bearer" = [])), responses((status = 200, description = "the clip (video/mp4) or snapshot (image/jpeg)", content((Vec<u8> = "video/mp4"), (Vec<u8> = "image/jpeg"))), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope), (status = 404, description = "no such complete object in the caller's tenant and sites", body = ErrorEnvelope), (status = 503, description = "media storage unavailable", body = ErrorEnvelope)))]
async fn read(
    State(state): State<AppState>,
    reader: Reader,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let found = state.store.media_object(reader.tenant_id, reader.sites.as_deref(), id).await?;
    let upload = found.filter(MediaUpload::is_complete).ok_or(ApiError::NotFound)?;
    let store = media_store(&state)?;
    let object = store
        .get(&object_path(reader.tenant_id.as_uuid(), upload.site_id, &upload.key))
        .await
        .map_err(storage_error)?;
    let content_type = HeaderValue::from_str(&upload.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(upload.bytes)),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
        ],
        Body::from_stream(object.into_stream()),
    )
        .into_response())
}

/// How an event's clip or snapshot appears in the event JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MediaJson {
    /// The edge's key.
    pub key: String,
    pub content_type: String,
    /// Uploaded, verified and readable at `url`.
    pub available: bool,
    /// Size when known (announced).
    pub bytes: Option<i64>,
    /// Media id for `GET /api/media/{id}`, once the edge announced the upload.
    pub id: Option<Uuid>,
    /// `/api/media/{id}` when available.
    pub url: Option<String>,
}

/// The media reference in an event payload (a detection's `clip`, an ended object's `snapshot`,
/// or `media.saved`'s `media`): (key, content type).
pub fn payload_media(payload: &serde_json::Value) -> Option<(String, String)> {
    ["clip", "snapshot", "media"].iter().find_map(|field| {
        let m = payload.get(*field)?;
        Some((m.get("key")?.as_str()?.to_owned(), m.get("content_type")?.as_str()?.to_owned()))
    })
}

/// The `media` of one event, from the uploads found for the page.
pub fn media_json(key: String, content_type: String, found: Option<&MediaUpload>) -> MediaJson {
    match found {
        Some(u) => MediaJson {
            key,
            content_type: u.content_type.clone(),
            available: u.is_complete(),
            bytes: Some(u.bytes),
            id: Some(u.id),
            url: u.is_complete().then(|| format!("/api/media/{}", u.id)),
        },
        None => MediaJson { key, content_type, available: false, bytes: None, id: None, url: None },
    }
}
