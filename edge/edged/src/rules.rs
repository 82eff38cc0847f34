//! The `rules` stage: every event the edge creates passes through the sans-IO [`edge_rules::Engine`];
//! firings become actions on doors and devices (through the devices stage's control channel),
//! alerts in the spool, recordings and log lines. Every outcome, with each action's result, is
//! kept in the execution history (a JSON-lines file next to the spool, and the last few hundred
//! in memory for `GET /rules/history`).
//!
//! ```text
//! detect workers ─┐                      ┌─▶ Control (lockdown, unlock, device command) ─▶ devices stage
//! devices stage ──┴─tap─▶ rules (engine) ─┼─▶ alert.triggered ─▶ spool ─▶ cloud (notifications)
//!                      ▲ 1 s tick          ├─▶ clip requests ─▶ recorder
//!                                          └─▶ history (file + memory)
//! ```
//!
//! Everything here works with the cloud absent. The tap is bounded: when the stage falls 4096
//! events behind, further events skip the rules (counted, logged) rather than slow the cameras or
//! the doors.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::detect::event_id;
use chrono::{DateTime, Utc};
use edge_rules::{ActionResult, ActionSpec, Engine, Execution, LogLevel, Outcome, Selector};
use edge_spool::Spool;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::{Alert, Event, EventKind, Payload, Severity, Source, SourceKind, Timestamp};

use crate::devices::{Control, ControlReply};

/// Events copied to the rules stage (cheap to clone; a no-op without rules).
#[derive(Debug, Clone, Default)]
pub struct EventTap {
    tx: Option<mpsc::Sender<Event>>,
    skipped: Arc<AtomicU64>,
}

impl EventTap {
    pub fn new(capacity: usize) -> (EventTap, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (EventTap { tx: Some(tx), skipped: Arc::default() }, rx)
    }

    /// Offers copies of `events`; never blocks.
    pub fn offer(&self, events: &[Event]) {
        let Some(tx) = &self.tx else { return };
        for e in events {
            if tx.try_send(e.clone()).is_err() {
                let n = self.skipped.fetch_add(1, Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(skipped = n, "Rules stage is behind; events skip the rules.");
                }
            }
        }
    }

    pub fn skipped(&self) -> u64 {
        self.skipped.load(Relaxed)
    }
}

/// A new rule set for the running stage (a configuration push), answered once it is in place.
pub type RulesReload = (edge_rules::CompiledRules, oneshot::Sender<()>);

/// Saving clips for `start_recording` / `save_clip` actions.
pub trait Recording: Send + Sync {
    /// Keeps `pre` before and `post` after now from `camera`; returns what was scheduled.
    fn save_clip(&self, camera: &str, pre: Duration, post: Duration, reason: &str) -> Result<String, String>;
}

/// Counters and recent history for the status endpoint.
#[derive(Debug, Default)]
pub struct RulesStats {
    pub revision: AtomicU64,
    pub rules: AtomicU64,
    pub fired: AtomicU64,
    pub suppressed: AtomicU64,
    pub actions_failed: AtomicU64,
    pub events_seen: AtomicU64,
    /// Executions not sent to the cloud because the upload queue was full (still in the history file).
    pub uploads_dropped: AtomicU64,
    /// Newest last.
    pub recent: Mutex<VecDeque<Execution>>,
}

const RECENT: usize = 500;
/// The history file is rotated to `<file>.1` past this size.
const HISTORY_MAX_BYTES: u64 = 4 << 20;

pub struct RulesStage {
    pub tenant: Uuid,
    pub site: Uuid,
    pub engine: Engine,
    /// Doors and devices; `None` without `[mqtt]`.
    pub control: Option<mpsc::Sender<(Control, ControlReply)>>,
    /// The site's doors (ids and zones), to resolve `"zone"` selectors.
    pub doors: crate::devices::SiteDoors,
    /// `(camera id, zone)`.
    pub cameras: Vec<(String, Option<String>)>,
    pub recording: Option<Arc<dyn Recording>>,
    /// Priority of lockdowns started by rules (panels and operators usually use higher ones).
    pub lockdown_priority: u8,
    pub spool: Spool,
    pub spooled: Arc<Notify>,
    pub history: PathBuf,
    pub stats: Arc<RulesStats>,
    /// Executions of the cloud's rules (uuid ids), for the cloud's rule history.
    pub uploads: Option<mpsc::Sender<Execution>>,
}

