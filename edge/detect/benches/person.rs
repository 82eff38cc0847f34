//! Person detection cost on real CCTV frames: the bundled BlazePose detector over tiles vs YOLOv8n 320
//! (the AGPL test model) on the same frames. Prints a table.
//!
//! `cargo bench -p edge-detect --bench person` (needs `tests/setup/fixtures.sh`).
//! Env: `VIGIL_BENCH_ROUNDS` (passes over the 6 labelled vtest frames, default 3),
//! `VIGIL_BENCH_THREADS` (default `1,2`).
//!
//! Columns: fps = frames/s through the whole detector (preprocess, ONNX Runtime, decode, NMS);
//! tiles = model runs per frame; ms/tile = wall time per frame / tiles; infer ms/tile = time inside
//! ONNX Runtime only; people = mean detections per frame.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edge_detect::{BlazeConfig, BlazePersonDetector, OnnxRuntime, YoloConfig, YoloDetector};

const FRAMES: [u32; 6] = [100, 200, 300, 400, 500, 700];

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn main() {
    let fixtures = PathBuf::from(std::env::var("VIGIL_FIXTURES").unwrap_or_else(|_| ".fixtures".into()));
    let rounds = env_list("VIGIL_BENCH_ROUNDS", "3").first().copied().unwrap_or(3).max(1);
    let frames: Vec<(Vec<u8>, u32, u32)> = FRAMES
        .iter()
        .map(|i| {
            let path = fixtures.join(format!("vtest-frames/{i:04}.png"));
            let img =
                image::open(&path).unwrap_or_else(|e| panic!("{}: {e} (run tests/setup/fixtures.sh)", path.display()));
            let img = img.to_rgb8();
            let (w, h) = img.dimensions();
            (img.into_raw(), w, h)
        })
        .collect();
    let rt = OnnxRuntime::load(&fixtures.join("libonnxruntime.so")).expect("onnx runtime");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{} vtest frames ({}x{}) x {rounds} rounds; load average at start: {}",
        frames.len(),
        frames[0].1,
        frames[0].2,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("| detector | threads | fps | tiles/frame | ms/frame | ms/tile | infer ms/tile | people/frame |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    let n = (frames.len() * rounds) as f64;
    for threads in env_list("VIGIL_BENCH_THREADS", "1,2") {
        let runs = [(192, 96, "fp32"), (192, 64, "fp32"), (192, 48, "fp32"), (192, 64, "int8")];
        for (tile, overlap, precision) in runs {
            let model = if precision == "int8" { "blazepose-person-int8.onnx" } else { "blazepose-person.onnx" };
            let cfg = BlazeConfig { tile, overlap, threads, ..BlazeConfig::new(fixtures.join(model)) };
            let mut det = BlazePersonDetector::build(&rt, &cfg).expect("blazepose model");
            det.detect_timed(&frames[0].0, frames[0].1, frames[0].2).unwrap(); // warm-up
            let (mut tiles, mut infer, mut people) = (0usize, Duration::ZERO, 0usize);
            let start = Instant::now();
            for _ in 0..rounds {
                for (rgb, w, h) in &frames {
                    let (found, times) = det.detect_timed(rgb, *w, *h).unwrap();
                    tiles += times.tiles;
                    infer += times.steps.inference;
                    people += found.len();
                }
            }
            let wall = start.elapsed().as_secs_f64();
            println!(
                "| BlazePose {precision} {tile} px tiles, {overlap} overlap (batch {}) | {threads} | {:.2} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
                det.batch(),
                n / wall,
                tiles as f64 / n,
                wall * 1000.0 / n,
                wall * 1000.0 / tiles as f64,
                infer.as_secs_f64() * 1000.0 / tiles as f64,
                people as f64 / n
            );
        }
        let cfg = YoloConfig {
            model: fixtures.join("yolov8n-320-nudenet.onnx"),
            input_size: Some(320),
            score_threshold: 0.25,
            iou_threshold: 0.45,
            threads,
        };
        let mut det = YoloDetector::build(&rt, &cfg).expect("yolo model");
        det.detect(&frames[0].0, frames[0].1, frames[0].2).unwrap();
        let (mut infer, mut found_n) = (Duration::ZERO, 0usize);
        let start = Instant::now();
        for _ in 0..rounds {
            for (rgb, w, h) in &frames {
                let (found, times) = det.detect_timed(rgb, *w, *h).unwrap();
                infer += times.inference;
                found_n += found.len();
            }
        }
        let wall = start.elapsed().as_secs_f64();
        println!(
            "| YOLOv8n 320 (nudenet test model, whole frame) | {threads} | {:.2} | 1 | {:.1} | {:.1} | {:.1} | {:.1} (all classes) |",
            n / wall,
            wall * 1000.0 / n,
            wall * 1000.0 / n,
            infer.as_secs_f64() * 1000.0 / n,
            found_n as f64 / n
        );
    }
}
