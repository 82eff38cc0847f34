//! Event ingest and listing.
//!
//! Invariants:
//! - Ingest answers exactly one [`AckStatus`] per input event, in input order.
//! - An event is stored under the uploading edge's tenant, site and edge ids; one that claims
//!   another tenant or site is rejected, never re-scoped.
//! - Ingest is idempotent on `(occurred_at, id)`: the first copy is `Stored`, every later copy
//!   (in the same batch or a later one) is `Duplicate`, and there is one row.
//! - A whole batch is one `INSERT .. SELECT FROM UNNEST(..) ON CONFLICT DO NOTHING` in one
//!   tenant transaction (row-level security checks every row's tenant too), so either every accepted event of the batch is stored or
//!   none is and the call fails.
//! - Listing is scoped by tenant, ordered by `(occurred_at, id)` descending, and paginated by
//!   keyset: a page never repeats or skips a row that existed when the first page was read.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Datelike as _, Utc};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;
use vigil_proto::{AckStatus, Event, EventKind, Payload, SourceKind};

use crate::{EdgeIdentity, Store, StoreError, TenantId};

/// Filters and position for [`Store::list_events`].
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// Only this site's events.
    pub site: Option<Uuid>,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events that occurred at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only events that occurred strictly before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Page size; clamped to `1..=`[`EventQuery::MAX_LIMIT`].
    pub limit: u32,
    /// Continue after this position (the previous page's [`Page::next_cursor`]).
    pub cursor: Option<EventCursor>,
    /// Only events of these sites (a caller's site scope); `None` for all.
    pub within_sites: Option<Vec<Uuid>>,
    /// Only events of one of these kinds; `None` for all.
    pub kinds: Option<Vec<EventKind>>,
}

impl EventQuery {
    /// Page size when the caller gives none.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            site: None,
            kind: None,
            from: None,
            to: None,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
            within_sites: None,
            kinds: None,
        }
    }
}

/// A position in the `(occurred_at, id)` descending order: the last item of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub occurred_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<StoredEvent>,
    /// Where the next page starts; `None` when this is the last page.
    pub next_cursor: Option<EventCursor>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub site_id: Uuid,
    pub edge_id: Uuid,
    pub zone: Option<String>,
    /// `camera`, `device`, `rule` or `edge`.
    pub source_kind: String,
    pub source_id: String,
    /// Dotted kind, e.g. `detection.person`.
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The proto payload as JSON, tagged with `type`.
    pub payload: serde_json::Value,
}

const INSERT_EVENTS: &str = "\
INSERT INTO events (id, tenant_id, site_id, edge_id, zone, source_kind, source_id, kind, occurred_at, payload)
SELECT e.id, $1, $2, $3, e.zone, e.source_kind, e.source_id, e.kind, e.occurred_at, e.payload
FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::jsonb[])
    AS e (id, zone, source_kind, source_id, kind, occurred_at, payload)
ON CONFLICT DO NOTHING
RETURNING id, occurred_at";

const SELECT_EVENTS: &str = "\
SELECT id, tenant_id, site_id, edge_id, zone, source_kind, source_id, kind, occurred_at, received_at, payload
FROM events WHERE tenant_id = ";

impl Store {
    /// Stores a batch uploaded by `edge`, answering one status per event in input order:
    /// `Rejected` for events that can never be stored as sent, `Stored` for new ones, `Duplicate`
    /// for ones already stored (or earlier in the same batch).
    ///
    /// An `Err` means nothing of the batch was stored (the edge should retry it as a whole).
    pub async fn insert_events(&self, edge: &EdgeIdentity, events: &[Event]) -> Result<Vec<AckStatus>, StoreError> {
        let mut results: Vec<Option<AckStatus>> = vec![None; events.len()];
        let mut columns = Columns::with_capacity(events.len());
        // (occurred_at micros, id) -> index of the first accepted copy in the batch.
        let mut first: HashMap<(i64, Uuid), usize> = HashMap::with_capacity(events.len());

        for (index, event) in events.iter().enumerate() {
            match check(edge, event) {
                Err(reason) => results[index] = Some(AckStatus::Rejected { reason }),
                Ok(row) => match first.entry((row.occurred_at.timestamp_micros(), event.id)) {
                    Entry::Occupied(_) => results[index] = Some(AckStatus::Duplicate),
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                        columns.push(event, row);
                    }
                },
            }
        }

