//! Enrolment: an installer gives the edge the cloud's address and a one-time claim code
//! (`vigil-edge enrol` or the status page's form); the edge exchanges the code for its own token.
//!
//! State on disk (both written atomically: temporary file, fsync, rename, fsync of the directory):
//! - `cloud.token_file`: the token, mode 0600, nothing else;
//! - `cloud.enrolment`: [`EnrolmentState`] (TOML, no secret): cloud URL, tenant, site, edge id
//!   and name. When it exists it overrides `[site]` and `cloud.url` of the configuration file, which
//!   is never rewritten (so comments, layout and the installer's edits survive).
//!
//! The token file is written first: an enrolment file always has its token next to it.
//! A running daemon applies a new enrolment without a restart: [`Enroller::watch`] notices the file
//! (written by the CLI) and the status page applies its own at once; both retarget the shared
//! [`Uplink`] and set the [`Identity`] the sender stamps on events recorded before enrolment.
//! Neither the code nor the token is ever logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use edge_uplink::{EnrolRequest, Uplink, UplinkConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{Config, ConfigError, Secret};

/// What the edge knows about its enrolment (the `cloud.enrolment` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentState {
    /// Base URL of the cloud the edge enrolled with.
    pub url: String,
    pub tenant: Uuid,
    pub site: Uuid,
    pub edge_id: Uuid,
    pub name: String,
    /// RFC 3339.
    pub enrolled_at: String,
    /// CA certificate (PEM) given at enrolment for a cloud with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

impl EnrolmentState {
    /// Reads the state file; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<EnrolmentState>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

impl Config {
    /// Overrides `[site]`, `cloud.url` and `cloud.ca_cert` with the enrolment file, when
    /// `cloud.enrolment` names one that exists.
    pub fn apply_enrolment(&mut self) -> Result<Option<EnrolmentState>, ConfigError> {
        let Some(path) = &self.cloud.enrolment else { return Ok(None) };
        let state =
            EnrolmentState::load(path).map_err(|e| ConfigError { problems: vec![format!("cloud.enrolment: {e}")] })?;
        if let Some(state) = &state {
            self.tenant = state.tenant;
            self.site = state.site;
            self.cloud.url = state.url.trim_end_matches('/').to_owned();
            if state.ca_cert.is_some() {
                self.cloud.ca_cert.clone_from(&state.ca_cert);
            }
        }
        Ok(state)
    }

    /// Whether this edge runs without a cloud identity until it is enrolled.
    pub fn waiting_for_enrolment(&self) -> bool {
        self.cloud.enrolment.is_some() && self.tenant.is_nil()
    }
}

/// The tenant and site the edge currently uploads for; `None` until enrolled. The sender stamps
/// it on events recorded before the edge had an identity (their tenant is nil).
#[derive(Debug, Clone, Default)]
pub struct Identity(Arc<RwLock<Option<(Uuid, Uuid)>>>);

impl Identity {
    pub fn known(tenant: Uuid, site: Uuid) -> Identity {
        let id = Identity::default();
        if !tenant.is_nil() {
            id.set(tenant, site);
        }
        id
    }

    pub fn get(&self) -> Option<(Uuid, Uuid)> {
        *self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, tenant: Uuid, site: Uuid) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((tenant, site));
    }
}

/// Writes `bytes` to `path` atomically with `mode`: a temporary file in the same directory,
/// fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| std::io::Error::other("no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Where enrolment writes (from the configuration).
#[derive(Debug, Clone)]
pub struct EnrolPaths {
    pub enrolment: PathBuf,
    pub token_file: PathBuf,
}

impl EnrolPaths {
    pub fn of(cfg: &Config) -> Option<EnrolPaths> {
        Some(EnrolPaths { enrolment: cfg.cloud.enrolment.clone()?, token_file: cfg.cloud.token_file.clone()? })
    }
}

/// What the installer typed. `Debug` redacts the code.
#[derive(Clone)]
pub struct Claim {
    pub url: String,
    pub code: String,
    pub name: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("url", &self.url).field("code", &"***").field("name", &self.name).finish()
    }
}

/// This box, for the cloud's records.
fn hardware() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{} {}, {cpus} cpus", std::env::consts::ARCH, std::env::consts::OS)
}

