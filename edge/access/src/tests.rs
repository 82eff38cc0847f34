use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use uuid::Uuid;
use vigil_proto::{EventKind, Payload, Severity};

use crate::*;

/// The test site, in Paris (UTC+1 in winter). 2026-11-25 is a Wednesday; 2026-12-25 a holiday.
const SITE: &str = r#"
schema = 1
revision = 3
issued_at = "2026-11-20T00:00:00Z"
timezone = "Europe/Paris"
max_offline_hours = 1000
degraded = { mode = "groups_only", groups = ["security"] }
holidays = [{ date = "2026-12-25", name = "Christmas" }]

[[schedules]]
id = "office"
windows = [{ days = ["mon", "tue", "wed", "thu", "fri"], start = "08:00", end = "18:00" }]
[[schedules]]
id = "night"
windows = [{ start = "18:00", end = "06:00" }]
holiday_windows = [{ start = "00:00", end = "24:00" }]

[[groups]]
id = "staff"
doors = ["front", "exit", "lab", "main"]
schedule = "office"
[[groups]]
id = "security"
doors = ["front", "exit", "lab", "server", "main"]
[[groups]]
id = "night"
doors = ["front"]
schedule = "night"
[[groups]]
id = "managers"
doors = ["main"]
schedule = "office"

[[areas]]
id = "building"
anti_passback = "hard"
[[areas]]
id = "lab-area"
anti_passback = "soft"
[[areas]]
id = "outside"

[[people]]
id = "alice"
groups = ["staff"]
[[people]]
id = "bob"
groups = ["staff"]
[[people]]
id = "carol"
groups = ["security"]
[[people]]
id = "dave"
groups = ["staff"]
enabled = false
[[people]]
id = "erin"
groups = ["night"]
[[people]]
id = "mia"
groups = ["managers", "staff"]

[[credentials]]
id = "c-alice"
person = "alice"
badge = "A1"
[[credentials]]
id = "c-bob"
person = "bob"
badge = "B1"
revoked = true
[[credentials]]
id = "c-carol"
person = "carol"
badge = "C1"
pin = "4321"
[[credentials]]
id = "c-dave"
person = "dave"
badge = "D1"
[[credentials]]
id = "c-erin"
person = "erin"
badge = "E1"
valid_until = "2026-12-01T00:00:00Z"
[[credentials]]
id = "c-alice-2027"
person = "alice"
badge = "F1"
valid_from = "2027-01-01T00:00:00Z"
[[credentials]]
id = "c-alice-pin"
person = "alice"
pin = "9999"
[[credentials]]
id = "c-mia"
person = "mia"
badge = "M1"

[[doors]]
id = "front"
zone = "lobby"
reader = "r-front"
lock = "l-front"
contact = "k-front"
enters = "building"
held_open_secs = 30
[[doors]]
id = "exit"
zone = "lobby"
reader = "r-exit"
lock = "l-exit"
enters = "outside"
[[doors]]
id = "lab"
zone = "lab"
reader = "r-lab"
lock = "l-lab"
enters = "lab-area"
[[doors]]
id = "server"
zone = "dc"
reader = "r-server"
lock = "l-server"
require_pin = true
[[doors]]
id = "main"
zone = "lobby"
reader = "r-main"
lock = "l-main"
first_person_in = { group = "managers", schedule = "office" }
"#;

fn doc() -> SiteDocument {
    toml::from_str(SITE).unwrap()
}

fn engine_with(edit: impl FnOnce(&mut SiteDocument)) -> AccessEngine {
    let mut d = doc();
    edit(&mut d);
    AccessEngine::new(Policy::compile(d).unwrap())
}

fn engine() -> AccessEngine {
    engine_with(|_| {})
}

/// Paris local time → UTC (CET = UTC+1 on these dates).
fn at(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::Europe::Paris.from_local_datetime(&naive).single().unwrap().with_timezone(&Utc)
}

