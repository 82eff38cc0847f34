//! Compiled conditions and their evaluation against an event and a local time.

use chrono::{Datelike, NaiveDateTime, Timelike};
use vigil_proto::{Event, EventKind, Payload, Severity};

use crate::document::CompareOp;

/// A checked [`ConditionSpec`](crate::ConditionSpec).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// Minutes of the day, `[start, end)`, wrapping when `start > end`.
    TimeBetween {
        start: u32,
        end: u32,
    },
    /// Bit `n` = day `n` counted from Monday.
    Weekdays(u8),
    Zone(Vec<String>),
    Source(Vec<String>),
    Kind(Vec<EventKind>),
    Value {
        metric: String,
        op: CompareOp,
        value: f64,
    },
    Detection {
        label: Option<String>,
        min_score: f32,
        min_count: u32,
    },
    Severity(Severity),
    Not(Box<Condition>),
    Any(Vec<Condition>),
    All(Vec<Condition>),
}

/// What a condition looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvalCtx<'a> {
    pub event: Option<&'a Event>,
    /// Local wall-clock time: the event's `occurred_at` when there is an event, else the tick time.
    pub local: NaiveDateTime,
}

impl Condition {
    pub(crate) fn eval(&self, ctx: &EvalCtx<'_>) -> bool {
        match self {
            Condition::TimeBetween { start, end } => {
                let m = ctx.local.hour() * 60 + ctx.local.minute();
                if start <= end { *start <= m && m < *end } else { m >= *start || m < *end }
            }
            Condition::Weekdays(mask) => mask & (1 << ctx.local.weekday().num_days_from_monday()) != 0,
            Condition::Zone(zones) => {
                ctx.event.and_then(|e| e.zone.as_deref()).is_some_and(|z| zones.iter().any(|x| x == z))
            }
            Condition::Source(ids) => ctx.event.is_some_and(|e| ids.contains(&e.source.id)),
            Condition::Kind(kinds) => ctx.event.is_some_and(|e| kinds.contains(&e.kind)),
            Condition::Value { metric, op, value } => {
                ctx.event.and_then(|e| metric_value(e, metric)).is_some_and(|(v, _)| op.compare(v, *value))
            }
            Condition::Detection { label, min_score, min_count } => {
                ctx.event.is_some_and(|e| count_objects(e, label.as_deref(), *min_score) >= *min_count)
            }
            Condition::Severity(min) => {
                ctx.event.is_some_and(|e| matches!(&e.payload, Payload::Alert(a) if a.severity >= *min))
            }
            Condition::Not(c) => !c.eval(ctx),
            Condition::Any(cs) => cs.iter().any(|c| c.eval(ctx)),
            Condition::All(cs) => cs.iter().all(|c| c.eval(ctx)),
        }
    }
}

/// The value of `metric` carried by `event`, with its unit: a sensor reading's value when its
/// metric matches (ASCII case-insensitively), or `online` (1/0) for a device status.
pub(crate) fn metric_value<'e>(event: &'e Event, metric: &str) -> Option<(f64, Option<&'e str>)> {
    match &event.payload {
        Payload::SensorReading(r) if r.metric.eq_ignore_ascii_case(metric) => Some((r.value, Some(r.unit.as_str()))),
        Payload::DeviceStatus(s) if metric.eq_ignore_ascii_case("online") => {
            Some((if s.online { 1.0 } else { 0.0 }, None))
        }
        _ => None,
    }
}

/// Objects in a detection or tracked-object event with `label` (any when `None`) and score at
/// least `min_score`.
fn count_objects(event: &Event, label: Option<&str>, min_score: f32) -> u32 {
    let ok = |l: &str, score: f32| label.is_none_or(|want| want.eq_ignore_ascii_case(l)) && score >= min_score;
    match &event.payload {
        Payload::Detection(d) => {
            let n = d.objects.iter().filter(|o| ok(&o.label, o.score)).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        Payload::Object(o) => u32::from(ok(&o.label, o.score)),
        _ => 0,
    }
}

/// Parses `HH:MM` (00:00–23:59) into minutes of the day.
pub(crate) fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Parses `mon`..`sun` (or full names) into a day index from Monday.
pub(crate) fn parse_weekday(s: &str) -> Option<u8> {
    const DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    let lower = s.to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    DAYS.iter().position(|d| d.starts_with(&lower) && (lower.len() == 3 || lower == *d)).map(|i| i as u8)
}
