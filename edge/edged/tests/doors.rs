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
        config: None,
        firmware: None,
    };
    RegistryDocument {
        site: "hq".into(),
        devices: vec![
            dev("reader-1", DeviceKind::Reader),
            dev("lock-1", DeviceKind::Lock),
            dev("contact-1", DeviceKind::Contact),
            dev("temp-1", DeviceKind::Temperature),
            dev("panel-1", DeviceKind::Panel),
            dev("ac", DeviceKind::Actuator),
            Device {
                config: Some(serde_json::json!({ "setpoint": 22, "mode": "cool" })),
                firmware: Some(edge_mqtt::FirmwareOffer {
                    version: "sim-2.0".into(),
                    url: "https://firmware.example/hvac-2.0.bin".into(),
                    sha256: "ab".repeat(32),
                }),
                ..dev("hvac-1", DeviceKind::Actuator)
            },
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
    control: tokio::sync::mpsc::Sender<(edged::devices::Control, edged::devices::ControlReply)>,
    tap: edged::rules::EventTap,
    rules: Option<Arc<edged::rules::RulesStats>>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Edge {
    async fn start() -> Edge {
        Edge::start_with("").await
    }

    async fn start_with(mqtt_extra: &str) -> Edge {
        Edge::start_full(mqtt_extra, None).await
    }

    /// `mqtt_extra`: more `[mqtt]` keys; `rules`: a rule file to run.
    async fn start_full(mqtt_extra: &str, rules: Option<&std::path::Path>) -> Edge {
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

        let built = DevicesBuilt::build(&cfg, None, None).await.unwrap().unwrap();
        let addr = built.local_addr();
        let stats = built.stats.clone();
        let control = built.control.clone();
        let doors = built.doors.clone();
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (tap, tap_rx) = match rules {
            Some(_) => {
                let (tap, rx) = edged::rules::EventTap::new(4096);
                (tap, Some(rx))
            }
            None => (edged::rules::EventTap::default(), None),
        };
        built.spawn(&tasks, &cancel, &cfg, spool.clone(), Arc::new(Notify::new()), tap.clone());
        let rules_stats = match (rules, tap_rx) {
            (Some(file), Some(rx)) => {
                let compiled = edge_rules::RuleSet::load(file).unwrap().compile().unwrap();
                let stats = Arc::new(edged::rules::RulesStats::default());
                let stage = edged::rules::RulesStage {
                    tenant: cfg.tenant,
                    site: cfg.site,
                    engine: edge_rules::Engine::new(compiled),
                    control: Some(control.clone()),
                    doors,
                    cameras: vec![("cam-restricted".into(), Some("restricted".into()))],
                    recording: None,
                    lockdown_priority: 10,
                    spool: spool.clone(),
                    spooled: Arc::new(Notify::new()),
                    history: dir.path().join("rules-history.jsonl"),
                    stats: stats.clone(),
                    uploads: None,
                };
                let (_, reload) = tokio::sync::mpsc::channel(1);
                tasks.spawn(stage.run(rx, reload, cancel.clone()));
                Some(stats)
            }
            _ => None,
        };

        Edge { _dir: dir, addr, spool, stats, control, tap, rules: rules_stats, tasks, cancel }
    }

    async fn order(&self, c: edged::devices::Control) -> Result<String, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send((c, tx)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx).await.unwrap().unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_operators_drive_doors_and_devices_through_the_control_channel() {
    use edged::devices::Control;
    let edge = Edge::start().await;
    let stats = edge.stats.clone();
    let mut lock = SimDevice::connect(edge.id("lock-1"), true).await.unwrap();
    let mut temp = SimDevice::connect(edge.id("temp-1"), true).await.unwrap();
    wait_for("online statuses", || stats.messages.load(Relaxed) >= 2).await;

    // A remote unlock: one passage, journalled as granted_remote.
    let by = "operator:u-1".to_owned();
    let done = edge.order(Control::Unlock { doors: Some(vec!["front".into()]), by: by.clone() }).await;
    assert_eq!(done, Ok("unlocked front".to_owned()));
    assert_eq!(next_cmd(&mut lock).await.action, "unlock");

    // A lockdown locks every door; a remote unlock is then refused and nothing reaches the lock.
    let ld =
        Control::Lockdown { id: "rule:after-hours".into(), priority: 10, doors: None, minutes: None, by: by.clone() };
    assert_eq!(edge.order(ld).await, Ok("lockdown rule:after-hours on 1 doors".to_owned()));
    assert_eq!(next_cmd(&mut lock).await.action, "lock");
    let refused = edge.order(Control::Unlock { doors: None, by: by.clone() }).await;
    assert_eq!(refused, Err("refused: front: lockdown".to_owned()));
    assert!(tokio::time::timeout(Duration::from_millis(300), lock.commands.recv()).await.is_err(), "no unlock");
    let weak = Control::ClearLockdown { id: "rule:after-hours".into(), priority: 5, by: by.clone() };
    assert!(edge.order(weak).await.unwrap_err().contains("refused"));
    let clear = Control::ClearLockdown { id: "rule:after-hours".into(), priority: 10, by: by.clone() };
    assert_eq!(edge.order(clear).await, Ok("lockdown rule:after-hours cleared".to_owned()));

    // A device command reaches that device only; unknown devices and doors are errors.
    let on = edge
        .order(Control::DeviceCommand { device: "temp-1".into(), action: "ac_on".into(), params: None, by: by.clone() })
        .await;
    assert!(on.unwrap().starts_with("ac_on sent to temp-1"));
    assert_eq!(next_cmd(&mut temp).await.action, "ac_on");
    let ghost = Control::DeviceCommand { device: "ghost".into(), action: "on".into(), params: None, by: by.clone() };
    assert_eq!(edge.order(ghost).await, Err("no device ghost".to_owned()));
    let nowhere = edge.order(Control::Unlock { doors: Some(vec!["vault".into()]), by }).await;
    assert_eq!(nowhere, Err("refused: no door vault".to_owned()));

    // Journalled: the remote grant, the refusal during the lockdown, and the lockdown alarms.
    let mut reasons = Vec::new();
    wait_for("journalled decisions", || {
        let events: Vec<_> = edge.spool.peek(100).unwrap().into_iter().map(|s| s.event).collect();
        reasons = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Access(a) => Some(a.reason.clone()),
                Payload::Alert(a) => Some(a.message.clone()),
                _ => None,
            })
            .collect();
        reasons.len() >= 4
    })
    .await;
    assert!(reasons.contains(&"granted_remote".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"lockdown".to_owned()), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("lockdown_started")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("lockdown_ended")), "{reasons:?}");
    edge.stop().await;
}

