//! Running the service: connecting with retry, serving with graceful shutdown, and partition
//! maintenance.
//!
//! Cancellation is always a parameter: when the token fires, the server stops accepting, finishes
//! in-flight requests (each bounded by [`crate::REQUEST_TIMEOUT`]) and returns; the maintenance
//! loop returns at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    axum::serve(listener, app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// Loads a PEM certificate chain and private key into a rustls server configuration
/// (TLS 1.2 and 1.3, aws-lc-rs crypto, HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate { path: cert.to_owned(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate { path: cert.to_owned(), message: "no certificate in file".into() });
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.to_owned(), message: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why the TLS material could not be loaded (all configuration errors).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read tls certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("cannot read tls private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("tls certificate and key do not make a valid configuration: {0}")]
    Config(String),
}

/// Like [`serve`], over HTTPS terminated in process by rustls.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        stopper.graceful_shutdown(None);
    });
    axum_server::tls_rustls::from_tcp_rustls(listener.into_std()?, RustlsConfig::from_config(tls))?
        .handle(handle)
        .serve(app(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
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

/// Runs the event maintenance ([`Store::maintain_events`]: upcoming partitions, then retention of
/// `retention_days`, 0 = keep forever) at once and then every `every` until `cancel` fires.
/// Failures are logged and retried at the next tick (inserts never fail for lack of a partition;
/// see `cloud_store`).
pub async fn maintain_events(store: Store, every: Duration, retention_days: u32, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {
                match store.maintain_events(chrono::Utc::now(), retention_days).await {
                    Ok(report) => tracing::debug!(?report, "Event maintenance done."),
                    Err(error) => {
                        tracing::warn!(error = %chain(&error), "Event maintenance failed; will retry.");
                    }
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
