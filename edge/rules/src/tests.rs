//! Table tests for documents, cron, conditions and the engine.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use uuid::Uuid;
use vigil_proto::{
    Alert, BoundingBox, DetectedObject, Detection, DeviceStatus, Event, EventKind, Motion, Payload, SensorReading,
    Severity, Source, SourceKind, Timestamp,
};

use crate::cron::CronSchedule;
use crate::*;

// ---------------------------------------------------------------- helpers

fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Paris.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("unambiguous local time").with_timezone(&Utc)
}

fn secs(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + TimeDelta::seconds(s)
}

fn event(
    kind: EventKind,
    zone: Option<&str>,
    source: (SourceKind, &str),
    payload: Payload,
    at: DateTime<Utc>,
) -> Event {
    Event {
        id: Uuid::now_v7(),
        tenant: Uuid::nil(),
        site: Uuid::nil(),
        zone: zone.map(str::to_owned),
        source: Source { kind: source.0, id: source.1.to_owned() },
        kind,
        occurred_at: Timestamp::from(at),
        payload,
    }
}

fn detection(labels: &[(&str, f32)]) -> Payload {
    Payload::Detection(Detection {
        model: "yolo".into(),
        frame_seq: 1,
        frame_width: 640,
        frame_height: 480,
        objects: labels
            .iter()
            .map(|(l, s)| DetectedObject {
                class_id: 0,
                label: (*l).to_owned(),
                score: *s,
                bbox: BoundingBox { x: 0.1, y: 0.1, w: 0.2, h: 0.2 },
                track: None,
            })
            .collect(),
        clip: None,
    })
}

fn person(zone: Option<&str>, at: DateTime<Utc>) -> Event {
    event(EventKind::DetectionPerson, zone, (SourceKind::Camera, "cam-1"), detection(&[("person", 0.9)]), at)
}

fn reading(source: &str, zone: &str, metric: &str, value: f64, at: DateTime<Utc>) -> Event {
    let p = Payload::SensorReading(SensorReading { metric: metric.into(), value, unit: "°C".into() });
    event(EventKind::SensorReading, Some(zone), (SourceKind::Device, source), p, at)
}

fn alert(source: (SourceKind, &str), severity: Severity, at: DateTime<Utc>) -> Event {
    let p = Payload::Alert(Alert { rule: None, severity, message: "door forced open".into() });
    event(EventKind::AlertTriggered, Some("lobby"), source, p, at)
}

fn motion(at: DateTime<Utc>) -> Event {
    let p = Payload::Motion(Motion { score: 0.3, regions: vec![] });
    event(EventKind::MotionDetected, Some("lobby"), (SourceKind::Camera, "cam-2"), p, at)
}

fn seed() -> CompiledRules {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/seed.toml");
    RuleSet::load(path).expect("seed loads").compile().expect("seed compiles")
}

/// A document with one rule given as JSON fragments.
fn one_rule(trigger: &str, conditions: &str, extra: &str) -> CompiledRules {
    let json = format!(
        r#"{{"schema":1,"timezone":"Europe/Paris","rules":[{{"id":"r","name":"R","trigger":{trigger},
            "conditions":{conditions},"actions":[{{"type":"log","message":"{{rule}} {{value}}"}}]{extra}}}]}}"#
    );
    RuleSet::from_json_str(&json).expect("parses").compile().expect("compiles")
}

fn fired(out: &[Outcome]) -> usize {
    out.iter().filter(|o| o.is_fired()).count()
}

fn reasons(out: &[Outcome]) -> Vec<SuppressReason> {
    out.iter()
        .filter_map(|o| match o {
            Outcome::Suppressed { reason, .. } => Some(reason.clone()),
            Outcome::Fired { .. } => None,
        })
        .collect()
}

// ---------------------------------------------------------------- seed rules

#[test]
fn seed_file_has_the_two_rules() {
    let rules = seed();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules.timezone(), Paris);
    let names: Vec<&str> = rules.rules().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["After Hours Alert", "Temperature Alert"]);
}

#[test]
fn seed_after_hours_table() {
    // (date, local h, local m, zone, fires)
    let winter = (2026, 1, 14);
    let summer = (2026, 7, 14);
    let cases = [
        (winter, 17, 59, Some("restricted"), false),
        (winter, 18, 0, Some("restricted"), true),
        (winter, 23, 30, Some("restricted"), true),
        (winter, 0, 0, Some("restricted"), true),
        (winter, 5, 59, Some("restricted"), true),
        (winter, 6, 0, Some("restricted"), false),
        (winter, 12, 0, Some("restricted"), false),
        (summer, 17, 59, Some("restricted"), false),
        (summer, 18, 0, Some("restricted"), true),
        (summer, 5, 59, Some("restricted"), true),
        (summer, 6, 0, Some("restricted"), false),
        (winter, 18, 0, Some("lobby"), false),
        (winter, 22, 0, None, false),
        (summer, 5, 59, Some("Restricted"), false),
    ];
    for ((y, mo, d), h, mi, zone, want) in cases {
        let at = paris(y, mo, d, h, mi);
        let mut engine = Engine::new(seed());
        let out = engine.on_event(&person(zone, at), at);
        assert_eq!(fired(&out), usize::from(want), "{y}-{mo}-{d} {h:02}:{mi:02} zone {zone:?}: {out:?}");
        if want {
            let Outcome::Fired { rule_id, zone: fz, actions, trigger_event, .. } = &out[0] else { unreachable!() };
            assert_eq!(rule_id, "after-hours");
            assert_eq!(fz.as_deref(), Some("restricted"));
            assert!(trigger_event.is_some());
            assert_eq!(
                actions,
                &vec![
                    ActionSpec::Notify {
                        target: "security".into(),
                        message: format!("Person detected in restricted after hours ({h:02}:{mi:02}, cam-1)"),
                    },
                    ActionSpec::LockDoors { doors: Selector::All },
                    ActionSpec::StartRecording { cameras: Selector::Zone, duration_secs: 120 },
                ]
            );
        }
    }
}

#[test]
fn seed_after_hours_ignores_other_kinds() {
    let at = paris(2026, 1, 14, 23, 0);
    let mut engine = Engine::new(seed());
    let mut vehicle = person(Some("restricted"), at);
    vehicle.kind = EventKind::DetectionVehicle;
    assert!(engine.on_event(&vehicle, at).is_empty());
}

