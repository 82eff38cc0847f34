//! A checked [`SiteDocument`]: references resolved, timezone and times parsed, lookups indexed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::document::{AntiPassback, Day, DegradedPolicy, Door, SITE_DOCUMENT_SCHEMA, SiteDocument, Window};

/// Every problem found in a document, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid site document: {}", problems.join("; "))]
pub struct PolicyError {
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompiledWindow {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledSchedule {
    windows: Vec<CompiledWindow>,
    holiday_windows: Vec<CompiledWindow>,
}

/// The document, checked and indexed. Immutable; the engine swaps it whole on a new revision.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) doc: SiteDocument,
    pub(crate) tz: Tz,
    pub(crate) schedules: HashMap<String, CompiledSchedule>,
    pub(crate) holidays: HashSet<NaiveDate>,
    /// badge → credential index
    pub(crate) by_badge: HashMap<String, usize>,
    /// PIN of PIN-only credentials → credential index
    pub(crate) by_pin: HashMap<String, usize>,
    pub(crate) people: HashMap<String, usize>,
    pub(crate) groups: HashMap<String, usize>,
    pub(crate) areas: HashMap<String, AntiPassback>,
    /// reader device → door index
    pub(crate) by_reader: HashMap<String, usize>,
    /// contact device → door index
    pub(crate) by_contact: HashMap<String, usize>,
    /// lock device → door index
    pub(crate) by_lock: HashMap<String, usize>,
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    if s == "24:00" {
        return NaiveTime::from_hms_opt(23, 59, 59);
    }
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

fn day_index(d: Day) -> usize {
    d as usize
}

impl Policy {
    /// Checks a document and indexes it.
    pub fn compile(doc: SiteDocument) -> Result<Policy, PolicyError> {
        let mut problems = Vec::new();
        if doc.schema != SITE_DOCUMENT_SCHEMA {
            problems.push(format!("schema {} is not supported (expected {SITE_DOCUMENT_SCHEMA})", doc.schema));
        }
        let tz: Tz = doc.timezone.parse().unwrap_or_else(|_| {
            problems.push(format!("unknown timezone {:?}", doc.timezone));
            Tz::UTC
        });
        let compile_windows = |id: &str, ws: &[Window], problems: &mut Vec<String>| -> Vec<CompiledWindow> {
            ws.iter()
                .filter_map(|w| {
                    let (Some(start), Some(end)) = (parse_hhmm(&w.start), parse_hhmm(&w.end)) else {
                        problems.push(format!("schedule {id}: window {}-{} is not HH:MM-HH:MM", w.start, w.end));
                        return None;
                    };
                    let mut days = [false; 7];
                    for d in &w.days {
                        days[day_index(*d)] = true;
                    }
                    Some(CompiledWindow { days, start, end })
                })
                .collect()
        };
        let mut schedules = HashMap::new();
        for s in &doc.schedules {
            let compiled = CompiledSchedule {
                windows: compile_windows(&s.id, &s.windows, &mut problems),
                holiday_windows: compile_windows(&s.id, &s.holiday_windows, &mut problems),
            };
            if schedules.insert(s.id.clone(), compiled).is_some() {
                problems.push(format!("duplicate schedule {}", s.id));
            }
        }
        let index = |what: &str, ids: Vec<&String>, problems: &mut Vec<String>| -> HashMap<String, usize> {
            let mut map = HashMap::new();
            for (i, id) in ids.into_iter().enumerate() {
                if map.insert(id.clone(), i).is_some() {
                    problems.push(format!("duplicate {what} {id}"));
                }
            }
            map
        };
        let people = index("person", doc.people.iter().map(|p| &p.id).collect(), &mut problems);
        let groups = index("group", doc.groups.iter().map(|g| &g.id).collect(), &mut problems);
        let doors = index("door", doc.doors.iter().map(|d| &d.id).collect(), &mut problems);
        index("credential", doc.credentials.iter().map(|c| &c.id).collect(), &mut problems);
        let areas: HashMap<String, AntiPassback> = doc.areas.iter().map(|a| (a.id.clone(), a.anti_passback)).collect();

        for p in &doc.people {
            for g in &p.groups {
                if !groups.contains_key(g) {
                    problems.push(format!("person {}: unknown group {g}", p.id));
                }
            }
        }
        for g in &doc.groups {
            for d in &g.doors {
                if !doors.contains_key(d) {
                    problems.push(format!("group {}: unknown door {d}", g.id));
                }
            }
            if let Some(s) = &g.schedule
                && !schedules.contains_key(s)
            {
                problems.push(format!("group {}: unknown schedule {s}", g.id));
            }
        }
        for g in &doc.lockdown_override_groups {
            if !groups.contains_key(g) {
                problems.push(format!("lockdown_override_groups: unknown group {g}"));
            }
        }
        if let DegradedPolicy::GroupsOnly { groups: gs } = &doc.degraded {
            for g in gs {
                if !groups.contains_key(g) {
                    problems.push(format!("degraded policy: unknown group {g}"));
                }
            }
        }
        let mut by_badge = HashMap::new();
        let mut by_pin = HashMap::new();
        for (i, c) in doc.credentials.iter().enumerate() {
            if !people.contains_key(&c.person) {
                problems.push(format!("credential {}: unknown person {}", c.id, c.person));
            }
            match (&c.badge, &c.pin) {
                (Some(b), _) => {
                    if by_badge.insert(b.clone(), i).is_some() {
                        problems.push(format!("credential {}: badge is used by another credential", c.id));
                    }
                }
                (None, Some(p)) => {
                    if by_pin.insert(p.clone(), i).is_some() {
                        problems.push(format!("credential {}: PIN is used by another PIN-only credential", c.id));
                    }
                }
                (None, None) => problems.push(format!("credential {}: has neither badge nor pin", c.id)),
            }
        }
        let mut by_reader = HashMap::new();
        let mut by_contact = HashMap::new();
        let mut by_lock = HashMap::new();
        let mut devices = HashSet::new();
        for (i, d) in doc.doors.iter().enumerate() {
            check_door(d, &areas, &groups, &schedules, &mut problems);
            for dev in [Some(&d.reader), Some(&d.lock), d.contact.as_ref()].into_iter().flatten() {
                if !devices.insert(dev.clone()) {
                    problems.push(format!("door {}: device {dev} is used twice", d.id));
                }
            }
            by_reader.insert(d.reader.clone(), i);
            by_lock.insert(d.lock.clone(), i);
            if let Some(c) = &d.contact {
                by_contact.insert(c.clone(), i);
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError { problems });
        }
        let holidays = doc.holidays.iter().map(|h| h.date).collect();
        Ok(Policy {
            doc,
            tz,
            schedules,
            holidays,
            by_badge,
            by_pin,
            people,
            groups,
            areas,
            by_reader,
            by_contact,
            by_lock,
        })
    }

    /// The checked document.
    pub fn document(&self) -> &SiteDocument {
        &self.doc
    }

    /// Whether `schedule` is open at `now` in the site's timezone, and whether today is a holiday.
    pub(crate) fn schedule_open(&self, schedule: &str, now: DateTime<Utc>) -> (bool, bool) {
        let local = now.with_timezone(&self.tz).naive_local();
        let (date, time) = (local.date(), local.time());
        let holiday = self.holidays.contains(&date);
        let Some(s) = self.schedules.get(schedule) else { return (false, holiday) };
        let windows = if holiday { &s.holiday_windows } else { &s.windows };
        let today = Day::of(date.weekday()) as usize;
        let yesterday = Day::of(date.weekday().pred()) as usize;
        let open = windows.iter().any(|w| {
            if w.start <= w.end {
                w.days[today] && w.start <= time && time < w.end
            } else {
                (w.days[today] && time >= w.start) || (w.days[yesterday] && time < w.end)
            }
        });
        (open, holiday)
    }
}

fn check_door(
    d: &Door,
    areas: &HashMap<String, AntiPassback>,
    groups: &HashMap<String, usize>,
    schedules: &HashMap<String, CompiledSchedule>,
    problems: &mut Vec<String>,
) {
    if let Some(a) = &d.enters
        && !areas.contains_key(a)
    {
        problems.push(format!("door {}: unknown area {a}", d.id));
    }
    if let Some(f) = &d.first_person_in {
        if !groups.contains_key(&f.group) {
            problems.push(format!("door {}: first-person-in group {} is unknown", d.id, f.group));
        }
        if !schedules.contains_key(&f.schedule) {
            problems.push(format!("door {}: first-person-in schedule {} is unknown", d.id, f.schedule));
        }
    }
    if d.unlock_secs == 0 || d.held_open_secs == 0 {
        problems.push(format!("door {}: unlock_secs and held_open_secs must be positive", d.id));
    }
}
