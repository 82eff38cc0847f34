//! The site configuration document ([`SiteConfig`]) on both sides of the down link, sans IO.
//!
//! - The cloud [`compose`]s a document from what it stores (the site's access configuration, the
//!   tenant's people, credentials and rules), [`check`]s it with the edge's own engines before it
//!   serves it, and shows people a copy with the PINs [`redact`]ed.
//! - The edge [`check`]s a pulled document again and applies the checked parts together, or none.
//!
//! A part that is absent (`None`) is not managed by the cloud: the edge keeps its local file's.
//! `access` is present once the site has an access configuration, `cameras` once it has camera
//! analytics, `rules` once the tenant has a rule.
//!
//! Architecture invariant: one function decides whether a document is acceptable ([`check`]), and
//! the cloud and the edge both call it, so the cloud never serves a document an edge would refuse
//! for a reason the cloud could have seen.

use chrono::{DateTime, Utc};
use edge_access::{Policy, SITE_DOCUMENT_SCHEMA, SiteDocument};
use edge_rules::{CompiledRules, RULES_SCHEMA, RuleSet};
use serde_json::{Map, Value, json};
use uuid::Uuid;
pub mod scene;
pub use vigil_proto::{ConfigReport, SITE_CONFIG_SCHEMA, SiteConfig};

/// Keys of the site's access configuration that the cloud fills in itself.
pub const COMPOSED_ACCESS_KEYS: [&str; 6] = ["schema", "revision", "issued_at", "timezone", "people", "credentials"];

/// What the cloud stores, for one site at one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources<'a> {
    pub site: Uuid,
    pub version: u64,
    pub issued_at: DateTime<Utc>,
    /// IANA timezone of the site.
    pub timezone: &'a str,
    /// The site's access configuration (`doors`, `areas`, `groups`, `schedules`, `holidays`,
    /// `degraded`, `max_offline_hours`, `lockdown_override_groups`); `None` when it has none.
    pub access: Option<&'a Value>,
    /// `[{id, name, groups, enabled}]`.
    pub people: &'a Value,
    /// `[{id, person, badge, pin, valid_from, valid_until, revoked}]`.
    pub credentials: &'a Value,
    /// `[{id, name, description, enabled, trigger, conditions, actions}]`.
    pub rules: &'a Value,
    /// `[{id, motion, filters, lines, zones}]`; `None` when the site has none set.
    pub cameras: Option<&'a Value>,
    /// The device registry document; `None` when the site has none set.
    pub devices: Option<&'a Value>,
}

/// Builds the document for [`Sources`]. People are tenant-wide while access groups are defined
/// per site: a person's groups that this site does not define are left out here (they grant nothing
/// at this site), so a group defined at one site never makes another site's document invalid.
pub fn compose(s: &Sources<'_>) -> SiteConfig {
    let access = s.access.map(|base| {
        let mut doc: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
        let defined: Vec<&str> = doc
            .get("groups")
            .and_then(Value::as_array)
            .map(|gs| gs.iter().filter_map(|g| g.get("id").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        let people: Vec<Value> = s
            .people
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let mut p = p.clone();
                        if let Some(groups) = p.get_mut("groups").and_then(Value::as_array_mut) {
                            groups.retain(|g| g.as_str().is_some_and(|g| defined.contains(&g)));
                        }
                        p
                    })
                    .collect()
            })
            .unwrap_or_default();
        doc.insert("schema".into(), json!(SITE_DOCUMENT_SCHEMA));
        doc.insert("revision".into(), json!(s.version));
        doc.insert("issued_at".into(), json!(s.issued_at));
        doc.insert("timezone".into(), json!(s.timezone));
        doc.insert("people".into(), Value::Array(people));
        doc.insert("credentials".into(), s.credentials.clone());
        Value::Object(doc)
    });
    let rules =
        s.rules.as_array().filter(|r| !r.is_empty()).map(
            |rules| json!({ "schema": RULES_SCHEMA, "revision": s.version, "timezone": s.timezone, "rules": rules }),
        );
    SiteConfig {
        schema: SITE_CONFIG_SCHEMA,
        version: s.version,
        site: s.site,
        issued_at: s.issued_at,
        access,
        rules,
        cameras: s.cameras.cloned(),
        devices: s.devices.cloned(),
    }
}

