//! The `devices` stage: MQTT device messages → access decisions, lock commands, and events in the spool.
//!
//! ```text
//! hub (edge MQTT client) ──Inbound──▶ devices ──▶ AccessEngine (sans-IO) ──▶ lock command (MQTT)
//!                                        │                                 └─▶ access.* / alert.* events
//!                                        └─ telemetry → sensor.reading, status → device.status, panic → alert
//! ```
//!
//! The lock command is published before the decision is appended to the spool, so a door opens in
//! milliseconds whatever the disk does: events go to a journal writer task that appends them in
//! batches (one fsync per batch; retried, then counted as lost and logged at ERROR). Commands are tracked until the lock's `ack` or the acknowledgement timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use crate::detect::event_id;
use chrono::{DateTime, Utc};
use edge_access::{AccessEngine, AccessOutput, DoorInput, LockAction, Presentation};
use edge_mqtt::{Command, DeviceEvent, DeviceMessage, HubHandle, Inbound};
use edge_spool::Spool;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::{
    Alert, DeviceStatus, Event, EventKind, Payload, SensorReading, Severity, Source, SourceKind, Timestamp,
};

/// Counters for the status endpoint.
#[derive(Debug, Default)]
pub struct DeviceStats {
    pub messages: AtomicU64,
    pub access_granted: AtomicU64,
    pub access_denied: AtomicU64,
    pub alarms: AtomicU64,
    pub commands_sent: AtomicU64,
    pub commands_acked: AtomicU64,
    pub commands_failed: AtomicU64,
    pub commands_timed_out: AtomicU64,
    pub readings: AtomicU64,
    pub events_lost: AtomicU64,
    /// Lockdown requests from non-panel devices, or clears below the lockdown's priority.
    pub lockdowns_refused: AtomicU64,
    /// Microseconds from the last badge presentation received to its unlock command published.
    pub last_decision_micros: AtomicU64,
    /// Live state per device id: online (from `status`, incl. the last will), firmware, last message.
    pub live: std::sync::Mutex<std::collections::BTreeMap<String, DeviceLive>>,
}

/// What the edge last heard from one device.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeviceLive {
    pub zone: String,
    pub online: bool,
    pub firmware: Option<String>,
    /// Unix microseconds of the last message.
    pub last_seen_micros: i64,
    /// The registry's `config` was sent since the device last came online (re-sent after each reconnect).
    pub config_sent: bool,
    /// The registry's firmware version for this device, when it has one.
    pub firmware_target: Option<String>,
    /// An update to this version was offered and the device has not reported it yet.
    pub firmware_offered: Option<String>,
}

/// Orders for the doors and devices from inside the edge (automation rules, remote commands).
/// Each carries a reply with what was done, for the rule history and command acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Lockdown of `doors` (`None`: every door), reverting after `minutes` when given.
    Lockdown {
        id: String,
        priority: u8,
        doors: Option<Vec<String>>,
        minutes: Option<u32>,
        by: String,
    },
    ClearLockdown {
        id: String,
        priority: u8,
        by: String,
    },
    /// One passage through each door (`None`: every door); refused per door during a lockdown.
    Unlock {
        doors: Option<Vec<String>>,
        by: String,
    },
    /// A device-specific command (`on`, `off`, `reboot`…) published on the device's command topic.
    DeviceCommand {
        device: String,
        action: String,
        params: Option<serde_json::Value>,
        by: String,
    },
    /// A new site document (the cloud's configuration, or the local file again): decides from now on.
    InstallAccess(NewPolicy),
    /// The cloud confirmed at this instant that the document is still current (offline validity).
    ConfirmAccess(DateTime<Utc>),
}

/// A checked site document on its way to the access engine.
#[derive(Debug, Clone)]
pub struct NewPolicy(pub Box<edge_access::Policy>);

impl PartialEq for NewPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.0.document() == other.0.document()
    }
}