fn badge(reader: &str, badge: &str) -> Presentation {
    Presentation { reader: reader.into(), badge: Some(badge.into()), pin: None }
}

fn decision(out: &[AccessOutput]) -> &Decision {
    match &out[0] {
        AccessOutput::Decided(d) => d,
        other => panic!("first output is not a decision: {other:?}"),
    }
}

fn commands(out: &[AccessOutput]) -> Vec<(String, LockAction)> {
    out.iter()
        .filter_map(|o| match o {
            AccessOutput::Command(c) => Some((c.lock.clone(), c.action)),
            _ => None,
        })
        .collect()
}

fn alarms(out: &[AccessOutput]) -> Vec<AlarmKind> {
    out.iter()
        .filter_map(|o| match o {
            AccessOutput::Alarm(a) => Some(a.kind),
            _ => None,
        })
        .collect()
}

#[track_caller]
fn check(engine: &mut AccessEngine, p: Presentation, local: &str, expect: Reason) {
    let out = engine.present(&p, at(local));
    let d = decision(&out);
    assert_eq!(d.reason, expect, "{p:?} at {local}: got {}", d.reason.code());
    let cmds = commands(&out);
    if expect.is_granted() {
        assert_eq!(cmds.len(), 1, "a grant sends one lock command: {cmds:?}");
    } else {
        assert!(cmds.is_empty(), "a denial sends no command: {cmds:?}");
    }
}

#[test]
fn single_presentations() {
    let wed_10 = "2026-11-25 10:00";
    let cases: &[(Presentation, &str, Reason)] = &[
        (badge("r-front", "A1"), wed_10, Reason::Granted),
        (badge("r-nowhere", "A1"), wed_10, Reason::UnknownReader),
        (badge("r-front", "ZZ"), wed_10, Reason::UnknownCredential),
        (Presentation { reader: "r-front".into(), badge: None, pin: None }, wed_10, Reason::UnknownCredential),
        (badge("r-front", "B1"), wed_10, Reason::CredentialRevoked),
        (badge("r-front", "D1"), wed_10, Reason::PersonDisabled),
        (badge("r-front", "F1"), wed_10, Reason::CredentialNotYetValid),
        (badge("r-front", "E1"), "2026-12-02 20:00", Reason::CredentialExpired),
        (badge("r-lab", "E1"), "2026-11-25 23:00", Reason::NoAccessToDoor),
        // office schedule: weekdays 08:00-18:00 local time, end exclusive
        (badge("r-front", "A1"), "2026-11-25 07:59", Reason::OutsideSchedule),
        (badge("r-front", "A1"), "2026-11-25 08:00", Reason::Granted),
        (badge("r-front", "A1"), "2026-11-25 17:59", Reason::Granted),
        (badge("r-front", "A1"), "2026-11-25 18:00", Reason::OutsideSchedule),
        (badge("r-front", "A1"), "2026-11-28 10:00", Reason::OutsideSchedule), // Saturday
        (badge("r-front", "A1"), "2026-12-25 10:00", Reason::Holiday),         // Friday, Christmas
        // night schedule crosses midnight; on holidays it is open all day
        (badge("r-front", "E1"), "2026-11-25 23:30", Reason::Granted),
        (badge("r-front", "E1"), "2026-11-26 05:59", Reason::Granted),
        (badge("r-front", "E1"), "2026-11-26 06:00", Reason::OutsideSchedule),
        (badge("r-front", "E1"), "2026-11-25 12:00", Reason::OutsideSchedule),
        // group without schedule: always
        (badge("r-server", "C1"), "2026-11-28 03:00", Reason::PinRequired),
        (
            Presentation { reader: "r-server".into(), badge: Some("C1".into()), pin: Some("0000".into()) },
            wed_10,
            Reason::WrongPin,
        ),
        (
            Presentation { reader: "r-server".into(), badge: Some("C1".into()), pin: Some("4321".into()) },
            wed_10,
            Reason::Granted,
        ),
        // PIN-only credential at a keypad
        (Presentation { reader: "r-lab".into(), badge: None, pin: Some("9999".into()) }, wed_10, Reason::Granted),
        (
            Presentation { reader: "r-lab".into(), badge: None, pin: Some("1111".into()) },
            wed_10,
            Reason::UnknownCredential,
        ),
        // first-person-in: a manager opens the hold, a member of staff does not
        (badge("r-main", "M1"), wed_10, Reason::GrantedFirstPersonIn),
        (badge("r-main", "A1"), wed_10, Reason::Granted),
    ];
    for (p, local, expect) in cases {
        check(&mut engine(), p.clone(), local, *expect);
    }
}

