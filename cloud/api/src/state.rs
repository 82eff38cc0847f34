//! Shared request state.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use cloud_store::Store;

use crate::media::MediaStore;

use crate::auth::{Auth, AuthConfig, IP_RATE_FACTOR, Keys, PasswordHasher, RateLimiter};

/// What every handler can reach. Cheap to clone (a pool handle and an `Arc`).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Arc<Auth>,
    /// Browser origins allowed by CORS (e.g. the dashboard's); empty: no CORS headers at all.
    pub cors_origins: Arc<[HeaderValue]>,
    /// The cloud's public base URL for edges (`--public-url`), told to an edge when it enrols;
    /// `None`: the edge keeps the address it enrolled with.
    pub public_url: Option<Arc<str>>,
    /// Where clips and snapshots go; `None`: the media endpoints answer 503.
    pub media: Option<MediaStore>,
}

impl AppState {
    /// Builds the state: loads the JWT signing keys from the database (creating the first one
    /// when there is none) and prepares the password hasher. The database must be migrated.
    pub async fn build(store: Store, config: AuthConfig) -> anyhow::Result<AppState> {
        let keys = Keys::load_or_create(&store).await?;
        AppState::new(store, config, keys)
    }

    /// Builds the state with the given signing keys (no database access).
    pub fn new(store: Store, config: AuthConfig, keys: Keys) -> anyhow::Result<AppState> {
        let hasher = PasswordHasher::new(config.hash_cost)?;
        let minute = Duration::from_secs(60);
        let limiter = RateLimiter::new(config.auth_rate_per_minute, minute);
        let ip_limiter = RateLimiter::new(config.auth_rate_per_minute.saturating_mul(IP_RATE_FACTOR), minute);
        let auth = Auth { config, keys, hasher, limiter, ip_limiter };
        Ok(AppState { store, auth: Arc::new(auth), cors_origins: Arc::new([]), public_url: None, media: None })
    }

    /// Tells enrolling edges this base URL (e.g. `https://cloud.example.com`).
    pub fn with_public_url(mut self, url: Option<String>) -> AppState {
        self.public_url = url.map(|u| Arc::from(u.trim_end_matches('/')));
        self
    }

    /// Stores clips and snapshots in `media`.
    pub fn with_media(mut self, media: MediaStore) -> AppState {
        self.media = Some(media);
        self
    }

    /// Allows these browser origins (exact `scheme://host[:port]` values) through CORS.
    pub fn with_cors_origins(mut self, origins: Vec<HeaderValue>) -> AppState {
        self.cors_origins = origins.into();
        self
    }
}
