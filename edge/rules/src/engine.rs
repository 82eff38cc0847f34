//! The engine: feeds events and ticks through compiled rules and returns what happened.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vigil_proto::{Event, SourceKind};

use crate::compile::{CompiledRule, CompiledRules, CondTrigger, EventTrigger, PLACEHOLDERS, Trigger};
use crate::condition::{EvalCtx, metric_value};
use crate::document::{ActionSpec, CompositeMode};

/// An action with its messages rendered, ready for the I/O layer (same shape as the document's
/// [`ActionSpec`]).
pub type RenderedAction = ActionSpec;

/// Sources tracked per condition trigger; readings from further sources are ignored.
pub const MAX_TRACKED_SOURCES: usize = 1024;

/// How far back `on_tick` looks for schedule minutes it has not seen (ticks should come every few
/// seconds; after a longer gap only the last hour's minutes are caught up).
pub const SCHEDULE_CATCH_UP_MINUTES: i64 = 60;

/// What a rule did with an input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The rule fired: execute `actions`.
    Fired {
        rule_id: String,
        rule_name: String,
        at: DateTime<Utc>,
        /// The event that completed the trigger (none for schedules).
        trigger_event: Option<Uuid>,
        /// Zone of the trigger event: resolves `"zone"` camera / door selectors.
        zone: Option<String>,
        /// Source id of the trigger event.
        source: Option<String>,
        actions: Vec<RenderedAction>,
    },
    /// The rule's trigger and conditions matched but it did not fire.
    Suppressed {
        rule_id: String,
        rule_name: String,
        at: DateTime<Utc>,
        trigger_event: Option<Uuid>,
        reason: SuppressReason,
    },
}

impl Outcome {
    /// The rule this outcome is about.
    pub fn rule_id(&self) -> &str {
        match self {
            Outcome::Fired { rule_id, .. } | Outcome::Suppressed { rule_id, .. } => rule_id,
        }
    }

    /// Whether the rule fired.
    pub fn is_fired(&self) -> bool {
        matches!(self, Outcome::Fired { .. })
    }
}

/// Why a matching rule did not fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SuppressReason {
    /// The rule fired less than `cooldown_secs` ago; it may fire again from `until`.
    Cooldown { until: DateTime<Utc> },
    /// Matching events have persisted for `held_secs` of the `debounce_secs` needed.
    Debounce { held_secs: u64, debounce_secs: u64 },
    /// The rule is disabled.
    Disabled,
}

/// Runs compiled rules. Sans IO: the caller passes every event, a tick every few seconds, and
/// the current time; the engine returns [`Outcome`]s in rule order.
#[derive(Debug)]
pub struct Engine {
    rules: CompiledRules,
    states: Vec<RuleState>,
    last_tick: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct RuleState {
    last_fired: Option<DateTime<Utc>>,
    streak: Option<Streak>,
    trigger: TriggerState,
}

/// A run of matching events for debounce: no gap longer than `debounce_secs` between them.
#[derive(Debug, Clone, Copy)]
struct Streak {
    start: DateTime<Utc>,
    last: DateTime<Utc>,
}

#[derive(Debug, Clone)]
enum TriggerState {
    Event,
    Schedule { fired: BTreeSet<NaiveDateTime> },
    Condition { sources: BTreeMap<String, SourceState> },
    Composite { subs: Vec<TriggerState>, seen: Vec<Option<(DateTime<Utc>, Occurrence)>> },
}

#[derive(Debug, Clone)]
struct SourceState {
    true_since: Option<DateTime<Utc>>,
    fired: bool,
    last: Event,
}

/// One happening of a trigger.
#[derive(Debug, Clone)]
struct Occurrence {
    event: Option<Event>,
    /// The instant whose local time `time_between` / `weekdays` look at.
    local_at: DateTime<Utc>,
}

impl TriggerState {
    fn new(t: &Trigger) -> TriggerState {
        match t {
            Trigger::Event(_) => TriggerState::Event,
            Trigger::Schedule(_) => TriggerState::Schedule { fired: BTreeSet::new() },
            Trigger::Condition(_) => TriggerState::Condition { sources: BTreeMap::new() },
            Trigger::Composite { subs, .. } => TriggerState::Composite {
                subs: subs.iter().map(TriggerState::new).collect(),
                seen: vec![None; subs.len()],
            },
        }
    }
}

fn elapsed_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    to.signed_duration_since(from).num_milliseconds()
}

