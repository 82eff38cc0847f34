//! Recording against a real RTSP camera (`vigil-rtsp-camera` serving `vtest.mp4`: 768×576 H.264,
//! 10 fps, a keyframe every 2 s), checked with ffprobe. Needs `tests/setup/fixtures.sh`,
//! `cargo build -p rtsp-camera` and ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_video::record::{FreeSpaceFn, list_segments};
use edge_video::{ClipAccepted, ContinuousConfig, RecordEvent, RecordStats, Retention, spawn_recorder};
use test_support::fixtures_dir;
use tokio_util::sync::CancellationToken;

mod common;
use common::{config, next_clip, next_event, start_camera, wait_buffered};

const FPS: f64 = 10.0;

fn ffprobe(args: &[&str], file: &Path) -> serde_json::Value {
    let out =
        Command::new("ffprobe").args(["-v", "error"]).args(args).args(["-of", "json"]).arg(file).output().unwrap();
    assert!(out.status.success(), "ffprobe {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (codec, width, height, duration in seconds, frames decoded, first frame is a keyframe)
fn probe(file: &Path) -> (String, u64, u64, f64, u64, bool) {
    let v = ffprobe(&["-show_entries", "stream=codec_name,width,height", "-show_entries", "format=duration"], file);
    let s = &v["streams"][0];
    let duration: f64 = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    let n = ffprobe(&["-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"], file);
    let frames: u64 = n["streams"][0]["nb_read_frames"].as_str().unwrap().parse().unwrap();
    let f = ffprobe(&["-select_streams", "v:0", "-read_intervals", "%+#1", "-show_entries", "frame=key_frame"], file);
    let key = f["frames"][0]["key_frame"].as_i64() == Some(1);
    (
        s["codec_name"].as_str().unwrap().to_owned(),
        s["width"].as_u64().unwrap(),
        s["height"].as_u64().unwrap(),
        duration,
        frames,
        key,
    )
}

/// Types of the top-level MP4 boxes, in file order.
fn top_level_boxes(file: &Path) -> Vec<String> {
    let data = std::fs::read(file).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let mut size = u64::from(u32::from_be_bytes(data[at..at + 4].try_into().unwrap()));
        out.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
        }
        if size < 8 {
            break;
        }
        at += usize::try_from(size).unwrap();
    }
    out
}

/// Keyframe interval of the fixture, measured with ffprobe (seconds).
fn fixture_gop() -> f64 {
    let v = ffprobe(
        &["-select_streams", "v:0", "-read_intervals", "%+12", "-show_entries", "packet=pts_time,flags"],
        &fixtures_dir().join("vtest.mp4"),
    );
    let keys: Vec<f64> = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["flags"].as_str().unwrap().starts_with('K'))
        .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(keys.len() >= 2, "{keys:?}");
    keys[1] - keys[0]
}

fn no_part_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name();
        assert!(!name.to_string_lossy().ends_with(".part"), "left behind: {name:?}");
    }
}