#[test]
fn seed_temperature_table() {
    let at = paris(2026, 7, 1, 14, 0);
    let cases = [
        ("temperature", 29.9, false),
        ("temperature", 30.0, false),
        ("temperature", 30.1, true),
        ("temperature", 45.0, true),
        ("humidity", 80.0, false),
        ("temperature", f64::NAN, false),
    ];
    for (metric, value, want) in cases {
        let mut engine = Engine::new(seed());
        let out = engine.on_event(&reading("sensor-1", "server-room", metric, value, at), at);
        assert_eq!(fired(&out), usize::from(want), "{metric} {value}: {out:?}");
        if want {
            let Outcome::Fired { rule_id, actions, .. } = &out[0] else { unreachable!() };
            assert_eq!(rule_id, "temperature");
            assert_eq!(
                actions[0],
                ActionSpec::Alert {
                    severity: Severity::Warning,
                    message: format!("Temperature {value}°C at sensor-1 in server-room"),
                    target: Some("facilities".into()),
                }
            );
            assert!(matches!(&actions[1], ActionSpec::DeviceCommand { device, command, .. }
                if device == "ac" && command == "on"));
            assert_eq!(
                actions[2],
                ActionSpec::Log {
                    level: LogLevel::Warn,
                    message: format!("Temperature Alert: sensor-1 read {value}°C")
                }
            );
        }
    }
}

#[test]
fn rendering_and_event_trigger_filters() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"event","event_kind":"detection.person","source":"cam-1","zone":"dock"}"#,
        "[]",
        "",
    ));
    let t = paris(2026, 1, 14, 9, 5);
    assert!(engine.on_event(&person(Some("lobby"), t), t).is_empty());
    let mut other_cam = person(Some("dock"), t);
    other_cam.source.id = "cam-2".into();
    assert!(engine.on_event(&other_cam, t).is_empty());
    let out = engine.on_event(&person(Some("dock"), t), t);
    // `{value}` of a detection renders as `-`.
    assert!(matches!(&out[..], [Outcome::Fired { actions, source: Some(s), .. }]
        if s == "cam-1" && actions[0] == ActionSpec::Log { message: "R -".into(), level: LogLevel::Info }));

    let json = r#"{"schema":1,"timezone":"Europe/Paris","rules":[{"id":"s","name":"S",
        "trigger":{"type":"schedule","cron":"5 9 * * *"},
        "actions":[{"type":"notify","target":"ops","message":"{rule}/{rule_id} {kind} {zone} {source} {time} {Zone} { } {"}]}]}"#;
    let mut engine = Engine::new(RuleSet::from_json_str(json).unwrap().compile().unwrap());
    let out = engine.on_tick(t);
    assert!(
        matches!(&out[..], [Outcome::Fired { actions, trigger_event: None, zone: None, .. }]
        if actions[0] == ActionSpec::Notify { target: "ops".into(), message: "S/s schedule - - 09:05 {Zone} { } {".into() }),
        "{out:?}"
    );
}

// ---------------------------------------------------------------- cron

#[test]
fn cron_parse_table() {
    let ok = [
        "* * * * *",
        "*/15 * * * *",
        "0 8 * * mon-fri",
        "0,30 8-18/2 1,15 jan-jun,dec 0",
        "5/10 * * * 7",
        "59 23 31 12 sun",
        "@hourly",
        "@DAILY",
        "  0   0  *  *  *  ",
    ];
    for e in ok {
        assert!(CronSchedule::parse(e).is_ok(), "{e:?} should parse: {:?}", CronSchedule::parse(e));
    }
    let bad = [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "a * * * *",
        "1,,2 * * * *",
        "-1 * * * *",
        "* * * * mon-",
        "@often",
        "*/99 * * * *",
    ];
    for e in bad {
        assert!(CronSchedule::parse(e).is_err(), "{e:?} should not parse");
    }
}

#[test]
fn cron_matching_table() {
    let at = |y, mo, d, h, mi| NaiveDate::from_ymd_opt(y, mo, d).and_then(|d| d.and_hms_opt(h, mi, 0)).unwrap();
    // 2026-01-05 is a Monday; 2026-01-04 a Sunday.
    let cases = [
        ("0 8 * * mon-fri", at(2026, 1, 5, 8, 0), true),
        ("0 8 * * mon-fri", at(2026, 1, 4, 8, 0), false),
        ("0 8 * * mon-fri", at(2026, 1, 5, 8, 1), false),
        ("*/15 * * * *", at(2026, 1, 5, 10, 45), true),
        ("*/15 * * * *", at(2026, 1, 5, 10, 46), false),
        ("5/20 * * * *", at(2026, 1, 5, 10, 25), true),
        ("5/20 * * * *", at(2026, 1, 5, 10, 20), false),
        ("0 0 * * 7", at(2026, 1, 4, 0, 0), true),
        ("0 0 * * 0", at(2026, 1, 4, 0, 0), true),
        ("0 0 * * 5-7", at(2026, 1, 4, 0, 0), true),
        // dom and dow both restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * fri", at(2026, 1, 13, 0, 0), true),
        ("0 0 13 * fri", at(2026, 1, 9, 0, 0), true),
        ("0 0 13 * fri", at(2026, 1, 12, 0, 0), false),
        // dom restricted, dow `*`: only the dom.
        ("0 0 13 * *", at(2026, 1, 12, 0, 0), false),
        ("0 12 * jul *", at(2026, 7, 3, 12, 0), true),
        ("0 12 * jul *", at(2026, 8, 3, 12, 0), false),
        ("@hourly", at(2026, 8, 3, 12, 0), true),
    ];
    for (expr, t, want) in cases {
        let c = CronSchedule::parse(expr).unwrap();
        assert_eq!(c.matches(t), want, "{expr} at {t}");
    }
}

/// Ticks every `step` seconds over `[from, to)`, returning the instants of firings.
fn run_ticks(engine: &mut Engine, from: DateTime<Utc>, to: DateTime<Utc>, step: i64) -> Vec<DateTime<Utc>> {
    let mut t = from;
    let mut at = Vec::new();
    while t < to {
        for o in engine.on_tick(t) {
            if let Outcome::Fired { at: a, trigger_event, .. } = o {
                assert!(trigger_event.is_none());
                at.push(a);
            }
        }
        t = secs(t, step);
    }
    at
}

