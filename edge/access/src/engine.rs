//! The access engine: a [`Policy`] plus the live state doors need (lockdowns, who is where,
//! first-person-in holds, door contacts). Every input returns the outputs it causes; nothing here
//! reads a clock or does IO.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use vigil_proto::{AccessDecision, Alert, Event, EventKind, Payload, Severity, Source, SourceKind, Timestamp};

use crate::document::{AntiPassback, DegradedPolicy, Door};
use crate::policy::Policy;

/// Why a decision went the way it did. Its code is journalled in every `access.*` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Granted,
    /// Granted although the person is already inside a soft anti-passback area (an alarm is raised).
    GrantedAntiPassbackSoft,
    /// Granted, and the door is now held unlocked for the first-person-in schedule.
    GrantedFirstPersonIn,
    /// Granted from a document older than its offline bound (policy `cached` or `groups_only`).
    GrantedDegraded,
    /// Granted during a lockdown to a member of the lockdown's override groups.
    GrantedLockdownOverride,
    /// Unlocked by an operator or an automation rule, not by a credential (the `reader` of the
    /// decision names who: `operator:<id>` or `rule:<id>`).
    GrantedRemote,
    UnknownReader,
    UnknownCredential,
    CredentialRevoked,
    CredentialNotYetValid,
    CredentialExpired,
    PersonDisabled,
    PinRequired,
    WrongPin,
    NoAccessToDoor,
    OutsideSchedule,
    /// Outside schedule because today is a holiday.
    Holiday,
    AntiPassback,
    Lockdown,
    /// The document is too old and the degraded policy is `deny_all`.
    DegradedDenyAll,
    /// The document is too old and the person is not in the degraded policy's groups.
    DegradedNotPrivileged,
}

impl Reason {
    /// Stable snake_case code used on the wire and in logs.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Granted => "granted",
            Reason::GrantedAntiPassbackSoft => "granted_anti_passback_soft",
            Reason::GrantedFirstPersonIn => "granted_first_person_in",
            Reason::GrantedDegraded => "granted_degraded",
            Reason::GrantedLockdownOverride => "granted_lockdown_override",
            Reason::GrantedRemote => "granted_remote",
            Reason::UnknownReader => "unknown_reader",
            Reason::UnknownCredential => "unknown_credential",
            Reason::CredentialRevoked => "credential_revoked",
            Reason::CredentialNotYetValid => "credential_not_yet_valid",
            Reason::CredentialExpired => "credential_expired",
            Reason::PersonDisabled => "person_disabled",
            Reason::PinRequired => "pin_required",
            Reason::WrongPin => "wrong_pin",
            Reason::NoAccessToDoor => "no_access_to_door",
            Reason::OutsideSchedule => "outside_schedule",
            Reason::Holiday => "holiday",
            Reason::AntiPassback => "anti_passback",
            Reason::Lockdown => "lockdown",
            Reason::DegradedDenyAll => "degraded_deny_all",
            Reason::DegradedNotPrivileged => "degraded_not_privileged",
        }
    }

    pub fn is_granted(self) -> bool {
        matches!(
            self,
            Reason::Granted
                | Reason::GrantedAntiPassbackSoft
                | Reason::GrantedFirstPersonIn
                | Reason::GrantedDegraded
                | Reason::GrantedLockdownOverride
                | Reason::GrantedRemote
        )
    }
}

/// A credential shown at a reader: a badge, a PIN, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presentation {
    pub reader: String,
    pub badge: Option<String>,
    pub pin: Option<String>,
}

/// One journalled decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub reader: String,
    /// Empty when the reader belongs to no door.
    pub door: String,
    pub zone: Option<String>,
    pub reason: Reason,
    pub person: Option<String>,
    /// Credential id (never the badge number or PIN).
    pub credential: Option<String>,
}

impl Decision {
    pub fn granted(&self) -> bool {
        self.reason.is_granted()
    }