#[test]
fn clip_has_keyframe_aligned_preroll_and_postroll_and_plays() {
    edge_video::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_camera, url) = start_camera(dir.path());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(RecordStats::default());
    let cancel = CancellationToken::new();
    let (rec, handle) = spawn_recorder(config(url, None), tx, stats.clone(), cancel.clone()).unwrap();
    wait_buffered(&rec, Duration::from_millis(4_500));

    let path = dir.path().join("clips/event-1.mp4");
    let asked = Instant::now();
    let pre = Duration::from_secs(3);
    let post = Duration::from_secs(2);
    assert_eq!(rec.request_clip("event-1", pre, post, &path).unwrap(), ClipAccepted::Started);
    // A second trigger of the same event while post-roll runs extends nothing past its own post.
    assert_eq!(rec.request_clip("event-1", pre, Duration::from_secs(1), &path).unwrap(), ClipAccepted::Extended);
    // An overlapping event runs concurrently into its own file.
    let other = dir.path().join("clips/event-2.mp4");
    assert_eq!(
        rec.request_clip("event-2", Duration::from_secs(1), Duration::from_secs(1), &other).unwrap(),
        ClipAccepted::Started
    );
    let (mut clip, mut clip2) =
        (next_clip(&mut rx, Duration::from_secs(20)), next_clip(&mut rx, Duration::from_secs(20)));
    let waited = asked.elapsed();
    if clip.id != "event-1" {
        std::mem::swap(&mut clip, &mut clip2);
    }
    assert_eq!((clip.id.as_str(), clip2.id.as_str()), ("event-1", "event-2"));
    assert_eq!(clip2.error, None, "{clip2:?}");
    assert_eq!(probe(&other).0, "h264");
    assert!(clip2.duration < clip.duration, "{clip2:?}");
    assert_eq!(clip.error, None, "{clip:?}");
    assert!(!clip.truncated && clip.dropped == 0, "{clip:?}");
    assert_eq!(clip.path, path);
    assert!(path.is_file());
    no_part_files(path.parent().unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), clip.bytes);

    // The clip starts at the last keyframe at or before trigger - pre: at most one GOP earlier.
    let gop = fixture_gop();
    let pre_actual = (clip.trigger_pts - clip.first_pts).as_secs_f64();
    assert!(pre_actual >= 3.0 - 0.01 && pre_actual < 3.0 + gop, "pre-roll {pre_actual} s (gop {gop} s)");
    let expected = pre_actual + post.as_secs_f64();
    assert!((expected - 5.0).abs() <= gop, "{expected}");

    let (codec, w, h, duration, frames, key) = probe(&path);
    assert_eq!((codec.as_str(), w, h), ("h264", 768, 576));
    assert!((duration - expected).abs() <= 0.25, "ffprobe {duration} s, expected {expected} s, report {clip:?}");
    let want_frames = (expected * FPS).round() as i64;
    assert!((frames as i64 - want_frames).abs() <= 2, "{frames} frames, expected {want_frames}");
    assert_eq!(clip.frames, frames, "{clip:?}");
    assert!(key, "clip does not start with a keyframe");
    // Browser-playable: avc1 sample entries (parameter sets in the header) and the index first.
    let tag = ffprobe(&["-show_entries", "stream=codec_tag_string"], &path);
    assert_eq!(tag["streams"][0]["codec_tag_string"], "avc1");
    let boxes = top_level_boxes(&path);
    let pos = |t: &str| boxes.iter().position(|b| b == t).unwrap_or_else(|| panic!("no {t} in {boxes:?}"));
    assert!(pos("ftyp") < pos("moov") && pos("moov") < pos("mdat"), "{boxes:?}");
    eprintln!(
        "clip: {duration:.2} s, {frames} frames, {} bytes; finalize {:?}; request→report {waited:?}",
        clip.bytes, clip.finalize_latency
    );

    cancel.cancel();
    handle.join().unwrap();
    let snap = stats.snapshot();
    assert_eq!((snap.clips_written, snap.clips_failed, snap.samples_dropped), (2, 0, 0), "{snap:?}");
    assert_eq!(snap.bytes_written, clip.bytes + clip2.bytes);
}

#[test]
fn camera_killed_mid_clip_still_finalises_a_valid_clip() {
    edge_video::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut camera, url) = start_camera(dir.path());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(RecordStats::default());
    let cancel = CancellationToken::new();
    let (rec, handle) = spawn_recorder(config(url, None), tx, stats.clone(), cancel.clone()).unwrap();
    wait_buffered(&rec, Duration::from_secs(2));

    let path = dir.path().join("cut.mp4");
    rec.request_clip("cut", Duration::from_secs(2), Duration::from_secs(30), &path).unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    camera.kill();
    let clip = next_clip(&mut rx, Duration::from_secs(20));
    assert_eq!(clip.error, None, "{clip:?}");
    assert!(clip.truncated, "{clip:?}");
    let (codec, w, h, duration, frames, key) = probe(&path);
    assert_eq!((codec.as_str(), w, h), ("h264", 768, 576));
    assert!(key);
    // Pre-roll (2–4 s) plus the 1.5 s before the kill.
    assert!((3.0..7.0).contains(&duration), "{duration}");
    assert_eq!(clip.frames, frames);
    no_part_files(dir.path());
    // The recorder notices and keeps trying to reconnect.
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.snapshot().reconnects < 1 {
        assert!(Instant::now() < deadline, "{:?}", stats.snapshot());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(stats.snapshot().last_error.is_some());
    assert!(matches!(
        rec.request_clip("late", Duration::from_secs(1), Duration::from_secs(1), dir.path().join("late.mp4")),
        Err(edge_video::ClipError::NotStreaming(_))
    ));
    cancel.cancel();
    handle.join().unwrap();
}

