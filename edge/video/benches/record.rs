//! Recorder cost for one 768×576 10 fps camera (`vigil-rtsp-camera` serving vtest.mp4): CPU with
//! the pre-roll only and with 2 s continuous segments, and how soon a clip is on disk. Prints the
//! figures. `cargo build -p rtsp-camera && cargo bench -p edge-video --bench record`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_video::record::FreeSpaceFn;
use edge_video::{
    ClipReport, ContinuousConfig, RecordConfig, RecordEvent, RecordStats, Recorder, Retention, RtspTransport,
    spawn_recorder,
};
use test_support::{ChildGuard, fixtures_dir, free_port, workspace_bin};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

fn start_camera(dir: &Path) -> (ChildGuard, String) {
    let port = free_port();
    let mut cmd = Command::new(workspace_bin("vigil-rtsp-camera"));
    cmd.arg("--file").arg(fixtures_dir().join("vtest.mp4")).args(["--port", &port.to_string(), "--mount", "/cam"]);
    let guard = ChildGuard::spawn_logged("camera", &mut cmd, dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "camera did not listen: {}", guard.log_tail(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, format!("rtsp://127.0.0.1:{port}/cam"))
}

fn config(url: String, continuous: Option<ContinuousConfig>) -> RecordConfig {
    RecordConfig {
        id: Arc::from("cam1"),
        url,
        transport: RtspTransport::Tcp,
        preroll: Duration::from_secs(5),
        preroll_max_bytes: 16 << 20,
        writer_queue: 256,
        stall_timeout: Duration::from_secs(3),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(1),
        continuous,
    }
}

fn wait_buffered(rec: &Recorder, want: Duration) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rec.buffered() < want {
        assert!(Instant::now() < deadline, "pre-roll never filled: {:?}", rec.stats().snapshot());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn next_event(rx: &mut UnboundedReceiver<RecordEvent>, within: Duration) -> RecordEvent {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(e) = rx.try_recv() {
            return e;
        }
        assert!(Instant::now() < deadline, "no record event within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn next_clip(rx: &mut UnboundedReceiver<RecordEvent>, within: Duration) -> ClipReport {
    loop {
        if let RecordEvent::Clip(c) = next_event(rx, within) {
            return c;
        }
    }
}

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
