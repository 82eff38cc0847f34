//! Real GStreamer on real footage (needs `tests/setup/fixtures.sh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_video::{CameraConfig, CameraState, CameraStats, RtspTransport, decode_file, spawn_camera};
use tokio_util::sync::CancellationToken;

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(std::env::var("VIGIL_FIXTURES").expect("VIGIL_FIXTURES is set by .cargo/config.toml"));
    assert!(dir.join("vtest.mp4").is_file(), "run tests/setup/fixtures.sh first");
    dir
}

#[test]
fn decodes_real_footage_to_packed_rgb() {
    let frames = decode_file(&fixtures().join("vtest.mp4"), 12).unwrap();
    assert_eq!(frames.len(), 12);
    for f in &frames {
        assert_eq!((f.width, f.height), (768, 576));
        assert_eq!(f.rgb.len(), 768 * 576 * 3);
    }
    // Not a blank picture: CCTV footage has plenty of contrast.
    let (lo, hi) = frames[0].rgb.iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo > 100, "range {lo}..{hi}");
}

#[test]
fn a_missing_file_is_an_error() {
    assert!(decode_file(std::path::Path::new("/nonexistent.mp4"), 1).is_err());
}

#[test]
fn a_camera_that_never_answers_is_retried_with_a_clear_error() {
    edge_video::init().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let stats = Arc::new(CameraStats::default());
    let cancel = CancellationToken::new();
    let cfg = CameraConfig {
        id: Arc::from("dead"),
        url: format!("rtsp://127.0.0.1:{port}/none"),
        transport: RtspTransport::Tcp,
        analyze_fps: 1.0,
        size: None,
        stall_timeout: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
    };
    let handle = spawn_camera(cfg, tx, stats.clone(), cancel.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.snapshot().reconnects < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let snap = stats.snapshot();
    assert!(snap.reconnects >= 2, "{snap:?}");
    assert!(snap.last_error.as_deref().is_some_and(|e| !e.is_empty()), "{snap:?}");
    assert_eq!(snap.frames_decoded, 0);
    cancel.cancel();
    handle.join().unwrap();
    assert_eq!(stats.state(), CameraState::Stopped);
}