#[test]
fn continuous_segments_are_valid_and_retention_by_bytes_deletes_the_oldest() {
    edge_video::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_camera, url) = start_camera(dir.path());
    let seg_dir: PathBuf = dir.path().join("segments");
    let plenty: FreeSpaceFn = Arc::new(|_: &Path| Ok(u64::MAX / 2));
    // ~1.3 Mbit/s: a 2 s segment is ~330 kB, so 800 kB keeps about two.
    let max_total = 800_000;
    let cont = ContinuousConfig {
        dir: seg_dir.clone(),
        segment: Duration::from_secs(2),
        retention: Retention { max_age: None, max_total_bytes: Some(max_total), reserve_bytes: 1 << 20 },
        free_space: plenty,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(RecordStats::default());
    let cancel = CancellationToken::new();
    let (_rec, handle) = spawn_recorder(config(url, Some(cont)), tx, stats.clone(), cancel.clone()).unwrap();

    let mut segments = Vec::new();
    let mut deleted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while segments.len() < 4 || deleted.is_empty() {
        assert!(Instant::now() < deadline, "{segments:?} {deleted:?} {:?}", stats.snapshot());
        match next_event(&mut rx, Duration::from_secs(20)) {
            RecordEvent::Segment(s) => segments.push(s),
            RecordEvent::SegmentsDeleted { paths, .. } => deleted.extend(paths),
            other => panic!("unexpected {other:?}"),
        }
    }
    cancel.cancel();
    handle.join().unwrap();

    // Complete segments of ~2 s (cut at keyframes), each a valid 768×576 H.264 MP4.
    for s in &segments[..2] {
        assert!((s.duration.as_secs_f64() - 2.0).abs() < 0.25, "{s:?}");
    }
    assert_eq!(deleted[0], segments[0].path, "the oldest goes first");
    assert!(!segments[0].path.exists());
    let on_disk = list_segments(&seg_dir, "cam1").unwrap();
    assert!(on_disk.len() >= 2, "{on_disk:?}");
    let mut complete = 0;
    for s in &on_disk {
        // The segment open at cancel is closed early: valid, just short.
        let (codec, w, h, duration, frames, key) = probe(&s.path);
        assert_eq!((codec.as_str(), w, h), ("h264", 768, 576));
        assert!(key && frames >= 1, "{s:?}: {duration} s {frames} frames");
        if (duration - 2.0).abs() < 0.25 {
            assert!((frames as i64 - 20).abs() <= 2, "{s:?}: {frames} frames");
            complete += 1;
        }
    }
    assert!(complete >= 2, "{on_disk:?}");
    // Retention keeps the total within the cap plus the segment written after the last check.
    let total: u64 = on_disk.iter().map(|s| s.bytes).sum();
    let biggest = on_disk.iter().map(|s| s.bytes).max().unwrap();
    assert!(total <= max_total + biggest, "{total} bytes on disk");
    no_part_files(&seg_dir);
    let snap = stats.snapshot();
    // The segment open at cancel is closed too.
    assert!(snap.segments_written >= segments.len() as u64, "{snap:?}");
    assert!(snap.segments_deleted >= 1 && !snap.disk_paused, "{snap:?}");
}

#[test]
fn a_disk_below_its_reserve_pauses_continuous_recording_but_not_clips() {
    edge_video::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_camera, url) = start_camera(dir.path());
    let full: FreeSpaceFn = Arc::new(|_: &Path| Ok(1_000));
    let cont = ContinuousConfig {
        dir: dir.path().join("segments"),
        segment: Duration::from_secs(2),
        retention: Retention { max_age: None, max_total_bytes: None, reserve_bytes: 1 << 30 },
        free_space: full,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(RecordStats::default());
    let cancel = CancellationToken::new();
    let (rec, handle) = spawn_recorder(config(url, Some(cont)), tx, stats.clone(), cancel.clone()).unwrap();
    match next_event(&mut rx, Duration::from_secs(20)) {
        RecordEvent::DiskFull { free_bytes, reserve_bytes, .. } => {
            assert_eq!((free_bytes, reserve_bytes), (1_000, 1 << 30))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(stats.snapshot().disk_paused);
    wait_buffered(&rec, Duration::from_secs(1));
    let path = dir.path().join("still.mp4");
    rec.request_clip("still", Duration::from_secs(1), Duration::from_secs(1), &path).unwrap();
    let clip = next_clip(&mut rx, Duration::from_secs(20));
    assert_eq!(clip.error, None);
    cancel.cancel();
    handle.join().unwrap();
    assert_eq!(stats.snapshot().segments_written, 0);
    assert!(list_segments(&dir.path().join("segments"), "cam1").unwrap().is_empty());
}
