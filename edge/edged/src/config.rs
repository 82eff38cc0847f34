//! The edge's one TOML file: parsed raw with serde, then validated into [`Config`].
//!
//! Every problem in a file is reported at once, and file paths are checked separately
//! ([`Config::check_files`]) so the shipped default can be validated anywhere.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use edge_core::ClassRule;
use edge_video::{CameraConfig, RtspTransport};
use serde::Deserialize;
use uuid::Uuid;
use vigil_proto::EventKind;

/// The default configuration, shipped in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../edged.toml");

/// Slowest upload cap: an 8 MiB media part still takes under 10 minutes.
pub const MIN_UPLOAD_KBPS: u64 = 128;
/// Fastest upload cap accepted (10 Gbit/s; above, leave it unlimited).
pub const MAX_UPLOAD_KBPS: u64 = 10_000_000;

/// Environment variable that holds the edge's cloud token (takes precedence over `token_file`).
pub const TOKEN_ENV: &str = "VIGIL_EDGE_TOKEN";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Absent (or partly) on an edge enrolled with a claim code: the enrolment file supplies it.
    #[serde(default)]
    site: RawSite,
    cloud: RawCloud,
    spool: RawSpool,
    #[serde(default)]
    status: RawStatus,
    detector: RawDetector,
    #[serde(default)]
    cameras: Vec<RawCamera>,
    /// Embedded MQTT broker for site devices (absent: no devices).
    #[serde(default)]
    mqtt: Option<RawMqtt>,
    /// Door access decisions (needs `[mqtt]`).
    #[serde(default)]
    access: Option<RawAccess>,
    /// Automation rules.
    #[serde(default)]
    rules: Option<RawRules>,
    /// Clips and snapshots.
    #[serde(default)]
    media: Option<RawMedia>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    /// Root of `clips/` and `snapshots/` (default: `media` beside the spool directory).
    dir: Option<PathBuf>,
    #[serde(default = "default_clip_pre")]
    clip_pre_secs: u64,
    #[serde(default = "default_clip_post")]
    clip_post_secs: u64,
    #[serde(default = "default_media_max_mb")]
    max_mb: u64,
    #[serde(default = "default_media_reserve_mb")]
    reserve_mb: u64,
    #[serde(default = "yes")]
    snapshots: bool,
    /// Upload finished clips and snapshots to the cloud.
    #[serde(default = "yes")]
    upload: bool,
}

fn default_clip_pre() -> u64 {
    5
}
fn default_clip_post() -> u64 {
    10
}
fn default_media_max_mb() -> u64 {
    4096
}
fn default_media_reserve_mb() -> u64 {
    512
}
fn yes() -> bool {
    true
}

/// `[cameras.record]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    /// Default: on when the camera has a `record_url` and `[media]` exists.
    enabled: Option<bool>,
    /// Encoded video kept in memory for clips' pre-roll.
    #[serde(default = "default_preroll")]
    preroll_secs: u64,
    /// Continuous recording in segments (off by default).
    #[serde(default)]
    continuous: bool,
    #[serde(default = "default_segment_secs")]
    segment_secs: u64,
    #[serde(default = "default_retain_hours")]
    retain_hours: u64,
    #[serde(default = "default_record_max_gb")]
    max_gb: u64,
}

impl Default for RawRecord {
    fn default() -> Self {
        RawRecord {
            enabled: None,
            preroll_secs: default_preroll(),
            continuous: false,
            segment_secs: default_segment_secs(),
            retain_hours: default_retain_hours(),
            max_gb: default_record_max_gb(),
        }
    }
}

fn default_preroll() -> u64 {
    10
}
fn default_segment_secs() -> u64 {
    60
}
fn default_retain_hours() -> u64 {
    72
}
fn default_record_max_gb() -> u64 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    /// Rule document (TOML or JSON by extension).
    file: PathBuf,
    /// Execution history (JSON lines); default `rules-history.jsonl` beside the spool directory.
    history: Option<PathBuf>,
    /// Priority of lockdowns that rules start (0-255; panels usually use higher).
    #[serde(default = "default_rule_lockdown_priority")]
    lockdown_priority: u8,
}

/// Priority of lockdowns started by rules when `[rules]` does not say.
pub const DEFAULT_RULE_LOCKDOWN_PRIORITY: u8 = 10;

