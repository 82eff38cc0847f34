//! Heartbeats: every `cloud.heartbeat_secs` the edge tells the cloud how it is — versions, uptime,
//! cameras, spool depth per class and the age of the oldest unsent event, free disk — so an
//! operator sees a sick site before it matters. A failed heartbeat is only logged: the next one
//! carries fresh numbers anyway.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use edge_spool::Spool;
use edge_uplink::Uplink;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use vigil_proto::Timestamp;

use crate::stats::EdgeStats;

/// The health document (also what `/status` summarises).
pub fn health(stats: &EdgeStats, spool: &Spool, spool_dir: &std::path::Path, started: Instant) -> Value {
    let now = Timestamp::from(chrono::Utc::now());
    let oldest_age = spool.oldest().ok().flatten().map(|t| (now.as_micros() - t.as_micros()).max(0) / 1_000_000);
    let disk = spool.disk();
    let cameras: Vec<Value> = stats
        .cameras
        .iter()
        .enumerate()
        .map(|(i, (id, c))| {
            let s = c.snapshot();
            json!({ "id": id, "state": s.state.as_str(), "fps_in": stats.fps(i).0, "reconnects": s.reconnects, "last_error": s.last_error })
        })
        .collect();
    let up = cameras.iter().filter(|c| c["state"] == "streaming").count();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "schema": vigil_proto::SCHEMA_VERSION,
        "uptime_secs": started.elapsed().as_secs(),
        "cameras_up": up,
        "cameras": cameras,
        "spool": {
            "depth": spool.len(),
            "bytes": spool.bytes(),
            "depth_by_class": crate::status::depth_by_class(spool),
            "quarantined": spool.quarantined(),
            "oldest_unsent_age_secs": oldest_age,
            "evicted": stats.eviction.total.load(Relaxed),
        },
        "disk_free_bytes": edge_video::record::statvfs_free_space(spool_dir).ok(),
        // Below the spool's reserve (only alarms and access stored) / its floor (nothing written).
        "disk_low": disk.low,
        "disk_full": disk.full,
        "events_lost": stats.detect.events_lost.load(Relaxed),
        "config": stats.config.snapshot(),
        "media_upload": media_upload(&stats.media_upload),
    })
}

/// The media uploader's counters (heartbeat and `/status`).
pub fn media_upload(m: &crate::upload::UploadStats) -> Value {
    json!({
        "queued": m.queued.load(Relaxed),
        "uploaded": m.uploaded.load(Relaxed),
        "bytes_sent": m.bytes_sent.load(Relaxed),
        "parts_sent": m.parts_sent.load(Relaxed),
        "missing": m.missing.load(Relaxed),
        "failed": m.failed.load(Relaxed),
        "retries": m.retries.load(Relaxed),
        "last_error": m.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    })
}

#[derive(Debug)]
pub struct Heartbeat {
    pub uplink: Uplink,
    pub stats: Arc<EdgeStats>,
    pub spool: Spool,
    pub spool_dir: PathBuf,
    pub every: Duration,
    pub started: Instant,
}

impl Heartbeat {
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let doc = health(&self.stats, &self.spool, &self.spool_dir, self.started);
            if let Err(error) = self.uplink.heartbeat(&doc).await {
                tracing::debug!(%error, "Heartbeat not delivered.");
            }
        }
    }
}
