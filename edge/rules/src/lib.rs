//! Sans-IO automation rules for the edge: event, schedule, condition and composite triggers with
//! conditions, debounce and cooldown, producing actions as data.
//!
//! Architecture invariant: no threads, no clock, no IO (except [`RuleSet::load`]). The daemon feeds
//! every [`vigil_proto::Event`] to [`Engine::on_event`] and calls [`Engine::on_tick`] every few
//! seconds, passing `now` each time; it executes the [`Outcome::Fired`] actions and records every
//! outcome as an [`Execution`].
//!
//! # The rule document
//!
//! A [`RuleSet`] (TOML or JSON, same shape) holds `schema` (1), `revision`, `timezone` (IANA,
//! default `UTC`) and `rules`. Each rule ([`RuleSpec`], also the body the cloud's `/api/rules`
//! accepts) has `id`, `name`, `description`, `enabled` (default true), one `trigger`
//! ([`TriggerSpec`]), `conditions` ([`ConditionSpec`], all must hold), `actions` ([`ActionSpec`]),
//! `debounce_secs`, `cooldown_secs` and `allow_rule_events`. `rules/seed.toml` in this crate is the
//! product's two seed rules; in JSON:
//!
//! ```json
//! { "schema": 1, "revision": 3, "timezone": "Europe/Paris",
//!   "rules": [ {
//!     "id": "after-hours", "name": "After Hours Alert",
//!     "trigger": {"type": "event", "event_kind": "detection.person"},
//!     "conditions": [ {"type": "time_between", "start": "18:00", "end": "06:00"},
//!                     {"type": "zone", "is": "restricted"} ],
//!     "actions": [ {"type": "notify", "target": "security", "message": "Person in {zone} after hours"},
//!                  {"type": "lock_doors", "doors": "all"},
//!                  {"type": "start_recording", "cameras": "zone", "duration_secs": 120} ],
//!     "cooldown_secs": 300 },
//!   { "id": "temperature", "name": "Temperature Alert",
//!     "trigger": {"type": "event", "event_kind": "sensor.reading"},
//!     "conditions": [ {"type": "value", "metric": "temperature", "op": ">", "value": 30} ],
//!     "actions": [ {"type": "alert", "target": "facilities", "severity": "warning",
//!                   "message": "{source} reads {value}{unit}"},
//!                  {"type": "device_command", "device": "ac", "command": "on"},
//!                  {"type": "log", "message": "temperature {value} in {zone}"} ] } ] }
//! ```
//!
//! Other triggers:
//!
//! ```json
//! {"type": "schedule", "cron": "0 8 * * mon-fri"}
//! {"type": "condition", "metric": "temperature", "op": ">", "value": 30, "zone": "server-room", "for_secs": 120}
//! {"type": "composite", "mode": "all", "within_secs": 60, "triggers": [
//!     {"type": "event", "event_kind": "alert.triggered", "filter": [{"type": "severity", "at_least": "critical"}]},
//!     {"type": "event", "event_kind": "motion.detected"} ]}
//! ```
//!
//! Documents are checked with [`RuleSet::compile`] (every problem at once, with rule id and field
//! path) and one rule with [`RuleSpec::validate`].
//!
//! # Semantics
//!
//! * **Time**: `time_between` and `weekdays` read the local wall clock of the document's time zone
//!   at the event's `occurred_at` (at the tick for schedules and `for_secs` firings). Windows are
//!   `[start, end)` and wrap midnight when `start > end`: `18:00`–`06:00` holds at 18:00 and 05:59,
//!   not at 17:59 or 06:00; `weekdays` is the local date of that same instant (01:00 on Saturday
//!   is Saturday even inside a window that started on Friday). Debounce, cooldown, `for_secs` and composite windows use the `now`
//!   passed to the engine.
//! * **Schedules** match cron expressions against local wall-clock minutes. Each local minute
//!   fires at most once: in the autumn DST change the repeated hour does not fire again, and in
//!   the spring change minutes that do not exist locally (02:00–02:59 in Europe/Paris) never fire.
//!   Minutes between two ticks are caught up (at most [`SCHEDULE_CATCH_UP_MINUTES`]).
//! * **Condition triggers** keep the latest reading per source (matching the metric and the
//!   optional source / zone filters). A source fires once when its comparison turns true and has
//!   stayed true for `for_secs` (on the reading or on a later tick), and re-arms on a false
//!   reading. The first reading after start counts as an edge.
//! * **Composite triggers**: each sub-trigger's latest happening is remembered for `within_secs`.
//!   `all` fires when every sub-trigger has happened within the window, then forgets them all;
//!   `any` fires on each happening. The rule's conditions then see the event that completed it.
//! * **Debounce** (event triggers): matching events (trigger and conditions) form a streak while no
//!   two consecutive ones are more than `debounce_secs` apart. The rule fires on the first event
//!   at least `debounce_secs` after the streak's first event; earlier ones are reported as
//!   [`SuppressReason::Debounce`]. After it fires (or is cooled down) a new streak starts. A
//!   single isolated event never fires a debounced rule.
//! * **Cooldown**: after a firing, matches within `cooldown_secs` are reported as
//!   [`SuppressReason::Cooldown`] (they do not extend it). [`Engine::replace`] keeps cooldowns for
//!   rule ids that survive.
//! * **Disabled** rules report [`SuppressReason::Disabled`] where they would have fired.
//! * **No loops**: events whose source kind is `rule` trigger nothing unless the rule sets
//!   `allow_rule_events`, and never the rule that produced them.
//! * Conditions about the event (zone, source, value, ...) are false when there is no event
//!   (schedules).
//! * **Messages** render `{rule}`, `{rule_id}`, `{zone}`, `{source}`, `{kind}` (`schedule` for
//!   schedules), `{value}` and `{unit}` (sensor readings; `online` 1/0 for device status) and
//!   `{time}` (local `HH:MM`); a missing value renders as `-`. Validation rejects other
//!   lower-case `{names}`; any other text is kept verbatim.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod compile;
mod condition;
pub mod cron;
pub use cron::CronSchedule;
mod document;
mod engine;
mod history;
#[cfg(test)]
mod tests;

pub use compile::{CompiledRules, PLACEHOLDERS, Problem, limits};
pub use document::{
    ActionSpec, CompareOp, CompositeMode, ConditionSpec, ConditionTriggerSpec, EventTriggerSpec, LoadError, LogLevel,
    RULES_SCHEMA, RuleSet, RuleSpec, Selector, TriggerSpec,
};
pub use engine::{Engine, MAX_TRACKED_SOURCES, Outcome, RenderedAction, SCHEDULE_CATCH_UP_MINUTES, SuppressReason};
pub use history::{ActionRecord, ActionResult, Execution, ExecutionOutcome};
