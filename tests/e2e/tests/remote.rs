//! An operator's command reaches a door through the cloud and the site's edge: a security user
//! asks the cloud API to unlock the front door's lock; the edge (long-polling over its outbound
//! connection) unlocks it through the access engine, the real lock on the edge's MQTT broker carries
//! it out, and the cloud records the outcome. A viewer may not, and the decision is journalled.
//! The edge's heartbeats show its health to operators.

use std::time::Duration;

use devsim::{Identity, SimDevice};
use e2e::{Site, SiteOptions};

#[test]
fn a_remote_unlock_travels_cloud_edge_lock_and_is_acknowledged() {
    let site = Site::start_with(SiteOptions { doors: true, ..SiteOptions::default() }).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let port = site.mqtt_port.unwrap();
    let identity = Identity {
        broker: ([127, 0, 0, 1], port).into(),
        site: "hq".into(),
        zone: "lobby".into(),
        id: "lock-1".into(),
        password: "lock-1-pw".into(),
    };
    let mut lock = rt.block_on(SimDevice::connect(identity, true)).unwrap();

    let admin = site.user_token("admin@acme.test", "admin").unwrap();
    let security = site.user_token("security@acme.test", "security").unwrap();
    let viewer = site.user_token("viewer@acme.test", "viewer").unwrap();
    let device = site
        .cloud_json(
            "POST",
            "/api/devices",
            &admin,
            Some(&serde_json::json!({ "site_id": site.ids.site_id, "name": "lock-1", "kind": "lock" })),
        )
        .unwrap();
    let id = device["id"].as_str().unwrap().to_owned();
    let path = format!("/api/devices/{id}/command");
    let unlock = serde_json::json!({ "command": "unlock" });
    assert!(site.cloud_json("POST", &path, &viewer, Some(&unlock)).is_err(), "a viewer cannot open a door");
    let queued = site.cloud_json("POST", &path, &security, Some(&unlock)).unwrap();
    assert_eq!(queued["status"], "queued");

    let cmd = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), lock.commands.recv()).await })
        .expect("the unlock reaches the lock within 30 s")
        .unwrap();
    assert_eq!(cmd.action, "unlock");
    rt.block_on(lock.obey(&cmd)).unwrap();

    let mut status = serde_json::Value::Null;
    site.wait_for("the edge's acknowledgement in the cloud", Duration::from_secs(30), |s| {
        status = s.cloud_json("GET", &format!("/api/devices/{id}/status"), &security, None)?;
        Ok(status["recent_commands"][0]["status"] == "done")
    })
    .unwrap();
    let recent = &status["recent_commands"][0];
    assert_eq!(recent["id"], queued["id"]);
    assert!(recent["result"].as_str().unwrap().contains("front"), "{recent}");
    assert_eq!(status["queued_commands"], serde_json::json!([]));

    // Stream stop/start: the camera's analysis pauses and resumes at the edge.
    let camera = site
        .cloud_json(
            "POST",
            "/api/cameras",
            &admin,
            Some(&serde_json::json!({ "site_id": site.ids.site_id, "name": "cam-1", "stream_url": "rtsp://127.0.0.1/cam" })),
        )
        .unwrap();
    let stream = serde_json::json!({ "camera_id": camera["id"] });
    site.cloud_json("POST", "/api/streams/stop", &security, Some(&stream)).unwrap();
    site.wait_for("analysis paused at the edge", Duration::from_secs(30), |s| {
        Ok(s.edge_status()?["cameras"][0]["analysis"]["paused"] == true)
    })
    .unwrap();
    let frames = site.edge_counter("/cameras/0/analysis/frames").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(site.edge_counter("/cameras/0/analysis/frames").unwrap(), frames, "no analysis while stopped");
    site.cloud_json("POST", "/api/streams/start", &security, Some(&stream)).unwrap();
    site.wait_for("analysis resumed", Duration::from_secs(30), |s| {
        Ok(s.edge_status()?["cameras"][0]["analysis"]["paused"] == false
            && s.edge_counter("/cameras/0/analysis/frames")? > frames)
    })
    .unwrap();

    // The edge's heartbeat: its health, as the cloud keeps it for operators.
    let mut edges = serde_json::Value::Null;
    site.wait_for("a heartbeat with the camera up", Duration::from_secs(30), |s| {
        edges = s.cloud_json("GET", "/api/edges", &viewer, None)?;
        Ok(edges[0]["health"]["cameras_up"] == 1)
    })
    .unwrap();
    let health = &edges[0]["health"];
    assert_eq!(health["cameras"][0]["id"], "cam-1");
    assert!(health["spool"]["depth_by_class"]["alarm"].is_u64(), "{health}");
    assert!(health["disk_free_bytes"].as_u64().unwrap() > 0, "{health}");
    assert!(health["uptime_secs"].is_u64());

    // Journalled at the edge and uploaded: an access.granted with reason granted_remote.
    site.wait_for("the remote grant in the cloud", Duration::from_secs(30), |s| {
        Ok(s.cloud_events("access.granted")?.iter().any(|e| e["payload"]["reason"] == "granted_remote"))
    })
    .unwrap();
}