        if !columns.ids.is_empty() {
            // Durable before acknowledged: the edge deletes its copy on our answer.
            let mut tx = self.tenant_tx_durable(edge.tenant_id).await?;
            let inserted: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(INSERT_EVENTS)
                .bind(edge.tenant_id.as_uuid())
                .bind(edge.site_id)
                .bind(edge.edge_id)
                .bind(&columns.ids)
                .bind(&columns.zones)
                .bind(&columns.source_kinds)
                .bind(&columns.source_ids)
                .bind(&columns.kinds)
                .bind(&columns.occurred_at)
                .bind(&columns.payloads)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            let mut stored = 0usize;
            for (id, occurred_at) in inserted {
                if let Some(&index) = first.get(&(occurred_at.timestamp_micros(), id)) {
                    results[index] = Some(AckStatus::Stored);
                    stored += 1;
                }
            }
            tracing::debug!(edge = %edge.edge_id, received = events.len(), stored, "Events inserted.");
        }
        for index in first.into_values() {
            results[index].get_or_insert(AckStatus::Duplicate);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("invariant: every event was rejected, stored or found duplicate"))
            .collect())
    }

    /// One page of the tenant's events matching `query`, newest first.
    pub async fn list_events(&self, tenant: TenantId, query: &EventQuery) -> Result<Page, StoreError> {
        let limit = query.limit.clamp(1, EventQuery::MAX_LIMIT);
        let mut sql = QueryBuilder::<Postgres>::new(SELECT_EVENTS);
        sql.push_bind(tenant.as_uuid());
        if let Some(site) = query.site {
            sql.push(" AND site_id = ").push_bind(site);
        }
        if let Some(sites) = &query.within_sites {
            sql.push(" AND site_id = ANY(").push_bind(sites.clone()).push(")");
        }
        if let Some(kinds) = &query.kinds {
            let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            sql.push(" AND kind = ANY(").push_bind(kinds).push(")");
        }
        if let Some(kind) = query.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(from) = query.from {
            sql.push(" AND occurred_at >= ").push_bind(from);
        }
        if let Some(to) = query.to {
            sql.push(" AND occurred_at < ").push_bind(to);
        }
        if let Some(cursor) = query.cursor {
            sql.push(" AND (occurred_at, id) < (").push_bind(cursor.occurred_at);
            sql.push(", ").push_bind(cursor.id).push(")");
        }
        // One extra row tells whether another page follows.
        sql.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(i64::from(limit) + 1);

        let mut tx = self.tenant_tx(tenant).await?;
        let mut items: Vec<StoredEvent> = sql.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| EventCursor { occurred_at: e.occurred_at, id: e.id })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

impl Store {
    /// One of the tenant's events (within `sites`) by id. Event ids are UUIDv7 whose time part is
    /// when the event happened, so the search is limited to the partitions a day either side.
    pub async fn event(
        &self,
        tenant: TenantId,
        sites: crate::SiteScope<'_>,
        id: Uuid,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let Some((secs, nanos)) = id.get_timestamp().map(|t| t.to_unix()) else { return Ok(None) };
        let Some(at) = DateTime::<Utc>::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), nanos) else {
            return Ok(None);
        };
        let day = chrono::Duration::days(1);
        let mut tx = self.tenant_tx(tenant).await?;
        let mut sql = QueryBuilder::<Postgres>::new(SELECT_EVENTS);
        sql.push_bind(tenant.as_uuid());
        sql.push(" AND id = ").push_bind(id);
        sql.push(" AND occurred_at >= ").push_bind(at - day).push(" AND occurred_at < ").push_bind(at + day);
        if let Some(sites) = sites {
            sql.push(" AND site_id = ANY(").push_bind(sites.to_vec()).push(")");
        }
        let event = sql.build_query_as().fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(event)
    }
}

