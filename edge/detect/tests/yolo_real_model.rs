//! Runs the YOLO pipeline (letterbox → ONNX Runtime → decode → NMS) on a real YOLOv8n export and a
//! real photo. Needs `tests/setup/fixtures.sh`; fails loudly when its files are missing.

use std::path::PathBuf;

use edge_detect::{OnnxRuntime, YoloConfig, YoloDetector};

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(std::env::var("VIGIL_FIXTURES").expect("VIGIL_FIXTURES is set by .cargo/config.toml"));
    assert!(dir.join("libonnxruntime.so").is_file(), "run tests/setup/fixtures.sh first ({} is empty)", dir.display());
    dir
}

fn detector(input_size: Option<u32>) -> YoloDetector {
    let dir = fixtures();
    let rt = OnnxRuntime::load(&dir.join("libonnxruntime.so")).unwrap();
    YoloDetector::build(
        &rt,
        &YoloConfig {
            model: dir.join("yolov8n-320-nudenet.onnx"),
            input_size,
            score_threshold: 0.25,
            iou_threshold: 0.45,
            threads: 1,
        },
    )
    .unwrap()
}

fn astronaut() -> (Vec<u8>, u32, u32) {
    let img = image::open(fixtures().join("astronaut.png")).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = a[2].min(b[2]) - a[0].max(b[0]);
    let iy = a[3].min(b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// The test model's class 1 is FACE_FEMALE. The photo's face occupies roughly x 173–274,
/// y 82–180 (pixels of the 512×512 image; measured independently with onnxruntime in Python).
const FACE_CLASS: u32 = 1;
const FACE_BOX: [f32; 4] = [173.0, 82.0, 274.0, 180.0];

#[track_caller]
fn check_face(input_size: Option<u32>) {
    let mut det = detector(input_size);
    assert_eq!(det.classes(), 18);
    let (rgb, w, h) = astronaut();
    let found = det.detect(&rgb, w, h).unwrap();
    let best = found.first().expect("a detection on the astronaut photo");
    assert_eq!(best.class_id, FACE_CLASS, "best detection {best:?}");
    assert!(best.score > 0.6, "face score {}", best.score);
    let px = [best.x * w as f32, best.y * h as f32, (best.x + best.w) * w as f32, (best.y + best.h) * h as f32];
    assert!(iou(px, FACE_BOX) > 0.7, "face box {px:?} vs {FACE_BOX:?}");
    // NMS leaves one face, not a stack of near-identical boxes.
    assert_eq!(found.iter().filter(|d| d.class_id == FACE_CLASS).count(), 1, "{found:?}");
}

#[test]
fn finds_the_astronauts_face_at_the_models_native_size() {
    check_face(None);
}

#[test]
fn dynamic_input_runs_at_a_larger_size_and_agrees() {
    let det = detector(Some(640));
    assert_eq!(det.input_size(), 640);
    check_face(Some(640));
}

#[test]
fn a_blank_frame_yields_nothing() {
    let mut det = detector(None);
    let grey = vec![128u8; 320 * 240 * 3];
    assert!(det.detect(&grey, 320, 240).unwrap().is_empty());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = fixtures();
    let rt = OnnxRuntime::load(&dir.join("libonnxruntime.so")).unwrap();
    let cfg = |model: PathBuf, input_size| YoloConfig {
        model,
        input_size,
        score_threshold: 0.25,
        iou_threshold: 0.45,
        threads: 1,
    };
    let err = YoloDetector::build(&rt, &cfg(dir.join("missing.onnx"), None)).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
    let err = YoloDetector::build(&rt, &cfg(dir.join("astronaut.png"), None)).unwrap_err();
    assert!(err.to_string().starts_with("cannot load model"), "{err}");
    let err = YoloDetector::build(&rt, &cfg(dir.join("yolov8n-320-nudenet.onnx"), Some(100))).unwrap_err();
    assert!(err.to_string().contains("multiple of 32"), "{err}");
    let err = OnnxRuntime::load(&dir.join("nope.so")).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
}
