//! `vigil-devsim`: run one simulated device against a Vigil edge's MQTT port.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use devsim::{Identity, SimDevice};
use edge_mqtt::DeviceEvent;

#[derive(Debug, Parser)]
#[command(version, about = "Vigil device simulators")]
struct Args {
    /// Edge MQTT address (the front, not the internal broker).
    #[arg(long, env = "VIGIL_MQTT", default_value = "127.0.0.1:1883")]
    broker: SocketAddr,
    /// Site segment of the topics.
    #[arg(long, env = "VIGIL_SITE")]
    site: String,
    /// Zone of the device.
    #[arg(long)]
    zone: String,
    /// Device id (also the MQTT username and client id).
    #[arg(long)]
    id: String,
    /// Device password.
    #[arg(long, env = "VIGIL_DEVICE_PASSWORD", hide_env_values = true)]
    password: String,
    #[command(subcommand)]
    device: Device,
}

#[derive(Debug, Subcommand)]
enum Device {
    /// A lock that obeys and acknowledges commands until stopped.
    Lock,
    /// A reader that presents a badge, once or every `--every` seconds.
    Reader {
        #[arg(long)]
        badge: String,
        #[arg(long)]
        pin: Option<String>,
        #[arg(long)]
        every: Option<u64>,
    },
    /// A door contact that reports opened/closed.
    Contact {
        #[arg(long)]
        open: bool,
    },
    /// A temperature sensor reporting `--value` °C, once or every `--every` seconds.
    Temperature {
        #[arg(long)]
        value: f64,
        #[arg(long)]
        every: Option<u64>,
    },
    /// A panic button pressed once.
    Panic,
    /// A security panel starting a lockdown of every door.
    Lockdown {
        #[arg(long)]
        lockdown_id: String,
        #[arg(long)]
        priority: u8,
        /// Automatic revert.
        #[arg(long)]
        minutes: Option<u32>,
    },
    /// A security panel clearing a lockdown.
    ClearLockdown {
        #[arg(long)]
        lockdown_id: String,
        #[arg(long)]
        priority: u8,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let a = Args::parse();
    let identity = Identity { broker: a.broker, site: a.site, zone: a.zone, id: a.id, password: a.password };
    let is_lock = matches!(a.device, Device::Lock);
    let dev = SimDevice::connect(identity, is_lock).await.context("connect to the edge")?;
    match a.device {
        Device::Lock => return Ok(dev.run_lock().await?),
        Device::Reader { badge, pin, every } => loop {
            dev.swipe(&badge, pin.as_deref()).await?;
            let Some(s) = every else { break };
            tokio::time::sleep(Duration::from_secs(s)).await;
        },
        Device::Contact { open } => dev.contact(open).await?,
        Device::Temperature { value, every } => loop {
            dev.telemetry("temperature", value, "celsius").await?;
            let Some(s) = every else { break };
            tokio::time::sleep(Duration::from_secs(s)).await;
        },
        Device::Panic => dev.panic().await?,
        Device::Lockdown { lockdown_id, priority, minutes } => {
            dev.event(&DeviceEvent::Lockdown { id: lockdown_id, priority, minutes }).await?
        }
        Device::ClearLockdown { lockdown_id, priority } => {
            dev.event(&DeviceEvent::LockdownClear { id: lockdown_id, priority }).await?
        }
    }
    // let QoS 1 publishes leave before the process ends
    tokio::time::sleep(Duration::from_millis(300)).await;
    dev.disconnect().await;
    Ok(())
}
