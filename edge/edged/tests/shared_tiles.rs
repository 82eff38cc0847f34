//! The analysis stage sharing a busy frame's tiles between its inference workers, on real footage
//! with the bundled person detector (needs `tests/setup/fixtures.sh`).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_core::{AnalyzerConfig, CameraAnalyzer, ClassRule, Frame};
use edge_detect::{BlazeConfig, BlazePersonDetector, OnnxRuntime};
use edged::detect::{AnyDetector, CameraJob, DetectStage, FrameSlots, Shared};
use edged::media::CameraMedia;
use edged::stats::{AnalysisSnapshot, DetectStats};
use vigil_proto::{EventKind, Payload, Timestamp};

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(std::env::var("VIGIL_FIXTURES").expect("VIGIL_FIXTURES is set by .cargo/config.toml"));
    assert!(dir.join("vtest.mp4").is_file(), "run tests/setup/fixtures.sh first");
    dir
}

/// People found (as `detection.person` boxes, rounded to a pixel) in `frames` of one camera analysed
/// in full by `workers` workers, and the tiles other workers ran.
fn analyse(frames: &[Frame], workers: usize) -> (Vec<[i32; 4]>, u64) {
    let dir = fixtures();
    let rt = OnnxRuntime::load(&dir.join("libonnxruntime.so")).unwrap();
    let blaze = BlazeConfig::new(dir.join("blazepose-person-int8.onnx"));
    let class = ClassRule { class_id: 0, label: "person".into(), kind: EventKind::DetectionPerson, min_score: 0.5 };
    let camera: Arc<str> = Arc::from("cam-1");
    let mut cfg =
        AnalyzerConfig::new(uuid::Uuid::nil(), uuid::Uuid::nil(), camera.clone(), "blazepose".into(), vec![class]);
    cfg.motion = None; // every frame in full: 24 tiles each
    let job = CameraJob { analyzer: CameraAnalyzer::new(cfg), media: CameraMedia::none(camera) };
    let slots = FrameSlots::new(vec![(job, Arc::new(Mutex::new(AnalysisSnapshot::default())))]);
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = edge_spool::Spool::open(spool_dir.path()).unwrap();
    let stats = Arc::new(DetectStats::default());
    let shared = Shared {
        slots: slots.clone(),
        spool: spool.clone(),
        spooled: Arc::default(),
        stats: stats.clone(),
        eviction: Default::default(),
        min_crop: 160,
        tap: Default::default(),
    };
    let detectors =
        (0..workers).map(|_| AnyDetector::Blaze(Box::new(BlazePersonDetector::build(&rt, &blaze).unwrap()))).collect();
    let stage = std::thread::spawn(move || DetectStage { detectors, shared }.run());
    // every worker waiting for work
    std::thread::sleep(Duration::from_millis(300));
    for (i, frame) in frames.iter().enumerate() {
        slots.offer(frame.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        while stats.frames_analyzed.load(Relaxed) < i as u64 + 1 {
            assert!(Instant::now() < deadline, "frame {i} not analysed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    slots.close_one();
    stage.join().unwrap();
    let mut people: Vec<[i32; 4]> = spool
        .peek(1000)
        .unwrap()
        .into_iter()
        .filter(|s| s.event.kind == EventKind::DetectionPerson)
        .flat_map(|s| match s.event.payload {
            Payload::Detection(d) => d.objects,
            _ => Vec::new(),
        })
        .map(|o| {
            let b = o.bbox;
            [(b.x * 768.0) as i32, (b.y * 576.0) as i32, (b.w * 768.0) as i32, (b.h * 576.0) as i32]
        })
        .collect();
    people.sort_unstable();
    (people, stats.tiles_shared.load(Relaxed))
}

#[test]
fn two_workers_share_a_busy_frame_and_find_the_same_people_as_one() {
    let dir = fixtures();
    let frames: Vec<Frame> = edge_video::decode_file(&dir.join("vtest.mp4"), 3)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f.captured_at = Timestamp(1_000_000 + i as i64 * 200_000);
            f.camera = Arc::from("cam-1");
            f
        })
        .collect();
    let (alone, shared_alone) = analyse(&frames, 1);
    let (together, shared) = analyse(&frames, 2);
    eprintln!(
        "one worker: {} people; two: {} people, {shared} of {} tiles run by the helper",
        alone.len(),
        together.len(),
        24 * frames.len()
    );
    assert!(alone.len() >= 3, "people walk in vtest: {alone:?}");
    assert_eq!(shared_alone, 0, "nobody to share with");
    assert!(shared > 0, "the idle worker helped");
    assert!(shared < 24 * frames.len() as u64, "the owner ran its share");
    assert_eq!(together.len(), alone.len());
    for (a, b) in together.iter().zip(&alone) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1), "{a:?} vs {b:?}");
    }
}