/// A document whose every part was accepted by its engine.
#[derive(Debug)]
pub struct Checked {
    pub version: u64,
    pub issued_at: DateTime<Utc>,
    pub access: Option<Policy>,
    pub rules: Option<CompiledRules>,
    /// `(camera id, analytics)`.
    pub cameras: Option<Vec<(String, scene::SceneSettings)>>,
    pub devices: Option<edge_mqtt::DeviceRegistry>,
}

/// Checks every part with the engine that will run it; every problem is reported, each prefixed
/// with its part (`access: …`, `rules: …`).
pub fn check(doc: &SiteConfig) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    if doc.schema != SITE_CONFIG_SCHEMA {
        problems.push(format!("schema {} is not supported (expected {SITE_CONFIG_SCHEMA})", doc.schema));
    }
    let access = doc.access.as_ref().and_then(|v| {
        let parsed = serde_json::from_value::<SiteDocument>(v.clone())
            .map_err(|e| vec![e.to_string()])
            .and_then(|d| Policy::compile(d).map_err(|e| e.problems));
        parsed.map_err(|ps| problems.extend(ps.into_iter().map(|p| format!("access: {p}")))).ok()
    });
    let rules = doc.rules.as_ref().and_then(|v| {
        let parsed = serde_json::from_value::<RuleSet>(v.clone())
            .map_err(|e| vec![e.to_string()])
            .and_then(|set| set.compile().map_err(|ps| ps.iter().map(ToString::to_string).collect()));
        parsed.map_err(|ps| problems.extend(ps.into_iter().map(|p| format!("rules: {p}")))).ok()
    });
    let cameras = doc.cameras.as_ref().map(|v| {
        let mut ps = Vec::new();
        let cameras = scene::check_cameras(v, &mut ps);
        problems.extend(ps.into_iter().map(|p| format!("cameras: {p}")));
        cameras
    });
    let devices = doc.devices.as_ref().and_then(|v| {
        let parsed = serde_json::from_value::<edge_mqtt::RegistryDocument>(v.clone())
            .map_err(|e| vec![e.to_string()])
            .and_then(|d| edge_mqtt::DeviceRegistry::from_document(d).map_err(|e| vec![e.to_string()]));
        parsed.map_err(|ps| problems.extend(ps.into_iter().map(|p| format!("devices: {p}")))).ok()
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked { version: doc.version, issued_at: doc.issued_at, access, rules, cameras, devices })
}

/// Checks the site's access configuration as an administrator sends it: an object without the
/// keys the cloud fills in ([`COMPOSED_ACCESS_KEYS`]).
pub fn check_access_input(access: &Value) -> Result<(), Vec<String>> {
    let Some(obj) = access.as_object() else { return Err(vec!["must be a JSON object".to_owned()]) };
    let set: Vec<String> = COMPOSED_ACCESS_KEYS
        .iter()
        .filter(|k| obj.contains_key(**k))
        .map(|k| format!("{k}: set by the cloud (people and credentials have their own endpoints)"))
        .collect();
    if set.is_empty() { Ok(()) } else { Err(set) }
}

/// The document as people may see it: every PIN and device password hash replaced by `"set"`.
pub fn redact(mut doc: SiteConfig) -> SiteConfig {
    if let Some(devices) = doc.devices.as_mut().and_then(|d| d.get_mut("devices")).and_then(Value::as_array_mut) {
        for d in devices {
            if let Some(hash) = d.get_mut("password_sha256") {
                *hash = json!("set");
            }
        }
    }
    if let Some(creds) = doc.access.as_mut().and_then(|a| a.get_mut("credentials")).and_then(Value::as_array_mut) {
        for c in creds {
            if let Some(pin) = c.get_mut("pin").filter(|p| !p.is_null()) {
                *pin = json!("set");
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests;