#[test]
fn schedule_fires_once_per_matching_local_minute() {
    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"0 8 * * *"}"#, "[]", ""));
    let fires = run_ticks(&mut engine, paris(2026, 1, 14, 0, 0), paris(2026, 1, 15, 0, 0), 7);
    assert_eq!(fires.len(), 1, "{fires:?}");
    assert!(fires[0] >= paris(2026, 1, 14, 8, 0) && fires[0] < paris(2026, 1, 14, 8, 1));
}

#[test]
fn schedule_catches_up_minutes_between_sparse_ticks() {
    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"*/5 * * * *"}"#, "[]", ""));
    assert_eq!(fired(&engine.on_tick(paris(2026, 1, 14, 9, 1))), 0);
    // 09:02 .. 09:21 contains 09:05, 09:10, 09:15, 09:20.
    assert_eq!(fired(&engine.on_tick(paris(2026, 1, 14, 9, 21))), 4);
    assert_eq!(fired(&engine.on_tick(paris(2026, 1, 14, 9, 21))), 0);
}

#[test]
fn schedule_dst_spring_forward_skips_missing_minutes() {
    // 2026-03-29: Paris goes 02:00 CET -> 03:00 CEST; 02:30 does not exist that day.
    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"30 2 * * *"}"#, "[]", ""));
    let fires = run_ticks(&mut engine, paris(2026, 3, 28, 0, 0), paris(2026, 3, 31, 0, 0), 60);
    assert_eq!(fires, vec![paris(2026, 3, 28, 2, 30), paris(2026, 3, 30, 2, 30)]);

    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"0 3 * * *"}"#, "[]", ""));
    let fires = run_ticks(&mut engine, paris(2026, 3, 29, 0, 0), paris(2026, 3, 30, 0, 0), 60);
    assert_eq!(fires, vec![Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()]);
}

#[test]
fn schedule_dst_fall_back_fires_repeated_minutes_once() {
    // 2026-10-25: Paris goes 03:00 CEST -> 02:00 CET; 02:00-02:59 happens twice.
    let day_start = paris(2026, 10, 25, 0, 0);
    let day_end = paris(2026, 10, 26, 0, 0);
    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"30 2 * * *"}"#, "[]", ""));
    let fires = run_ticks(&mut engine, day_start, day_end, 30);
    assert_eq!(fires, vec![Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()]);

    // 25 real hours but 24 distinct local hours: 48 half-hours.
    let mut engine = Engine::new(one_rule(r#"{"type":"schedule","cron":"*/30 * * * *"}"#, "[]", ""));
    assert_eq!(run_ticks(&mut engine, day_start, day_end, 60).len(), 48);
}

#[test]
fn schedule_with_time_condition_uses_tick_time() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"schedule","cron":"0 * * * *"}"#,
        r#"[{"type":"time_between","start":"22:00","end":"02:00"}]"#,
        "",
    ));
    let fires = run_ticks(&mut engine, paris(2026, 1, 14, 12, 0), paris(2026, 1, 15, 12, 0), 60);
    // 22:00, 23:00, 00:00, 01:00.
    assert_eq!(fires.len(), 4, "{fires:?}");
}

// ---------------------------------------------------------------- conditions