/// The site's doors as the access engine knows them now, for the stages that address doors by id,
/// zone or lock (rules, remote commands). Updated when a new site document is installed.
#[derive(Debug, Clone, Default)]
pub struct SiteDoors(Arc<std::sync::RwLock<Vec<DoorRef>>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorRef {
    pub id: String,
    pub zone: String,
    pub lock: String,
}

impl SiteDoors {
    pub fn set(&self, policy: &edge_access::Policy) {
        let doors = policy
            .document()
            .doors
            .iter()
            .map(|d| DoorRef { id: d.id.clone(), zone: d.zone.clone(), lock: d.lock.clone() })
            .collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = doors;
    }

    pub fn snapshot(&self) -> Vec<DoorRef> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a [`Control`] did: `Ok(summary)` or `Err(reason)`.
pub type ControlReply = tokio::sync::oneshot::Sender<Result<String, String>>;

#[derive(Debug)]
struct Pending {
    lock: String,
    door: String,
    sent: Instant,
}

/// The running stage's inputs and outputs.
#[derive(Debug)]
pub struct DevicesStage {
    pub tenant: Uuid,
    pub site: Uuid,
    /// `None` when the edge has no `[access]` section: devices still report, doors decide nothing.
    pub engine: Option<AccessEngine>,
    pub hub: HubHandle,
    /// To the journal writer, which appends to the spool off the decision path.
    pub journal: mpsc::Sender<Vec<Event>>,
    pub stats: Arc<DeviceStats>,
    pub ack_timeout: Duration,
    /// Silence after which an online device is marked offline.
    pub heartbeat_timeout: Duration,
    /// Device kinds, to authorise actions (only a `panel` may start or clear a lockdown).
    pub registry: edge_mqtt::RegistryHandle,
    /// Copies of every event for the rules stage.
    pub tap: crate::rules::EventTap,
    /// Kept in step with the engine's document.
    pub doors: SiteDoors,
}

impl DevicesStage {
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut control: mpsc::Receiver<(Control, ControlReply)>,
        cancel: CancellationToken,
    ) {
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                msg = inbound.recv() => match msg {
                    Some(m) => self.on_message(m, &mut pending).await,
                    None => break,
                },
                Some((order, reply)) = control.recv() => {
                    let result = self.on_control(order, &mut pending).await;
                    let _ = reply.send(result);
                }
                _ = tick.tick() => self.on_tick(&mut pending).await,
            }
        }
        tracing::info!(pending_commands = pending.len(), "Devices stage stopped.");
    }

    async fn on_message(&mut self, m: Inbound, pending: &mut HashMap<String, Pending>) {
        self.stats.messages.fetch_add(1, Relaxed);
        let received = Instant::now();
        let now: DateTime<Utc> = SystemTime::now().into();
        {
            let mut live = self.stats.live.lock().unwrap_or_else(|p| p.into_inner());
            let entry = live.entry(m.device.clone()).or_default();
            entry.zone.clone_from(&m.zone);
            entry.last_seen_micros = Timestamp::from(now).as_micros();
            match &m.message {
                DeviceMessage::Status(s) => {
                    if !s.online {
                        entry.config_sent = false;
                    }
                    entry.online = s.online;
                    if s.firmware.is_some() {
                        entry.firmware.clone_from(&s.firmware);
                    }
                }
                _ => entry.online = true,
            }
        }
        let source = Source { kind: SourceKind::Device, id: m.device.clone() };
        let zone = Some(m.zone.clone());
        let mut events = Vec::new();
        let (tenant, site) = (self.tenant, self.site);
        let mut simple = |kind, payload| {
            let at = Timestamp::from(now);
            events.push(Event {
                id: event_id(at),
                tenant,
                site,
                zone: zone.clone(),
                source: source.clone(),
                kind,
                occurred_at: at,
                payload,
            });
        };
        let outputs = match m.message {
            DeviceMessage::Telemetry(t) => {
                self.stats.readings.fetch_add(1, Relaxed);
                simple(
                    EventKind::SensorReading,
                    Payload::SensorReading(SensorReading { metric: t.metric, value: t.value, unit: t.unit }),
                );
                Vec::new()
            }
            DeviceMessage::Status(s) => {
                tracing::info!(device = %m.device, online = s.online, firmware = ?s.firmware, "Device status.");
                if s.online {
                    self.provision(&m.device, s.firmware.as_deref(), pending);
                }
                simple(
                    EventKind::DeviceStatus,
                    Payload::DeviceStatus(DeviceStatus { online: s.online, detail: s.detail }),
                );
                Vec::new()
            }
            DeviceMessage::Event(DeviceEvent::Motion { active }) => {
                let reading =
                    SensorReading { metric: "motion".into(), value: f64::from(u8::from(active)), unit: "bool".into() };
                simple(EventKind::SensorReading, Payload::SensorReading(reading));
                Vec::new()
            }
            DeviceMessage::Event(DeviceEvent::Panic) => {
                tracing::warn!(device = %m.device, zone = %m.zone, "Panic button pressed.");
                self.stats.alarms.fetch_add(1, Relaxed);
                let alert =
                    Alert { rule: None, severity: Severity::Critical, message: format!("panic_button: {}", m.device) };
                simple(EventKind::AlertTriggered, Payload::Alert(alert));
                Vec::new()
            }
            DeviceMessage::Event(DeviceEvent::Ack { command_id, ok }) => {
                match pending.remove(&command_id) {
                    Some(p) if ok => {
                        self.stats.commands_acked.fetch_add(1, Relaxed);
                        tracing::info!(lock = %p.lock, door = %p.door, id = %command_id, micros = p.sent.elapsed().as_micros() as u64, "Lock acknowledged.");
                    }
                    Some(p) => {
                        self.stats.commands_failed.fetch_add(1, Relaxed);
                        tracing::warn!(lock = %p.lock, door = %p.door, id = %command_id, "Lock reported a failed command.");
                    }
                    None => tracing::debug!(device = %m.device, id = %command_id, "Ack for an unknown command."),
                }
                Vec::new()
            }
            DeviceMessage::Event(DeviceEvent::Credential { badge, pin }) => match &mut self.engine {
                Some(engine) => engine.present(&Presentation { reader: m.device.clone(), badge, pin }, now),
                None => Vec::new(),
            },
            DeviceMessage::Event(DeviceEvent::Lockdown { .. } | DeviceEvent::LockdownClear { .. })
                if self.registry.current().get(&m.device).map(|d| d.kind) != Some(edge_mqtt::DeviceKind::Panel) =>
            {
                self.stats.lockdowns_refused.fetch_add(1, Relaxed);
                tracing::warn!(device = %m.device, "Lockdown request from a device that is not a panel refused.");
                Vec::new()
            }
            DeviceMessage::Event(DeviceEvent::Lockdown { id, priority, minutes }) => match &mut self.engine {
                Some(engine) => {
                    tracing::warn!(device = %m.device, lockdown = %id, priority, ?minutes, "Lockdown started.");
                    let until = minutes.map(|mins| now + chrono::TimeDelta::minutes(i64::from(mins)));
                    let override_groups = engine.policy().document().lockdown_override_groups.clone();
                    engine.lockdown(edge_access::Lockdown { id, priority, doors: None, until, override_groups }, now)
                }
                None => Vec::new(),
            },
            DeviceMessage::Event(DeviceEvent::LockdownClear { id, priority }) => match &mut self.engine {
                Some(engine) => match engine.clear_lockdown(&id, priority, now) {
                    Ok(out) => {
                        tracing::warn!(device = %m.device, lockdown = %id, "Lockdown cleared.");
                        out
                    }
                    Err(error) => {
                        self.stats.lockdowns_refused.fetch_add(1, Relaxed);
                        tracing::warn!(device = %m.device, %error, "Lockdown clear refused.");
                        Vec::new()
                    }
                },
                None => Vec::new(),
            },
            DeviceMessage::Event(DeviceEvent::Contact { open }) => match &mut self.engine {
                Some(engine) => engine.door_input(&m.device, DoorInput::Contact { open }, now),
                None => Vec::new(),
            },
            DeviceMessage::Event(DeviceEvent::LockState { locked }) => match &mut self.engine {
                Some(engine) => engine.door_input(&m.device, DoorInput::Lock { locked }, now),
                None => Vec::new(),
            },
        };
        self.apply(outputs, pending, &mut events, Some(received));
        self.append(events).await;
    }

    /// Publishes a command to a device and tracks its acknowledgement.
    fn send_command(
        &self,
        device: &str,
        action: &str,
        params: Option<serde_json::Value>,
        pending: &mut HashMap<String, Pending>,
    ) -> Result<String, String> {
        let registry = self.registry.current();
        let Some(d) = registry.get(device) else { return Err(format!("no device {device}")) };
        let cmd = Command { id: Uuid::now_v7().to_string(), action: action.to_owned(), secs: None, params };
        match self.hub.command(&d.zone, device, &cmd) {
            Ok(()) => {
                self.stats.commands_sent.fetch_add(1, Relaxed);
                pending.insert(
                    cmd.id.clone(),
                    Pending { lock: device.to_owned(), door: String::new(), sent: Instant::now() },
                );
                Ok(cmd.id)
            }
            Err(error) => {
                self.stats.commands_failed.fetch_add(1, Relaxed);
                Err(format!("{action} to {device}: {error}"))
            }
        }
    }

    /// A device came online: pushes its registry `config` (once per connection) and offers its
    /// registry firmware while it reports another version.
    fn provision(&self, device: &str, reported: Option<&str>, pending: &mut HashMap<String, Pending>) {
        let registry = self.registry.current();
        let Some(d) = registry.get(device) else { return };
        let (send_config, offer) = {
            let mut live = self.stats.live.lock().unwrap_or_else(|p| p.into_inner());
            let entry = live.entry(device.to_owned()).or_default();
            let send_config = d.config.is_some() && !entry.config_sent;
            entry.config_sent |= send_config;
            let mut offer = None;
            if let Some(f) = &d.firmware {
                entry.firmware_target = Some(f.version.clone());
                if reported == Some(f.version.as_str()) {
                    if entry.firmware_offered.take().is_some() {
                        tracing::info!(%device, version = %f.version, "Firmware update done.");
                    }
                } else if entry.firmware_offered.as_deref() != Some(f.version.as_str()) {
                    entry.firmware_offered = Some(f.version.clone());
                    offer = Some(f.clone());
                }
            }
            (send_config, offer)
        };
        if send_config && let Some(config) = &d.config {
            match self.send_command(device, "configure", Some(config.clone()), pending) {
                Ok(id) => tracing::info!(%device, %id, "Configuration sent."),
                Err(error) => tracing::warn!(%device, %error, "Configuration not sent."),
            }
        }
        if let Some(f) = offer {
            let params = serde_json::json!({ "version": f.version, "url": f.url, "sha256": f.sha256 });
            match self.send_command(device, "firmware_update", Some(params), pending) {
                Ok(id) => tracing::info!(%device, from = ?reported, to = %f.version, %id, "Firmware update offered."),
                Err(error) => tracing::warn!(%device, %error, "Firmware update not offered."),
            }
        }
    }

    async fn on_control(&mut self, order: Control, pending: &mut HashMap<String, Pending>) -> Result<String, String> {
        let now: DateTime<Utc> = SystemTime::now().into();
        let mut events = Vec::new();
        let result = match order {
            Control::DeviceCommand { device, action, params, by } => {
                let id = self.send_command(&device, &action, params, pending)?;
                tracing::info!(%device, %action, %by, %id, "Device command sent.");
                Ok(format!("{action} sent to {device} (command {id})"))
            }
            Control::InstallAccess(NewPolicy(policy)) => {
                let d = policy.document();
                let summary = format!(
                    "site document revision {} ({} doors, {} people, {} credentials)",
                    d.revision,
                    d.doors.len(),
                    d.people.len(),
                    d.credentials.len()
                );
                self.doors.set(&policy);
                match &mut self.engine {
                    Some(engine) => engine.install_policy(*policy),
                    None => self.engine = Some(AccessEngine::new(*policy)),
                }
                tracing::info!(%summary, "Site document installed.");
                Ok(summary)
            }
            Control::ConfirmAccess(at) => {
                if let Some(engine) = &mut self.engine {
                    engine.confirm_current(at);
                }
                Ok(format!("site document confirmed current at {at}"))
            }
            order => {
                let Some(engine) = &mut self.engine else { return Err("this edge has no [access] section".into()) };
                match order {
                    Control::Lockdown { id, priority, doors, minutes, by } => {
                        tracing::warn!(lockdown = %id, priority, ?doors, ?minutes, %by, "Lockdown started.");
                        let until = minutes.map(|m| now + chrono::TimeDelta::minutes(i64::from(m)));
                        let override_groups = engine.policy().document().lockdown_override_groups.clone();
                        let n = doors.as_ref().map_or(engine.policy().document().doors.len(), Vec::len);
                        let out = engine.lockdown(
                            edge_access::Lockdown { id: id.clone(), priority, doors, until, override_groups },
                            now,
                        );
                        self.apply(out, pending, &mut events, None);
                        Ok(format!("lockdown {id} on {n} doors"))
                    }
                    Control::ClearLockdown { id, priority, by } => match engine.clear_lockdown(&id, priority, now) {
                        Ok(out) => {
                            tracing::warn!(lockdown = %id, %by, "Lockdown cleared.");
                            self.apply(out, pending, &mut events, None);
                            Ok(format!("lockdown {id} cleared"))
                        }
                        Err(error) => Err(error.to_string()),
                    },
                    Control::Unlock { doors, by } => {
                        let ids: Vec<String> = doors
                            .unwrap_or_else(|| engine.policy().document().doors.iter().map(|d| d.id.clone()).collect());
                        let mut outs = Vec::new();
                        let mut refused = Vec::new();
                        for door in &ids {
                            match engine.remote_unlock(door, &by, now) {
                                Ok(out) => {
                                    if !out.iter().any(|o| matches!(o, AccessOutput::Command(_))) {
                                        refused.push(format!("{door}: lockdown"));
                                    }
                                    outs.extend(out);
                                }
                                Err(error) => refused.push(error.to_string()),
                            }
                        }
                        self.apply(outs, pending, &mut events, None);
                        if refused.is_empty() {
                            Ok(format!("unlocked {}", ids.join(", ")))
                        } else {
                            Err(format!("refused: {}", refused.join("; ")))
                        }
                    }
                    Control::DeviceCommand { .. } | Control::InstallAccess(_) | Control::ConfirmAccess(_) => {
                        Err("unreachable".into())
                    }
                }
            }
        };
        self.append(events).await;
        result
    }

    async fn on_tick(&mut self, pending: &mut HashMap<String, Pending>) {
        let timeout = self.ack_timeout;
        pending.retain(|id, p| {
            let alive = p.sent.elapsed() < timeout;
            if !alive {
                self.stats.commands_timed_out.fetch_add(1, Relaxed);
                tracing::warn!(lock = %p.lock, door = %p.door, id = %id, "Lock did not acknowledge in time.");
            }
            alive
        });
        let now: DateTime<Utc> = SystemTime::now().into();
        let silent_since = Timestamp::from(now).as_micros() - self.heartbeat_timeout.as_micros() as i64;
        let mut events = Vec::new();
        for (device, live) in self.stats.live.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            if live.online && live.last_seen_micros < silent_since {
                live.online = false;
                tracing::warn!(device = %device, zone = %live.zone, "Device silent past its heartbeat timeout; offline.");
                let at = Timestamp::from(now);
                events.push(Event {
                    id: event_id(at),
                    tenant: self.tenant,
                    site: self.site,
                    zone: Some(live.zone.clone()),
                    source: Source { kind: SourceKind::Device, id: device.clone() },
                    kind: EventKind::DeviceStatus,
                    occurred_at: at,
                    payload: Payload::DeviceStatus(DeviceStatus {
                        online: false,
                        detail: Some("heartbeat timeout".into()),
                    }),
                });
            }
        }
        let Some(engine) = &mut self.engine else {
            self.append(events).await;
            return;
        };
        let outputs = engine.tick(now);
        self.apply(outputs, pending, &mut events, None);
        self.append(events).await;
    }

    /// Sends commands at once; turns decisions and alarms into events.
    fn apply(
        &self,
        outputs: Vec<AccessOutput>,
        pending: &mut HashMap<String, Pending>,
        events: &mut Vec<Event>,
        received: Option<Instant>,
    ) {
        for o in outputs {
            match o {
                AccessOutput::Command(c) => {
                    let id = Uuid::now_v7().to_string();
                    let secs = match c.action {
                        LockAction::Unlock { secs } => Some(secs),
                        _ => None,
                    };
                    let cmd = Command { id: id.clone(), action: c.action.name().to_owned(), secs, params: None };
                    match self.hub.command(&c.zone, &c.lock, &cmd) {
                        Ok(()) => {
                            self.stats.commands_sent.fetch_add(1, Relaxed);
                            if let Some(r) = received {
                                self.stats.last_decision_micros.store(r.elapsed().as_micros() as u64, Relaxed);
                            }
                            pending.insert(id, Pending { lock: c.lock, door: c.door, sent: Instant::now() });
                        }
                        Err(error) => {
                            self.stats.commands_failed.fetch_add(1, Relaxed);
                            tracing::error!(lock = %c.lock, door = %c.door, %error, "Lock command could not be sent.");
                        }
                    }
                }
                AccessOutput::Decided(d) => {
                    let counter = if d.granted() { &self.stats.access_granted } else { &self.stats.access_denied };
                    counter.fetch_add(1, Relaxed);
                    tracing::info!(door = %d.door, reader = %d.reader, person = ?d.person, reason = d.reason.code(), "Access decision.");
                    events.push(d.to_event(self.tenant, self.site, event_id(Timestamp::from(d.at))));
                }
                AccessOutput::Alarm(a) => {
                    self.stats.alarms.fetch_add(1, Relaxed);
                    tracing::warn!(alarm = a.kind.code(), subject = %a.subject, device = %a.device, "Door alarm.");
                    events.push(a.to_event(self.tenant, self.site, event_id(Timestamp::from(a.at))));
                }
            }
        }
    }

    /// Hands events to the journal writer (waits only when it is 4096 batches behind).
    async fn append(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        self.tap.offer(&events);
        if self.journal.send(events).await.is_err() {
            self.stats.events_lost.fetch_add(n, Relaxed);
            tracing::error!(events = n, "Journal writer is gone; device events lost.");
        }
    }
}