/// The seed's two rules, as written in the product spec, from the shipped rule file: "After Hours
/// Alert" (person in the restricted zone 18:00-06:00 → notify security, lock all doors, start
/// recording) and "Temperature Alert" (> 30 °C → alert facilities, turn on the AC, log) — with
/// real devices on the real broker and no cloud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_rules_fire_with_their_actions_and_keep_a_history() {
    use edge_rules::{ActionResult, ExecutionOutcome};
    use vigil_proto::{Alert, BoundingBox, DetectedObject, Detection, Event, Source, SourceKind, Timestamp};

    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/rules/seed.toml");
    let edge = Edge::start_full("", Some(&seed)).await;
    let (stats, rules) = (edge.stats.clone(), edge.rules.clone().unwrap());
    let mut lock = SimDevice::connect(edge.id("lock-1"), true).await.unwrap();
    let mut ac = SimDevice::connect(edge.id("ac"), true).await.unwrap();
    let reader = SimDevice::connect(edge.id("reader-1"), false).await.unwrap();
    let temp = SimDevice::connect(edge.id("temp-1"), false).await.unwrap();
    wait_for("online statuses", || stats.messages.load(Relaxed) >= 4).await;

    // Temperature: 29.5 °C does nothing; 31.5 °C alerts facilities and turns the AC on.
    temp.telemetry("temperature", 29.5, "celsius").await.unwrap();
    wait_for("the first reading", || stats.readings.load(Relaxed) == 1).await;
    temp.telemetry("temperature", 31.5, "celsius").await.unwrap();
    let on = next_cmd(&mut ac).await;
    assert_eq!(on.action, "on");
    ac.obey(&on).await.unwrap();
    wait_for("one firing", || rules.fired.load(Relaxed) == 1).await;

    // A person in the restricted zone at noon (Paris): nothing. At 22:00: lockdown, alert, history.
    let person = |local: &str| {
        let at = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_local_timezone(chrono_tz::Europe::Paris)
            .unwrap()
            .with_timezone(&chrono::Utc);
        Event {
            id: uuid::Uuid::now_v7(),
            tenant: uuid::Uuid::nil(),
            site: uuid::Uuid::nil(),
            zone: Some("restricted".into()),
            source: Source { kind: SourceKind::Camera, id: "cam-restricted".into() },
            kind: EventKind::DetectionPerson,
            occurred_at: Timestamp::from(at),
            payload: Payload::Detection(Detection {
                model: "m".into(),
                frame_seq: 1,
                frame_width: 768,
                frame_height: 576,
                objects: vec![DetectedObject {
                    class_id: 0,
                    label: "person".into(),
                    score: 0.9,
                    bbox: BoundingBox { x: 0.1, y: 0.1, w: 0.2, h: 0.5 },
                    track: Some(1),
                }],
                clip: None,
            }),
        }
    };
    edge.tap.offer(&[person("2026-11-25 12:00")]);
    edge.tap.offer(&[person("2026-11-25 22:00")]);
    let locked = next_cmd(&mut lock).await;
    assert_eq!(locked.action, "lock", "after hours: every door locks");
    wait_for("two firings", || rules.fired.load(Relaxed) == 2).await;
    // 4 online statuses, 2 readings, 2 detections, and the lockdown's own alarm (which no rule takes).
    wait_for("every event seen by the rules", || rules.events_seen.load(Relaxed) == 9).await;

    // The lockdown holds: alice's badge is refused now.
    reader.swipe("A1", None).await.unwrap();
    wait_for("the refusal", || stats.access_denied.load(Relaxed) == 1).await;
    assert!(tokio::time::timeout(Duration::from_millis(300), lock.commands.recv()).await.is_err(), "no unlock");

    // History: both firings with each action's result, in order.
    let history: Vec<_> = rules.recent.lock().unwrap().iter().cloned().collect();
    assert_eq!(history.len(), 2, "{history:#?}");
    let (t, a) = (&history[0], &history[1]);
    assert_eq!((t.rule_id.as_str(), &t.outcome), ("temperature", &ExecutionOutcome::Fired));
    let results: Vec<(&str, Option<&ActionResult>)> =
        t.actions.iter().map(|r| (r.action.as_str(), r.result.as_ref())).collect();
    assert_eq!(
        results,
        [
            ("alert", Some(&ActionResult::Ok)),
            ("device_command", Some(&ActionResult::Ok)),
            ("log", Some(&ActionResult::Ok))
        ]
    );
    assert_eq!(a.rule_id, "after-hours");
    let results: Vec<&str> = a.actions.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(results, ["notify", "lock_doors", "start_recording"]);
    assert_eq!(a.actions[0].result, Some(ActionResult::Ok));
    assert_eq!(a.actions[1].result, Some(ActionResult::Ok));
    assert!(matches!(a.actions[2].result, Some(ActionResult::Skipped { .. })), "no recorder in this test: {a:?}");

    // The alerts wait in the spool for the cloud, tagged with their rule.
    let mut alerts = Vec::new();
    wait_for("rule alerts in the spool", || {
        alerts = edge
            .spool
            .peek(200)
            .unwrap()
            .into_iter()
            .filter_map(|s| match s.event.payload {
                Payload::Alert(Alert { rule: Some(rule), message, .. }) => Some((rule, message)),
                _ => None,
            })
            .collect();
        alerts.len() >= 2
    })
    .await;
    assert!(
        alerts.iter().any(|(r, m)| r == "temperature" && m.contains("facilities") && m.contains("31.5")),
        "{alerts:?}"
    );
    assert!(
        alerts.iter().any(|(r, m)| r == "after-hours" && m.contains("security") && m.contains("restricted")),
        "{alerts:?}"
    );
    edge.stop().await;
}

