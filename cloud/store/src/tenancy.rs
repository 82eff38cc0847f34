//! Tenants, sites, edges and API keys: provisioning and credential lookups.
//!
//! Invariants:
//! - An edge belongs to exactly one site of one tenant (enforced by a composite foreign key), and
//!   its [`EdgeIdentity`] is what ingest scopes every event by.
//! - A revoked edge token or API key authenticates nothing.
//! - Credential lookups are the only queries not scoped by a tenant: they are how a request gets
//!   one.

use uuid::Uuid;

use crate::{Store, StoreError, secret};

/// A tenant's id. Every tenant-data query in this crate takes one as its first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Uuid);

impl TenantId {
    /// Wraps a tenant uuid (from a credential lookup, provisioning, or a test).
    pub const fn from_uuid(id: Uuid) -> TenantId {
        TenantId(id)
    }

    /// The raw uuid.
    pub const fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Who an authenticated edge is: the scope of everything it uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeIdentity {
    pub edge_id: Uuid,
    pub tenant_id: TenantId,
    pub site_id: Uuid,
}

/// The result of [`Store::provision_edge`]. `edge_token` and `api_key` exist only here (the
/// database keeps their hashes); `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub tenant_id: TenantId,
    pub site_id: Uuid,
    pub edge_id: Uuid,
    /// Bearer token the edge presents to the ingest endpoint.
    pub edge_token: String,
    /// Tenant-scoped read credential for the query API.
    pub api_key: String,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioned")
            .field("tenant_id", &self.tenant_id)
            .field("site_id", &self.site_id)
            .field("edge_id", &self.edge_id)
            .field("edge_token", &"***")
            .field("api_key", &"***")
            .finish()
    }
}

/// Longest tenant, site or edge name accepted.
const MAX_NAME_CHARS: usize = 200;

/// Finds an active edge by token hash and touches its `last_seen_at`, at most every 10 seconds so
/// that authenticating each ingest request does not become a row update per request.
const EDGE_BY_TOKEN: &str = "\
WITH found AS (
    SELECT id, tenant_id, site_id, last_seen_at FROM edges
    WHERE token_hash = $1 AND revoked_at IS NULL
), touched AS (
    UPDATE edges SET last_seen_at = now()
    FROM found
    WHERE edges.id = found.id
      AND (found.last_seen_at IS NULL OR found.last_seen_at < now() - interval '10 seconds')
)
SELECT id, tenant_id, site_id FROM found";

impl Store {
    /// Creates (or reuses, by name) the tenant and the site, then creates the edge with a fresh
    /// token (or, if the site already has an edge of that name, rotates its token and clears any
    /// revocation), and issues a fresh tenant API key. All in one transaction.
    ///
    /// `timezone` (an IANA name known to the server, e.g. `Europe/Paris`) is set on the site when
    /// given; a new site without one gets `UTC`, an existing site keeps its own.
    pub async fn provision_edge(
        &self,
        tenant_name: &str,
        site_name: &str,
        edge_name: &str,
        timezone: Option<&str>,
    ) -> Result<Provisioned, StoreError> {
        let tenant_name = check_name("tenant name", tenant_name)?;
        let site_name = check_name("site name", site_name)?;
        let edge_name = check_name("edge name", edge_name)?;

        let mut tx = self.system_tx().await?;
        if let Some(tz) = timezone {
            let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
                .bind(tz)
                .fetch_one(&mut *tx)
                .await?;
            if !known {
                return Err(StoreError::Invalid { field: "timezone", reason: format!("unknown time zone {tz:?}") });
            }
        }

        let tenant_id: Uuid = sqlx::query_scalar(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_name)
        .fetch_one(&mut *tx)
        .await?;

        let site_id: Uuid = sqlx::query_scalar(
            "INSERT INTO sites (id, tenant_id, name, timezone) VALUES ($1, $2, $3, coalesce($4, 'UTC')) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET timezone = coalesce($4, sites.timezone) \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(site_name)
        .bind(timezone)
        .fetch_one(&mut *tx)
        .await?;

        let (edge_token, edge_hash) = secret::generate();
        let edge_id: Uuid = sqlx::query_scalar(
            "INSERT INTO edges (id, tenant_id, site_id, name, token_hash) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (site_id, name) DO UPDATE SET token_hash = EXCLUDED.token_hash, revoked_at = NULL \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(site_id)
        .bind(edge_name)
        .bind(&edge_hash[..])
        .fetch_one(&mut *tx)
        .await?;

        let (api_key, key_hash) = secret::generate();
        sqlx::query("INSERT INTO api_keys (id, tenant_id, name, key_hash) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(format!("provisioned with edge {edge_name} of site {site_name}"))
            .bind(&key_hash[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;

        tracing::info!(%tenant_id, %site_id, %edge_id, "Edge provisioned.");
        Ok(Provisioned { tenant_id: TenantId(tenant_id), site_id, edge_id, edge_token, api_key })
    }

    /// The edge presenting `token`; `None` when the token is unknown or revoked.
    ///
    /// Also records when the edge was last seen (at most every few seconds).
    pub async fn edge_by_token(&self, token: &str) -> Result<Option<EdgeIdentity>, StoreError> {
        let hash = secret::hash(token);
        let mut tx = self.system_tx().await?;
        let row: Option<(Uuid, Uuid, Uuid)> =
            sqlx::query_as(EDGE_BY_TOKEN).bind(&hash[..]).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.map(|(edge_id, tenant_id, site_id)| EdgeIdentity { edge_id, tenant_id: TenantId(tenant_id), site_id }))
    }

    /// The tenant an API key belongs to; `None` when the key is unknown or revoked.
    pub async fn api_key_tenant(&self, key: &str) -> Result<Option<TenantId>, StoreError> {
        let hash = secret::hash(key);
        let mut tx = self.system_tx().await?;
        let tenant: Option<Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(&hash[..])
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(tenant.map(TenantId))
    }

    /// Revokes one of the tenant's edges; its token stops authenticating at once. Returns whether
    /// an active edge was revoked.
    pub async fn revoke_edge(&self, tenant: TenantId, edge_id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done =
            sqlx::query("UPDATE edges SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(tenant.as_uuid())
                .bind(edge_id)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Trims `value` and checks it is a usable name.
pub(crate) fn check_name<'a>(field: &'static str, value: &'a str) -> Result<&'a str, StoreError> {
    let value = value.trim();
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.chars().count() > MAX_NAME_CHARS {
        format!("must be at most {MAX_NAME_CHARS} characters")
    } else if value.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(value);
    };
    Err(StoreError::Invalid { field, reason })
}
