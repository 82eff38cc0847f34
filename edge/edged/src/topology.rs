//! Builds every stage (all fallible setup happens here, before anything is spawned) and connects
//! them with bounded channels. Reads like the data-flow diagram in the crate docs.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use edge_core::Backoff;
use edge_detect::{OnnxRuntime, YoloDetector};
use edge_spool::{Spool, SpoolConfig};
use edge_uplink::{Uplink, UplinkConfig};
use edge_video::CameraStats;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Secret};
use crate::detect::DetectStage;
use crate::devices::DevicesBuilt;
use crate::sender::Sender;
use crate::stats::EdgeStats;
use crate::status::{StatusState, router};

/// A started edge: wait on `tasks` to drain, then flush `spool`.
#[derive(Debug)]
pub struct Running {
    pub tasks: TaskTracker,
    pub spool: Spool,
    pub status_addr: std::net::SocketAddr,
    /// Device MQTT port, when `[mqtt]` is configured.
    pub mqtt_addr: Option<std::net::SocketAddr>,
}

pub async fn spawn(cfg: &Config, token: Secret, cancel: &CancellationToken) -> anyhow::Result<Running> {
    // --- build: every fallible step, before any task starts ---
    let spool = Spool::open_with(&cfg.spool_path, SpoolConfig { max_bytes: cfg.spool_max_bytes })?;
    tracing::info!(path = %cfg.spool_path.display(), backlog = spool.len(), quarantined = spool.quarantined(), "Spool open.");
    if !cfg.cameras.is_empty() {
        edge_video::init()?;
    }
    let runtime = OnnxRuntime::load(&cfg.detector.onnxruntime)?;
    let detector = YoloDetector::build(&runtime, &cfg.detector.yolo)?;
    tracing::info!(
        model = %cfg.detector.yolo.model.display(),
        input = detector.input_size(),
        classes = detector.classes(),
        "Detector loaded."
    );
    if let Some(bad) = cfg.detector.classes.iter().find(|c| c.class_id as usize >= detector.classes()) {
        anyhow::bail!(
            "detector class {} ({}) does not exist in a model with {} classes",
            bad.class_id,
            bad.label,
            detector.classes()
        );
    }
    let uplink = Uplink::build(&UplinkConfig {
        url: cfg.cloud.url.clone(),
        token: token.expose().to_owned(),
        ca_cert: cfg.cloud.ca_cert.clone(),
        timeout: cfg.cloud.timeout,
    })?;
    let listener = tokio::net::TcpListener::bind(cfg.status_listen)
        .await
        .with_context(|| format!("bind status endpoint {}", cfg.status_listen))?;
    let status_addr = listener.local_addr()?;
    let devices = DevicesBuilt::build(cfg).await?;
    let mqtt_addr = devices.as_ref().map(DevicesBuilt::local_addr);
    let device_stats = devices.as_ref().map(|d| (d.stats.clone(), d.front_stats()));

    let camera_stats: Vec<(String, Arc<CameraStats>)> =
        cfg.cameras.iter().map(|c| (c.video.id.to_string(), Arc::new(CameraStats::default()))).collect();
    let stats = Arc::new(EdgeStats { cameras: camera_stats.clone(), ..Default::default() });

    // --- spawn: cameras → detect → spool → sender ---
    let tasks = TaskTracker::new();
    let spooled = Arc::new(Notify::new());
    let (frames_tx, frames_rx) = mpsc::channel(cfg.detector.queue);

    for (cam, (_, cam_stats)) in cfg.cameras.iter().zip(&camera_stats) {
        let handle =
            edge_video::spawn_camera(cam.video.clone(), frames_tx.clone(), cam_stats.clone(), cancel.child_token())
                .context("spawn camera thread")?;
        tasks.spawn_blocking(move || {
            let _ = handle.join();
        });
    }
    drop(frames_tx);

    let stage = DetectStage {
        model_name: YoloDetector::model_name(&cfg.detector.yolo.model),
        detector,
        classes: cfg.detector.classes.clone(),
        tenant: cfg.tenant,
        site: cfg.site,
        zones: cfg.cameras.iter().map(|c| (c.video.id.clone(), c.zone.clone())).collect(),
        spool: spool.clone(),
        spooled: spooled.clone(),
        stats: stats.detect.clone(),
        eviction: stats.eviction.clone(),
    };
    tasks.spawn_blocking(move || stage.run(frames_rx));

    let sender = Sender {
        spool: spool.clone(),
        uplink,
        spooled: spooled.clone(),
        batch_max: cfg.cloud.batch_max,
        backoff: Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
        stats: stats.uplink.clone(),
    };
    tasks.spawn(tracing::Instrument::instrument(
        sender.run(cancel.child_token()),
        tracing::info_span!("stage", stage = "uplink"),
    ));

    tasks.spawn(stats.eviction.clone().run(spool.clone(), cfg.tenant, cfg.site, spooled.clone(), cancel.child_token()));

    // --- devices: MQTT front → hub → devices (access decisions, locks, telemetry) → spool ---
    if let Some(d) = devices {
        d.spawn(&tasks, cancel, cfg, spool.clone(), spooled.clone());
    }

    let app = router(StatusState { stats, spool: spool.clone(), started: Instant::now(), devices: device_stats });
    let status_cancel = cancel.child_token();
    tasks.spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(status_cancel.cancelled_owned()).await {
            tracing::error!(%error, "Status endpoint failed.");
        }
    });
    tracing::info!(status = %status_addr, cameras = cfg.cameras.len(), cloud = %cfg.cloud.url, "Edge running.");
    Ok(Running { tasks, spool, status_addr, mqtt_addr })
}
