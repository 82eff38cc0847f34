//! Uploads event batches to the cloud.
//!
//! Architecture invariant: this crate knows nothing about sled or the spool; it turns an
//! [`EventBatch`] into one HTTPS request and the answer into a checked [`BatchAck`] or a typed
//! [`UplinkError`] the caller can act on (retry later, split, or stop and tell an operator).

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod enrol;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use enrol::{ENROL_PATH, EnrolError, EnrolRequest, Enrolment, enrol};
use vigil_proto::{BatchAck, CBOR_CONTENT_TYPE, EventBatch, INGEST_EVENTS_PATH, SCHEMA_VERSION, codec};

/// Where and how to reach the cloud.
#[derive(Clone)]
pub struct UplinkConfig {
    /// Base URL of the cloud, e.g. `https://cloud.example.com`.
    pub url: String,
    /// This edge's bearer token.
    pub token: String,
    /// Extra CA certificate (PEM) to trust, for a cloud with a private CA.
    pub ca_cert: Option<PathBuf>,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for UplinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UplinkConfig")
            .field("url", &self.url)
            .field("token", &"***")
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the uplink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UplinkBuildError {
    /// The configured CA file could not be read or holds no certificate.
    #[error("cannot load cloud ca certificate {path}: {message}")]
    Ca { path: PathBuf, message: String },
    /// The URL is not an absolute http(s) URL.
    #[error("invalid cloud url {url:?}: {message}")]
    Url { url: String, message: String },
    /// The HTTP client could not be created.
    #[error("cannot build http client")]
    Client(#[source] reqwest::Error),
}

/// Why one upload did not produce a usable acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// Network trouble, timeout or a 5xx: the cloud may be down; retry with backoff.
    #[error("cloud unreachable: {0}")]
    Unavailable(String),
    /// The cloud does not accept this edge's credential (401/403): retrying will not help until an
    /// operator re-enrols the edge, but events stay spooled.
    #[error("cloud refused this edge's credential (http {0})")]
    Unauthorized(u16),
    /// The batch is too large for the cloud (413): send fewer events per request.
    #[error("batch too large for the cloud")]
    TooLarge,
    /// The cloud refused the batch as a whole (other 4xx); the body explains.
    #[error("cloud refused the batch (http {status}): {body}")]
    Refused { status: u16, body: String },
    /// The answer does not match the request (wrong length, ids out of order, undecodable).
    #[error("invalid acknowledgement from the cloud: {0}")]
    Protocol(String),
    /// The edge has no cloud credential yet: it must be enrolled (events stay spooled).
    #[error("this edge is not enrolled with a cloud yet")]
    NotEnrolled,
}

impl UplinkError {
    /// Whether trying the same batch again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UplinkError::Unavailable(_)
                | UplinkError::Unauthorized(_)
                | UplinkError::Protocol(_)
                | UplinkError::NotEnrolled
        )
    }
}

/// The HTTP client for this edge's cloud. Clones share one target, so [`Uplink::retarget`] (a new
/// enrolment) moves every user of the uplink to the new cloud and credential at once; an uplink
/// made by [`Uplink::unenrolled`] answers [`UplinkError::NotEnrolled`] until then.
#[derive(Debug, Clone)]
pub struct Uplink {
    target: Arc<RwLock<Option<Arc<Target>>>>,
}

/// One cloud and credential.
struct Target {
    client: reqwest::Client,
    base: String,
    endpoint: String,
    token: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("base", &self.base).field("token", &"***").finish()
    }
}

/// A command the cloud queued for this edge's site (`GET /api/edge/commands`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RemoteCommand {
    pub id: String,
    /// The device's name at the site: a device id of the registry, or a door id.
    pub device: String,
    /// `door`, `reader`, `lock`, `sensor` or `other`.
    pub kind: String,
    pub command: String,
    #[serde(default)]
    pub params: serde_json::Value,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

/// Path of the edge's command queue.
pub const EDGE_COMMANDS_PATH: &str = "/api/edge/commands";
/// Path of the media uploads.
pub const EDGE_MEDIA_PATH: &str = "/api/edge/media";
/// The cloud assembles and verifies (reads back) the whole object before answering.
const MEDIA_COMPLETE_TIMEOUT: Duration = Duration::from_secs(300);

/// A clip or snapshot the edge is about to upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MediaAnnounce {
    /// `clips/<camera>/<name>.mp4` or `snapshots/<camera>/<name>.jpg`.
    pub key: String,
    pub content_type: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// The event that references it.
    pub event: Option<String>,
}