fn default_rule_lockdown_priority() -> u8 {
    DEFAULT_RULE_LOCKDOWN_PRIORITY
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    /// LAN listener for devices; devices reach the broker only through it.
    #[serde(default = "default_mqtt_listen")]
    listen: String,
    /// Device registry (JSON: site segment, devices with zone, kind and password hash).
    devices: PathBuf,
    #[serde(default = "default_mqtt_max_payload")]
    max_payload: usize,
    #[serde(default = "default_mqtt_ack_timeout_ms")]
    ack_timeout_ms: u64,
    /// A device silent this long is marked offline (devices report status or telemetry more often).
    #[serde(default = "default_mqtt_heartbeat_timeout_secs")]
    heartbeat_timeout_secs: u64,
    /// MQTTS listener (same auth and ACLs); needs `tls_cert` and `tls_key` (PEM).
    tls_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

fn default_mqtt_listen() -> String {
    "0.0.0.0:1883".into()
}
fn default_mqtt_max_payload() -> usize {
    4096
}
fn default_mqtt_ack_timeout_ms() -> u64 {
    3000
}
fn default_mqtt_heartbeat_timeout_secs() -> u64 {
    180
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    /// Site document (JSON, or TOML by extension): people, credentials, groups, doors, schedules.
    site_document: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    tenant: Option<String>,
    site: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    /// Absent on an edge enrolled with a claim code (the enrolment file supplies it).
    url: Option<String>,
    token_file: Option<PathBuf>,
    /// Enrolment state file (`vigil-edge enrol` or the status page writes it); when it exists it
    /// overrides `[site]` and `cloud.url`. Needs `token_file` (where enrolment writes the token).
    enrolment: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: u64,
    #[serde(default = "default_batch_max")]
    batch_max: usize,
    #[serde(default = "default_retry_min_ms")]
    retry_min_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    retry_max_ms: u64,
    /// Seconds between heartbeats (health reports) to the cloud.
    #[serde(default = "default_heartbeat_secs")]
    heartbeat_secs: u64,
    /// Pull the site's configuration (doors, people, credentials, rules) from the cloud.
    #[serde(default = "yes")]
    config_sync: bool,
    /// Where the last configuration from the cloud is kept (default `site-config.json` beside the
    /// spool directory); the edge boots from it when the cloud is unreachable.
    config_state: Option<PathBuf>,
    /// Upload bandwidth cap in kilobits per second for events and media together; 0 = unlimited.
    #[serde(default)]
    max_upload_kbps: u64,
}

fn default_heartbeat_secs() -> u64 {
    60
}

fn default_timeout_secs() -> u64 {
    15
}
fn default_batch_max() -> usize {
    500
}
fn default_retry_min_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    path: PathBuf,
    /// Size bound in MiB; detections, telemetry and clips are evicted (oldest first) beyond it.
    #[serde(default = "default_spool_max_mb")]
    max_mb: u64,
    /// Free disk space (MiB) kept for alarms and access events: below it, detections, telemetry
    /// and clips are evicted and no new ones are stored. A quarter of it (at least 1 MiB) is never
    /// written at all. 0 turns disk checks off.
    #[serde(default = "default_spool_reserve_mb")]
    reserve_mb: u64,
}

fn default_spool_reserve_mb() -> u64 {
    64
}

fn default_spool_max_mb() -> u64 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    #[serde(default = "default_status_listen")]
    listen: String,
}

impl Default for RawStatus {
    fn default() -> Self {
        RawStatus { listen: default_status_listen() }
    }
}

fn default_status_listen() -> String {
    "127.0.0.1:8091".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetector {
    onnxruntime: PathBuf,
    /// `yolo` (a YOLO v8/v11 ONNX export; `classes` map its classes to events) or `blazepose` (the
    /// bundled, Apache-2.0 person detector built at setup; reports class 0 `person`).
    #[serde(default = "default_kind")]
    kind: String,
    model: PathBuf,
    /// `blazepose`: tile side and overlap in pixels, and whether to add a whole-frame pass.
    #[serde(default = "default_tile")]
    tile: u32,
    #[serde(default = "default_overlap")]
    overlap: u32,
    #[serde(default)]
    full_frame: bool,
    /// `blazepose`: a body leaning further than this from upright, in degrees, is not a person
    /// (180 keeps every pose, for ceiling or fisheye cameras). Default: `BlazeConfig`'s (60).
    max_tilt_degrees: Option<f32>,
    /// The periodic whole-frame look (`motion.full_frame_secs`) in this many parts, one part at a
    /// time; default 4 for `blazepose` (its whole frame is many tiles), 1 for `yolo`.
    full_frame_parts: Option<u32>,
    input_size: Option<u32>,
    #[serde(default = "default_score")]
    score_threshold: f32,
    #[serde(default = "default_iou")]
    iou_threshold: f32,
    #[serde(default = "default_threads")]
    threads: usize,
    #[serde(default = "default_queue")]
    queue: usize,
    /// Inference workers (each its own ONNX session), shared by all cameras.
    #[serde(default = "default_workers")]
    workers: usize,
    /// `tracks` (object lifecycle events) or `frames` (one event per analysed frame with objects).
    #[serde(default = "default_events")]
    events: String,
    /// Cadence of `object.updated` events per followed object, seconds (0 = none).
    #[serde(default)]
    update_secs: u64,
    /// Smallest side, in pixels, of a motion-region crop given to the detector.
    #[serde(default = "default_min_crop")]
    min_crop: u32,
    /// An object whose box stays put this long is stationary: it is looked for only every
    /// `stationary_check_secs` unless motion brings the detector there, and it ends only after
    /// `stationary_max_age_secs` unseen by those checks (Frigate's `detect.stationary`).
    #[serde(default = "default_stationary_secs")]
    stationary_secs: f64,
    #[serde(default = "default_stationary_check_secs")]
    stationary_check_secs: f64,
    #[serde(default = "default_stationary_max_age_secs")]
    stationary_max_age_secs: f64,
    /// Required for `yolo`; `blazepose` defaults to `[{ id = 0, label = "person", kind = "detection.person" }]`.
    #[serde(default)]
    classes: Vec<RawClass>,
}

fn default_kind() -> String {
    "yolo".into()
}
fn default_tile() -> u32 {
    192
}
fn default_overlap() -> u32 {
    64
}
fn default_workers() -> usize {
    1
}
fn default_events() -> String {
    "tracks".into()
}
fn default_min_crop() -> u32 {
    160
}
fn default_stationary_secs() -> f64 {
    3.0
}
fn default_stationary_check_secs() -> f64 {
    1.0
}
fn default_stationary_max_age_secs() -> f64 {
    10.0
}

fn default_score() -> f32 {
    0.25
}
fn default_iou() -> f32 {
    0.45
}
fn default_threads() -> usize {
    1
}
fn default_queue() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    id: u32,
    label: String,
    kind: String,
    min_score: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: String,
    url: String,
    zone: Option<String>,
    #[serde(default = "default_fps")]
    analyze_fps: f64,
    #[serde(default = "default_transport")]
    transport: String,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default = "default_stall_secs")]
    stall_timeout_secs: u64,
    /// Main stream for recording (the detect stream `url` is usually the camera's sub-stream).
    record_url: Option<String>,
    #[serde(default)]
    motion: edge_siteconfig::scene::RawMotion,
    #[serde(default)]
    filters: edge_siteconfig::scene::RawFilters,
    #[serde(default)]
    lines: Vec<edge_siteconfig::scene::RawLine>,
    #[serde(default)]
    zones: Vec<edge_siteconfig::scene::RawZone>,
    #[serde(default)]
    record: RawRecord,
}

