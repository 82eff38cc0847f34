//! Motion detection and tracking on real CCTV footage, cross-checked against the real detector
//! (needs `tests/setup/fixtures.sh`).

use std::path::PathBuf;

use edge_core::motion::{MotionConfig, MotionDetector};
use edge_core::track::{TrackUpdate, Tracker, TrackerConfig};
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
            let (cx, cy) = (d.x + d.w / 2.0, d.y + d.h / 2.0);
            if m.regions.iter().any(|r| cx >= r.x && cx <= r.x + r.w && cy >= r.y && cy <= r.y + r.h) {
                feet_in_motion += 1;
            }
        }
        for u in tracker.update(Timestamp(i as i64 * 100_000), &found) {
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
