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
    /// A uniqueness constraint refused the write: something with the same `field` exists.
    #[error("{field} already exists")]
    Conflict {
        /// Which field collides (e.g. `email`, `name`).
        field: &'static str,
    },
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
        if is_unavailable(&error) {
            return StoreError::Unavailable(error);
        }
        // 22021 / 22P05: text or jsonb holding U+0000, which PostgreSQL cannot store. The input's
        // fault, not ours: callers validate fields, this is the net for what they let through.
        if let sqlx::Error::Database(db) = &error
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return StoreError::Invalid { field: "body", reason: "contains a NUL character".into() };
        }
        StoreError::Query(error)
    }
}

/// Maps a unique violation of one of `constraints` (name, field) to [`StoreError::Conflict`].
pub(crate) fn on_unique(error: sqlx::Error, constraints: &[(&str, &'static str)]) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.code().as_deref() == Some("23505")
        && let Some((_, field)) = constraints.iter().find(|(name, _)| Some(*name) == db.constraint())
    {
        return StoreError::Conflict { field };
    }
    StoreError::from(error)
}

/// A foreign key violation (a referenced row, e.g. a site, does not exist or is another tenant's).
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23503"))
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