fn default_fps() -> f64 {
    2.0
}
fn default_transport() -> String {
    "tcp".into()
}
fn default_stall_secs() -> u64 {
    15
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub tenant: Uuid,
    pub site: Uuid,
    pub cloud: CloudConfig,
    pub spool_path: PathBuf,
    pub spool_max_bytes: u64,
    /// Free disk kept for alarms and access (see `[spool] reserve_mb`).
    pub spool_reserve_bytes: u64,
    pub status_listen: SocketAddr,
    pub detector: DetectorConfig,
    pub cameras: Vec<CameraEntry>,
    pub mqtt: Option<MqttSettings>,
    pub access: Option<AccessSettings>,
    pub rules: Option<RulesSettings>,
    pub media: Option<crate::media::MediaSettings>,
}

/// A camera's recording, validated.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub url: String,
    pub preroll: Duration,
    /// `(segment length, retention age, retention bytes)` when recording continuously.
    pub continuous: Option<(Duration, Duration, u64)>,
}

/// `[mqtt]`, validated.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub listen: SocketAddr,
    pub devices: PathBuf,
    pub max_payload: usize,
    pub ack_timeout: Duration,
    pub heartbeat_timeout: Duration,
    /// MQTTS listener: address, certificate chain, key.
    pub tls: Option<(SocketAddr, PathBuf, PathBuf)>,
}

/// `[rules]`, validated.
#[derive(Debug, Clone)]
pub struct RulesSettings {
    /// `None`: no local rule file (rules come from the cloud only).
    pub file: Option<PathBuf>,
    pub history: PathBuf,
    pub lockdown_priority: u8,
}

/// `[access]`, validated.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    pub site_document: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Empty on an edge that is not enrolled yet.
    pub url: String,
    pub token_file: Option<PathBuf>,
    /// Enrolment state file (see [`crate::enrol`]).
    pub enrolment: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub timeout: Duration,
    pub batch_max: usize,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub heartbeat: Duration,
    pub config_sync: bool,
    pub config_state: PathBuf,
    /// Upload cap in kbit/s shared by events and media; 0 = unlimited.
    pub max_upload_kbps: u64,
}

#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub onnxruntime: PathBuf,
    /// Model path and thresholds (used by both kinds).
    pub yolo: edge_detect::YoloConfig,
    /// `Some` when `kind = "blazepose"`.
    pub blaze: Option<edge_detect::BlazeConfig>,
    pub queue: usize,
    pub workers: usize,
    pub mode: edge_core::EventMode,
    pub update_every_us: i64,
    pub min_crop: u32,
    /// See `AnalyzerConfig::full_frame_parts`.
    pub full_frame_parts: u32,
    /// See `TrackerConfig::stationary_after_us` and `stationary_max_age_us`, and
    /// `AnalyzerConfig::stationary_check_us`.
    pub stationary_after_us: i64,
    pub stationary_max_age_us: i64,
    pub stationary_check_us: i64,
    pub classes: Vec<ClassRule>,
}

#[derive(Debug, Clone)]
pub struct CameraEntry {
    pub zone: Option<String>,
    pub video: CameraConfig,
    /// Main stream for recording, when it differs from the detect stream.
    pub record_url: Option<String>,
    pub scene: edge_siteconfig::scene::SceneSettings,
    /// `Some` when this camera records (clips, and segments if continuous).
    pub record: Option<RecordSettings>,
}

