//! Doors with the cloud absent: real broker, real MQTT clients (the device simulators), real spool.
//! A badge at a reader → access decision → unlock command at the lock → the lock's ack; a revoked
//! badge is refused; telemetry becomes `sensor.reading`; everything is journalled in the spool.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use devsim::{Identity, SimDevice};
use edge_mqtt::{Device, DeviceEvent, DeviceKind, RegistryDocument, hash_password};
use edged::devices::DevicesBuilt;
use edged::{Config, DEFAULT_CONFIG};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_proto::{EventKind, Payload};

const SITE_DOC: &str = r#"
schema = 1
revision = 1
issued_at = "2026-01-01T00:00:00Z"
timezone = "Europe/Paris"
max_offline_hours = 1000000
lockdown_override_groups = ["security"]
[[schedules]]
id = "always"
windows = [{ start = "00:00", end = "24:00" }]
[[groups]]
id = "staff"
doors = ["front"]
schedule = "always"
[[groups]]
id = "security"
doors = ["front"]
[[people]]
id = "carol"
groups = ["security"]
[[credentials]]
id = "c-carol"
person = "carol"
badge = "C1"
[[people]]
id = "alice"
groups = ["staff"]
[[people]]
id = "bob"
groups = ["staff"]
[[credentials]]
id = "c-alice"
person = "alice"
badge = "A1"
[[credentials]]
id = "c-bob"
person = "bob"
badge = "B1"
revoked = true
[[doors]]
id = "front"
zone = "lobby"
reader = "reader-1"
lock = "lock-1"
contact = "contact-1"
"#;

fn registry() -> RegistryDocument {
    let dev = |id: &str, kind| Device {
        id: id.into(),
        zone: "lobby".into(),
        kind,
        password_sha256: hash_password(&format!("{id}-pw")),
    };
    RegistryDocument {
        site: "hq".into(),
        devices: vec![
            dev("reader-1", DeviceKind::Reader),
            dev("lock-1", DeviceKind::Lock),
            dev("contact-1", DeviceKind::Contact),
            dev("temp-1", DeviceKind::Temperature),
            dev("panel-1", DeviceKind::Panel),
        ],
    }
}

