//! The down link: the site's configuration from the cloud, checked, kept on disk, applied all or
//! nothing, and reported.
//!
//! ```text
//! cloud: GET /api/edge/config?after=N&wait=25 (long-poll)
//!   200 document ─▶ check (edge-siteconfig: the engines' own compilers) ─▶ keep on disk (temp file,
//!                   fsync, rename) ─▶ devices stage (InstallAccess) + rules stage (reload)
//!                   ─▶ POST /api/edge/config/report {version, applied, problems}
//!   204 (still current) ─▶ ConfirmAccess(now): the doors' offline validity runs from now
//! ```
//!
//! Invariants:
//! - a version runs only once it is on disk, so a reboot never goes back to an older document than
//!   the doors last used (a revoked badge stays revoked through a power cut with the WAN down);
//! - every part passes its engine's check before any part changes; a refused version is reported
//!   with its problems and the edge keeps running the previous one;
//! - a part the cloud stops managing goes back to the local file's (`[access] site_document`,
//!   `[rules] file`), checked the same way first.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use chrono::{DateTime, Utc};
use edge_core::Backoff;
use edge_siteconfig::{Checked, ConfigReport, SiteConfig};
use edge_uplink::{Uplink, UplinkError};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::devices::{Control, ControlReply, NewPolicy};
use crate::rules::RulesReload;

/// How long one long-poll waits for a change.
const POLL_WAIT: Duration = Duration::from_secs(25);
/// How often a confirmation ("still current") is written to disk, so a reboot keeps most of it.
const PERSIST_CONFIRMATION_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// What `/status` and heartbeats show about the configuration.
#[derive(Debug, Default)]
pub struct DownlinkStats {
    /// Version running (0: none from the cloud yet).
    pub version: AtomicU64,
    /// Latest version refused (0: none).
    pub refused_version: AtomicU64,
    pub refused_problems: Mutex<Vec<String>>,
    /// Unix microseconds of the last answer from the cloud (a document or "still current").
    pub last_contact_micros: AtomicI64,
    pub errors: AtomicU64,
}

impl DownlinkStats {
    pub fn snapshot(&self) -> serde_json::Value {
        let contact = self.last_contact_micros.load(Relaxed);
        json!({
            "version": self.version.load(Relaxed),
            "refused_version": Some(self.refused_version.load(Relaxed)).filter(|v| *v > 0),
            "refused_problems": *self.refused_problems.lock().unwrap_or_else(|p| p.into_inner()),
            "last_contact": (contact > 0).then(|| vigil_proto::Timestamp(contact).to_chrono()).flatten(),
            "errors": self.errors.load(Relaxed),
        })
    }
}

/// Reads the configuration kept by a previous run. A file that is missing gives `None`; one that
/// cannot be read or no longer passes its check is set aside (`<file>.rejected`) with an error in
/// the log, and the local files are used instead.
pub fn load(path: &Path) -> Option<(SiteConfig, Checked)> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "Cannot read the kept cloud configuration; using the local files.");
            return None;
        }
    };
    let parsed = serde_json::from_slice::<SiteConfig>(&text)
        .map_err(|e| vec![e.to_string()])
        .and_then(|doc| edge_siteconfig::check(&doc).map(|checked| (doc, checked)));
    match parsed {
        Ok(found) => {
            tracing::info!(path = %path.display(), version = found.0.version, "Booting with the cloud's last configuration.");
            Some(found)
        }
        Err(problems) => {
            let aside = path.with_extension("json.rejected");
            let _ = std::fs::rename(path, &aside);
            tracing::error!(path = %path.display(), set_aside = %aside.display(), ?problems, "The kept cloud configuration is unusable; using the local files.");
            None
        }
    }
}

/// Writes `doc` so that a crash at any point leaves either the old file or the new one, whole.
pub fn store(path: &Path, doc: &SiteConfig) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The local files a part falls back to when the cloud stops managing it.
#[derive(Debug, Clone, Default)]
pub struct LocalFiles {
    pub access: Option<PathBuf>,
    pub rules: Option<PathBuf>,
    /// Each camera's analytics from the edge's file.
    pub cameras: Vec<(String, edge_core::SceneUpdate)>,
    /// The device registry file (`[mqtt] devices`).
    pub devices: Option<PathBuf>,
}

