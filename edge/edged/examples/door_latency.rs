//! Badge → unlock latency at the lock, under background telemetry load, cloud absent.
//!
//! `cargo run -p edged --release --example door_latency [swipes] [telemetry msg/s]`
//! Starts the real devices side (front + embedded broker + hub + devices stage + spool), connects
//! simulated devices over TCP, and prints p50/p99/max of "reader publishes a badge" → "lock receives
//! the unlock command". Printed, not asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use devsim::{Identity, SimDevice};
use edge_mqtt::{Device, DeviceKind, RegistryDocument, hash_password};
use edged::devices::DevicesBuilt;
use edged::{Config, DEFAULT_CONFIG};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SITE_DOC: &str = r#"
schema = 1
revision = 1
issued_at = "2026-01-01T00:00:00Z"
timezone = "UTC"
max_offline_hours = 1000000
[[groups]]
id = "staff"
doors = ["front"]
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
"#;

const SENSORS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let swipes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rate: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);

    let dir = tempfile::tempdir()?;
    let dev = |id: String, kind| Device {
        password_sha256: hash_password(&format!("{id}-pw")),
        config: None,
        firmware: None,
        id,
        zone: "lobby".into(),
        kind,
    };
    let mut devices = vec![dev("reader-1".into(), DeviceKind::Reader), dev("lock-1".into(), DeviceKind::Lock)];
    devices.extend((0..SENSORS).map(|i| dev(format!("temp-{i}"), DeviceKind::Temperature)));
    let registry = dir.path().join("devices.json");
    std::fs::write(&registry, serde_json::to_string(&RegistryDocument { site: "hq".into(), devices })?)?;
    let doc = dir.path().join("site.toml");
    std::fs::write(&doc, SITE_DOC)?;
    let text = format!(
        "{DEFAULT_CONFIG}\n[mqtt]\nlisten = \"127.0.0.1:0\"\ndevices = {registry:?}\n[access]\nsite_document = {doc:?}\n"
    );
    let cfg = Config::from_toml(&text)?;
    let spool = edge_spool::Spool::open(&dir.path().join("spool"))?;
    let built = DevicesBuilt::build(&cfg, None, None).await?.ok_or_else(|| anyhow::anyhow!("no [mqtt]"))?;
    let addr = built.local_addr();
    let stats = built.stats.clone();
    let tasks = TaskTracker::new();
    let cancel = CancellationToken::new();
    built.spawn(&tasks, &cancel, &cfg, spool.clone(), Arc::new(Notify::new()), Default::default());

    let id = |id: &str| Identity {
        broker: addr,
        site: "hq".into(),
        zone: "lobby".into(),
        id: id.into(),
        password: format!("{id}-pw"),
    };
    let mut lock = SimDevice::connect(id("lock-1"), true).await?;
    let reader = SimDevice::connect(id("reader-1"), false).await?;

    // background telemetry: SENSORS devices sharing `rate` messages per second
    let per_sensor = Duration::from_micros(1_000_000 * SENSORS as u64 / rate.max(1));
    for i in 0..SENSORS {
        let s = SimDevice::connect(id(&format!("temp-{i}")), false).await?;
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(per_sensor);
            while !cancel.is_cancelled() {
                tick.tick().await;
                if s.telemetry("temperature", 21.5, "celsius").await.is_err() {
                    return;
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut lat = Vec::with_capacity(swipes);
    let started = Instant::now();
    for _ in 0..swipes {
        let t = Instant::now();
        reader.swipe("A1", None).await?;
        let cmd = tokio::time::timeout(Duration::from_secs(5), lock.commands.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("lock disconnected"))?;
        lat.push(t.elapsed());
        lock.obey(&cmd).await?;
    }
    let wall = started.elapsed();
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let readings = stats.readings.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "door latency (badge published → unlock command at the lock), {swipes} swipes under ~{rate} telemetry msg/s:\n  p50 {:?}  p99 {:?}  max {:?}  ({} readings spooled in {:?})",
        q(0.50),
        q(0.99),
        lat[lat.len() - 1],
        readings,
        wall
    );
    cancel.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await;
    Ok(())
}
