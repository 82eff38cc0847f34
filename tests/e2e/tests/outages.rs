//! Fault tests on real processes: the cloud killed with SIGKILL mid-ingest, and PostgreSQL stopped
//! (immediate mode, like a crash) and started again while the edge keeps uploading under load
//! (detections from the camera, and a badge reader swiping every 50 ms). Every event arrives exactly
//! once, in order per source; the cloud survives its database going away.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`) and `tests/setup/fixtures.sh`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use devsim::{Identity, SimDevice};
use e2e::{Site, SiteOptions};
use serde_json::Value;

/// A badge reader swiping every 50 ms (access decisions: a steady stream of the access class).
struct DoorLoad {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl DoorLoad {
    fn start(site: &Site) -> DoorLoad {
        let identity = Identity {
            broker: ([127, 0, 0, 1], site.mqtt_port.unwrap()).into(),
            site: "hq".into(),
            zone: "lobby".into(),
            id: "reader-1".into(),
            password: "reader-1-pw".into(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let reader = rt.block_on(SimDevice::connect(identity, false)).unwrap();
            let mut swipes = 0;
            while !flag.load(Ordering::Relaxed) {
                rt.block_on(reader.swipe(if swipes % 2 == 0 { "A1" } else { "NOPE" }, None)).unwrap();
                swipes += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            // Let the last swipes reach the edge before the connection goes.
            std::thread::sleep(Duration::from_millis(500));
            rt.block_on(reader.disconnect());
            swipes
        });
        DoorLoad { stop, thread }
    }

    /// Stops swiping; how many swipes were made.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn loaded_site() -> Site {
    Site::start_with(SiteOptions { doors: true, ..SiteOptions::default() }).unwrap()
}

/// Every swipe is decided and stored exactly once, and in order.
fn assert_every_swipe_once_in_order(site: &Site, swipes: usize) {
    site.wait_for("every access decision in the cloud", Duration::from_secs(120), |s| {
        Ok(s.cloud_events("access.granted")?.len() + s.cloud_events("access.denied")?.len() >= swipes)
    })
    .unwrap();
    let mut events = site.cloud_events("access.granted").unwrap();
    events.extend(site.cloud_events("access.denied").unwrap());
    let unique: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), events.len(), "an access event is stored twice");
    assert_eq!(events.len(), swipes, "one access decision stored per swipe");
    assert_in_order(&events);
}

/// Per source, sorted by when they happened, the events were also stored in that order.
fn assert_in_order(events: &[Value]) {
    let time = |e: &Value, k: &str| e[k].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let mut by_source: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in events {
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
}

const PERSON: &str = "detection.person";

/// Everything the edge spooled is stored exactly once, and per source in the order it happened.
fn assert_exactly_once_in_order(site: &Site) -> usize {
    let confirmed = site.edge_spooled_ids();
    let events = site.cloud_events(PERSON).unwrap();
    let stored: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    let missing: Vec<&String> = confirmed.iter().filter(|id| !unique.contains(id.as_str())).collect();
    assert!(missing.is_empty(), "{} of {} spooled events never arrived: {missing:?}", missing.len(), confirmed.len());
    assert_eq!(stored.len(), confirmed.len(), "the cloud holds exactly what the edge spooled");
    assert_in_order(&events);
    stored.len()
}

fn cloud_health(site: &Site) -> Option<u16> {
    reqwest::blocking::Client::new()
        .get(format!("{}/health", site.cloud_url()))
        .timeout(Duration::from_secs(10))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn the_cloud_killed_mid_ingest_three_times_loses_and_duplicates_nothing() {
    let mut site = loaded_site();
    let doors = DoorLoad::start(&site);
    site.wait_for("first detections in the cloud", Duration::from_secs(120), |s| {
        Ok(!s.cloud_events(PERSON)?.is_empty())
    })
    .unwrap();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id());
    for round in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(1000 + seed % 3000));
        site.kill_cloud();
        let depth = site.edge_counter("/spool/depth").unwrap();
        site.wait_for("a backlog while the cloud is dead", Duration::from_secs(60), |s| {
            Ok(s.edge_counter("/spool/depth")? > depth)
        })
        .unwrap();
        site.start_cloud().unwrap_or_else(|e| panic!("restart {round}: {e}"));
    }
    let swipes = doors.stop();
    site.stop_camera();
    site.wait_spool_drained(Duration::from_secs(180));
    let stored = assert_exactly_once_in_order(&site);
    assert!(stored >= 5, "too little load to mean anything: {stored}");
    assert_every_swipe_once_in_order(&site, swipes);
    eprintln!("cloud kill -9 x3: {stored} detections and {swipes} access decisions stored once each, in order");
    site.stop_edge().unwrap();
}

#[test]
fn postgresql_stopped_mid_ingest_and_started_again_loses_nothing_and_the_cloud_survives() {
    let mut site = loaded_site();
    let doors = DoorLoad::start(&site);
    site.wait_for("first detections in the cloud", Duration::from_secs(120), |s| {
        Ok(!s.cloud_events(PERSON)?.is_empty())
    })
    .unwrap();
    let cloud_pid = site.cloud.as_ref().unwrap().id();
    let failures = site.edge_counter("/uplink/failures").unwrap();

    site.pg.stop_immediate().unwrap();
    // The cloud stays up and says the database is gone; the edge keeps everything.
    site.wait_for("the cloud reporting its database down", Duration::from_secs(60), |s| {
        Ok(cloud_health(s) == Some(503))
    })
    .unwrap();
    let depth = site.edge_counter("/spool/depth").unwrap();
    site.wait_for("a backlog while PostgreSQL is down", Duration::from_secs(60), |s| {
        Ok(s.edge_counter("/spool/depth")? >= depth + 5 && s.edge_counter("/uplink/failures")? > failures)
    })
    .unwrap();
    assert!(site.cloud.as_mut().unwrap().try_wait().unwrap().is_none(), "the cloud died with its database");

    site.pg.start_again().unwrap();
    site.wait_for("the cloud healthy again", Duration::from_secs(60), |s| Ok(cloud_health(s) == Some(200))).unwrap();
    // A second outage right after recovery, while the backlog drains.
    std::thread::sleep(Duration::from_secs(2));
    site.pg.stop_immediate().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    site.pg.start_again().unwrap();

    let swipes = doors.stop();
    site.stop_camera();
    site.wait_spool_drained(Duration::from_secs(180));
    assert_eq!(site.cloud.as_ref().unwrap().id(), cloud_pid, "the same cloud process served throughout");
    assert!(site.cloud.as_mut().unwrap().try_wait().unwrap().is_none(), "the cloud is still running");
    let stored = assert_exactly_once_in_order(&site);
    assert!(stored >= 5, "too little load to mean anything: {stored}");
    assert_every_swipe_once_in_order(&site, swipes);
    eprintln!(
        "PostgreSQL stopped twice mid-ingest: {stored} detections and {swipes} access decisions stored once each, in order"
    );
    site.stop_edge().unwrap();
}
