//! The embedded rumqttd broker, reachable on loopback only.
//!
//! `Broker::start` blocks and has no stop, so it runs on a named `std::thread` for the life of the
//! process. Its one TCP listener accepts exactly one login, random per process: the front's (which
//! it uses for every device connection it has authenticated). The edge's own client is an
//! in-process local link (no socket: rumqttd never sets `TCP_NODELAY`, which costs ~40 ms per
//! message under load through Nagle and delayed ACKs). Nothing on the LAN can reach the broker;
//! devices only ever talk to the [`crate::front`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

/// A username and a secret whose `Debug` never prints the secret.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    password: String,
}

impl Login {
    /// A fresh random login for `username`.
    pub fn random(username: &str) -> Login {
        Login { username: username.to_owned(), password: Alphanumeric.sample_string(&mut rand::rng(), 32) }
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ username: {:?}, password: *** }}", self.username)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No free loopback port could be found for the internal listener.
    #[error("cannot pick an internal broker port")]
    Port(#[source] std::io::Error),
    /// The broker thread could not be spawned.
    #[error("cannot spawn the broker thread")]
    Thread(#[source] std::io::Error),
    /// The broker did not accept connections in time (it logs why).
    #[error("embedded broker did not come up on {0}")]
    NotListening(SocketAddr),
    /// The router refused the edge's local link.
    #[error("cannot link the edge to the embedded broker: {0}")]
    Link(String),
}

/// The running internal broker.
#[derive(Debug, Clone)]
pub struct InternalBroker {
    pub addr: SocketAddr,
    pub front_login: Login,
}

/// The edge's in-process connection to the broker.
pub struct EdgeLink {
    pub tx: rumqttd::local::LinkTx,
    pub rx: rumqttd::local::LinkRx,
}

impl std::fmt::Debug for EdgeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeLink")
    }
}

/// Starts rumqttd on `127.0.0.1:<free port>`, links the edge in process, and waits until the
/// listener accepts connections.
pub async fn start(max_payload: usize) -> Result<(InternalBroker, EdgeLink), BrokerError> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(BrokerError::Port)?;
    let front_login = Login::random("vigil-front");
    let edge_login = Login::random("vigil-edge");
    let auth: HashMap<String, String> =
        [&front_login, &edge_login].into_iter().map(|l| (l.username.clone(), l.password.clone())).collect();
    let server = rumqttd::ServerSettings {
        name: "internal".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: max_payload + 1024,
            max_inflight_count: 500,
            auth: Some(auth),
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 1000,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("internal".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    let (tx, rx) = broker.link("vigil-edge").map_err(|e| BrokerError::Link(e.to_string()))?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "Embedded MQTT broker stopped; devices are cut off.");
            }
        })
        .map_err(BrokerError::Thread)?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((InternalBroker { addr, front_login }, EdgeLink { tx, rx }));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(BrokerError::NotListening(addr))
}
