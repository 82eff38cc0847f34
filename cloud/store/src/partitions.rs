//! Daily event partitions and retention.
//!
//! Invariant: inserting an event never fails for lack of a partition, whatever its time:
//! `events_default` takes whatever no daily partition covers. Daily partitions are created ahead
//! so that the default partition stays small (attaching a partition scans it). Under TimescaleDB
//! the SQL function is a no-op and chunks are TimescaleDB's business.
//!
//! Retention ([`Store::maintain_events`]): on native partitioning, whole daily partitions whose
//! day ended before the cutoff (`now - retention`) are dropped, and rows older than the cutoff are
//! deleted from `events_default` (far-past edge clocks); the day that contains the cutoff is kept
//! whole, so nothing inside the retention window is ever lost. Under TimescaleDB the same
//! retention is a TimescaleDB retention policy, with a compression policy and an `events_hourly`
//! continuous aggregate (set up idempotently by the same call).
//!
//! A replayed event older than the cutoff is stored again (its partition is gone, so the
//! `(occurred_at, id)` key no longer sees it) and deleted again by the next maintenance run.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use sqlx::AssertSqlSafe;

use crate::{Store, StoreError};

/// Days before and after today that [`Store::ensure_partitions`] covers.
pub const PARTITION_WINDOW_DAYS: u64 = 7;

/// Default event retention, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// Compressed after this age under TimescaleDB.
const COMPRESS_AFTER: &str = "7 days";

/// What one [`Store::maintain_events`] run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Daily partitions created.
    pub created_partitions: u32,
    /// Daily partitions dropped by retention (native partitioning).
    pub dropped_partitions: u32,
    /// Rows older than the cutoff deleted from `events_default` (native partitioning).
    pub deleted_default_rows: u64,
    /// Whether the TimescaleDB policies were (re)applied instead of native retention.
    pub timescale: bool,
}

impl Store {
    /// Creates the missing daily partitions from `now - 7 days` to `now + 7 days` (UTC days) and
    /// returns how many it created. Call at startup and periodically (e.g. hourly); idempotent and
    /// safe to run from several processes at once.
    pub async fn ensure_partitions(&self, now: DateTime<Utc>) -> Result<u32, StoreError> {
        let today = now.date_naive();
        let from = today.checked_sub_days(Days::new(PARTITION_WINDOW_DAYS)).unwrap_or(today);
        self.ensure_partitions_between(from, now).await
    }

    async fn ensure_partitions_between(&self, from: NaiveDate, now: DateTime<Utc>) -> Result<u32, StoreError> {
        let today = now.date_naive();
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

    /// The periodic event maintenance: ensures the daily partitions around `now`, then enforces
    /// a retention of `retention_days` (0 keeps everything). Idempotent; logs what it changed.
    pub async fn maintain_events(
        &self,
        now: DateTime<Utc>,
        retention_days: u32,
    ) -> Result<MaintenanceReport, StoreError> {
        let cutoff = (retention_days > 0).then(|| now - TimeDelta::days(i64::from(retention_days)));
        let today = now.date_naive();
        let mut from = today.checked_sub_days(Days::new(PARTITION_WINDOW_DAYS)).unwrap_or(today);
        if let Some(cutoff) = cutoff {
            // Do not re-create partitions that retention would drop again.
            from = from.max(cutoff.date_naive());
        }
        let mut report = MaintenanceReport {
            created_partitions: self.ensure_partitions_between(from, now).await?,
            ..MaintenanceReport::default()
        };
        if self.events_is_hypertable().await? {
            report.timescale = true;
            self.apply_timescale_policies(retention_days).await;
            return Ok(report);
        }
        let Some(cutoff) = cutoff else { return Ok(report) };
        for (name, day) in self.daily_partitions().await? {
            let Some(end) = day.succ_opt() else { continue };
            if end.and_time(NaiveTime::MIN).and_utc() > cutoff {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            // Dropping a partition locks the parent: give up rather than stall ingest.
            sqlx::query("SET LOCAL lock_timeout = '5s'").execute(&mut *tx).await?;
            // `name` matched ^events_p[0-9]{8}$: nothing to quote.
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}"))).execute(&mut *tx).await?;
            tx.commit().await?;
            report.dropped_partitions += 1;
        }
        let mut tx = self.system_tx().await?;
        report.deleted_default_rows = sqlx::query("DELETE FROM events_default WHERE occurred_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if report.dropped_partitions > 0 || report.deleted_default_rows > 0 {
            tracing::info!(
                dropped_partitions = report.dropped_partitions,
                deleted_default_rows = report.deleted_default_rows,
                retention_days,
                %cutoff,
                "Event retention enforced."
            );
        }
        Ok(report)
    }

    /// The natively partitioned daily partitions `events_pYYYYMMDD` and their days, oldest first.
    async fn daily_partitions(&self) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$' ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let day = NaiveDate::parse_from_str(&name["events_p".len()..], "%Y%m%d").ok()?;
                Some((name, day))
            })
            .collect())
    }

    async fn events_is_hypertable(&self) -> Result<bool, StoreError> {
        let extension: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
                .fetch_one(&self.pool)
                .await?;
        if !extension {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Retention, compression and the hourly continuous aggregate under TimescaleDB. Each step is
    /// idempotent; a failing one is logged and retried at the next run.
    async fn apply_timescale_policies(&self, retention_days: u32) {
        let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
        let steps: [(&str, String); 5] = [
            (
                "retention policy",
                // Replaced only when the configured retention changed (or was turned off).
                format!(
                    "DO $$ BEGIN \
                       IF EXISTS (SELECT 1 FROM timescaledb_information.jobs \
                                  WHERE proc_name = 'policy_retention' AND hypertable_name = 'events' \
                                    AND ({days} = 0 OR (config->>'drop_after')::interval <> make_interval(days => {days}))) THEN \
                         PERFORM remove_retention_policy('events', if_exists => true); \
                       END IF; \
                       IF {days} > 0 THEN \
                         PERFORM add_retention_policy('events', make_interval(days => {days}), if_not_exists => true); \
                       END IF; \
                     END $$"
                ),
            ),
            (
                "compression",
                "DO $$ BEGIN \
                   IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables \
                                  WHERE hypertable_name = 'events' AND compression_enabled) THEN \
                     ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'tenant_id', \
                                             timescaledb.compress_orderby = 'occurred_at DESC, id DESC'); \
                   END IF; \
                 END $$"
                    .to_owned(),
            ),
            (
                "compression policy",
                format!("SELECT add_compression_policy('events', INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)"),
            ),
            (
                "continuous aggregate",
                // Not granted to vigil_app: continuous aggregates have no row-level security.
                "CREATE MATERIALIZED VIEW IF NOT EXISTS events_hourly WITH (timescaledb.continuous) AS \
                 SELECT tenant_id, site_id, kind, time_bucket(INTERVAL '1 hour', occurred_at) AS bucket, \
                        count(*) AS events \
                 FROM events GROUP BY tenant_id, site_id, kind, bucket WITH NO DATA"
                    .to_owned(),
            ),
            (
                "continuous aggregate policy",
                "SELECT add_continuous_aggregate_policy('events_hourly', start_offset => INTERVAL '3 days', \
                 end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true)"
                    .to_owned(),
            ),
        ];
        for (step, sql) in steps {
            if let Err(error) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.pool).await {
                tracing::warn!(step, %error, "TimescaleDB event policy not applied; will retry.");
            }
        }
    }
}
