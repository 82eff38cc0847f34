//! Local status endpoint: `GET /status` (JSON counters), `GET /metrics` (Prometheus text format)
//! and `GET /health`.

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
    /// Rules stage counters and the tap feeding it, when `[rules]` is configured.
    pub rules: Option<(Arc<crate::rules::RulesStats>, crate::rules::EventTap)>,
    /// Recording cameras' counters, by camera id.
    pub recorders: Vec<(String, Arc<edge_video::RecordStats>)>,
    /// The cloud identity and enrolment (for `/status` and the page at `/`).
    pub cloud: crate::status_page::CloudView,
}

/// Events waiting per priority class, by class name (read once).
pub(crate) fn depth_by_class(spool: &Spool) -> Value {
    let depth = spool.depth();
    Value::Object(edge_spool::Class::ALL.into_iter().map(|c| (c.as_str().to_owned(), json!(depth.get(c)))).collect())
}

pub fn router(state: StatusState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/rules/history", get(rule_history))
        .route("/health", get(|| async { "ok\n" }))
        .merge(crate::status_page::routes())
        .with_state(state)
}

async fn status(State(s): State<StatusState>) -> Json<Value> {
    let cameras: Vec<Value> = s
        .stats
        .cameras
        .iter()
        .enumerate()
        .map(|(i, (id, c))| {
            let snap = c.snapshot();
            let analysis = s.stats.analysis.get(i).map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone());
            let lines: Vec<Value> = analysis
                .as_ref()
                .map(|a| a.lines.iter().map(|(l, i, o)| json!({ "id": l, "in": i, "out": o })).collect())
                .unwrap_or_default();
            let record = s.recorders.iter().find(|(c, _)| c == id).map(|(_, r)| {
                let r = r.snapshot();
                json!({
                    "state": r.state.as_str(),
                    "disk_paused": r.disk_paused,
                    "bytes_written": r.bytes_written,
                    "clips_written": r.clips_written,
                    "clips_failed": r.clips_failed,
                    "segments_written": r.segments_written,
                    "segments_deleted": r.segments_deleted,
                    "samples_dropped": r.samples_dropped,
                    "reconnects": r.reconnects,
                    "last_error": r.last_error,
                })
            });
            json!({
                "record": record,
                "analysis": analysis.map(|a| json!({
                    "frames": a.frames,
                    "skipped_no_motion": a.skipped,
                    "analysed_regions": a.regions,
                    "analysed_full": a.full,
                    "dropped_oldest": a.dropped_oldest,
                    "motion_episodes": a.motion_episodes,
                    "live_objects": a.live_objects,
                    "paused": a.paused,
                    "lines": lines,
                })),
                "fps_in": s.stats.fps(i).0,
                "fps_out": s.stats.fps(i).1,
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
    let disk = s.spool.disk();
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
    let rules = s.rules.as_ref().map(|(r, tap)| {
        json!({
            "revision": r.revision.load(Relaxed),
            "rules": r.rules.load(Relaxed),
            "fired": r.fired.load(Relaxed),
            "suppressed": r.suppressed.load(Relaxed),
            "actions_failed": r.actions_failed.load(Relaxed),
            "events_seen": r.events_seen.load(Relaxed),
            "events_skipped": tap.skipped(),
        })
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "cloud": s.cloud.summary(u),
        "devices": devices,
        "rules": rules,
        "uptime_secs": s.started.elapsed().as_secs(),
        "cameras": cameras,
        "detector": {
            "frames_analyzed": frames,
            "inference_ms_avg": if frames > 0 { micros as f64 / frames as f64 / 1000.0 } else { 0.0 },
            "tiles_shared": d.tiles_shared.load(Relaxed),
            "errors": d.errors.load(Relaxed),
            "events_created": d.events_created.load(Relaxed),
            "events_lost": d.events_lost.load(Relaxed),
            "analysis_latency_ms": {
                "p50": d.analysis_latency.quantile_ms(0.5),
                "p95": d.analysis_latency.quantile_ms(0.95),
            },
            "event_latency_ms": {
                "p50": d.event_latency.quantile_ms(0.5),
                "p95": d.event_latency.quantile_ms(0.95),
            },
        },
        "spool": {
            "depth": s.spool.len(),
            "bytes": s.spool.bytes(),
            "depth_by_class": depth_by_class(&s.spool),
            "quarantined": s.spool.quarantined(),
            "evicted": s.stats.eviction.total.load(Relaxed),
        },
        "disk": {
            "free_bytes": disk.free_bytes,
            "low": disk.low,
            "full": disk.full,
            "appends_refused": s.spool.refused_disk_full(),
        },
        "uplink": {
            "batches_sent": u.batches_sent.load(Relaxed),
            "events_acked": u.events_acked.load(Relaxed),
            "events_rejected": u.events_rejected.load(Relaxed),
            "failures": u.failures.load(Relaxed),
            "last_success_micros": (last_success > 0).then_some(last_success),
            "last_error": u.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        },
        "config": s.stats.config.snapshot(),
        "media_upload": crate::heartbeat::media_upload(&s.stats.media_upload),
    }))
}

/// Prometheus exposition of the per-camera and pipeline counters.
async fn metrics(State(s): State<StatusState>) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP vigil_{name} {help}\n# TYPE vigil_{name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "vigil_{name}{labels} {v}");
        }
    };
    let label = |id: &str| format!("{{camera=\"{}\"}}", id.replace(['\\', '"', '\n'], "_"));
    let cams: Vec<(String, edge_video::CameraSnapshot, crate::stats::AnalysisSnapshot, (f64, f64))> = s
        .stats
        .cameras
        .iter()
        .enumerate()
        .map(|(i, (id, c))| {
            let a = s.stats.analysis.get(i).map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone());
            (id.clone(), c.snapshot(), a.unwrap_or_default(), s.stats.fps(i))
        })
        .collect();
    let rows = |f: &dyn Fn(&edge_video::CameraSnapshot, &crate::stats::AnalysisSnapshot) -> f64| {
        cams.iter().map(|(id, c, a, _)| (label(id), f(c, a))).collect::<Vec<_>>()
    };
    let fps = |out: bool| cams.iter().map(|(id, _, _, f)| (label(id), if out { f.1 } else { f.0 })).collect::<Vec<_>>();
    family(
        "camera_up",
        "gauge",
        "1 while the camera streams",
        rows(&|c, _| f64::from(u8::from(c.state == edge_video::CameraState::Streaming))),
    );
    family("camera_fps_in", "gauge", "frames decoded per second", fps(false));
    family("camera_fps_out", "gauge", "frames handed to analysis per second", fps(true));
    family("camera_frames_decoded_total", "counter", "frames decoded", rows(&|c, _| c.frames_decoded as f64));
    family(
        "camera_frames_dropped_total",
        "counter",
        "frames dropped before analysis",
        rows(&|c, a| (c.frames_dropped + a.dropped_oldest) as f64),
    );
    family("camera_reconnects_total", "counter", "reconnections", rows(&|c, _| c.reconnects as f64));
    family(
        "analysis_frames_skipped_total",
        "counter",
        "frames without motion, not given to the detector",
        rows(&|_, a| a.skipped as f64),
    );
    family(
        "analysis_frames_regions_total",
        "counter",
        "frames analysed on motion regions only",
        rows(&|_, a| a.regions as f64),
    );
    family("analysis_frames_full_total", "counter", "frames analysed in full", rows(&|_, a| a.full as f64));
    family("analysis_live_objects", "gauge", "objects being tracked", rows(&|_, a| a.live_objects as f64));
    let mut line_rows = Vec::new();
    for (id, _, a, _) in &cams {
        for (line, i, o) in &a.lines {
            let cam = id.replace(['\\', '"', '\n'], "_");
            let line = line.replace(['\\', '"', '\n'], "_");
            line_rows.push((format!("{{camera=\"{cam}\",line=\"{line}\",direction=\"in\"}}"), *i as f64));
            line_rows.push((format!("{{camera=\"{cam}\",line=\"{line}\",direction=\"out\"}}"), *o as f64));
        }
    }
    family("line_crossings_total", "counter", "objects that crossed a counting line", line_rows);
    let d = &s.stats.detect;
    family(
        "detector_frames_total",
        "counter",
        "detector runs",
        vec![(String::new(), d.frames_analyzed.load(Relaxed) as f64)],
    );
    family(
        "detector_tiles_shared_total",
        "counter",
        "tiles of one worker's frame run by another, idle worker",
        vec![(String::new(), d.tiles_shared.load(Relaxed) as f64)],
    );
    family(
        "detector_errors_total",
        "counter",
        "failed detector runs",
        vec![(String::new(), d.errors.load(Relaxed) as f64)],
    );
    family(
        "events_created_total",
        "counter",
        "analysis events written to the spool",
        vec![(String::new(), d.events_created.load(Relaxed) as f64)],
    );
    family(
        "events_lost_total",
        "counter",
        "events that could not be spooled",
        vec![(String::new(), d.events_lost.load(Relaxed) as f64)],
    );
    family("spool_depth", "gauge", "events waiting for the cloud", vec![(String::new(), s.spool.len() as f64)]);
    let m = &s.stats.media_upload;
    let one = |v: &std::sync::atomic::AtomicU64| vec![(String::new(), v.load(Relaxed) as f64)];
    family("media_upload_queued", "gauge", "clips and snapshots waiting to be uploaded", one(&m.queued));
    family("media_uploaded_total", "counter", "clips and snapshots stored in the cloud", one(&m.uploaded));
    family("media_upload_bytes_total", "counter", "media bytes sent to the cloud", one(&m.bytes_sent));
    family("media_upload_parts_total", "counter", "media parts sent to the cloud", one(&m.parts_sent));
    family("media_upload_missing_total", "counter", "media files deleted before upload", one(&m.missing));
    family("media_upload_failed_total", "counter", "media uploads the cloud refused", one(&m.failed));
    family("media_upload_retries_total", "counter", "media upload attempts retried later", one(&m.retries));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    rule: Option<String>,
    limit: Option<usize>,
}

/// `GET /rules/history?rule=<id>&limit=<n>`: the newest executions first (404 without `[rules]`).
async fn rule_history(
    State(s): State<StatusState>,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> Result<Json<Value>, axum::http::StatusCode> {
    let Some((r, _)) = &s.rules else { return Err(axum::http::StatusCode::NOT_FOUND) };
    let limit = q.limit.unwrap_or(100).min(500);
    let recent = r.recent.lock().unwrap_or_else(|p| p.into_inner());
    let items: Vec<&edge_rules::Execution> =
        recent.iter().rev().filter(|e| q.rule.as_deref().is_none_or(|id| e.rule_id == id)).take(limit).collect();
    Ok(Json(json!({ "items": items })))
}
