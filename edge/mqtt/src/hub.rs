//! The edge's own MQTT client: an in-process rumqttd local link subscribed to every device topic of
//! the site. It turns messages into [`Inbound`] values for the device stages and publishes commands.
//!
//! Local links publish at QoS 0, so lock commands are acknowledged at the application level (the
//! lock's `ack` event, with a timeout in the devices stage).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::EdgeLink;
use crate::payload::{self, Command, DeviceMessage};
use crate::topics;

/// One message from a device, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub zone: String,
    pub device: String,
    pub message: DeviceMessage,
}

#[derive(Debug, Default)]
pub struct HubStats {
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    pub commands_sent: AtomicU64,
    pub commands_failed: AtomicU64,
}

/// Cheap handle to publish commands to devices.
#[derive(Clone)]
pub struct HubHandle {
    tx: Arc<Mutex<LinkTx>>,
    site: String,
    stats: Arc<HubStats>,
}

impl std::fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle").field("site", &self.site).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The link's queue is full or the broker's router is gone; the message was not sent.
    #[error("broker link refused the message: {0}")]
    Link(String),
}

impl HubHandle {
    fn publish(&self, topic: String, body: Vec<u8>) -> Result<(), PublishError> {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.try_publish(topic, body).map(|_| ()).map_err(|e| PublishError::Link(e.to_string()))
    }

    /// Publishes `command` to a device's command topic.
    pub fn command(&self, zone: &str, device: &str, command: &Command) -> Result<(), PublishError> {
        let body = serde_json::to_vec(command).unwrap_or_default();
        let result = self.publish(topics::device_command(&self.site, zone, device), body);
        let counter = if result.is_ok() { &self.stats.commands_sent } else { &self.stats.commands_failed };
        counter.fetch_add(1, Relaxed);
        result
    }

    /// Publishes a site event on `events/{site}/{zone}/{type}` for local consumers.
    pub fn site_event(&self, zone: &str, event_type: &str, body: Vec<u8>) -> Result<(), PublishError> {
        self.publish(topics::site_event(&self.site, zone, event_type), body)
    }
}

/// The edge's subscription loop.
pub struct Hub {
    rx: LinkRx,
    site: String,
    max_payload: usize,
    stats: Arc<HubStats>,
    /// Why the subscription made at construction failed, if it did.
    subscribe_error: Option<String>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("site", &self.site).finish_non_exhaustive()
    }
}

impl Hub {
    /// Subscribes to every device topic at once, before any device can connect (the front is not
    /// accepting yet): the router handles requests in order, so no device message published after
    /// this can miss the edge.
    pub fn new(mut link: EdgeLink, site: &str, max_payload: usize) -> (Hub, HubHandle) {
        let subscribe_error = link.tx.subscribe(topics::all_devices(site)).err().map(|e| e.to_string());
        let tx = Arc::new(Mutex::new(link.tx));
        let stats = Arc::new(HubStats::default());
        let handle = HubHandle { tx: tx.clone(), site: site.to_owned(), stats: stats.clone() };
        (Hub { rx: link.rx, site: site.to_owned(), max_payload, stats, subscribe_error }, handle)
    }

    pub fn stats(&self) -> Arc<HubStats> {
        self.stats.clone()
    }

    /// Forwards device messages into `out` until `cancel` or the broker ends.
    pub async fn run(mut self, out: mpsc::Sender<Inbound>, cancel: CancellationToken) {
        if let Some(error) = &self.subscribe_error {
            tracing::error!(%error, "Edge cannot subscribe on the embedded broker; devices are not heard.");
            return;
        }
        loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                n = self.rx.next() => n,
            };
            let publish = match next {
                Ok(Some(Notification::Forward(f))) => f.publish,
                Ok(Some(Notification::Unschedule)) => {
                    // The router paused us because our buffer filled: ask for more.
                    if let Err(error) = self.rx.wake().await {
                        tracing::error!(%error, "Embedded broker link lost.");
                        return;
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "Embedded broker link lost; devices are not heard.");
                    return;
                }
            };
            let Ok(topic) = std::str::from_utf8(&publish.topic) else { continue };
            let Some(t) = topics::parse_device(topic) else { continue };
            if t.channel == topics::Channel::Command {
                continue;
            }
            self.stats.received.fetch_add(1, Relaxed);
            match payload::parse(t.channel, &publish.payload, self.max_payload) {
                Ok(message) => {
                    let inbound = Inbound { zone: t.zone.to_owned(), device: t.device.to_owned(), message };
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return,
                        r = out.send(inbound) => if r.is_err() { return },
                    }
                }
                Err(error) => {
                    self.stats.malformed.fetch_add(1, Relaxed);
                    tracing::warn!(topic, %error, "Device payload rejected.");
                }
            }
        }
    }
}
