//! Enrolment: exchanging a one-time claim code for this edge's own credential
//! (`POST /api/edge/enrol`, the one request an edge makes without a token).

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::{Uplink, UplinkBuildError, UplinkConfig, error_chain};

/// Path of the enrolment endpoint.
pub const ENROL_PATH: &str = "/api/edge/enrol";

/// What the edge sends. `Debug` redacts the code.
#[derive(Clone)]
pub struct EnrolRequest {
    /// Base URL of the cloud, e.g. `https://cloud.example.com`.
    pub url: String,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    pub timeout: Duration,
    /// The claim code as typed.
    pub code: String,
    /// The edge's name at the site; `None` lets the cloud pick one.
    pub name: Option<String>,
    pub hardware: String,
    pub version: String,
}

impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolRequest")
            .field("url", &self.url)
            .field("ca_cert", &self.ca_cert)
            .field("code", &"***")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The edge's new identity and credential. `Debug` redacts the token.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Enrolment {
    pub edge_id: Uuid,
    pub tenant_id: Uuid,
    pub site_id: Uuid,
    pub name: String,
    pub token: String,
    /// The cloud's public base URL for edges, when its operator configured one.
    #[serde(default)]
    pub api_url: Option<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("edge_id", &self.edge_id)
            .field("tenant_id", &self.tenant_id)
            .field("site_id", &self.site_id)
            .field("name", &self.name)
            .field("token", &"***")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Why an enrolment did not happen, in words an installer can act on.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Build(#[from] UplinkBuildError),
    #[error("the cloud refused the claim code: it is wrong, expired or already used (ask for a new one)")]
    BadCode,
    #[error("an edge with this name already exists at the site; choose another name")]
    NameTaken,
    #[error("too many enrolment attempts from this address; wait a minute")]
    RateLimited,
    #[error("cannot reach the cloud: {0}")]
    Unavailable(String),
    #[error("the cloud refused the enrolment (http {status}): {body}")]
    Refused { status: u16, body: String },
    #[error("unexpected answer from the cloud: {0}")]
    Protocol(String),
}

#[derive(serde::Deserialize)]
struct Envelope {
    data: Enrolment,
}

/// Enrols this edge: one request, no retries (the installer is waiting).
pub async fn enrol(request: &EnrolRequest) -> Result<Enrolment, EnrolError> {
    let target = Uplink::target_for(&UplinkConfig {
        url: request.url.clone(),
        token: String::new(),
        ca_cert: request.ca_cert.clone(),
        timeout: request.timeout,
    })?;
    let mut body = serde_json::json!({
        "code": request.code.trim(),
        "hardware": request.hardware,
        "version": request.version,
    });
    if let Some(name) = request.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        body["name"] = name.into();
    }
    let response = target
        .client
        .post(format!("{}{ENROL_PATH}", target.base))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| EnrolError::Unavailable(error_chain(&e)))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| EnrolError::Unavailable(error_chain(&e)))?;
    match status {
        200..=299 => {
            let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| EnrolError::Protocol(e.to_string()))?;
            Ok(envelope.data)
        }
        401 | 403 => Err(EnrolError::BadCode),
        409 => Err(EnrolError::NameTaken),
        429 => Err(EnrolError::RateLimited),
        400..=499 => Err(EnrolError::Refused {
            status,
            body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
        }),
        _ => Err(EnrolError::Unavailable(format!("http {status}"))),
    }
}
