//! Validation and compilation of rule documents: every problem is reported at once, each with the
//! rule id and the path of the offending field.

use std::collections::HashSet;

use chrono_tz::Tz;
use vigil_proto::EventKind;

use crate::condition::{Condition, parse_hhmm, parse_weekday};
use crate::cron::CronSchedule;
use crate::document::{
    ActionSpec, CompareOp, CompositeMode, ConditionSpec, RULES_SCHEMA, RuleSet, RuleSpec, Selector, TriggerSpec,
};

/// Limits enforced by validation, so one document cannot make the edge do unbounded work.
pub mod limits {
    /// Rules in one document.
    pub const MAX_RULES: usize = 500;
    /// Actions in one rule.
    pub const MAX_ACTIONS: usize = 20;
    /// Condition nodes in one rule, nested ones and trigger filters included.
    pub const MAX_CONDITIONS: usize = 64;
    /// Nesting depth of `not` / `any` / `all`.
    pub const MAX_DEPTH: usize = 8;
    /// Sub-triggers of a composite.
    pub const MAX_SUBTRIGGERS: usize = 10;
    /// Any `*_secs` window (debounce, cooldown, `for_secs`, `within_secs`, clip pre/post): 7 days.
    pub const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;
    /// `start_recording.duration_secs`: 24 hours.
    pub const MAX_RECORDING_SECS: u64 = 24 * 3600;
    /// Rule ids.
    pub const MAX_ID_LEN: usize = 64;
    /// Names, messages, targets, URLs.
    pub const MAX_TEXT_LEN: usize = 2000;
}
use limits::*;

/// Placeholders that messages may use.
pub const PLACEHOLDERS: [&str; 8] = ["rule", "rule_id", "zone", "source", "kind", "value", "unit", "time"];

