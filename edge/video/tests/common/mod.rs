//! Helpers shared by the recording tests and the recorder bench: a real RTSP camera serving
//! vtest.mp4, a recorder configuration for it, and waiting for its reports.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_video::{ClipReport, ContinuousConfig, RecordConfig, RecordEvent, Recorder, RtspTransport};
use test_support::{ChildGuard, fixtures_dir, free_port, workspace_bin};
use tokio::sync::mpsc::UnboundedReceiver;

pub fn start_camera(dir: &Path) -> (ChildGuard, String) {
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

pub fn config(url: String, continuous: Option<ContinuousConfig>) -> RecordConfig {
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

pub fn wait_buffered(rec: &Recorder, want: Duration) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rec.buffered() < want {
        assert!(Instant::now() < deadline, "pre-roll never filled: {:?}", rec.stats().snapshot());
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn next_event(rx: &mut UnboundedReceiver<RecordEvent>, within: Duration) -> RecordEvent {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(e) = rx.try_recv() {
            return e;
        }
        assert!(Instant::now() < deadline, "no record event within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn next_clip(rx: &mut UnboundedReceiver<RecordEvent>, within: Duration) -> ClipReport {
    loop {
        if let RecordEvent::Clip(c) = next_event(rx, within) {
            return c;
        }
    }
}
