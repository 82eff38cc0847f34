//! The broker, front and hub with real MQTT clients (rumqttc here; mosquitto_pub/sub in `cli`).

#![allow(missing_debug_implementations)]

mod acl;
mod cli;
mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edge_mqtt::{Device, DeviceKind, DeviceRegistry, MqttConfig, RegistryDocument, hash_password};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, Incoming, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const SITE: &str = "hq";

pub fn registry() -> DeviceRegistry {
    let dev = |id: &str, zone: &str, kind| Device {
        id: id.into(),
        zone: zone.into(),
        kind,
        password_sha256: hash_password(&format!("{id}-secret")),
        config: None,
        firmware: None,
    };
    DeviceRegistry::from_document(RegistryDocument {
        site: SITE.into(),
        devices: vec![
            dev("lock-1", "lobby", DeviceKind::Lock),
            dev("reader-1", "lobby", DeviceKind::Reader),
            dev("temp-1", "lobby", DeviceKind::Temperature),
            dev("probe", "lobby", DeviceKind::Temperature),
        ],
    })
    .unwrap()
}

pub struct Site {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub hub: edge_mqtt::HubHandle,
    pub inbound: mpsc::Receiver<edge_mqtt::Inbound>,
    pub stats: Arc<edge_mqtt::FrontStats>,
    pub cancel: CancellationToken,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub async fn site() -> Site {
    site_with(None).await
}

pub async fn site_with(tls: Option<edge_mqtt::TlsListenerConfig>) -> Site {
    let cancel = CancellationToken::new();
    let cfg =
        MqttConfig { listen: "127.0.0.1:0".parse().unwrap(), registry: Arc::new(registry()), max_payload: 1024, tls };
    let sp = edge_mqtt::spawn(&cfg, &cancel).await.unwrap();
    // The hub subscribes asynchronously after connecting; wait until a message makes it through.
    let mut s =
        Site { addr: sp.addr, tls_addr: sp.tls_addr, hub: sp.hub, inbound: sp.inbound, stats: sp.stats, cancel };
    let probe = Client::connect(s.addr, "probe", "probe-secret").await.unwrap();
    for _ in 0..20 {
        probe.publish("devices/hq/lobby/probe/status", r#"{"online":true}"#).await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), s.inbound.recv()).await {
            break;
        }
    }
    // late duplicates of the probe's message must not reach the tests
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), s.inbound.recv()).await {}
    probe.disconnect().await;
    s
}

/// A device client whose events arrive on a channel.
pub struct Client {
    pub client: AsyncClient,
    pub events: mpsc::UnboundedReceiver<Result<Incoming, String>>,
}

impl Client {
    /// Connects and waits for the CONNACK; `Err(code)` when refused.
    pub async fn connect(addr: SocketAddr, id: &str, password: &str) -> Result<Client, String> {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_credentials(id, password);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, mut events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(i)) => {
                        if tx.send(Ok(i)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(Ok(Incoming::ConnAck(a)))) if a.code == ConnectReturnCode::Success => Ok(Client { client, events }),
            other => Err(format!("{other:?}")),
        }
    }

    /// Queues a QoS 1 publish; a client whose connection already ended reports it on `events`.
    pub async fn publish(&self, topic: &str, payload: &str) {
        let _ = self.client.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).await;
    }

    /// Next incoming packet other than pings and acks of our own publishes.
    pub async fn next(&mut self, within: Duration) -> Option<Result<Incoming, String>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Ok(Incoming::PingResp | Incoming::PubAck(_)))) => continue,
                Ok(other) => return other,
                Err(_) => return None,
            }
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}
