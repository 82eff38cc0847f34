//! A whole Vigil site as real processes, for end-to-end tests and the demo:
//! PostgreSQL, `vigil-cloud`, `vigil-rtsp-camera` playing real CCTV footage and `vigil-edge` running
//! the real YOLO model. Everything listens on free loopback ports and dies with the [`Site`].
//!
//! The site is observed only through public interfaces: the cloud's HTTP API and the edge's local
//! status endpoint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod proxy;
pub use proxy::WanProxy;
use serde_json::Value;
use test_support::{ChildGuard, PgCluster, S3Server, fixtures_dir, free_port, workspace_bin};

/// The bucket the cloud stores media in when a site runs with [`SiteOptions::s3`].
pub const MEDIA_BUCKET: &str = "vgl";
/// The part size the site's cloud gives edges (5 MiB, S3's smallest).
pub const MEDIA_PART_SIZE: u64 = 5 * 1024 * 1024;

/// What `vigil-cloud provision` prints.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub tenant_id: String,
    pub site_id: String,
    pub edge_token: String,
    pub api_key: String,
}

/// One running site. Fields are public so tests can stop and restart single processes.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
    pub pg: PgCluster,
    pub database_url: String,
    pub cloud_port: u16,
    pub camera_port: u16,
    pub status_port: u16,
    pub ids: Provisioned,
    pub cloud: Option<ChildGuard>,
    pub camera: Option<ChildGuard>,
    pub edge: Option<ChildGuard>,
    /// PEM of the private CA that signed the cloud's certificate, when the cloud serves HTTPS.
    pub tls: Option<TlsFiles>,
    pub wan: Option<WanProxy>,
    analyze_fps: f64,
    analytics: Option<String>,
    /// The edge's MQTT device port, when the site has doors.
    pub mqtt_port: Option<u16>,
    heartbeat_secs: u64,
    unenrolled: bool,
    /// Where the edge keeps its spool (default: `<dir>/spool`).
    spool_dir: Option<PathBuf>,
    /// Extra TOML appended to the edge's configuration (e.g. a `[media]` section).
    edge_extra: String,
    spool_reserve_mb: Option<u64>,
    http: reqwest::blocking::Client,
    /// The S3-protocol server the cloud stores clips and snapshots in, with [`SiteOptions::s3`];
    /// otherwise the cloud uses `<dir>/cloud-media`.
    pub s3: Option<S3Server>,
}

/// How to run a site.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Frames per second the edge analyses.
    pub analyze_fps: f64,
    /// Serve the cloud over HTTPS with a certificate from a private CA the edge is told to trust.
    pub tls: bool,
    /// Route the edge's uplink through a [`WanProxy`] the test can cut.
    pub wan_proxy: bool,
    /// Camera analytics (TOML sub-tables of `[[cameras]]`, e.g. `[[cameras.lines]]`): the edge then
    /// runs the bundled BlazePose person detector with motion gating and reports object lifecycles.
    /// `None`: the YOLO test model, one event per analysed frame with objects and no motion gating —
    /// a steady event load for the transport tests.
    pub analytics: Option<String>,
    /// Give the edge doors: an MQTT device port (`Site::mqtt_port`), a device registry with
    /// `reader-1` and `lock-1` (password `<id>-pw`) and a site document with door `front`.
    pub doors: bool,
    /// Seconds between the edge's heartbeats.
    pub heartbeat_secs: u64,
    /// Start the edge without an identity (no `[site]`, no `cloud.url`, no token) but with
    /// `cloud.enrolment`: it must be enrolled with a claim code ([`Site::enrol_with_cli`],
    /// [`Site::enrol_with_form`]).
    pub unenrolled: bool,
    /// Where the edge keeps its spool (default: `spool` in the site's directory).
    pub spool_dir: Option<PathBuf>,
    /// Extra TOML appended to the edge's configuration (e.g. a `[media]` section).
    pub edge_extra: String,
    /// `[spool] reserve_mb` (free disk kept for alarms and access; default: the edge's).
    pub spool_reserve_mb: Option<u64>,
    /// Store the cloud's media in a real S3-protocol server (s3s-fs) instead of a directory.
    pub s3: bool,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            analyze_fps: 4.0,
            tls: false,
            wan_proxy: false,
            analytics: None,
            doors: false,
            heartbeat_secs: 2,
            unenrolled: false,
            spool_dir: None,
            edge_extra: String::new(),
            spool_reserve_mb: None,
            s3: false,
        }
    }
}