#[test]
fn time_window_and_weekday_table() {
    // 2026-01-16 is a Friday.
    let cases = [
        ("22:00", "02:00", "[\"fri\"]", (16, 21, 59), false),
        ("22:00", "02:00", "[\"fri\"]", (16, 22, 0), true),
        ("22:00", "02:00", "[\"fri\"]", (16, 23, 59), true),
        // After midnight it is Saturday.
        ("22:00", "02:00", "[\"fri\"]", (17, 1, 0), false),
        ("22:00", "02:00", "[\"fri\",\"saturday\"]", (17, 1, 59), true),
        ("22:00", "02:00", "[\"sat\"]", (17, 2, 0), false),
        ("08:00", "17:30", "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]", (16, 17, 29), true),
        ("08:00", "17:30", "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]", (16, 17, 30), false),
        ("08:00", "17:30", "[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]", (17, 9, 0), false),
    ];
    for (start, end, days, (d, h, mi), want) in cases {
        let conds = format!(
            r#"[{{"type":"time_between","start":"{start}","end":"{end}"}},{{"type":"weekdays","days":{days}}}]"#
        );
        let mut engine = Engine::new(one_rule(r#"{"type":"event","event_kind":"detection.person"}"#, &conds, ""));
        let at = paris(2026, 1, d, h, mi);
        assert_eq!(
            fired(&engine.on_event(&person(None, at), at)),
            usize::from(want),
            "{start}-{end} {days} {d} {h}:{mi}"
        );
    }
}

#[test]
fn time_conditions_read_occurred_at_not_now() {
    let mut engine = Engine::new(seed());
    let happened = paris(2026, 1, 14, 17, 59);
    let processed = paris(2026, 1, 14, 18, 5);
    assert_eq!(fired(&engine.on_event(&person(Some("restricted"), happened), processed)), 0);
}

#[test]
fn event_condition_table() {
    let at = paris(2026, 1, 14, 12, 0);
    let det = |objs: &[(&str, f32)]| {
        event(EventKind::DetectionPerson, Some("lobby"), (SourceKind::Camera, "cam-9"), detection(objs), at)
    };
    let cases: Vec<(&str, Event, bool)> = vec![
        (r#"{"type":"detection","label":"person","min_score":0.6}"#, det(&[("person", 0.7)]), true),
        (r#"{"type":"detection","label":"person","min_score":0.6}"#, det(&[("person", 0.5)]), false),
        (r#"{"type":"detection","label":"person","min_count":2}"#, det(&[("person", 0.9), ("car", 0.9)]), false),
        (r#"{"type":"detection","label":"person","min_count":2}"#, det(&[("person", 0.9), ("person", 0.8)]), true),
        (r#"{"type":"detection","min_count":2}"#, det(&[("person", 0.9), ("car", 0.8)]), true),
        (r#"{"type":"source","is":"cam-9"}"#, det(&[]), true),
        (r#"{"type":"source","in":["cam-1","cam-2"]}"#, det(&[]), false),
        (r#"{"type":"zone","in":["lobby","dock"]}"#, det(&[]), true),
        (r#"{"type":"event_kind","in":["detection.person","access.denied"]}"#, det(&[]), true),
        (r#"{"type":"event_kind","is":"access.denied"}"#, det(&[]), false),
        (r#"{"type":"not","condition":{"type":"zone","is":"lobby"}}"#, det(&[]), false),
        (r#"{"type":"any","conditions":[{"type":"zone","is":"x"},{"type":"source","is":"cam-9"}]}"#, det(&[]), true),
        (r#"{"type":"any","conditions":[]}"#, det(&[]), false),
        (r#"{"type":"all","conditions":[]}"#, det(&[]), true),
        (r#"{"type":"severity","at_least":"info"}"#, det(&[]), false),
        (r#"{"type":"severity","at_least":"warning"}"#, alert((SourceKind::Device, "d"), Severity::Critical, at), true),
        (
            r#"{"type":"severity","at_least":"critical"}"#,
            alert((SourceKind::Device, "d"), Severity::Warning, at),
            false,
        ),
        (
            r#"{"type":"value","metric":"online","op":"==","value":0}"#,
            event(
                EventKind::DeviceStatus,
                None,
                (SourceKind::Device, "d"),
                Payload::DeviceStatus(DeviceStatus { online: false, detail: None }),
                at,
            ),
            true,
        ),
        (
            r#"{"type":"value","metric":"temperature","op":"<=","value":30}"#,
            reading("s", "z", "temperature", 30.0, at),
            true,
        ),
        (
            r#"{"type":"value","metric":"temperature","op":"!=","value":30}"#,
            reading("s", "z", "temperature", 30.0, at),
            false,
        ),
    ];
    for (cond, ev, want) in cases {
        let kind = ev.kind.as_str();
        let mut engine =
            Engine::new(one_rule(&format!(r#"{{"type":"event","event_kind":"{kind}"}}"#), &format!("[{cond}]"), ""));
        assert_eq!(fired(&engine.on_event(&ev, at)), usize::from(want), "{cond}");
    }
}

// ---------------------------------------------------------------- condition triggers

#[test]
fn condition_trigger_fires_on_edge_and_rearms() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"condition","metric":"temperature","op":">","value":30,"zone":"server-room"}"#,
        "[]",
        "",
    ));
    let t0 = paris(2026, 1, 14, 12, 0);
    // (source, zone, value, fires)
    let steps = [
        ("s1", "server-room", 25.0, false),
        ("s1", "server-room", 31.0, true),
        ("s1", "server-room", 32.0, false),
        ("s1", "lobby", 10.0, false),
        ("s2", "server-room", 35.0, true),
        ("s1", "server-room", 29.0, false),
        ("s1", "server-room", 31.0, true),
        ("s2", "server-room", 36.0, false),
    ];
    for (i, (src, zone, v, want)) in steps.into_iter().enumerate() {
        let t = secs(t0, i as i64 * 10);
        let out = engine.on_event(&reading(src, zone, "temperature", v, t), t);
        assert_eq!(fired(&out), usize::from(want), "step {i}: {src} {v}");
        assert!(engine.on_tick(t).is_empty());
    }
}

#[test]
fn condition_trigger_for_secs() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"condition","metric":"temperature","op":">","value":30,"for_secs":120}"#,
        "[]",
        "",
    ));
    let t0 = paris(2026, 1, 14, 12, 0);
    let r = |v: f64, s: i64| reading("s1", "z", "temperature", v, secs(t0, s));
    assert_eq!(fired(&engine.on_event(&r(31.0, 0), t0)), 0);
    assert_eq!(fired(&engine.on_tick(secs(t0, 60))), 0);
    assert_eq!(fired(&engine.on_event(&r(33.0, 90), secs(t0, 90))), 0);
    assert_eq!(fired(&engine.on_tick(secs(t0, 119))), 0);
    let out = engine.on_tick(secs(t0, 120));
    assert_eq!(fired(&out), 1);
    // The firing carries the latest reading.
    assert!(matches!(&out[0], Outcome::Fired { actions, .. }
        if actions[0] == ActionSpec::Log { message: "R 33".into(), level: LogLevel::Info }));
    assert_eq!(fired(&engine.on_tick(secs(t0, 130))), 0);
    assert_eq!(fired(&engine.on_event(&r(34.0, 140), secs(t0, 140))), 0);
    // Drops below: re-arms; a short excursion does not fire.
    assert_eq!(fired(&engine.on_event(&r(20.0, 150), secs(t0, 150))), 0);
    assert_eq!(fired(&engine.on_event(&r(31.0, 200), secs(t0, 200))), 0);
    assert_eq!(fired(&engine.on_event(&r(29.0, 260), secs(t0, 260))), 0);
    assert_eq!(fired(&engine.on_tick(secs(t0, 400))), 0);
    // Sustained again: fires on a reading once 120 s have passed.
    assert_eq!(fired(&engine.on_event(&r(31.0, 500), secs(t0, 500))), 0);
    assert_eq!(fired(&engine.on_event(&r(31.0, 620), secs(t0, 620))), 1);
}

// ---------------------------------------------------------------- composite

const FORCED_AND_MOTION: &str = r#"{"type":"composite","mode":"all","within_secs":60,"triggers":[
    {"type":"event","event_kind":"alert.triggered","filter":[{"type":"severity","at_least":"critical"}]},
    {"type":"event","event_kind":"motion.detected"}]}"#;

#[test]
fn composite_all_within_window() {
    let mut engine = Engine::new(one_rule(FORCED_AND_MOTION, "[]", ""));
    let t0 = paris(2026, 1, 14, 12, 0);
    let dev = (SourceKind::Device, "door-1");
    // (seconds, event, fires)
    let steps: Vec<(i64, Event, bool)> = vec![
        (0, alert(dev, Severity::Critical, t0), false),
        (30, motion(secs(t0, 30)), true),
        // Consumed: motion alone does not fire again.
        (40, motion(secs(t0, 40)), false),
        // Warning alerts do not pass the filter.
        (50, alert(dev, Severity::Warning, secs(t0, 50)), false),
        // Order does not matter: motion at 40 and alert at 95 are 55 s apart.
        (95, alert(dev, Severity::Critical, secs(t0, 95)), true),
        // Too far apart: alert at 200, motion at 261.
        (200, alert(dev, Severity::Critical, secs(t0, 200)), false),
        (261, motion(secs(t0, 261)), false),
        // Exactly at the window edge still counts: motion 261, alert 321.
        (321, alert(dev, Severity::Critical, secs(t0, 321)), true),
    ];
    for (s, ev, want) in steps {
        let out = engine.on_event(&ev, secs(t0, s));
        assert_eq!(fired(&out), usize::from(want), "at +{s}s {}: {out:?}", ev.kind);
        if want {
            assert!(matches!(&out[0], Outcome::Fired { trigger_event: Some(id), .. } if *id == ev.id));
        }
    }
}

#[test]
fn composite_expires_on_tick() {
    let mut engine = Engine::new(one_rule(FORCED_AND_MOTION, "[]", ""));
    let t0 = paris(2026, 1, 14, 12, 0);
    assert!(engine.on_event(&alert((SourceKind::Device, "d"), Severity::Critical, t0), t0).is_empty());
    assert!(engine.on_tick(secs(t0, 61)).is_empty());
    // Expired on the tick; a clock that went backwards cannot revive it either.
    assert_eq!(fired(&engine.on_event(&motion(secs(t0, 50)), secs(t0, 50))), 0);
}

#[test]
fn composite_any_and_condition_subtrigger() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"composite","mode":"any","within_secs":60,"triggers":[
            {"type":"event","event_kind":"motion.detected"},
            {"type":"condition","metric":"temperature","op":">","value":50,"for_secs":10}]}"#,
        "[]",
        "",
    ));
    let t0 = paris(2026, 1, 14, 12, 0);
    assert_eq!(fired(&engine.on_event(&motion(t0), t0)), 1);
    assert_eq!(fired(&engine.on_event(&motion(t0), secs(t0, 1))), 1);
    assert_eq!(fired(&engine.on_event(&reading("s", "z", "temperature", 60.0, t0), secs(t0, 2))), 0);
    assert_eq!(fired(&engine.on_tick(secs(t0, 12))), 1);
    assert_eq!(fired(&engine.on_tick(secs(t0, 20))), 0);
}

// ---------------------------------------------------------------- cooldown, debounce, disabled

#[test]
fn cooldown_suppressions_are_reported() {
    let mut engine = Engine::new(seed());
    let t = |m| paris(2026, 1, 14, 20, m);
    let steps = [(0, true), (1, false), (4, false), (5, true), (6, false)];
    for (m, want) in steps {
        let out = engine.on_event(&person(Some("restricted"), t(m)), t(m));
        assert_eq!(out.len(), 1, "20:{m:02}");
        assert_eq!(out[0].is_fired(), want, "20:{m:02}: {out:?}");
        if !want {
            let until = if m < 5 { t(5) } else { t(10) };
            assert_eq!(reasons(&out), vec![SuppressReason::Cooldown { until }]);
            assert_eq!(engine.cooldown_until("after-hours", t(m)), Some(until));
        }
    }
    // A non-matching event is not a suppression: nothing at all.
    assert!(engine.on_event(&person(Some("lobby"), t(7)), t(7)).is_empty());
}

#[test]
fn debounce_requires_persistence() {
    let mut engine = Engine::new(one_rule(
        r#"{"type":"event","event_kind":"detection.person"}"#,
        r#"[{"type":"zone","is":"dock"}]"#,
        r#","debounce_secs":10"#,
    ));
    let t0 = paris(2026, 1, 14, 12, 0);
    // (seconds, zone, outcome): F fired, D debounced, - nothing.
    let steps = [
        (0, "dock", 'D'),
        (4, "dock", 'D'),
        (5, "lobby", '-'),
        (8, "dock", 'D'),
        (10, "dock", 'F'),
        (11, "dock", 'D'),
        // Gap of 14 s > 10 s breaks the streak: 25 starts a new one.
        (25, "dock", 'D'),
        (35, "dock", 'F'),
        // Isolated events never fire.
        (100, "dock", 'D'),
        (200, "dock", 'D'),
    ];
    for (s, zone, want) in steps {
        let t = secs(t0, s);
        let out = engine.on_event(&person(Some(zone), t), t);
        let got = match out.as_slice() {
            [] => '-',
            [o] if o.is_fired() => 'F',
            [Outcome::Suppressed { reason: SuppressReason::Debounce { debounce_secs: 10, .. }, .. }] => 'D',
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got, want, "at +{s}s in {zone}");
    }
}

#[test]
fn debounce_reports_held_time() {
    let mut engine =
        Engine::new(one_rule(r#"{"type":"event","event_kind":"detection.person"}"#, "[]", r#","debounce_secs":10"#));
    let t0 = paris(2026, 1, 14, 12, 0);
    engine.on_event(&person(None, t0), t0);
    let out = engine.on_event(&person(None, secs(t0, 7)), secs(t0, 7));
    assert_eq!(reasons(&out), vec![SuppressReason::Debounce { held_secs: 7, debounce_secs: 10 }]);
}

#[test]
fn disabled_rule_reports_disabled() {
    let mut engine =
        Engine::new(one_rule(r#"{"type":"event","event_kind":"detection.person"}"#, "[]", r#","enabled":false"#));
    let t = paris(2026, 1, 14, 12, 0);
    assert_eq!(reasons(&engine.on_event(&person(None, t), t)), vec![SuppressReason::Disabled]);
}

#[test]
fn replace_keeps_cooldowns_of_surviving_ids() {
    let mut engine = Engine::new(seed());
    let t = |m| paris(2026, 1, 14, 20, m);
    assert_eq!(fired(&engine.on_event(&person(Some("restricted"), t(0)), t(0))), 1);

    // Same id, new revision with a changed action and a longer cooldown; plus a new rule.
    let mut doc = RuleSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/seed.toml")).unwrap();
    doc.revision = 2;
    doc.rules[0].cooldown_secs = 600;
    doc.rules[0].actions.truncate(1);
    let mut copy = doc.rules[0].clone();
    copy.id = "after-hours-2".into();
    doc.rules.push(copy);
    engine.replace(doc.compile().unwrap());
    assert_eq!(engine.rules().revision(), 2);

    let out = engine.on_event(&person(Some("restricted"), t(6)), t(6));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(reasons(&out), vec![SuppressReason::Cooldown { until: t(10) }]);
    assert!(matches!(&out[1], Outcome::Fired { rule_id, .. } if rule_id == "after-hours-2"));

    // A rule removed and re-added later starts fresh.
    engine.replace(CompiledRules::empty());
    engine.replace(seed());
    assert_eq!(fired(&engine.on_event(&person(Some("restricted"), t(7)), t(7))), 1);
}

#[test]
fn replace_keeps_condition_state_when_trigger_unchanged() {
    let rules = one_rule(r#"{"type":"condition","metric":"temperature","op":">","value":30}"#, "[]", "");
    let mut engine = Engine::new(rules.clone());
    let t = paris(2026, 1, 14, 12, 0);
    assert_eq!(fired(&engine.on_event(&reading("s", "z", "temperature", 31.0, t), t)), 1);
    engine.replace(rules);
    // Still true, already fired: no new edge after the push.
    assert_eq!(fired(&engine.on_event(&reading("s", "z", "temperature", 32.0, t), secs(t, 5))), 0);
}

// ---------------------------------------------------------------- loops

#[test]
fn rule_sourced_events_do_not_loop() {
    let json = r#"{"schema":1,"rules":[
        {"id":"a","name":"A","trigger":{"type":"event","event_kind":"alert.triggered"},
         "actions":[{"type":"alert","message":"again"}]},
        {"id":"b","name":"B","trigger":{"type":"event","event_kind":"alert.triggered"},"allow_rule_events":true,
         "actions":[{"type":"log","message":"saw {source}"}]}]}"#;
    let mut engine = Engine::new(RuleSet::from_json_str(json).unwrap().compile().unwrap());
    let t = paris(2026, 1, 14, 12, 0);
    // From a device: both fire.
    assert_eq!(fired(&engine.on_event(&alert((SourceKind::Device, "d"), Severity::Info, t), t)), 2);
    // From rule a: only b (opted in) reacts.
    let out = engine.on_event(&alert((SourceKind::Rule, "a"), Severity::Info, t), t);
    assert_eq!(out.iter().map(Outcome::rule_id).collect::<Vec<_>>(), ["b"]);
    // From rule b itself: nobody, not even b.
    assert!(engine.on_event(&alert((SourceKind::Rule, "b"), Severity::Info, t), t).is_empty());
}

// ---------------------------------------------------------------- documents and validation

#[test]
fn validation_reports_every_problem() {
    let json = r#"{"schema":2,"timezone":"Mars/Olympus","rules":[
        {"id":"dup","name":"one","trigger":{"type":"event","event_kind":"detection.unicorn"},"actions":[]},
        {"id":"dup","name":"two","trigger":{"type":"schedule","cron":"61 * * * *"},
         "conditions":[{"type":"time_between","start":"25:00","end":"6:00"},{"type":"zone"}],
         "actions":[{"type":"start_recording","cameras":"all","duration_secs":0},
                    {"type":"notify","target":"","message":"hi {nobody}"}],
         "debounce_secs":5},
        {"id":"bad id!","name":"x","trigger":{"type":"composite","mode":"all","within_secs":0,"triggers":[
            {"type":"schedule","cron":"* * * * *"}]},
         "actions":[{"type":"webhook","url":"ftp://x"}]},
        {"id":"many","name":"m","trigger":{"type":"event","event_kind":"access.denied"},
         "actions":[ACTIONS]}]}"#;
    let many = vec![r#"{"type":"lock_doors","doors":"all"}"#; limits::MAX_ACTIONS + 1].join(",");
    let doc = RuleSet::from_json_str(&json.replace("ACTIONS", &many)).unwrap();
    let problems = doc.compile().unwrap_err();
    let got: Vec<(Option<&str>, &str)> = problems.iter().map(|p| (p.rule_id.as_deref(), p.path.as_str())).collect();
    let want: Vec<(Option<&str>, &str)> = vec![
        (None, "schema"),
        (None, "timezone"),
        (Some("dup"), "rules[0].trigger.event_kind"),
        (Some("dup"), "rules[0].actions"),
        (Some("dup"), "rules[1].id"),
        (Some("dup"), "rules[1].trigger.cron"),
        (Some("dup"), "rules[1].conditions[0].start"),
        (Some("dup"), "rules[1].conditions[1]"),
        (Some("dup"), "rules[1].actions[0].duration_secs"),
        (Some("dup"), "rules[1].actions[1].target"),
        (Some("dup"), "rules[1].actions[1].message"),
        (Some("dup"), "rules[1].debounce_secs"),
        (Some("bad id!"), "rules[2].id"),
        (Some("bad id!"), "rules[2].trigger.within_secs"),
        (Some("bad id!"), "rules[2].trigger.triggers[0]"),
        (Some("bad id!"), "rules[2].actions[0].url"),
        (Some("many"), "rules[3].actions"),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in {problems:#?}");
    }
    assert_eq!(got.len(), want.len(), "{problems:#?}");
    // Messages are readable.
    assert!(problems.iter().any(|p| p.to_string().contains("unknown event kind \"detection.unicorn\"")));
    assert!(problems.iter().any(|p| p.message.contains("minute field")));
}

#[test]
fn single_rule_validation_for_the_cloud() {
    let rule: RuleSpec = serde_json::from_str(
        r#"{"id":"t","name":"T","trigger":{"type":"condition","metric":"","op":">","value":1,"for_secs":999999999},
            "actions":[{"type":"save_clip","cameras":[],"pre_secs":0,"post_secs":0}]}"#,
    )
    .unwrap();
    let problems = rule.validate().unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["trigger.metric", "trigger.for_secs", "actions[0].cameras", "actions[0]"], "{problems:#?}");
    assert!(problems.iter().all(|p| p.rule_id.as_deref() == Some("t")));
    for r in seed().rules() {
        assert_eq!(r.validate(), Ok(()));
    }
}

#[test]
fn unknown_fields_and_bad_shapes_are_rejected() {
    let typo = r#"{"schema":1,"rules":[{"id":"a","name":"A","trigger":{"type":"event","event_kind":"detection.person"},
        "conditons":[],"actions":[{"type":"log","message":"x"}]}]}"#;
    assert!(RuleSet::from_json_str(typo).is_err());
    let bad_selector = r#"{"schema":1,"rules":[{"id":"a","name":"A","trigger":{"type":"event","event_kind":"x"},
        "actions":[{"type":"lock_doors","doors":"some"}]}]}"#;
    assert!(RuleSet::from_json_str(bad_selector).is_err());
    let bad_op = r#"{"schema":1,"rules":[{"id":"a","name":"A","trigger":{"type":"event","event_kind":"x"},
        "conditions":[{"type":"value","metric":"t","op":"=>","value":1}],"actions":[{"type":"log","message":"x"}]}]}"#;
    assert!(RuleSet::from_json_str(bad_op).is_err());
}

