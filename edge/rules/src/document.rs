//! The rule document: what an operator writes (TOML or JSON) and what the cloud's `/api/rules`
//! accepts per rule ([`RuleSpec`]).
//!
//! Every struct here rejects unknown fields, so a typo (`conditons`) is an error instead of a rule
//! that silently has no conditions. Values are only checked for shape here; their meaning (event
//! kinds, cron expressions, times, limits) is checked by [`RuleSpec::validate`] and
//! [`RuleSet::compile`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use vigil_proto::Severity;

/// The only document schema this crate reads.
pub const RULES_SCHEMA: u32 = 1;

/// A versioned set of rules for one site: the unit the edge loads and the cloud pushes.
///
/// ```toml
/// schema = 1
/// revision = 3
/// timezone = "Europe/Paris"
///
/// [[rules]]
/// id = "after-hours"
/// name = "After Hours Alert"
/// cooldown_secs = 300
/// trigger = { type = "event", event_kind = "detection.person" }
/// conditions = [
///   { type = "time_between", start = "18:00", end = "06:00" },
///   { type = "zone", is = "restricted" },
/// ]
/// actions = [
///   { type = "notify", target = "security", message = "Person in {zone} after hours" },
///   { type = "lock_doors", doors = "all" },
///   { type = "start_recording", cameras = "zone", duration_secs = 120 },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Document schema; must be [`RULES_SCHEMA`].
    pub schema: u32,
    /// Monotonic revision chosen by whoever edits the document (the cloud bumps it on every push).
    #[serde(default)]
    pub revision: u64,
    /// IANA time zone (`Europe/Paris`) in which schedules, `time_between` and `weekdays` are read.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The rules, evaluated in this order (outcomes come out in this order too).
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_true() -> bool {
    true
}

/// One automation rule: when `trigger` happens and all `conditions` hold, run `actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable identifier (`[A-Za-z0-9_.-]`, at most 64 characters), unique in a document. Cooldown
    /// state survives a configuration push for every id that is still present.
    pub id: String,
    /// Human-readable name, shown in notifications and history.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A disabled rule is still evaluated; when it would fire it reports
    /// [`SuppressReason::Disabled`](crate::SuppressReason::Disabled) instead.
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub trigger: TriggerSpec,
    /// All must hold when the trigger happens (use `any` / `not` for other logic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSpec>,
    /// What to do, in order. At least one.
    pub actions: Vec<ActionSpec>,
    /// Event triggers only: the matching events must persist this long before the rule fires (see
    /// the crate documentation, "Debounce"). 0 = fire on the first matching event.
    #[serde(default)]
    pub debounce_secs: u64,
    /// After a firing, further firings within this many seconds are reported as suppressed.
    #[serde(default)]
    pub cooldown_secs: u64,
    /// Whether events produced by rules (source kind `rule`) may trigger this rule. Off by default
    /// so rules cannot loop; even when on, a rule never reacts to its own events.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_rule_events: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What makes a rule consider firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSpec {
    /// Every event of `event_kind` (optionally from one source / in one zone, optionally passing
    /// `filter`) is a trigger.
    Event(EventTriggerSpec),
    /// A 5-field cron expression (`min hour dom mon dow`) read on the document's local wall clock.
    Schedule {
        /// `*/15 8-18 * * mon-fri`; also `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
        cron: String,
    },
    /// State-based: the latest reading of `metric` from a source compares true against `value`
    /// (and has stayed true for `for_secs`). Fires on the false→true edge, per source; re-arms when a
    /// reading compares false.
    Condition(ConditionTriggerSpec),
    /// Correlation of sub-triggers (`event` or `condition` only).
    Composite {
        /// `all`: each sub-trigger must have happened within `within_secs` of the last one; `any`:
        /// any of them.
        mode: CompositeMode,
        /// Correlation window in seconds (at least 1).
        within_secs: u64,
        triggers: Vec<TriggerSpec>,
    },
}

