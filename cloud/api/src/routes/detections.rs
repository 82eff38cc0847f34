//! `GET /api/detections/recent` and `GET /api/detections/{id}`: detection events (people and
//! vehicles) seen by the tenant's cameras, limited to the caller's sites. Any role.

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use cloud_store::EventQuery;
use serde::Deserialize;
use uuid::Uuid;
use vigil_proto::EventKind;

use crate::error::ApiError;
use crate::extract::Reader;
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::ApiResponse;
use crate::routes::events::EventJson;
use crate::state::AppState;

/// The kinds that are detections.
pub const DETECTION_KINDS: [EventKind; 2] = [EventKind::DetectionPerson, EventKind::DetectionVehicle];

pub fn router() -> Router<AppState> {
    Router::new().route("/api/detections/recent", get(recent)).route("/api/detections/{id}", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecentQuery {
    site: Option<Uuid>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/detections/recent", tag = "detections", params(("site" = Option<Uuid>, Query, description = "only this site"), ("limit" = Option<u32>, Query, description = "1..=1000, default 50")), security(("bearer" = [])), responses((status = 200, description = "the latest detections, newest first", body = Envelope<Vec<EventJson>>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn recent(
    State(state): State<AppState>,
    reader: Reader,
    query: Result<Query<RecentQuery>, QueryRejection>,
) -> Result<ApiResponse<Vec<EventJson>>, ApiError> {
    let Query(query) = query.map_err(|e| {
        let text = e.body_text();
        let field = if text.contains("site") { "site" } else { "limit" };
        ApiError::validation(field, "invalid value (site: uuid, limit: 1..=1000)")
    })?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=EventQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation("limit", "must be an integer from 1 to 1000"));
    }
    let query = EventQuery {
        site: query.site,
        limit,
        within_sites: reader.sites,
        kinds: Some(DETECTION_KINDS.to_vec()),
        ..EventQuery::default()
    };
    let page = state.store.list_events(reader.tenant_id, &query).await?;
    let mut items: Vec<EventJson> = page.items.into_iter().map(EventJson::from).collect();
    crate::routes::events::attach_media(&state, reader.tenant_id, &mut items).await?;
    Ok(ApiResponse(items))
}

#[utoipa::path(get, path = "/api/detections/{id}", tag = "detections", params(("id" = Uuid, Path, description = "event id (UUIDv7)")), security(("bearer" = [])), responses((status = 200, description = "one detection", body = Envelope<EventJson>), (status = 400, description = "validation error naming the field", body = ErrorEnvelope), (status = 404, description = "no such detection in the caller's tenant and sites", body = ErrorEnvelope)))]
async fn show(
    State(state): State<AppState>,
    reader: Reader,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<ApiResponse<EventJson>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::validation("id", "must be a uuid"))?;
    let event = state.store.event(reader.tenant_id, reader.sites.as_deref(), id).await?.ok_or(ApiError::NotFound)?;
    if !DETECTION_KINDS.iter().any(|k| k.as_str() == event.kind) {
        return Err(ApiError::NotFound);
    }
    let mut items = [EventJson::from(event)];
    crate::routes::events::attach_media(&state, reader.tenant_id, &mut items).await?;
    let [item] = items;
    Ok(ApiResponse(item))
}