#[test]
fn json_and_toml_round_trip() {
    let doc = RuleSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/seed.toml")).unwrap();
    let json = serde_json::to_string_pretty(&doc).unwrap();
    assert_eq!(RuleSet::from_json_str(&json).unwrap(), doc);
    let toml_text = toml::to_string(&doc).unwrap();
    assert_eq!(RuleSet::from_toml_str(&toml_text).unwrap(), doc);

    let mut doc = doc;
    doc.rules[1].actions[1] = serde_json::from_str(
        r#"{"type":"device_command","device":"ac","command":"set","params":{"setpoint":22,"mode":"cool"}}"#,
    )
    .unwrap();
    let toml_text = toml::to_string(&doc).unwrap();
    assert_eq!(RuleSet::from_toml_str(&toml_text).unwrap(), doc);
}

#[test]
fn crate_doc_json_example_compiles() {
    let json = r#"{ "schema": 1, "revision": 3, "timezone": "Europe/Paris",
      "rules": [ {
        "id": "after-hours", "name": "After Hours Alert",
        "trigger": {"type": "event", "event_kind": "detection.person"},
        "conditions": [ {"type": "time_between", "start": "18:00", "end": "06:00"},
                        {"type": "zone", "is": "restricted"} ],
        "actions": [ {"type": "notify", "target": "security", "message": "Person in {zone} after hours"},
                     {"type": "lock_doors", "doors": "all"},
                     {"type": "start_recording", "cameras": "zone", "duration_secs": 120} ],
        "cooldown_secs": 300 },
      { "id": "temperature", "name": "Temperature Alert",
        "trigger": {"type": "event", "event_kind": "sensor.reading"},
        "conditions": [ {"type": "value", "metric": "temperature", "op": ">", "value": 30} ],
        "actions": [ {"type": "alert", "target": "facilities", "severity": "warning",
                      "message": "{source} reads {value}{unit}"},
                     {"type": "device_command", "device": "ac", "command": "on"},
                     {"type": "log", "message": "temperature {value} in {zone}"} ] } ] }"#;
    let rules = RuleSet::from_json_str(json).unwrap().compile().unwrap();
    assert_eq!(rules.revision(), 3);
    let triggers = [
        r#"{"type": "schedule", "cron": "0 8 * * mon-fri"}"#,
        r#"{"type": "condition", "metric": "temperature", "op": ">", "value": 30, "zone": "server-room", "for_secs": 120}"#,
        FORCED_AND_MOTION,
    ];
    for t in triggers {
        one_rule(t, "[]", "");
    }
}

