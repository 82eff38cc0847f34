//! The configuration document the cloud keeps per site and edges pull (the down link).
//!
//! One document carries everything an edge decides with offline, each part in the shape its own
//! engine reads: `access` is an `edge-access` site document (people, credentials, groups, areas,
//! doors, schedules, holidays, offline policy), `rules` an `edge-rules` rule set and `cameras` each
//! camera's analytics (motion gating, filters, lines, zones). The parts stay
//! opaque JSON here so this crate does not depend on the engines; the cloud checks a document with
//! those engines before it serves it, and the edge checks it again before applying it.
//!
//! `version` increases with every change on the cloud side; an edge applies a document only when
//! its version is higher than the one it runs, and all parts together or none.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of the document shape.
pub const SITE_CONFIG_SCHEMA: u16 = 1;

/// Path edges long-poll for a newer configuration (`?after=<version>&wait=<secs>`).
pub const EDGE_CONFIG_PATH: &str = "/api/edge/config";

/// Path edges report the outcome of applying a configuration to.
pub const EDGE_CONFIG_REPORT_PATH: &str = "/api/edge/config/report";

/// A site's configuration at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// [`SITE_CONFIG_SCHEMA`] of the issuer.
    pub schema: u16,
    /// Monotonic per site.
    pub version: u64,
    pub site: Uuid,
    /// When the cloud composed this document (RFC 3339). Also the start of the access part's
    /// offline validity.
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// The `edge-access` site document, when the cloud manages doors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<serde_json::Value>,
    /// The `edge-rules` rule set, when the cloud manages rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<serde_json::Value>,
    /// Analytics per camera (`[{id, motion, filters, lines, zones}]`), when the cloud manages them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cameras: Option<serde_json::Value>,
    /// The device registry (`{site, devices: [{id, zone, kind, password_sha256, config, firmware}]}`),
    /// when the cloud manages the site's devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<serde_json::Value>,
}

/// What an edge did with a configuration version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigReport {
    pub version: u64,
    /// True when the edge runs this version now; false when it refused it (and runs the previous).
    pub applied: bool,
    /// Why it refused, one line per problem (empty when applied).
    #[serde(default)]
    pub problems: Vec<String>,
}
