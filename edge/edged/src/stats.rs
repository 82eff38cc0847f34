use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use edge_video::CameraStats;

/// Counters of the whole daemon, read by the status endpoint.
#[derive(Debug, Default)]
pub struct EdgeStats {
    pub cameras: Vec<(String, Arc<CameraStats>)>,
    /// Per camera: what analysis did with its frames (same order as `cameras`).
    pub analysis: Vec<Arc<Mutex<AnalysisSnapshot>>>,
    /// Per camera `(fps in, fps out)` over the last sampling period (see [`EdgeStats::sample_rates`]).
    pub rates: Mutex<Vec<(f64, f64)>>,
    pub detect: Arc<DetectStats>,
    pub uplink: Arc<UplinkStats>,
    /// Clip and snapshot uploads.
    pub media_upload: Arc<crate::upload::UploadStats>,
    pub eviction: crate::eviction::EvictionAlerts,
    /// The configuration from the cloud.
    pub config: Arc<crate::downlink::DownlinkStats>,
}

#[derive(Debug, Default)]
pub struct DetectStats {
    pub frames_analyzed: AtomicU64,
    /// Detector wall time per analysed frame, summed (a frame whose tiles were shared counts once).
    pub inference_micros_total: AtomicU64,
    /// Tiles of one worker's frame that another, idle worker ran ([`crate::tiles`]).
    pub tiles_shared: AtomicU64,
    pub errors: AtomicU64,
    pub events_created: AtomicU64,
    /// Events that could not be written to the spool even after retries (an ERROR each).
    pub events_lost: AtomicU64,
    /// Frame captured → its analysis done (and its events spooled), for frames given to the detector.
    pub analysis_latency: LatencyHistogram,
    /// Frame captured → its events spooled, for frames that produced events.
    pub event_latency: LatencyHistogram,
}

/// Millisecond latencies, 1 ms buckets up to 2 s (plus one for longer), lock-free.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { buckets: (0..=2000).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl LatencyHistogram {
    pub fn record(&self, latency: std::time::Duration) {
        let ms = (latency.as_millis() as usize).min(self.buckets.len() - 1);
        self.buckets[ms].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets everything recorded so far (e.g. a benchmark's warm-up).
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    /// The `q` quantile (0..=1) in milliseconds (upper bucket edge); `None` when empty. The last
    /// bucket means "2 s or more".
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(std::sync::atomic::Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(ms as u64 + 1);
            }
        }
        Some(counts.len() as u64)
    }
}

/// One camera's analysis counters, refreshed after each of its frames.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct AnalysisSnapshot {
    /// Frames that reached analysis.
    pub frames: u64,
    /// Frames not given to the detector: nothing moved and nothing was being followed.
    pub skipped: u64,
    /// Frames where the detector saw only the moving regions (a crop).
    pub regions: u64,
    /// Frames analysed in full (periodic check, or no motion gating).
    pub full: u64,
    /// Frames replaced by a newer one before a worker was free (drop-oldest).
    pub dropped_oldest: u64,
    pub motion_episodes: u64,
    pub live_objects: u64,
    /// `(line, in, out)` people-counting totals since start.
    pub lines: Vec<(String, u64, u64)>,
    /// Analysis stopped by an operator (`POST /api/streams/stop`).
    pub paused: bool,
}

#[derive(Debug, Default)]
pub struct UplinkStats {
    pub batches_sent: AtomicU64,
    pub events_acked: AtomicU64,
    pub events_rejected: AtomicU64,
    pub failures: AtomicU64,
    /// Unix micros of the last acknowledged batch; 0 = never.
    pub last_success_micros: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// How the last upload went: `ok`, `unreachable`, `unauthorized` (the cloud refuses this
    /// edge's credential: revoked or unknown), `refused`, `not_enrolled`; empty before the first.
    pub cloud_state: Mutex<&'static str>,
}

impl UplinkStats {
    pub fn set_state(&self, state: &'static str) {
        *self.cloud_state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn state(&self) -> &'static str {
        *self.cloud_state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EdgeStats {
    /// `(fps in, fps out)` of camera `i`: decoded, and handed to analysis.
    pub fn fps(&self, i: usize) -> (f64, f64) {
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).get(i).copied().unwrap_or_default()
    }

    /// Samples the camera counters every `period` and keeps per-camera rates, until cancelled.
    pub async fn sample_rates(
        self: Arc<Self>,
        period: std::time::Duration,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let counts = |s: &EdgeStats| -> Vec<(u64, u64)> {
            s.cameras.iter().map(|(_, c)| c.snapshot()).map(|c| (c.frames_decoded, c.frames_sent)).collect()
        };
        let mut before = (std::time::Instant::now(), counts(&self));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let now = (std::time::Instant::now(), counts(&self));
            let secs = now.0.duration_since(before.0).as_secs_f64().max(1e-3);
            let rates = now
                .1
                .iter()
                .zip(&before.1)
                .map(|(n, b)| (n.0.saturating_sub(b.0) as f64 / secs, n.1.saturating_sub(b.1) as f64 / secs))
                .collect();
            *self.rates.lock().unwrap_or_else(|p| p.into_inner()) = rates;
            before = now;
        }
    }
}