/// One thing wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// The rule's id, when the problem is inside a rule (and the rule has an id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Field path, e.g. `rules[0].conditions[1].start` (relative to the rule for
    /// [`RuleSpec::validate`]).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule_id {
            Some(id) => write!(f, "rule {id:?}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// A validated document, ready for an [`Engine`](crate::Engine).
#[derive(Debug, Clone)]
pub struct CompiledRules {
    pub(crate) tz: Tz,
    pub(crate) revision: u64,
    pub(crate) rules: Vec<CompiledRule>,
}

impl CompiledRules {
    /// No rules, UTC.
    pub fn empty() -> CompiledRules {
        CompiledRules { tz: Tz::UTC, revision: 0, rules: Vec::new() }
    }

    /// The document's revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The document's time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The rules, in document order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }

    /// A rule by id.
    pub fn get(&self, id: &str) -> Option<&RuleSpec> {
        self.rules().find(|r| r.id == id)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub spec: RuleSpec,
    pub trigger: Trigger,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Trigger {
    Event(EventTrigger),
    Schedule(CronSchedule),
    Condition(CondTrigger),
    Composite { mode: CompositeMode, within_secs: u64, subs: Vec<Trigger> },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventTrigger {
    pub kind: EventKind,
    pub source: Option<String>,
    pub zone: Option<String>,
    pub filter: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CondTrigger {
    pub metric: String,
    pub op: CompareOp,
    pub value: f64,
    pub source: Option<String>,
    pub zone: Option<String>,
    pub for_secs: u64,
}

impl RuleSet {
    /// Validates the whole document and compiles it; on failure returns every problem found.
    pub fn compile(&self) -> Result<CompiledRules, Vec<Problem>> {
        let mut problems = Vec::new();
        if self.schema != RULES_SCHEMA {
            problems.push(Problem {
                rule_id: None,
                path: "schema".into(),
                message: format!("unsupported schema {} (this edge reads {RULES_SCHEMA})", self.schema),
            });
        }
        let tz = match self.timezone.parse::<Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                problems.push(Problem {
                    rule_id: None,
                    path: "timezone".into(),
                    message: format!("unknown time zone {:?} (use an IANA name like Europe/Paris)", self.timezone),
                });
                Tz::UTC
            }
        };
        if self.rules.len() > MAX_RULES {
            problems.push(Problem {
                rule_id: None,
                path: "rules".into(),
                message: format!("{} rules, at most {MAX_RULES} allowed", self.rules.len()),
            });
        }
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, spec) in self.rules.iter().enumerate() {
            let prefix = format!("rules[{i}].");
            if !spec.id.is_empty() && !seen.insert(spec.id.as_str()) {
                problems.push(Problem {
                    rule_id: Some(spec.id.clone()),
                    path: format!("{prefix}id"),
                    message: format!("duplicate rule id {:?}", spec.id),
                });
            }
            if let Some(rule) = compile_rule(spec, &prefix, &mut problems) {
                rules.push(rule);
            }
        }
        if problems.is_empty() { Ok(CompiledRules { tz, revision: self.revision, rules }) } else { Err(problems) }
    }
}

impl RuleSpec {
    /// Validates one rule on its own (paths are relative to the rule); what the cloud runs on
    /// `POST /api/rules`. Document-level checks (duplicate ids, time zone) are not included.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        compile_rule(self, "", &mut problems);
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

struct Checker<'a> {
    rule_id: Option<String>,
    prefix: &'a str,
    problems: &'a mut Vec<Problem>,
    condition_nodes: usize,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            rule_id: self.rule_id.clone(),
            path: format!("{}{path}", self.prefix),
            message: message.into(),
        });
    }

    fn text(&mut self, path: &str, s: &str, required: bool) {
        if required && s.trim().is_empty() {
            self.err(path, "must not be empty");
        }
        if s.len() > MAX_TEXT_LEN {
            self.err(path, format!("longer than {MAX_TEXT_LEN} bytes"));
        }
    }

    fn message(&mut self, path: &str, s: &str) {
        self.text(path, s, true);
        for name in placeholders(s) {
            if !PLACEHOLDERS.contains(&name) {
                self.err(path, format!("unknown placeholder {{{name}}} (known: {})", PLACEHOLDERS.join(", ")));
            }
        }
    }

    fn window(&mut self, path: &str, secs: u64, min: u64) {
        if secs < min || secs > MAX_WINDOW_SECS {
            self.err(path, format!("must be between {min} and {MAX_WINDOW_SECS} seconds, got {secs}"));
        }
    }

    fn selector(&mut self, path: &str, s: &Selector) {
        if let Selector::Ids(ids) = s {
            if ids.is_empty() {
                self.err(path, "empty list (use \"all\" or \"zone\", or name ids)");
            }
            for (i, id) in ids.iter().enumerate() {
                self.text(&format!("{path}[{i}]"), id, true);
            }
        }
    }

    fn event_kind(&mut self, path: &str, s: &str) -> Option<EventKind> {
        let k = EventKind::parse(s);
        if k.is_none() {
            self.err(path, format!("unknown event kind {s:?}"));
        }
        k
    }

    fn conditions(&mut self, path: &str, specs: &[ConditionSpec], depth: usize) -> Vec<Condition> {
        specs.iter().enumerate().filter_map(|(i, c)| self.condition(&format!("{path}[{i}]"), c, depth)).collect()
    }

    fn one_of(&mut self, path: &str, is: &Option<String>, one_of: &Option<Vec<String>>) -> Vec<String> {
        match (is, one_of) {
            (Some(x), None) => {
                self.text(&format!("{path}.is"), x, true);
                vec![x.clone()]
            }
            (None, Some(xs)) => {
                if xs.is_empty() {
                    self.err(&format!("{path}.in"), "empty list");
                }
                xs.clone()
            }
            _ => {
                self.err(path, "give exactly one of `is` and `in`");
                Vec::new()
            }
        }
    }

    fn condition(&mut self, path: &str, spec: &ConditionSpec, depth: usize) -> Option<Condition> {
        self.condition_nodes += 1;
        if self.condition_nodes == MAX_CONDITIONS + 1 {
            self.err(path, format!("more than {MAX_CONDITIONS} conditions in one rule"));
        }
        if depth > MAX_DEPTH {
            self.err(path, format!("conditions nested deeper than {MAX_DEPTH}"));
            return None;
        }
        Some(match spec {
            ConditionSpec::TimeBetween { start, end } => {
                let s = parse_hhmm(start);
                let e = parse_hhmm(end);
                if s.is_none() {
                    self.err(&format!("{path}.start"), format!("{start:?} is not a time HH:MM (00:00-23:59)"));
                }
                if e.is_none() {
                    self.err(&format!("{path}.end"), format!("{end:?} is not a time HH:MM (00:00-23:59)"));
                }
                let (start, end) = (s?, e?);
                if start == end {
                    self.err(path, "start equals end: the window is empty");
                }
                Condition::TimeBetween { start, end }
            }
            ConditionSpec::Weekdays { days } => {
                if days.is_empty() {
                    self.err(&format!("{path}.days"), "empty list");
                }
                let mut mask = 0u8;
                for (i, d) in days.iter().enumerate() {
                    match parse_weekday(d) {
                        Some(n) => mask |= 1 << n,
                        None => self.err(&format!("{path}.days[{i}]"), format!("{d:?} is not a day (mon..sun)")),
                    }
                }
                Condition::Weekdays(mask)
            }
            ConditionSpec::Zone { is, one_of } => Condition::Zone(self.one_of(path, is, one_of)),
            ConditionSpec::Source { is, one_of } => Condition::Source(self.one_of(path, is, one_of)),
            ConditionSpec::EventKind { is, one_of } => {
                let names = self.one_of(path, is, one_of);
                let field = if is.is_some() { "is" } else { "in" };
                let kinds = names
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        let p = if is.is_some() { format!("{path}.{field}") } else { format!("{path}.{field}[{i}]") };
                        self.event_kind(&p, n)
                    })
                    .collect();
                Condition::Kind(kinds)
            }
            ConditionSpec::Value { metric, op, value } => {
                self.text(&format!("{path}.metric"), metric, true);
                if !value.is_finite() {
                    self.err(&format!("{path}.value"), "must be a finite number");
                }
                Condition::Value { metric: metric.clone(), op: *op, value: *value }
            }
            ConditionSpec::Detection { label, min_score, min_count } => {
                if let Some(l) = label {
                    self.text(&format!("{path}.label"), l, true);
                }
                let min_score = min_score.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&min_score) {
                    self.err(&format!("{path}.min_score"), "must be between 0 and 1");
                }
                let min_count = min_count.unwrap_or(1);
                if min_count == 0 {
                    self.err(&format!("{path}.min_count"), "must be at least 1");
                }
                Condition::Detection { label: label.clone(), min_score, min_count }
            }
            ConditionSpec::Severity { at_least } => Condition::Severity(*at_least),
            ConditionSpec::Not { condition } => {
                Condition::Not(Box::new(self.condition(&format!("{path}.condition"), condition, depth + 1)?))
            }
            ConditionSpec::Any { conditions } => {
                Condition::Any(self.conditions(&format!("{path}.conditions"), conditions, depth + 1))
            }
            ConditionSpec::All { conditions } => {
                Condition::All(self.conditions(&format!("{path}.conditions"), conditions, depth + 1))
            }
        })
    }

    fn trigger(&mut self, path: &str, spec: &TriggerSpec, nested: bool) -> Option<Trigger> {
        Some(match spec {
            TriggerSpec::Event(e) => {
                let kind = self.event_kind(&format!("{path}.event_kind"), &e.event_kind);
                if let Some(s) = &e.source {
                    self.text(&format!("{path}.source"), s, true);
                }
                if let Some(z) = &e.zone {
                    self.text(&format!("{path}.zone"), z, true);
                }
                let filter = self.conditions(&format!("{path}.filter"), &e.filter, 1);
                Trigger::Event(EventTrigger { kind: kind?, source: e.source.clone(), zone: e.zone.clone(), filter })
            }
            TriggerSpec::Schedule { cron } => {
                if nested {
                    self.err(path, "a composite may only combine event and condition triggers");
                }
                match CronSchedule::parse(cron) {
                    Ok(c) => Trigger::Schedule(c),
                    Err(e) => {
                        self.err(&format!("{path}.cron"), e);
                        return None;
                    }
                }
            }
            TriggerSpec::Condition(c) => {
                self.text(&format!("{path}.metric"), &c.metric, true);
                if !c.value.is_finite() {
                    self.err(&format!("{path}.value"), "must be a finite number");
                }
                self.window(&format!("{path}.for_secs"), c.for_secs, 0);
                Trigger::Condition(CondTrigger {
                    metric: c.metric.clone(),
                    op: c.op,
                    value: c.value,
                    source: c.source.clone(),
                    zone: c.zone.clone(),
                    for_secs: c.for_secs,
                })
            }
            TriggerSpec::Composite { mode, within_secs, triggers } => {
                if nested {
                    self.err(path, "a composite may only combine event and condition triggers");
                }
                self.window(&format!("{path}.within_secs"), *within_secs, 1);
                if triggers.is_empty() || triggers.len() > MAX_SUBTRIGGERS {
                    self.err(&format!("{path}.triggers"), format!("needs 1 to {MAX_SUBTRIGGERS} sub-triggers"));
                }
                let subs: Vec<Trigger> = triggers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| self.trigger(&format!("{path}.triggers[{i}]"), t, true))
                    .collect();
                Trigger::Composite { mode: *mode, within_secs: *within_secs, subs }
            }
        })
    }

    fn action(&mut self, path: &str, a: &ActionSpec) {
        match a {
            ActionSpec::Notify { target, message } => {
                self.text(&format!("{path}.target"), target, true);
                self.message(&format!("{path}.message"), message);
            }
            ActionSpec::Alert { message, target, .. } => {
                self.message(&format!("{path}.message"), message);
                if let Some(t) = target {
                    self.text(&format!("{path}.target"), t, true);
                }
            }
            ActionSpec::LockDoors { doors } | ActionSpec::UnlockDoors { doors } => {
                self.selector(&format!("{path}.doors"), doors);
            }
            ActionSpec::Lockdown { zone, doors, .. } => {
                if let Some(z) = zone {
                    self.text(&format!("{path}.zone"), z, true);
                }
                if let Some(d) = doors {
                    self.selector(&format!("{path}.doors"), d);
                }
            }
            ActionSpec::StartRecording { cameras, duration_secs } => {
                self.selector(&format!("{path}.cameras"), cameras);
                if *duration_secs == 0 || *duration_secs > MAX_RECORDING_SECS {
                    self.err(
                        &format!("{path}.duration_secs"),
                        format!("must be between 1 and {MAX_RECORDING_SECS} seconds, got {duration_secs}"),
                    );
                }
            }
            ActionSpec::SaveClip { cameras, pre_secs, post_secs } => {
                self.selector(&format!("{path}.cameras"), cameras);
                self.window(&format!("{path}.pre_secs"), *pre_secs, 0);
                self.window(&format!("{path}.post_secs"), *post_secs, 0);
                if *pre_secs == 0 && *post_secs == 0 {
                    self.err(path, "pre_secs and post_secs are both 0: the clip would be empty");
                }
            }
            ActionSpec::DeviceCommand { device, command, .. } => {
                self.text(&format!("{path}.device"), device, true);
                self.text(&format!("{path}.command"), command, true);
            }
            ActionSpec::Webhook { url } => {
                self.text(&format!("{path}.url"), url, true);
                let lower = url.to_ascii_lowercase();
                if !(lower.starts_with("https://") || lower.starts_with("http://")) || url.len() < 9 {
                    self.err(&format!("{path}.url"), "must be an http:// or https:// URL");
                }
            }
            ActionSpec::Log { message, .. } => self.message(&format!("{path}.message"), message),
        }
    }
}