#[test]
fn schedule_uses_the_site_timezone_across_dst() {
    // 2026-03-29 02:00 Paris: clocks jump to 03:00 (UTC+2). 07:30 UTC is 09:30 local on Monday 30th.
    let mut e = engine();
    let out = e.present(&badge("r-front", "A1"), "2026-03-30T07:30:00Z".parse().unwrap());
    assert_eq!(decision(&out).reason, Reason::Granted);
    // 06:30 UTC on the same day is 08:30 local in summer time, 07:30 local would be winter: granted.
    let out = engine().present(&badge("r-front", "A1"), "2026-03-30T06:30:00Z".parse().unwrap());
    assert_eq!(decision(&out).reason, Reason::Granted);
    // 05:30 UTC is 07:30 local: closed.
    let out = engine().present(&badge("r-front", "A1"), "2026-03-30T05:30:00Z".parse().unwrap());
    assert_eq!(decision(&out).reason, Reason::OutsideSchedule);
}

#[test]
fn degraded_policy_applies_after_the_offline_bound() {
    // issued 2026-11-20 00:00 UTC, bound 1000 h → degraded from 2026-12-31 16:00 UTC.
    let late = "2027-01-05 10:00";
    let cases: &[(DegradedPolicy, &str, &str, Reason)] = &[
        (DegradedPolicy::GroupsOnly { groups: vec!["security".into()] }, "A1", "2026-11-27 10:00", Reason::Granted),
        (DegradedPolicy::GroupsOnly { groups: vec!["security".into()] }, "A1", late, Reason::DegradedNotPrivileged),
        (DegradedPolicy::GroupsOnly { groups: vec!["security".into()] }, "C1", late, Reason::GrantedDegraded),
        (DegradedPolicy::DenyAll, "C1", late, Reason::DegradedDenyAll),
        (DegradedPolicy::Cached, "A1", late, Reason::GrantedDegraded),
        // revocation still wins over any degraded policy
        (DegradedPolicy::Cached, "B1", late, Reason::CredentialRevoked),
    ];
    for (policy, b, local, expect) in cases {
        let mut e = engine_with(|d| d.degraded = policy.clone());
        check(&mut e, badge("r-front", b), local, *expect);
    }
}