/// Per-device configuration and firmware from the registry: pushed when the device comes online,
/// acknowledged, and the firmware version it then reports is tracked until it matches the offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_get_their_config_and_firmware_offer_and_the_edge_tracks_the_version() {
    let edge = Edge::start().await;
    let stats = edge.stats.clone();
    let mut hvac = SimDevice::connect(edge.id("hvac-1"), true).await.unwrap();

    let configure = next_cmd(&mut hvac).await;
    assert_eq!(configure.action, "configure");
    assert_eq!(configure.params, Some(serde_json::json!({ "setpoint": 22, "mode": "cool" })));
    let update = next_cmd(&mut hvac).await;
    assert_eq!(update.action, "firmware_update");
    let params = update.params.clone().unwrap();
    assert_eq!((params["version"].as_str(), params["sha256"].as_str().map(str::len)), (Some("sim-2.0"), Some(64)));
    {
        let live = stats.live.lock().unwrap();
        let h = &live["hvac-1"];
        assert_eq!(h.firmware.as_deref(), Some("sim-1.0"));
        assert_eq!((h.firmware_target.as_deref(), h.firmware_offered.as_deref()), (Some("sim-2.0"), Some("sim-2.0")));
        assert!(h.config_sent);
    }
    // The device applies both, acknowledges, and reports the new version: the offer is done.
    hvac.obey(&configure).await.unwrap();
    hvac.obey(&update).await.unwrap();
    wait_for("both acknowledgements", || stats.commands_acked.load(Relaxed) == 2).await;
    wait_for("the new version reported", || {
        let live = stats.live.lock().unwrap();
        live["hvac-1"].firmware.as_deref() == Some("sim-2.0") && live["hvac-1"].firmware_offered.is_none()
    })
    .await;
    assert_eq!(*hvac.config.lock().unwrap(), configure.params);
    // Its next status (a heartbeat) neither re-offers the firmware nor re-sends the config.
    hvac.status(true).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(400), hvac.commands.recv()).await.is_err(), "nothing more");
    assert_eq!(stats.commands_failed.load(Relaxed), 0);
    edge.stop().await;
}
