//! Access tokens: JWTs signed with RS256, identified by `kid`, published as a JWKS.
//!
//! Keys live in the database (`signing_keys`), so every replica signs and verifies with the same
//! set; the first replica to start generates a 2048-bit RSA key (aws-lc-rs). The newest key signs;
//! every unretired key verifies.
//!
//! Verification accepts exactly RS256 (the algorithm comes from our configuration, never from the
//! token: `none`, HS256 and friends are refused), a `kid` that names one of our keys, our issuer
//! and audience, and an unexpired `exp` (small leeway for clock skew).

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cloud_store::{Role, Store, TenantId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `iss` of our tokens.
pub const ISSUER: &str = "vigil";
/// `aud` of our access tokens.
pub const AUDIENCE: &str = "vigil-api";
/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The tenant id.
    pub tid: Uuid,
    /// The role, spelled as in [`Role::as_str`].
    pub role: String,
    /// Site scope; absent means every site of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<Uuid>>,
    /// The session (refresh-token family) the token was issued in.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Who an access token says the caller is.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub user_id: Uuid,
    pub tenant_id: TenantId,
    pub role: Role,
    pub sites: Option<Vec<Uuid>>,
    pub session_id: Uuid,
}

/// Why a token was refused (all map to 401; the variant is for logs and tests).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token names no known key")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

struct KeyEntry {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// base64url modulus and exponent, for the JWKS.
    n: String,
    e: String,
}

/// The signing key set.
pub struct Keys {
    signer: String,
    keys: HashMap<String, KeyEntry>,
    validation: Validation,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("signer", &self.signer).field("kids", &self.keys.keys()).finish()
    }
}

/// A new RSA-2048 key: (kid, PKCS#8 PEM).
pub fn generate_key() -> anyhow::Result<(String, String)> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("cannot generate an RSA key"))?;
    let der = pair.as_der().map_err(|_| anyhow::anyhow!("cannot encode the RSA key"))?;
    let kid = key_id(&pair);
    Ok((kid, pem("PRIVATE KEY", der.as_ref())))
}

/// RFC 7638-style thumbprint: base64url(SHA-256(n || e)), first 16 bytes.
fn key_id(pair: &KeyPair) -> String {
    use aws_lc_rs::signature::KeyPair as _;
    let public = pair.public_key();
    let mut material = public.modulus().big_endian_without_leading_zero().to_vec();
    material.extend_from_slice(public.exponent().big_endian_without_leading_zero());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_der(text: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(STANDARD.decode(body.trim())?)
}

impl Keys {
    /// Loads the stored keys, generating and storing the first one when there is none.
    pub async fn load_or_create(store: &Store) -> anyhow::Result<Keys> {
        let mut rows = store.signing_keys().await?;
        if rows.is_empty() {
            let (kid, pem) = tokio::task::spawn_blocking(generate_key).await??;
            if store.add_first_signing_key(&kid, &pem).await? {
                tracing::info!(%kid, "JWT signing key generated.");
            }
            rows = store.signing_keys().await?;
        }
        let pairs: Vec<(String, String)> = rows.into_iter().map(|r| (r.kid, r.private_pem)).collect();
        Keys::from_pems(&pairs)
    }

    /// Builds the set from (kid, PKCS#8 PEM) pairs, newest (the signer) first.
    pub fn from_pems(pairs: &[(String, String)]) -> anyhow::Result<Keys> {
        use aws_lc_rs::signature::KeyPair as _;
        let signer = pairs.first().ok_or_else(|| anyhow::anyhow!("no signing key"))?.0.clone();
        let mut keys = HashMap::new();
        for (kid, pem) in pairs {
            let der = pem_der(pem)?;
            let pair = KeyPair::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("signing key {kid} unreadable: {e}"))?;
            let public = pair.public_key();
            let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
            let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
            let entry = KeyEntry {
                encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
                decoding: DecodingKey::from_rsa_components(&n, &e)?,
                n,
                e,
            };
            keys.insert(kid.clone(), entry);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Keys { signer, keys, validation })
    }

    /// Key id of the signing key.
    pub fn signer_kid(&self) -> &str {
        &self.signer
    }

    /// Signs an access token for `claims` with the newest key.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let key = &self.keys.get(&self.signer).ok_or_else(|| anyhow::anyhow!("signer key missing"))?.encoding;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.signer.clone());
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// Claims for a fresh access token valid for `ttl`.
    pub fn claims(
        user: Uuid,
        tenant: TenantId,
        role: Role,
        sites: Option<Vec<Uuid>>,
        session: Uuid,
        ttl: Duration,
    ) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user,
            tid: tenant.as_uuid(),
            role: role.as_str().into(),
            sites,
            sid: session,
            iat: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: Uuid::now_v7(),
        }
    }

    /// Verifies `token` and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid(format!("algorithm {:?} not accepted", header.alg)));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                other => TokenError::Invalid(format!("{other:?}")),
            })?;
        let c = data.claims;
        let role = Role::parse(&c.role).ok_or_else(|| TokenError::Invalid("unknown role".into()))?;
        Ok(Verified { user_id: c.sub, tenant_id: TenantId::from_uuid(c.tid), role, sites: c.sites, session_id: c.sid })
    }

    /// The public keys as a JWKS document (RFC 7517).
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<(&String, &KeyEntry)> = self.keys.iter().collect();
        keys.sort_by_key(|(kid, _)| *kid != &self.signer);
        let keys: Vec<serde_json::Value> = keys
            .into_iter()
            .map(|(kid, k)| serde_json::json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": k.n, "e": k.e }))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_round_trips_and_jwks_lists_the_key() {
        let (kid, pem) = generate_key().unwrap();
        let keys = Keys::from_pems(&[(kid.clone(), pem)]).unwrap();
        let tenant = TenantId::from_uuid(Uuid::now_v7());
        let claims =
            Keys::claims(Uuid::now_v7(), tenant, Role::Security, None, Uuid::now_v7(), Duration::from_secs(900));
        let token = keys.sign(&claims).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.tenant_id, tenant);
        assert_eq!(verified.role, Role::Security);
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(), Some(kid.as_str()));
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["kid"], kid);
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
    }
}
