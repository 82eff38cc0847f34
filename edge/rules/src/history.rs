//! Execution history records: what the daemon persists for every outcome and the cloud serves at
//! `GET /api/rules/{id}/history`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::document::{ActionSpec, Selector};
use crate::engine::{Outcome, SuppressReason};

/// One rule execution (a firing or a suppression).
///
/// ```json
/// { "rule_id": "after-hours", "rule_name": "After Hours Alert", "at": "2026-01-05T17:00:00Z",
///   "trigger_event": "0193...", "outcome": { "status": "fired" },
///   "actions": [ { "action": "lock_doors", "summary": "lock doors: all", "result": { "status": "ok" } } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub rule_id: String,
    pub rule_name: String,
    /// Document revision the rule came from, when the daemon knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_event: Option<Uuid>,
    pub outcome: ExecutionOutcome,
    /// One entry per action of a firing (empty for suppressions).
    #[serde(default)]
    pub actions: Vec<ActionRecord>,
}

/// Fired or suppressed (with why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecutionOutcome {
    Fired,
    Suppressed {
        #[serde(flatten)]
        reason: SuppressReason,
    },
}

/// One action of a firing and, once the I/O layer ran it, its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The action's `type` (`notify`, `lock_doors`, ...).
    pub action: String,
    /// One line for people, e.g. `notify security: Person in restricted after hours`.
    pub summary: String,
    /// `None` until the I/O layer records a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ActionResult>,
}

/// What happened when the I/O layer executed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ActionResult {
    Ok,
    Failed { error: String },
    Skipped { reason: String },
}

impl Execution {
    /// The record for an outcome, with no action results yet.
    pub fn from_outcome(outcome: &Outcome) -> Execution {
        match outcome {
            Outcome::Fired { rule_id, rule_name, at, trigger_event, actions, .. } => Execution {
                rule_id: rule_id.clone(),
                rule_name: rule_name.clone(),
                revision: None,
                at: *at,
                trigger_event: *trigger_event,
                outcome: ExecutionOutcome::Fired,
                actions: actions
                    .iter()
                    .map(|a| ActionRecord { action: a.type_name().to_owned(), summary: a.summary(), result: None })
                    .collect(),
            },
            Outcome::Suppressed { rule_id, rule_name, at, trigger_event, reason } => Execution {
                rule_id: rule_id.clone(),
                rule_name: rule_name.clone(),
                revision: None,
                at: *at,
                trigger_event: *trigger_event,
                outcome: ExecutionOutcome::Suppressed { reason: reason.clone() },
                actions: Vec::new(),
            },
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::All => f.write_str("all"),
            Selector::Zone => f.write_str("zone"),
            Selector::Ids(ids) => f.write_str(&ids.join(", ")),
        }
    }
}

impl ActionSpec {
    /// One line describing the action, for history and logs.
    pub fn summary(&self) -> String {
        match self {
            ActionSpec::Notify { target, message } => format!("notify {target}: {message}"),
            ActionSpec::Alert { severity, message, target } => {
                let to = target.as_deref().map(|t| format!(" to {t}")).unwrap_or_default();
                format!("{} alert{to}: {message}", format!("{severity:?}").to_lowercase())
            }
            ActionSpec::LockDoors { doors } => format!("lock doors: {doors}"),
            ActionSpec::UnlockDoors { doors } => format!("unlock doors: {doors}"),
            ActionSpec::Lockdown { on, zone, doors } => {
                let mut s = if *on { "lockdown on".to_owned() } else { "lockdown off".to_owned() };
                if let Some(z) = zone {
                    s.push_str(&format!(" in zone {z}"));
                }
                if let Some(d) = doors {
                    s.push_str(&format!(" doors {d}"));
                }
                s
            }
            ActionSpec::StartRecording { cameras, duration_secs } => {
                format!("record {duration_secs}s on cameras: {cameras}")
            }
            ActionSpec::SaveClip { cameras, pre_secs, post_secs } => {
                format!("save clip -{pre_secs}s/+{post_secs}s on cameras: {cameras}")
            }
            ActionSpec::DeviceCommand { device, command, params } => {
                if params.is_empty() {
                    format!("device {device}: {command}")
                } else {
                    format!("device {device}: {command} {}", serde_json::Value::Object(params.clone()))
                }
            }
            ActionSpec::Webhook { url } => format!("webhook {url}"),
            ActionSpec::Log { message, level } => format!("log {}: {message}", format!("{level:?}").to_lowercase()),
        }
    }
}
