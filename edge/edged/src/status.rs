//! Local status endpoint: `GET /status` (JSON counters) and `GET /health`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use edge_spool::Spool;
use serde_json::{Value, json};

use crate::stats::EdgeStats;

#[derive(Clone)]
pub struct StatusState {
    pub stats: Arc<EdgeStats>,
    pub spool: Spool,
    pub started: std::time::Instant,
    /// Devices stage and MQTT front counters, when `[mqtt]` is configured.
    pub devices: Option<(Arc<crate::devices::DeviceStats>, Arc<edge_mqtt::FrontStats>)>,
}

pub fn router(state: StatusState) -> Router {
    Router::new().route("/status", get(status)).route("/health", get(|| async { "ok\n" })).with_state(state)
}

async fn status(State(s): State<StatusState>) -> Json<Value> {
    let cameras: Vec<Value> = s
        .stats
        .cameras
        .iter()
        .map(|(id, c)| {
            let snap = c.snapshot();
            json!({
                "id": id,
                "state": snap.state.as_str(),
                "frames_decoded": snap.frames_decoded,
                "frames_sent": snap.frames_sent,
                "frames_dropped": snap.frames_dropped,
                "reconnects": snap.reconnects,
                "last_error": snap.last_error,
            })
        })
        .collect();
    let d = &s.stats.detect;
    let frames = d.frames_analyzed.load(Relaxed);
    let micros = d.inference_micros_total.load(Relaxed);
    let u = &s.stats.uplink;
    let last_success = u.last_success_micros.load(Relaxed);
    let devices = s.devices.as_ref().map(|(d, f)| {
        json!({
            "messages": d.messages.load(Relaxed),
            "access_granted": d.access_granted.load(Relaxed),
            "access_denied": d.access_denied.load(Relaxed),
            "alarms": d.alarms.load(Relaxed),
            "readings": d.readings.load(Relaxed),
            "commands_sent": d.commands_sent.load(Relaxed),
            "commands_acked": d.commands_acked.load(Relaxed),
            "commands_failed": d.commands_failed.load(Relaxed),
            "commands_timed_out": d.commands_timed_out.load(Relaxed),
            "last_decision_micros": d.last_decision_micros.load(Relaxed),
            "events_lost": d.events_lost.load(Relaxed),
            "lockdowns_refused": d.lockdowns_refused.load(Relaxed),
            "live": json!(*d.live.lock().unwrap_or_else(|p| p.into_inner())),
            "mqtt": {
                "connections": f.connections.load(Relaxed),
                "auth_refused": f.auth_refused.load(Relaxed),
                "publish_refused": f.publish_refused.load(Relaxed),
                "subscribe_refused": f.subscribe_refused.load(Relaxed),
                "payload_rejected": f.payload_rejected.load(Relaxed),
                "protocol_errors": f.protocol_errors.load(Relaxed),
                "messages_forwarded": f.messages_forwarded.load(Relaxed),
                "sessions_active": f.sessions_active.load(Relaxed),
            },
        })
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "devices": devices,
        "uptime_secs": s.started.elapsed().as_secs(),
        "cameras": cameras,
        "detector": {
            "frames_analyzed": frames,
            "inference_ms_avg": if frames > 0 { micros as f64 / frames as f64 / 1000.0 } else { 0.0 },
            "errors": d.errors.load(Relaxed),
            "events_created": d.events_created.load(Relaxed),
            "events_lost": d.events_lost.load(Relaxed),
        },
        "spool": {
            "depth": s.spool.len(),
            "bytes": s.spool.bytes(),
            "depth_by_class": edge_spool::Class::ALL
                .into_iter()
                .map(|c| (c.as_str().to_owned(), json!(s.spool.depth().get(c))))
                .collect::<serde_json::Map<_, _>>(),
            "quarantined": s.spool.quarantined(),
            "evicted": s.stats.eviction.total.load(Relaxed),
        },
        "uplink": {
            "batches_sent": u.batches_sent.load(Relaxed),
            "events_acked": u.events_acked.load(Relaxed),
            "events_rejected": u.events_rejected.load(Relaxed),
            "failures": u.failures.load(Relaxed),
            "last_success_micros": (last_success > 0).then_some(last_success),
            "last_error": u.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        },
    }))
}
