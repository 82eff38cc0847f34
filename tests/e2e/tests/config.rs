//! The down link end to end: an administrator changes the site's doors, people and badges in the
//! cloud; the site's edge pulls the new version, the real reader and lock on its broker obey it at
//! once, a counting line set in the cloud appears on the running camera, the edge reports the version
//! it runs, and after a reboot with the cloud unreachable it
//! still runs the last version it received (a badge revoked in the cloud stays refused).

use std::time::Duration;

use devsim::{Identity, SimDevice};
use e2e::{Site, SiteOptions};
use serde_json::json;

fn device(site: &Site, id: &str) -> Identity {
    Identity {
        broker: ([127, 0, 0, 1], site.mqtt_port.unwrap()).into(),
        site: "hq".into(),
        zone: "lobby".into(),
        id: id.into(),
        password: format!("{id}-pw"),
    }
}

/// Swipes `badge` and says whether the lock was told to unlock within a few seconds (the lock
/// acknowledges it like a real one).
fn opens(rt: &tokio::runtime::Runtime, reader: &SimDevice, lock: &mut SimDevice, badge: &str) -> bool {
    rt.block_on(async {
        while lock.commands.try_recv().is_ok() {}
        reader.swipe(badge, None).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(4), lock.commands.recv()).await {
            Ok(Some(cmd)) if cmd.action == "unlock" => {
                lock.obey(&cmd).await.unwrap();
                true
            }
            _ => false,
        }
    })
}

fn cloud_version(site: &Site, token: &str) -> u64 {
    let path = format!("/api/sites/{}/config", site.ids.site_id);
    site.cloud_json("GET", &path, token, None).unwrap()["version"].as_u64().unwrap()
}

fn wait_in_sync(site: &Site, token: &str, what: &str) -> u64 {
    let want = cloud_version(site, token);
    let path = format!("/api/sites/{}/config", site.ids.site_id);
    site.wait_for(what, Duration::from_secs(60), |s| {
        let view = s.cloud_json("GET", &path, token, None)?;
        Ok(s.edge_counter("/config/version")? == want && view["edges"][0]["in_sync"] == true)
    })
    .unwrap();
    want
}

