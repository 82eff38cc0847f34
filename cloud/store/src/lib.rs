//! PostgreSQL persistence for the Vigil cloud.
//!
//! Architecture invariants:
//! - Every query that reads tenant data takes the tenant as its first argument ([`TenantId`], or an
//!   [`EdgeIdentity`] that carries it) and filters on it here, in the store, never only in handlers.
//!   The only unscoped lookups are the ones that *produce* a tenant: credential checks
//!   ([`Store::edge_by_token`], [`Store::api_key_tenant`]), login by email, refresh and reset tokens.
//! - Credentials are stored only as SHA-256 hashes; the bearer strings exist once, in the
//!   [`Provisioned`] or [`IssuedRefresh`] value returned to the caller.
//! - Ingest is idempotent: an event is keyed by `(occurred_at, id)`, and a replay is acknowledged
//!   as [`vigil_proto::AckStatus::Duplicate`] without a second row.
//! - Tenant isolation is enforced by PostgreSQL row-level security as well: every query runs in a
//!   tenant transaction (`SET LOCAL ROLE vigil_app` + `vigil.tenant_id`) or, for the few lookups that
//!   find the tenant, a system transaction (see `scope`).
//! - Queries are runtime-checked (`sqlx::query`, no `query!`), so building needs no database.
//!
//! The schema lives in `migrations/` (embedded with `sqlx::migrate!`); see `0002_events.sql` for
//! the time partitioning (TimescaleDB when available, native daily partitions otherwise).

mod devices;
mod edges;
mod enrolment;
mod error;
mod events;
mod keys;
mod media;
mod partitions;
mod people;
mod resources;
mod rules;
mod scope;
mod secret;
mod site_config;
mod tenancy;
mod users;

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};

pub use devices::{COMMAND_OUTCOMES, DEVICE_KINDS, Device, DeviceCommand, EdgeCommand, NewCommand, NewDevice};
pub use edges::EdgeStatus;
pub use enrolment::{
    CLAIM_ALPHABET, CLAIM_CODE_LEN, ClaimCode, EnrolRequest, Enrolled, MAX_CLAIM_TTL_HOURS, canonical_code,
};
pub use error::StoreError;
pub use events::{EventCursor, EventQuery, Page, StoredEvent};
pub use keys::SigningKeyRow;
pub use media::{Announced, MediaPart, MediaUpload, NewMedia};
pub use partitions::{DEFAULT_RETENTION_DAYS, MaintenanceReport};
pub use people::{Credential, NewCredential, Person};
pub use resources::{Camera, CameraUpdate, NewCamera, Sensor, Site, SiteScope, StreamCommand, StreamStatus, Zone};
pub use rules::{NewExecution, Rule, RuleExecution, RuleSpec, Webhook};
pub use scope::Tx;
pub use site_config::{SiteConfigParts, SitePart};
pub use tenancy::{EdgeIdentity, Provisioned, TenantId};
pub use users::{IssuedRefresh, NewUser, OutboxMessage, Refreshed, Role, User, UserUpdate};

/// Migrations embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Most connections one process holds.
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a free or new connection before failing with
/// [`StoreError::Unavailable`]; bounded so an unreachable database fails requests quickly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle to the database: a connection pool, cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), opening one connection to check it.
    ///
    /// Fails with [`StoreError::InvalidUrl`] for a malformed URL and [`StoreError::Unavailable`]
    /// when the server cannot be reached (worth retrying).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let options = parse_url(url)?;
        // One direct connection first: the pool would retry a refused connection until its
        // acquire timeout, and callers (startup retry loops) want the failure at once.
        options.connect().await?.close().await?;
        Ok(Store { pool: pool_options().connect_lazy_with(options) })
    }

    /// Like [`Store::connect`] but without touching the network: connections are opened on first
    /// use. Only a malformed URL fails.
    pub fn connect_lazy(url: &str) -> Result<Store, StoreError> {
        Ok(Store { pool: pool_options().connect_lazy_with(parse_url(url)?) })
    }

    /// Wraps an existing pool.
    pub fn new(pool: PgPool) -> Store {
        Store { pool }
    }

    /// The underlying pool (for tests and tooling).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations, then creates the event partitions around today
    /// (see [`Store::ensure_partitions`]). Safe to run concurrently from several processes.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::from_migrate)?;
        let created = self.ensure_partitions(chrono::Utc::now()).await?;
        tracing::debug!(created, "Event partitions ensured.");
        Ok(())
    }

    /// Checks that the database answers `SELECT 1`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return Err(StoreError::InvalidUrl { reason: "it must start with postgres:// or postgresql://".into() });
    }
    PgConnectOptions::from_str(url).map_err(|error| StoreError::InvalidUrl {
        reason: match error {
            sqlx::Error::Configuration(source) => source.to_string(),
            other => other.to_string(),
        },
    })
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().max_connections(MAX_CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT)
}