/// The event trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTriggerSpec {
    /// Dotted event kind (`detection.person`, `sensor.reading`, ...).
    pub event_kind: String,
    /// Only events from this camera / device / rule id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only events in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Extra conditions on the event itself; handy inside composites, where rule-level conditions
    /// only see the last event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<ConditionSpec>,
}

/// The state-based trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionTriggerSpec {
    /// Metric name (see [`ConditionSpec::Value`]).
    pub metric: String,
    pub op: CompareOp,
    pub value: f64,
    /// Only readings from this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only readings in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The comparison must stay true this long (checked on events and ticks). 0 = immediately.
    #[serde(default)]
    pub for_secs: u64,
}

/// How a composite combines its sub-triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompositeMode {
    All,
    Any,
}

/// Numeric comparison operators, written as symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl CompareOp {
    /// `lhs op rhs`; false whenever either side is NaN (except `!=`, also false).
    pub fn compare(self, lhs: f64, rhs: f64) -> bool {
        if lhs.is_nan() || rhs.is_nan() {
            return false;
        }
        match self {
            CompareOp::Gt => lhs > rhs,
            CompareOp::Ge => lhs >= rhs,
            CompareOp::Lt => lhs < rhs,
            CompareOp::Le => lhs <= rhs,
            CompareOp::Eq => lhs == rhs,
            CompareOp::Ne => lhs != rhs,
        }
    }
}

/// A condition over the triggering event and the local time. Conditions that look at an event are
/// false when there is none (schedule triggers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionSpec {
    /// Local time of the event (or of the tick) in `[start, end)`, `HH:MM`; wraps midnight when
    /// `start > end` (`18:00`–`06:00`).
    TimeBetween { start: String, end: String },
    /// Local day of the week, `mon`..`sun`.
    Weekdays { days: Vec<String> },
    /// The event's zone is `is`, or one of `in` (give exactly one).
    Zone {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is: Option<String>,
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        one_of: Option<Vec<String>>,
    },
    /// The event's source id is `is`, or one of `in` (give exactly one).
    Source {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is: Option<String>,
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        one_of: Option<Vec<String>>,
    },
    /// The event's kind is `is`, or one of `in` (give exactly one).
    EventKind {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is: Option<String>,
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        one_of: Option<Vec<String>>,
    },
    /// A numeric value of the event compared to `value`. Metrics: a sensor reading's `metric`
    /// (`temperature`, `humidity`, ...; the unit is not converted), and `online` (1 or 0) for
    /// device status events.
    Value { metric: String, op: CompareOp, value: f64 },
    /// A detection (or tracked object) event has at least `min_count` objects (default 1) with
    /// `label` (any label when absent) and score at least `min_score` (default 0).
    Detection {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_score: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_count: Option<u32>,
    },
    /// An alert event with severity at least `at_least`.
    Severity { at_least: Severity },
    /// Negation.
    Not { condition: Box<ConditionSpec> },
    /// At least one holds (false when empty).
    Any { conditions: Vec<ConditionSpec> },
    /// All hold (true when empty).
    All { conditions: Vec<ConditionSpec> },
}