#[test]
fn examples_file_compiles() {
    let rules = RuleSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/examples.json")).unwrap().compile().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules.revision(), 7);
}

#[test]
fn limits_and_empty_windows_are_problems() {
    let rule = |i: usize| RuleSpec {
        id: format!("r{i}"),
        name: "n".into(),
        description: String::new(),
        enabled: true,
        trigger: TriggerSpec::Schedule { cron: "@daily".into() },
        conditions: vec![ConditionSpec::TimeBetween { start: "06:00".into(), end: "06:00".into() }],
        actions: vec![ActionSpec::Log { message: "x".into(), level: LogLevel::Info }],
        debounce_secs: 0,
        cooldown_secs: limits::MAX_WINDOW_SECS + 1,
        allow_rule_events: false,
    };
    let doc =
        RuleSet { schema: 1, revision: 0, timezone: "UTC".into(), rules: (0..=limits::MAX_RULES).map(rule).collect() };
    let problems = doc.compile().unwrap_err();
    assert_eq!(problems[0].path, "rules");
    assert_eq!(problems.len(), 1 + 2 * (limits::MAX_RULES + 1));
    assert_eq!(problems[1].path, "rules[0].conditions[0]");
    assert_eq!(problems[2].path, "rules[0].cooldown_secs");
}