/// Appends journalled events to the spool in batches (one fsync per batch) on a blocking thread,
/// with retries; a failure is counted and logged at ERROR, never silent. A full disk is waited out
/// (access decisions and alarms are never given up for it; the spool writes nothing meanwhile and
/// the batches wait in the channel). Ends when the stage does.
async fn write_journal(
    mut rx: mpsc::Receiver<Vec<Event>>,
    spool: Spool,
    spooled: Arc<Notify>,
    stats: Arc<DeviceStats>,
    eviction: crate::eviction::EvictionAlerts,
) {
    while let Some(mut batch) = rx.recv().await {
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let spool = spool.clone();
        let eviction = eviction.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut delay = Duration::from_millis(20);
            let mut last = None;
            let mut failures = 0;
            let mut said_full = false;
            while failures < 5 {
                match spool.append(&batch) {
                    Ok(report) => {
                        if report.evicted.total() > 0 {
                            eviction.record(report.evicted);
                        }
                        if said_full {
                            tracing::info!(events = batch.len(), "Disk has room again; device events spooled.");
                        }
                        return Ok(());
                    }
                    Err(e) if e.is_disk_full() => {
                        if !said_full {
                            tracing::error!(error = %e, events = batch.len(), "Disk full: device events wait in memory until there is room.");
                            said_full = true;
                        }
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) => {
                        last = Some(e.to_string());
                        failures += 1;
                        std::thread::sleep(delay);
                        delay *= 2;
                    }
                }
            }
            let ids: Vec<String> = batch.iter().map(|e| e.id.to_string()).collect();
            Err((last.unwrap_or_default(), ids))
        })
        .await;
        match result {
            Ok(Ok(())) => spooled.notify_one(),
            Ok(Err((error, ids))) => {
                stats.events_lost.fetch_add(n, Relaxed);
                tracing::error!(%error, ?ids, "Device events could not be spooled and are lost.");
            }
            Err(error) => {
                stats.events_lost.fetch_add(n, Relaxed);
                tracing::error!(%error, "Spool append task failed; device events lost.");
            }
        }
    }
}