#[test]
fn doors_people_badges_camera_lines_and_devices_set_in_the_cloud_run_on_the_edge_and_survive_a_reboot_offline() {
    let mut site = Site::start_with(SiteOptions { doors: true, ..SiteOptions::default() }).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut lock = rt.block_on(SimDevice::connect(device(&site, "lock-1"), true)).unwrap();
    let reader = rt.block_on(SimDevice::connect(device(&site, "reader-1"), false)).unwrap();
    let admin = site.user_token("admin@acme.test", "admin").unwrap();

    // The local site document (alice, badge A1) runs until the cloud manages the doors.
    assert!(opens(&rt, &reader, &mut lock, "A1"), "local document: alice's badge opens");
    assert!(!opens(&rt, &reader, &mut lock, "C9"), "nobody has C9 yet");

    // The cloud takes over: the door, a night-shift group, Carol with badge C9.
    let access = json!({
        "schedules": [{ "id": "always", "windows": [{ "start": "00:00", "end": "24:00" }] }],
        "groups": [{ "id": "night", "doors": ["front"], "schedule": "always" }],
        "doors": [{ "id": "front", "zone": "lobby", "reader": "reader-1", "lock": "lock-1", "unlock_secs": 3 }],
        "max_offline_hours": 720,
    });
    let path = format!("/api/sites/{}/config/access", site.ids.site_id);
    site.cloud_json("PUT", &path, &admin, Some(&access)).unwrap();
    let carol =
        site.cloud_json("POST", "/api/people", &admin, Some(&json!({ "name": "Carol", "groups": ["night"] }))).unwrap();
    let creds = format!("/api/people/{}/credentials", carol["id"].as_str().unwrap());
    let badge = site.cloud_json("POST", &creds, &admin, Some(&json!({ "badge": "C9" }))).unwrap();
    let refused_rule = json!({
        "name": "Refused badge",
        "trigger": { "type": "event", "event_kind": "access.denied" },
        "actions": [{ "type": "log", "level": "warn", "message": "badge refused at {source}" }],
    });
    let rule = site.cloud_json("POST", "/api/rules", &admin, Some(&refused_rule)).unwrap();
    let v1 = wait_in_sync(&site, &admin, "the edge runs the cloud's doors");
    assert!(opens(&rt, &reader, &mut lock, "C9"), "Carol's badge from the cloud opens the door");
    assert!(!opens(&rt, &reader, &mut lock, "A1"), "the cloud's document replaced the local file's");

    // Revoked in the cloud: refused at the door as soon as the edge has the new version.
    let revoke = format!("/api/credentials/{}/revoke", badge["id"].as_str().unwrap());
    site.cloud_json("POST", &revoke, &admin, Some(&json!({}))).unwrap();
    let v2 = wait_in_sync(&site, &admin, "the edge runs the revocation");
    assert!(v2 > v1);
    assert!(!opens(&rt, &reader, &mut lock, "C9"), "a revoked badge is refused");
    // The cloud's rule ran on the edge, and its execution is in the cloud's rule history.
    let history = format!("/api/rules/{}/history", rule["id"].as_str().unwrap());
    site.wait_for("the rule's execution in the cloud", Duration::from_secs(60), |s| {
        let h = s.cloud_json("GET", &history, &admin, None)?;
        Ok(h.as_array().is_some_and(|h| {
            h.iter().any(|e| e["outcome"] == "fired" && e["detail"]["actions"][0]["result"]["status"] == "ok")
        }))
    })
    .unwrap();
    let status = site.edge_status().unwrap();
    assert_eq!(status["config"]["refused_version"], serde_json::Value::Null, "{status}");

    // The camera's analytics from the cloud: a counting line appears on the running camera.
    let cameras = json!([{ "id": "cam-1", "lines": [{ "id": "cloud-line", "a": [0.5, 0.0], "b": [0.5, 1.0] }] }]);
    let path = format!("/api/sites/{}/config/cameras", site.ids.site_id);
    site.cloud_json("PUT", &path, &admin, Some(&cameras)).unwrap();
    wait_in_sync(&site, &admin, "the edge runs the cloud's camera analytics");
    let line = |s: &Site| -> anyhow::Result<bool> {
        Ok(s.edge_status()?["cameras"][0]["analysis"]["lines"][0]["id"] == "cloud-line")
    };
    site.wait_for("the cloud's line on the running camera", Duration::from_secs(30), line).unwrap();

    // The device registry from the cloud: a new reader may log in to the edge's broker.
    assert!(rt.block_on(SimDevice::connect(device(&site, "reader-2"), false)).is_err(), "an unknown device is refused");
    let hash = |id: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(format!("{id}-pw").as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let registry = json!({ "site": "hq", "devices": [
        { "id": "reader-1", "zone": "lobby", "kind": "reader", "password_sha256": hash("reader-1") },
        { "id": "lock-1", "zone": "lobby", "kind": "lock", "password_sha256": hash("lock-1") },
        { "id": "reader-2", "zone": "lobby", "kind": "reader", "password_sha256": hash("reader-2") },
    ] });
    let path = format!("/api/sites/{}/config/devices", site.ids.site_id);
    site.cloud_json("PUT", &path, &admin, Some(&registry)).unwrap();
    let v2 = wait_in_sync(&site, &admin, "the edge runs the cloud's device registry");
    let reader2 = rt.block_on(SimDevice::connect(device(&site, "reader-2"), false)).expect("the new reader logs in");
    rt.block_on(reader2.disconnect());

    // Reboot with the cloud gone: the edge boots from the version it kept, not the local file.
    site.kill_cloud();
    site.kill_edge();
    drop(lock);
    drop(reader);
    site.restart_edge().unwrap();
    let mut lock = rt.block_on(SimDevice::connect(device(&site, "lock-1"), true)).unwrap();
    let reader = rt.block_on(SimDevice::connect(device(&site, "reader-1"), false)).unwrap();
    assert_eq!(site.edge_counter("/config/version").unwrap(), v2);
    assert!(!opens(&rt, &reader, &mut lock, "C9"), "still revoked after a reboot offline");
    assert!(!opens(&rt, &reader, &mut lock, "A1"), "the local file does not come back");
    site.wait_for("the cloud's line after the reboot", Duration::from_secs(30), line).unwrap();
    let reader2 = rt
        .block_on(SimDevice::connect(device(&site, "reader-2"), false))
        .expect("the cloud's registry after the reboot");
    rt.block_on(reader2.disconnect());

    // The cloud returns: every decision reaches it, with the cloud's people.
    site.start_cloud().unwrap();
    site.wait_for("the refusals after the reboot in the cloud", Duration::from_secs(60), |s| {
        let denied = s.cloud_events("access.denied")?;
        Ok(denied.iter().filter(|e| e["payload"]["reason"] == "credential_revoked").count() >= 2)
    })
    .unwrap();
    let granted = site.cloud_events("access.granted").unwrap();
    assert!(granted.iter().any(|e| e["payload"]["person"] == carol["id"]), "{granted:?}");
}
