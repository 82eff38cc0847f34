//! Sites, zones, cameras and sensors.
//!
//! Every function takes the tenant first and runs in its tenant transaction; `sites` (a
//! [`SiteScope`]) further limits reads to the sites a user may see. An id of another tenant (or
//! outside the scope) behaves exactly like an id that does not exist.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, on_unique};
use crate::{Store, StoreError, TenantId};

/// The sites a caller may see: `None` for all of the tenant's.
pub type SiteScope<'a> = Option<&'a [Uuid]>;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Site {
    pub id: Uuid,
    pub name: String,
    pub address: Option<String>,
    pub timezone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Zone {
    pub id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Camera {
    pub id: Uuid,
    pub site_id: Uuid,
    pub zone_id: Option<Uuid>,
    pub name: String,
    pub stream_url: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Sensor {
    pub id: Uuid,
    pub site_id: Uuid,
    pub zone_id: Option<Uuid>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// Input of [`Store::create_camera`].
#[derive(Debug, Clone)]
pub struct NewCamera<'a> {
    pub site_id: Uuid,
    pub zone_id: Option<Uuid>,
    pub name: &'a str,
    pub stream_url: &'a str,
}

/// Changes of [`Store::update_camera`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CameraUpdate<'a> {
    pub name: Option<&'a str>,
    pub stream_url: Option<&'a str>,
    /// `Some(None)` clears the zone.
    pub zone_id: Option<Option<Uuid>>,
    pub status: Option<&'a str>,
}

const CAMERA_COLUMNS: &str = "id, site_id, zone_id, name, stream_url, status, created_at, updated_at";
const CAMERA_CONSTRAINTS: &[(&str, &str)] = &[("cameras_site_name_key", "name")];
const ZONE_CONSTRAINTS: &[(&str, &str)] = &[("zones_site_id_name_key", "name")];

impl Store {
    /// The tenant's sites (within `sites`), by name.
    pub async fn list_sites(&self, tenant: TenantId, sites: SiteScope<'_>) -> Result<Vec<Site>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, name, address, timezone, created_at FROM sites \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2)) ORDER BY name, id",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The tenant's zones (within `sites`, optionally of one site), by site and name.
    pub async fn list_zones(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        site: Option<Uuid>,
    ) -> Result<Vec<Zone>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, site_id, name, type AS kind, created_at FROM zones \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) AND ($3::uuid IS NULL OR site_id = $3) \
             ORDER BY site_id, name",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(site)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Creates a zone in one of the tenant's sites ([`StoreError::Invalid`] `site_id` otherwise).
    pub async fn create_zone(&self, tenant: TenantId, site: Uuid, name: &str, kind: &str) -> Result<Zone, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let zone = sqlx::query_as(
            "INSERT INTO zones (id, tenant_id, site_id, name, type) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, site_id, name, type AS kind, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(site)
        .bind(name)
        .bind(kind)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| reference_error(e, "site_id", ZONE_CONSTRAINTS))?;
        tx.commit().await?;
        Ok(zone)
    }

    /// The tenant's sensors (within `sites`).
    pub async fn list_sensors(&self, tenant: TenantId, sites: SiteScope<'_>) -> Result<Vec<Sensor>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT id, site_id, zone_id, name, type AS kind, unit, status, created_at FROM sensors \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) ORDER BY site_id, name",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The tenant's cameras (within `sites`), by site and name.
    pub async fn list_cameras(&self, tenant: TenantId, sites: SiteScope<'_>) -> Result<Vec<Camera>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CAMERA_COLUMNS} FROM cameras WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) \
             ORDER BY site_id, name"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// One of the tenant's cameras (within `sites`).
    pub async fn camera(&self, tenant: TenantId, sites: SiteScope<'_>, id: Uuid) -> Result<Option<Camera>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CAMERA_COLUMNS} FROM cameras WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) \
             AND id = $3"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Registers a camera at one of the tenant's sites. [`StoreError::Invalid`] names `site_id` or
    /// `zone_id` when they are not the tenant's; [`StoreError::Conflict`] `name` when the site
    /// has a camera of that name.
    pub async fn create_camera(&self, tenant: TenantId, new: &NewCamera<'_>) -> Result<Camera, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        check_zone(&mut tx, tenant, new.zone_id, Some(new.site_id)).await?;
        let camera = sqlx::query_as(AssertSqlSafe(format!(
            "INSERT INTO cameras (id, tenant_id, site_id, zone_id, name, stream_url) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING {CAMERA_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(new.site_id)
        .bind(new.zone_id)
        .bind(new.name)
        .bind(new.stream_url)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| reference_error(e, "site_id", CAMERA_CONSTRAINTS))?;
        tx.commit().await?;
        Ok(camera)
    }

    /// Updates one of the tenant's cameras (within `sites`); `None` when there is none.
    pub async fn update_camera(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        id: Uuid,
        update: &CameraUpdate<'_>,
    ) -> Result<Option<Camera>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let site: Option<Uuid> = sqlx::query_scalar(
            "SELECT site_id FROM cameras WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) \
             AND id = $3 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(site) = site else { return Ok(None) };
        if let Some(zone) = update.zone_id {
            check_zone(&mut tx, tenant, zone, Some(site)).await?;
        }
        let camera = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE cameras SET name = coalesce($3, name), stream_url = coalesce($4, stream_url), \
             zone_id = CASE WHEN $5 THEN $6 ELSE zone_id END, status = coalesce($7, status), updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 RETURNING {CAMERA_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(update.name)
        .bind(update.stream_url)
        .bind(update.zone_id.is_some())
        .bind(update.zone_id.flatten())
        .bind(update.status)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| on_unique(e, CAMERA_CONSTRAINTS))?;
        tx.commit().await?;
        Ok(camera)
    }

    /// Deletes one of the tenant's cameras (within `sites`); whether it existed.
    pub async fn delete_camera(&self, tenant: TenantId, sites: SiteScope<'_>, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "DELETE FROM cameras WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) AND id = $3",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

/// `zone` (when given) must be one of the tenant's zones, at `site` when given.
async fn check_zone(
    tx: &mut crate::Tx,
    tenant: TenantId,
    zone: Option<Uuid>,
    site: Option<Uuid>,
) -> Result<(), StoreError> {
    let Some(zone) = zone else { return Ok(()) };
    let zone_site: Option<Uuid> = sqlx::query_scalar("SELECT site_id FROM zones WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(zone)
        .fetch_optional(&mut **tx)
        .await?;
    match zone_site {
        None => Err(StoreError::Invalid { field: "zone_id", reason: "unknown zone".into() }),
        Some(s) if site.is_some_and(|site| site != s) => {
            Err(StoreError::Invalid { field: "zone_id", reason: "the zone belongs to another site".into() })
        }
        Some(_) => Ok(()),
    }
}

/// A foreign-key violation means the referenced `field` is not one of the tenant's.
fn reference_error(error: sqlx::Error, field: &'static str, constraints: &[(&str, &'static str)]) -> StoreError {
    if is_foreign_key_violation(&error) {
        return StoreError::Invalid { field, reason: "unknown or not accessible".into() };
    }
    on_unique(error, constraints)
}

/// A queued stream start or stop.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StreamCommand {
    pub id: Uuid,
    pub camera_id: Uuid,
    pub site_id: Uuid,
    /// `start` or `stop`.
    pub action: String,
    pub requested_by: Option<Uuid>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// A camera's stream state as the cloud knows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StreamStatus {
    pub camera_id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    /// The camera's last reported status.
    pub status: String,
    /// The latest start/stop request, if any.
    pub last_action: Option<String>,
    pub last_action_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Queues a stream `action` (`start` or `stop`) for one of the tenant's cameras (within
    /// `sites`); `None` when there is no such camera.
    pub async fn queue_stream_command(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        camera: Uuid,
        action: &str,
        requested_by: Uuid,
    ) -> Result<Option<StreamCommand>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(
            "INSERT INTO stream_commands (id, tenant_id, site_id, camera_id, action, requested_by) \
             SELECT $4, tenant_id, site_id, id, $5, $6 FROM cameras \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) AND id = $3 \
             RETURNING id, camera_id, site_id, action, requested_by, status, created_at",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(camera)
        .bind(Uuid::now_v7())
        .bind(action)
        .bind(requested_by)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Stream state of the tenant's cameras (within `sites`).
    pub async fn stream_statuses(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
    ) -> Result<Vec<StreamStatus>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT c.id AS camera_id, c.site_id, c.name, c.status, s.action AS last_action, s.created_at AS last_action_at \
             FROM cameras c LEFT JOIN LATERAL ( \
                 SELECT action, created_at FROM stream_commands WHERE camera_id = c.id ORDER BY created_at DESC, id DESC LIMIT 1 \
             ) s ON true \
             WHERE c.tenant_id = $1 AND ($2::uuid[] IS NULL OR c.site_id = ANY($2)) ORDER BY c.site_id, c.name",
        )
        .bind(tenant.as_uuid())
        .bind(sites)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}
