//! The device registry: who may connect, with which secret, and where its topics are.
//!
//! Loaded from a local JSON file (the cloud will push the same document). Secrets are stored as
//! SHA-256 hex of a high-entropy per-device password, never in clear.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::topics::{self, Channel, valid_segment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Reader,
    Lock,
    Contact,
    Temperature,
    Humidity,
    AirQuality,
    Motion,
    Panic,
    /// Security panel: may start and clear lockdowns.
    Panel,
    /// Something the site switches: HVAC, lighting, siren or relay (obeys commands, reports state).
    Actuator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    pub zone: String,
    pub kind: DeviceKind,
    /// `sha256(password)` as lowercase hex.
    pub password_sha256: String,
    /// Settings pushed to the device (a `configure` command with these params) each time it comes online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Firmware the device should run: offered (a `firmware_update` command) while it reports another version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareOffer>,
}

/// A firmware version for a device, where to fetch it and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareOffer {
    pub version: String,
    /// `https://` URL of the image (devices fetch it themselves).
    pub url: String,
    /// SHA-256 (hex) of the image; the device verifies it before flashing.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDocument {
    /// Site segment of every topic.
    pub site: String,
    pub devices: Vec<Device>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read.
    #[error("cannot read device registry {path}")]
    Read { path: String, source: std::io::Error },
    /// Not JSON, or not the registry's shape.
    #[error("device registry {path} is not valid: {source}")]
    Json { path: String, source: serde_json::Error },
    /// Ids that cannot be topic segments, duplicates, bad hashes; all at once.
    #[error("invalid device registry: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// A checked registry, indexed by device id.
#[derive(Debug, Clone)]
pub struct DeviceRegistry {
    site: String,
    devices: HashMap<String, Device>,
}

/// Hex SHA-256 of a password, the form stored in the registry.
pub fn hash_password(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// Compares without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl DeviceRegistry {
    pub fn from_document(doc: RegistryDocument) -> Result<DeviceRegistry, RegistryError> {
        let mut problems = Vec::new();
        if !valid_segment(&doc.site) {
            problems.push(format!("site {:?} is not a valid topic segment", doc.site));
        }
        let mut devices = HashMap::new();
        for d in doc.devices {
            if !valid_segment(&d.id) || !valid_segment(&d.zone) {
                problems.push(format!("device {:?} in zone {:?}: ids must match [A-Za-z0-9_.-]{{1,64}}", d.id, d.zone));
            }
            if d.password_sha256.len() != 64 || hex::decode(&d.password_sha256).is_err() {
                problems.push(format!("device {}: password_sha256 is not 64 hex digits", d.id));
            }
            if d.config.as_ref().is_some_and(|c| !c.is_object()) {
                problems.push(format!("device {}: config must be a JSON object", d.id));
            }
            if let Some(f) = &d.firmware {
                if f.version.is_empty() || f.version.len() > 64 {
                    problems.push(format!("device {}: firmware.version must be 1-64 characters", d.id));
                }
                if !f.url.starts_with("https://") {
                    problems.push(format!("device {}: firmware.url must be https://", d.id));
                }
                if f.sha256.len() != 64 || hex::decode(&f.sha256).is_err() {
                    problems.push(format!("device {}: firmware.sha256 is not 64 hex digits", d.id));
                }
            }
            if let Some(old) = devices.insert(d.id.clone(), d) {
                problems.push(format!("duplicate device {}", old.id));
            }
        }
        if !problems.is_empty() {
            return Err(RegistryError::Invalid(problems));
        }
        Ok(DeviceRegistry { site: doc.site, devices })
    }

    pub fn load(path: &Path) -> Result<DeviceRegistry, RegistryError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| RegistryError::Read { path: shown.clone(), source })?;
        let doc = serde_json::from_str(&text).map_err(|source| RegistryError::Json { path: shown, source })?;
        DeviceRegistry::from_document(doc)
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// The device whose id is `username` and whose secret is `password`.
    pub fn authenticate(&self, username: &str, password: &str) -> Option<&Device> {
        let d = self.devices.get(username)?;
        same(hash_password(password).as_bytes(), d.password_sha256.to_ascii_lowercase().as_bytes()).then_some(d)
    }

    /// A device topic.
    pub fn topic(&self, device: &Device, channel: Channel) -> String {
        topics::device(&self.site, &device.zone, &device.id, channel)
    }
}

/// The registry in force, replaceable while the front runs (a configuration push from the cloud):
/// new logins are checked against the newest one. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistryHandle(std::sync::Arc<std::sync::RwLock<std::sync::Arc<DeviceRegistry>>>);

impl RegistryHandle {
    pub fn new(registry: std::sync::Arc<DeviceRegistry>) -> RegistryHandle {
        RegistryHandle(std::sync::Arc::new(std::sync::RwLock::new(registry)))
    }

    pub fn current(&self) -> std::sync::Arc<DeviceRegistry> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Replaces the registry. The site segment cannot change (the edge's own subscriptions use it).
    pub fn replace(&self, registry: DeviceRegistry) -> Result<(), String> {
        let mut current = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if registry.site() != current.site() {
            return Err(format!(
                "the site segment cannot change while the edge runs ({:?} → {:?})",
                current.site(),
                registry.site()
            ));
        }
        *current = std::sync::Arc::new(registry);
        Ok(())
    }
}
