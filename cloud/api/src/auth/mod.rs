//! Authentication: passwords, access tokens (RS256 JWT + JWKS), refresh sessions, rate limits.
//!
//! - Access tokens are short-lived JWTs ([`AuthConfig::access_ttl`], 15 min by default), checked
//!   without a database round trip; see [`tokens`].
//! - Refresh tokens are opaque, rotate on every use, and a replayed one revokes its whole session
//!   family (see `cloud_store::Store::rotate_refresh`).
//! - Passwords are Argon2id ([`password`]); auth endpoints are rate limited per client IP and
//!   account ([`limit`]).

pub mod limit;
pub mod password;
pub mod tokens;

use std::time::Duration;

pub use limit::RateLimiter;
pub use password::{HashCost, PasswordHasher};
pub use tokens::{Claims, Keys, TokenError, Verified};

/// Tunables of authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (each rotation issues a fresh one).
    pub refresh_ttl: Duration,
    /// Lifetime of a password-reset token.
    pub reset_ttl: Duration,
    /// Requests per minute per client IP and account on the auth endpoints.
    pub auth_rate_per_minute: u32,
    /// Argon2id cost of new hashes.
    pub hash_cost: HashCost,
    /// Take the client IP from the last `X-Forwarded-For` entry (set only behind a proxy that
    /// appends it; otherwise clients could pick their own rate-limit bucket).
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            reset_ttl: Duration::from_secs(30 * 60),
            auth_rate_per_minute: 10,
            hash_cost: HashCost::OWASP,
            trust_forwarded_for: false,
        }
    }
}

/// Everything the auth endpoints and extractors share.
#[derive(Debug)]
pub struct Auth {
    pub config: AuthConfig,
    pub keys: Keys,
    pub hasher: PasswordHasher,
    /// Per client IP and account ([`AuthConfig::auth_rate_per_minute`]).
    pub limiter: RateLimiter,
    /// Per client IP across accounts ([`IP_RATE_FACTOR`] times the per-account rate), against
    /// password spraying (one guess for each of many accounts).
    pub ip_limiter: RateLimiter,
}

/// How many times the per-account rate one client IP may spend across all accounts.
pub const IP_RATE_FACTOR: u32 = 10;
