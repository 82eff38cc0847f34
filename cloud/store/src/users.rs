//! User accounts, refresh-token sessions, password resets and the notification outbox.
//!
//! Invariants:
//! - Passwords arrive here already hashed (the API hashes them); this crate never sees one.
//! - Refresh and reset tokens are 256-bit random strings stored as SHA-256 only (see `secret`).
//! - A refresh token is usable once: [`Store::rotate_refresh`] marks it used and issues the next one
//!   of its family in the same transaction; presenting a used or revoked token revokes the family.
//! - Lookups by email or token run in system transactions (they find the tenant); everything else
//!   runs in the user's tenant transaction.

use chrono::{DateTime, Duration, Utc};
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::on_unique;
use crate::{Store, StoreError, TenantId, secret};

/// What a user may do; ordered from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read only.
    Viewer,
    /// Read, plus their own notifications and profile.
    User,
    /// Operates the site: commands doors and devices, streams.
    Security,
    /// Manages the tenant: users, sites, zones, cameras, devices, rules.
    Admin,
    /// The operator: every tenant.
    Superuser,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 5] = [Role::Viewer, Role::User, Role::Security, Role::Admin, Role::Superuser];

    /// The spelling in the database, tokens and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::User => "user",
            Role::Security => "security",
            Role::Admin => "admin",
            Role::Superuser => "superuser",
        }
    }

    /// The role spelled `text`, if any.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user account (without its password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    pub is_active: bool,
    pub role: Role,
    /// The sites the user is limited to; `None` means every site of the tenant.
    pub site_ids: Option<Vec<Uuid>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Input of [`Store::create_user`].
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Compared and stored lowercased.
    pub email: &'a str,
    pub username: &'a str,
    /// A PHC string (e.g. `$argon2id$...`).
    pub password_hash: &'a str,
    pub full_name: Option<&'a str>,
    pub role: Role,
    pub site_ids: Option<Vec<Uuid>>,
}

/// Changes of [`Store::update_user`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate<'a> {
    pub username: Option<&'a str>,
    pub full_name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
}