#[test]
fn lockdown_overrides_schedules_by_priority_and_reverts() {
    let mut e = engine();
    let t = at("2026-11-25 10:00");
    let out = e.lockdown(
        Lockdown {
            id: "fire-drill".into(),
            priority: 5,
            doors: None,
            until: Some(at("2026-11-25 11:00")),
            override_groups: vec!["security".into()],
        },
        t,
    );
    assert_eq!(alarms(&out), vec![AlarmKind::LockdownStarted]);
    assert_eq!(commands(&out).len(), 5, "every door is locked");
    assert!(commands(&out).iter().all(|(_, a)| *a == LockAction::Lock));
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:05", Reason::Lockdown);
    check(&mut e, badge("r-front", "C1"), "2026-11-25 10:06", Reason::GrantedLockdownOverride);
    assert_eq!(
        e.clear_lockdown("fire-drill", 4, t),
        Err(EngineError::ClearRefused { id: "fire-drill".into(), priority: 5, given: 4 })
    );
    assert_eq!(e.clear_lockdown("nope", 9, t), Err(EngineError::NoSuchLockdown("nope".into())));
    // auto-revert at `until`
    assert!(e.tick(at("2026-11-25 10:59")).is_empty());
    assert_eq!(alarms(&e.tick(at("2026-11-25 11:00"))), vec![AlarmKind::LockdownEnded]);
    check(&mut e, badge("r-front", "A1"), "2026-11-25 11:01", Reason::Granted);

    // a door-scoped lockdown leaves other doors alone; an equal priority clears it
    let mut e = engine();
    let out = e.lockdown(
        Lockdown {
            id: "lab".into(),
            priority: 1,
            doors: Some(vec!["lab".into()]),
            until: None,
            override_groups: vec![],
        },
        t,
    );
    assert_eq!(commands(&out), vec![("l-lab".to_string(), LockAction::Lock)]);
    check(&mut e, badge("r-lab", "A1"), "2026-11-25 10:01", Reason::Lockdown);
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:01", Reason::Granted);
    assert_eq!(alarms(&e.clear_lockdown("lab", 1, t).unwrap()), vec![AlarmKind::LockdownEnded]);
    check(&mut e, badge("r-lab", "A1"), "2026-11-25 10:02", Reason::Granted);
}

#[test]
fn anti_passback_hard_and_soft() {
    let mut e = engine();
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:00", Reason::Granted);
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:01", Reason::AntiPassback);
    check(&mut e, badge("r-front", "C1"), "2026-11-25 10:01", Reason::Granted); // per person
    check(&mut e, badge("r-exit", "A1"), "2026-11-25 10:02", Reason::Granted);
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:03", Reason::Granted);
    // soft: granted twice, the second with an alarm
    check(&mut e, badge("r-lab", "A1"), "2026-11-25 10:04", Reason::Granted);
    let out = e.present(&badge("r-lab", "A1"), at("2026-11-25 10:05"));
    assert_eq!(decision(&out).reason, Reason::GrantedAntiPassbackSoft);
    assert_eq!(alarms(&out), vec![AlarmKind::AntiPassbackViolation]);
}

#[test]
fn first_person_in_holds_the_door_until_the_schedule_ends() {
    let mut e = engine();
    // staff alone does not open the hold
    check(&mut e, badge("r-main", "A1"), "2026-11-25 08:30", Reason::Granted);
    let out = e.present(&badge("r-main", "M1"), at("2026-11-25 08:45"));
    assert_eq!(decision(&out).reason, Reason::GrantedFirstPersonIn);
    assert_eq!(commands(&out), vec![("l-main".to_string(), LockAction::HoldUnlocked)]);
    // while held, grants send no command
    let out = e.present(&badge("r-main", "A1"), at("2026-11-25 09:00"));
    assert_eq!(decision(&out).reason, Reason::Granted);
    assert!(commands(&out).is_empty());
    assert!(e.tick(at("2026-11-25 17:59")).is_empty());
    assert_eq!(commands(&e.tick(at("2026-11-25 18:00"))), vec![("l-main".to_string(), LockAction::Lock)]);
}

#[test]
fn door_forced_and_held_open() {
    let mut e = engine();
    let t0 = at("2026-11-25 10:00");
    // opened without a grant: forced
    assert_eq!(alarms(&e.door_input("k-front", DoorInput::Contact { open: true }, t0)), vec![AlarmKind::ForcedOpen]);
    assert!(e.door_input("k-front", DoorInput::Contact { open: true }, t0).is_empty(), "repeat report");
    assert!(e.door_input("k-front", DoorInput::Contact { open: false }, t0).is_empty());
    // granted, opened in time, held past 30 s: one held-open alarm
    e.present(&badge("r-front", "A1"), t0);
    let t = |s: i64| t0 + chrono::TimeDelta::seconds(s);
    assert!(e.door_input("l-front", DoorInput::Lock { locked: false }, t(1)).is_empty());
    assert!(e.door_input("k-front", DoorInput::Contact { open: true }, t(2)).is_empty());
    assert!(e.tick(t(31)).is_empty());
    assert_eq!(alarms(&e.tick(t(32))), vec![AlarmKind::HeldOpen]);
    assert!(e.tick(t(40)).is_empty(), "raised once per opening");
    e.door_input("k-front", DoorInput::Contact { open: false }, t(41));
    // the grant allowed one passage: opening again is forced
    assert_eq!(alarms(&e.door_input("k-front", DoorInput::Contact { open: true }, t(42))), vec![AlarmKind::ForcedOpen]);
    // unknown devices are ignored
    assert!(e.door_input("k-nope", DoorInput::Contact { open: true }, t0).is_empty());
}

