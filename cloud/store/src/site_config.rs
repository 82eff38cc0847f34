//! The down link's source of truth: each site's configuration version and the parts an edge's
//! document is composed from.
//!
//! Invariant: `sites.config_version` is bumped by triggers (migration `0005`) in the same
//! transaction as any change to a part, and [`Store::site_config_parts`] reads the version and every
//! part in one statement (one snapshot), so a version always names exactly one content.

use uuid::Uuid;

use crate::{EdgeIdentity, SiteScope, Store, StoreError, TenantId};

/// Everything a site's configuration document is made of, at one version.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SiteConfigParts {
    pub version: i64,
    pub timezone: String,
    /// The site's own access configuration (doors, areas, groups, schedules, holidays, policy);
    /// `None` until an administrator sets one.
    pub access: Option<serde_json::Value>,
    /// Each camera's analytics (`[{id, motion, filters, lines, zones}]`); `None` until set.
    pub cameras: Option<serde_json::Value>,
    /// The device registry (`{site, devices}`); `None` until set.
    pub devices: Option<serde_json::Value>,
    /// The tenant's people: `[{id, name, groups, enabled}]`.
    pub people: serde_json::Value,
    /// The tenant's credentials, PINs included (for the edge only): `[{id, person, badge, pin,
    /// valid_from, valid_until, revoked}]`.
    pub credentials: serde_json::Value,
    /// The tenant's rules: `[{id, name, description, enabled, trigger, conditions, actions}]`.
    pub rules: serde_json::Value,
}

/// A part of the site's own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitePart {
    Access,
    Cameras,
    Devices,
}

const PARTS_SQL: &str = "\
SELECT s.config_version AS version, s.timezone, c.access, c.cameras, c.devices, \
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name, 'groups', p.groups, \
                'enabled', p.enabled) ORDER BY p.id), '[]'::jsonb) \
          FROM people p WHERE p.tenant_id = $1) AS people, \
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', k.id, 'person', k.person_id, 'badge', k.badge, \
                'pin', k.pin, 'valid_from', k.valid_from, 'valid_until', k.valid_until, 'revoked', k.revoked) \
                ORDER BY k.id), '[]'::jsonb) \
          FROM credentials k WHERE k.tenant_id = $1) AS credentials, \
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name, \
                'description', COALESCE(r.description, ''), 'enabled', r.enabled, 'trigger', r.trigger, \
                'conditions', r.conditions, 'actions', r.actions) ORDER BY r.created_at, r.id), '[]'::jsonb) \
          FROM rules r WHERE r.tenant_id = $1) AS rules \
FROM sites s LEFT JOIN site_configs c ON c.site_id = s.id \
WHERE s.tenant_id = $1 AND s.id = $2 AND ($3::uuid[] IS NULL OR s.id = ANY($3))";

impl Store {
    /// The site's configuration parts at its current version; `None` for a site that does not
    /// exist for this tenant (or is outside `sites`).
    pub async fn site_config_parts(
        &self,
        tenant: TenantId,
        site: Uuid,
        sites: SiteScope<'_>,
    ) -> Result<Option<SiteConfigParts>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row =
            sqlx::query_as(PARTS_SQL).bind(tenant.as_uuid()).bind(site).bind(sites).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The site's current configuration version (cheap: what an edge's long-poll checks).
    pub async fn site_config_version(&self, edge: &EdgeIdentity) -> Result<Option<i64>, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let v = sqlx::query_scalar("SELECT config_version FROM sites WHERE tenant_id = $1 AND id = $2")
            .bind(edge.tenant_id.as_uuid())
            .bind(edge.site_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Sets one part of the site's own configuration (`part`: `access` or `cameras`); returns the
    /// new configuration version, or `None` for a site that does not exist for this tenant.
    pub async fn set_site_config_part(
        &self,
        tenant: TenantId,
        site: Uuid,
        part: SitePart,
        value: &serde_json::Value,
        by: Option<Uuid>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM sites WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
                .bind(tenant.as_uuid())
                .bind(site)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let column = match part {
            SitePart::Access => "access",
            SitePart::Cameras => "cameras",
            SitePart::Devices => "devices",
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO site_configs (site_id, tenant_id, {column}, updated_by) VALUES ($2, $1, $3, $4) \
             ON CONFLICT (site_id) DO UPDATE SET {column} = EXCLUDED.{column}, updated_by = EXCLUDED.updated_by, \
             updated_at = now()"
        )))
        .bind(tenant.as_uuid())
        .bind(site)
        .bind(value)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        let version = sqlx::query_scalar("SELECT config_version FROM sites WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(site)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    /// Records what the edge did with a configuration version: runs it (`problems` = `None`) or
    /// refused it (and still runs the version it ran before).
    pub async fn record_config_report(
        &self,
        edge: &EdgeIdentity,
        version: i64,
        problems: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let applied = problems.is_none();
        sqlx::query(
            "UPDATE edges SET \
                 config_version = CASE WHEN $4 THEN $3 ELSE config_version END, \
                 config_problems = $5, config_reported_at = now(), last_seen_at = now() \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.edge_id)
        .bind(version)
        .bind(applied)
        .bind(problems.map(|p| serde_json::json!({ "version": version, "problems": p })))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
