use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use edge_video::CameraStats;

/// Counters of the whole daemon, read by the status endpoint.
#[derive(Debug, Default)]
pub struct EdgeStats {
    pub cameras: Vec<(String, Arc<CameraStats>)>,
    pub detect: Arc<DetectStats>,
    pub uplink: Arc<UplinkStats>,
    pub eviction: crate::eviction::EvictionAlerts,
}

#[derive(Debug, Default)]
pub struct DetectStats {
    pub frames_analyzed: AtomicU64,
    pub inference_micros_total: AtomicU64,
    pub errors: AtomicU64,
    pub events_created: AtomicU64,
    /// Events that could not be written to the spool even after retries (an ERROR each).
    pub events_lost: AtomicU64,
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
}
