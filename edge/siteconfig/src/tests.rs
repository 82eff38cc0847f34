use super::*;

fn at() -> DateTime<Utc> {
    "2026-11-26T08:00:00Z".parse().unwrap()
}

fn access() -> Value {
    json!({
        "groups": [{ "id": "staff", "doors": ["front"], "schedule": "office" }],
        "doors": [{ "id": "front", "zone": "lobby", "reader": "reader-1", "lock": "lock-1" }],
        "schedules": [{ "id": "office", "windows": [{ "start": "07:00", "end": "19:00" }] }],
        "max_offline_hours": 24
    })
}

fn people() -> Value {
    json!([
        { "id": "p-alice", "name": "Alice", "groups": ["staff", "night-shift-at-another-site"], "enabled": true },
        { "id": "p-bob", "name": "Bob", "groups": [], "enabled": false }
    ])
}

fn credentials() -> Value {
    json!([
        { "id": "c-1", "person": "p-alice", "badge": "04A1", "pin": "1234", "valid_from": null,
          "valid_until": "2027-01-01T00:00:00+00:00", "revoked": false },
        { "id": "c-2", "person": "p-bob", "badge": "04B2", "pin": null, "valid_from": null, "valid_until": null,
          "revoked": true }
    ])
}

fn rules() -> Value {
    json!([{
        "id": "0193a0b0-0000-7000-8000-000000000001", "name": "Temperature Alert", "description": "", "enabled": true,
        "trigger": { "type": "event", "event_kind": "sensor.reading" },
        "conditions": [{ "type": "value", "metric": "temperature", "op": ">", "value": 30 }],
        "actions": [{ "type": "alert", "severity": "warning", "message": "too hot" }]
    }])
}

fn sources<'a>(access: Option<&'a Value>, people: &'a Value, creds: &'a Value, rules: &'a Value) -> Sources<'a> {
    Sources {
        site: Uuid::nil(),
        version: 7,
        issued_at: at(),
        timezone: "Europe/Paris",
        access,
        people,
        credentials: creds,
        rules,
        cameras: None,
        devices: None,
    }
}

#[test]
fn a_composed_document_is_accepted_by_both_engines() {
    let (a, p, c, r) = (access(), people(), credentials(), rules());
    let doc = compose(&sources(Some(&a), &p, &c, &r));
    let checked = check(&doc).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(checked.version, 7);
    let policy = checked.access.unwrap();
    let d = policy.document();
    assert_eq!((d.revision, d.timezone.as_str(), d.issued_at), (7, "Europe/Paris", at()));
    assert_eq!(d.people.len(), 2);
    assert_eq!(d.people[0].groups, vec!["staff".to_owned()], "a group this site does not define is left out");
    assert_eq!(d.credentials[0].pin.as_deref(), Some("1234"), "the edge gets the PIN");
    assert!(d.credentials[1].revoked);
    let rules = checked.rules.unwrap();
    assert_eq!((rules.revision(), rules.len()), (7, 1));
}

#[test]
fn absent_parts_are_not_managed() {
    let (p, c, none) = (people(), credentials(), json!([]));
    let doc = compose(&sources(None, &p, &c, &none));
    assert!(doc.access.is_none() && doc.rules.is_none());
    let checked = check(&doc).unwrap();
    assert!(checked.access.is_none() && checked.rules.is_none());
}

#[test]
fn every_problem_is_reported_with_its_part() {
    let mut a = access();
    a["doors"][0]["id"] = json!("front");
    a["groups"][0]["schedule"] = json!("no-such-schedule");
    let mut r = rules();
    r[0]["trigger"]["event_kind"] = json!("no.such.kind");
    let (p, c) = (people(), credentials());
    let problems = check(&compose(&sources(Some(&a), &p, &c, &r))).unwrap_err();
    assert!(problems.iter().any(|p| p.starts_with("access: ") && p.contains("no-such-schedule")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("rules: ")), "{problems:?}");

    let mut bad_schema = compose(&sources(None, &p, &c, &json!([])));
    bad_schema.schema = 99;
    assert!(check(&bad_schema).unwrap_err()[0].contains("schema 99"));

    let mut garbage = compose(&sources(Some(&a), &p, &c, &json!([])));
    garbage.access = Some(json!({ "doors": "not a list" }));
    assert!(check(&garbage).unwrap_err()[0].starts_with("access: "));
}

