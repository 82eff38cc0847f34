//! `GET /api/events`: a tenant's events, newest first, with keyset pagination.
//!
//! Auth: `Authorization: Bearer <api key | access token>`; the key's or user's tenant scopes
//! everything (the store filters by it, and row-level security enforces it), and a site-scoped
//! user sees only their sites' events. Query parameters, all optional, each at most once; anything else is a 400
//! `VALIDATION_ERROR` whose `details.field` names the parameter:
//!
//! | parameter | meaning |
//! |---|---|
//! | `site`   | site uuid |
//! | `kind`   | dotted kind, e.g. `detection.person` |
//! | `from`   | RFC 3339 instant, inclusive |
//! | `to`     | RFC 3339 instant, exclusive; not before `from` |
//! | `limit`  | page size 1..=1000, default 100 |
//! | `cursor` | the previous page's `next_cursor`, opaque |
//! | `format` | `json` (default) or `csv`; `Accept: text/csv` also selects CSV |
//!
//! CSV export: `text/csv` (RFC 4180) with a header row; the next page's cursor is in the
//! `X-Next-Cursor` response header.
//!
//! `data` is `{"items":[...],"next_cursor":string|null}`; see [`EventJson`] for an item.
//! The cursor is base64url (no padding) of the last item's `occurred_at` (i64 microseconds,
//! big-endian) followed by its id (16 bytes); clients must treat it as opaque.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use cloud_store::{EventCursor, EventQuery, StoredEvent, TenantId};
use serde::Serialize;
use uuid::Uuid;
use vigil_proto::EventKind;

use crate::error::ApiError;
use crate::extract::Reader;
use crate::openapi::{Envelope, ErrorEnvelope};
use crate::response::{ApiResponse, rfc3339_micros};
use crate::state::AppState;

/// Path of the listing endpoint.
pub const PATH: &str = "/api/events";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(list))
}

/// One page, as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    pub items: Vec<EventJson>,
    pub next_cursor: Option<String>,
}

/// One event, as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventJson {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub site_id: Uuid,
    pub edge_id: Uuid,
    pub zone: Option<String>,
    pub source: SourceJson,
    /// Dotted kind.
    pub kind: String,
    /// RFC 3339, UTC, microseconds.
    pub occurred_at: String,
    /// RFC 3339, UTC, microseconds.
    pub received_at: String,
    /// Kind-specific data, tagged with `type` (the proto payload as JSON).
    pub payload: serde_json::Value,
    /// The event's clip or snapshot, when it has one, and whether it is uploaded yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<crate::routes::media::MediaJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceJson {
    /// `camera`, `device`, `rule` or `edge`.
    pub kind: String,
    pub id: String,
}

impl From<StoredEvent> for EventJson {
    fn from(e: StoredEvent) -> Self {
        EventJson {
            id: e.id,
            tenant_id: e.tenant_id,
            site_id: e.site_id,
            edge_id: e.edge_id,
            zone: e.zone,
            source: SourceJson { kind: e.source_kind, id: e.source_id },
            kind: e.kind,
            occurred_at: rfc3339_micros(e.occurred_at),
            received_at: rfc3339_micros(e.received_at),
            media: crate::routes::media::payload_media(&e.payload)
                .map(|(key, content_type)| crate::routes::media::media_json(key, content_type, None)),
            payload: e.payload,
        }
    }
}