#[test]
fn events_carry_the_reason_and_never_the_secret() {
    let mut e = engine();
    let out = e.present(
        &Presentation { reader: "r-server".into(), badge: Some("C1".into()), pin: Some("4321".into()) },
        at("2026-11-25 10:00"),
    );
    let ev = decision(&out).to_event(Uuid::nil(), Uuid::max(), Uuid::from_u128(7));
    assert_eq!(ev.kind, EventKind::AccessGranted);
    assert_eq!(ev.zone.as_deref(), Some("dc"));
    assert_eq!(ev.source.id, "r-server");
    let Payload::Access(a) = &ev.payload else { panic!("payload") };
    assert_eq!((a.door.as_str(), a.reason.as_str()), ("server", "granted"));
    assert_eq!((a.person.as_deref(), a.credential.as_deref()), (Some("carol"), Some("c-carol")));
    let printed = format!("{ev:?}");
    assert!(!printed.contains("4321") && !printed.contains("\"C1\""), "{printed}");

    let out = e.present(&badge("r-front", "B1"), at("2026-11-25 10:00"));
    let ev = decision(&out).to_event(Uuid::nil(), Uuid::max(), Uuid::from_u128(8));
    assert_eq!(ev.kind, EventKind::AccessDenied);
    assert!(ev.kind.accepts(&ev.payload));

    let alarm = e.door_input("k-front", DoorInput::Contact { open: true }, at("2026-11-25 10:00"));
    let AccessOutput::Alarm(a) = &alarm[0] else { panic!("alarm") };
    let ev = a.to_event(Uuid::nil(), Uuid::max(), Uuid::from_u128(9));
    assert_eq!(ev.kind, EventKind::AlertTriggered);
    let Payload::Alert(al) = &ev.payload else { panic!("alert") };
    assert_eq!(al.severity, Severity::Critical);
    assert_eq!(al.message, "door_forced_open: front");
}

#[test]
fn invalid_documents_report_every_problem() {
    let mut d = doc();
    d.schema = 9;
    d.timezone = "Mars/Olympus".into();
    d.people[0].groups.push("ghosts".into());
    d.credentials[0].person = "nobody".into();
    d.credentials[1].badge = Some("A1".into());
    d.doors[0].enters = Some("attic".into());
    d.doors[1].lock = "l-front".into();
    d.schedules[0].windows[0].end = "25:00".into();
    let err = Policy::compile(d).unwrap_err();
    let expect = [
        "schema 9",
        "unknown timezone",
        "person alice: unknown group ghosts",
        "credential c-alice: unknown person nobody",
        "credential c-bob: badge is used",
        "door front: unknown area attic",
        "device l-front is used twice",
        "schedule office: window 08:00-25:00",
    ];
    for e in expect {
        assert!(err.problems.iter().any(|p| p.contains(e)), "missing {e:?} in {:?}", err.problems);
    }
    assert_eq!(err.problems.len(), expect.len(), "{:?}", err.problems);
}

#[test]
fn newer_revisions_replace_and_older_are_refused() {
    let mut e = engine();
    let mut d = doc();
    d.credentials[0].revoked = true;
    d.revision = 3;
    assert_eq!(
        e.replace_policy(Policy::compile(d.clone()).unwrap()),
        Err(EngineError::StaleRevision { current: 3, got: 3 })
    );
    d.revision = 4;
    e.replace_policy(Policy::compile(d).unwrap()).unwrap();
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:00", Reason::CredentialRevoked);
}