async fn next_cmd(lock: &mut SimDevice) -> edge_mqtt::Command {
    match tokio::time::timeout(Duration::from_secs(5), lock.commands.recv()).await {
        Ok(Some(c)) => c,
        other => panic!("no command at the lock: {other:?}"),
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Edge {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    spool: edge_spool::Spool,
    stats: Arc<edged::devices::DeviceStats>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Edge {
    async fn start() -> Edge {
        Edge::start_with("").await
    }

    /// `mqtt_extra`: more `[mqtt]` keys.
    async fn start_with(mqtt_extra: &str) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices.json");
        std::fs::write(&devices, serde_json::to_string(&registry()).unwrap()).unwrap();
        let doc = dir.path().join("site.toml");
        std::fs::write(&doc, SITE_DOC).unwrap();
        let text = format!(
            "{DEFAULT_CONFIG}\n[mqtt]\nlisten = \"127.0.0.1:0\"\ndevices = {devices:?}\n{mqtt_extra}\n[access]\nsite_document = {doc:?}\n"
        );
        let cfg = Config::from_toml(&text).unwrap();
        let spool = edge_spool::Spool::open(&dir.path().join("spool")).unwrap();

        let built = DevicesBuilt::build(&cfg).await.unwrap().unwrap();
        let addr = built.local_addr();
        let stats = built.stats.clone();
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        built.spawn(&tasks, &cancel, &cfg, spool.clone(), Arc::new(Notify::new()));

        Edge { _dir: dir, addr, spool, stats, tasks, cancel }
    }

    fn id(&self, id: &str) -> Identity {
        Identity {
            broker: self.addr,
            site: "hq".into(),
            zone: "lobby".into(),
            id: id.into(),
            password: format!("{id}-pw"),
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badge_unlocks_the_door_and_a_revoked_badge_is_refused_without_a_cloud() {
    let edge = Edge::start().await;
    let (stats, spool) = (edge.stats.clone(), edge.spool.clone());
    let id = |i: &str| edge.id(i);
    let mut lock = SimDevice::connect(id("lock-1"), true).await.unwrap();
    let reader = SimDevice::connect(id("reader-1"), false).await.unwrap();
    let temp = SimDevice::connect(id("temp-1"), false).await.unwrap();
    // the edge's subscription is live once the devices' `online` status arrived
    wait_for("online statuses", || stats.messages.load(Relaxed) >= 3).await;

    {
        let live = stats.live.lock().unwrap();
        let lock_state = &live["lock-1"];
        assert!(lock_state.online && lock_state.firmware.as_deref() == Some("sim-1.0"), "{live:?}");
    }
    // badge → unlock command at the lock → ack
    let swiped = Instant::now();
    reader.swipe("A1", None).await.unwrap();
    let cmd = tokio::time::timeout(Duration::from_secs(5), lock.commands.recv()).await.unwrap().unwrap();
    let latency = swiped.elapsed();
    assert_eq!((cmd.action.as_str(), cmd.secs), ("unlock", Some(5)));
    lock.obey(&cmd).await.unwrap();
    wait_for("the lock's ack", || stats.commands_acked.load(Relaxed) == 1).await;
    println!("badge → unlock command at the lock: {latency:?}");

    // revoked badge: denied, no command
    reader.swipe("B1", None).await.unwrap();
    wait_for("the denial", || stats.access_denied.load(Relaxed) == 1).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), lock.commands.recv()).await.is_err(), "no command");

    // telemetry
    temp.telemetry("temperature", 31.5, "celsius").await.unwrap();
    wait_for("the reading", || stats.readings.load(Relaxed) == 1).await;

    // everything is in the spool, ready for the cloud whenever it comes back
    let mut seen = Vec::new();
    wait_for("spooled events", || {
        seen = spool.peek(100).unwrap().into_iter().map(|s| s.event).collect();
        seen.iter().any(|e| e.kind == EventKind::SensorReading)
    })
    .await;
    let access: Vec<(EventKind, String, Option<String>)> = seen
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Access(a) => Some((e.kind, a.reason.clone(), a.person.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        access,
        vec![
            (EventKind::AccessGranted, "granted".into(), Some("alice".into())),
            (EventKind::AccessDenied, "credential_revoked".into(), Some("bob".into())),
        ]
    );
    let reading = seen.iter().find(|e| e.kind == EventKind::SensorReading).unwrap();
    assert_eq!(reading.source.id, "temp-1");
    assert_eq!(reading.zone.as_deref(), Some("lobby"));
    assert!(seen.iter().filter(|e| e.kind == EventKind::DeviceStatus).count() >= 3);

    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_lockdown_overrides_schedules_until_cleared() {
    let edge = Edge::start().await;
    let stats = edge.stats.clone();
    let mut lock = SimDevice::connect(edge.id("lock-1"), true).await.unwrap();
    let reader = SimDevice::connect(edge.id("reader-1"), false).await.unwrap();
    let panel = SimDevice::connect(edge.id("panel-1"), false).await.unwrap();
    let temp = SimDevice::connect(edge.id("temp-1"), false).await.unwrap();
    wait_for("online statuses", || stats.messages.load(Relaxed) >= 4).await;

    panel.event(&DeviceEvent::Lockdown { id: "intruder".into(), priority: 5, minutes: Some(30) }).await.unwrap();
    assert_eq!(next_cmd(&mut lock).await.action, "lock");
    // alice's schedule is open all day, the lockdown still wins; a responder gets in
    reader.swipe("A1", None).await.unwrap();
    wait_for("the denial", || stats.access_denied.load(Relaxed) == 1).await;
    reader.swipe("C1", None).await.unwrap();
    assert_eq!(next_cmd(&mut lock).await.action, "unlock");
    // only a panel may clear, and only with the lockdown's priority
    temp.event(&DeviceEvent::LockdownClear { id: "intruder".into(), priority: 9 }).await.unwrap();
    panel.event(&DeviceEvent::LockdownClear { id: "intruder".into(), priority: 1 }).await.unwrap();
    wait_for("two refusals", || stats.lockdowns_refused.load(Relaxed) == 2).await;
    reader.swipe("A1", None).await.unwrap();
    wait_for("a second denial", || stats.access_denied.load(Relaxed) == 2).await;
    panel.event(&DeviceEvent::LockdownClear { id: "intruder".into(), priority: 5 }).await.unwrap();
    // the panel and the reader are separate connections: wait for the clear before swiping
    wait_for("the lockdown to end", || stats.alarms.load(Relaxed) == 2).await;
    reader.swipe("A1", None).await.unwrap();
    assert_eq!(next_cmd(&mut lock).await.action, "unlock");

    let reasons = || -> Vec<String> {
        edge.spool
            .peek(100)
            .unwrap()
            .into_iter()
            .filter_map(|s| match s.event.payload {
                Payload::Access(a) => Some(a.reason),
                Payload::Alert(a) => Some(a.message),
                _ => None,
            })
            .collect()
    };
    // the journal writer appends just after the command went out
    wait_for("the last grant in the spool", || reasons().iter().any(|r| r == "granted")).await;
    let reasons = reasons();
    for expect in ["lockdown_started: intruder", "lockdown", "granted_lockdown_override", "lockdown_ended: intruder"] {
        assert!(reasons.iter().any(|r| r == expect), "{expect} missing from {reasons:?}");
    }
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_goes_offline_after_its_heartbeat_timeout() {
    let edge = Edge::start_with("heartbeat_timeout_secs = 1").await;
    let stats = edge.stats.clone();
    let temp = SimDevice::connect(edge.id("temp-1"), false).await.unwrap();
    wait_for("online", || stats.live.lock().unwrap().get("temp-1").is_some_and(|l| l.online)).await;
    // silence (the connection stays up): offline after ~1 s, with a device.status event
    wait_for("offline", || stats.live.lock().unwrap().get("temp-1").is_some_and(|l| !l.online)).await;
    wait_for("the offline event", || {
        edge.spool.peek(100).unwrap().iter().any(|s| {
            matches!(&s.event.payload, Payload::DeviceStatus(d) if !d.online && d.detail.as_deref() == Some("heartbeat timeout"))
        })
    })
    .await;
    // heard again: online
    temp.telemetry("temperature", 20.0, "celsius").await.unwrap();
    wait_for("online again", || stats.live.lock().unwrap().get("temp-1").is_some_and(|l| l.online)).await;
    edge.stop().await;
}
