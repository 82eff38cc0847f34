//! Enrolment on real processes: an edge started without an identity is enrolled with a one-time
//! claim code, through `vigil-edge enrol` and (separately) through its status page's form, without
//! a restart; its events, including those recorded before it was enrolled, reach the cloud. After
//! the edge is revoked, its events stay spooled (the status says so) and nothing is lost.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`) and `tests/setup/fixtures.sh`.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use e2e::{Site, SiteOptions};
use serde_json::Value;

const PERSON: &str = "detection.person";

fn unenrolled_site() -> Site {
    Site::start_with(SiteOptions { unenrolled: true, ..SiteOptions::default() }).unwrap()
}

fn cloud_state(site: &Site) -> String {
    site.edge_status().map(|s| s["cloud"]["state"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

fn stored_ids(site: &Site) -> Vec<String> {
    site.cloud_events(PERSON).unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

/// Events recorded while not enrolled wait in the spool.
fn backlog_before_enrolment(site: &Site) -> u64 {
    site.wait_for("detections spooled before enrolment", Duration::from_secs(120), |s| {
        Ok(s.edge_counter("/spool/depth")? >= 3)
    })
    .unwrap();
    let status = site.edge_status().unwrap();
    assert_eq!(status["cloud"]["enrolled"], false, "{status}");
    assert_eq!(status["cloud"]["state"], "not_enrolled", "{status}");
    assert_eq!(site.edge_counter("/uplink/events_acked").unwrap(), 0);
    site.edge_counter("/spool/depth").unwrap()
}

#[test]
fn an_edge_enrolled_with_the_cli_delivers_everything_and_once_revoked_keeps_its_events() {
    let mut site = unenrolled_site();
    let backlog = backlog_before_enrolment(&site);
    let admin = site.user_token("admin@acme.test", "admin").unwrap();
    let code = site.claim_code(&admin).unwrap();

    let printed = site.enrol_with_cli(&code, "hq-edge-cli").unwrap();
    assert!(printed.contains("Enrolled: edge hq-edge-cli"), "{printed}");
    let token_file = site.path().join("edge.token");
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let enrolment = site.enrolment_file().unwrap();
    assert!(enrolment.contains(&site.ids.site_id) && !enrolment.contains(&token), "{enrolment}");
    assert!(!printed.contains(&token) && !printed.contains(&code), "the CLI printed a secret: {printed}");
    // The code is single use.
    assert!(site.enrol_with_cli(&code, "hq-edge-again").unwrap_err().to_string().contains("claim code"));

    // The running daemon picks the enrolment up by itself and sends its backlog.
    site.wait_for("the edge to use its enrolment", Duration::from_secs(60), |s| Ok(cloud_state(s) == "ok")).unwrap();
    site.wait_for("the backlog in the cloud", Duration::from_secs(120), |s| {
        Ok(s.cloud_events(PERSON)?.len() as u64 >= backlog)
    })
    .unwrap();

    // Revoked: refused from its next request; the edge says so and keeps everything.
    let edges = site.cloud_json("GET", "/api/edges", &admin, None).unwrap();
    let edge = edges.as_array().unwrap().iter().find(|e| e["name"] == "hq-edge-cli").unwrap().clone();
    let edge_id = edge["id"].as_str().unwrap();
    assert!(!edge["last_seen_at"].is_null(), "{edge}");
    site.cloud_json("DELETE", &format!("/api/edges/{edge_id}"), &admin, None).unwrap();
    site.wait_for("the edge to see it is refused", Duration::from_secs(60), |s| Ok(cloud_state(s) == "unauthorized"))
        .unwrap();
    let stored_at_revocation = stored_ids(&site).len();
    site.wait_for("events spooled after the revocation", Duration::from_secs(120), |s| {
        Ok(s.edge_counter("/spool/depth")? >= 3)
    })
    .unwrap();
    site.stop_camera();
    std::thread::sleep(Duration::from_secs(3));
    let page = site.edge_page().unwrap();
    assert!(page.contains("data-state=\"unauthorized\"") && page.contains("action=\"/enrol\""), "{page}");
    let log = std::fs::read_to_string(site.path().join("edge.log")).unwrap();
    assert!(log.contains("refuses this edge's credential"), "the edge must say why it is not sending");
    assert!(!log.contains(&token) && !log.contains(&code), "a secret reached the edge's log");

    // Nothing lost: everything the edge spooled is either stored once or still waiting.
    let confirmed = site.edge_spooled_ids();
    let stored = stored_ids(&site);
    assert_eq!(stored.len(), stored_at_revocation, "a revoked edge stored events");
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    let waiting = site.edge_counter("/spool/depth").unwrap() as usize;
    assert!(waiting > 0);
    assert_eq!(stored.len() + waiting, confirmed.len(), "stored + waiting = everything the edge spooled");
    assert!(stored.iter().all(|id| confirmed.contains(id)));
    eprintln!(
        "enrol (CLI): {backlog} spooled before enrolment, {} stored, {waiting} kept after revocation",
        stored.len()
    );
    site.stop_edge().unwrap();
}

#[test]
fn the_status_page_form_enrols_a_running_edge_without_a_restart() {
    let mut site = unenrolled_site();
    let backlog = backlog_before_enrolment(&site);
    let page = site.edge_page().unwrap();
    assert!(page.contains("action=\"/enrol\"") && page.contains("name=\"code\""), "{page}");
    let admin = site.user_token("admin@acme.test", "admin").unwrap();

    let (status, page) = site.enrol_with_form("ABCD-EFGH-JKMN", "hq-edge-form").unwrap();
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("refused the claim code"), "{page}");
    assert_eq!(cloud_state(&site), "not_enrolled");

    let code = site.claim_code(&admin).unwrap();
    let (status, page) = site.enrol_with_form(&code, "hq-edge-form").unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("enrolled as hq-edge-form"), "{page}");
    assert!(!page.contains(&code), "the page shows the code back");
    site.wait_for("events from the enrolled edge", Duration::from_secs(120), |s| {
        Ok(s.cloud_events(PERSON)?.len() as u64 >= backlog && cloud_state(s) == "ok")
    })
    .unwrap();
    let status: Value = site.edge_status().unwrap();
    assert_eq!(status["cloud"]["name"], "hq-edge-form", "{status}");
    assert_eq!(status["cloud"]["site"], site.ids.site_id.as_str(), "{status}");
    let page = site.edge_page().unwrap();
    assert!(!page.contains("action=\"/enrol\""), "the form is gone once enrolled: {page}");

    // A restart keeps the identity (from the enrolment file, no token in the environment).
    site.stop_edge().unwrap();
    site.restart_edge().unwrap();
    site.wait_for("the restarted edge sending", Duration::from_secs(60), |s| Ok(cloud_state(s) == "ok")).unwrap();
    site.stop_camera();
    site.wait_spool_drained(Duration::from_secs(120));

    let confirmed = site.edge_spooled_ids();
    let stored = stored_ids(&site);
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    let missing: Vec<&String> = confirmed.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "{} of {} spooled events never arrived", missing.len(), confirmed.len());
    eprintln!("enrol (form): {backlog} spooled before enrolment, {} stored, none lost", stored.len());
    site.stop_edge().unwrap();
}