#[test]
fn an_installed_policy_replaces_whatever_its_revision_and_keeps_lockdowns() {
    let mut e = engine();
    let t = at("2026-11-25 10:00");
    e.lockdown(Lockdown { id: "l".into(), priority: 5, doors: None, until: None, override_groups: vec![] }, t);
    let mut d = doc();
    d.revision = 1;
    d.credentials[0].revoked = true;
    e.install_policy(Policy::compile(d).unwrap());
    assert_eq!(e.policy().document().revision, 1);
    assert_eq!(e.active_lockdowns(t), vec![("l".to_owned(), 5)]);
    check(&mut e, badge("r-front", "A1"), "2026-11-25 10:00", Reason::CredentialRevoked);
}

#[test]
fn a_confirmation_moves_the_offline_bound_forward_only() {
    // issued 2026-11-20 00:00 UTC, bound 1000 h → degraded from 2026-12-31 16:00 UTC.
    let late = "2027-01-05 10:00";
    let mut e = engine_with(|d| d.degraded = DegradedPolicy::DenyAll);
    check(&mut e, badge("r-front", "C1"), late, Reason::DegradedDenyAll);
    e.confirm_current(at("2026-11-01 00:00"));
    check(&mut e, badge("r-front", "C1"), late, Reason::DegradedDenyAll);
    e.confirm_current(at("2027-01-01 00:00"));
    assert!(!e.is_degraded(at(late)));
    assert_eq!(e.policy().document().issued_at, at("2027-01-01 00:00"));
}

#[test]
fn documents_load_from_json_and_toml_files() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("site.toml");
    std::fs::write(&toml_path, SITE).unwrap();
    let json_path = dir.path().join("site.json");
    std::fs::write(&json_path, serde_json::to_string(&doc()).unwrap()).unwrap();
    assert_eq!(SiteDocument::load(&toml_path).unwrap(), SiteDocument::load(&json_path).unwrap());
    std::fs::write(&json_path, "{\"schema\": 1").unwrap();
    assert!(matches!(SiteDocument::load(&json_path), Err(DocumentLoadError::Json { .. })));
    assert!(matches!(SiteDocument::load(&dir.path().join("missing.json")), Err(DocumentLoadError::Read { .. })));
}

#[test]
fn remote_unlock_opens_once_is_journalled_and_never_bypasses_a_lockdown() {
    let mut e = engine();
    let t = at("2026-11-25 03:00"); // outside every schedule: a remote unlock does not care
    let out = e.remote_unlock("lab", "operator:u-1", t).unwrap();
    let d = decision(&out);
    assert_eq!((d.reason, d.reader.as_str(), d.door.as_str()), (Reason::GrantedRemote, "operator:u-1", "lab"));
    assert!(d.granted());
    assert!(matches!(commands(&out)[..], [(ref lock, LockAction::Unlock { .. })] if lock == "l-lab"));
    assert_eq!(Reason::GrantedRemote.code(), "granted_remote");
    assert_eq!(e.remote_unlock("vault", "rule:r", t), Err(EngineError::NoSuchDoor("vault".into())));

    e.lockdown(
        Lockdown {
            id: "ld".into(),
            priority: 1,
            doors: Some(vec!["lab".into()]),
            until: None,
            override_groups: vec![],
        },
        t,
    );
    let out = e.remote_unlock("lab", "rule:after-hours", t).unwrap();
    assert_eq!(decision(&out).reason, Reason::Lockdown);
    assert!(commands(&out).is_empty(), "no unlock during a lockdown");
    // Other doors are not covered.
    assert_eq!(decision(&e.remote_unlock("front", "operator:u-1", t).unwrap()).reason, Reason::GrantedRemote);
}
