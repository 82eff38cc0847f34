//! Camera → edge → cloud → API, with every process real.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`) and `tests/setup/fixtures.sh`.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::{Site, SiteOptions};
use serde_json::Value;

const PERSON: &str = "detection.person";

/// Waits until the edge has nothing left to send and has stopped producing, then returns how many
/// events it created in its life.
fn drained(site: &Site) -> u64 {
    let mut last = u64::MAX;
    site.wait_for("edge to finish analysing and drain its spool", Duration::from_secs(120), |s| {
        let created = s.edge_counter("/detector/events_created")?;
        let acked = s.edge_counter("/uplink/events_acked")?;
        let depth = s.edge_counter("/spool/depth")?;
        let stable = created == last;
        last = created;
        std::thread::sleep(Duration::from_millis(800));
        Ok(stable && depth == 0 && acked == created)
    })
    .unwrap();
    assert_eq!(site.edge_counter("/detector/events_lost").unwrap(), 0);
    assert_eq!(site.edge_counter("/uplink/events_rejected").unwrap(), 0);
    last
}

/// Every event is a well-formed person detection from our camera, and no id appears twice.
fn check_events(site: &Site, events: &[Value]) {
    let mut ids = HashSet::new();
    for e in events {
        assert!(ids.insert(e["id"].as_str().unwrap().to_owned()), "event {} stored twice", e["id"]);
        assert_eq!(e["kind"], PERSON);
        assert_eq!(e["site_id"], site.ids.site_id.as_str());
        assert_eq!(e["tenant_id"], site.ids.tenant_id.as_str());
        assert_eq!(e["source"]["id"], "cam-1");
        assert_eq!(e["zone"], "lobby");
        let objects = e["payload"]["objects"].as_array().expect("detection payload has objects");
        assert!(!objects.is_empty());
        for o in objects {
            assert!(["FEET_COVERED", "FACE_FEMALE", "FACE_MALE"].contains(&o["label"].as_str().unwrap()), "{o}");
            let score = o["score"].as_f64().unwrap();
            assert!((0.25..=1.0).contains(&score), "{o}");
            let b = &o["bbox"];
            for k in ["x", "y", "w", "h"] {
                let v = b[k].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&v), "{o}");
            }
        }
        assert_eq!(e["payload"]["frame_width"], 768);
        assert_eq!(e["payload"]["frame_height"], 576);
    }
}

#[test]
fn detections_from_the_rtsp_camera_reach_the_cloud_api_once_each() {
    let mut site = Site::start(4.0).unwrap();
    site.wait_for("person detections in the cloud", Duration::from_secs(120), |s| {
        Ok(s.cloud_events(PERSON)?.len() >= 3)
    })
    .unwrap();
    site.stop_camera();
    let created = drained(&site);
    let events = site.cloud_events(PERSON).unwrap();
    check_events(&site, &events);
    assert_eq!(events.len() as u64, created, "cloud holds exactly what the edge produced");
    assert!(site.edge_counter("/detector/frames_analyzed").unwrap() >= 3);
    site.stop_edge().unwrap();
}

#[test]
fn events_produced_while_the_cloud_is_down_arrive_after_it_returns_none_twice() {
    let mut site = Site::start(4.0).unwrap();
    site.wait_for("first detections in the cloud", Duration::from_secs(120), |s| {
        Ok(!s.cloud_events(PERSON)?.is_empty())
    })
    .unwrap();

    site.kill_cloud();
    let before = site.edge_counter("/detector/events_created").unwrap();
    let failures = site.edge_counter("/uplink/failures").unwrap();
    // The edge keeps analysing and spooling while the cloud is gone.
    let down_since = std::time::Instant::now();
    site.wait_for("events spooled during the outage", Duration::from_secs(180), |s| {
        Ok(down_since.elapsed() >= Duration::from_secs(8)
            && s.edge_counter("/detector/events_created")? >= before + 8
            && s.edge_counter("/spool/depth")? >= 8)
    })
    .unwrap();
    assert!(site.edge_counter("/uplink/failures").unwrap() > failures, "uploads failed during the outage");
    let during_outage = site.edge_counter("/spool/depth").unwrap();

    let restarted_at = Utc::now();
    site.start_cloud().unwrap();
    site.stop_camera();
    let created = drained(&site);
    let events = site.cloud_events(PERSON).unwrap();
    check_events(&site, &events);
    assert_eq!(events.len() as u64, created, "nothing lost, nothing twice");
    assert!(created >= before + during_outage);
    // The backlog: events that happened while the cloud was down and were stored after it returned.
    let time = |e: &Value, k: &str| e[k].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let backlog = events
        .iter()
        .filter(|e| time(e, "occurred_at") < restarted_at && time(e, "received_at") >= restarted_at)
        .count() as u64;
    assert!(backlog >= during_outage, "{backlog} events delivered late, {during_outage} were spooled");
    eprintln!("outage: {during_outage} events spooled, {backlog} delivered after restart, {created} in total");
    site.stop_edge().unwrap();
}

#[test]
fn the_edge_uploads_over_https_to_a_cloud_with_a_private_ca() {
    let mut site = Site::start_with(SiteOptions { analyze_fps: 4.0, tls: true, ..SiteOptions::default() }).unwrap();
    assert!(site.cloud_url().starts_with("https://"));
    // A client that does not trust the private CA is refused by TLS.
    let untrusting = reqwest::blocking::Client::new().get(format!("{}/health", site.cloud_url())).send();
    assert!(untrusting.is_err(), "TLS must fail without the CA");
    site.wait_for("person detections over https", Duration::from_secs(120), |s| Ok(s.cloud_events(PERSON)?.len() >= 3))
        .unwrap();
    site.stop_camera();
    let created = drained(&site);
    let events = site.cloud_events(PERSON).unwrap();
    check_events(&site, &events);
    assert_eq!(events.len() as u64, created);
    site.stop_edge().unwrap();
}
