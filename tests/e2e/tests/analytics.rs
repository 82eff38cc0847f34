//! Video analytics through the real daemon: the RTSP camera plays real CCTV footage, the edge runs
//! the bundled (Apache-2.0) BlazePose person detector behind motion gating, tracks people, counts
//! them across a line, and the cloud receives the lifecycle, motion and line events.

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
"#;

#[test]
fn people_are_tracked_and_counted_both_ways_across_a_line_through_the_daemon() {
    let opts = SiteOptions { analyze_fps: 5.0, analytics: Some(LINE.into()), ..SiteOptions::default() };
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
    eprintln!("analytics: {} people, {} crossings, analysis {analysis}", people.len(), crossings.len());
}
