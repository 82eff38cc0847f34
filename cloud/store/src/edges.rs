//! Edges as operators see them: identity, revocation, and the latest heartbeat.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{EdgeIdentity, SiteScope, Store, StoreError, TenantId};

/// One edge of the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EdgeStatus {
    pub id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Any authenticated request.
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// The latest heartbeat's health document, as the edge sent it.
    #[schema(value_type = Option<Object>)]
    pub health: Option<serde_json::Value>,
    /// The configuration version the edge reports running (`None` before its first report).
    pub config_version: Option<i64>,
    pub config_reported_at: Option<DateTime<Utc>>,
    /// `{version, problems}` when the edge refused the latest version it was offered.
    #[schema(value_type = Option<Object>)]
    pub config_problems: Option<serde_json::Value>,
}

impl Store {
    /// Keeps the edge's latest heartbeat.
    pub async fn record_heartbeat(&self, edge: &EdgeIdentity, health: &serde_json::Value) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        sqlx::query(
            "UPDATE edges SET last_heartbeat_at = now(), last_seen_at = now(), health = $3 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.edge_id)
        .bind(health)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's edges (within `sites`), by site and name.
    pub async fn list_edges(&self, tenant: TenantId, sites: SiteScope<'_>) -> Result<Vec<EdgeStatus>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, site_id, name, revoked_at, last_seen_at, last_heartbeat_at, health, config_version, \
             config_reported_at, config_problems FROM edges \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) ORDER BY site_id, name",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}
