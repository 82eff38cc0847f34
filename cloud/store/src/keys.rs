//! JWT signing keys, shared by every replica through the database.
//!
//! The API generates keys (this crate stores PEM text and never interprets it). The newest
//! unretired key signs; every unretired key verifies, so a rotation adds a key first and retires
//! the old one only after the longest access-token lifetime has passed.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// A stored signing key.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRow {
    /// Key id (the JWT header's `kid`).
    pub kid: String,
    /// PKCS#8 PEM of the RSA private key.
    pub private_pem: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow").field("kid", &self.kid).field("created_at", &self.created_at).finish()
    }
}

impl Store {
    /// Unretired signing keys, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kid, private_pem, created_at FROM signing_keys WHERE retired_at IS NULL \
             ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores `kid`/`private_pem` unless an unretired key exists already (replicas starting together
    /// agree on one key). Returns whether it was stored.
    pub async fn add_first_signing_key(&self, kid: &str, private_pem: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('vigil.signing_keys'))").execute(&mut *tx).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)")
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            sqlx::query("INSERT INTO signing_keys (kid, private_pem) VALUES ($1, $2)")
                .bind(kid)
                .bind(private_pem)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(!exists)
    }

    /// Adds a key that becomes the signer (rotation); older keys keep verifying until retired.
    pub async fn add_signing_key(&self, kid: &str, private_pem: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, private_pem) VALUES ($1, $2)")
            .bind(kid)
            .bind(private_pem)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
