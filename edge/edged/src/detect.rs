//! The analysis stage: one OS thread that owns the ONNX session, turns frames into events and
//! appends them to the spool.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use edge_core::{ClassRule, EventContext, Frame, detections_to_events};
use edge_detect::YoloDetector;
use edge_spool::Spool;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use vigil_proto::{Event, Timestamp};

use crate::stats::DetectStats;

pub struct DetectStage {
    pub detector: YoloDetector,
    pub model_name: String,
    pub classes: Vec<ClassRule>,
    pub tenant: Uuid,
    pub site: Uuid,
    /// Zone of each camera, by camera id.
    pub zones: Vec<(Arc<str>, Option<String>)>,
    pub spool: Spool,
    pub spooled: Arc<Notify>,
    pub stats: Arc<DetectStats>,
    pub eviction: crate::eviction::EvictionAlerts,
}

/// UUIDv7 whose time part is when the event happened.
pub fn event_id(at: Timestamp) -> Uuid {
    let (secs, nanos) = at.to_unix_parts();
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
}

impl DetectStage {
    /// Runs until every camera sender is gone (cameras stopped), then returns.
    pub fn run(mut self, mut frames: mpsc::Receiver<Frame>) {
        let span = tracing::info_span!("stage", stage = "detect");
        let _enter = span.enter();
        while let Some(frame) = frames.blocking_recv() {
            let started = Instant::now();
            let found = match self.detector.detect(&frame.rgb, frame.width, frame.height) {
                Ok(found) => found,
                Err(error) => {
                    self.stats.errors.fetch_add(1, Relaxed);
                    tracing::warn!(camera = %frame.camera, %error, "Inference failed for a frame.");
                    continue;
                }
            };
            self.stats.inference_micros_total.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            self.stats.frames_analyzed.fetch_add(1, Relaxed);
            let zone = self.zones.iter().find(|(id, _)| *id == frame.camera).and_then(|(_, z)| z.as_deref());
            let cx = EventContext { tenant: self.tenant, site: self.site, zone, model: &self.model_name };
            let events = detections_to_events(&cx, &frame, &found, &self.classes, event_id);
            if events.is_empty() {
                continue;
            }
            tracing::trace!(camera = %frame.camera, events = events.len(), "Detections.");
            self.append(&events);
        }
        tracing::info!("Detector stopped.");
    }

    /// Appends with a few retries; an event that still cannot be stored is counted and logged as
    /// an ERROR (never dropped silently).
    fn append(&self, events: &[Event]) {
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=5 {
            match self.spool.append(events) {
                Ok(report) => {
                    self.stats.events_created.fetch_add(events.len() as u64, Relaxed);
                    for e in events {
                        tracing::debug!(id = %e.id, kind = %e.kind, source = %e.source.id, "Event spooled.");
                    }
                    if report.evicted.total() > 0 {
                        self.eviction.record(report.evicted);
                    }
                    self.spooled.notify_one();
                    return;
                }
                Err(error) if attempt < 5 => {
                    tracing::warn!(%error, attempt, "Spool append failed; retrying.");
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(error) => {
                    self.stats.events_lost.fetch_add(events.len() as u64, Relaxed);
                    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
                    tracing::error!(%error, ?ids, "Events could not be spooled and are lost.");
                }
            }
        }
    }
}