impl std::fmt::Debug for RulesStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesStage").field("rules", &self.engine.rules().len()).finish_non_exhaustive()
    }
}

impl RulesStage {
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut reload: mpsc::Receiver<RulesReload>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let outcomes = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                e = events.recv() => match e {
                    Some(e) => {
                        self.stats.events_seen.fetch_add(1, Relaxed);
                        self.engine.on_event(&e, Utc::now())
                    }
                    None => break,
                },
                _ = tick.tick() => self.engine.on_tick(Utc::now()),
                Some((rules, done)) = reload.recv() => {
                    tracing::info!(revision = rules.revision(), rules = rules.len(), "Rules replaced.");
                    self.stats.revision.store(rules.revision(), Relaxed);
                    self.stats.rules.store(rules.len() as u64, Relaxed);
                    self.engine.replace(rules);
                    let _ = done.send(());
                    continue;
                }
            };
            for outcome in outcomes {
                self.execute(outcome).await;
            }
        }
        tracing::info!("Rules stage stopped.");
    }

    async fn execute(&mut self, outcome: Outcome) {
        let mut record = Execution::from_outcome(&outcome);
        record.revision = Some(self.engine.rules().revision());
        match &outcome {
            Outcome::Fired { rule_id, rule_name, at, zone, actions, .. } => {
                self.stats.fired.fetch_add(1, Relaxed);
                tracing::info!(rule = %rule_id, name = %rule_name, zone = ?zone, actions = actions.len(), "Rule fired.");
                for (action, slot) in actions.iter().zip(record.actions.iter_mut()) {
                    let result = self.act(rule_id, *at, zone.as_deref(), action).await;
                    if let ActionResult::Failed { error } = &result {
                        self.stats.actions_failed.fetch_add(1, Relaxed);
                        tracing::warn!(rule = %rule_id, action = action.type_name(), %error, "Rule action failed.");
                    }
                    slot.result = Some(result);
                }
            }
            Outcome::Suppressed { rule_id, reason, .. } => {
                self.stats.suppressed.fetch_add(1, Relaxed);
                tracing::debug!(rule = %rule_id, ?reason, "Rule suppressed.");
            }
        }
        self.remember(record);
    }

    async fn order(&self, control: Control) -> ActionResult {
        let Some(tx) = &self.control else {
            return ActionResult::Skipped { reason: "this edge has no doors or devices ([mqtt])".into() };
        };
        let (reply, rx) = oneshot::channel();
        if tx.send((control, reply)).await.is_err() {
            return ActionResult::Failed { error: "the devices stage is not running".into() };
        }
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(Ok(_))) => ActionResult::Ok,
            Ok(Ok(Err(error))) => ActionResult::Failed { error },
            Ok(Err(_)) | Err(_) => ActionResult::Failed { error: "no answer from the devices stage".into() },
        }
    }

    fn doors(&self, sel: &Selector, zone: Option<&str>) -> Option<Vec<String>> {
        match sel {
            Selector::All => None,
            Selector::Ids(ids) => Some(ids.clone()),
            Selector::Zone => Some(
                self.doors.snapshot().into_iter().filter(|d| Some(d.zone.as_str()) == zone).map(|d| d.id).collect(),
            ),
        }
    }

    fn cameras(&self, sel: &Selector, zone: Option<&str>) -> Vec<String> {
        match sel {
            Selector::All => self.cameras.iter().map(|(c, _)| c.clone()).collect(),
            Selector::Ids(ids) => ids.clone(),
            Selector::Zone => self
                .cameras
                .iter()
                .filter(|(_, z)| z.as_deref() == zone && zone.is_some())
                .map(|(c, _)| c.clone())
                .collect(),
        }
    }

    fn record(&self, cameras: Vec<String>, pre: Duration, post: Duration, rule: &str) -> ActionResult {
        if cameras.is_empty() {
            return ActionResult::Skipped { reason: "no camera matches".into() };
        }
        let Some(rec) = &self.recording else {
            return ActionResult::Skipped {
                reason: "no camera records on this edge (set record_url or record)".into(),
            };
        };
        let errors: Vec<String> = cameras
            .iter()
            .filter_map(|c| rec.save_clip(c, pre, post, &format!("rule:{rule}")).err().map(|e| format!("{c}: {e}")))
            .collect();
        if errors.is_empty() { ActionResult::Ok } else { ActionResult::Failed { error: errors.join("; ") } }
    }

    async fn act(&self, rule: &str, at: DateTime<Utc>, zone: Option<&str>, action: &ActionSpec) -> ActionResult {
        let by = format!("rule:{rule}");
        match action {
            ActionSpec::Notify { target, message } => {
                // The cloud delivers notifications (email, SMS, push) from alert events.
                self.alert(rule, at, zone, Severity::Warning, format!("notify {target}: {message}"))
            }
            ActionSpec::Alert { severity, message, target } => {
                let message = match target {
                    Some(t) => format!("alert {t}: {message}"),
                    None => message.clone(),
                };
                self.alert(rule, at, zone, *severity, message)
            }
            ActionSpec::LockDoors { doors } => {
                let doors = self.doors(doors, zone);
                let id = format!("rule:{rule}");
                self.order(Control::Lockdown { id, priority: self.lockdown_priority, doors, minutes: None, by }).await
            }
            ActionSpec::UnlockDoors { doors } => {
                self.order(Control::Unlock { doors: self.doors(doors, zone), by }).await
            }
            ActionSpec::Lockdown { on, zone: lockdown_zone, doors } => {
                let id = "rules".to_owned();
                if *on {
                    let doors = match (doors, lockdown_zone) {
                        (Some(sel), _) => self.doors(sel, zone),
                        (None, Some(z)) => self.doors(&Selector::Zone, Some(z)),
                        (None, None) => None,
                    };
                    self.order(Control::Lockdown { id, priority: self.lockdown_priority, doors, minutes: None, by })
                        .await
                } else {
                    self.order(Control::ClearLockdown { id, priority: self.lockdown_priority, by }).await
                }
            }
            ActionSpec::StartRecording { cameras, duration_secs } => {
                self.record(self.cameras(cameras, zone), Duration::ZERO, Duration::from_secs(*duration_secs), rule)
            }
            ActionSpec::SaveClip { cameras, pre_secs, post_secs } => self.record(
                self.cameras(cameras, zone),
                Duration::from_secs(*pre_secs),
                Duration::from_secs(*post_secs),
                rule,
            ),
            ActionSpec::DeviceCommand { device, command, params } => {
                let params = (!params.is_empty()).then(|| serde_json::Value::Object(params.clone()));
                self.order(Control::DeviceCommand { device: device.clone(), action: command.clone(), params, by }).await
            }
            ActionSpec::Webhook { .. } => ActionResult::Skipped {
                reason: "webhooks are delivered by the cloud (an edge never calls out to arbitrary URLs)".into(),
            },
            ActionSpec::Log { message, level } => {
                match level {
                    LogLevel::Debug => tracing::debug!(rule, "{message}"),
                    LogLevel::Info => tracing::info!(rule, "{message}"),
                    LogLevel::Warn => tracing::warn!(rule, "{message}"),
                    LogLevel::Error => tracing::error!(rule, "{message}"),
                }
                ActionResult::Ok
            }
        }
    }

    /// Appends an `alert.triggered` event from this rule (alarm class: never evicted).
    fn alert(
        &self,
        rule: &str,
        at: DateTime<Utc>,
        zone: Option<&str>,
        severity: Severity,
        message: String,
    ) -> ActionResult {
        let occurred = Timestamp::from(at);
        let event = Event {
            id: event_id(occurred),
            tenant: self.tenant,
            site: self.site,
            zone: zone.map(str::to_owned),
            source: Source { kind: SourceKind::Rule, id: rule.to_owned() },
            kind: EventKind::AlertTriggered,
            occurred_at: occurred,
            payload: Payload::Alert(Alert { rule: Some(rule.to_owned()), severity, message }),
        };
        match self.spool.append(std::slice::from_ref(&event)) {
            Ok(_) => {
                self.spooled.notify_one();
                ActionResult::Ok
            }
            Err(error) if error.is_disk_full() => {
                // An alarm is not given up for a full disk: it waits in memory for room.
                tracing::error!(%error, id = %event.id, rule, "Disk full: rule alert kept in memory until there is room.");
                let (spool, spooled) = (self.spool.clone(), self.spooled.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        match spool.append(std::slice::from_ref(&event)) {
                            Ok(_) => {
                                spooled.notify_one();
                                tracing::info!(id = %event.id, "Rule alert spooled after the disk had room again.");
                                return;
                            }
                            Err(error) if error.is_disk_full() => {}
                            Err(error) => {
                                tracing::error!(%error, id = %event.id, "Rule alert could not be spooled.");
                                return;
                            }
                        }
                    }
                });
                ActionResult::Ok
            }
            Err(error) => {
                tracing::error!(%error, id = %event.id, rule, "Rule alert could not be spooled.");
                ActionResult::Failed { error: format!("spool: {error}") }
            }
        }
    }

    /// Keeps the record in memory and appends it to the history file (rotated past 4 MiB).
    fn remember(&self, record: Execution) {
        let line = match serde_json::to_string(&record) {
            Ok(l) => l,
            Err(error) => {
                tracing::error!(%error, "Cannot encode a rule execution.");
                return;
            }
        };
        if let Err(error) = append_line(&self.history, &line) {
            tracing::warn!(%error, path = %self.history.display(), "Rule history not written to disk.");
        }
        if let Some(tx) = &self.uploads
            && Uuid::parse_str(&record.rule_id).is_ok()
            && tx.try_send(record.clone()).is_err()
        {
            let n = self.stats.uploads_dropped.fetch_add(1, Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "Rule history upload is behind; executions kept on the edge only.");
            }
        }
        let mut recent = self.stats.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(record);
    }
}

fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > HISTORY_MAX_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, old)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{line}")
}

/// Sends executions of the cloud's rules to the cloud's rule history, in batches, retrying while the
/// cloud is unreachable (the queue is bounded: beyond it executions stay in the edge's history file
/// only, counted). A batch the cloud refuses as malformed is logged and dropped.
pub async fn upload_history(
    mut rx: mpsc::Receiver<Execution>,
    uplink: edge_uplink::Uplink,
    mut backoff: edge_core::Backoff,
    cancel: CancellationToken,
) {
    let mut batch: Vec<Execution> = Vec::new();
    loop {
        if batch.is_empty() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                n = rx.recv_many(&mut batch, 200) => if n == 0 { return },
            }
        }
        let values: Vec<serde_json::Value> = batch.iter().filter_map(|e| serde_json::to_value(e).ok()).collect();
        match uplink.report_rule_executions(&values).await {
            Ok(()) => {
                backoff.reset();
                batch.clear();
            }
            Err(edge_uplink::UplinkError::Refused { status, body }) => {
                tracing::warn!(status, %body, executions = batch.len(), "The cloud refused a rule history report; dropped.");
                batch.clear();
            }
            Err(error) => {
                tracing::debug!(%error, executions = batch.len(), "Rule history not delivered yet.");
                let wait = backoff.next_delay(rand::random::<f64>());
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
