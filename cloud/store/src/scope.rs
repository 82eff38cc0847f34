//! Transactions scoped for row-level security.
//!
//! Every query of this crate runs in one of two kinds of transaction (see
//! `migrations/0003_auth_resources_rls.sql`):
//! - [`Store::tenant_tx`]: `SET LOCAL ROLE vigil_app` plus the transaction-local setting
//!   `vigil.tenant_id`; PostgreSQL then shows and accepts only that tenant's rows, even for a query
//!   that forgets its `WHERE tenant_id = ..`.
//! - [`Store::system_tx`]: the service's own role with `vigil.system = 'on'`, for the few lookups
//!   that must find a row before the tenant is known (credentials, refresh tokens, login by email)
//!   and for provisioning.
//!
//! Both settings are `SET LOCAL`: they end with the transaction, so a pooled connection never
//! carries one request's tenant into the next.

use sqlx::{AssertSqlSafe, Postgres, Transaction};

use crate::{Store, StoreError, TenantId};

/// An open transaction restricted by row-level security to one tenant (or opened as system).
pub type Tx = Transaction<'static, Postgres>;

impl Store {
    /// Begins a transaction that sees only `tenant`'s rows (one round trip).
    pub async fn tenant_tx(&self, tenant: TenantId) -> Result<Tx, StoreError> {
        // A `Uuid` formats as 36 hex-and-dash characters: nothing to escape.
        let begin = format!(
            "BEGIN; SET LOCAL ROLE vigil_app; SELECT set_config('vigil.tenant_id', '{}', true)",
            tenant.as_uuid()
        );
        Ok(self.pool.begin_with(AssertSqlSafe(begin)).await?)
    }

    /// Like [`Store::tenant_tx`], with `synchronous_commit = on` for this transaction whatever the
    /// server's setting: its commit returns only once the WAL is flushed, so what it stores survives
    /// a database crash. For ingest, whose commit is what the edge deletes its copy on.
    pub(crate) async fn tenant_tx_durable(&self, tenant: TenantId) -> Result<Tx, StoreError> {
        let begin = format!(
            "BEGIN; SET LOCAL synchronous_commit = on; SET LOCAL ROLE vigil_app; \
             SELECT set_config('vigil.tenant_id', '{}', true)",
            tenant.as_uuid()
        );
        Ok(self.pool.begin_with(AssertSqlSafe(begin)).await?)
    }

    /// Begins a system transaction: every tenant's rows, for credential lookups and provisioning.
    pub(crate) async fn system_tx(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN; SELECT set_config('vigil.system', 'on', true)").await?)
    }
}
