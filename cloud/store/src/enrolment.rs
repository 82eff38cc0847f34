//! Enrolment: one-time claim codes, exchanged by an edge for its own token.
//!
//! Invariants:
//! - A claim code exists in clear only in the [`ClaimCode`] returned at creation; the database
//!   keeps the SHA-256 of its canonical form (the 12 characters, upper case, without dashes).
//! - A code creates at most one edge: claiming it and creating the edge are one SQL statement,
//!   so concurrent attempts with one code get one edge between them (the row lock of the
//!   `UPDATE` serialises them; the loser finds the code used).
//! - An unknown, expired and used code are the same `None` to the caller: nothing tells a guesser
//!   which of them it hit.

use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::Serialize;
use uuid::Uuid;

use crate::error::on_unique;
use crate::{SiteScope, Store, StoreError, TenantId, secret};

/// Characters of a claim code: upper-case letters and digits without the look-alikes
/// (`0`/`O`, `1`/`I`/`L`), so a code read aloud or from a sticker is typed right.
pub const CLAIM_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Characters in a claim code (about 59 bits with [`CLAIM_ALPHABET`]).
pub const CLAIM_CODE_LEN: usize = 12;
/// Longest lifetime an admin may give a code.
pub const MAX_CLAIM_TTL_HOURS: u32 = 7 * 24;

/// A fresh claim code. `code` exists only here; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClaimCode {
    pub id: Uuid,
    pub site_id: Uuid,
    /// `ABCD-EFGH-JKMN`: shown once, to be typed into the edge (dashes and case do not matter).
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimCode")
            .field("id", &self.id)
            .field("site_id", &self.site_id)
            .field("code", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What an edge presents when it enrols (besides the code).
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolRequest<'a> {
    /// The edge's name at the site (unique there); `None` picks `edge-<id prefix>`.
    pub name: Option<&'a str>,
    /// Free-form facts the edge reports about itself (hardware, software version).
    pub info: serde_json::Value,
}

/// A new edge created by a claim code. `edge_token` exists only here; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub edge_id: Uuid,
    pub tenant_id: TenantId,
    pub site_id: Uuid,
    pub name: String,
    pub edge_token: String,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("edge_id", &self.edge_id)
            .field("tenant_id", &self.tenant_id)
            .field("site_id", &self.site_id)
            .field("name", &self.name)
            .field("edge_token", &"***")
            .finish()
    }
}

/// Claims a valid code and creates the edge with it, in one statement.
const ENROL: &str = "\
WITH claimed AS (
    UPDATE claim_codes SET used_at = now(), edge_id = $2
    WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
    RETURNING tenant_id, site_id
)
INSERT INTO edges (id, tenant_id, site_id, name, token_hash, enrolled_at, info)
SELECT $2, tenant_id, site_id, $3, $4, now(), $5 FROM claimed
RETURNING tenant_id, site_id";

/// A new random code, formatted `XXXX-XXXX-XXXX`.
fn generate_code() -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(CLAIM_CODE_LEN + 2);
    for i in 0..CLAIM_CODE_LEN {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(CLAIM_ALPHABET[rng.random_range(0..CLAIM_ALPHABET.len())]));
    }
    out
}

/// The canonical form of a typed code (upper case, without dashes and spaces); `None` when it
/// cannot be a code at all.
pub fn canonical_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String =
        typed.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == CLAIM_CODE_LEN && code.bytes().all(|b| CLAIM_ALPHABET.contains(&b))).then_some(code)
}

