//! Video analytics through the real daemon: the RTSP camera plays real CCTV footage, the edge runs
//! the bundled (Apache-2.0) BlazePose person detector behind motion gating, tracks people, counts
//! them across a line, records clips (pre-roll from the encoded stream, no re-encode) and
//! snapshots, and the cloud receives the lifecycle, motion, line and media events; the clip is
//! uploaded through the cloud into a real S3-protocol server and plays from there.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{Site, SiteOptions};

const LINE: &str = r#"
[[cameras.lines]]
id = "middle"
a = [0.5, 0.0]
b = [0.5, 1.0]
[[cameras.zones]]
id = "left-half"
polygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
[cameras.record]
enabled = true          # records the detect stream (no record_url here)
preroll_secs = 5

[media]
clip_pre_secs = 2
clip_post_secs = 3
"#;

#[test]
fn people_are_tracked_and_counted_both_ways_across_a_line_through_the_daemon() {
    let opts = SiteOptions { analyze_fps: 5.0, analytics: Some(LINE.into()), s3: true, ..SiteOptions::default() };
    let site = Site::start_with(opts).unwrap();
    let mut directions = HashSet::new();
    site.wait_for("line crossings both ways in the cloud", Duration::from_secs(150), |s| {
        directions = s
            .cloud_events("line.crossed")?
            .iter()
            .filter_map(|e| e["payload"]["direction"].as_str().map(str::to_owned))
            .collect();
        Ok(directions.len() == 2)
    })
    .unwrap();

    // A person appears once per track (not once per frame), with its track id.
    let people = site.cloud_events("detection.person").unwrap();
    assert!(!people.is_empty());
    let mut tracks = HashSet::new();
    for p in &people {
        let objects = p["payload"]["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1, "{p}");
        assert_eq!(objects[0]["label"], "person");
        assert!(tracks.insert(objects[0]["track"].as_u64().expect("track id")), "track reported twice: {p}");
    }
    let crossings = site.cloud_events("line.crossed").unwrap();
    for c in &crossings {
        assert_eq!(c["payload"]["line"], "middle");
        assert_eq!(c["source"]["id"], "cam-1");
    }
    assert!(!site.cloud_events("motion.detected").unwrap().is_empty(), "motion episodes are events");
    assert!(!site.cloud_events("zone.entered").unwrap().is_empty(), "someone walks into the left half");

    // The edge says what it did with the frames, per camera, on /status and /metrics.
    let status = site.edge_status().unwrap();
    let analysis = &status["cameras"][0]["analysis"];
    assert!(analysis["frames"].as_u64().unwrap() > 0, "{analysis}");
    let lines = analysis["lines"].as_array().unwrap();
    assert_eq!(lines[0]["id"], "middle");
    assert!(lines[0]["in"].as_u64().unwrap() >= 1 && lines[0]["out"].as_u64().unwrap() >= 1, "{analysis}");
    let metrics =
        reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", site.status_port)).unwrap().text().unwrap();
    assert!(
        metrics.contains("vigil_line_crossings_total{camera=\"cam-1\",line=\"middle\",direction=\"in\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("vigil_camera_up{camera=\"cam-1\"} 1"), "{metrics}");
    // Clips: the people's events reference one, a media.saved follows once it is written, and the
    // MP4 on the edge plays (ffprobe: H.264, at least pre + post roll long).
    // (People who appear before the record stream has buffered its first keyframe get no clip.)
    let mut clip_keys = HashSet::new();
    site.wait_for("people with a clip", Duration::from_secs(60), |s| {
        clip_keys = s
            .cloud_events("detection.person")?
            .iter()
            .filter_map(|p| p["payload"]["clip"]["key"].as_str().map(str::to_owned))
            .collect();
        Ok(!clip_keys.is_empty())
    })
    .unwrap();
    let mut saved = Vec::new();
    site.wait_for("a saved clip in the cloud", Duration::from_secs(60), |s| {
        saved = s.cloud_events("media.saved")?;
        Ok(saved.iter().any(|m| m["payload"]["media"]["content_type"] == "video/mp4"))
    })
    .unwrap();
    let clip = saved.iter().find(|m| m["payload"]["media"]["content_type"] == "video/mp4").unwrap();
    let key = clip["payload"]["media"]["key"].as_str().unwrap().to_owned();
    assert!(clip_keys.contains(&key), "{key} is one the events referenced: {clip_keys:?}");
    let file = site.dir.path().join("media").join(&key);
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "json"])
        .arg(&file)
        .output()
        .expect("ffprobe (tests/setup/deps.sh installs ffmpeg)");
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(probe["streams"][0]["codec_name"], "h264", "{probe}");
    assert_eq!(probe["streams"][0]["width"], 768);
    let secs: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(secs >= 4.0, "2 s pre-roll (from a keyframe) + 3 s post-roll, got {secs}");
    assert_eq!(clip["payload"]["bytes"].as_u64().unwrap(), std::fs::metadata(&file).unwrap().len());

    // The edge uploads the clip through the cloud (it holds no bucket credentials); the event then
    // links to the object, which a real S3 client reads back from the bucket and ffprobe plays.
    let mut media = serde_json::Value::Null;
    site.wait_for("the clip uploaded and linked", Duration::from_secs(90), |s| {
        let people = s.cloud_events("detection.person")?;
        let linked = people.iter().find(|p| p["media"]["key"] == key.as_str() && p["media"]["available"] == true);
        media = linked.map(|p| p["media"].clone()).unwrap_or_default();
        Ok(!media.is_null())
    })
    .unwrap();
    let s3 = site.s3.as_ref().unwrap();
    let object = s3.get_object(e2e::MEDIA_BUCKET, &site.media_object_path(&key)).unwrap();
    let local = std::fs::read(&file).unwrap();
    assert!(object == local, "the object in the bucket differs from the clip on the edge");
    let downloaded = site.dir.path().join("downloaded.mp4");
    std::fs::write(&downloaded, &object).unwrap();
    let played = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json"])
        .arg(&downloaded)
        .output()
        .unwrap();
    assert!(played.status.success(), "{}", String::from_utf8_lossy(&played.stderr));
    let played: serde_json::Value = serde_json::from_slice(&played.stdout).unwrap();
    assert_eq!(played["streams"][0]["codec_name"], "h264", "{played}");
    let (status, through_api) = site.cloud_bytes(media["url"].as_str().unwrap()).unwrap();
    assert!(status == 200 && through_api == local, "GET {} answered {status}", media["url"]);
    let uploaded = site.edge_status().unwrap()["media_upload"].clone();
    assert!(uploaded["uploaded"].as_u64().unwrap() >= 1, "{uploaded}");

    // Snapshots: people who left have one, written as a JPEG.
    site.wait_for("a snapshot in the cloud", Duration::from_secs(60), |s| {
        saved = s.cloud_events("media.saved")?;
        Ok(saved.iter().any(|m| m["payload"]["media"]["content_type"] == "image/jpeg"))
    })
    .unwrap();
    let snap = saved.iter().find(|m| m["payload"]["media"]["content_type"] == "image/jpeg").unwrap();
    let jpeg =
        std::fs::read(site.dir.path().join("media").join(snap["payload"]["media"]["key"].as_str().unwrap())).unwrap();
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let ended = site.cloud_events("object.ended").unwrap();
    assert!(ended.iter().any(|e| e["payload"]["snapshot"]["key"] == snap["payload"]["media"]["key"]));

    eprintln!(
        "analytics: {} people, {} crossings, clip {key} {secs:.1} s, {} snapshots, analysis {analysis}",
        people.len(),
        crossings.len(),
        saved.len() - 1
    );
}