/// Exchanges the claim code with the cloud and saves the token and the state. The error is a
/// sentence for the installer.
pub async fn enrol_and_save(paths: &EnrolPaths, claim: &Claim, timeout: Duration) -> Result<EnrolmentState, String> {
    let url = claim.url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("the cloud address {url:?} must start with https:// (or http://)"));
    }
    let request = EnrolRequest {
        url: url.clone(),
        ca_cert: claim.ca_cert.clone(),
        timeout,
        code: claim.code.clone(),
        name: claim.name.clone(),
        hardware: hardware(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let enrolled = edge_uplink::enrol(&request).await.map_err(|e| e.to_string())?;
    let state = EnrolmentState {
        url: enrolled.api_url.clone().unwrap_or(url),
        tenant: enrolled.tenant_id,
        site: enrolled.site_id,
        edge_id: enrolled.edge_id,
        name: enrolled.name.clone(),
        enrolled_at: chrono::Utc::now().to_rfc3339(),
        ca_cert: claim.ca_cert.clone(),
    };
    let text = format!(
        "# Written by vigil-edge at enrolment; overrides [site] and cloud.url of the configuration.\n{}",
        toml::to_string(&state).map_err(|e| format!("cannot encode the enrolment: {e}"))?
    );
    write_atomic(&paths.token_file, format!("{}\n", enrolled.token).as_bytes(), 0o600)
        .map_err(|e| format!("cannot write the token file {}: {e}", paths.token_file.display()))?;
    write_atomic(&paths.enrolment, text.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write the enrolment file {}: {e}", paths.enrolment.display()))?;
    tracing::info!(edge = %state.edge_id, name = %state.name, tenant = %state.tenant, site = %state.site, cloud = %state.url, "Enrolled.");
    Ok(state)
}

/// Enrolment inside the running daemon: the status page's form and the file watcher.
#[derive(Debug, Clone)]
pub struct Enroller {
    pub paths: EnrolPaths,
    /// `cloud.ca_cert` of the configuration (an enrolment may name its own).
    pub ca_cert: Option<PathBuf>,
    pub timeout: Duration,
    pub uplink: Uplink,
    pub identity: Identity,
    /// The enrolment in use, if any.
    pub current: Arc<RwLock<Option<EnrolmentState>>>,
}

impl Enroller {
    pub fn current(&self) -> Option<EnrolmentState> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Enrols now (the status page) and switches the daemon to the new identity.
    pub async fn enrol(&self, claim: Claim) -> Result<EnrolmentState, String> {
        let claim = Claim { ca_cert: claim.ca_cert.or_else(|| self.ca_cert.clone()), ..claim };
        let state = enrol_and_save(&self.paths, &claim, self.timeout).await?;
        self.apply(&state)?;
        Ok(state)
    }

    /// Points the uplink at `state` with the token from the token file.
    fn apply(&self, state: &EnrolmentState) -> Result<(), String> {
        let token = std::fs::read_to_string(&self.paths.token_file)
            .map_err(|e| format!("cannot read the token file {}: {e}", self.paths.token_file.display()))?;
        let token = Secret::new(token.trim().to_owned());
        if token.expose().is_empty() {
            return Err(format!("the token file {} is empty", self.paths.token_file.display()));
        }
        self.uplink
            .retarget(&UplinkConfig {
                url: state.url.clone(),
                token: token.expose().to_owned(),
                ca_cert: state.ca_cert.clone().or_else(|| self.ca_cert.clone()),
                timeout: self.timeout,
            })
            .map_err(|e| e.to_string())?;
        self.identity.set(state.tenant, state.site);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state.clone());
        tracing::info!(edge = %state.edge_id, name = %state.name, tenant = %state.tenant, site = %state.site, cloud = %state.url, "Using the new enrolment; spooled events are sent with it.");
        Ok(())
    }

    /// Applies an enrolment written by `vigil-edge enrol` while the daemon runs (polls the file).
    pub async fn watch(self, cancel: CancellationToken) {
        let mut warned = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            let state = match EnrolmentState::load(&self.paths.enrolment) {
                Ok(Some(state)) => state,
                Ok(None) => continue,
                Err(error) => {
                    if !warned {
                        tracing::warn!(%error, "Cannot read the enrolment file.");
                        warned = true;
                    }
                    continue;
                }
            };
            if self.current().is_some_and(|c| c.edge_id == state.edge_id) {
                continue;
            }
            match self.apply(&state) {
                Ok(()) => warned = false,
                Err(error) if !warned => {
                    tracing::warn!(%error, "Cannot apply the new enrolment yet.");
                    warned = true;
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/edge.token");
        write_atomic(&path, b"one\n", 0o600).unwrap();
        write_atomic(&path, b"two\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn the_enrolment_file_overrides_site_and_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("enrolment.toml");
        let token = dir.path().join("edge.token");
        let text = crate::DEFAULT_CONFIG
            .replace("tenant = \"00000000-0000-0000-0000-000000000000\"\n", "")
            .replace("site = \"00000000-0000-0000-0000-000000000000\"\n", "")
            .replace("url = \"https://vigil.example.com\"\n", "")
            .replace(
                "token_file = \"/etc/vigil/edge.token\"",
                &format!("token_file = {:?}", token.display().to_string()),
            )
            .replace(
                "enrolment = \"/var/lib/vigil/enrolment.toml\"",
                &format!("enrolment = {:?}", file.display().to_string()),
            );
        let mut cfg = Config::from_toml(&text).unwrap();
        assert!(cfg.waiting_for_enrolment());
        assert_eq!(cfg.apply_enrolment().unwrap(), None);
        let state = EnrolmentState {
            url: "https://cloud.example.com/".into(),
            tenant: Uuid::now_v7(),
            site: Uuid::now_v7(),
            edge_id: Uuid::now_v7(),
            name: "hq".into(),
            enrolled_at: "2026-01-01T00:00:00Z".into(),
            ca_cert: None,
        };
        write_atomic(&file, toml::to_string(&state).unwrap().as_bytes(), 0o644).unwrap();
        assert_eq!(cfg.apply_enrolment().unwrap(), Some(state.clone()));
        assert_eq!(
            (cfg.tenant, cfg.site, cfg.cloud.url.as_str()),
            (state.tenant, state.site, "https://cloud.example.com")
        );
        assert!(!cfg.waiting_for_enrolment());
        // Without cloud.enrolment, [site] and cloud.url are required.
        let err = Config::from_toml(&text.replace(&format!("enrolment = {:?}\n", file.display().to_string()), ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("site.tenant") && err.contains("cloud.url"), "{err}");
    }

    #[test]
    fn claims_do_not_print_the_code() {
        let claim = Claim { url: "https://c".into(), code: "ABCD-EFGH-JKMN".into(), name: None, ca_cert: None };
        assert!(!format!("{claim:?}").contains("ABCD"));
    }
}
