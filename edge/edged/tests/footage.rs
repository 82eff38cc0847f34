//! Motion detection and tracking on real CCTV footage, cross-checked against the real detector
//! (needs `tests/setup/fixtures.sh`).

use std::path::PathBuf;

use edge_core::motion::{MotionConfig, MotionDetector};
use edge_core::track::{Looked, TrackUpdate, Tracker, TrackerConfig};
use edge_detect::{OnnxRuntime, YoloConfig, YoloDetector};
use vigil_proto::Timestamp;

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(std::env::var("VIGIL_FIXTURES").expect("VIGIL_FIXTURES is set by .cargo/config.toml"));
    assert!(dir.join("vtest.mp4").is_file(), "run tests/setup/fixtures.sh first");
    dir
}

/// The test model's FEET_COVERED class: on this footage, a walking person's shoes.
const FEET: u32 = 9;

#[test]
fn motion_regions_cover_the_people_the_detector_finds_and_tracks_persist() {
    let dir = fixtures();
    let frames = edge_video::decode_file(&dir.join("vtest.mp4"), 120).unwrap();
    let rt = OnnxRuntime::load(&dir.join("libonnxruntime.so")).unwrap();
    let mut det = YoloDetector::build(
        &rt,
        &YoloConfig {
            model: dir.join("yolov8n-320-nudenet.onnx"),
            input_size: Some(640),
            score_threshold: 0.25,
            iou_threshold: 0.45,
            threads: 1,
        },
    )
    .unwrap();
    let mut motion = MotionDetector::new(MotionConfig::default());
    let mut tracker = Tracker::new(TrackerConfig { max_age_us: 1_500_000, ..TrackerConfig::default() });
    let (mut feet, mut feet_in_motion, mut frames_with_motion) = (0, 0, 0);
    let mut longest_track_hits = 0;
    for (i, f) in frames.iter().enumerate() {
        let m = motion.update(&f.rgb, f.width, f.height);
        if i < 3 {
            continue; // background warm-up
        }
        if !m.regions.is_empty() {
            frames_with_motion += 1;
        }
        let found: Vec<_> =
            det.detect(&f.rgb, f.width, f.height).unwrap().into_iter().filter(|d| d.class_id == FEET).collect();
        for d in &found {
            feet += 1;
            let centre = edge_core::geometry::Point { x: d.x + d.w / 2.0, y: d.y + d.h / 2.0 };
            if m.regions.iter().any(|r| r.contains(centre)) {
                feet_in_motion += 1;
            }
        }
        for u in tracker.update(Timestamp(i as i64 * 100_000), &found, Looked::Everywhere) {
            if let TrackUpdate::Moved { track, .. } = u {
                longest_track_hits = longest_track_hits.max(track.hits);
            }
        }
    }
    eprintln!(
        "footage: {frames_with_motion}/117 frames with motion; {feet_in_motion}/{feet} feet inside motion regions; longest track {longest_track_hits} hits"
    );
    assert!(frames_with_motion >= 100, "people walk through the whole clip: {frames_with_motion}");
    assert!(feet >= 10, "the detector sees feet: {feet}");
    assert!(feet_in_motion * 10 >= feet * 8, "walking feet are moving: {feet_in_motion}/{feet}");
    assert!(longest_track_hits >= 5, "a walker keeps one track id over several frames: {longest_track_hits}");
}

/// The daemon's analysis path on real footage with the bundled person detector: motion gating with
/// region tiles, tracking, and a counting line across the walkway that people cross both ways.
#[test]
fn people_crossing_a_line_are_counted_in_both_directions() {
    use std::sync::Arc;

    use edge_core::geometry::Point;
    use edge_core::scene::LineConfig;
    use edge_core::{AnalyzerConfig, CameraAnalyzer, ClassRule, Frame, Plan};
    use edge_detect::{BlazeConfig, BlazePersonDetector, Detector};
    use vigil_proto::{EventKind, Payload};

    let dir = fixtures();
    // 30 s of footage analysed at 5 frames/s.
    let frames = edge_video::decode_file(&dir.join("vtest.mp4"), 300).unwrap();
    let rt = OnnxRuntime::load(&dir.join("libonnxruntime.so")).unwrap();
    let mut det = BlazePersonDetector::build(&rt, &BlazeConfig::new(dir.join("blazepose-person.onnx"))).unwrap();
    let classes =
        vec![ClassRule { class_id: 0, label: "person".into(), kind: EventKind::DetectionPerson, min_score: 0.5 }];
    let camera: Arc<str> = Arc::from("cam-1");
    let mut cfg =
        AnalyzerConfig::new(uuid::Uuid::nil(), uuid::Uuid::nil(), camera.clone(), "blazepose".into(), classes);
    let vertical = LineConfig { id: "middle".into(), a: Point { x: 0.5, y: 0.0 }, b: Point { x: 0.5, y: 1.0 } };
    let horizontal = LineConfig { id: "across".into(), a: Point { x: 0.0, y: 0.5 }, b: Point { x: 1.0, y: 0.5 } };
    cfg.lines = vec![vertical, horizontal];
    let mut analyzer = CameraAnalyzer::new(cfg);
    let (mut people, mut crossings, mut ended, mut looked) = (0, Vec::new(), 0, 0);
    for (i, f) in frames.iter().enumerate().step_by(2) {
        let frame = Frame {
            camera: camera.clone(),
            seq: i as u64,
            captured_at: Timestamp(i as i64 * 100_000),
            width: f.width,
            height: f.height,
            rgb: f.rgb.clone(),
        };
        let (plan, _) = analyzer.plan(&frame, |_| uuid::Uuid::now_v7());
        let found = match &plan {
            Plan::Skip => continue,
            Plan::Full => det.detect(&f.rgb, f.width, f.height).unwrap(),
            Plan::Regions(r) => det.detect_in(&f.rgb, f.width, f.height, r).unwrap(),
        };
        looked += 1;
        for e in analyzer.observe(&frame, &plan, &found, |_| uuid::Uuid::now_v7()) {
            match (&e.kind, &e.payload) {
                (EventKind::DetectionPerson, Payload::Detection(d)) => {
                    assert!(d.objects[0].track.is_some(), "a new person carries its track id");
                    people += 1;
                }
                (EventKind::LineCrossed, Payload::LineCrossing(c)) => crossings.push(c.clone()),
                (EventKind::ObjectEnded, _) => ended += 1,
                _ => {}
            }
        }
    }
    let counts = analyzer.line_counts();
    eprintln!("footage: {looked} frames looked at, {people} people appeared, {ended} left; lines {counts:?}");
    for (line, ins, outs) in &counts {
        assert!(*ins >= 1 && *outs >= 1, "people walk both ways across {line}: {counts:?}");
        // Each appearance can cross a line a few times at most; jitter would blow this up.
        assert!(ins + outs <= 2 * people as u64, "{line}: {ins}+{outs} crossings for {people} people");
    }
    // The events carry the running totals.
    let last = crossings.iter().rev().find(|c| c.line == "middle").unwrap();
    assert_eq!((last.count_in, last.count_out), (counts[0].1, counts[0].2));
    assert!(people >= 8, "vtest shows a dozen people in its first 30 s: {people}");
    assert!(ended >= 1, "someone walks out of view");
}
