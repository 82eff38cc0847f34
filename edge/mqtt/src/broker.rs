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
/// listener accepts connections, and accepts the front's login.
///
/// The port is picked by binding port 0 and releasing it, since rumqttd binds itself; until it does,
/// anything else may take that port (another broker picking the same one, an outgoing connection's
/// local port). rumqttd then fails to bind and its thread ends, or the readiness check reaches the
/// other listener, which refuses our login: either way this broker is abandoned (its router ends
/// with its last link) and another is started on another port.
pub async fn start(max_payload: usize) -> Result<(InternalBroker, EdgeLink), BrokerError> {
    let mut last = None;
    for _ in 0..3 {
        match start_once(max_payload).await {
            Ok(started) => return Ok(started),
            Err(error @ BrokerError::NotListening(_)) => {
                tracing::warn!(%error, "Embedded broker did not come up; trying another port.");
                last = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or(BrokerError::NotListening(SocketAddr::from(([127, 0, 0, 1], 0)))))
}

async fn start_once(max_payload: usize) -> Result<(InternalBroker, EdgeLink), BrokerError> {
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
    let thread = std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "Embedded MQTT broker stopped; devices are cut off.");
            }
        })
        .map_err(BrokerError::Thread)?;
    for _ in 0..200 {
        if thread.is_finished() {
            // rumqttd returns only when its listener failed (it logs why; mostly: the port was taken)
            break;
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            if accepts(addr, &front_login).await {
                return Ok((InternalBroker { addr, front_login }, EdgeLink { tx, rx }));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(BrokerError::NotListening(addr))
}

/// Whether the broker on `addr` is ours: it accepts `login` with a session that then ends the way
/// the front ends sessions (DISCONNECT, then the broker closes first).
async fn accepts(addr: SocketAddr, login: &Login) -> bool {
    use rumqttc::mqttbytes::v4::{Connect, Login as MqttLogin, Packet};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut connect = Connect::new(format!("{}-check", login.username));
        connect.keep_alive = 10;
        connect.login = Some(MqttLogin::new(login.username.clone(), login.password()));
        let mut out = bytes::BytesMut::new();
        Packet::Connect(connect).write(&mut out, usize::MAX).ok()?;
        Packet::Disconnect.write(&mut out, usize::MAX).ok()?;
        tcp.write_all(&out).await.ok()?;
        let mut connack = [0u8; 4];
        tcp.read_exact(&mut connack).await.ok()?;
        if connack != [0x20, 0x02, 0x00, 0x00] {
            return Some(false);
        }
        let mut rest = [0u8; 64];
        while tcp.read(&mut rest).await.ok()? > 0 {}
        Some(true)
    };
    tokio::time::timeout(Duration::from_secs(5), check).await.ok().flatten().unwrap_or(false)
}
