//! Device simulators that behave like real site devices: they authenticate with their own
//! credentials, announce themselves on `status` (with an offline last will), publish on their own
//! `telemetry`/`events` topics and, for locks, obey and acknowledge `command`s.
//!
//! Topics and payloads come from `edge_mqtt` (one definition for the edge and its simulators).

use std::net::SocketAddr;
use std::time::Duration;

use edge_mqtt::topics::{self, Channel};
use edge_mqtt::{Command, DeviceEvent, Status, Telemetry};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, QoS};
use tokio::sync::mpsc;

/// Who a simulated device is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub broker: SocketAddr,
    pub site: String,
    pub zone: String,
    pub id: String,
    pub password: String,
}

impl Identity {
    fn topic(&self, channel: Channel) -> String {
        topics::device(&self.site, &self.zone, &self.id, channel)
    }
}

/// A connected simulated device. Its event loop runs on a task; commands (locks) arrive on `commands`.
#[derive(Debug)]
pub struct SimDevice {
    pub identity: Identity,
    client: AsyncClient,
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// The firmware version it reports (`sim-1.0` until a `firmware_update` is obeyed).
    firmware: std::sync::Mutex<String>,
    /// The last `configure` params obeyed.
    pub config: std::sync::Mutex<Option<serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("connection refused or failed: {0}")]
    Connect(String),
    #[error("mqtt client: {0}")]
    Client(#[from] rumqttc::ClientError),
}

impl SimDevice {
    /// Connects, waits for the CONNACK, announces `online`, and subscribes to its command topic when
    /// `subscribe_commands`.
    pub async fn connect(identity: Identity, subscribe_commands: bool) -> Result<SimDevice, SimError> {
        let mut opts = MqttOptions::new(&identity.id, identity.broker.ip().to_string(), identity.broker.port());
        opts.set_credentials(&identity.id, &identity.password);
        opts.set_keep_alive(Duration::from_secs(10));
        let offline = serde_json::to_vec(&Status { online: false, firmware: None, detail: None }).unwrap_or_default();
        opts.set_last_will(LastWill::new(identity.topic(Channel::Status), offline, QoS::AtLeastOnce, false));
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Incoming::ConnAck(_)))) => {}
            other => return Err(SimError::Connect(format!("{other:?}"))),
        }
        let (tx, commands) = mpsc::unbounded_channel();
        if subscribe_commands {
            client.subscribe(identity.topic(Channel::Command), QoS::AtLeastOnce).await?;
        }
        tokio::spawn(pump(eventloop, tx));
        let me = SimDevice {
            identity,
            client,
            commands,
            firmware: std::sync::Mutex::new("sim-1.0".into()),
            config: std::sync::Mutex::new(None),
        };
        me.status(true).await?;
        Ok(me)
    }

    async fn publish(&self, channel: Channel, body: Vec<u8>) -> Result<(), SimError> {
        self.client.publish(self.identity.topic(channel), QoS::AtLeastOnce, false, body).await?;
        Ok(())
    }

    pub async fn status(&self, online: bool) -> Result<(), SimError> {
        let firmware = self.firmware.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let body = serde_json::to_vec(&Status { online, firmware: Some(firmware), detail: None }).unwrap_or_default();
        self.publish(Channel::Status, body).await
    }

    pub async fn event(&self, event: &DeviceEvent) -> Result<(), SimError> {
        self.publish(Channel::Events, serde_json::to_vec(event).unwrap_or_default()).await
    }

    pub async fn telemetry(&self, metric: &str, value: f64, unit: &str) -> Result<(), SimError> {
        let t = Telemetry { metric: metric.into(), value, unit: unit.into() };
        self.publish(Channel::Telemetry, serde_json::to_vec(&t).unwrap_or_default()).await
    }

    /// Reader: presents a badge (and optionally a PIN).
    pub async fn swipe(&self, badge: &str, pin: Option<&str>) -> Result<(), SimError> {
        self.event(&DeviceEvent::Credential { badge: Some(badge.into()), pin: pin.map(str::to_owned) }).await
    }

    /// Door contact: opened or closed.
    pub async fn contact(&self, open: bool) -> Result<(), SimError> {
        self.event(&DeviceEvent::Contact { open }).await
    }

    /// Panic button pressed.
    pub async fn panic(&self) -> Result<(), SimError> {
        self.event(&DeviceEvent::Panic).await
    }

    /// Carries out one command and acknowledges it: a lock reports its bolt state, an actuator
    /// switches (`on`/`off`), `configure` keeps the params, `firmware_update` "flashes" the offered
    /// version and reports it on `status`; anything else is acknowledged as failed.
    pub async fn obey(&self, command: &Command) -> Result<(), SimError> {
        let ok = match command.action.as_str() {
            "unlock" | "lock" | "hold_unlocked" => {
                self.event(&DeviceEvent::LockState { locked: command.action == "lock" }).await?;
                true
            }
            "on" | "off" => true,
            "configure" => {
                *self.config.lock().unwrap_or_else(|p| p.into_inner()) = command.params.clone();
                command.params.as_ref().is_some_and(serde_json::Value::is_object)
            }
            "firmware_update" => match command.params.as_ref().and_then(|p| p["version"].as_str()) {
                Some(v) => {
                    *self.firmware.lock().unwrap_or_else(|p| p.into_inner()) = v.to_owned();
                    true
                }
                None => false,
            },
            _ => false,
        };
        self.event(&DeviceEvent::Ack { command_id: command.id.clone(), ok }).await?;
        if ok && command.action == "firmware_update" {
            self.status(true).await?;
        }
        Ok(())
    }

    /// Lock: obeys every command until the connection ends, and reports `status` every minute as
    /// its heartbeat.
    pub async fn run_lock(mut self) -> Result<(), SimError> {
        let mut heartbeat = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    self.obey(&cmd).await?;
                    tracing::info!(lock = %self.identity.id, id = %cmd.id, action = %cmd.action, "Command carried out.");
                }
                _ = heartbeat.tick() => self.status(true).await?,
            }
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}

async fn pump(mut eventloop: EventLoop, commands: mpsc::UnboundedSender<Command>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::Publish(p))) => match serde_json::from_slice::<Command>(&p.payload) {
                Ok(c) => {
                    if commands.send(c).is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(topic = %p.topic, %error, "Unreadable command ignored."),
            },
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "Simulated device disconnected; reconnecting.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