/// A private CA and a certificate it signed for 127.0.0.1.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Makes a fresh CA and a server certificate for `127.0.0.1`/`localhost` in `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<TlsFiles> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Vigil test CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let cert =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?.signed_by(&key, &issuer)?;
        let files = TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("cloud.pem"), key: dir.join("cloud.key") };
        std::fs::write(&files.ca, ca_cert.pem())?;
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        Ok(files)
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
fn form_encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Model classes of the test model (nudenet's YOLOv8n export) that only occur on people; CCTV
/// footage mostly shows shoes (FEET_COVERED) and sometimes faces.
const TEST_CLASSES: &str = r#"
[[detector.classes]]
id = 9
label = "FEET_COVERED"
kind = "detection.person"

[[detector.classes]]
id = 1
label = "FACE_FEMALE"
kind = "detection.person"

[[detector.classes]]
id = 12
label = "FACE_MALE"
kind = "detection.person"
"#;

impl Site {
    /// Starts PostgreSQL and the cloud, provisions a tenant/site/edge, then starts the camera and
    /// the edge.
    pub fn start(analyze_fps: f64) -> anyhow::Result<Site> {
        Site::start_with(SiteOptions { analyze_fps, ..SiteOptions::default() })
    }

    pub fn start_with(opts: SiteOptions) -> anyhow::Result<Site> {
        let dir = tempfile::Builder::new().prefix("vigil-e2e-").tempdir()?;
        let pg = PgCluster::start()?;
        let database_url = pg.create_database("vigil")?;
        let tls = if opts.tls { Some(TlsFiles::generate(dir.path())?) } else { None };
        let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10));
        if let Some(tls) = &tls {
            // Trust only our CA, as the edge will.
            http = http.tls_certs_only(reqwest::Certificate::from_pem_bundle(&std::fs::read(&tls.ca)?)?);
        }
        let http = http.build()?;
        let mut site = Site {
            dir,
            pg,
            database_url,
            cloud_port: free_port(),
            camera_port: free_port(),
            status_port: free_port(),
            ids: Provisioned {
                tenant_id: String::new(),
                site_id: String::new(),
                edge_token: String::new(),
                api_key: String::new(),
            },
            cloud: None,
            camera: None,
            edge: None,
            tls,
            wan: None,
            analyze_fps: opts.analyze_fps,
            analytics: opts.analytics.clone(),
            mqtt_port: opts.doors.then(free_port),
            heartbeat_secs: opts.heartbeat_secs,
            unenrolled: opts.unenrolled,
            spool_dir: opts.spool_dir.clone(),
            edge_extra: opts.edge_extra.clone(),
            spool_reserve_mb: opts.spool_reserve_mb,
            http,
            s3: if opts.s3 { Some(S3Server::start(&[MEDIA_BUCKET])?) } else { None },
        };
        site.ids = site.provision()?;
        site.start_cloud()?;
        if opts.wan_proxy {
            site.wan = Some(WanProxy::start(site.cloud_port)?);
        }
        site.start_camera()?;
        site.start_edge(opts.analyze_fps)?;
        Ok(site)
    }

    fn logs(&self) -> &Path {
        self.dir.path()
    }

    fn provision(&self) -> anyhow::Result<Provisioned> {
        let out = Command::new(workspace_bin("vigil-cloud"))
            .args([
                "--database-url",
                &self.database_url,
                "provision",
                "--tenant",
                "Acme",
                "--site",
                "HQ",
                "--edge",
                "hq-edge",
            ])
            .output()
            .context("run vigil-cloud provision")?;
        if !out.status.success() {
            bail!("provision failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("provision output is JSON")?;
        let s = |k: &str| v[k].as_str().map(str::to_owned).with_context(|| format!("provision output lacks {k}"));
        Ok(Provisioned {
            tenant_id: s("tenant_id")?,
            site_id: s("site_id")?,
            edge_token: s("edge_token")?,
            api_key: s("api_key")?,
        })
    }

    pub fn cloud_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.cloud_port)
    }

    /// The cloud URL as the edge sees it (through the WAN proxy when there is one).
    fn edge_cloud_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let port = self.wan.as_ref().map_or(self.cloud_port, |w| w.port);
        format!("{scheme}://127.0.0.1:{port}")
    }

    /// Starts (or restarts) the cloud on its port and waits until it is healthy.
    pub fn start_cloud(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(workspace_bin("vigil-cloud"));
        cmd.args([
            "--database-url",
            &self.database_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.cloud_port),
        ]);
        if let Some(tls) = &self.tls {
            cmd.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        }
        // The smallest part size S3 allows, so that real clips go up in several parts.
        cmd.args(["--media-part-size", &MEDIA_PART_SIZE.to_string()]);
        match &self.s3 {
            Some(s3) => {
                cmd.args(["--media-s3-bucket", MEDIA_BUCKET, "--media-s3-endpoint", &s3.endpoint()])
                    .args(["--media-s3-path-style", "--media-s3-allow-http"])
                    .env("AWS_ACCESS_KEY_ID", test_support::S3_ACCESS_KEY)
                    .env("AWS_SECRET_ACCESS_KEY", test_support::S3_SECRET_KEY);
            }
            None => {
                cmd.arg("--media-dir").arg(self.dir.path().join("cloud-media"));
            }
        }
        self.cloud = Some(ChildGuard::spawn_logged("cloud", &mut cmd, self.logs())?);
        let url = format!("{}/health", self.cloud_url());
        self.wait_for("cloud healthy", Duration::from_secs(60), |s| {
            Ok(s.http.get(&url).send().map(|r| r.status().is_success()).unwrap_or(false))
        })
    }

    /// Kills the cloud abruptly (SIGKILL), as a crash or a lost link would.
    pub fn kill_cloud(&mut self) {
        if let Some(mut c) = self.cloud.take() {
            c.kill();
        }
    }

    pub fn start_camera(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(workspace_bin("vigil-rtsp-camera"));
        cmd.arg("--file").arg(fixtures_dir().join("vtest.mp4")).args(["--port", &self.camera_port.to_string()]);
        self.camera = Some(ChildGuard::spawn_logged("camera", &mut cmd, self.logs())?);
        let port = self.camera_port;
        self.wait_for("camera listening", Duration::from_secs(20), move |_| {
            Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })
    }

    /// Stops the camera: no new detections after this.
    pub fn stop_camera(&mut self) {
        if let Some(mut c) = self.camera.take() {
            c.kill();
        }
    }

    /// Writes the edge's config and starts it.
    pub fn start_edge(&mut self, analyze_fps: f64) -> anyhow::Result<()> {
        let fixtures = fixtures_dir();
        let config = self.dir.path().join("edged.toml");
        let spool = self.spool_dir.clone().unwrap_or_else(|| self.dir.path().join("spool"));
        let identity = if self.unenrolled {
            format!(
                "[cloud]\ntoken_file = {:?}\nenrolment = {:?}\n",
                self.dir.path().join("edge.token").display().to_string(),
                self.dir.path().join("enrolment.toml").display().to_string()
            )
        } else {
            format!(
                "[site]\ntenant = \"{}\"\nsite = \"{}\"\n\n[cloud]\nurl = \"{}\"\n",
                self.ids.tenant_id,
                self.ids.site_id,
                self.edge_cloud_url()
            )
        };
        std::fs::write(
            &config,
            format!(
                r#"
{identity}{ca}timeout_secs = 5
retry_min_ms = 200
retry_max_ms = 2000
heartbeat_secs = {heartbeat}

[spool]
path = "{spool}"
{reserve}

[status]
listen = "127.0.0.1:{status}"

[detector]
onnxruntime = "{ort}"
kind = "{kind}"
model = "{model}"
input_size = 640
threads = 1
events = "{events}"
{classes}
[[cameras]]
id = "cam-1"
url = "rtsp://127.0.0.1:{camera}/cam"
zone = "lobby"
analyze_fps = {analyze_fps}
{analytics}
{doors}
{extra}
"#,
                extra = self.edge_extra,
                reserve = self.spool_reserve_mb.map(|mb| format!("reserve_mb = {mb}")).unwrap_or_default(),
                doors = self.doors_config()?,
                heartbeat = self.heartbeat_secs,
                events = if self.analytics.is_some() { "tracks" } else { "frames" },
                analytics = self.analytics.as_deref().unwrap_or("[cameras.motion]\nenabled = false"),
                ca = self.tls.as_ref().map(|t| format!("ca_cert = \"{}\"\n", t.ca.display())).unwrap_or_default(),
                spool = spool.display(),
                status = self.status_port,
                ort = fixtures.join("libonnxruntime.so").display(),
                kind = if self.analytics.is_some() { "blazepose" } else { "yolo" },
                model = fixtures
                    .join(if self.analytics.is_some() { "blazepose-person.onnx" } else { "yolov8n-320-nudenet.onnx" })
                    .display(),
                classes = if self.analytics.is_some() { "" } else { TEST_CLASSES },
                camera = self.camera_port,
            ),
        )?;
        let mut cmd = Command::new(workspace_bin("vigil-edge"));
        cmd.arg("--config").arg(&config).env("RUST_LOG", "info,edged::detect=debug,ort=warn");
        if !self.unenrolled {
            cmd.env("VIGIL_EDGE_TOKEN", &self.ids.edge_token);
        }
        self.edge = Some(ChildGuard::spawn_logged("edge", &mut cmd, self.logs())?);
        self.wait_for("edge status endpoint", Duration::from_secs(30), |s| Ok(s.edge_status().is_ok()))
    }

    /// `[mqtt]` and `[access]` sections (and their files) when the site has doors.
    fn doors_config(&self) -> anyhow::Result<String> {
        let Some(port) = self.mqtt_port else { return Ok(String::new()) };
        let devices = self.dir.path().join("devices.json");
        let hash = |id: &str| {
            use sha2::Digest as _;
            use std::fmt::Write as _;
            let digest = sha2::Sha256::digest(format!("{id}-pw").as_bytes());
            digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let registry = serde_json::json!({ "site": "hq", "devices": [
            { "id": "reader-1", "zone": "lobby", "kind": "reader", "password_sha256": hash("reader-1") },
            { "id": "lock-1", "zone": "lobby", "kind": "lock", "password_sha256": hash("lock-1") },
        ]});
        std::fs::write(&devices, registry.to_string())?;
        let site = self.dir.path().join("site.toml");
        std::fs::write(
            &site,
            r#"schema = 1
revision = 1
issued_at = "2026-01-01T00:00:00Z"
timezone = "Europe/Paris"
max_offline_hours = 1000000
[[schedules]]
id = "always"
windows = [{ start = "00:00", end = "24:00" }]
[[groups]]
id = "staff"
doors = ["front"]
schedule = "always"
[[people]]
id = "alice"
groups = ["staff"]
[[credentials]]
id = "c-alice"
person = "alice"
badge = "A1"
[[doors]]
id = "front"
zone = "lobby"
reader = "reader-1"
lock = "lock-1"
"#,
        )?;
        Ok(format!(
            "[mqtt]\nlisten = \"127.0.0.1:{port}\"\ndevices = {:?}\n\n[access]\nsite_document = {:?}\n",
            devices.display().to_string(),
            site.display().to_string()
        ))
    }

    /// Creates a user of the site's tenant with `role` (via `vigil-cloud create-user`) and returns
    /// an access token from a real login.
    pub fn user_token(&self, email: &str, role: &str) -> anyhow::Result<String> {
        let password = "correct horse battery staple 42";
        let out = Command::new(workspace_bin("vigil-cloud"))
            .args(["--database-url", &self.database_url, "create-user", "--tenant", "Acme", "--email", email])
            .args(["--role", role])
            .env("VIGIL_USER_PASSWORD", password)
            .output()
            .context("run vigil-cloud create-user")?;
        if !out.status.success() {
            bail!("create-user failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let body: Value = self
            .http
            .post(format!("{}/api/auth/login", self.cloud_url()))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()?
            .error_for_status()?
            .json()?;
        body["data"]["access_token"].as_str().map(str::to_owned).context("login answer lacks access_token")
    }

    /// Sends a JSON request to the cloud with a bearer token; returns the `data` of the envelope.
    pub fn cloud_json(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(method, format!("{}{path}", self.cloud_url())).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let reply: Value = req.send()?.error_for_status()?.json()?;
        Ok(reply["data"].clone())
    }

    /// A one-time claim code for the site, created by `admin` (an access token).
    pub fn claim_code(&self, admin: &str) -> anyhow::Result<String> {
        let path = format!("/api/sites/{}/claim-codes", self.ids.site_id);
        let data = self.cloud_json("POST", &path, admin, Some(&serde_json::json!({})))?;
        data["code"].as_str().map(str::to_owned).context("claim code answer lacks code")
    }

    /// Enrols the edge with `vigil-edge enrol` (as an installer would); returns what it printed.
    pub fn enrol_with_cli(&self, code: &str, name: &str) -> anyhow::Result<String> {
        let out = Command::new(workspace_bin("vigil-edge"))
            .arg("--config")
            .arg(self.dir.path().join("edged.toml"))
            .args(["enrol", "--cloud", &self.edge_cloud_url(), "--code", code, "--name", name])
            .output()
            .context("run vigil-edge enrol")?;
        if !out.status.success() {
            bail!("vigil-edge enrol failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The edge's status page (`GET /`, HTML).
    pub fn edge_page(&self) -> anyhow::Result<String> {
        Ok(self.http.get(format!("http://127.0.0.1:{}/", self.status_port)).send()?.error_for_status()?.text()?)
    }

    /// Submits the status page's enrolment form as a browser would; returns the HTTP status and page.
    pub fn enrol_with_form(&self, code: &str, name: &str) -> anyhow::Result<(u16, String)> {
        let base = format!("http://127.0.0.1:{}", self.status_port);
        let body = form_encode(&[("cloud", &self.edge_cloud_url()), ("code", code), ("name", name)]);
        let reply = self
            .http
            .post(format!("{base}/enrol"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &base)
            .body(body)
            .send()?;
        Ok((reply.status().as_u16(), reply.text()?))
    }

    /// The enrolment file the edge wrote (TOML), when it exists.
    pub fn enrolment_file(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("enrolment.toml")).ok()
    }

    /// Kills the edge abruptly (SIGKILL), as a crash or a power cut to the process would.
    pub fn kill_edge(&mut self) {
        if let Some(mut e) = self.edge.take() {
            e.kill();
        }
    }

    /// Starts the edge again with the same configuration and spool.
    pub fn restart_edge(&mut self) -> anyhow::Result<()> {
        self.start_edge(self.analyze_fps)
    }

    /// Ids of the events the edge confirmed as durably spooled, from its own log (all incarnations).
    pub fn edge_spooled_ids(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("edge.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("Event spooled."))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("id=")).map(str::to_owned))
            .collect()
    }

    /// Stops the edge gracefully (SIGTERM) and waits for it to exit.
    pub fn stop_edge(&mut self) -> anyhow::Result<()> {
        if let Some(mut e) = self.edge.take() {
            Command::new("kill").args(["-TERM", &e.id().to_string()]).status()?;
            let status = e.wait()?;
            if !status.success() {
                bail!("edge exited with {status}:\n{}", e.log_tail(30));
            }
        }
        Ok(())
    }

    /// Waits (up to `timeout`) until the edge's spool is empty and no new event appeared for a while.
    pub fn wait_spool_drained(&self, timeout: Duration) {
        let mut last = u64::MAX;
        self.wait_for("edge spool to drain", timeout, |s| {
            let created = s.edge_counter("/detector/events_created")?;
            let depth = s.edge_counter("/spool/depth")?;
            let stable = created == last;
            last = created;
            std::thread::sleep(Duration::from_millis(800));
            Ok(stable && depth == 0)
        })
        .unwrap();
    }

    /// The edge's `GET /status`.
    pub fn edge_status(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("http://127.0.0.1:{}/status", self.status_port)).send()?.error_for_status()?.json()?)
    }

    /// A counter from the edge's status, by JSON pointer (e.g. `/detector/events_created`).
    pub fn edge_counter(&self, pointer: &str) -> anyhow::Result<u64> {
        let s = self.edge_status()?;
        s.pointer(pointer).and_then(Value::as_u64).with_context(|| format!("status has no {pointer}: {s}"))
    }

    /// The object name the cloud gives an edge key of this site (`<tenant>/<site>/<key>`, ids as
    /// 32 hex digits).
    pub fn media_object_path(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.ids.tenant_id.replace('-', ""), self.ids.site_id.replace('-', ""))
    }

    /// `GET path` on the cloud with the site's API key: status and body bytes.
    pub fn cloud_bytes(&self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let response = self.http.get(format!("{}{path}", self.cloud_url())).bearer_auth(&self.ids.api_key).send()?;
        Ok((response.status().as_u16(), response.bytes()?.to_vec()))
    }

    /// Every event of `kind` the cloud API returns for this tenant, following cursors.
    pub fn cloud_events(&self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(format!("{}/api/events", self.cloud_url()))
                .bearer_auth(&self.ids.api_key)
                .query(&[("kind", kind), ("limit", "50")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let body: Value = req.send()?.error_for_status()?.json()?;
            if body["success"] != true {
                bail!("unexpected response {body}");
            }
            let page = body["data"]["items"].as_array().context("items")?;
            items.extend(page.iter().cloned());
            match body["data"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(items),
            }
        }
    }

    /// Polls `check` every 200 ms until it returns true; on timeout the error carries the logs.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Site) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}\n{}", self.log_tails());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The end of each process log, for failure messages.
    pub fn log_tails(&self) -> String {
        [&self.cloud, &self.camera, &self.edge]
            .into_iter()
            .flatten()
            .map(|c| format!("--- {} ---\n{}", c.name(), c.log_tail(25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Directory holding logs and the edge's spool.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}
