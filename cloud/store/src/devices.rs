//! Devices (doors, readers, locks, ...) and the commands queued for them.
//!
//! A command is stored as `queued` in `device_commands`, the outbox the site's edge drains; the
//! cloud never talks to a device directly (the edge must keep working through a WAN cut).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, on_unique};
use crate::{EdgeIdentity, SiteScope, Store, StoreError, TenantId};

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
        new: &NewCommand<'_>,
    ) -> Result<Option<DeviceCommand>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO device_commands (id, tenant_id, site_id, device_id, command, params, requested_by, expires_at) \
             SELECT $4, tenant_id, site_id, id, $5, $6, $7, now() + $8::int * interval '1 second' \
             FROM devices WHERE {SCOPED} AND id = $3 \
             RETURNING id, device_id, site_id, command, params, requested_by, status, created_at"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(device)
        .bind(Uuid::now_v7())
        .bind(new.command)
        .bind(new.params)
        .bind(new.requested_by)
        .bind(new.ttl_secs)
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

    /// Hands the edge the commands for its site: queued ones, and delivered ones not acknowledged
    /// within 30 s (at-least-once; the edge runs each id once). Expired commands are marked so and
    /// never delivered. Oldest first, at most `limit`.
    pub async fn take_edge_commands(&self, edge: &EdgeIdentity, limit: i64) -> Result<Vec<EdgeCommand>, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        sqlx::query(
            "UPDATE device_commands SET status = 'expired' \
             WHERE tenant_id = $1 AND site_id = $2 AND status IN ('queued', 'delivered') AND expires_at <= now()",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query_as(
            "WITH picked AS ( \
                 SELECT id FROM device_commands WHERE tenant_id = $1 AND site_id = $2 \
                 AND (status = 'queued' OR (status = 'delivered' AND delivered_at < now() - interval '30 seconds')) \
                 ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE device_commands c SET status = 'delivered', delivered_at = now() \
             FROM picked, devices d WHERE c.id = picked.id AND d.id = c.device_id AND d.tenant_id = c.tenant_id \
             RETURNING c.id, d.name AS device, d.kind, c.command, c.params, c.created_at, c.expires_at",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        // Camera analysis start/stop: kind `camera`, command `stream_start` / `stream_stop`.
        let streams: Vec<EdgeCommand> = sqlx::query_as(
            "WITH picked AS ( \
                 SELECT id FROM stream_commands WHERE tenant_id = $1 AND site_id = $2 \
                 AND (status = 'queued' OR (status = 'delivered' AND delivered_at < now() - interval '30 seconds')) \
                 ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE stream_commands s SET status = 'delivered', delivered_at = now() \
             FROM picked, cameras c WHERE s.id = picked.id AND c.id = s.camera_id AND c.tenant_id = s.tenant_id \
             RETURNING s.id, c.name AS device, 'camera' AS kind, 'stream_' || s.action AS command, \
             '{}'::jsonb AS params, s.created_at, s.created_at + interval '1 day' AS expires_at",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut rows: Vec<EdgeCommand> = rows;
        rows.extend(streams);
        rows.sort_by_key(|c| (c.created_at, c.id));
        Ok(rows)
    }

    /// Records what the edge did with one of its site's commands; `false` when it has no such
    /// pending command (another site's, unknown, or already settled).
    pub async fn ack_edge_command(
        &self,
        edge: &EdgeIdentity,
        id: Uuid,
        outcome: &str,
        result: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let done = sqlx::query(
            "UPDATE device_commands SET status = $4, acked_at = now(), result = $5 \
             WHERE tenant_id = $1 AND site_id = $2 AND id = $3 AND status IN ('queued', 'delivered')",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .bind(outcome)
        .bind(result)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let done = if done == 1 {
            1
        } else {
            sqlx::query(
                "UPDATE stream_commands SET status = $4, acked_at = now(), result = $5 \
                 WHERE tenant_id = $1 AND site_id = $2 AND id = $3 AND status IN ('queued', 'delivered')",
            )
            .bind(edge.tenant_id.as_uuid())
            .bind(edge.site_id)
            .bind(id)
            .bind(outcome)
            .bind(result)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        Ok(done == 1)
    }

    /// The device's latest commands with their outcome, newest first (the device status page).
    pub async fn recent_device_commands(
        &self,
        tenant: TenantId,
        device: Uuid,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
            "SELECT json_build_object('id', id, 'command', command, 'status', status, 'result', result, \
             'created_at', created_at, 'delivered_at', delivered_at, 'acked_at', acked_at, 'expires_at', expires_at) \
             FROM device_commands WHERE tenant_id = $1 AND device_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(device)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Status of one command (for tests and the device status page).
    pub async fn device_command_status(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as("SELECT status, result FROM device_commands WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// Input of [`Store::queue_device_command`].
#[derive(Debug, Clone, Copy)]
pub struct NewCommand<'a> {
    pub command: &'a str,
    pub params: &'a serde_json::Value,
    pub requested_by: Uuid,
    /// Seconds the command stays valid.
    pub ttl_secs: i32,
}

/// What an edge may report about a command.
pub const COMMAND_OUTCOMES: [&str; 3] = ["done", "failed", "expired"];

/// A command as its site's edge receives it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EdgeCommand {
    pub id: Uuid,
    /// The device's name, which is its id at the site (the edge's device registry, or a door id).
    pub device: String,
    pub kind: String,
    pub command: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Not to be executed after this.
    pub expires_at: DateTime<Utc>,
}