fn compile_rule(spec: &RuleSpec, prefix: &str, problems: &mut Vec<Problem>) -> Option<CompiledRule> {
    let before = problems.len();
    let rule_id = (!spec.id.is_empty()).then(|| spec.id.clone());
    let mut c = Checker { rule_id, prefix, problems, condition_nodes: 0 };
    if spec.id.is_empty() {
        c.err("id", "must not be empty");
    } else if spec.id.len() > MAX_ID_LEN
        || !spec.id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        c.err("id", format!("must be 1 to {MAX_ID_LEN} characters from [A-Za-z0-9_.-]"));
    }
    c.text("name", &spec.name, true);
    c.text("description", &spec.description, false);
    let trigger = c.trigger("trigger", &spec.trigger, false);
    let conditions = c.conditions("conditions", &spec.conditions, 1);
    if spec.actions.is_empty() {
        c.err("actions", "a rule needs at least one action");
    }
    if spec.actions.len() > MAX_ACTIONS {
        c.err("actions", format!("{} actions, at most {MAX_ACTIONS} allowed", spec.actions.len()));
    }
    for (i, a) in spec.actions.iter().enumerate() {
        c.action(&format!("actions[{i}]"), a);
    }
    c.window("cooldown_secs", spec.cooldown_secs, 0);
    c.window("debounce_secs", spec.debounce_secs, 0);
    if spec.debounce_secs > 0 && !matches!(spec.trigger, TriggerSpec::Event(_)) {
        c.err("debounce_secs", "only event triggers debounce (condition triggers use for_secs)");
    }
    if problems.len() != before {
        return None;
    }
    Some(CompiledRule { spec: spec.clone(), trigger: trigger?, conditions })
}

/// The `{name}` placeholders in a message (names made of `[a-z_]`).
pub(crate) fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    s.split('{').skip(1).filter_map(|rest| {
        let (name, _) = rest.split_once('}')?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(name)
    })
}
