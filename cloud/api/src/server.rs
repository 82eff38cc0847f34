//! Running the service: connecting with retry, serving with graceful shutdown, and partition
//! maintenance.
//!
//! Cancellation is always a parameter: when the token fires, the server stops accepting, finishes
//! in-flight requests (each bounded by [`crate::REQUEST_TIMEOUT`]) and returns; the maintenance
//! loop returns at once.

use std::time::Duration;

use cloud_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::error::chain;
use crate::{AppState, app};

/// First pause between connection attempts; doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(250);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(4);

/// Serves the API on `listener` until `cancel` fires, then drains in-flight requests.
pub async fn serve(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(cancel.cancelled_owned()).await
}

/// Connects to the database, retrying with exponential backoff while it is unreachable, for up
/// to `give_up_after`. Other errors (a malformed URL, bad credentials) fail at once.
pub async fn connect_with_retry(url: &str, give_up_after: Duration) -> Result<Store, StoreError> {
    let deadline = Instant::now() + give_up_after;
    let mut pause = FIRST_RETRY_PAUSE;
    let mut attempt = 1u32;
    loop {
        match Store::connect(url).await {
            Ok(store) => return Ok(store),
            Err(error) if error.is_unavailable() && Instant::now() + pause < deadline => {
                tracing::warn!(attempt, retry_in = ?pause, error = %chain(&error), "Database unreachable; retrying.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates upcoming event partitions every `every` until `cancel` fires. Failures are logged and
/// retried at the next tick (inserts never fail for lack of a partition; see `cloud_store`).
pub async fn maintain_partitions(store: Store, every: Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {
                if let Err(error) = store.ensure_partitions(chrono::Utc::now()).await {
                    tracing::warn!(error = %chain(&error), "Event partition maintenance failed; will retry.");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time: paused time would auto-advance through the driver's own connect timeouts.
    #[tokio::test]
    async fn connect_retries_then_gives_up_at_the_deadline() {
        let port = test_support::free_port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/none");
        let started = Instant::now();
        let error = connect_with_retry(&url, Duration::from_secs(2)).await.unwrap_err();
        assert!(error.is_unavailable(), "{error:?}");
        // Pauses of 0.25 + 0.5 + 1 s fit before the deadline; the next (2 s) would not.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(1750) && waited < Duration::from_secs(3), "{waited:?}");
    }

    #[tokio::test]
    async fn connect_fails_fast_on_a_bad_url() {
        let error = connect_with_retry("mysql://x", Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
    }
}
