//! Site capacity: how many 768×576 cameras one box analyses at 5 frames/s without dropping analysis
//! frames, through the daemon's real analysis stage (per-camera motion gating, region crops or
//! tiles, the shared drop-oldest worker pool, tracking, the spool), and the frame → event latency.
//! Prints a table.
//!
//! `cargo bench -p edged --bench capacity` (needs `tests/setup/fixtures.sh`).
//! Env: `VIGIL_BENCH_DETECTOR` (`yolo`, `blazepose` or `both`; default both),
//! `VIGIL_BENCH_CAMERAS` (default `4,8,12,16,24,32`), `VIGIL_BENCH_SECS` (paced seconds per run,
//! default 15), `VIGIL_BENCH_DUTY` (fraction of the time people are in view, default 0.25),
//! `VIGIL_BENCH_WORKERS` (default 1), `VIGIL_BENCH_THREADS` (ONNX threads per worker, default 1),
//! `VIGIL_BENCH_MIN_CROP` (smallest crop side in pixels, as `detector.min_crop`; default 160),
//! `VIGIL_BENCH_BLAZE_MODEL` (`int8`, the default, or `fp32`),
//! `VIGIL_BENCH_FULL_SECS` (the periodic whole-frame look, as `motion.full_frame_secs`; default 5),
//! `VIGIL_BENCH_PARTS` (the periodic whole-frame look in parts, as `detector.full_frame_parts`; default 4
//! for BlazePose, 1 for YOLO), `VIGIL_BENCH_WARMUP` (seconds before latencies are recorded, default 2: at
//! start every camera's first whole-frame look lands at once, about 200 ms of backlog at 40 cameras; drops
//! count from the start), `VIGIL_BENCH_IN_STEP=1` (every camera's frame offered at the same instant, the worst burst;
//! by default cameras are out of step, as unsynchronised cameras are), `VIGIL_BENCH_GATED_ONLY=1` (leave
//! out the every-frame reference row), `VIGIL_BENCH_STATIONARY_CHECK` (seconds between looks at a
//! stationary object, as `detector.stationary_check_secs`; default 1).
//!
//! The scene: real CCTV footage (vtest). Each camera shows people walking for `duty` of every 40 s
//! and its empty background otherwise (the per-pixel median of the clip: the same room, nobody in
//! it), with every camera at a different point of the clip and of its cycle — an office where each
//! camera sees someone a quarter of the time. Frames are offered in real time at 5 frames/s per
//! camera. A run "sustains" its cameras when fewer than 1 % of frames are dropped.
//!
//! The seed's stack analyses every frame in full; the same box's "every frame" capacity is the
//! full-frame analysis rate / 5 (from `--bench analysis`, or the `all frames` row here).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_core::{AnalyzerConfig, CameraAnalyzer, ClassRule, Frame};
use edge_detect::{BlazeConfig, BlazePersonDetector, OnnxRuntime, YoloConfig, YoloDetector};
use edged::detect::{AnyDetector, CameraJob, DetectStage, FrameSlots, Shared};
use edged::media::CameraMedia;
use edged::stats::{AnalysisSnapshot, DetectStats};
use tokio::sync::Notify;
use uuid::Uuid;
use vigil_proto::{EventKind, Timestamp};

const FPS: f64 = 5.0;
const CYCLE_SECS: f64 = 40.0;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

/// Per-pixel median of a few frames spread over the clip: the scene without the people.
fn background(frames: &[edge_core::Frame]) -> Vec<u8> {
    let picks: Vec<&edge_core::Frame> = frames.iter().step_by((frames.len() / 15).max(1)).collect();
    let n = frames[0].rgb.len();
    let mut out = vec![0u8; n];
    let mut v = Vec::with_capacity(picks.len());
    for (i, o) in out.iter_mut().enumerate() {
        v.clear();
        v.extend(picks.iter().map(|f| f.rgb[i]));
        v.sort_unstable();
        *o = v[v.len() / 2];
    }
    out
}

struct Run {
    offered: u64,
    analysed: u64,
    infer_ms: f64,
    skipped: u64,
    dropped: u64,
    p50: Option<u64>,
    p95: Option<u64>,
    ev_p95: Option<u64>,
    events: u64,
}