/// A freshly issued refresh token (the bearer string exists only here).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedRefresh {
    pub token: String,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh")
            .field("token", &"***")
            .field("family_id", &self.family_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Result of [`Store::rotate_refresh`].
#[derive(Debug, Clone, PartialEq)]
pub enum Refreshed {
    /// The token was valid: here is its successor and the (active) user.
    Rotated { user: User, next: IssuedRefresh },
    /// The token had already been used or revoked: its whole family is now revoked.
    Reused { family_id: Uuid },
    /// Unknown or expired token, or the user is inactive.
    Invalid,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, tenant_id, email, username, full_name, is_active, role, site_ids, created_at, updated_at";

const USER_CONSTRAINTS: &[(&str, &str)] = &[("users_email_key", "email"), ("users_tenant_id_username_key", "username")];

fn user_from_row(row: &PgRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        full_name: row.try_get("full_name")?,
        is_active: row.try_get("is_active")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role:?} in the users table").into()))?,
        site_ids: row.try_get("site_ids")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a user in `tenant`. Fails with [`StoreError::Conflict`] (`email` or `username`)
    /// when taken, and [`StoreError::Invalid`] (`site_ids`) when a site is not the tenant's.
    pub async fn create_user(&self, tenant: TenantId, new: &NewUser<'_>) -> Result<User, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        if let Some(sites) = &new.site_ids {
            let known: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE tenant_id = $1 AND id = ANY($2)")
                .bind(tenant.as_uuid())
                .bind(sites)
                .fetch_one(&mut *tx)
                .await?;
            let mut distinct = sites.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if usize::try_from(known).ok() != Some(distinct.len()) {
                return Err(StoreError::Invalid { field: "site_ids", reason: "unknown site".into() });
            }
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO users (id, tenant_id, email, username, hashed_password, full_name, role, site_ids) \
             VALUES ($1, $2, lower($3), $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.as_uuid())
        .bind(new.email.trim())
        .bind(new.username.trim())
        .bind(new.password_hash)
        .bind(new.full_name)
        .bind(new.role.as_str())
        .bind(&new.site_ids)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| on_unique(e, USER_CONSTRAINTS))?;
        let user = user_from_row(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    /// Creates a user in the tenant named `tenant_name` (created when missing), for the operator's
    /// command line (the first admin of a tenant).
    pub async fn create_user_in_tenant_named(&self, tenant_name: &str, new: &NewUser<'_>) -> Result<User, StoreError> {
        let name = tenant_name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid { field: "tenant name", reason: "must not be empty".into() });
        }
        let mut tx = self.system_tx().await?;
        let tenant: Uuid = sqlx::query_scalar(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.create_user(TenantId::from_uuid(tenant), new).await
    }

    /// The user with `email` (any tenant) and their password hash, for login.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let mut tx = self.system_tx().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, hashed_password FROM users WHERE email = lower($1)"
        )))
        .bind(email.trim())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match row {
            Some(row) => Some((user_from_row(&row)?, row.try_get("hashed_password")?)),
            None => None,
        })
    }

    /// One of the tenant's users.
    pub async fn user(&self, tenant: TenantId, id: Uuid) -> Result<Option<User>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2")))
                .bind(tenant.as_uuid())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// The user's password hash (for checking the current password before a change).
    pub async fn password_hash(&self, tenant: TenantId, id: Uuid) -> Result<Option<String>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let hash = sqlx::query_scalar("SELECT hashed_password FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(hash)
    }

    /// Applies `update` to one of the tenant's users; `None` when there is no such user.
    /// A password change also revokes every session of the user.
    pub async fn update_user(
        &self,
        tenant: TenantId,
        id: Uuid,
        update: &UserUpdate<'_>,
    ) -> Result<Option<User>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE users SET username = coalesce($3, username), full_name = coalesce($4, full_name), \
             hashed_password = coalesce($5, hashed_password), updated_at = now() \
             WHERE tenant_id = $1 AND id = $2 RETURNING {USER_COLUMNS}"
        )))
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(update.username.map(str::trim))
        .bind(update.full_name)
        .bind(update.password_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| on_unique(e, USER_CONSTRAINTS))?;
        if row.is_some() && update.password_hash.is_some() {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    /// Starts a session (a new refresh-token family) for one of the tenant's users.
    pub async fn create_session(
        &self,
        tenant: TenantId,
        user: Uuid,
        ttl: Duration,
    ) -> Result<IssuedRefresh, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let issued = insert_refresh(&mut tx, tenant, user, Uuid::now_v7(), ttl).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// Uses `token` up and issues its successor (same family, fresh `ttl`); see [`Refreshed`].
    pub async fn rotate_refresh(&self, token: &str, ttl: Duration) -> Result<Refreshed, StoreError> {
        let hash = secret::hash(token);
        let mut tx = self.system_tx().await?;
        let used: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = now() \
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
             RETURNING family_id, tenant_id, user_id",
        )
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family_id, tenant, user_id)) = used else {
            // Known but spent (used or revoked): a replay. Revoke the family. Expired: just invalid.
            let spent: Option<Uuid> = sqlx::query_scalar(
                "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 \
                 AND (used_at IS NOT NULL OR revoked_at IS NOT NULL)",
            )
            .bind(&hash[..])
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match spent {
                Some(family_id) => {
                    revoke_family(&mut tx, family_id).await?;
                    tracing::warn!(%family_id, "Refresh token reused; session family revoked.");
                    Refreshed::Reused { family_id }
                }
                None => Refreshed::Invalid,
            };
            tx.commit().await?;
            return Ok(outcome);
        };
        let tenant = TenantId::from_uuid(tenant);
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND is_active")))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            revoke_family(&mut tx, family_id).await?;
            tx.commit().await?;
            return Ok(Refreshed::Invalid);
        };
        let user = user_from_row(&row)?;
        let next = insert_refresh(&mut tx, tenant, user_id, family_id, ttl).await?;
        tx.commit().await?;
        Ok(Refreshed::Rotated { user, next })
    }

    /// Revokes the session family of `token` (logout). Returns whether the token was known.
    pub async fn revoke_session(&self, token: &str) -> Result<bool, StoreError> {
        let hash = secret::hash(token);
        let mut tx = self.system_tx().await?;
        let family: Option<Uuid> = sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(&hash[..])
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(family_id) = family {
            revoke_family(&mut tx, family_id).await?;
        }
        tx.commit().await?;
        Ok(family.is_some())
    }

    /// When a user with `email` exists and is active: records a reset token valid for `ttl` and
    /// queues a `password_reset` message carrying it in the outbox. Answers nothing either way, so
    /// that callers cannot learn whether an email is registered.
    pub async fn request_password_reset(&self, email: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut tx = self.system_tx().await?;
        let user: Option<(Uuid, Uuid, String)> =
            sqlx::query_as("SELECT id, tenant_id, email FROM users WHERE email = lower($1) AND is_active")
                .bind(email.trim())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((user_id, tenant_id, email)) = user {
            let (token, hash) = secret::generate();
            let expires_at = Utc::now() + ttl;
            sqlx::query(
                "INSERT INTO password_resets (id, tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(user_id)
            .bind(&hash[..])
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO outbox (id, tenant_id, kind, recipient, payload) VALUES ($1, $2, 'password_reset', $3, $4)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(&email)
            .bind(serde_json::json!({ "user_id": user_id, "token": token, "expires_at": expires_at }))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets a new password with a reset token (usable once, before it expires) and revokes every
    /// session of the user. Returns whether the token was valid.
    pub async fn complete_password_reset(&self, token: &str, password_hash: &str) -> Result<bool, StoreError> {
        let hash = secret::hash(token);
        let mut tx = self.system_tx().await?;
        let user: Option<Uuid> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = now() \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        )
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(user_id) = user {
            sqlx::query("UPDATE users SET hashed_password = $2, updated_at = now() WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(user.is_some())
    }

    /// The tenant's undelivered outbox messages, oldest first.
    pub async fn pending_outbox(&self, tenant: TenantId) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(Uuid, String, String, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, kind, recipient, payload, created_at FROM outbox \
             WHERE tenant_id = $1 AND sent_at IS NULL ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, recipient, payload, created_at)| OutboxMessage {
                id,
                kind,
                recipient,
                payload,
                created_at,
            })
            .collect())
    }
}

async fn insert_refresh(
    tx: &mut crate::Tx,
    tenant: TenantId,
    user: Uuid,
    family_id: Uuid,
    ttl: Duration,
) -> Result<IssuedRefresh, StoreError> {
    let (token, hash) = secret::generate();
    let expires_at = Utc::now() + ttl;
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, tenant_id, user_id, token_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(family_id)
    .bind(tenant.as_uuid())
    .bind(user)
    .bind(&hash[..])
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(IssuedRefresh { token, family_id, expires_at })
}

async fn revoke_family(tx: &mut crate::Tx, family_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