/// Why a version did not run.
#[derive(Debug)]
enum NotApplied {
    /// The document is wrong: reported, not tried again until a newer version.
    Refused(Vec<String>),
    /// Something on this edge failed (disk, a stage stopping): tried again after a pause.
    Retry(String),
}

#[derive(Debug)]
pub struct Downlink {
    pub uplink: Uplink,
    /// Where the running configuration is kept.
    pub path: PathBuf,
    /// The configuration running (loaded at boot, or `None`).
    pub current: Option<SiteConfig>,
    /// The devices stage (doors), when the edge has `[mqtt]`.
    pub control: Option<mpsc::Sender<(Control, ControlReply)>>,
    pub rules: mpsc::Sender<RulesReload>,
    /// The cameras' analyzers.
    pub slots: Option<Arc<crate::detect::FrameSlots>>,
    /// The registry the MQTT front checks device logins against (with `[mqtt]`).
    pub registry: Option<edge_mqtt::RegistryHandle>,
    pub local: LocalFiles,
    pub backoff: Backoff,
    pub stats: Arc<DownlinkStats>,
}

impl Downlink {
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut refused: u64 = 0;
        // After a restart the cloud learns which version runs here.
        let mut report: Option<ConfigReport> =
            self.current.as_ref().map(|c| ConfigReport { version: c.version, applied: true, problems: vec![] });
        if let Some(c) = &self.current {
            self.stats.version.store(c.version, Relaxed);
        }
        let mut persisted_confirmation = self.current.as_ref().map_or(DateTime::<Utc>::MIN_UTC, |c| c.issued_at);
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if let Some(r) = &report {
                match self.uplink.report_config(r).await {
                    Ok(()) => report = None,
                    Err(error) => {
                        tracing::debug!(%error, version = r.version, "Configuration report not delivered yet.")
                    }
                }
            }
            let after = self.current.as_ref().map_or(0, |c| c.version).max(refused);
            let fetched = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                r = self.uplink.fetch_config(after, POLL_WAIT) => r,
            };
            let now = Utc::now();
            match fetched {
                Ok(None) => {
                    self.backoff.reset();
                    self.stats.last_contact_micros.store(vigil_proto::Timestamp::from(now).as_micros(), Relaxed);
                    self.confirm(now, &mut persisted_confirmation).await;
                }
                Ok(Some(doc)) if doc.version <= after => {
                    tracing::warn!(
                        version = doc.version,
                        after,
                        "The cloud sent a configuration that is not newer; ignored."
                    );
                    self.pause(&cancel).await;
                }
                Ok(Some(doc)) => {
                    self.backoff.reset();
                    self.stats.last_contact_micros.store(vigil_proto::Timestamp::from(now).as_micros(), Relaxed);
                    let version = doc.version;
                    match self.apply(doc).await {
                        Ok(summary) => {
                            tracing::info!(version, %summary, "Configuration from the cloud applied.");
                            self.stats.version.store(version, Relaxed);
                            persisted_confirmation = now;
                            report = Some(ConfigReport { version, applied: true, problems: vec![] });
                        }
                        Err(NotApplied::Refused(problems)) => {
                            tracing::error!(
                                version,
                                ?problems,
                                "Configuration from the cloud refused; the previous one keeps running."
                            );
                            refused = version;
                            self.stats.refused_version.store(version, Relaxed);
                            problems
                                .clone_into(&mut self.stats.refused_problems.lock().unwrap_or_else(|p| p.into_inner()));
                            report = Some(ConfigReport { version, applied: false, problems });
                        }
                        Err(NotApplied::Retry(error)) => {
                            tracing::error!(version, %error, "Configuration from the cloud not applied; will try again.");
                            self.stats.errors.fetch_add(1, Relaxed);
                            self.pause(&cancel).await;
                        }
                    }
                }
                Err(UplinkError::Unauthorized(status)) => {
                    tracing::error!(status, "The cloud refused this edge's token; configuration not updated.");
                    self.stats.errors.fetch_add(1, Relaxed);
                    self.pause(&cancel).await;
                }
                Err(error) => {
                    tracing::debug!(%error, "Cloud configuration not reachable; keeping the current one.");
                    self.stats.errors.fetch_add(1, Relaxed);
                    self.pause(&cancel).await;
                }
            }
        }
    }

    async fn pause(&mut self, cancel: &CancellationToken) {
        let wait = self.backoff.next_delay(rand::random::<f64>());
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// The cloud says the running version is still current at `now`.
    async fn confirm(&mut self, now: DateTime<Utc>, persisted: &mut DateTime<Utc>) {
        let Some(current) = &mut self.current else { return };
        if current.access.is_none() {
            return;
        }
        if let Some(tx) = &self.control {
            let _ = order(tx, Control::ConfirmAccess(now)).await;
        }
        if now - *persisted >= PERSIST_CONFIRMATION_EVERY {
            current.issued_at = now;
            if let Some(access) = current.access.as_mut().and_then(|a| a.as_object_mut()) {
                access.insert("issued_at".into(), json!(now));
            }
            match store(&self.path, current) {
                Ok(()) => *persisted = now,
                Err(error) => tracing::warn!(%error, "Cannot keep the configuration's confirmation on disk."),
            }
        }
    }

    async fn apply(&mut self, doc: SiteConfig) -> Result<String, NotApplied> {
        let checked = edge_siteconfig::check(&doc).map_err(NotApplied::Refused)?;
        let had_access = self.current.as_ref().is_some_and(|c| c.access.is_some());
        let had_rules = self.current.as_ref().is_some_and(|c| c.rules.is_some());
        // Parts going back to the local files are checked before anything changes.
        let access = match (checked.access, had_access, &self.local.access) {
            (Some(policy), _, _) => Some(policy),
            (None, true, Some(file)) => Some(
                edge_access::SiteDocument::load(file)
                    .map_err(|e| e.to_string())
                    .and_then(|d| edge_access::Policy::compile(d).map_err(|e| e.to_string()))
                    .map_err(|e| NotApplied::Refused(vec![format!("access: back to {}: {e}", file.display())]))?,
            ),
            (None, true, None) => {
                tracing::warn!(
                    "The cloud no longer manages doors and there is no local site document: the last one stays."
                );
                None
            }
            (None, false, _) => None,
        };
        let rules = match (checked.rules, had_rules, &self.local.rules) {
            (Some(rules), _, _) => Some(rules),
            (None, true, Some(file)) => Some(
                edge_rules::RuleSet::load(file)
                    .map_err(|e| e.to_string())
                    .and_then(|set| {
                        set.compile().map_err(|ps| ps.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
                    })
                    .map_err(|e| NotApplied::Refused(vec![format!("rules: back to {}: {e}", file.display())]))?,
            ),
            (None, true, None) => Some(edge_rules::CompiledRules::empty()),
            (None, false, _) => None,
        };
        let had_cameras = self.current.as_ref().is_some_and(|c| c.cameras.is_some());
        let cameras = match (checked.cameras, had_cameras) {
            (Some(list), _) => Some(list),
            // Back to the file's analytics for every camera.
            (None, true) => Some(Vec::new()),
            (None, false) => None,
        };
        if let Some(list) = &cameras {
            let here = self.slots.as_ref().map(|s| s.cameras()).unwrap_or_default();
            let unknown: Vec<String> = list
                .iter()
                .filter(|(id, _)| !here.iter().any(|c| **c == **id))
                .map(|(id, _)| format!("cameras: no camera {id:?} on this edge"))
                .collect();
            if !unknown.is_empty() {
                return Err(NotApplied::Refused(unknown));
            }
        }
        let had_devices = self.current.as_ref().is_some_and(|c| c.devices.is_some());
        let devices = match (checked.devices, had_devices, &self.local.devices) {
            (Some(registry), _, _) => Some(registry),
            (None, true, Some(file)) => Some(
                edge_mqtt::DeviceRegistry::load(file)
                    .map_err(|e| NotApplied::Refused(vec![format!("devices: back to {}: {e}", file.display())]))?,
            ),
            _ => None,
        };
        if let (Some(registry), Some(handle)) = (&devices, &self.registry)
            && registry.site() != handle.current().site()
        {
            return Err(NotApplied::Refused(vec![format!(
                "devices: the site segment {:?} is not this edge's {:?}",
                registry.site(),
                handle.current().site()
            )]));
        }
        store(&self.path, &doc).map_err(|e| NotApplied::Retry(format!("cannot keep it on disk: {e}")))?;
        let mut done = Vec::new();
        if let Some(policy) = access {
            match &self.control {
                Some(tx) => {
                    let summary = order(tx, Control::InstallAccess(NewPolicy(Box::new(policy))))
                        .await
                        .map_err(|e| NotApplied::Retry(format!("devices stage: {e}")))?;
                    done.push(summary);
                }
                None => tracing::warn!(
                    "The configuration has doors but this edge has no [mqtt]: doors are not handled here."
                ),
            }
        }
        if let Some(rules) = rules {
            let summary = format!("{} rules (revision {})", rules.len(), rules.revision());
            let (tx, rx) = oneshot::channel();
            self.rules.send((rules, tx)).await.map_err(|_| NotApplied::Retry("the rules stage stopped".into()))?;
            rx.await.map_err(|_| NotApplied::Retry("the rules stage stopped".into()))?;
            done.push(summary);
        }
        if let Some(registry) = devices {
            let n = registry.devices().count();
            match &self.registry {
                Some(handle) => {
                    handle.replace(registry).map_err(|e| NotApplied::Refused(vec![format!("devices: {e}")]))?;
                    done.push(format!("{n} devices"));
                }
                None => tracing::warn!("The configuration has devices but this edge has no [mqtt]."),
            }
        }
        if let (Some(list), Some(slots)) = (cameras, &self.slots) {
            let mut from_cloud = 0;
            for camera in slots.cameras() {
                let scene = match list.iter().find(|(id, _)| **id == *camera) {
                    Some((_, scene)) => {
                        from_cloud += 1;
                        scene.clone()
                    }
                    None => match self.local.cameras.iter().find(|(id, _)| **id == *camera) {
                        Some((_, scene)) => scene.clone(),
                        None => continue,
                    },
                };
                slots.reconfigure(&camera, scene);
            }
            done.push(format!("analytics of {from_cloud} cameras"));
        }
        self.current = Some(doc);
        Ok(if done.is_empty() { "nothing managed by the cloud".into() } else { done.join(", ") })
    }
}

async fn order(tx: &mpsc::Sender<(Control, ControlReply)>, c: Control) -> Result<String, String> {
    let (reply, rx) = oneshot::channel();
    tx.send((c, reply)).await.map_err(|_| "the devices stage stopped".to_owned())?;
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the devices stage stopped".into()),
        Err(_) => Err("no answer from the devices stage".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u64) -> SiteConfig {
        SiteConfig {
            schema: edge_siteconfig::SITE_CONFIG_SCHEMA,
            version,
            site: uuid::Uuid::nil(),
            issued_at: "2026-11-26T08:00:00Z".parse().unwrap(),
            access: None,
            rules: Some(json!({ "schema": 1, "revision": version, "timezone": "UTC", "rules": [] })),
            cameras: None,
            devices: None,
        }
    }

    #[test]
    fn a_kept_configuration_comes_back_and_a_bad_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("site-config.json");
        assert!(load(&path).is_none(), "nothing kept yet");
        store(&path, &doc(4)).unwrap();
        store(&path, &doc(5)).unwrap();
        let (back, checked) = load(&path).unwrap();
        assert_eq!((back.version, checked.version), (5, 5));
        assert!(checked.rules.is_some());
        assert!(!path.with_extension("json.tmp").exists());

        let mut bad = doc(6);
        bad.rules = Some(json!({ "schema": 1, "rules": [{ "id": "x" }] }));
        store(&path, &bad).unwrap();
        assert!(load(&path).is_none());
        assert!(path.with_extension("json.rejected").exists());
        assert!(!path.exists());

        std::fs::write(&path, b"{ truncated").unwrap();
        assert!(load(&path).is_none());
    }
}