#[test]
fn load_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("rules.json");
    let doc = RuleSet::load(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/seed.toml")).unwrap();
    std::fs::write(&json_path, serde_json::to_string(&doc).unwrap()).unwrap();
    assert_eq!(RuleSet::load(&json_path).unwrap(), doc);
    assert!(matches!(RuleSet::load(dir.path().join("rules.yaml")), Err(LoadError::UnknownFormat(_))));
    assert!(matches!(RuleSet::load(dir.path().join("missing.toml")), Err(LoadError::Io { .. })));
}

#[test]
fn execution_records_serialize() {
    let mut engine = Engine::new(seed());
    let t = paris(2026, 1, 14, 20, 0);
    let ev = person(Some("restricted"), t);
    let fired = Execution::from_outcome(&engine.on_event(&ev, t)[0]);
    assert_eq!(fired.trigger_event, Some(ev.id));
    assert_eq!(fired.outcome, ExecutionOutcome::Fired);
    let summaries: Vec<&str> = fired.actions.iter().map(|a| a.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "notify security: Person detected in restricted after hours (20:00, cam-1)",
            "lock doors: all",
            "record 120s on cameras: zone"
        ]
    );
    let suppressed = Execution::from_outcome(&engine.on_event(&ev, secs(t, 60))[0]);
    let v = serde_json::to_value(&suppressed).unwrap();
    assert_eq!(v["outcome"]["status"], "suppressed");
    assert_eq!(v["outcome"]["reason"], "cooldown");
    assert_eq!(v["outcome"]["until"], "2026-01-14T19:05:00Z");
    assert_eq!(serde_json::from_value::<Execution>(v).unwrap(), suppressed);

    let mut done = fired.clone();
    done.actions[0].result = Some(ActionResult::Failed { error: "smtp down".into() });
    let back: Execution = serde_json::from_str(&serde_json::to_string(&done).unwrap()).unwrap();
    assert_eq!(back, done);
}

// ---------------------------------------------------------------- never panic

mod never_panic {
    use proptest::prelude::*;

