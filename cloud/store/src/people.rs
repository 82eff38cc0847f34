//! People and their access credentials (badges, PINs).
//!
//! Invariant: a PIN is stored (edges compare PINs offline) but never returned: [`Credential`]
//! only says whether there is one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{is_foreign_key_violation, on_unique};
use crate::{Store, StoreError, TenantId};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Credential {
    pub id: Uuid,
    pub person_id: Uuid,
    pub badge: Option<String>,
    pub has_pin: bool,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

/// Input of [`Store::add_credential`].
#[derive(Debug, Clone)]
pub struct NewCredential<'a> {
    pub badge: Option<&'a str>,
    pub pin: Option<&'a str>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}

const PERSON_COLUMNS: &str = "id, name, groups, enabled, created_at, updated_at";
const CREDENTIAL_COLUMNS: &str =
    "id, person_id, badge, pin IS NOT NULL AS has_pin, valid_from, valid_until, revoked, created_at";

impl Store {
    /// The tenant's people, by name.
    pub async fn list_people(&self, tenant: TenantId) -> Result<Vec<Person>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PERSON_COLUMNS} FROM people WHERE tenant_id = $1 ORDER BY name, id"
        )))
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Adds a person.
    pub async fn create_person(
        &self,
        tenant: TenantId,
        name: &str,
        groups: &[String],
        enabled: bool,
    ) -> Result<Person, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO people (id, tenant_id, name, groups, enabled) VALUES ($1, $2, $3, $4, $5) RETURNING {PERSON_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(name)
        .bind(groups)
        .bind(enabled)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes a person (and their credentials); whether they existed.
    pub async fn delete_person(&self, tenant: TenantId, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM people WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// A person's credentials; `None` when the person is not the tenant's.
    pub async fn credentials(&self, tenant: TenantId, person: Uuid) -> Result<Option<Vec<Credential>>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM people WHERE tenant_id = $1 AND id = $2)")
            .bind(tenant.as_uuid())
            .bind(person)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Ok(None);
        }
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = $1 AND person_id = $2 ORDER BY created_at, id"
        )))
        .bind(tenant.as_uuid())
        .bind(person)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(rows))
    }

    /// Gives a person a credential; `None` when the person is not the tenant's,
    /// [`StoreError::Conflict`] `badge` when the badge is in use in the tenant.
    pub async fn add_credential(
        &self,
        tenant: TenantId,
        person: Uuid,
        new: &NewCredential<'_>,
    ) -> Result<Option<Credential>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO credentials (id, tenant_id, person_id, badge, pin, valid_from, valid_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CREDENTIAL_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(person)
        .bind(new.badge)
        .bind(new.pin)
        .bind(new.valid_from)
        .bind(new.valid_until)
        .fetch_one(&mut *tx)
        .await;
        let row = match row {
            Ok(row) => row,
            Err(e) if is_foreign_key_violation(&e) => return Ok(None),
            Err(e) => return Err(on_unique(e, &[("credentials_tenant_badge_key", "badge")])),
        };
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Revokes one of the tenant's credentials; `None` when there is none.
    pub async fn revoke_credential(&self, tenant: TenantId, id: Uuid) -> Result<Option<Credential>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE credentials SET revoked = true WHERE tenant_id = $1 AND id = $2 RETURNING {CREDENTIAL_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }
}