#[test]
fn access_input_may_not_carry_what_the_cloud_fills_in() {
    assert!(check_access_input(&access()).is_ok());
    let mut a = access();
    a["people"] = json!([]);
    a["revision"] = json!(3);
    let problems = check_access_input(&a).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(check_access_input(&json!([1])).is_err());
}

#[test]
fn redaction_hides_pins_only() {
    let (a, p, c, r) = (access(), people(), credentials(), rules());
    let doc = redact(compose(&sources(Some(&a), &p, &c, &r)));
    let creds = doc.access.as_ref().unwrap()["credentials"].as_array().unwrap().clone();
    assert_eq!(creds[0]["pin"], json!("set"));
    assert_eq!(creds[0]["badge"], json!("04A1"));
    assert_eq!(creds[1]["pin"], Value::Null);
    assert!(!serde_json::to_string(&doc).unwrap().contains("1234"));
}

#[test]
fn camera_analytics_are_checked_like_the_edge_file() {
    let (p, c, r) = (people(), credentials(), json!([]));
    let cams = json!([
        { "id": "lobby-1", "lines": [{ "id": "entrance", "a": [0.5, 0.0], "b": [0.5, 1.0] }],
          "zones": [{ "id": "till", "polygon": [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9]], "loiter_secs": 30 }],
          "motion": { "threshold": 30, "masks": [[[0.0, 0.0], [1.0, 0.0], [1.0, 0.1]]] } },
        { "id": "yard" }
    ]);
    let mut s = sources(None, &p, &c, &r);
    s.cameras = Some(&cams);
    let checked = check(&compose(&s)).unwrap();
    let cameras = checked.cameras.unwrap();
    assert_eq!(cameras.len(), 2);
    assert_eq!((cameras[0].0.as_str(), cameras[0].1.lines.len(), cameras[0].1.zones.len()), ("lobby-1", 1, 1));
    assert_eq!(cameras[0].1.motion.as_ref().unwrap().threshold, 30);
    assert!(cameras[1].1.motion.is_some(), "defaults apply");

    let bad = json!([
        { "id": "lobby-1", "lines": [{ "id": "x", "a": [1.5, 0.0], "b": [0.5, 1.0] }] },
        { "id": "lobby-1", "url": "rtsp://leak" }
    ]);
    s.cameras = Some(&bad);
    let problems = check(&compose(&s)).unwrap_err();
    assert!(problems.iter().all(|p| p.starts_with("cameras: ")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("url")), "connection settings stay on the site: {problems:?}");
    let bad = json!([
        { "id": "lobby-1", "lines": [{ "id": "x", "a": [1.5, 0.0], "b": [0.5, 1.0] }] },
        { "id": "lobby-1" }
    ]);
    s.cameras = Some(&bad);
    let problems = check(&compose(&s)).unwrap_err();
    assert!(problems.iter().any(|p| p.contains("cameras[0].lines[0].a")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("listed twice")), "{problems:?}");
}

#[test]
fn a_device_registry_is_checked_and_its_password_hashes_redacted() {
    let (p, c, r) = (people(), credentials(), json!([]));
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let devices = json!({ "site": "hq", "devices": [
        { "id": "reader-2", "zone": "lobby", "kind": "reader", "password_sha256": hash },
    ] });
    let mut s = sources(None, &p, &c, &r);
    s.devices = Some(&devices);
    let doc = compose(&s);
    let checked = check(&doc).unwrap();
    assert!(checked.devices.unwrap().get("reader-2").is_some());
    let shown = redact(doc);
    assert_eq!(shown.devices.as_ref().unwrap()["devices"][0]["password_sha256"], "set");
    assert!(!serde_json::to_string(&shown).unwrap().contains(hash));

    let bad = json!({ "site": "hq", "devices": [
        { "id": "reader 2", "zone": "lobby", "kind": "reader", "password_sha256": "short" },
    ] });
    s.devices = Some(&bad);
    let problems = check(&compose(&s)).unwrap_err();
    assert!(problems.iter().all(|p| p.starts_with("devices: ")), "{problems:?}");
}
