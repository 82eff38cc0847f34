//! Recorder cost for one 768×576 10 fps camera (`vigil-rtsp-camera` serving vtest.mp4): CPU with
//! the pre-roll only and with 2 s continuous segments, and how soon a clip is on disk. Prints the
//! figures. `cargo build -p rtsp-camera && cargo bench -p edge-video --bench record`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_video::record::FreeSpaceFn;
use edge_video::{ContinuousConfig, RecordStats, Retention, spawn_recorder};
use tokio_util::sync::CancellationToken;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{config, next_clip, start_camera, wait_buffered};

/// CPU time (user + system) of this process, from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

fn main() {
    edge_video::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_camera, url) = start_camera(dir.path());
    let plenty: FreeSpaceFn = Arc::new(|_: &Path| Ok(u64::MAX / 2));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(RecordStats::default());
    let cancel = CancellationToken::new();
    let mut cfg = config(url.clone(), None);
    let (rec, handle) = spawn_recorder(cfg.clone(), tx.clone(), stats.clone(), cancel.clone()).unwrap();
    wait_buffered(&rec, Duration::from_secs(2));
    let window = Duration::from_secs(10);
    let c0 = cpu_time();
    std::thread::sleep(window);
    let preroll_only = (cpu_time() - c0).as_secs_f64() / window.as_secs_f64();
    cancel.cancel();
    handle.join().unwrap();

    cfg.continuous = Some(ContinuousConfig {
        dir: dir.path().join("segments"),
        segment: Duration::from_secs(2),
        retention: Retention { max_age: None, max_total_bytes: Some(10 << 20), reserve_bytes: 0 },
        free_space: plenty,
    });
    let cancel = CancellationToken::new();
    let (rec, handle) = spawn_recorder(cfg, tx, stats.clone(), cancel.clone()).unwrap();
    wait_buffered(&rec, Duration::from_secs(2));
    let c0 = cpu_time();
    std::thread::sleep(window);
    let continuous = (cpu_time() - c0).as_secs_f64() / window.as_secs_f64();
    let t = Instant::now();
    rec.request_clip("m", Duration::from_secs(3), Duration::ZERO, dir.path().join("m.mp4")).unwrap();
    let clip = next_clip(&mut rx, Duration::from_secs(20));
    let clip_latency = t.elapsed();
    cancel.cancel();
    handle.join().unwrap();
    println!(
        "record CPU per camera (768x576 10 fps ~1.3 Mbit/s): pre-roll only {:.2} % of a core, with 2 s segments \
         {:.2} %; a 3 s pre-roll-only clip ({} bytes) was on disk {clip_latency:?} after the request",
        preroll_only * 100.0,
        continuous * 100.0,
        clip.bytes
    );
}
