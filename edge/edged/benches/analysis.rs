//! Edge analysis throughput on real footage with the real test model. Prints a table.
//!
//! `cargo bench -p edged --bench analysis` (needs `tests/setup/fixtures.sh`).
//! Env: `VIGIL_BENCH_FRAMES` (default 300), `VIGIL_BENCH_SIZES` (default `320,640`),
//! `VIGIL_BENCH_THREADS` (default `1,2`), `VIGIL_BENCH_INPUTS` (default `square,rect`: `square` feeds
//! the model the seed stack's exact `size`×`size` tensors, `rect` the daemon's smallest stride-multiple
//! input that holds the frame, e.g. 320×256 for a 768×576 frame at 320).
//!
//! Columns: decode = GStreamer H.264 → RGB frames/s; analysed = frames/s through the whole analysis
//! step (letterbox, ONNX Runtime, decode, NMS, events); inference = frames/s counting only the time
//! inside ONNX Runtime; overhead = analysed / inference (1.0 = no pipeline overhead).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edge_core::{ClassRule, EventContext, detections_to_events};
use edge_detect::{OnnxRuntime, YoloConfig, YoloDetector};
use uuid::Uuid;
use vigil_proto::EventKind;

fn env_list(name: &str, default: &str) -> Vec<u32> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn main() {
    let fixtures = PathBuf::from(std::env::var("VIGIL_FIXTURES").unwrap_or_else(|_| ".fixtures".into()));
    let limit: usize = std::env::var("VIGIL_BENCH_FRAMES").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let t = Instant::now();
    let frames = edge_video::decode_file(&fixtures.join("vtest.mp4"), limit).expect("decode vtest.mp4");
    let decode_fps = frames.len() as f64 / t.elapsed().as_secs_f64();
    assert!(!frames.is_empty(), "no frames decoded");
    let rt = OnnxRuntime::load(&fixtures.join("libonnxruntime.so")).expect("onnx runtime");
    let rules = vec![ClassRule {
        class_id: 9,
        label: "FEET_COVERED".into(),
        kind: EventKind::DetectionPerson,
        min_score: 0.25,
    }];
    let cx = EventContext { tenant: Uuid::nil(), site: Uuid::nil(), zone: None, model: "bench" };

    println!(
        "frames: {} of vtest.mp4 ({}x{}), GStreamer decode {:.0} frames/s",
        frames.len(),
        frames[0].width,
        frames[0].height,
        decode_fps
    );
    println!(
        "| input | tensor | threads | analysed fps | inference-only fps | overhead ratio | pre ms | infer ms | post ms | events |"
    );
    println!(
        "|------:|-------:|--------:|-------------:|-------------------:|---------------:|-------:|---------:|--------:|-------:|"
    );
    let inputs = std::env::var("VIGIL_BENCH_INPUTS").unwrap_or_else(|_| "square,rect".into());
    let runs = env_list("VIGIL_BENCH_SIZES", "320,640").into_iter().flat_map(|size| {
        inputs.split(',').map(|i| i.trim() == "rect").collect::<Vec<_>>().into_iter().map(move |rect| (size, rect))
    });
    for (size, rect) in runs {
        for threads in env_list("VIGIL_BENCH_THREADS", "1,2") {
            let mut det = YoloDetector::build(
                &rt,
                &YoloConfig {
                    model: fixtures.join("yolov8n-320-nudenet.onnx"),
                    input_size: Some(size),
                    score_threshold: 0.25,
                    iou_threshold: 0.45,
                    threads: threads as usize,
                },
            )
            .expect("model");
            if !rect {
                det.use_square_inputs();
            }
            let lb = det.input_for(frames[0].width, frames[0].height);
            let tensor = format!("{}x{}", lb.width, lb.height);
            // Warm up (first runs allocate and pick kernels).
            for f in frames.iter().take(5) {
                det.detect(&f.rgb, f.width, f.height).unwrap();
            }
            let (mut pre, mut infer, mut post) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            let mut events = 0usize;
            let start = Instant::now();
            for f in &frames {
                let (found, times) = det.detect_timed(&f.rgb, f.width, f.height).unwrap();
                events += detections_to_events(&cx, f, &found, &rules, |_| Uuid::now_v7()).len();
                pre += times.preprocess;
                infer += times.inference;
                post += times.postprocess;
            }
            let total = start.elapsed().as_secs_f64();
            let n = frames.len() as f64;
            let analysed = n / total;
            let inference_only = n / infer.as_secs_f64();
            println!(
                "| {size} | {tensor} | {threads} | {analysed:.1} | {inference_only:.1} | {:.3} | {:.2} | {:.2} | {:.2} | {events} |",
                analysed / inference_only,
                pre.as_secs_f64() * 1e3 / n,
                infer.as_secs_f64() * 1e3 / n,
                post.as_secs_f64() * 1e3 / n,
            );
        }
    }
}