/// Everything wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError { problems: vec![e.to_string()] })?;
        let mut p = Vec::new();

        let uuid = |field: &str, v: &str, p: &mut Vec<String>| {
            Uuid::parse_str(v).unwrap_or_else(|_| {
                p.push(format!("{field}: {v:?} is not a UUID"));
                Uuid::nil()
            })
        };
        let c = &raw.cloud;
        let enrolable = c.enrolment.is_some();
        let id = |field: &str, v: &Option<String>, p: &mut Vec<String>| match v {
            Some(v) => uuid(field, v, p),
            None => {
                if !enrolable {
                    p.push(format!("{field}: required (or set cloud.enrolment and enrol the edge with a claim code)"));
                }
                Uuid::nil()
            }
        };
        let tenant = id("site.tenant", &raw.site.tenant, &mut p);
        let site = id("site.site", &raw.site.site, &mut p);
        match &c.url {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                p.push(format!("cloud.url: {url:?} must start with https:// or http://"));
            }
            None if !enrolable => {
                p.push("cloud.url: required (or set cloud.enrolment and enrol the edge with a claim code)".into());
            }
            _ => {}
        }
        if enrolable && c.token_file.is_none() {
            p.push("cloud.token_file: required with cloud.enrolment (enrolment writes the token there)".into());
        }
        if c.timeout_secs == 0 || c.timeout_secs > 600 {
            p.push("cloud.timeout_secs: must be 1..=600".into());
        }
        if c.batch_max == 0 || c.batch_max > 5000 {
            p.push("cloud.batch_max: must be 1..=5000".into());
        }
        if !(1..=3600).contains(&c.heartbeat_secs) {
            p.push("cloud.heartbeat_secs: must be 1..=3600".into());
        }
        if c.retry_min_ms == 0 || c.retry_min_ms > c.retry_max_ms {
            p.push("cloud.retry_min_ms: must be > 0 and <= retry_max_ms".into());
        }
        if c.max_upload_kbps != 0 && !(MIN_UPLOAD_KBPS..=MAX_UPLOAD_KBPS).contains(&c.max_upload_kbps) {
            p.push(format!(
                "cloud.max_upload_kbps: 0 (unlimited) or {MIN_UPLOAD_KBPS}..={MAX_UPLOAD_KBPS} (a media part must fit the cloud's 10 minutes)"
            ));
        }

        if raw.spool.max_mb == 0 {
            p.push("spool.max_mb: must be at least 1".into());
        }
        let status_listen = raw.status.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            p.push(format!("status.listen: {:?} is not an address:port", raw.status.listen));
            SocketAddr::from(([127, 0, 0, 1], 0))
        });

        let d = &raw.detector;
        for (name, v) in [("score_threshold", d.score_threshold), ("iou_threshold", d.iou_threshold)] {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!("detector.{name}: {v} is not within 0..=1"));
            }
        }
        if let Some(s) = d.input_size
            && (s == 0 || s % 32 != 0 || s > 2048)
        {
            p.push(format!("detector.input_size: {s} must be a multiple of 32 up to 2048"));
        }
        if d.threads > 64 {
            p.push("detector.threads: at most 64".into());
        }
        if d.queue == 0 || d.queue > 256 {
            p.push("detector.queue: must be 1..=256".into());
        }
        if d.workers == 0 || d.workers > 16 {
            p.push("detector.workers: must be 1..=16".into());
        }
        let mode = match d.events.as_str() {
            "tracks" => edge_core::EventMode::Tracks,
            "frames" => edge_core::EventMode::Frames,
            other => {
                p.push(format!("detector.events: {other:?} must be \"tracks\" or \"frames\""));
                edge_core::EventMode::Tracks
            }
        };
        if d.update_secs > 86_400 {
            p.push("detector.update_secs: at most 86400".into());
        }
        if !(32..=4096).contains(&d.min_crop) {
            p.push("detector.min_crop: must be 32..=4096".into());
        }
        let secs = |name: &str, v: f64, max: f64, p: &mut Vec<String>| -> i64 {
            if v.is_finite() && v > 0.0 && v <= max {
                (v * 1e6) as i64
            } else {
                p.push(format!("detector.{name}: {v} must be above 0 and at most {max}"));
                1
            }
        };
        let stationary_after_us = secs("stationary_secs", d.stationary_secs, 3600.0, &mut p);
        let stationary_check_us = secs("stationary_check_secs", d.stationary_check_secs, 600.0, &mut p);
        let stationary_max_age_us = secs("stationary_max_age_secs", d.stationary_max_age_secs, 86_400.0, &mut p);
        let full_frame_parts = d.full_frame_parts.unwrap_or(if d.kind == "blazepose" { 4 } else { 1 });
        if !(1..=64).contains(&full_frame_parts) {
            p.push(format!("detector.full_frame_parts: {full_frame_parts} must be 1..=64"));
        }
        let blaze = match d.kind.as_str() {
            "yolo" => None,
            "blazepose" => {
                if d.tile < 32 || d.tile > 2048 || d.overlap >= d.tile {
                    p.push(format!("detector.tile/overlap: tile {} must be 32..=2048 and overlap below it", d.tile));
                }
                let mut b = edge_detect::BlazeConfig::new(d.model.clone());
                b.tile = d.tile;
                b.overlap = d.overlap;
                b.full_frame = d.full_frame;
                b.max_tilt_deg = d.max_tilt_degrees.unwrap_or(b.max_tilt_deg);
                if !(0.0..=180.0).contains(&b.max_tilt_deg) {
                    p.push(format!("detector.max_tilt_degrees: {} must be 0..=180", b.max_tilt_deg));
                }
                b.threads = d.threads;
                Some(b)
            }
            other => {
                p.push(format!("detector.kind: {other:?} must be \"yolo\" or \"blazepose\""));
                None
            }
        };
        let person = RawClass { id: 0, label: "person".into(), kind: "detection.person".into(), min_score: None };
        let raw_classes =
            if d.classes.is_empty() && blaze.is_some() { std::slice::from_ref(&person) } else { &d.classes[..] };
        let mut class_ids = HashSet::new();
        let mut classes = Vec::new();
        for (i, class) in raw_classes.iter().enumerate() {
            if !class_ids.insert(class.id) {
                p.push(format!("detector.classes[{i}]: class id {} listed twice", class.id));
            }
            let kind = match EventKind::parse(&class.kind) {
                Some(k @ (EventKind::DetectionPerson | EventKind::DetectionVehicle)) => k,
                _ => {
                    p.push(format!(
                        "detector.classes[{i}].kind: {:?} is not a detection kind (detection.person, detection.vehicle)",
                        class.kind
                    ));
                    EventKind::DetectionPerson
                }
            };
            let min_score = class.min_score.unwrap_or(d.score_threshold);
            if !(0.0..=1.0).contains(&min_score) {
                p.push(format!("detector.classes[{i}].min_score: {min_score} is not within 0..=1"));
            }
            classes.push(ClassRule { class_id: class.id, label: class.label.clone(), kind, min_score });
        }
        if classes.is_empty() {
            p.push("detector.classes: map at least one model class to an event kind".into());
        }

        let mut camera_ids = HashSet::new();
        let mut cameras = Vec::new();
        for (i, cam) in raw.cameras.iter().enumerate() {
            let at = format!("cameras[{i}]");
            if !valid_id(&cam.id) {
                p.push(format!("{at}.id: {:?} must be 1-64 characters of A-Z a-z 0-9 - _", cam.id));
            }
            if !camera_ids.insert(cam.id.clone()) {
                p.push(format!("{at}.id: camera {:?} listed twice", cam.id));
            }
            if !(cam.url.starts_with("rtsp://") || cam.url.starts_with("rtsps://")) || cam.url.len() < 10 {
                p.push(format!("{at}.url: must be an rtsp:// or rtsps:// URL"));
            }
            if let Some(zone) = &cam.zone
                && !valid_id(zone)
            {
                p.push(format!("{at}.zone: {zone:?} must be 1-64 characters of A-Z a-z 0-9 - _"));
            }
            if !(cam.analyze_fps > 0.0 && cam.analyze_fps <= 60.0) {
                p.push(format!("{at}.analyze_fps: {} must be within (0, 60]", cam.analyze_fps));
            }
            let transport = match cam.transport.as_str() {
                "tcp" => RtspTransport::Tcp,
                "udp" => RtspTransport::Udp,
                other => {
                    p.push(format!("{at}.transport: {other:?} must be \"tcp\" or \"udp\""));
                    RtspTransport::Tcp
                }
            };
            let size = match (cam.width, cam.height) {
                (None, None) => None,
                (Some(w), Some(h)) if (16..=8192).contains(&w) && (16..=8192).contains(&h) => Some((w, h)),
                _ => {
                    p.push(format!("{at}: width and height go together, each 16..=8192"));
                    None
                }
            };
            if cam.stall_timeout_secs == 0 {
                p.push(format!("{at}.stall_timeout_secs: must be > 0"));
            }
            if let Some(url) = &cam.record_url
                && (!(url.starts_with("rtsp://") || url.starts_with("rtsps://")) || url.len() < 10)
            {
                p.push(format!("{at}.record_url: must be an rtsp:// or rtsps:// URL"));
            }
            let scene =
                edge_siteconfig::scene::validate(&at, &cam.motion, &cam.filters, &cam.lines, &cam.zones, &mut p);
            let r = &cam.record;
            let records = r.enabled.unwrap_or(cam.record_url.is_some()) && raw.media.is_some();
            if r.enabled == Some(true) && raw.media.is_none() {
                p.push(format!("{at}.record: recording needs a [media] section (where clips go)"));
            }
            if !(1..=600).contains(&r.preroll_secs) {
                p.push(format!("{at}.record.preroll_secs: must be 1..=600"));
            }
            if r.continuous && (!(2..=3600).contains(&r.segment_secs) || r.retain_hours == 0 || r.max_gb == 0) {
                p.push(format!("{at}.record: segment_secs 2..=3600, retain_hours and max_gb above 0"));
            }
            let record = records.then(|| RecordSettings {
                url: cam.record_url.clone().unwrap_or_else(|| cam.url.clone()),
                preroll: Duration::from_secs(r.preroll_secs),
                continuous: r.continuous.then(|| {
                    (
                        Duration::from_secs(r.segment_secs),
                        Duration::from_secs(r.retain_hours.saturating_mul(3600)),
                        r.max_gb.saturating_mul(1 << 30),
                    )
                }),
            });
            cameras.push(CameraEntry {
                record,
                record_url: cam.record_url.clone(),
                scene,
                zone: cam.zone.clone(),
                video: CameraConfig {
                    id: Arc::from(cam.id.as_str()),
                    url: cam.url.clone(),
                    transport,
                    analyze_fps: cam.analyze_fps,
                    size,
                    stall_timeout: Duration::from_secs(cam.stall_timeout_secs),
                    reconnect_min: Duration::from_millis(500),
                    reconnect_max: Duration::from_secs(30),
                },
            });
        }

        let mqtt = raw.mqtt.as_ref().map(|m| {
            let listen = m.listen.parse().unwrap_or_else(|_| {
                p.push(format!("mqtt.listen: {:?} is not an address:port", m.listen));
                SocketAddr::from(([0, 0, 0, 0], 1883))
            });
            if !(64..=1 << 20).contains(&m.max_payload) {
                p.push("mqtt.max_payload: must be 64..=1048576".into());
            }
            if m.ack_timeout_ms == 0 {
                p.push("mqtt.ack_timeout_ms: must be > 0".into());
            }
            if m.heartbeat_timeout_secs == 0 {
                p.push("mqtt.heartbeat_timeout_secs: must be > 0".into());
            }
            let tls = match (&m.tls_listen, &m.tls_cert, &m.tls_key) {
                (None, None, None) => None,
                (Some(l), Some(c), Some(k)) => match l.parse::<SocketAddr>() {
                    Ok(addr) => Some((addr, c.clone(), k.clone())),
                    Err(_) => {
                        p.push(format!("mqtt.tls_listen: {l:?} is not an address:port"));
                        None
                    }
                },
                _ => {
                    p.push("mqtt: tls_listen, tls_cert and tls_key go together".into());
                    None
                }
            };
            MqttSettings {
                tls,
                listen,
                devices: m.devices.clone(),
                max_payload: m.max_payload,
                ack_timeout: Duration::from_millis(m.ack_timeout_ms),
                heartbeat_timeout: Duration::from_secs(m.heartbeat_timeout_secs),
            }
        });
        if let Some(m) = &mqtt
            && m.listen.port() != 0
            && m.listen.port() == status_listen.port()
        {
            p.push(format!("mqtt.listen: port {} is also the status port", m.listen.port()));
        }
        if raw.access.is_some() && mqtt.is_none() {
            p.push("access: doors need an [mqtt] section for their readers and locks".into());
        }
        let access = raw.access.as_ref().map(|a| AccessSettings { site_document: a.site_document.clone() });
        let media = raw.media.as_ref().map(|m| {
            if m.clip_pre_secs > 600 || m.clip_post_secs == 0 || m.clip_post_secs > 3600 {
                p.push("media: clip_pre_secs at most 600, clip_post_secs 1..=3600".into());
            }
            if m.max_mb == 0 {
                p.push("media.max_mb: must be at least 1".into());
            }
            crate::media::MediaSettings {
                dir: m.dir.clone().unwrap_or_else(|| {
                    let spool = &raw.spool.path;
                    spool.parent().unwrap_or(spool).join("media")
                }),
                clip_pre: Duration::from_secs(m.clip_pre_secs),
                clip_post: Duration::from_secs(m.clip_post_secs),
                max_bytes: m.max_mb.saturating_mul(1 << 20),
                reserve_bytes: m.reserve_mb.saturating_mul(1 << 20),
                snapshots: m.snapshots,
                upload: m.upload,
            }
        });
        let rules = raw.rules.as_ref().map(|r| RulesSettings {
            file: Some(r.file.clone()),
            history: r.history.clone().unwrap_or_else(|| {
                let spool = &raw.spool.path;
                spool.parent().unwrap_or(spool).join("rules-history.jsonl")
            }),
            lockdown_priority: r.lockdown_priority,
        });

        if !p.is_empty() {
            return Err(ConfigError { problems: p });
        }
        Ok(Config {
            tenant,
            site,
            cloud: CloudConfig {
                url: c.url.as_deref().unwrap_or_default().trim_end_matches('/').to_owned(),
                token_file: c.token_file.clone(),
                enrolment: c.enrolment.clone(),
                ca_cert: c.ca_cert.clone(),
                timeout: Duration::from_secs(c.timeout_secs),
                batch_max: c.batch_max,
                retry_min: Duration::from_millis(c.retry_min_ms),
                retry_max: Duration::from_millis(c.retry_max_ms),
                heartbeat: Duration::from_secs(c.heartbeat_secs),
                config_sync: c.config_sync,
                config_state: c.config_state.clone().unwrap_or_else(|| {
                    let spool = &raw.spool.path;
                    spool.parent().unwrap_or(spool).join("site-config.json")
                }),
                max_upload_kbps: c.max_upload_kbps,
            },
            spool_path: raw.spool.path,
            spool_max_bytes: raw.spool.max_mb.saturating_mul(1 << 20),
            spool_reserve_bytes: raw.spool.reserve_mb.saturating_mul(1 << 20),
            status_listen,
            detector: DetectorConfig {
                onnxruntime: d.onnxruntime.clone(),
                yolo: edge_detect::YoloConfig {
                    model: d.model.clone(),
                    input_size: d.input_size,
                    score_threshold: d.score_threshold,
                    iou_threshold: d.iou_threshold,
                    threads: d.threads,
                },
                blaze,
                queue: d.queue,
                workers: d.workers,
                mode,
                update_every_us: i64::try_from(d.update_secs).unwrap_or(0).saturating_mul(1_000_000),
                min_crop: d.min_crop,
                full_frame_parts,
                stationary_after_us,
                stationary_max_age_us,
                stationary_check_us,
                classes,
            },
            cameras,
            mqtt,
            access,
            rules,
            media,
        })
    }

    /// Free disk the spool never writes into: a quarter of the reserve, at least 1 MiB (0 without
    /// a reserve).
    pub fn spool_floor_bytes(&self) -> u64 {
        if self.spool_reserve_bytes == 0 {
            0
        } else {
            (self.spool_reserve_bytes / 4).clamp(1 << 20, self.spool_reserve_bytes)
        }
    }

    /// Checks that referenced files exist and the token is available (what `check-config` adds to
    /// parsing). Returns the token; `None` for an edge that is waiting to be enrolled
    /// (`cloud.enrolment` set, no enrolment yet, no token).
    pub fn check_files(&self) -> Result<Option<Secret>, ConfigError> {
        let mut p = Vec::new();
        for (name, path) in
            [("detector.onnxruntime", &self.detector.onnxruntime), ("detector.model", &self.detector.yolo.model)]
        {
            if !path.is_file() {
                p.push(format!("{name}: {} does not exist", path.display()));
            }
        }
        if let Some(ca) = &self.cloud.ca_cert
            && !ca.is_file()
        {
            p.push(format!("cloud.ca_cert: {} does not exist", ca.display()));
        }
        if let Some(m) = &self.mqtt
            && let Err(e) = edge_mqtt::DeviceRegistry::load(&m.devices)
        {
            p.push(format!("mqtt.devices: {e}"));
        }
        if let Some((_, cert, key)) = self.mqtt.as_ref().and_then(|m| m.tls.as_ref())
            && let Err(e) = edge_mqtt::front::load_tls(cert, key)
        {
            p.push(format!("mqtt.tls: {e}"));
        }
        if let Some(a) = &self.access {
            match edge_access::SiteDocument::load(&a.site_document).map(edge_access::Policy::compile) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => p.push(format!("access.site_document: {e}")),
                Err(e) => p.push(format!("access.site_document: {e}")),
            }
        }
        if let Some(file) = self.rules.as_ref().and_then(|r| r.file.as_ref()) {
            match edge_rules::RuleSet::load(file).map(|set| set.compile()) {
                Ok(Ok(_)) => {}
                Ok(Err(problems)) => {
                    p.extend(problems.iter().map(|problem| format!("rules.file: {problem}")));
                }
                Err(e) => p.push(format!("rules.file: {e}")),
            }
        }
        let token = match (std::env::var(TOKEN_ENV), &self.cloud.token_file) {
            (Ok(t), _) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            (_, Some(file)) => match std::fs::read_to_string(file) {
                Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
                Ok(_) => {
                    p.push(format!("cloud.token_file: {} is empty", file.display()));
                    None
                }
                Err(e) => {
                    p.push(format!("cloud.token_file: cannot read {}: {e}", file.display()));
                    None
                }
            },
            _ => {
                p.push(format!("cloud: no token (set ${TOKEN_ENV} or cloud.token_file)"));
                None
            }
        };
        if token.is_none() && self.waiting_for_enrolment() {
            // Not enrolled yet: the missing token is expected, not a problem.
            p.retain(|problem| !problem.starts_with("cloud.token_file") && !problem.starts_with("cloud: no token"));
            return if p.is_empty() { Ok(None) } else { Err(ConfigError { problems: p }) };
        }
        match token {
            Some(t) if p.is_empty() => Ok(Some(Secret(t))),
            _ => Err(ConfigError { problems: p }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_validates() {
        let cfg = Config::from_toml(DEFAULT_CONFIG).unwrap();
        assert_eq!(cfg.cameras.len(), 1);
        assert_eq!(cfg.detector.classes.iter().filter(|c| c.kind == EventKind::DetectionVehicle).count(), 5);
    }

    #[test]
    fn the_upload_cap_is_zero_or_within_bounds() {
        assert_eq!(Config::from_toml(DEFAULT_CONFIG).unwrap().cloud.max_upload_kbps, 0, "unlimited by default");
        let with = |v: &str| DEFAULT_CONFIG.replace("max_upload_kbps = 0", &format!("max_upload_kbps = {v}"));
        for (value, ok) in
            [("0", true), ("128", true), ("2000", true), ("127", false), ("1", false), ("20000000", false)]
        {
            match Config::from_toml(&with(value)) {
                Ok(cfg) => {
                    assert!(ok, "{value} accepted");
                    assert_eq!(cfg.cloud.max_upload_kbps.to_string(), value);
                }
                Err(e) => {
                    assert!(!ok, "{value} refused: {e}");
                    assert!(e.to_string().contains("cloud.max_upload_kbps"), "{e}");
                }
            }
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = DEFAULT_CONFIG
            .replace("tenant = \"00000000-0000-0000-0000-000000000000\"", "tenant = \"nope\"")
            .replace("score_threshold = 0.25", "score_threshold = 1.5")
            .replace("analyze_fps = 2.0", "analyze_fps = 0.0")
            .replace("url = \"rtsp://192.0.2.10:554/stream1\"", "url = \"http://cam\"")
            .replace(
                "kind = \"detection.vehicle\"\nmin_score = 0.4\n\n[[detector.classes]]\nid = 2",
                "kind = \"access.granted\"\nmin_score = 0.4\n\n[[detector.classes]]\nid = 2",
            );
        let err = Config::from_toml(&text).unwrap_err();
        let joined = err.problems.join("\n");
        for needle in [
            "site.tenant",
            "detector.score_threshold",
            "cameras[0].analyze_fps",
            "cameras[0].url",
            "detector.classes[1].kind",
        ] {
            assert!(joined.contains(needle), "missing {needle} in:\n{joined}");
        }
        assert_eq!(err.problems.len(), 5, "{joined}");
    }

    #[test]
    fn unknown_keys_and_duplicate_cameras_are_errors() {
        let err = Config::from_toml(&DEFAULT_CONFIG.replace("[spool]", "[spool]\nsize = 3")).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let dup = format!("{DEFAULT_CONFIG}\n[[cameras]]\nid = \"front-door\"\nurl = \"rtsp://192.0.2.11/s\"\n");
        let err = Config::from_toml(&dup).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn check_files_names_missing_files_and_token() {
        let cfg = Config::from_toml(DEFAULT_CONFIG).unwrap();
        let err = cfg.check_files().unwrap_err().to_string();
        assert!(err.contains("detector.model"), "{err}");
        assert!(err.contains("detector.onnxruntime"), "{err}");
        // The default waits to be enrolled: no token yet is expected, not a problem.
        assert!(!err.contains("token"), "{err}");
        let provisioned = DEFAULT_CONFIG.replace(
            "tenant = \"00000000-0000-0000-0000-000000000000\"",
            "tenant = \"0190a000-0000-7000-8000-000000000001\"",
        );
        let err = Config::from_toml(&provisioned).unwrap().check_files().unwrap_err().to_string();
        assert!(err.contains("token_file"), "{err}");
    }

    #[test]
    fn camera_analytics_are_parsed_and_every_mistake_is_named() {
        let good = format!(
            "{DEFAULT_CONFIG}\nrecord_url = \"rtsp://192.0.2.10/main\"\n[cameras.motion]\nthreshold = 30\nmasks = [[[0, 0], [1, 0], [1, 0.1]]]\n\
             [cameras.filters]\nmin_area = 0.01\n[[cameras.lines]]\nid = \"door\"\na = [0.5, 0]\nb = [0.5, 1]\n\
             [[cameras.zones]]\nid = \"till\"\npolygon = [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9]]\nloiter_secs = 30\n"
        );
        let cfg = Config::from_toml(&good).unwrap();
        let cam = &cfg.cameras[0];
        assert_eq!(cam.record_url.as_deref(), Some("rtsp://192.0.2.10/main"));
        assert_eq!(cam.scene.motion.as_ref().unwrap().threshold, 30);
        assert_eq!(cam.scene.motion.as_ref().unwrap().masks.len(), 1);
        assert_eq!((cam.scene.lines.len(), cam.scene.zones.len()), (1, 1));
        assert_eq!(cam.scene.zones[0].loiter_us, Some(30_000_000));
        assert_eq!(cam.scene.filter.min_area, 0.01);
        assert_eq!(cfg.detector.mode, edge_core::EventMode::Tracks);
        let d = &cfg.detector;
        assert_eq!(
            (d.stationary_after_us, d.stationary_check_us, d.stationary_max_age_us),
            (3_000_000, 1_000_000, 10_000_000)
        );

        let bad = format!(
            "{DEFAULT_CONFIG}\n[cameras.motion]\nfull_frame_secs = 0\n[cameras.filters]\nmin_area = 2\n\
             [[cameras.lines]]\nid = \"door\"\na = [0.5, 0]\nb = [0.5, 0]\n[[cameras.lines]]\nid = \"door\"\na = [1.5, 0]\nb = [0, 0]\n\
             [[cameras.zones]]\nid = \"z\"\npolygon = [[0.1, 0.5], [0.4, 0.5]]\n"
        )
        .replace("workers = 1", "workers = 0")
        .replace("stationary_check_secs = 1", "stationary_check_secs = 0")
        .replace("events = \"tracks\"", "events = \"sometimes\"");
        let err = Config::from_toml(&bad).unwrap_err().to_string();
        for needle in [
            "cameras[0].motion.full_frame_secs",
            "cameras[0].filters.min_area",
            "cameras[0].lines[0]: a and b are the same point",
            "cameras[0].lines[1].id: \"door\" is used twice",
            "cameras[0].lines[1].a",
            "cameras[0].zones[0].polygon: a polygon needs 3 to 64 points",
            "detector.workers",
            "detector.events",
            "detector.stationary_check_secs: 0 must be above 0",
        ] {
            assert!(err.contains(needle), "{needle} missing from:\n{err}");
        }
        let blaze = DEFAULT_CONFIG.replace("kind = \"yolo\"", "kind = \"blazepose\"");
        assert_eq!(Config::from_toml(&blaze).unwrap().detector.blaze.unwrap().max_tilt_deg, 60.0);
        let fisheye = blaze.replace("threads = 1", "threads = 1\nmax_tilt_degrees = 180");
        assert_eq!(Config::from_toml(&fisheye).unwrap().detector.blaze.unwrap().max_tilt_deg, 180.0);
        let err = Config::from_toml(&blaze.replace("threads = 1", "threads = 1\nmax_tilt_degrees = 181")).unwrap_err();
        assert!(err.to_string().contains("detector.max_tilt_degrees: 181 must be 0..=180"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "***");
    }

    #[test]
    fn mqtt_and_access_sections_are_optional_and_checked() {
        let cfg = Config::from_toml(DEFAULT_CONFIG).unwrap();
        assert!(cfg.mqtt.is_none() && cfg.access.is_none());

        let text = format!(
            "{DEFAULT_CONFIG}\n[mqtt]\nlisten = \"0.0.0.0:1883\"\ndevices = \"/etc/vigil/devices.json\"\n[access]\nsite_document = \"/etc/vigil/site.toml\"\n"
        );
        let cfg = Config::from_toml(&text).unwrap();
        let m = cfg.mqtt.as_ref().unwrap();
        assert_eq!((m.listen.port(), m.max_payload, m.ack_timeout), (1883, 4096, Duration::from_secs(3)));
        assert_eq!(cfg.access.unwrap().site_document, PathBuf::from("/etc/vigil/site.toml"));

        let text = format!(
            "{DEFAULT_CONFIG}\n[mqtt]\nlisten = \"127.0.0.1:8091\"\ndevices = \"d.json\"\nmax_payload = 1\nack_timeout_ms = 0\n"
        );
        let problems = Config::from_toml(&text).unwrap_err().problems;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("also the status port")), "{problems:?}");

        let text = format!("{DEFAULT_CONFIG}\n[mqtt]\ndevices = \"d.json\"\ntls_listen = \"0.0.0.0:8883\"\n");
        let problems = Config::from_toml(&text).unwrap_err().problems;
        assert!(problems.iter().any(|p| p.contains("go together")), "{problems:?}");

        let text = format!("{DEFAULT_CONFIG}\n[access]\nsite_document = \"site.toml\"\n");
        let problems = Config::from_toml(&text).unwrap_err().problems;
        assert!(problems.iter().any(|p| p.contains("need an [mqtt] section")), "{problems:?}");

        let text = format!("{DEFAULT_CONFIG}\n[mqtt]\ndevices = \"d.json\"\nbroker = \"x\"\n");
        assert!(Config::from_toml(&text).is_err(), "unknown keys are refused");
    }

    #[test]
    fn check_files_validates_the_device_registry_and_site_document() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices.json");
        std::fs::write(
            &devices,
            r#"{"site":"hq","devices":[{"id":"bad/id","zone":"z","kind":"lock","password_sha256":"00"}]}"#,
        )
        .unwrap();
        let doc = dir.path().join("site.json");
        std::fs::write(
            &doc,
            r#"{"schema":1,"revision":1,"issued_at":"2026-01-01T00:00:00Z","timezone":"Nowhere/Land"}"#,
        )
        .unwrap();
        let text = format!("{DEFAULT_CONFIG}\n[mqtt]\ndevices = {devices:?}\n[access]\nsite_document = {doc:?}\n");
        let problems = Config::from_toml(&text).unwrap().check_files().unwrap_err().problems;
        assert!(problems.iter().any(|p| p.starts_with("mqtt.devices: invalid device registry")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("unknown timezone")), "{problems:?}");
    }
}