/// Where an upload stands in the cloud.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MediaUploadState {
    pub id: String,
    pub part_size: u64,
    pub parts: u64,
    /// Part numbers the cloud holds.
    pub received: Vec<u64>,
    pub complete: bool,
}

impl Uplink {
    fn target_for(cfg: &UplinkConfig) -> Result<Target, UplinkBuildError> {
        let base = cfg.url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(UplinkBuildError::Url {
                url: cfg.url.clone(),
                message: "must start with https:// or http://".into(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("vigil-edge/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.ca_cert {
            let ca_err = |message: String| UplinkBuildError::Ca { path: path.clone(), message };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no certificate in file".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(UplinkBuildError::Client)?;
        Ok(Target {
            client,
            base: base.to_owned(),
            endpoint: format!("{base}{INGEST_EVENTS_PATH}"),
            token: cfg.token.clone(),
        })
    }

    /// An uplink for `cfg`.
    pub fn build(cfg: &UplinkConfig) -> Result<Uplink, UplinkBuildError> {
        let target = Self::target_for(cfg)?;
        Ok(Uplink { target: Arc::new(RwLock::new(Some(Arc::new(target)))) })
    }

    /// An uplink with no cloud yet: every call answers [`UplinkError::NotEnrolled`] until
    /// [`Uplink::retarget`].
    pub fn unenrolled() -> Uplink {
        Uplink { target: Arc::new(RwLock::new(None)) }
    }

    /// Points this uplink and all its clones at `cfg` (after an enrolment). Requests in flight
    /// finish with the previous target.
    pub fn retarget(&self, cfg: &UplinkConfig) -> Result<(), UplinkBuildError> {
        let target = Self::target_for(cfg)?;
        *self.target.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(target));
        Ok(())
    }

    /// Whether the uplink has a cloud and credential.
    pub fn is_enrolled(&self) -> bool {
        self.target.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    fn current(&self) -> Result<Arc<Target>, UplinkError> {
        self.target.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone().ok_or(UplinkError::NotEnrolled)
    }

    /// Long-polls the commands queued for this edge's site (at most `wait`, up to 30 s).
    pub async fn fetch_commands(&self, wait: Duration) -> Result<Vec<RemoteCommand>, UplinkError> {
        let secs = wait.as_secs().min(30);
        let t = self.current()?;
        let response = t
            .client
            .get(format!("{}{EDGE_COMMANDS_PATH}?wait={secs}", t.base))
            .bearer_auth(&t.token)
            .timeout(Duration::from_secs(secs + 15))
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        let bytes = Self::ok_body(response).await?;
        let envelope: Envelope<Vec<RemoteCommand>> =
            serde_json::from_slice(&bytes).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        Ok(envelope.data)
    }

    /// Reports what the edge did with a command: `done`, `failed` or `expired`, and a sentence.
    /// `Refused` with 404 means the cloud no longer waits for it (settled already, or unknown).
    pub async fn ack_command(&self, id: &str, status: &str, result: &str) -> Result<(), UplinkError> {
        let body = serde_json::json!({ "status": status, "result": result }).to_string();
        self.post_json(&format!("{EDGE_COMMANDS_PATH}/{id}/ack"), body.into_bytes()).await.map(drop)
    }

    /// Long-polls for a configuration newer than `after` (at most `wait`, up to 30 s): the document,
    /// or `None` when the version the edge has is still the site's current one.
    pub async fn fetch_config(
        &self,
        after: u64,
        wait: Duration,
    ) -> Result<Option<vigil_proto::SiteConfig>, UplinkError> {
        let secs = wait.as_secs().min(30);
        let t = self.current()?;
        let response = t
            .client
            .get(format!("{}{}?after={after}&wait={secs}", t.base, vigil_proto::config::EDGE_CONFIG_PATH))
            .bearer_auth(&t.token)
            .timeout(Duration::from_secs(secs + 15))
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let bytes = Self::ok_body(response).await?;
        let envelope: Envelope<vigil_proto::SiteConfig> =
            serde_json::from_slice(&bytes).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        Ok(Some(envelope.data))
    }

    /// Reports what the edge did with a configuration version.
    pub async fn report_config(&self, report: &vigil_proto::ConfigReport) -> Result<(), UplinkError> {
        let body = serde_json::to_vec(report).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        self.post_json(vigil_proto::config::EDGE_CONFIG_REPORT_PATH, body).await.map(drop)
    }

    /// Reports what the rule engine did (`POST /api/edge/rule-executions`, `{executions: [...]}`).
    pub async fn report_rule_executions(&self, executions: &[serde_json::Value]) -> Result<(), UplinkError> {
        let body = serde_json::json!({ "executions": executions }).to_string();
        self.post_json("/api/edge/rule-executions", body.into_bytes()).await.map(drop)
    }

    /// Reports the edge's health (`POST /api/edge/heartbeat`).
    pub async fn heartbeat(&self, health: &serde_json::Value) -> Result<(), UplinkError> {
        self.post_json("/api/edge/heartbeat", health.to_string().into_bytes()).await.map(drop)
    }

    /// `POST <cloud><path>` with a JSON body and the edge's token; the response body when 2xx.
    async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, UplinkError> {
        let t = self.current()?;
        let response = t
            .client
            .post(format!("{}{path}", t.base))
            .bearer_auth(&t.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        Self::ok_body(response).await
    }

    async fn ok_body(response: reqwest::Response) -> Result<Vec<u8>, UplinkError> {
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        match status {
            200..=299 => Ok(bytes.to_vec()),
            401 | 403 => Err(UplinkError::Unauthorized(status)),
            413 => Err(UplinkError::TooLarge),
            400..=499 => {
                let body = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
                Err(UplinkError::Refused { status, body })
            }
            _ => Err(UplinkError::Unavailable(format!("http {status}"))),
        }
    }

    /// Announces a clip or snapshot to upload (`POST /api/edge/media`): the upload's state, the
    /// same upload when announced again.
    pub async fn announce_media(&self, announce: &MediaAnnounce) -> Result<MediaUploadState, UplinkError> {
        let body = serde_json::to_vec(announce).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        let bytes = self.post_json(EDGE_MEDIA_PATH, body).await?;
        let envelope: Envelope<MediaUploadState> =
            serde_json::from_slice(&bytes).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        Ok(envelope.data)
    }

    /// Sends part `part` of upload `id`: `len` bytes from `body`, a stream the caller may pace
    /// (the bandwidth cap). `timeout` bounds the whole request.
    pub async fn put_media_part<S>(
        &self,
        id: &str,
        part: u64,
        len: u64,
        body: S,
        timeout: Duration,
    ) -> Result<(), UplinkError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
    {
        let t = self.current()?;
        let response = t
            .client
            .put(format!("{}{EDGE_MEDIA_PATH}/{id}/part?n={part}", t.base))
            .bearer_auth(&t.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .timeout(timeout)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        Self::ok_body(response).await.map(drop)
    }

    /// Asks the cloud to assemble and verify upload `id` (`409`: parts missing, `422`: the stored
    /// object does not match the announce; both as [`UplinkError::Refused`]).
    pub async fn complete_media(&self, id: &str) -> Result<MediaUploadState, UplinkError> {
        let t = self.current()?;
        let response = t
            .client
            .post(format!("{}{EDGE_MEDIA_PATH}/{id}/complete", t.base))
            .bearer_auth(&t.token)
            .timeout(MEDIA_COMPLETE_TIMEOUT)
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        let bytes = Self::ok_body(response).await?;
        let envelope: Envelope<MediaUploadState> =
            serde_json::from_slice(&bytes).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        Ok(envelope.data)
    }

    /// Encodes a batch for [`Uplink::send_encoded`] (the caller learns its size first).
    pub fn encode(batch: &EventBatch) -> Result<Vec<u8>, UplinkError> {
        codec::encode(batch).map_err(|e| UplinkError::Protocol(e.to_string()))
    }

    /// Sends one batch and returns the cloud's acknowledgement, checked against the batch.
    pub async fn send(&self, batch: &EventBatch) -> Result<BatchAck, UplinkError> {
        let body = Self::encode(batch)?;
        self.send_encoded(batch, body).await
    }

    /// Sends `body`, the encoding of `batch` (see [`Uplink::encode`]).
    pub async fn send_encoded(&self, batch: &EventBatch, body: Vec<u8>) -> Result<BatchAck, UplinkError> {
        let t = self.current()?;
        let response = t
            .client
            .post(&t.endpoint)
            .bearer_auth(&t.token)
            .header(reqwest::header::CONTENT_TYPE, CBOR_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| UplinkError::Unavailable(error_chain(&e)))?;
        match status {
            200 => {}
            401 | 403 => return Err(UplinkError::Unauthorized(status)),
            413 => return Err(UplinkError::TooLarge),
            400..=499 => {
                let body = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
                return Err(UplinkError::Refused { status, body });
            }
            _ => return Err(UplinkError::Unavailable(format!("http {status}"))),
        }
        let ack: BatchAck = codec::decode(&bytes).map_err(|e| UplinkError::Protocol(e.to_string()))?;
        check_ack(batch, &ack)?;
        Ok(ack)
    }
}

/// An acknowledgement must answer every event of the batch, in order.
pub fn check_ack(batch: &EventBatch, ack: &BatchAck) -> Result<(), UplinkError> {
    if ack.schema != SCHEMA_VERSION {
        return Err(UplinkError::Protocol(format!("schema {} in ack, expected {SCHEMA_VERSION}", ack.schema)));
    }
    if ack.results.len() != batch.events.len() {
        return Err(UplinkError::Protocol(format!("{} results for {} events", ack.results.len(), batch.events.len())));
    }
    if let Some((i, _)) = batch.events.iter().zip(&ack.results).enumerate().find(|(_, (e, r))| e.id != r.id) {
        return Err(UplinkError::Protocol(format!("result {i} is for another event")));
    }
    Ok(())
}

/// The error and its sources on one line (reqwest hides the useful part in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use vigil_proto::{AckStatus, EventAck, Timestamp};

    use super::*;

    fn batch(ids: &[u128]) -> EventBatch {
        let events = ids
            .iter()
            .map(|&n| vigil_proto::Event {
                id: Uuid::from_u128(n),
                tenant: Uuid::nil(),
                site: Uuid::nil(),
                zone: None,
                source: vigil_proto::Source { kind: vigil_proto::SourceKind::Edge, id: "e".into() },
                kind: vigil_proto::EventKind::DeviceStatus,
                occurred_at: Timestamp(0),
                payload: vigil_proto::Payload::DeviceStatus(vigil_proto::DeviceStatus { online: true, detail: None }),
            })
            .collect();
        EventBatch { schema: SCHEMA_VERSION, sent_at: Timestamp(0), events }
    }

    fn ack(ids: &[u128]) -> BatchAck {
        BatchAck {
            schema: SCHEMA_VERSION,
            results: ids.iter().map(|&n| EventAck { id: Uuid::from_u128(n), status: AckStatus::Stored }).collect(),
        }
    }

    #[test]
    fn ack_must_match_the_batch() {
        assert!(check_ack(&batch(&[1, 2]), &ack(&[1, 2])).is_ok());
        assert!(check_ack(&batch(&[1, 2]), &ack(&[1])).is_err());
        assert!(check_ack(&batch(&[1, 2]), &ack(&[2, 1])).is_err());
        let mut wrong_schema = ack(&[1]);
        wrong_schema.schema += 1;
        assert!(check_ack(&batch(&[1]), &wrong_schema).is_err());
    }

    #[test]
    fn config_errors_are_clear() {
        let cfg = |url: &str, ca: Option<&str>| UplinkConfig {
            url: url.into(),
            token: "secret".into(),
            ca_cert: ca.map(PathBuf::from),
            timeout: Duration::from_secs(1),
        };
        assert!(Uplink::build(&cfg("ftp://x", None)).unwrap_err().to_string().contains("https://"));
        let err = Uplink::build(&cfg("https://x", Some("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().starts_with("cannot load cloud ca certificate"), "{err}");
        assert!(!format!("{:?}", cfg("https://x", None)).contains("secret"), "token must not be debug-printed");
    }

    #[tokio::test]
    async fn an_unenrolled_uplink_says_so_until_retargeted_and_clones_follow() {
        let up = Uplink::unenrolled();
        let clone = up.clone();
        assert!(!up.is_enrolled());
        let err = clone.send(&batch(&[1])).await.unwrap_err();
        assert!(matches!(err, UplinkError::NotEnrolled) && err.is_retryable(), "{err:?}");
        assert!(matches!(clone.heartbeat(&serde_json::json!({})).await, Err(UplinkError::NotEnrolled)));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = UplinkConfig {
            url: format!("http://127.0.0.1:{port}"),
            token: "t".into(),
            ca_cert: None,
            timeout: Duration::from_secs(2),
        };
        up.retarget(&cfg).unwrap();
        assert!(clone.is_enrolled());
        assert!(matches!(clone.send(&batch(&[1])).await, Err(UplinkError::Unavailable(_))));
        assert!(up.retarget(&UplinkConfig { url: "ftp://x".into(), ..cfg }).is_err());
        assert!(clone.is_enrolled(), "a bad target leaves the previous one");
    }

    #[tokio::test]
    async fn a_dead_cloud_is_retryable_unavailability() {
        // Bind then drop a listener so the port is closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let up = Uplink::build(&UplinkConfig {
            url: format!("http://127.0.0.1:{port}"),
            token: "t".into(),
            ca_cert: None,
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        let err = up.send(&batch(&[1])).await.unwrap_err();
        assert!(matches!(err, UplinkError::Unavailable(_)), "{err:?}");
        assert!(err.is_retryable());
    }
}