    /// The `access.granted` / `access.denied` event for this decision.
    pub fn to_event(&self, tenant: Uuid, site: Uuid, id: Uuid) -> Event {
        Event {
            id,
            tenant,
            site,
            zone: self.zone.clone(),
            source: Source { kind: SourceKind::Device, id: self.reader.clone() },
            kind: if self.granted() { EventKind::AccessGranted } else { EventKind::AccessDenied },
            occurred_at: Timestamp::from(self.at),
            payload: Payload::Access(AccessDecision {
                door: self.door.clone(),
                credential: self.credential.clone(),
                person: self.person.clone(),
                reason: self.reason.code().to_owned(),
            }),
        }
    }
}

/// What the lock of a door must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    /// Unlock for a single passage, relock after `secs`.
    Unlock { secs: u32 },
    /// Stay unlocked until told otherwise (first-person-in).
    HoldUnlocked,
    /// Lock now (lockdown, end of a hold).
    Lock,
}

impl LockAction {
    pub fn name(self) -> &'static str {
        match self {
            LockAction::Unlock { .. } => "unlock",
            LockAction::HoldUnlocked => "hold_unlocked",
            LockAction::Lock => "lock",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorCommand {
    pub door: String,
    pub zone: String,
    /// Lock device id.
    pub lock: String,
    pub action: LockAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmKind {
    ForcedOpen,
    HeldOpen,
    AntiPassbackViolation,
    LockdownStarted,
    LockdownEnded,
}

impl AlarmKind {
    pub fn code(self) -> &'static str {
        match self {
            AlarmKind::ForcedOpen => "door_forced_open",
            AlarmKind::HeldOpen => "door_held_open",
            AlarmKind::AntiPassbackViolation => "anti_passback_violation",
            AlarmKind::LockdownStarted => "lockdown_started",
            AlarmKind::LockdownEnded => "lockdown_ended",
        }
    }

    fn severity(self) -> Severity {
        match self {
            AlarmKind::ForcedOpen | AlarmKind::LockdownStarted => Severity::Critical,
            AlarmKind::HeldOpen | AlarmKind::AntiPassbackViolation => Severity::Warning,
            AlarmKind::LockdownEnded => Severity::Info,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub at: DateTime<Utc>,
    pub kind: AlarmKind,
    /// Door id, or lockdown id for lockdown alarms.
    pub subject: String,
    pub zone: Option<String>,
    /// Device that caused it (contact, reader), or `edge`.
    pub device: String,
}

impl Alarm {
    /// The `alert.triggered` event for this alarm.
    pub fn to_event(&self, tenant: Uuid, site: Uuid, id: Uuid) -> Event {
        let source_kind = if self.device == "edge" { SourceKind::Edge } else { SourceKind::Device };
        Event {
            id,
            tenant,
            site,
            zone: self.zone.clone(),
            source: Source { kind: source_kind, id: self.device.clone() },
            kind: EventKind::AlertTriggered,
            occurred_at: Timestamp::from(self.at),
            payload: Payload::Alert(Alert {
                rule: None,
                severity: self.kind.severity(),
                message: format!("{}: {}", self.kind.code(), self.subject),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutput {
    Decided(Decision),
    Command(DoorCommand),
    Alarm(Alarm),
}

/// A lockdown order. Several may be active; the highest priority that covers a door governs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockdown {
    pub id: String,
    pub priority: u8,
    /// Doors covered; `None` means every door.
    pub doors: Option<Vec<String>>,
    /// Automatic revert; `None` means until cleared.
    pub until: Option<DateTime<Utc>>,
    /// Members of these groups still get in (responders).
    pub override_groups: Vec<String>,
}

impl Lockdown {
    fn covers(&self, door: &str) -> bool {
        self.doors.as_ref().is_none_or(|ds| ds.iter().any(|d| d == door))
    }
}

/// Expected refusals of engine operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A pushed document is not newer than the one in force.
    #[error("site document revision {got} is not newer than {current}")]
    StaleRevision { current: u64, got: u64 },
    /// A lockdown may only be cleared with at least its own priority.
    #[error("lockdown {id} has priority {priority}; a clear with {given} is refused")]
    ClearRefused { id: String, priority: u8, given: u8 },
    /// No lockdown with this id is active.
    #[error("no active lockdown {0}")]
    NoSuchLockdown(String),
    /// The site document has no such door.
    #[error("no door {0}")]
    NoSuchDoor(String),
}

/// Door contact and lock reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorInput {
    Contact { open: bool },
    Lock { locked: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DoorState {
    open: bool,
    locked: bool,
    opened_at: Option<DateTime<Utc>>,
    authorized_until: Option<DateTime<Utc>>,
    held_alarm_raised: bool,
    first_person_in_active: bool,
}

/// Decisions plus the state they depend on.
#[derive(Debug)]
pub struct AccessEngine {
    policy: Policy,
    lockdowns: Vec<Lockdown>,
    /// person → area they last entered (anti-passback)
    positions: HashMap<String, String>,
    doors: HashMap<String, DoorState>,
}

/// Extra time after an unlock during which opening the door is still authorised.
const OPEN_GRACE: TimeDelta = TimeDelta::seconds(2);

impl AccessEngine {
    pub fn new(policy: Policy) -> AccessEngine {
        let doors =
            policy.doc.doors.iter().map(|d| (d.id.clone(), DoorState { locked: true, ..Default::default() })).collect();
        AccessEngine { policy, lockdowns: Vec::new(), positions: HashMap::new(), doors }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Installs a newer revision (from a file reload or a cloud push). Live state is kept for
    /// doors that still exist.
    pub fn replace_policy(&mut self, policy: Policy) -> Result<(), EngineError> {
        let (current, got) = (self.policy.doc.revision, policy.doc.revision);
        if got <= current {
            return Err(EngineError::StaleRevision { current, got });
        }
        self.install_policy(policy);
        Ok(())
    }

    /// Installs `policy` whatever its revision: for a caller that orders versions itself (the
    /// cloud's configuration sync, or a return to the local file when the cloud stops managing
    /// doors). Live state is kept for doors that still exist; lockdowns stay.
    pub fn install_policy(&mut self, policy: Policy) {
        let mut doors = HashMap::new();
        for d in &policy.doc.doors {
            let state = self.doors.remove(&d.id).unwrap_or(DoorState { locked: true, ..Default::default() });
            doors.insert(d.id.clone(), state);
        }
        self.doors = doors;
        self.policy = policy;
    }

    /// The issuer confirmed at `at` that the document is still its current one: the offline
    /// validity (`max_offline_hours`) now runs from `at`. An older confirmation changes nothing.
    pub fn confirm_current(&mut self, at: DateTime<Utc>) {
        if at > self.policy.doc.issued_at {
            self.policy.doc.issued_at = at;
        }
    }

    /// Whether the document has outlived its offline bound at `now`.
    pub fn is_degraded(&self, now: DateTime<Utc>) -> bool {
        now - self.policy.doc.issued_at > TimeDelta::hours(i64::from(self.policy.doc.max_offline_hours))
    }

    /// The lockdown governing `door` at `now`, if any.
    fn governing_lockdown(&self, door: &str, now: DateTime<Utc>) -> Option<&Lockdown> {
        self.lockdowns.iter().filter(|l| l.until.is_none_or(|u| now < u) && l.covers(door)).max_by_key(|l| l.priority)
    }

    fn door_index(&self, id: &str) -> Option<&Door> {
        self.policy.doc.doors.iter().find(|d| d.id == id)
    }

    /// A credential at a reader.
    pub fn present(&mut self, p: &Presentation, now: DateTime<Utc>) -> Vec<AccessOutput> {
        let mut out = Vec::new();
        let Some(&door_ix) = self.policy.by_reader.get(&p.reader) else {
            out.push(AccessOutput::Decided(Decision {
                at: now,
                reader: p.reader.clone(),
                door: String::new(),
                zone: None,
                reason: Reason::UnknownReader,
                person: None,
                credential: None,
            }));
            return out;
        };
        let door = self.policy.doc.doors[door_ix].clone();
        let (reason, person, credential) = self.decide(&door, p, now, &mut out);
        let decision = Decision {
            at: now,
            reader: p.reader.clone(),
            door: door.id.clone(),
            zone: Some(door.zone.clone()),
            reason,
            person: person.clone(),
            credential,
        };
        out.insert(0, AccessOutput::Decided(decision));
        if !reason.is_granted() {
            return out;
        }
        if let (Some(area), Some(person)) = (&door.enters, person) {
            self.positions.insert(person, area.clone());
        }
        let state = self.doors.entry(door.id.clone()).or_default();
        state.authorized_until = Some(now + TimeDelta::seconds(i64::from(door.unlock_secs)) + OPEN_GRACE);
        let action = if reason == Reason::GrantedFirstPersonIn {
            state.first_person_in_active = true;
            LockAction::HoldUnlocked
        } else {
            LockAction::Unlock { secs: door.unlock_secs }
        };
        if !(state.first_person_in_active && action != LockAction::HoldUnlocked) {
            out.push(command(&door, action));
        }
        out
    }

    fn decide(
        &self,
        door: &Door,
        p: &Presentation,
        now: DateTime<Utc>,
        out: &mut Vec<AccessOutput>,
    ) -> (Reason, Option<String>, Option<String>) {
        let pol = &self.policy;
        let cred_ix = match (&p.badge, &p.pin) {
            (Some(b), _) => pol.by_badge.get(b),
            (None, Some(pin)) => pol.by_pin.get(pin),
            (None, None) => None,
        };
        let Some(&cred_ix) = cred_ix else { return (Reason::UnknownCredential, None, None) };
        let cred = &pol.doc.credentials[cred_ix];
        let person_ix = pol.people[&cred.person];
        let person = &pol.doc.people[person_ix];
        let ids = (Some(person.id.clone()), Some(cred.id.clone()));
        let outcome = |r: Reason| (r, ids.0.clone(), ids.1.clone());
        if cred.revoked {
            return outcome(Reason::CredentialRevoked);
        }
        if cred.valid_from.is_some_and(|f| now < f) {
            return outcome(Reason::CredentialNotYetValid);
        }
        if cred.valid_until.is_some_and(|u| now >= u) {
            return outcome(Reason::CredentialExpired);
        }
        if !person.enabled {
            return outcome(Reason::PersonDisabled);
        }
        if door.require_pin && p.badge.is_some() {
            match (&p.pin, &cred.pin) {
                (None, _) => return outcome(Reason::PinRequired),
                (Some(given), Some(expected)) if given == expected => {}
                _ => return outcome(Reason::WrongPin),
            }
        }
        let in_group = |g: &String| person.groups.iter().any(|pg| pg == g);
        let degraded = self.is_degraded(now);
        if degraded {
            match &pol.doc.degraded {
                DegradedPolicy::DenyAll => return outcome(Reason::DegradedDenyAll),
                DegradedPolicy::GroupsOnly { groups } if !groups.iter().any(in_group) => {
                    return outcome(Reason::DegradedNotPrivileged);
                }
                _ => {}
            }
        }
        if let Some(l) = self.governing_lockdown(&door.id, now) {
            if l.override_groups.iter().any(in_group) {
                return outcome(Reason::GrantedLockdownOverride);
            }
            return outcome(Reason::Lockdown);
        }
        // Groups that include this door, then their schedules.
        let mut any_group = false;
        let mut holiday_closed = false;
        let mut open = false;
        for g in &person.groups {
            let Some(&gi) = pol.groups.get(g) else { continue };
            let group = &pol.doc.groups[gi];
            if !group.doors.contains(&door.id) {
                continue;
            }
            any_group = true;
            match &group.schedule {
                None => open = true,
                Some(s) => {
                    let (is_open, holiday) = pol.schedule_open(s, now);
                    open |= is_open;
                    holiday_closed |= holiday && !is_open;
                }
            }
        }
        if !any_group {
            return outcome(Reason::NoAccessToDoor);
        }
        if !open {
            return outcome(if holiday_closed { Reason::Holiday } else { Reason::OutsideSchedule });
        }
        let mut reason = if degraded { Reason::GrantedDegraded } else { Reason::Granted };
        if let Some(area) = &door.enters {
            let mode = pol.areas.get(area).copied().unwrap_or_default();
            if mode != AntiPassback::Off && self.positions.get(&person.id) == Some(area) {
                if mode == AntiPassback::Hard {
                    return outcome(Reason::AntiPassback);
                }
                out.push(AccessOutput::Alarm(Alarm {
                    at: now,
                    kind: AlarmKind::AntiPassbackViolation,
                    subject: door.id.clone(),
                    zone: Some(door.zone.clone()),
                    device: p.reader.clone(),
                }));
                reason = Reason::GrantedAntiPassbackSoft;
            }
        }
        if let Some(fpi) = &door.first_person_in {
            let active = self.doors.get(&door.id).is_some_and(|s| s.first_person_in_active);
            if !active && in_group(&fpi.group) && pol.schedule_open(&fpi.schedule, now).0 {
                reason = Reason::GrantedFirstPersonIn;
            }
        }
        outcome(reason)
    }

    /// A report from a door's contact or lock, identified by device id.
    pub fn door_input(&mut self, device: &str, input: DoorInput, now: DateTime<Utc>) -> Vec<AccessOutput> {
        let ix = match input {
            DoorInput::Contact { .. } => self.policy.by_contact.get(device),
            DoorInput::Lock { .. } => self.policy.by_lock.get(device),
        };
        let Some(&ix) = ix else { return Vec::new() };
        let door = &self.policy.doc.doors[ix];
        let Some(state) = self.doors.get_mut(&door.id) else { return Vec::new() };
        let mut out = Vec::new();
        match input {
            DoorInput::Lock { locked } => state.locked = locked,
            DoorInput::Contact { open: true } if !state.open => {
                state.open = true;
                state.opened_at = Some(now);
                state.held_alarm_raised = false;
                let authorised = state.first_person_in_active || state.authorized_until.is_some_and(|u| now <= u);
                if !authorised {
                    out.push(AccessOutput::Alarm(Alarm {
                        at: now,
                        kind: AlarmKind::ForcedOpen,
                        subject: door.id.clone(),
                        zone: Some(door.zone.clone()),
                        device: device.to_owned(),
                    }));
                }
            }
            DoorInput::Contact { open: false } if state.open => {
                state.open = false;
                state.opened_at = None;
                state.authorized_until = None;
            }
            DoorInput::Contact { .. } => {}
        }
        out
    }

    /// Starts (or replaces, by id) a lockdown: covered doors are locked and first-person-in holds end.
    pub fn lockdown(&mut self, l: Lockdown, now: DateTime<Utc>) -> Vec<AccessOutput> {
        self.lockdowns.retain(|x| x.id != l.id);
        let mut out = vec![AccessOutput::Alarm(Alarm {
            at: now,
            kind: AlarmKind::LockdownStarted,
            subject: l.id.clone(),
            zone: None,
            device: "edge".into(),
        })];
        for door in &self.policy.doc.doors {
            if l.covers(&door.id) {
                if let Some(s) = self.doors.get_mut(&door.id) {
                    s.first_person_in_active = false;
                    s.authorized_until = None;
                }
                out.push(command(door, LockAction::Lock));
            }
        }
        self.lockdowns.push(l);
        out
    }

    /// Ends a lockdown; refused when `priority` is lower than the lockdown's own.
    pub fn clear_lockdown(
        &mut self,
        id: &str,
        priority: u8,
        now: DateTime<Utc>,
    ) -> Result<Vec<AccessOutput>, EngineError> {
        let Some(pos) = self.lockdowns.iter().position(|l| l.id == id) else {
            return Err(EngineError::NoSuchLockdown(id.to_owned()));
        };
        let l = &self.lockdowns[pos];
        if priority < l.priority {
            return Err(EngineError::ClearRefused { id: id.to_owned(), priority: l.priority, given: priority });
        }
        self.lockdowns.remove(pos);
        Ok(vec![ended(id, now)])
    }

    /// An operator (remote command) or an automation rule unlocks `door` for one passage, journalled
    /// as a decision whose reader is `by`. A lockdown covering the door refuses it with a
    /// `lockdown` decision: remote unlocks never bypass a lockdown (clear it first).
    pub fn remote_unlock(
        &mut self,
        door: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AccessOutput>, EngineError> {
        let Some(ix) = self.door_index_of(door) else { return Err(EngineError::NoSuchDoor(door.to_owned())) };
        let d = &self.policy.doc.doors[ix];
        let locked_down = self.lockdowns.iter().any(|l| l.covers(&d.id) && l.until.is_none_or(|u| now < u));
        let decision = |reason| {
            AccessOutput::Decided(Decision {
                at: now,
                reader: by.to_owned(),
                door: d.id.clone(),
                zone: Some(d.zone.clone()),
                reason,
                person: None,
                credential: None,
            })
        };
        if locked_down {
            return Ok(vec![decision(Reason::Lockdown)]);
        }
        let out = vec![decision(Reason::GrantedRemote), command(d, LockAction::Unlock { secs: d.unlock_secs })];
        if let Some(s) = self.doors.get_mut(door) {
            s.authorized_until = Some(now + TimeDelta::seconds(i64::from(d.unlock_secs)) + OPEN_GRACE);
        }
        Ok(out)
    }

    fn door_index_of(&self, door: &str) -> Option<usize> {
        self.policy.doc.doors.iter().position(|d| d.id == door)
    }

    /// Active lockdown ids, highest priority first.
    pub fn active_lockdowns(&self, now: DateTime<Utc>) -> Vec<(String, u8)> {
        let mut v: Vec<_> = self
            .lockdowns
            .iter()
            .filter(|l| l.until.is_none_or(|u| now < u))
            .map(|l| (l.id.clone(), l.priority))
            .collect();
        v.sort_by_key(|l| std::cmp::Reverse(l.1));
        v
    }

    /// Time passing: lockdown auto-revert, first-person-in holds ending with their schedule, held-open alarms.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<AccessOutput> {
        let mut out = Vec::new();
        let (expired, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.lockdowns).into_iter().partition(|l| l.until.is_some_and(|u| now >= u));
        self.lockdowns = kept;
        out.extend(expired.iter().map(|l| ended(&l.id, now)));
        for door in &self.policy.doc.doors {
            let Some(state) = self.doors.get_mut(&door.id) else { continue };
            if state.first_person_in_active
                && let Some(f) = &door.first_person_in
                && !self.policy.schedule_open(&f.schedule, now).0
            {
                state.first_person_in_active = false;
                out.push(command(door, LockAction::Lock));
            }
            if let Some(opened) = state.opened_at
                && !state.held_alarm_raised
                && !state.first_person_in_active
                && now - opened >= TimeDelta::seconds(i64::from(door.held_open_secs))
            {
                state.held_alarm_raised = true;
                out.push(AccessOutput::Alarm(Alarm {
                    at: now,
                    kind: AlarmKind::HeldOpen,
                    subject: door.id.clone(),
                    zone: Some(door.zone.clone()),
                    device: door.contact.clone().unwrap_or_else(|| door.lock.clone()),
                }));
            }
        }
        out
    }

    /// The door a lock device belongs to (for matching acknowledgements).
    pub fn door_of_lock(&self, lock: &str) -> Option<&Door> {
        self.policy.by_lock.get(lock).map(|&i| &self.policy.doc.doors[i])
    }

    /// Door by id.
    pub fn door(&self, id: &str) -> Option<&Door> {
        self.door_index(id)
    }
}

fn command(door: &Door, action: LockAction) -> AccessOutput {
    AccessOutput::Command(DoorCommand {
        door: door.id.clone(),
        zone: door.zone.clone(),
        lock: door.lock.clone(),
        action,
    })
}

fn ended(id: &str, now: DateTime<Utc>) -> AccessOutput {
    AccessOutput::Alarm(Alarm {
        at: now,
        kind: AlarmKind::LockdownEnded,
        subject: id.to_owned(),
        zone: None,
        device: "edge".into(),
    })
}