fn detector(kind: &str, rt: &OnnxRuntime, fixtures: &Path, threads: usize) -> AnyDetector {
    match kind {
        "yolo" => AnyDetector::Yolo(
            YoloDetector::build(
                rt,
                &YoloConfig {
                    model: fixtures.join("yolov8n-320-nudenet.onnx"),
                    input_size: Some(320),
                    score_threshold: 0.25,
                    iou_threshold: 0.45,
                    threads,
                },
            )
            .unwrap(),
        ),
        _ => {
            let mut cfg = BlazeConfig::new(fixtures.join(blaze_model().0));
            cfg.threads = threads;
            AnyDetector::Blaze(Box::new(BlazePersonDetector::build(rt, &cfg).unwrap()))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    kind: &str,
    cameras: usize,
    secs: f64,
    duty: f64,
    gating: bool,
    workers: usize,
    threads: usize,
    rt: &OnnxRuntime,
    fixtures: &Path,
    clip: &[edge_core::Frame],
    empty: &Arc<Vec<u8>>,
) -> Run {
    let class = match kind {
        "yolo" => {
            ClassRule { class_id: 9, label: "FEET_COVERED".into(), kind: EventKind::DetectionPerson, min_score: 0.25 }
        }
        _ => ClassRule { class_id: 0, label: "person".into(), kind: EventKind::DetectionPerson, min_score: 0.5 },
    };
    let snaps: Vec<Arc<Mutex<AnalysisSnapshot>>> = (0..cameras).map(|_| Arc::default()).collect();
    let analyzers = (0..cameras)
        .map(|c| {
            let mut cfg = AnalyzerConfig::new(
                Uuid::nil(),
                Uuid::nil(),
                Arc::from(format!("cam-{c}")),
                kind.into(),
                vec![class.clone()],
            );
            if !gating {
                cfg.motion = None;
            }
            cfg.full_frame_every_us = (env("VIGIL_BENCH_FULL_SECS", 5.0) * 1e6) as i64;
            // as the daemon's `detector.full_frame_parts` default
            cfg.full_frame_parts = env("VIGIL_BENCH_PARTS", if kind == "blazepose" { 4 } else { 1 });
            cfg.stationary_check_us = (env("VIGIL_BENCH_STATIONARY_CHECK", 1.0) * 1e6) as i64;
            let media = CameraMedia::none(cfg.camera.clone());
            (CameraJob { analyzer: CameraAnalyzer::new(cfg), media }, snaps[c].clone())
        })
        .collect();
    let slots = FrameSlots::new(analyzers);
    let dir = tempfile::tempdir().unwrap();
    let spool = edge_spool::Spool::open(dir.path()).unwrap();
    let stats = Arc::new(DetectStats::default());
    let shared = Shared {
        slots: slots.clone(),
        spool,
        spooled: Arc::new(Notify::new()),
        stats: stats.clone(),
        eviction: Default::default(),
        min_crop: env("VIGIL_BENCH_MIN_CROP", 160),
        tap: Default::default(),
    };
    let stage =
        DetectStage { detectors: (0..workers).map(|_| detector(kind, rt, fixtures, threads)).collect(), shared };
    let worker = std::thread::spawn(move || stage.run());

    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / FPS);
    let mut offered = 0u64;
    let mut tick = 0u64;
    let in_step = std::env::var_os("VIGIL_BENCH_IN_STEP").is_some_and(|v| v == "1");
    let warmup: f64 = env("VIGIL_BENCH_WARMUP", 2.0);
    let mut warm = false;
    while start.elapsed().as_secs_f64() < secs {
        let t = tick as f64 / FPS;
        for c in 0..cameras {
            // Cameras are not in step: camera c's frames arrive c/cameras of a period after camera 0's
            // (`VIGIL_BENCH_IN_STEP=1`: all at once, the worst burst).
            let lag = if in_step { 0.0 } else { c as f64 / cameras as f64 };
            let due = start + period * tick as u32 + period.mul_f64(lag);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // Each camera at its own point of the footage and of its busy/quiet cycle.
            let phase = (t + c as f64 * CYCLE_SECS / cameras as f64) % CYCLE_SECS;
            let busy = phase < duty * CYCLE_SECS;
            let src = &clip[(tick as usize * 2 + c * 97) % clip.len()];
            let rgb = if busy { src.rgb.clone() } else { empty.as_ref().clone() };
            slots.offer(Frame {
                camera: Arc::from(format!("cam-{c}")),
                seq: tick,
                captured_at: Timestamp::from(chrono::Utc::now()),
                width: src.width,
                height: src.height,
                rgb,
            });
            offered += 1;
        }
        tick += 1;
        if !warm && start.elapsed().as_secs_f64() >= warmup {
            // latencies from here on: the first second has every camera's first whole-frame look at once
            stats.analysis_latency.reset();
            stats.event_latency.reset();
            warm = true;
        }
        let next = start + period * tick as u32;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    for _ in 0..cameras {
        slots.close_one();
    }
    worker.join().unwrap();
    let (mut skipped, mut dropped) = (0, 0);
    for s in &snaps {
        let s = s.lock().unwrap();
        skipped += s.skipped;
        dropped += s.dropped_oldest;
    }
    Run {
        offered,
        analysed: stats.frames_analyzed.load(Relaxed),
        infer_ms: stats.inference_micros_total.load(Relaxed) as f64
            / 1e3
            / stats.frames_analyzed.load(Relaxed).max(1) as f64,
        skipped,
        dropped,
        p50: stats.analysis_latency.quantile_ms(0.5),
        p95: stats.analysis_latency.quantile_ms(0.95),
        ev_p95: stats.event_latency.quantile_ms(0.95),
        events: stats.events_created.load(Relaxed),
    }
}

/// The BlazePose model file and its row label: `VIGIL_BENCH_BLAZE_MODEL` = `int8` (default) or `fp32`.
fn blaze_model() -> (&'static str, &'static str) {
    match std::env::var("VIGIL_BENCH_BLAZE_MODEL").as_deref() {
        Ok("fp32") => ("blazepose-person.onnx", "blazepose fp32"),
        _ => ("blazepose-person-int8.onnx", "blazepose int8"),
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn main() {
    let fixtures = PathBuf::from(std::env::var("VIGIL_FIXTURES").unwrap_or_else(|_| ".fixtures".into()));
    let secs: f64 = env("VIGIL_BENCH_SECS", 15.0);
    let duty: f64 = env("VIGIL_BENCH_DUTY", 0.25);
    let workers: usize = env("VIGIL_BENCH_WORKERS", 1);
    let threads: usize = env("VIGIL_BENCH_THREADS", 1);
    let kinds: Vec<String> = match std::env::var("VIGIL_BENCH_DETECTOR").as_deref() {
        Ok("yolo") => vec!["yolo".into()],
        Ok("blazepose") => vec!["blazepose".into()],
        _ => vec!["yolo".into(), "blazepose".into()],
    };
    let clip = edge_video::decode_file(&fixtures.join("vtest.mp4"), 400).expect("decode vtest.mp4");
    let empty = Arc::new(background(&clip));
    let rt = OnnxRuntime::load(&fixtures.join("libonnxruntime.so")).expect("onnx runtime");
    println!(
        "{}x{} cameras at {FPS} frames/s, people in view {:.0} % of the time, {workers} worker(s) x {threads} ONNX thread(s), {secs} s per run",
        clip[0].width,
        clip[0].height,
        duty * 100.0
    );
    println!(
        "| detector | gating | cameras | offered | analysed | inference ms per analysed frame | skipped (no motion) | dropped | drop % | analysis p50 ms | p95 ms | event p95 ms | events | sustained |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for kind in &kinds {
        let default_cams = if kind == "yolo" { "4,8,16,24,32,40" } else { "2,4,6,8,10,12" };
        let cams = list(if kind == "yolo" { "VIGIL_BENCH_CAMERAS" } else { "VIGIL_BENCH_BLAZE_CAMERAS" }, default_cams);
        // The seed's way for reference: every frame, in full, no gating, at the smallest count
        // (`VIGIL_BENCH_GATED_ONLY=1` leaves it out).
        let reference = if env("VIGIL_BENCH_GATED_ONLY", 0) == 1 { vec![] } else { vec![cams[0]] };
        for (gating, counts) in [(false, reference), (true, cams.clone())] {
            for n in counts {
                let r = run(kind, n, secs, duty, gating, workers, threads, &rt, &fixtures, &clip, &empty);
                let drop = 100.0 * r.dropped as f64 / r.offered.max(1) as f64;
                let label = if kind == "blazepose" { blaze_model().1 } else { kind.as_str() };
                println!(
                    "| {label} | {} | {n} | {} | {} | {:.1} | {} | {} | {drop:.1} | {} | {} | {} | {} | {} |",
                    if gating { "motion" } else { "all frames" },
                    r.offered,
                    r.analysed,
                    r.infer_ms,
                    r.skipped,
                    r.dropped,
                    ms(r.p50),
                    ms(r.p95),
                    ms(r.ev_p95),
                    r.events,
                    if drop < 1.0 { "yes" } else { "no" }
                );
            }
        }
    }
}
