//! Fault tests on real processes: the edge killed with SIGKILL under load, and the WAN cut.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`) and `tests/setup/fixtures.sh`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use e2e::{Site, SiteOptions};
use serde_json::Value;

const PERSON: &str = "detection.person";

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn kill_9_of_the_edge_at_random_moments_loses_and_duplicates_nothing() {
    let mut site = Site::start(4.0).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    for round in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Let it run (analysing, spooling, uploading) for a random 1.5–5 s, then pull the plug.
        std::thread::sleep(Duration::from_millis(1500 + seed % 3500));
        site.kill_edge();
        site.restart_edge().unwrap_or_else(|e| panic!("restart {round}: {e}"));
    }
    site.wait_for("detections after the last restart", Duration::from_secs(60), |s| {
        Ok(s.edge_counter("/detector/events_created")? >= 2)
    })
    .unwrap();
    site.stop_camera();
    site.wait_spool_drained(Duration::from_secs(120));

    let confirmed = site.edge_spooled_ids();
    let events = site.cloud_events(PERSON).unwrap();
    let stored = ids(&events);
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    let missing: Vec<&String> = confirmed.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} spooled events never reached the cloud: {missing:?}",
        missing.len(),
        confirmed.len()
    );
    assert!(confirmed.len() >= 5, "too little load to mean anything: {}", confirmed.len());
    eprintln!("kill -9 x6: {} events confirmed by the edge, {} stored once each", confirmed.len(), stored.len());
    site.stop_edge().unwrap();
}

#[test]
fn a_long_wan_cut_with_detections_continuing_delivers_everything_in_order_after_it_heals() {
    let mut site =
        Site::start_with(SiteOptions { analyze_fps: 4.0, wan_proxy: true, ..SiteOptions::default() }).unwrap();
    site.wait_for("first detections through the WAN", Duration::from_secs(120), |s| {
        Ok(!s.cloud_events(PERSON)?.is_empty())
    })
    .unwrap();

    site.wan.as_ref().unwrap().cut();
    let cut_at = Instant::now();
    let failures = site.edge_counter("/uplink/failures").unwrap();
    site.wait_for("a backlog behind the cut", Duration::from_secs(180), |s| {
        Ok(cut_at.elapsed() >= Duration::from_secs(20) && s.edge_counter("/spool/depth")? >= 10)
    })
    .unwrap();
    assert!(site.edge_counter("/uplink/failures").unwrap() > failures, "uploads timed out during the cut");
    let backlog = site.edge_counter("/spool/depth").unwrap();
    let healed_at = Utc::now();
    site.wan.as_ref().unwrap().heal();
    site.stop_camera();
    site.wait_spool_drained(Duration::from_secs(120));

    let confirmed = site.edge_spooled_ids();
    let events = site.cloud_events(PERSON).unwrap();
    let stored = ids(&events);
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    assert_eq!(stored.len(), confirmed.len(), "cloud holds exactly what the edge spooled");
    assert!(confirmed.iter().all(|id| unique.contains(id)));

    // In order per source: sorted by when they happened, they were also stored in that order.
    let time = |e: &Value, k: &str| e[k].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let mut by_source: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in &events {
        by_source.entry(e["source"]["id"].as_str().unwrap().to_owned()).or_default().push(e);
    }
    for list in by_source.values_mut() {
        list.sort_by_key(|e| (time(e, "occurred_at"), e["id"].as_str().unwrap().to_owned()));
        for pair in list.windows(2) {
            assert!(
                time(pair[0], "received_at") <= time(pair[1], "received_at"),
                "stored out of order: {} then {}",
                pair[0]["id"],
                pair[1]["id"]
            );
        }
    }
    let late = events.iter().filter(|e| time(e, "received_at") >= healed_at).count() as u64;
    assert!(late >= backlog, "{late} delivered after the cut healed, {backlog} were waiting");
    eprintln!(
        "wan cut: {backlog} events waited behind the cut, {late} delivered after it healed, {} in total",
        stored.len()
    );
    site.stop_edge().unwrap();
}
