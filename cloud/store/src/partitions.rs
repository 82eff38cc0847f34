//! Daily event partitions (native PostgreSQL partitioning only).
//!
//! Invariant: inserting an event never fails for lack of a partition, whatever its time:
//! `events_default` takes whatever no daily partition covers. Daily partitions are created ahead
//! so that the default partition stays small (attaching a partition scans it). Under TimescaleDB
//! the SQL function is a no-op and chunks are TimescaleDB's business.

use chrono::{DateTime, Days, Utc};

use crate::{Store, StoreError};

/// Days before and after today that [`Store::ensure_partitions`] covers.
pub const PARTITION_WINDOW_DAYS: u64 = 7;

impl Store {
    /// Creates the missing daily partitions from `now - 7 days` to `now + 7 days` (UTC days) and
    /// returns how many it created. Call at startup and periodically (e.g. hourly); idempotent and
    /// safe to run from several processes at once.
    pub async fn ensure_partitions(&self, now: DateTime<Utc>) -> Result<u32, StoreError> {
        let today = now.date_naive();
        let from = today.checked_sub_days(Days::new(PARTITION_WINDOW_DAYS)).unwrap_or(today);
        let to = today.checked_add_days(Days::new(PARTITION_WINDOW_DAYS)).unwrap_or(today);
        let created: i32 = sqlx::query_scalar("SELECT vigil_ensure_event_partitions($1, $2)")
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await?;
        if created > 0 {
            tracing::info!(created, %from, %to, "Event partitions created.");
        }
        Ok(u32::try_from(created).unwrap_or(0))
    }
}