    use super::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("restricted".to_owned()),
            Just("cam-1".to_owned()),
            Just("temperature".to_owned()),
            Just("".to_owned()),
            "[a-z{}*/,0-9 -]{0,12}",
        ]
    }

    fn cron() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            Just("*".to_owned()),
            Just("*/7".to_owned()),
            Just("1-5".to_owned()),
            Just("mon-fri".to_owned()),
            "[0-9*/,a-z-]{0,6}",
        ];
        prop::collection::vec(field, 0..7).prop_map(|f| f.join(" "))
    }

    fn kind() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(EventKind::ALL.to_vec()).prop_map(|k| k.as_str().to_owned()),
            Just("nope".to_owned())
        ]
    }

    fn condition() -> impl Strategy<Value = ConditionSpec> {
        let leaf = prop_oneof![
            ("[0-9:]{0,6}", "[0-9:]{0,6}").prop_map(|(start, end)| ConditionSpec::TimeBetween { start, end }),
            prop::collection::vec(word(), 0..3).prop_map(|days| ConditionSpec::Weekdays { days }),
            (prop::option::of(word()), prop::option::of(prop::collection::vec(word(), 0..3)))
                .prop_map(|(is, one_of)| ConditionSpec::Zone { is, one_of }),
            (word(), any::<f64>()).prop_map(|(metric, value)| ConditionSpec::Value {
                metric,
                op: CompareOp::Gt,
                value
            }),
            (prop::option::of(word()), prop::option::of(any::<f32>()), prop::option::of(any::<u32>()))
                .prop_map(|(label, min_score, min_count)| ConditionSpec::Detection { label, min_score, min_count }),
            kind().prop_map(|k| ConditionSpec::EventKind { is: Some(k), one_of: None }),
            Just(ConditionSpec::Severity { at_least: Severity::Warning }),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|c| ConditionSpec::Not { condition: Box::new(c) }),
                prop::collection::vec(inner.clone(), 0..3).prop_map(|conditions| ConditionSpec::Any { conditions }),
                prop::collection::vec(inner, 0..3).prop_map(|conditions| ConditionSpec::All { conditions }),
            ]
        })
    }

    fn trigger() -> impl Strategy<Value = TriggerSpec> {
        let leaf = prop_oneof![
            (kind(), prop::option::of(word()), prop::option::of(word()), prop::collection::vec(condition(), 0..2))
                .prop_map(|(event_kind, source, zone, filter)| {
                    TriggerSpec::Event(EventTriggerSpec { event_kind, source, zone, filter })
                }),
            cron().prop_map(|cron| TriggerSpec::Schedule { cron }),
            (word(), any::<f64>(), prop::option::of(word()), 0u64..400).prop_map(|(metric, value, zone, for_secs)| {
                TriggerSpec::Condition(ConditionTriggerSpec {
                    metric,
                    op: CompareOp::Ge,
                    value,
                    source: None,
                    zone,
                    for_secs,
                })
            }),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| {
            (any::<bool>(), 0u64..200, prop::collection::vec(inner, 0..3)).prop_map(|(all, within_secs, triggers)| {
                TriggerSpec::Composite {
                    mode: if all { CompositeMode::All } else { CompositeMode::Any },
                    within_secs,
                    triggers,
                }
            })
        })
    }

    fn rule() -> impl Strategy<Value = RuleSpec> {
        (
            prop_oneof![Just("a".to_owned()), Just("b".to_owned()), "[a-z!]{0,4}"],
            any::<bool>(),
            trigger(),
            prop::collection::vec(condition(), 0..3),
            prop::collection::vec(word(), 0..3),
            0u64..30,
            0u64..120,
            any::<bool>(),
        )
            .prop_map(
                |(id, enabled, trigger, conditions, messages, debounce_secs, cooldown_secs, allow_rule_events)| {
                    RuleSpec {
                        id,
                        name: "n".into(),
                        description: String::new(),
                        enabled,
                        trigger,
                        conditions,
                        actions: messages
                            .into_iter()
                            .map(|m| ActionSpec::Notify { target: "t".into(), message: format!("{m} {{value}}") })
                            .collect(),
                        debounce_secs,
                        cooldown_secs,
                        allow_rule_events,
                    }
                },
            )
    }

    fn event_strategy() -> impl Strategy<Value = (Event, i64)> {
        (
            prop::sample::select(EventKind::ALL.to_vec()),
            prop::option::of(word()),
            any::<bool>(),
            word(),
            prop_oneof![any::<f64>(), -50.0..50.0f64],
            prop_oneof![any::<i64>(), 1_700_000_000_000_000i64..1_800_000_000_000_000],
            -100i64..100_000,
        )
            .prop_map(|(kind, zone, from_rule, metric, value, micros, delay)| {
                let payload = match kind {
                    EventKind::SensorReading => {
                        Payload::SensorReading(SensorReading { metric, value, unit: "C".into() })
                    }
                    EventKind::AlertTriggered => {
                        Payload::Alert(Alert { rule: None, severity: Severity::Critical, message: metric })
                    }
                    EventKind::DeviceStatus => {
                        Payload::DeviceStatus(DeviceStatus { online: value > 0.0, detail: None })
                    }
                    _ => detection(&[(metric.as_str(), value as f32)]),
                };
                let source = if from_rule { (SourceKind::Rule, "a") } else { (SourceKind::Device, "cam-1") };
                let mut ev = event(kind, zone.as_deref(), source, payload, Utc::now());
                ev.occurred_at = Timestamp(micros);
                (ev, delay)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn random_documents_and_events_never_panic(
            rules in prop::collection::vec(rule(), 0..4),
            tz in prop_oneof![Just("Europe/Paris"), Just("UTC"), Just("Australia/Lord_Howe"), Just("bad")],
            events in prop::collection::vec(event_strategy(), 0..20),
            start in prop_oneof![1_700_000_000i64..1_800_000_000, Just(8_210_266_876_799i64), Just(-8_334_601_228_800i64)],
        ) {
            let doc = RuleSet { schema: 1, revision: 0, timezone: tz.to_owned(), rules };
            for r in &doc.rules {
                let _ = r.validate();
            }
            if let Ok(compiled) = doc.compile() {
                let mut engine = Engine::new(compiled.clone());
                let mut now = DateTime::from_timestamp(start, 0).unwrap_or_default();
                for (ev, delay) in &events {
                    now = now.checked_add_signed(TimeDelta::seconds(*delay)).unwrap_or(now);
                    for o in engine.on_event(ev, now).iter().chain(engine.on_tick(now).iter()) {
                        let _ = serde_json::to_string(&Execution::from_outcome(o));
                    }
                }
                engine.replace(compiled);
                engine.on_tick(now);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,64}") {
            let _ = CronSchedule::parse(&s);
            let _ = RuleSet::from_json_str(&s);
            let _ = RuleSet::from_toml_str(&s);
        }
    }
}
