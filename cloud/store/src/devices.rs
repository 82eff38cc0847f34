//! Devices (doors, readers, locks, ...) and the commands queued for them.
//!
//! A command is stored as `queued` in `device_commands`, the outbox the site's edge drains; the
//! cloud never talks to a device directly (the edge must keep working through a WAN cut).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, on_unique};
use crate::{SiteScope, Store, StoreError, TenantId};

/// Device kinds.
pub const DEVICE_KINDS: [&str; 5] = ["door", "reader", "lock", "sensor", "other"];

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Device {
    pub id: Uuid,
    pub site_id: Uuid,
    pub zone_id: Option<Uuid>,
    pub name: String,
    pub kind: String,
    pub status: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A queued command.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeviceCommand {
    pub id: Uuid,
    pub device_id: Uuid,
    pub site_id: Uuid,
    pub command: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub requested_by: Option<Uuid>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// Input of [`Store::create_device`].
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    pub site_id: Uuid,
    pub zone_id: Option<Uuid>,
    pub name: &'a str,
    /// One of [`DEVICE_KINDS`].
    pub kind: &'a str,
}

const DEVICE_COLUMNS: &str = "id, site_id, zone_id, name, kind, status, config, last_seen_at, created_at, updated_at";
const SCOPED: &str = "tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2))";

impl Store {
    /// The tenant's devices (within `sites`), by site and name.
    pub async fn list_devices(&self, tenant: TenantId, sites: SiteScope<'_>) -> Result<Vec<Device>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE {SCOPED} ORDER BY site_id, name"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// One of the tenant's devices (within `sites`).
    pub async fn device(&self, tenant: TenantId, sites: SiteScope<'_>, id: Uuid) -> Result<Option<Device>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row =
            sqlx::query_as(AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE {SCOPED} AND id = $3")))
                .bind(tenant.as_uuid())
                .bind(sites)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Registers a device at one of the tenant's sites.
    pub async fn create_device(&self, tenant: TenantId, new: &NewDevice<'_>) -> Result<Device, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let device = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO devices (id, tenant_id, site_id, zone_id, name, kind) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING {DEVICE_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(new.site_id)
        .bind(new.zone_id)
        .bind(new.name)
        .bind(new.kind)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                let field = if e.as_database_error().and_then(|d| d.constraint()).is_some_and(|c| c.contains("zone")) {
                    "zone_id"
                } else {
                    "site_id"
                };
                StoreError::Invalid { field, reason: "unknown or not accessible".into() }
            } else {
                on_unique(e, &[("devices_site_name_key", "name")])
            }
        })?;
        tx.commit().await?;
        Ok(device)
    }

    /// Replaces a device's configuration; `None` when there is no such device (within `sites`).
    pub async fn set_device_config(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        id: Uuid,
        config: &serde_json::Value,
    ) -> Result<Option<Device>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE devices SET config = $4, updated_at = now() WHERE {SCOPED} AND id = $3 RETURNING {DEVICE_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(id)
        .bind(config)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Queues `command` for one of the tenant's devices (within `sites`); `None` when there is none.
    pub async fn queue_device_command(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        device: Uuid,
        command: &str,
        params: &serde_json::Value,
        requested_by: Uuid,
    ) -> Result<Option<DeviceCommand>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO device_commands (id, tenant_id, site_id, device_id, command, params, requested_by) \
             SELECT $4, tenant_id, site_id, id, $5, $6, $7 FROM devices WHERE {SCOPED} AND id = $3 \
             RETURNING id, device_id, site_id, command, params, requested_by, status, created_at"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(device)
        .bind(Uuid::now_v7())
        .bind(command)
        .bind(params)
        .bind(requested_by)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The commands queued for one of the tenant's devices, oldest first.
    pub async fn queued_device_commands(
        &self,
        tenant: TenantId,
        device: Uuid,
    ) -> Result<Vec<DeviceCommand>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, device_id, site_id, command, params, requested_by, status, created_at FROM device_commands \
             WHERE tenant_id = $1 AND device_id = $2 AND status = 'queued' ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .bind(device)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}