/// The devices side, built (broker up, LAN port bound, documents loaded) but not yet spawned.
#[derive(Debug)]
pub struct DevicesBuilt {
    mqtt: edge_mqtt::Mqtt,
    engine: Option<AccessEngine>,
    /// The site's doors, shared with the rules and remote stages.
    pub doors: SiteDoors,
    ack_timeout: Duration,
    heartbeat_timeout: Duration,
    pub stats: Arc<DeviceStats>,
    /// Orders for doors and devices (rules, remote commands): send here once spawned.
    pub control: mpsc::Sender<(Control, ControlReply)>,
    control_rx: mpsc::Receiver<(Control, ControlReply)>,
    /// Where the journal writer reports evictions (telemetry not stored on a low disk).
    pub(crate) eviction: crate::eviction::EvictionAlerts,
}

impl DevicesBuilt {
    /// Loads the device registry and the site document, starts the embedded broker and binds the
    /// device port. Every failure here stops the daemon before anything runs.
    /// `cloud_access` is the site document of the last configuration the cloud pushed (persisted),
    /// which takes the place of the local file's.
    /// `cloud_devices` likewise replaces the local device registry file.
    pub async fn build(
        cfg: &crate::config::Config,
        cloud_access: Option<edge_access::Policy>,
        cloud_devices: Option<edge_mqtt::DeviceRegistry>,
    ) -> anyhow::Result<Option<DevicesBuilt>> {
        use anyhow::Context;
        let Some(m) = &cfg.mqtt else { return Ok(None) };
        let registry = match cloud_devices {
            Some(r) => {
                tracing::info!(devices = r.devices().count(), "Device registry from the cloud's last configuration.");
                r
            }
            None => edge_mqtt::DeviceRegistry::load(&m.devices)?,
        };
        let engine = match (cloud_access, &cfg.access) {
            (Some(policy), _) => {
                tracing::info!(
                    revision = policy.document().revision,
                    doors = policy.document().doors.len(),
                    people = policy.document().people.len(),
                    "Site document from the cloud's last configuration."
                );
                Some(AccessEngine::new(policy))
            }
            (None, Some(a)) => {
                let doc = edge_access::SiteDocument::load(&a.site_document)?;
                let policy = edge_access::Policy::compile(doc)?;
                tracing::info!(
                    revision = policy.document().revision,
                    doors = policy.document().doors.len(),
                    people = policy.document().people.len(),
                    "Site document loaded."
                );
                Some(AccessEngine::new(policy))
            }
            (None, None) => None,
        };
        let doors = SiteDoors::default();
        if let Some(e) = &engine {
            doors.set(e.policy());
        }
        let devices = registry.devices().count();
        let tls = m.tls.as_ref().map(|(listen, cert, key)| edge_mqtt::TlsListenerConfig {
            listen: *listen,
            cert: cert.clone(),
            key: key.clone(),
        });
        let mqtt =
            edge_mqtt::MqttConfig { listen: m.listen, registry: Arc::new(registry), max_payload: m.max_payload, tls }
                .build()
                .await
                .context("start MQTT")?;
        let tls_listen = mqtt.tls.as_ref().map(|t| t.local_addr);
        tracing::info!(listen = %mqtt.local_addr, tls = ?tls_listen, devices, "MQTT front listening; broker on loopback.");
        let (control, control_rx) = mpsc::channel(256);
        Ok(Some(DevicesBuilt {
            eviction: crate::eviction::EvictionAlerts::default(),
            control,
            control_rx,
            mqtt,
            engine,
            doors,
            ack_timeout: m.ack_timeout,
            heartbeat_timeout: m.heartbeat_timeout,
            stats: Arc::new(DeviceStats::default()),
        }))
    }