/// An accepted event's derived column values.
struct CheckedRow {
    occurred_at: DateTime<Utc>,
    payload: serde_json::Value,
}

/// The batch as parallel column arrays, for `UNNEST`.
struct Columns<'a> {
    ids: Vec<Uuid>,
    zones: Vec<Option<&'a str>>,
    source_kinds: Vec<&'static str>,
    source_ids: Vec<&'a str>,
    kinds: Vec<&'static str>,
    occurred_at: Vec<DateTime<Utc>>,
    payloads: Vec<serde_json::Value>,
}

impl<'a> Columns<'a> {
    fn with_capacity(n: usize) -> Self {
        Columns {
            ids: Vec::with_capacity(n),
            zones: Vec::with_capacity(n),
            source_kinds: Vec::with_capacity(n),
            source_ids: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, event: &'a Event, row: CheckedRow) {
        self.ids.push(event.id);
        self.zones.push(event.zone.as_deref());
        self.source_kinds.push(source_kind_str(event.source.kind));
        self.source_ids.push(&event.source.id);
        self.kinds.push(event.kind.as_str());
        self.occurred_at.push(row.occurred_at);
        self.payloads.push(row.payload);
    }
}

/// Why `event` cannot be stored for `edge`, or its derived column values.
fn check(edge: &EdgeIdentity, event: &Event) -> Result<CheckedRow, String> {
    if event.tenant != edge.tenant_id.as_uuid() {
        return Err("tenant does not match the edge's tenant".into());
    }
    if event.site != edge.site_id {
        return Err("site does not match the edge's site".into());
    }
    if event.kind == EventKind::Unknown {
        return Err("unknown event kind".into());
    }
    if !event.kind.accepts(&event.payload) {
        return Err(format!("payload type does not match kind {}", event.kind));
    }
    // Years 1..=9999: what PostgreSQL stores and RFC 3339 can write.
    let occurred_at = event
        .occurred_at
        .to_chrono()
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| "occurred_at out of range".to_owned())?;
    if has_non_finite(&event.payload) {
        return Err("payload contains a non-finite number".into());
    }
    let has_nul = |s: &str| s.contains('\0');
    if event.zone.as_deref().is_some_and(has_nul) || has_nul(&event.source.id) {
        return Err("zone or source id contains a NUL character".into());
    }
    let payload = serde_json::to_value(&event.payload).map_err(|_| "payload is not representable as JSON")?;
    // PostgreSQL's jsonb cannot hold U+0000.
    if json_has_nul(&payload) {
        return Err("payload contains a NUL character".into());
    }
    Ok(CheckedRow { occurred_at, payload })
}

/// The spelling used in the database and the API.
fn source_kind_str(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Camera => "camera",
        SourceKind::Device => "device",
        SourceKind::Rule => "rule",
        SourceKind::Edge => "edge",
    }
}

/// NaN and infinities would silently become JSON `null`; refuse them instead.
fn has_non_finite(payload: &Payload) -> bool {
    let bad_box = |b: &vigil_proto::BoundingBox| ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite());
    match payload {
        Payload::Detection(d) => d.objects.iter().any(|o| !o.score.is_finite() || bad_box(&o.bbox)),
        Payload::SensorReading(r) => !r.value.is_finite(),
        Payload::Motion(m) => !m.score.is_finite() || m.regions.iter().any(bad_box),
        Payload::Object(o) => !o.score.is_finite() || bad_box(&o.bbox),
        Payload::Access(_)
        | Payload::Alert(_)
        | Payload::DeviceStatus(_)
        | Payload::LineCrossing(_)
        | Payload::ZonePresence(_)
        | Payload::Media(_) => false,
    }
}

fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => false,
    }
}
