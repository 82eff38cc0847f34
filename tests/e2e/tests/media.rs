//! A clip uploaded by the edge's uploader through the real cloud (`vigil-cloud`, PostgreSQL) into a
//! real S3-protocol server (s3s-fs), with a WAN cut and a cloud restart in the middle: the upload
//! resumes from the parts the cloud holds, the object read back with the `aws` CLI is the clip
//! byte for byte, and ffprobe plays it. A queued file deleted before its upload is reported.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use e2e::{MEDIA_BUCKET, MEDIA_PART_SIZE, Site, SiteOptions};
use edge_core::Backoff;
use edge_uplink::{Uplink, UplinkConfig};
use edged::bandwidth::Bandwidth;
use edged::upload::{UploadQueue, UploadStats, Uploader};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::{MediaRef, MediaSaved};

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool, site: &Site) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", site.log_tails());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn saved(key: &str, event: Uuid) -> MediaSaved {
    MediaSaved {
        media: MediaRef { key: key.into(), content_type: "video/mp4".into() },
        event,
        bytes: 0,
        duration_ms: 0,
    }
}

#[test]
fn a_clip_upload_resumes_after_a_wan_cut_and_a_cloud_restart_and_plays_from_the_bucket() {
    let opts = SiteOptions { analyze_fps: 1.0, wan_proxy: true, s3: true, ..SiteOptions::default() };
    let mut site = Site::start_with(opts).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // A real MP4 (the fixture footage, 13 MB: three 5 MiB parts) saved on the edge, and a queued
    // snapshot whose file the janitor deleted before it could be sent.
    let media = tempfile::tempdir().unwrap();
    let event = Uuid::now_v7();
    let key = format!("clips/cam-9/{event}.mp4");
    let file = media.path().join(&key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::copy(test_support::fixtures_dir().join("vtest.mp4"), &file).unwrap();
    let clip = std::fs::read(&file).unwrap();
    let parts = (clip.len() as u64).div_ceil(MEDIA_PART_SIZE);
    assert_eq!(parts, 3);
    let queue = UploadQueue::open(&media.path().join(".upload-queue")).unwrap();
    queue.push(&saved(&key, event)).unwrap();
    queue.push(&saved("clips/cam-9/deleted.mp4", Uuid::now_v7())).unwrap();

    let wan = site.wan.as_ref().unwrap();
    let uplink = Uplink::build(&UplinkConfig {
        url: format!("http://127.0.0.1:{}", wan.port),
        token: site.ids.edge_token.clone(),
        ca_cert: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let stats = Arc::new(UploadStats::default());
    // 16 Mbit/s: each part takes about 2.6 s, so the cut lands in the middle of the upload.
    let uploader = Uploader::new(
        queue,
        media.path().to_path_buf(),
        uplink,
        Arc::new(Bandwidth::new(16_000)),
        stats.clone(),
        Backoff::new(Duration::from_millis(200), Duration::from_secs(1)),
    );
    let cancel = CancellationToken::new();
    let task = runtime.spawn(uploader.run(cancel.clone()));

    wait("the first part", Duration::from_secs(60), || stats.parts_sent.load(Relaxed) >= 1, &site);
    wan.cut();
    std::thread::sleep(Duration::from_secs(2));
    site.kill_cloud();
    site.start_cloud().unwrap();
    site.wan.as_ref().unwrap().heal();
    wait("the clip uploaded", Duration::from_secs(120), || stats.uploaded.load(Relaxed) == 1, &site);
    wait("the deleted file reported", Duration::from_secs(30), || stats.missing.load(Relaxed) == 1, &site);
    cancel.cancel();
    runtime.block_on(task).unwrap();

    // Resumed, not restarted: every part went through once (the one cut in flight is not counted
    // until it was acknowledged), so at most `parts` successful sends, never `parts` + the first.
    let sent = stats.parts_sent.load(Relaxed);
    assert!(stats.retries.load(Relaxed) >= 1, "the cut was noticed");
    assert!((2..=parts).contains(&sent), "{sent} parts sent for a {parts}-part file");
    assert_eq!(stats.failed.load(Relaxed), 0);
    let failed: Vec<String> = std::fs::read_dir(media.path().join(".upload-queue/failed"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(failed.iter().any(|r| r.contains("deleted")), "the missing file is kept aside with its reason: {failed:?}");

    // A real S3 client reads the object back from the bucket: the clip, byte for byte, and it plays.
    let s3 = site.s3.as_ref().unwrap();
    let object = s3.get_object(MEDIA_BUCKET, &site.media_object_path(&key)).unwrap();
    assert!(object == clip, "the object differs from the clip ({} vs {} bytes)", object.len(), clip.len());
    let downloaded = media.path().join("downloaded.mp4");
    std::fs::write(&downloaded, &object).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(&downloaded)
        .output()
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let secs: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    assert!(secs > 70.0, "plays for {secs} s");
    eprintln!("media: {parts}-part clip resumed after a WAN cut and a cloud restart, {sent} parts sent, {secs:.1} s");
}