    /// Address devices connect to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.mqtt.local_addr
    }

    /// The registry the front checks logins against (replaceable by the down link).
    pub fn registry(&self) -> edge_mqtt::RegistryHandle {
        self.mqtt.front.registry.clone()
    }

    pub fn front_stats(&self) -> Arc<edge_mqtt::FrontStats> {
        self.mqtt.front.stats.clone()
    }

    /// Spawns the front, the edge's MQTT client and the devices stage.
    pub fn spawn(
        self,
        tasks: &tokio_util::task::TaskTracker,
        cancel: &CancellationToken,
        cfg: &crate::config::Config,
        spool: Spool,
        spooled: Arc<Notify>,
        tap: crate::rules::EventTap,
    ) {
        use tracing::Instrument;
        let (tx, rx) = mpsc::channel(1024);
        let m = self.mqtt;
        let registry = m.front.registry.clone();
        let (journal_tx, journal_rx) = mpsc::channel(4096);
        let stats = self.stats.clone();
        if let Some(t) = m.tls {
            let run = m.front.clone().run_tls(t.listener, t.acceptor, cancel.child_token());
            tasks.spawn(run.instrument(tracing::info_span!("stage", stage = "mqtt_front", tls = true)));
        }
        tasks.spawn(
            m.front
                .run(m.listener, cancel.child_token())
                .instrument(tracing::info_span!("stage", stage = "mqtt_front")),
        );
        tasks.spawn(m.hub.run(tx, cancel.child_token()).instrument(tracing::info_span!("stage", stage = "mqtt_hub")));
        let stage = DevicesStage {
            tenant: cfg.tenant,
            site: cfg.site,
            engine: self.engine,
            hub: m.handle,
            journal: journal_tx,
            stats: self.stats,
            ack_timeout: self.ack_timeout,
            heartbeat_timeout: self.heartbeat_timeout,
            registry,
            tap,
            doors: self.doors,
        };
        tasks.spawn(
            stage
                .run(rx, self.control_rx, cancel.child_token())
                .instrument(tracing::info_span!("stage", stage = "devices")),
        );
        let journal = write_journal(journal_rx, spool, spooled, stats, self.eviction);
        tasks.spawn(journal.instrument(tracing::info_span!("stage", stage = "devices_journal")));
    }
}
