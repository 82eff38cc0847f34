//! The site document: everything a door needs to decide offline, as one versioned serde value.
//!
//! The same document is loaded from a local JSON or TOML file or pushed by the cloud (the `access`
//! part of its site configuration): it carries its own `schema`, a monotonically increasing
//! `revision` and the `issued_at` instant that bounds how long it may be trusted offline
//! (`max_offline_hours`).
//! [`crate::Policy::compile`] checks it (references, timezone, times) and reports every problem at once.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Version of the document shape this build reads.
pub const SITE_DOCUMENT_SCHEMA: u16 = 1;

/// Everything the site's doors decide with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteDocument {
    /// Shape version; must equal [`SITE_DOCUMENT_SCHEMA`].
    pub schema: u16,
    /// Revision of the content; a pushed document with a lower revision is refused.
    pub revision: u64,
    /// When the issuer (operator or cloud) produced this revision.
    pub issued_at: DateTime<Utc>,
    /// IANA timezone of the site, e.g. `Europe/Paris`; schedules and holidays are in local time.
    pub timezone: String,
    /// How long the document is trusted after `issued_at` before the degraded policy applies.
    #[serde(default = "default_max_offline_hours")]
    pub max_offline_hours: u32,
    /// What doors do once the document is older than `max_offline_hours`.
    #[serde(default)]
    pub degraded: DegradedPolicy,
    #[serde(default)]
    pub people: Vec<Person>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    #[serde(default)]
    pub groups: Vec<AccessGroup>,
    #[serde(default)]
    pub areas: Vec<Area>,
    #[serde(default)]
    pub doors: Vec<Door>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// Site-wide holidays (local dates): schedules use their `holiday_windows` on these days.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// Members of these groups (responders) still get in during a lockdown started from a panel.
    #[serde(default)]
    pub lockdown_override_groups: Vec<String>,
}

fn default_max_offline_hours() -> u32 {
    72
}

/// The explicit degraded-mode policy: what happens when the document is too old to trust.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum DegradedPolicy {
    /// Deny every credential (fail secure). The default.
    #[default]
    DenyAll,
    /// Keep deciding with the cached document, every grant marked `granted_degraded`.
    Cached,
    /// Only members of these groups are let in (still subject to schedules), everyone else is denied.
    GroupsOnly { groups: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A badge and/or PIN that belongs to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub id: String,
    pub person: String,
    /// Badge number as the reader reports it (RFID/NFC UID).
    #[serde(default)]
    pub badge: Option<String>,
    /// PIN for keypad doors (`require_pin`) or PIN-only entry.
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked: bool,
}

/// Which doors members may open, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessGroup {
    pub id: String,
    pub doors: Vec<String>,
    /// Schedule id; absent means always.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// An area with an anti-passback mode: a person inside cannot enter again before leaving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    #[serde(default)]
    pub anti_passback: AntiPassback,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiPassback {
    #[default]
    Off,
    /// Grant, but raise a warning alert.
    Soft,
    /// Deny.
    Hard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Door {
    pub id: String,
    pub zone: String,
    /// Reader device id.
    pub reader: String,
    /// Lock device id.
    pub lock: String,
    /// Door contact device id, if the door has one (enables forced/held-open alarms).
    #[serde(default)]
    pub contact: Option<String>,
    /// Area entered through this door (anti-passback).
    #[serde(default)]
    pub enters: Option<String>,
    #[serde(default)]
    pub require_pin: bool,
    #[serde(default = "default_unlock_secs")]
    pub unlock_secs: u32,
    #[serde(default = "default_held_open_secs")]
    pub held_open_secs: u32,
    #[serde(default)]
    pub first_person_in: Option<FirstPersonIn>,
}

fn default_unlock_secs() -> u32 {
    5
}
fn default_held_open_secs() -> u32 {
    30
}

/// The door stays unlocked during `schedule`, but only after a member of `group` has badged in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstPersonIn {
    pub group: String,
    pub schedule: String,
}

/// Weekly windows in the site's local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub id: String,
    pub windows: Vec<Window>,
    /// Windows used instead on holidays; empty means closed on holidays.
    #[serde(default)]
    pub holiday_windows: Vec<Window>,
}

/// `start`..`end` (`HH:MM`, end exclusive) on the given days; `end` before `start` crosses midnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default = "every_day")]
    pub days: Vec<Day>,
    pub start: String,
    pub end: String,
}

fn every_day() -> Vec<Day> {
    vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub(crate) fn of(weekday: chrono::Weekday) -> Day {
        use chrono::Weekday as W;
        match weekday {
            W::Mon => Day::Mon,
            W::Tue => Day::Tue,
            W::Wed => Day::Wed,
            W::Thu => Day::Thu,
            W::Fri => Day::Fri,
            W::Sat => Day::Sat,
            W::Sun => Day::Sun,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub date: NaiveDate,
    #[serde(default)]
    pub name: String,
}

/// Why a document file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentLoadError {
    /// The file could not be read.
    #[error("cannot read site document {path}")]
    Read { path: String, source: std::io::Error },
    /// The JSON did not parse or had the wrong shape.
    #[error("site document {path} is not valid JSON: {source}")]
    Json { path: String, source: serde_json::Error },
    /// The TOML did not parse or had the wrong shape.
    #[error("site document {path} is not valid TOML: {source}")]
    Toml { path: String, source: toml::de::Error },
}

impl SiteDocument {
    /// Reads a document from a `.toml` file, or JSON otherwise.
    pub fn load(path: &Path) -> Result<SiteDocument, DocumentLoadError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| DocumentLoadError::Read { path: shown.clone(), source })?;
        if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|source| DocumentLoadError::Toml { path: shown, source })
        } else {
            serde_json::from_str(&text).map_err(|source| DocumentLoadError::Json { path: shown, source })
        }
    }
}