/// Fills in each event's `media` from the uploads the tenant has (one query per page).
pub async fn attach_media(state: &AppState, tenant: TenantId, items: &mut [EventJson]) -> Result<(), ApiError> {
    let keys: Vec<(Uuid, String)> =
        items.iter().filter_map(|e| e.media.as_ref().map(|m| (e.site_id, m.key.clone()))).collect();
    if keys.is_empty() {
        return Ok(());
    }
    let found = state.store.media_by_keys(tenant, &keys).await?;
    for item in items.iter_mut() {
        let site = item.site_id;
        if let Some(media) = item.media.take() {
            let upload = found.iter().find(|u| u.site_id == site && u.key == media.key);
            item.media = Some(crate::routes::media::media_json(media.key, media.content_type, upload));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/events", tag = "events", params(("site" = Option<Uuid>, Query, description = "site id"), ("kind" = Option<String>, Query, description = "dotted kind, e.g. detection.person"), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<u32>, Query, description = "1..=1000, default 100"), ("cursor" = Option<String>, Query, description = "previous page's next_cursor"), ("format" = Option<String>, Query, description = "json (default) or csv")), security(("bearer" = [])), responses((status = 200, description = "one page, newest first (JSON envelope, or text/csv)", content((Envelope<EventsPage> = "application/json"), (String = "text/csv"))), (status = 400, description = "validation error naming the field", body = ErrorEnvelope),(status = 401, description = "missing or invalid credential", body = ErrorEnvelope)))]
async fn list(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut params) = params.map_err(|_| ApiError::validation("query", "malformed query string"))?;
    let csv = wants_csv(&headers, &mut params)?;
    let mut query = parse_query(&params)?;
    query.within_sites = reader.sites;
    let page = state.store.list_events(reader.tenant_id, &query).await?;
    let next_cursor = page.next_cursor.map(encode_cursor);
    if csv {
        let mut response =
            ([(header::CONTENT_TYPE, HeaderValue::from_static(CSV_CONTENT_TYPE))], to_csv(&page.items)).into_response();
        if let Some(next) = next_cursor.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(NEXT_CURSOR_HEADER, next);
        }
        return Ok(response);
    }
    let mut items: Vec<EventJson> = page.items.into_iter().map(EventJson::from).collect();
    attach_media(&state, reader.tenant_id, &mut items).await?;
    Ok(ApiResponse(EventsPage { items, next_cursor }).into_response())
}

/// Media type of the CSV export.
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// Where the CSV export puts the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// Whether the caller asked for CSV (`format=csv`, or an `Accept` that prefers `text/csv`);
/// removes `format` from the parameters.
fn wants_csv(headers: &HeaderMap, params: &mut Vec<(String, String)>) -> Result<bool, ApiError> {
    let mut csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| first.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv")));
    let mut formats = params.iter().filter(|(k, _)| k == "format");
    if let Some((_, format)) = formats.next() {
        if formats.next().is_some() {
            return Err(ApiError::validation("format", "given more than once"));
        }
        csv = match format.as_str() {
            "csv" => true,
            "json" => false,
            _ => return Err(ApiError::validation("format", "expected csv or json")),
        };
    }
    params.retain(|(k, _)| k != "format");
    Ok(csv)
}

/// RFC 4180 CSV, one row per event; cells that a spreadsheet would run as a formula get a `'`.
fn to_csv(items: &[StoredEvent]) -> String {
    let mut out =
        String::from("id,occurred_at,received_at,kind,site_id,edge_id,zone,source_kind,source_id,payload\r\n");
    for e in items {
        let payload = e.payload.to_string();
        let cells = [
            e.id.to_string(),
            rfc3339_micros(e.occurred_at),
            rfc3339_micros(e.received_at),
            e.kind.clone(),
            e.site_id.to_string(),
            e.edge_id.to_string(),
            e.zone.clone().unwrap_or_default(),
            e.source_kind.clone(),
            e.source_id.clone(),
            payload,
        ];
        let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

/// Validates the query parameters into a store query.
fn parse_query(params: &[(String, String)]) -> Result<EventQuery, ApiError> {
    let mut query = EventQuery::default();
    let mut seen: Vec<&str> = Vec::with_capacity(params.len());
    for (name, value) in params {
        if seen.contains(&name.as_str()) {
            return Err(ApiError::validation(name.clone(), "given more than once"));
        }
        seen.push(name);
        match name.as_str() {
            "site" => {
                let site = Uuid::parse_str(value).map_err(|_| ApiError::validation("site", "must be a uuid"))?;
                query.site = Some(site);
            }
            "kind" => {
                let kind = EventKind::parse(value).ok_or_else(|| {
                    let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::validation("kind", format!("unknown event kind; expected one of {}", known.join(", ")))
                })?;
                query.kind = Some(kind);
            }
            "from" => query.from = Some(parse_instant("from", value)?),
            "to" => query.to = Some(parse_instant("to", value)?),
            "limit" => {
                query.limit =
                    value.parse::<u32>().ok().filter(|n| (1..=EventQuery::MAX_LIMIT).contains(n)).ok_or_else(|| {
                        ApiError::validation("limit", format!("must be an integer from 1 to {}", EventQuery::MAX_LIMIT))
                    })?;
            }
            "cursor" => {
                query.cursor =
                    Some(decode_cursor(value).ok_or_else(|| ApiError::validation("cursor", "invalid cursor"))?);
            }
            _ => return Err(ApiError::validation(name.clone(), "unknown query parameter")),
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to < from
    {
        return Err(ApiError::validation("to", "must not be before `from`"));
    }
    Ok(query)
}

fn parse_instant(field: &'static str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::validation(field, "must be an RFC 3339 instant, e.g. 2024-12-29T10:00:00Z"))
}

const CURSOR_LEN: usize = 8 + 16;

fn encode_cursor(cursor: EventCursor) -> String {
    let mut bytes = [0u8; CURSOR_LEN];
    bytes[..8].copy_from_slice(&cursor.occurred_at.timestamp_micros().to_be_bytes());
    bytes[8..].copy_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(text: &str) -> Option<EventCursor> {
    let bytes: [u8; CURSOR_LEN] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
    let (micros, id) = bytes.split_at(8);
    let micros = i64::from_be_bytes(micros.try_into().ok()?);
    Some(EventCursor { occurred_at: DateTime::from_timestamp_micros(micros)?, id: Uuid::from_slice(id).ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[track_caller]
    fn invalid_field(pairs: &[(&str, &str)]) -> String {
        match parse_query(&params(pairs)) {
            Err(ApiError::Validation { field, .. }) => field.into_owned(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("{\"a\":1,\"b\":2}"), "\"{\"\"a\"\":1,\"\"b\"\":2}\"");
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = EventCursor {
            occurred_at: DateTime::from_timestamp_micros(1_735_466_400_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        let text = encode_cursor(cursor);
        assert_eq!(text.len(), 32);
        assert_eq!(decode_cursor(&text), Some(cursor));
        for bad in ["", "abc", "!!!!", &text[..31], &format!("{text}AA")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn valid_parameters() {
        let q = parse_query(&params(&[
            ("site", "0192f0c1-0000-7000-8000-000000000001"),
            ("kind", "access.denied"),
            ("from", "2024-12-29T10:00:00Z"),
            ("to", "2024-12-29T12:00:00+01:00"),
            ("limit", "1000"),
        ]))
        .unwrap();
        assert_eq!(q.kind, Some(EventKind::AccessDenied));
        assert_eq!(q.limit, 1000);
        assert_eq!(q.to.unwrap() - q.from.unwrap(), chrono::Duration::hours(1));
        assert_eq!(parse_query(&[]).unwrap(), EventQuery::default());
    }

    #[test]
    fn invalid_parameters_name_their_field() {
        assert_eq!(invalid_field(&[("site", "hq")]), "site");
        assert_eq!(invalid_field(&[("kind", "bogus")]), "kind");
        assert_eq!(invalid_field(&[("kind", "unknown")]), "kind");
        assert_eq!(invalid_field(&[("from", "yesterday")]), "from");
        assert_eq!(invalid_field(&[("to", "2024-13-01T00:00:00Z")]), "to");
        assert_eq!(invalid_field(&[("from", "2024-12-29T10:00:00Z"), ("to", "2024-12-29T09:00:00Z")]), "to");
        assert_eq!(invalid_field(&[("limit", "0")]), "limit");
        assert_eq!(invalid_field(&[("limit", "1001")]), "limit");
        assert_eq!(invalid_field(&[("limit", "-1")]), "limit");
        assert_eq!(invalid_field(&[("cursor", "nope")]), "cursor");
        assert_eq!(invalid_field(&[("sites", "x")]), "sites");
        assert_eq!(invalid_field(&[("limit", "5"), ("limit", "6")]), "limit");
    }
}
