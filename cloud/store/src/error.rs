//! The store's error type.
//!
//! Invariant: messages never contain the database URL (it may hold a password) nor credentials.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be parsed (a configuration error; retrying will not help).
    /// `reason` says what is wrong without repeating the URL.
    #[error("invalid database url: {reason}")]
    InvalidUrl { reason: String },
    /// The database cannot be reached right now: connection refused or lost, pool timeout, server
    /// starting up or shutting down, too many connections. Retrying later may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A migration could not be applied (or the database has migrations this build does not know).
    #[error("cannot apply database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed for another reason (constraint, permissions, a bug).
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
    /// An argument was rejected before reaching the database (e.g. an empty name when provisioning).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which argument.
        field: &'static str,
        /// Why, in words.
        reason: String,
    },
}

impl StoreError {
    /// Whether the failure is about reaching the database (callers may answer 503 or retry).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn from_migrate(error: sqlx::migrate::MigrateError) -> StoreError {
        match error {
            sqlx::migrate::MigrateError::Execute(e) if is_unavailable(&e) => StoreError::Unavailable(e),
            other => StoreError::Migrate(other),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        if is_unavailable(&error) { StoreError::Unavailable(error) } else { StoreError::Query(error) }
    }
}

/// Connection-level failures, as opposed to a query the server refused.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08xxx connection exception; 57P01-03 shutdown / starting up; 53300 too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
