//! The edge's MQTT side: an embedded rumqttd broker behind an authenticating, ACL-enforcing front.
//!
//! ```text
//! device ──TCP (LAN)──▶ front (auth + topic ACL, rumqttc codec) ──loopback──▶ rumqttd ◀──local link── hub (edge)
//! ```
//!
//! Architecture invariant: rumqttd listens on loopback only, with one random per-process login
//! (the front's); the edge itself is an in-process local link. Devices can only reach it through [`front::Front`], which checks
//! every CONNECT against the [`registry::DeviceRegistry`] and every PUBLISH/SUBSCRIBE against
//! [`acl`]. Topics are built and parsed only in [`topics`].

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod acl;
pub mod broker;
pub mod front;
pub mod hub;
pub mod payload;
pub mod registry;
pub mod topics;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use broker::{BrokerError, EdgeLink, InternalBroker, Login};
pub use front::{Front, FrontStats, TlsError};
pub use hub::{Hub, HubHandle, HubStats, Inbound};
pub use payload::{Command, DeviceEvent, DeviceMessage, Status, Telemetry};
pub use registry::{
    Device, DeviceKind, DeviceRegistry, FirmwareOffer, RegistryDocument, RegistryHandle, hash_password,
};

/// Validated MQTT settings.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// LAN listener for devices (plain MQTT).
    pub listen: SocketAddr,
    pub registry: Arc<DeviceRegistry>,
    /// Largest JSON payload accepted on a device topic.
    pub max_payload: usize,
    /// Optional TLS listener (MQTTS) with the same auth and ACLs.
    pub tls: Option<TlsListenerConfig>,
}

/// `listen` address plus PEM certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsListenerConfig {
    pub listen: SocketAddr,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MqttBuildError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The LAN port could not be bound.
    #[error("cannot bind MQTT listener {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] front::TlsError),
}

/// A built MQTT side, ready to spawn.
#[derive(Debug)]
pub struct Mqtt {
    pub front: Arc<Front>,
    pub listener: TcpListener,
    pub local_addr: SocketAddr,
    pub hub: Hub,
    pub handle: HubHandle,
    pub broker: InternalBroker,
    /// The TLS listener and its acceptor, when configured.
    pub tls: Option<TlsListener>,
}

/// A bound TLS listener and its acceptor.
pub struct TlsListener {
    pub listener: TcpListener,
    pub local_addr: SocketAddr,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl MqttConfig {
    /// Starts the broker thread (it lives for the whole process), binds the LAN port and prepares
    /// the edge client. Nothing is accepted until [`Front::run`] and [`Hub::run`] are spawned.
    pub async fn build(&self) -> Result<Mqtt, MqttBuildError> {
        let acceptor = match &self.tls {
            Some(t) => Some(front::load_tls(&t.cert, &t.key)?),
            None => None,
        };
        let (broker, link) = broker::start(self.max_payload).await?;
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| MqttBuildError::Bind { addr: self.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| MqttBuildError::Bind { addr: self.listen, source })?;
        let front = Arc::new(Front {
            registry: crate::registry::RegistryHandle::new(self.registry.clone()),
            upstream: broker.addr,
            login: broker.front_login.clone(),
            max_packet: self.max_payload + 1024,
            max_payload: self.max_payload,
            stats: Arc::new(FrontStats::default()),
            sessions: front::Sessions::default(),
        });
        let tls = match (&self.tls, acceptor) {
            (Some(t), Some(acceptor)) => {
                let bind = |source| MqttBuildError::Bind { addr: t.listen, source };
                let l = TcpListener::bind(t.listen).await.map_err(bind)?;
                let addr = l.local_addr().map_err(bind)?;
                Some(TlsListener { listener: l, local_addr: addr, acceptor })
            }
            _ => None,
        };
        let (hub, handle) = Hub::new(link, self.registry.site(), self.max_payload);
        Ok(Mqtt { front, listener, local_addr, hub, handle, broker, tls })
    }
}

/// What [`spawn`] started.
#[derive(Debug)]
pub struct Spawned {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub hub: HubHandle,
    pub inbound: tokio::sync::mpsc::Receiver<Inbound>,
    pub stats: Arc<FrontStats>,
}

/// Convenience for tests and small tools: build and spawn everything on the current runtime.
pub async fn spawn(cfg: &MqttConfig, cancel: &CancellationToken) -> Result<Spawned, MqttBuildError> {
    let m = cfg.build().await?;
    let (tx, inbound) = tokio::sync::mpsc::channel(1024);
    let stats = m.front.stats.clone();
    let tls_addr = m.tls.as_ref().map(|t| t.local_addr);
    if let Some(t) = m.tls {
        tokio::spawn(m.front.clone().run_tls(t.listener, t.acceptor, cancel.child_token()));
    }
    tokio::spawn(m.front.run(m.listener, cancel.child_token()));
    tokio::spawn(m.hub.run(tx, cancel.child_token()));
    Ok(Spawned { addr: m.local_addr, tls_addr, hub: m.handle, inbound, stats })
}