fn held(from: DateTime<Utc>, to: DateTime<Utc>, secs: u64) -> bool {
    elapsed_ms(from, to) >= i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

fn plus_secs(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn local(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

fn event_time(event: &Event, now: DateTime<Utc>) -> DateTime<Utc> {
    event.occurred_at.to_chrono().unwrap_or(now)
}

impl Engine {
    /// An engine with fresh state.
    pub fn new(rules: CompiledRules) -> Engine {
        let states = rules.rules.iter().map(RuleState::new).collect();
        Engine { rules, states, last_tick: None }
    }

    /// The rules in use.
    pub fn rules(&self) -> &CompiledRules {
        &self.rules
    }

    /// Swaps in a new document (a configuration push). For every rule id that survives, the
    /// cooldown survives (the last firing time is kept; the new `cooldown_secs` applies to it), and
    /// so does the trigger's state (debounce streak, condition edges, composite correlation,
    /// schedule minutes already fired) when the trigger is unchanged. New rules start fresh.
    pub fn replace(&mut self, rules: CompiledRules) {
        let mut states = Vec::with_capacity(rules.rules.len());
        for rule in &rules.rules {
            let old = self.rules.rules.iter().position(|o| o.spec.id == rule.spec.id);
            let mut st = RuleState::new(rule);
            if let Some(i) = old
                && let Some(prev) = self.states.get(i)
            {
                st.last_fired = prev.last_fired;
                if self.rules.rules[i].trigger == rule.trigger {
                    st.trigger = prev.trigger.clone();
                    if self.rules.rules[i].spec.debounce_secs == rule.spec.debounce_secs {
                        st.streak = prev.streak;
                    }
                }
            }
            states.push(st);
        }
        self.rules = rules;
        self.states = states;
    }

    /// When the rule's cooldown ends, if it is cooling down at `now`.
    pub fn cooldown_until(&self, rule_id: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let i = self.rules.rules.iter().position(|r| r.spec.id == rule_id)?;
        let last = self.states.get(i)?.last_fired?;
        let until = plus_secs(last, self.rules.rules[i].spec.cooldown_secs);
        (now < until).then_some(until)
    }

    /// Feeds one event. Events whose source is a rule are ignored by every rule that has not set
    /// `allow_rule_events`, and always by the rule that produced them.
    pub fn on_event(&mut self, event: &Event, now: DateTime<Utc>) -> Vec<Outcome> {
        let tz = self.rules.tz;
        let mut out = Vec::new();
        for (rule, st) in self.rules.rules.iter().zip(self.states.iter_mut()) {
            if event.source.kind == SourceKind::Rule
                && (!rule.spec.allow_rule_events || event.source.id == rule.spec.id)
            {
                continue;
            }
            let occs = trigger_on_event(&rule.trigger, &mut st.trigger, event, now, tz);
            for occ in occs {
                st.candidate(rule, occ, now, tz, &mut out);
            }
        }
        out
    }

    /// Advances time: runs schedules (each matching local minute once), condition triggers'
    /// `for_secs`, and composite expiry. Call it every few seconds (at least once a minute).
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<Outcome> {
        let tz = self.rules.tz;
        let last_tick = self.last_tick;
        let mut out = Vec::new();
        for (rule, st) in self.rules.rules.iter().zip(self.states.iter_mut()) {
            let occs = trigger_on_tick(&rule.trigger, &mut st.trigger, now, last_tick, tz);
            for occ in occs {
                st.candidate(rule, occ, now, tz, &mut out);
            }
        }
        if last_tick.is_none_or(|t| t < now) {
            self.last_tick = Some(now);
        }
        out
    }
}

impl RuleState {
    fn new(rule: &CompiledRule) -> RuleState {
        RuleState { last_fired: None, streak: None, trigger: TriggerState::new(&rule.trigger) }
    }

    /// A trigger happened: conditions, disabled, debounce, cooldown, then fire.
    fn candidate(&mut self, rule: &CompiledRule, occ: Occurrence, now: DateTime<Utc>, tz: Tz, out: &mut Vec<Outcome>) {
        let spec = &rule.spec;
        let ctx = EvalCtx { event: occ.event.as_ref(), local: local(tz, occ.local_at) };
        if !rule.conditions.iter().all(|c| c.eval(&ctx)) {
            return;
        }
        let trigger_event = occ.event.as_ref().map(|e| e.id);
        let suppressed = |reason| Outcome::Suppressed {
            rule_id: spec.id.clone(),
            rule_name: spec.name.clone(),
            at: now,
            trigger_event,
            reason,
        };
        if !spec.enabled {
            out.push(suppressed(SuppressReason::Disabled));
            return;
        }
        if spec.debounce_secs > 0 {
            let streak = match self.streak {
                Some(s) if now >= s.last && !within(s.last, now, spec.debounce_secs) => {
                    Streak { start: now, last: now }
                }
                Some(s) if now >= s.last => Streak { start: s.start, last: now },
                _ => Streak { start: now, last: now },
            };
            if !held(streak.start, now, spec.debounce_secs) {
                self.streak = Some(streak);
                let held_secs = u64::try_from(elapsed_ms(streak.start, now) / 1000).unwrap_or(0);
                out.push(suppressed(SuppressReason::Debounce { held_secs, debounce_secs: spec.debounce_secs }));
                return;
            }
            self.streak = None;
        }
        if let Some(last) = self.last_fired {
            let until = plus_secs(last, spec.cooldown_secs);
            if now < until {
                out.push(suppressed(SuppressReason::Cooldown { until }));
                return;
            }
        }
        self.last_fired = Some(now);
        let actions = spec.actions.iter().map(|a| render_action(a, &spec.name, &spec.id, &ctx)).collect();
        out.push(Outcome::Fired {
            rule_id: spec.id.clone(),
            rule_name: spec.name.clone(),
            at: now,
            trigger_event,
            zone: occ.event.as_ref().and_then(|e| e.zone.clone()),
            source: occ.event.as_ref().map(|e| e.source.id.clone()),
            actions,
        });
    }
}

fn event_matches(t: &EventTrigger, event: &Event, now: DateTime<Utc>, tz: Tz) -> bool {
    event.kind == t.kind
        && t.source.as_ref().is_none_or(|s| *s == event.source.id)
        && t.zone.as_ref().is_none_or(|z| event.zone.as_ref() == Some(z))
        && {
            let ctx = EvalCtx { event: Some(event), local: local(tz, event_time(event, now)) };
            t.filter.iter().all(|c| c.eval(&ctx))
        }
}

fn trigger_on_event(t: &Trigger, st: &mut TriggerState, event: &Event, now: DateTime<Utc>, tz: Tz) -> Vec<Occurrence> {
    match (t, st) {
        (Trigger::Event(et), _) => {
            if event_matches(et, event, now, tz) {
                vec![Occurrence { event: Some(event.clone()), local_at: event_time(event, now) }]
            } else {
                Vec::new()
            }
        }
        (Trigger::Condition(ct), TriggerState::Condition { sources }) => condition_on_event(ct, sources, event, now),
        (Trigger::Composite { mode, within_secs, subs }, TriggerState::Composite { subs: sub_states, seen }) => {
            let mut happened = None;
            for (i, (sub, sub_st)) in subs.iter().zip(sub_states.iter_mut()).enumerate() {
                if let Some(occ) = trigger_on_event(sub, sub_st, event, now, tz).pop() {
                    if let Some(slot) = seen.get_mut(i) {
                        *slot = Some((now, occ.clone()));
                    }
                    happened = Some(occ);
                }
            }
            composite_check(*mode, *within_secs, seen, happened, now)
        }
        _ => Vec::new(),
    }
}

fn condition_on_event(
    ct: &CondTrigger,
    sources: &mut BTreeMap<String, SourceState>,
    event: &Event,
    now: DateTime<Utc>,
) -> Vec<Occurrence> {
    let Some((value, _)) = metric_value(event, &ct.metric) else { return Vec::new() };
    if !value.is_finite()
        || ct.source.as_ref().is_some_and(|s| *s != event.source.id)
        || ct.zone.as_ref().is_some_and(|z| event.zone.as_ref() != Some(z))
    {
        return Vec::new();
    }
    if !sources.contains_key(&event.source.id) && sources.len() >= MAX_TRACKED_SOURCES {
        return Vec::new();
    }
    let s = sources.entry(event.source.id.clone()).or_insert_with(|| SourceState {
        true_since: None,
        fired: false,
        last: event.clone(),
    });
    s.last = event.clone();
    if !ct.op.compare(value, ct.value) {
        s.true_since = None;
        s.fired = false;
        return Vec::new();
    }
    let since = *s.true_since.get_or_insert(now);
    if !s.fired && held(since, now, ct.for_secs) {
        s.fired = true;
        return vec![Occurrence { event: Some(event.clone()), local_at: event_time(event, now) }];
    }
    Vec::new()
}

fn composite_check(
    mode: CompositeMode,
    within_secs: u64,
    seen: &mut [Option<(DateTime<Utc>, Occurrence)>],
    happened: Option<Occurrence>,
    now: DateTime<Utc>,
) -> Vec<Occurrence> {
    for slot in seen.iter_mut() {
        // Older than the window, or from the future after a clock jump: expired.
        if slot.as_ref().is_some_and(|(at, _)| *at > now || !within(*at, now, within_secs)) {
            *slot = None;
        }
    }
    let Some(occ) = happened else { return Vec::new() };
    match mode {
        CompositeMode::Any => {
            seen.iter_mut().for_each(|s| *s = None);
            vec![occ]
        }
        CompositeMode::All => {
            if seen.iter().all(Option::is_some) {
                seen.iter_mut().for_each(|s| *s = None);
                vec![occ]
            } else {
                Vec::new()
            }
        }
    }
}

/// `at` is no more than `secs` before `now`.
fn within(at: DateTime<Utc>, now: DateTime<Utc>, secs: u64) -> bool {
    elapsed_ms(at, now) <= i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

fn trigger_on_tick(
    t: &Trigger,
    st: &mut TriggerState,
    now: DateTime<Utc>,
    last_tick: Option<DateTime<Utc>>,
    tz: Tz,
) -> Vec<Occurrence> {
    match (t, st) {
        (Trigger::Schedule(cron), TriggerState::Schedule { fired }) => {
            let now_min = now.timestamp().div_euclid(60);
            let start = match last_tick {
                Some(lt) if lt <= now => lt.timestamp().div_euclid(60) + 1,
                _ => now_min,
            }
            .max(now_min - (SCHEDULE_CATCH_UP_MINUTES - 1));
            let mut occs = Vec::new();
            for m in start..=now_min {
                let Some(u) = DateTime::<Utc>::from_timestamp(m.saturating_mul(60), 0) else { continue };
                let l = local(tz, u);
                let Some(l) = l.with_second(0) else { continue };
                if cron.matches(l) && fired.insert(l) {
                    occs.push(Occurrence { event: None, local_at: now });
                }
            }
            // Remember fired minutes for 3 hours of local time (covers a repeated DST hour).
            let horizon = local(tz, now).checked_sub_signed(TimeDelta::hours(3));
            if let Some(h) = horizon {
                fired.retain(|m| *m >= h);
            }
            occs
        }
        (Trigger::Condition(ct), TriggerState::Condition { sources }) => {
            let mut occs = Vec::new();
            for s in sources.values_mut() {
                if let Some(since) = s.true_since
                    && !s.fired
                    && held(since, now, ct.for_secs)
                {
                    s.fired = true;
                    occs.push(Occurrence { event: Some(s.last.clone()), local_at: now });
                }
            }
            occs
        }
        (Trigger::Composite { mode, within_secs, subs }, TriggerState::Composite { subs: sub_states, seen }) => {
            let mut out = Vec::new();
            let mut happened = None;
            for (i, (sub, sub_st)) in subs.iter().zip(sub_states.iter_mut()).enumerate() {
                if let Some(occ) = trigger_on_tick(sub, sub_st, now, last_tick, tz).pop() {
                    if let Some(slot) = seen.get_mut(i) {
                        *slot = Some((now, occ.clone()));
                    }
                    happened = Some(occ);
                }
            }
            out.extend(composite_check(*mode, *within_secs, seen, happened, now));
            out
        }
        _ => Vec::new(),
    }
}

/// Renders `{placeholder}`s in the action's messages.
fn render_action(a: &ActionSpec, rule_name: &str, rule_id: &str, ctx: &EvalCtx<'_>) -> RenderedAction {
    let r = |m: &String| render(m, rule_name, rule_id, ctx);
    match a {
        ActionSpec::Notify { target, message } => ActionSpec::Notify { target: target.clone(), message: r(message) },
        ActionSpec::Alert { severity, message, target } => {
            ActionSpec::Alert { severity: *severity, message: r(message), target: target.clone() }
        }
        ActionSpec::Log { message, level } => ActionSpec::Log { message: r(message), level: *level },
        other => other.clone(),
    }
}

pub(crate) fn render(template: &str, rule_name: &str, rule_id: &str, ctx: &EvalCtx<'_>) -> String {
    const NONE: &str = "-";
    let ev = ctx.event;
    let value = ev.and_then(|e| match &e.payload {
        vigil_proto::Payload::SensorReading(r) => Some((r.value, Some(r.unit.as_str()))),
        vigil_proto::Payload::DeviceStatus(_) => metric_value(e, "online"),
        _ => None,
    });
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return None;
            }
            let text = match name {
                "rule" => rule_name.to_owned(),
                "rule_id" => rule_id.to_owned(),
                "zone" => ev.and_then(|e| e.zone.clone()).unwrap_or_else(|| NONE.to_owned()),
                "source" => ev.map_or_else(|| NONE.to_owned(), |e| e.source.id.clone()),
                "kind" => ev.map_or_else(|| "schedule".to_owned(), |e| e.kind.as_str().to_owned()),
                "value" => value.map_or_else(|| NONE.to_owned(), |(v, _)| v.to_string()),
                "unit" => value.and_then(|(_, u)| u).unwrap_or(NONE).to_owned(),
                _ => ctx.local.format("%H:%M").to_string(),
            };
            Some((text, close))
        });
        match replaced {
            Some((text, close)) => {
                out.push_str(&text);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