impl Store {
    /// Creates a one-time claim code for one of the tenant's sites (within `sites`), valid for
    /// `ttl_hours`. `None` when the site does not exist for this caller.
    pub async fn create_claim_code(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        site_id: Uuid,
        created_by: Option<Uuid>,
        ttl_hours: u32,
    ) -> Result<Option<ClaimCode>, StoreError> {
        if ttl_hours == 0 || ttl_hours > MAX_CLAIM_TTL_HOURS {
            return Err(StoreError::Invalid {
                field: "ttl_hours",
                reason: format!("must be 1..={MAX_CLAIM_TTL_HOURS}"),
            });
        }
        if sites.is_some_and(|own| !own.contains(&site_id)) {
            return Ok(None);
        }
        let code = generate_code();
        let hash = secret::hash(&canonical_code(&code).unwrap_or_default());
        let id = Uuid::now_v7();
        let mut tx = self.tenant_tx(tenant).await?;
        let expires_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "INSERT INTO claim_codes (id, tenant_id, site_id, code_hash, created_by, expires_at) \
             SELECT $1, $2, s.id, $4, $5, now() + make_interval(hours => $6) \
             FROM sites s WHERE s.tenant_id = $2 AND s.id = $3 \
             RETURNING expires_at",
        )
        .bind(id)
        .bind(tenant.as_uuid())
        .bind(site_id)
        .bind(&hash[..])
        .bind(created_by)
        .bind(i32::try_from(ttl_hours).unwrap_or(1))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(expires_at.map(|expires_at| {
            tracing::info!(%tenant, %site_id, claim = %id, %expires_at, "Claim code created.");
            ClaimCode { id, site_id, code, expires_at }
        }))
    }

    /// Exchanges a claim code for a new edge with a fresh token. `None` when the code is unknown,
    /// expired or used (indistinguishably); a name already taken at the site is a
    /// [`StoreError::Conflict`] on `name` and leaves the code unused.
    pub async fn enrol_edge(
        &self,
        typed_code: &str,
        request: &EnrolRequest<'_>,
    ) -> Result<Option<Enrolled>, StoreError> {
        let Some(code) = canonical_code(typed_code) else { return Ok(None) };
        let edge_id = Uuid::now_v7();
        let name = match request.name.map(str::trim) {
            Some(name) => crate::tenancy::check_name("name", name)?.to_owned(),
            None => format!("edge-{}", &edge_id.simple().to_string()[24..]),
        };
        let (edge_token, token_hash) = secret::generate();
        let mut tx = self.system_tx().await?;
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(ENROL)
            .bind(&secret::hash(&code)[..])
            .bind(edge_id)
            .bind(&name)
            .bind(&token_hash[..])
            .bind(&request.info)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| on_unique(e, &[("edges_site_id_name_key", "name")]))?;
        tx.commit().await?;
        Ok(row.map(|(tenant_id, site_id)| {
            tracing::info!(%tenant_id, %site_id, %edge_id, "Edge enrolled with a claim code.");
            Enrolled { edge_id, tenant_id: TenantId::from_uuid(tenant_id), site_id, name, edge_token }
        }))
    }

    /// Revokes one of the tenant's edges (within `sites`); its token stops authenticating at
    /// once. Returns whether an active edge was revoked.
    pub async fn revoke_edge_in(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        edge_id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE edges SET revoked_at = now() \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL AND ($3::uuid[] IS NULL OR site_id = ANY($3))",
        )
        .bind(tenant.as_uuid())
        .bind(edge_id)
        .bind(sites)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 1 {
            tracing::info!(%tenant, %edge_id, "Edge revoked.");
        }
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_unambiguous_and_canonicalise() {
        for _ in 0..200 {
            let code = generate_code();
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(code.matches('-').count(), 2, "{code}");
            let canon = canonical_code(&code).unwrap();
            assert_eq!(canon.len(), CLAIM_CODE_LEN);
            assert!(!canon.contains(['0', 'O', '1', 'I', 'L']), "{canon}");
            assert_eq!(canonical_code(&code.to_lowercase().replace('-', " ")).as_deref(), Some(canon.as_str()));
        }
        assert_ne!(generate_code(), generate_code());
        assert_eq!(canonical_code("ABCD-EFGH-JKM0"), None, "0 is not in the alphabet");
        assert_eq!(canonical_code("ABCD-EFGH-JKM"), None);
        assert_eq!(canonical_code(&"A".repeat(100)), None);
    }
}
