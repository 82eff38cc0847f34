//! Builds every stage (all fallible setup happens here, before anything is spawned) and connects
//! them with bounded channels. Reads like the data-flow diagram in the crate docs.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use edge_core::{AnalyzerConfig, Backoff, CameraAnalyzer};
use edge_detect::{BlazePersonDetector, OnnxRuntime, YoloDetector};
use edge_spool::{Spool, SpoolConfig};
use edge_uplink::{Uplink, UplinkConfig};
use edge_video::CameraStats;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{CameraEntry, Config, RulesSettings, Secret};
use crate::detect::{AnyDetector, CameraJob, DetectStage, FrameSlots};
use crate::devices::DevicesBuilt;
use crate::enrol::{EnrolPaths, Enroller, EnrolmentState, Identity};
use crate::media::CameraMedia;
use crate::sender::Sender;
use crate::stats::{AnalysisSnapshot, EdgeStats};
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

/// `token` is `None` for an edge waiting to be enrolled: it runs and spools everything, and its
/// uplink starts working when an enrolment arrives (see [`crate::enrol`]).
pub async fn spawn(cfg: &Config, token: Option<Secret>, cancel: &CancellationToken) -> anyhow::Result<Running> {
    // --- build: every fallible step, before any task starts ---
    let spool = Spool::open_with(
        &cfg.spool_path,
        SpoolConfig {
            max_bytes: cfg.spool_max_bytes,
            reserve_bytes: cfg.spool_reserve_bytes,
            floor_bytes: cfg.spool_floor_bytes(),
            free_space: Some(edge_video::record::statvfs_free_space),
        },
    )?;
    tracing::info!(path = %cfg.spool_path.display(), backlog = spool.len(), quarantined = spool.quarantined(), "Spool open.");
    if !cfg.cameras.is_empty() {
        edge_video::init()?;
    }
    let runtime = OnnxRuntime::load(&cfg.detector.onnxruntime)?;
    let mut detectors = Vec::new();
    for _ in 0..cfg.detector.workers.max(1) {
        detectors.push(match &cfg.detector.blaze {
            None => AnyDetector::Yolo(YoloDetector::build(&runtime, &cfg.detector.yolo)?),
            Some(b) => AnyDetector::Blaze(Box::new(BlazePersonDetector::build(&runtime, b)?)),
        });
    }
    let model_classes = match &detectors[0] {
        AnyDetector::Yolo(d) => {
            tracing::info!(model = %cfg.detector.yolo.model.display(), input = d.input_size(), classes = d.classes(), workers = detectors.len(), "YOLO detector loaded.");
            d.classes()
        }
        AnyDetector::Blaze(d) => {
            let c = d.config();
            tracing::info!(model = %c.model.display(), tile = c.tile, overlap = c.overlap, workers = detectors.len(), "BlazePose person detector loaded.");
            1
        }
    };
    if let Some(bad) = cfg.detector.classes.iter().find(|c| c.class_id as usize >= model_classes) {
        anyhow::bail!(
            "detector class {} ({}) does not exist in a model with {} classes",
            bad.class_id,
            bad.label,
            model_classes
        );
    }
    let uplink = match &token {
        Some(token) if !cfg.cloud.url.is_empty() => Uplink::build(&UplinkConfig {
            url: cfg.cloud.url.clone(),
            token: token.expose().to_owned(),
            ca_cert: cfg.cloud.ca_cert.clone(),
            timeout: cfg.cloud.timeout,
        })?,
        _ => {
            tracing::warn!("Not enrolled: running and spooling; enrol with `vigil-edge enrol` or the status page.");
            Uplink::unenrolled()
        }
    };
    let identity = Identity::known(cfg.tenant, cfg.site);
    let enroller = EnrolPaths::of(cfg).map(|paths| {
        let current = if uplink.is_enrolled() { EnrolmentState::load(&paths.enrolment).ok().flatten() } else { None };
        Enroller {
            paths,
            ca_cert: cfg.cloud.ca_cert.clone(),
            timeout: cfg.cloud.timeout,
            uplink: uplink.clone(),
            identity: identity.clone(),
            current: Arc::new(std::sync::RwLock::new(current)),
        }
    });
    let listener = tokio::net::TcpListener::bind(cfg.status_listen)
        .await
        .with_context(|| format!("bind status endpoint {}", cfg.status_listen))?;
    let status_addr = listener.local_addr()?;
    // The cloud's last configuration (kept on disk) takes the place of the local files' parts.
    let (kept, kept_access, kept_rules, kept_cameras, kept_devices) =
        match cfg.cloud.config_sync.then(|| crate::downlink::load(&cfg.cloud.config_state)).flatten() {
            Some((doc, checked)) => (Some(doc), checked.access, checked.rules, checked.cameras, checked.devices),
            None => (None, None, None, None, None),
        };
    let mut devices = DevicesBuilt::build(cfg, kept_access, kept_devices).await?;
    let rules = match (&cfg.rules, kept_rules) {
        (Some(r), Some(compiled)) => Some((r.clone(), compiled)),
        (Some(r), None) => {
            let compiled = match &r.file {
                Some(file) => {
                    let set = edge_rules::RuleSet::load(file).with_context(|| format!("rules {}", file.display()))?;
                    let compiled = set.compile().map_err(|problems| {
                        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                        anyhow::anyhow!("rules {}:\n  - {}", file.display(), list.join("\n  - "))
                    })?;
                    tracing::info!(file = %file.display(), revision = compiled.revision(), rules = compiled.len(), "Rules loaded.");
                    compiled
                }
                None => edge_rules::CompiledRules::empty(),
            };
            Some((r.clone(), compiled))
        }
        // No rule file: the stage still runs when the cloud may push rules.
        (None, kept) if cfg.cloud.config_sync => Some((
            RulesSettings {
                file: None,
                history: cfg.spool_path.parent().unwrap_or(&cfg.spool_path).join("rules-history.jsonl"),
                lockdown_priority: crate::config::DEFAULT_RULE_LOCKDOWN_PRIORITY,
            },
            kept.unwrap_or_else(edge_rules::CompiledRules::empty),
        )),
        (None, _) => None,
    };
    let (tap, tap_rx) = match &rules {
        Some(_) => {
            let (tap, rx) = crate::rules::EventTap::new(4096);
            (tap, Some(rx))
        }
        None => (crate::rules::EventTap::default(), None),
    };
    let rules_stats = rules.as_ref().map(|_| Arc::new(crate::rules::RulesStats::default()));
    let mqtt_addr = devices.as_ref().map(DevicesBuilt::local_addr);
    let device_stats = devices.as_ref().map(|d| (d.stats.clone(), d.front_stats()));

    let camera_stats: Vec<(String, Arc<CameraStats>)> =
        cfg.cameras.iter().map(|c| (c.video.id.to_string(), Arc::new(CameraStats::default()))).collect();
    let analysis_stats: Vec<Arc<Mutex<AnalysisSnapshot>>> =
        cfg.cameras.iter().map(|_| Arc::new(Mutex::new(AnalysisSnapshot::default()))).collect();
    let stats =
        Arc::new(EdgeStats { cameras: camera_stats.clone(), analysis: analysis_stats.clone(), ..Default::default() });
    if let Some(d) = &mut devices {
        d.eviction = stats.eviction.clone();
    }
    let model_name = detectors[0].name();
    let media_settings = cfg.media.clone().map(Arc::new);
    if let Some(m) = &media_settings {
        std::fs::create_dir_all(&m.dir).with_context(|| format!("media directory {}", m.dir.display()))?;
    }
    if cfg.cameras.iter().any(|c| c.record.is_some()) {
        edge_video::record::init_record()?;
    }
    let bandwidth = Arc::new(crate::bandwidth::Bandwidth::new(cfg.cloud.max_upload_kbps));
    let upload_queue = match &media_settings {
        Some(m) if m.upload => {
            let dir = m.upload_queue_dir();
            let queue = crate::upload::UploadQueue::open(&dir)
                .with_context(|| format!("media upload queue {}", dir.display()))?;
            Some(queue)
        }
        _ => None,
    };

    // --- spawn: recorders; cameras → relays → frame slots → detect workers → spool → sender ---
    let tasks = TaskTracker::new();
    let spooled = Arc::new(Notify::new());
    let (record_tx, record_rx) = mpsc::unbounded_channel();
    let mut recorders = Vec::new();
    let mut record_stats = Vec::new();
    for cam in &cfg.cameras {
        let (Some(r), Some(m)) = (&cam.record, &media_settings) else { continue };
        let stats = Arc::new(edge_video::RecordStats::default());
        let continuous = r.continuous.map(|(segment, max_age, max_bytes)| edge_video::ContinuousConfig {
            dir: m.dir.join("recordings").join(&*cam.video.id),
            segment,
            retention: edge_video::Retention {
                max_age: Some(max_age),
                max_total_bytes: Some(max_bytes),
                reserve_bytes: m.reserve_bytes,
            },
            free_space: Arc::new(edge_video::record::statvfs_free_space),
        });
        let rc = edge_video::RecordConfig {
            id: cam.video.id.clone(),
            url: r.url.clone(),
            transport: cam.video.transport,
            preroll: r.preroll,
            preroll_max_bytes: 64 << 20,
            writer_queue: 512,
            stall_timeout: cam.video.stall_timeout,
            reconnect_min: cam.video.reconnect_min,
            reconnect_max: cam.video.reconnect_max,
            continuous,
        };
        let (recorder, handle) = edge_video::spawn_recorder(rc, record_tx.clone(), stats.clone(), cancel.child_token())
            .context("spawn recorder")?;
        tasks.spawn_blocking(move || {
            let _ = handle.join();
        });
        recorders.push((cam.video.id.to_string(), recorder));
        record_stats.push((cam.video.id.to_string(), stats));
    }
    drop(record_tx);
    if let Some(m) = &media_settings {
        tasks.spawn(crate::media::media_task(
            record_rx,
            (cfg.tenant, cfg.site),
            m.clone(),
            spool.clone(),
            spooled.clone(),
            upload_queue.clone(),
        ));
        tasks.spawn(crate::media::janitor(m.clone(), cancel.child_token()));
    }
    let jobs = cfg
        .cameras
        .iter()
        .zip(&analysis_stats)
        .map(|(cam, snap)| {
            let id = cam.video.id.clone();
            let media = match &media_settings {
                Some(m) => {
                    let rec = recorders.iter().find(|(c, _)| **c == *id).map(|(_, r)| r.clone());
                    CameraMedia::new(id, rec, m.clone(), upload_queue.clone())
                }
                None => CameraMedia::none(id),
            };
            let mut analyzer = CameraAnalyzer::new(analyzer_config(cfg, cam, &model_name));
            if let Some((_, scene)) = kept_cameras.iter().flatten().find(|(c, _)| **c == *cam.video.id) {
                analyzer.reconfigure(scene.clone());
            }
            (CameraJob { analyzer, media }, snap.clone())
        })
        .collect();
    let slots = FrameSlots::new(jobs);

    for (cam, (_, cam_stats)) in cfg.cameras.iter().zip(&camera_stats) {
        let (frames_tx, frames_rx) = mpsc::channel(cfg.detector.queue);
        let handle = edge_video::spawn_camera(cam.video.clone(), frames_tx, cam_stats.clone(), cancel.child_token())
            .context("spawn camera thread")?;
        tasks.spawn_blocking(move || {
            let _ = handle.join();
        });
        tasks.spawn(crate::detect::relay(frames_rx, slots.clone()));
    }

    let slots_for_remote = slots.clone();
    let slots_for_config = slots.clone();
    let stage = DetectStage {
        detectors,
        shared: crate::detect::Shared {
            slots,
            spool: spool.clone(),
            spooled: spooled.clone(),
            stats: stats.detect.clone(),
            eviction: stats.eviction.clone(),
            min_crop: cfg.detector.min_crop,
            tap: tap.clone(),
        },
    };
    tasks.spawn_blocking(move || stage.run());

    let sender = Sender {
        spool: spool.clone(),
        uplink: uplink.clone(),
        spooled: spooled.clone(),
        batch_max: cfg.cloud.batch_max,
        backoff: Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
        stats: stats.uplink.clone(),
        identity,
        bandwidth: bandwidth.clone(),
    };
    if let Some(enroller) = &enroller {
        tasks.spawn(enroller.clone().watch(cancel.child_token()));
    }
    tasks.spawn(tracing::Instrument::instrument(
        sender.run(cancel.child_token()),
        tracing::info_span!("stage", stage = "uplink"),
    ));
    // --- media: upload queue → uploader (one at a time, paced, after events) → cloud → object store ---
    if let (Some(queue), Some(m)) = (&upload_queue, &media_settings) {
        let uploader = crate::upload::Uploader::new(
            queue.clone(),
            m.dir.clone(),
            uplink.clone(),
            bandwidth.clone(),
            stats.media_upload.clone(),
            Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
        );
        tasks.spawn(tracing::Instrument::instrument(
            uploader.run(cancel.child_token()),
            tracing::info_span!("stage", stage = "media-upload"),
        ));
    }

    let heartbeat = crate::heartbeat::Heartbeat {
        uplink: uplink.clone(),
        stats: stats.clone(),
        spool: spool.clone(),
        spool_dir: cfg.spool_path.clone(),
        every: cfg.cloud.heartbeat,
        started: Instant::now(),
    };
    tasks.spawn(tracing::Instrument::instrument(
        heartbeat.run(cancel.child_token()),
        tracing::info_span!("stage", stage = "heartbeat"),
    ));
    tasks.spawn(stats.clone().sample_rates(std::time::Duration::from_secs(2), cancel.child_token()));
    tasks.spawn(stats.eviction.clone().run(spool.clone(), cfg.tenant, cfg.site, spooled.clone(), cancel.child_token()));

    // --- devices: MQTT front → hub → devices (access decisions, locks, telemetry) → spool ---
    let control = devices.as_ref().map(|d| d.control.clone());
    let registry = devices.as_ref().map(DevicesBuilt::registry);
    let doors = devices.as_ref().map(|d| d.doors.clone()).unwrap_or_default();
    // --- remote commands: cloud queue (long-poll) → devices stage → acknowledgement ---
    let remote = crate::remote::RemoteStage {
        uplink: uplink.clone(),
        control: control.clone(),
        doors: doors.clone(),
        backoff: Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
        slots: Some(slots_for_remote),
    };
    tasks.spawn(tracing::Instrument::instrument(
        remote.run(cancel.child_token()),
        tracing::info_span!("stage", stage = "remote"),
    ));
    if let Some(d) = devices {
        d.spawn(&tasks, cancel, cfg, spool.clone(), spooled.clone(), tap.clone());
    }

    // --- down link: the cloud's configuration (long-poll) → devices + rules stages, kept on disk ---
    let (reload_tx, reload_rx) = mpsc::channel(1);
    if cfg.cloud.config_sync {
        let downlink = crate::downlink::Downlink {
            uplink: uplink.clone(),
            path: cfg.cloud.config_state.clone(),
            current: kept,
            control: control.clone(),
            rules: reload_tx,
            slots: Some(slots_for_config),
            registry,
            local: crate::downlink::LocalFiles {
                access: cfg.access.as_ref().map(|a| a.site_document.clone()),
                rules: cfg.rules.as_ref().and_then(|r| r.file.clone()),
                cameras: cfg.cameras.iter().map(|c| (c.video.id.to_string(), c.scene.clone())).collect(),
                devices: cfg.mqtt.as_ref().map(|m| m.devices.clone()),
            },
            backoff: Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
            stats: stats.config.clone(),
        };
        tasks.spawn(tracing::Instrument::instrument(
            downlink.run(cancel.child_token()),
            tracing::info_span!("stage", stage = "downlink"),
        ));
    }

    // --- rules: every event (tap) → engine → doors, devices, alerts, recordings ---
    if let (Some((settings, compiled)), Some(rx), Some(stats)) = (rules, tap_rx, rules_stats.clone()) {
        let (history_tx, history_rx) = mpsc::channel(4096);
        tasks.spawn(tracing::Instrument::instrument(
            crate::rules::upload_history(
                history_rx,
                uplink.clone(),
                Backoff::new(cfg.cloud.retry_min, cfg.cloud.retry_max),
                cancel.child_token(),
            ),
            tracing::info_span!("stage", stage = "rule_history"),
        ));
        stats.revision.store(compiled.revision(), std::sync::atomic::Ordering::Relaxed);
        stats.rules.store(compiled.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let stage = crate::rules::RulesStage {
            tenant: cfg.tenant,
            site: cfg.site,
            engine: edge_rules::Engine::new(compiled),
            control,
            doors,
            cameras: cfg.cameras.iter().map(|c| (c.video.id.to_string(), c.zone.clone())).collect(),
            recording: media_settings.as_ref().filter(|_| !recorders.is_empty()).map(|m| {
                Arc::new(crate::media::Recorders { by_camera: recorders.clone(), dir: m.dir.clone() })
                    as Arc<dyn crate::rules::Recording>
            }),
            lockdown_priority: settings.lockdown_priority,
            spool: spool.clone(),
            spooled: spooled.clone(),
            history: settings.history.clone(),
            stats,
            uploads: Some(history_tx),
        };
        tasks.spawn(tracing::Instrument::instrument(
            stage.run(rx, reload_rx, cancel.child_token()),
            tracing::info_span!("stage", stage = "rules"),
        ));
    }

    let app = router(StatusState {
        stats,
        spool: spool.clone(),
        started: Instant::now(),
        devices: device_stats,
        rules: rules_stats.map(|s| (s, tap.clone())),
        recorders: record_stats,
        cloud: crate::status_page::CloudView {
            uplink: uplink.clone(),
            enroller,
            configured: (cfg.cloud.url.clone(), cfg.tenant, cfg.site),
        },
    });
    let status_cancel = cancel.child_token();
    tasks.spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(status_cancel.cancelled_owned()).await {
            tracing::error!(%error, "Status endpoint failed.");
        }
    });
    tracing::info!(status = %status_addr, cameras = cfg.cameras.len(), cloud = %cfg.cloud.url, "Edge running.");
    Ok(Running { tasks, spool, status_addr, mqtt_addr })
}

/// One camera's analysis settings from the validated configuration.
fn analyzer_config(cfg: &Config, cam: &CameraEntry, model: &str) -> AnalyzerConfig {
    let mut a =
        AnalyzerConfig::new(cfg.tenant, cfg.site, cam.video.id.clone(), model.to_owned(), cfg.detector.classes.clone());
    a.zone.clone_from(&cam.zone);
    a.motion.clone_from(&cam.scene.motion);
    a.full_frame_every_us = cam.scene.full_frame_every_us;
    a.full_frame_parts = cfg.detector.full_frame_parts;
    a.stationary_check_us = cfg.detector.stationary_check_us;
    a.tracker.stationary_after_us = cfg.detector.stationary_after_us;
    a.tracker.stationary_max_age_us = cfg.detector.stationary_max_age_us;
    a.filter = cam.scene.filter.clone();
    a.lines.clone_from(&cam.scene.lines);
    a.zones.clone_from(&cam.scene.zones);
    a.mode = cfg.detector.mode;
    a.update_every_us = cfg.detector.update_every_us;
    a
}
