//! The Vigil edge daemon.
//!
//! `main.rs` parses flags and calls [`run`]; [`topology::spawn`] is the one place where the stages
//! are built and connected, in data-flow order:
//!
//! ```text
//! cameras (GStreamer threads) ──frames──▶ detect (ONNX thread) ──events──▶ spool (sled) ──▶ sender ──HTTPS──▶ cloud
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod bandwidth;
pub mod config;
pub mod detect;
pub mod devices;
pub mod downlink;
pub mod enrol;
mod eviction;
pub mod heartbeat;
pub mod media;
pub mod remote;
pub mod rules;
mod sender;
pub mod stats;
mod status;
mod status_page;
pub mod tiles;
pub mod topology;
pub mod upload;

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, DEFAULT_CONFIG};

/// Runs the daemon until `cancel` fires, then drains in data-flow order.
pub async fn run(config: Config, token: Option<config::Secret>, cancel: CancellationToken) -> anyhow::Result<()> {
    let running = topology::spawn(&config, token, &cancel).await.context("start edge")?;
    cancel.cancelled().await;
    tracing::info!("Shutting down.");
    running.tasks.close();
    if tokio::time::timeout(Duration::from_secs(10), running.tasks.wait()).await.is_err() {
        tracing::warn!("Drain deadline passed; remaining events stay in the spool.");
    }
    running.spool.flush().context("final spool flush")?;
    tracing::info!(spooled = running.spool.len(), "Stopped.");
    Ok(())
}