/// Cameras or doors an action applies to: `"all"`, `"zone"` (those in the triggering event's zone,
/// resolved by the I/O layer from [`Outcome::Fired`](crate::Outcome::Fired)'s `zone`), or a list of
/// ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SelectorRepr", into = "SelectorRepr")]
pub enum Selector {
    All,
    Zone,
    Ids(Vec<String>),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SelectorRepr {
    Word(String),
    List(Vec<String>),
}

impl TryFrom<SelectorRepr> for Selector {
    type Error = String;
    fn try_from(r: SelectorRepr) -> Result<Self, String> {
        match r {
            SelectorRepr::Word(w) if w == "all" => Ok(Selector::All),
            SelectorRepr::Word(w) if w == "zone" => Ok(Selector::Zone),
            SelectorRepr::Word(w) => Err(format!("expected \"all\", \"zone\" or a list of ids, got {w:?}")),
            SelectorRepr::List(ids) => Ok(Selector::Ids(ids)),
        }
    }
}

impl From<Selector> for SelectorRepr {
    fn from(s: Selector) -> Self {
        match s {
            Selector::All => SelectorRepr::Word("all".to_owned()),
            Selector::Zone => SelectorRepr::Word("zone".to_owned()),
            Selector::Ids(ids) => SelectorRepr::List(ids),
        }
    }
}

/// Log level of a [`ActionSpec::Log`] action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

fn default_warning() -> Severity {
    Severity::Warning
}

/// What a rule does. The engine only renders messages (placeholders `{rule}`, `{rule_id}`,
/// `{zone}`, `{source}`, `{kind}`, `{value}`, `{unit}`, `{time}`) and hands the actions to the I/O
/// layer as data; it executes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// A notification to a person or group (`security`, `facilities`, ...).
    Notify {
        target: String,
        message: String,
    },
    /// Raise an alert (an `alert.triggered` event from this rule), optionally also routed to `target`.
    Alert {
        #[serde(default = "default_warning")]
        severity: Severity,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    LockDoors {
        doors: Selector,
    },
    UnlockDoors {
        doors: Selector,
    },
    /// Start (`on = true`) or end a lockdown, site-wide or limited to a zone or doors.
    Lockdown {
        on: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doors: Option<Selector>,
    },
    StartRecording {
        cameras: Selector,
        duration_secs: u64,
    },
    /// Keep a clip from `pre_secs` before to `post_secs` after the trigger.
    SaveClip {
        cameras: Selector,
        pre_secs: u64,
        post_secs: u64,
    },
    /// A command for a device (`ac-1`, `on`, `{ "setpoint": 22 }`).
    DeviceCommand {
        device: String,
        command: String,
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        params: serde_json::Map<String, serde_json::Value>,
    },
    /// POST the firing (as JSON) to `url`.
    Webhook {
        url: String,
    },
    Log {
        message: String,
        #[serde(default)]
        level: LogLevel,
    },
}

impl ActionSpec {
    /// The `type` tag, e.g. `lock_doors`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ActionSpec::Notify { .. } => "notify",
            ActionSpec::Alert { .. } => "alert",
            ActionSpec::LockDoors { .. } => "lock_doors",
            ActionSpec::UnlockDoors { .. } => "unlock_doors",
            ActionSpec::Lockdown { .. } => "lockdown",
            ActionSpec::StartRecording { .. } => "start_recording",
            ActionSpec::SaveClip { .. } => "save_clip",
            ActionSpec::DeviceCommand { .. } => "device_command",
            ActionSpec::Webhook { .. } => "webhook",
            ActionSpec::Log { .. } => "log",
        }
    }
}

/// Why a rule document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid JSON rules: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid TOML rules: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("{0}: rule files must end in .toml or .json")]
    UnknownFormat(String),
}

impl RuleSet {
    /// Parses a JSON document.
    pub fn from_json_str(s: &str) -> Result<RuleSet, LoadError> {
        Ok(serde_json::from_str(s)?)
    }

    /// Parses a TOML document.
    pub fn from_toml_str(s: &str) -> Result<RuleSet, LoadError> {
        Ok(toml::from_str(s)?)
    }

    /// Reads a `.toml` or `.json` file (the only I/O in this crate). The result is not yet
    /// validated: call [`RuleSet::compile`].
    pub fn load(path: impl AsRef<Path>) -> Result<RuleSet, LoadError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let text = match ext.as_deref() {
            Some("toml" | "json") => {
                std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: shown.clone(), source })?
            }
            _ => return Err(LoadError::UnknownFormat(shown)),
        };
        if ext.as_deref() == Some("json") { Self::from_json_str(&text) } else { Self::from_toml_str(&text) }
    }
}
