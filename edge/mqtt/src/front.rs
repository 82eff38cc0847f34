//! The LAN front: the only way a device reaches the broker. It authenticates every CONNECT
//! against the [`DeviceRegistry`] and enforces the topic ACLs on every PUBLISH and SUBSCRIBE.
//!
//! Per connection, device → broker packets are parsed with rumqttc's MQTT 3.1.1 codec and
//! re-encoded after checking; broker → device bytes are only split into whole frames (so the front
//! can inject its own SUBACK/PUBACK between them) and passed through.
//!
//! - CONNECT: username = device id, password checked against the registry's hash, client id must
//!   equal the device id, a last will must target the device's own topics. Refused with the
//!   matching CONNACK code (`BadUserNamePassword`, `BadClientId`, `NotAuthorized`), then closed.
//!   Accepted logins are replaced by the front's own broker login before forwarding.
//! - PUBLISH outside the device's topics: the connection is closed (MQTT 3.1.1 has no negative
//!   PUBACK), counted and logged at WARN.
//! - PUBLISH with an oversized or malformed JSON payload: dropped, counted, logged; a QoS 1 message is
//!   acknowledged by the front so the device does not resend it forever; QoS 2 closes.
//! - SUBSCRIBE to anything but the device's own command topic: answered by the front with a SUBACK
//!   of failure codes (0x80) and never reaches the broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Login as MqttLogin, Packet, PubAck, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::acl;
use crate::broker::Login;
use crate::payload;
use crate::registry::{Device, DeviceRegistry};
use crate::topics;

/// Counters shown on the edge status endpoint.
#[derive(Debug, Default)]
pub struct FrontStats {
    pub connections: AtomicU64,
    pub auth_refused: AtomicU64,
    pub publish_refused: AtomicU64,
    pub subscribe_refused: AtomicU64,
    pub payload_rejected: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub messages_forwarded: AtomicU64,
    /// Device sessions currently open to the broker (a gauge).
    pub sessions_active: AtomicU64,
}

/// Why one device connection ended abnormally (logged, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("io")]
    Io(#[from] std::io::Error),
    #[error("mqtt: {0}")]
    Mqtt(mqttbytes::Error),
    #[error("first packet was not CONNECT")]
    NotConnect,
    #[error("no CONNECT within the deadline")]
    ConnectTimeout,
    #[error("unexpected {0} from a device")]
    Unexpected(&'static str),
}

/// The front's settings and shared state.
#[derive(Debug)]
pub struct Front {
    pub registry: Arc<DeviceRegistry>,
    pub upstream: SocketAddr,
    pub login: Login,
    /// Largest MQTT packet accepted from a device.
    pub max_packet: usize,
    /// Largest JSON payload accepted on a device topic.
    pub max_payload: usize,
    pub stats: Arc<FrontStats>,
}

const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

impl Front {
    /// Accepts device connections until `cancel` fires.
    pub async fn run(self: Arc<Self>, listener: TcpListener, cancel: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let front = self.clone();
            let cancel = cancel.child_token();
            tokio::spawn(async move {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {}
                    r = front.clone().serve(stream, peer) => if let Err(error) = r {
                        front.stats.protocol_errors.fetch_add(1, Relaxed);
                        tracing::debug!(%peer, %error, "Device connection ended with an error.");
                    }
                }
            });
        }
    }

    /// Serves one device connection (any byte stream: TCP or TLS).
    pub async fn serve<S>(self: Arc<Self>, stream: S, peer: SocketAddr) -> Result<(), ConnectionError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.stats.connections.fetch_add(1, Relaxed);
        let (mut cr, mut cw) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(4096);
        let first = tokio::time::timeout(CONNECT_DEADLINE, read_packet(&mut cr, &mut buf, self.max_packet))
            .await
            .map_err(|_| ConnectionError::ConnectTimeout)??;
        let Some(Packet::Connect(mut connect)) = first else { return Err(ConnectionError::NotConnect) };
        let login = connect.login.take();
        let device = login.as_ref().and_then(|l| self.registry.authenticate(&l.username, &l.password)).cloned();
        let site = self.registry.site().to_owned();
        let refusal = match &device {
            None => Some(ConnectReturnCode::BadUserNamePassword),
            Some(d) if connect.client_id != d.id => Some(ConnectReturnCode::BadClientId),
            Some(d) if connect.last_will.as_ref().is_some_and(|w| !self.will_allowed(&site, d, w)) => {
                Some(ConnectReturnCode::NotAuthorized)
            }
            Some(_) => None,
        };
        if let Some(code) = refusal {
            self.stats.auth_refused.fetch_add(1, Relaxed);
            let username = login.as_ref().map(|l| l.username.as_str()).unwrap_or("");
            tracing::warn!(%peer, username, client_id = %connect.client_id, ?code, "Device connection refused.");
            let mut out = BytesMut::new();
            let _ = Packet::ConnAck(ConnAck::new(code, false)).write(&mut out, usize::MAX);
            cw.write_all(&out).await?;
            cw.shutdown().await?;
            return Ok(());
        }
        let Some(device) = device else { return Ok(()) };
        connect.login = Some(MqttLogin::new(self.login.username.clone(), self.login.password()));
        // The front publishes the last will itself when the device goes away without DISCONNECT:
        // rumqttd 0.20 fires wills even after a clean DISCONNECT when the socket closes right after.
        let will = connect.last_will.take();
        // The front also owns the keepalive (1.5 × the device's, MQTT 3.1.1 §3.1.2.10), so a dead
        // device's will is published by the front while the broker session is still up. rumqttd
        // gets a longer keepalive, and never 0 (which it would treat as an immediate timeout).
        let keepalive = connect.keep_alive;
        connect.keep_alive = if keepalive == 0 { u16::MAX } else { keepalive.saturating_mul(2) };
        let upstream = match TcpStream::connect(self.upstream).await {
            Ok(u) => u,
            Err(error) => {
                tracing::error!(%error, device = %device.id, "Embedded broker unreachable; device refused.");
                let mut out = BytesMut::new();
                let _ = Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServiceUnavailable, false))
                    .write(&mut out, usize::MAX);
                cw.write_all(&out).await?;
                return Err(error.into());
            }
        };
        upstream.set_nodelay(true)?;
        let (ur, mut uw) = upstream.into_split();
        let mut out = BytesMut::new();
        Packet::Connect(connect).write(&mut out, usize::MAX).map_err(ConnectionError::Mqtt)?;
        uw.write_all(&out).await?;
        tracing::info!(%peer, device = %device.id, zone = %device.zone, "Device connected.");

        self.stats.sessions_active.fetch_add(1, Relaxed);
        let (inject_tx, inject_rx) = mpsc::channel::<Bytes>(64);
        let mut down = tokio::spawn(downstream(ur, cw, inject_rx, self.max_packet.max(1 << 20)));
        let idle = (keepalive > 0).then(|| Duration::from_millis(u64::from(keepalive) * 1500));
        let result = self.upstream_loop((&device, &site), &mut cr, &mut uw, buf, inject_tx, idle).await;
        // rumqttd 0.20 drops packets still in its read batch when the socket closes under them, so
        // the front ends every session with a DISCONNECT (after the will, if the device vanished)
        // and waits for the broker to close first.
        let mut last = BytesMut::new();
        if !matches!(result, Ok(Ending::Disconnect))
            && let Some(w) = will
        {
            tracing::info!(device = %device.id, topic = %w.topic, "Device gone without DISCONNECT; publishing its last will.");
            let publish = rumqttc::mqttbytes::v4::Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: w.retain,
                topic: w.topic,
                pkid: 0,
                payload: w.message,
            };
            let _ = Packet::Publish(publish).write(&mut last, usize::MAX);
        }
        if !matches!(result, Ok(Ending::Disconnect)) {
            let _ = Packet::Disconnect.write(&mut last, usize::MAX);
        }
        if uw.write_all(&last).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut down).await;
        }
        let _ = uw.shutdown().await;
        down.abort();
        self.stats.sessions_active.fetch_sub(1, Relaxed);
        tracing::info!(%peer, device = %device.id, "Device disconnected.");
        result.map(|_| ())
    }

    async fn upstream_loop<R>(
        &self,
        (device, site): (&Device, &str),
        cr: &mut R,
        uw: &mut tokio::net::tcp::OwnedWriteHalf,
        mut buf: BytesMut,
        inject: mpsc::Sender<Bytes>,
        idle: Option<Duration>,
    ) -> Result<Ending, ConnectionError>
    where
        R: AsyncRead + Unpin,
    {
        let mut out = BytesMut::with_capacity(8192);
        loop {
            // Everything already buffered is handled before reading again, then written in one go.
            loop {
                let packet = match Packet::read(&mut buf, self.max_packet) {
                    Ok(p) => p,
                    Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                    Err(e) => {
                        if matches!(e, mqttbytes::Error::PayloadSizeLimitExceeded(_)) {
                            self.stats.payload_rejected.fetch_add(1, Relaxed);
                            tracing::warn!(device = %device.id, max = self.max_packet, "Oversized packet; disconnecting.");
                        }
                        return Err(ConnectionError::Mqtt(e));
                    }
                };
                match self.check(device, site, packet) {
                    Verdict::Forward(p) => {
                        p.write(&mut out, usize::MAX).map_err(ConnectionError::Mqtt)?;
                    }
                    Verdict::Reply(p) => {
                        let mut reply = BytesMut::new();
                        p.write(&mut reply, usize::MAX).map_err(ConnectionError::Mqtt)?;
                        if inject.send(reply.freeze()).await.is_err() {
                            return Ok(Ending::Closed);
                        }
                    }
                    Verdict::Drop => {}
                    Verdict::Close => {
                        uw.write_all(&out).await?;
                        return Ok(Ending::Closed);
                    }
                    Verdict::Disconnect => {
                        // a clean DISCONNECT reaches the broker, so the last will is not published
                        Packet::Disconnect.write(&mut out, usize::MAX).map_err(ConnectionError::Mqtt)?;
                        uw.write_all(&out).await?;
                        return Ok(Ending::Disconnect);
                    }
                }
            }
            if !out.is_empty() {
                uw.write_all(&out).await?;
                out.clear();
            }
            let read = match idle {
                Some(limit) => match tokio::time::timeout(limit, cr.read_buf(&mut buf)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        tracing::info!(device = %device.id, "Device keepalive expired.");
                        return Ok(Ending::Closed);
                    }
                },
                None => cr.read_buf(&mut buf).await?,
            };
            if read == 0 {
                return Ok(Ending::Closed);
            }
        }
    }

    /// A last will must be one of the device's own publishable topics, with a valid payload.
    fn will_allowed(&self, site: &str, device: &Device, will: &rumqttc::mqttbytes::v4::LastWill) -> bool {
        acl::may_publish(site, device, &will.topic)
            && topics::parse_device(&will.topic)
                .is_some_and(|t| payload::parse(t.channel, &will.message, self.max_payload).is_ok())
    }

    fn check(&self, device: &Device, site: &str, packet: Packet) -> Verdict {
        match packet {
            Packet::Publish(p) => {
                if !acl::may_publish(site, device, &p.topic) {
                    self.stats.publish_refused.fetch_add(1, Relaxed);
                    tracing::warn!(device = %device.id, topic = %p.topic, "Publish outside the device's topics refused; disconnecting.");
                    return Verdict::Close;
                }
                let Some(t) = topics::parse_device(&p.topic) else { return Verdict::Close };
                if let Err(error) = payload::parse(t.channel, &p.payload, self.max_payload) {
                    self.stats.payload_rejected.fetch_add(1, Relaxed);
                    tracing::warn!(device = %device.id, topic = %p.topic, %error, "Device payload rejected.");
                    return match p.qos {
                        QoS::AtMostOnce => Verdict::Drop,
                        QoS::AtLeastOnce => Verdict::Reply(Packet::PubAck(PubAck::new(p.pkid))),
                        QoS::ExactlyOnce => Verdict::Close,
                    };
                }
                self.stats.messages_forwarded.fetch_add(1, Relaxed);
                Verdict::Forward(Packet::Publish(p))
            }
            Packet::Subscribe(s) => {
                if s.filters.iter().all(|f| acl::may_subscribe(site, device, &f.path)) {
                    return Verdict::Forward(Packet::Subscribe(s));
                }
                self.stats.subscribe_refused.fetch_add(1, Relaxed);
                let filters: Vec<&str> = s.filters.iter().map(|f| f.path.as_str()).collect();
                tracing::warn!(device = %device.id, ?filters, "Subscribe outside the device's command topic refused.");
                let codes = vec![SubscribeReasonCode::Failure; s.filters.len()];
                Verdict::Reply(Packet::SubAck(SubAck::new(s.pkid, codes)))
            }
            Packet::Disconnect => Verdict::Disconnect,
            p @ (Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq) => Verdict::Forward(p),
            other => {
                self.stats.protocol_errors.fetch_add(1, Relaxed);
                tracing::warn!(device = %device.id, packet = packet_name(&other), "Unexpected packet from a device; disconnecting.");
                Verdict::Close
            }
        }
    }
}

/// How a device's side of a connection ended.
enum Ending {
    /// A clean MQTT DISCONNECT (forwarded: no last will).
    Disconnect,
    /// End of stream, a refusal, or a closed reply path (the last will fires).
    Closed,
}

enum Verdict {
    Forward(Packet),
    Reply(Packet),
    Drop,
    Close,
    Disconnect,
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::SubAck(_) => "SUBACK",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingResp => "PINGRESP",
        _ => "packet",
    }
}

/// Reads until one whole packet is buffered; `None` at a clean end of stream.
async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, ConnectionError> {
    loop {
        match Packet::read(buf, max) {
            Ok(p) => return Ok(Some(p)),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(ConnectionError::Mqtt(e)),
        }
        if r.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Broker → device: whole frames passed through, with the front's own replies slotted in between.
///
/// rumqttd never sets `TCP_NODELAY`, so its small writes wait (Nagle) for our ACK of what it sent
/// before; re-arming `TCP_QUICKACK` after every read makes us ACK at once instead of ~40 ms later.
async fn downstream<W>(mut ur: tokio::net::tcp::OwnedReadHalf, mut cw: W, mut inject: mpsc::Receiver<Bytes>, max: usize)
where
    W: AsyncWrite + Unpin,
{
    let quickack = |ur: &tokio::net::tcp::OwnedReadHalf| {
        let _ = socket2::SockRef::from(ur.as_ref()).set_tcp_quickack(true);
    };
    quickack(&ur);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        tokio::select! {
            biased;
            frame = inject.recv() => match frame {
                Some(f) => if cw.write_all(&f).await.is_err() { return },
                None => return,
            },
            n = ur.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => { let _ = cw.shutdown().await; return }
                    Ok(_) => quickack(&ur),
                }
                // Length of the complete frames at the front of `buf`.
                let mut whole = 0;
                loop {
                    match mqttbytes::check(buf[whole..].iter(), max) {
                        Ok(h) => whole += h.frame_length(),
                        Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                        Err(_) => { let _ = cw.shutdown().await; return }
                    }
                }
                if whole > 0 {
                    let frames = buf.split_to(whole);
                    if cw.write_all(&frames).await.is_err() { return }
                }
            }
        }
    }
}

/// Why TLS material could not be loaded (configuration errors).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read tls certificate {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("cannot read tls private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("tls certificate and key do not make a valid configuration: {0}")]
    Config(String),
}

/// Loads a PEM chain and key into a rustls acceptor (TLS 1.2/1.3, aws-lc-rs, no client certificates).
pub fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate { path: cert.display().to_string(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            message: "no certificate in file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), message: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

const TLS_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

impl Front {
    /// Like [`Front::run`], with TLS terminated in process; the same auth and ACLs apply.
    pub async fn run_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: tokio_rustls::TlsAcceptor,
        cancel: CancellationToken,
    ) {
        loop {
            let accepted = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (front, tls, cancel) = (self.clone(), tls.clone(), cancel.child_token());
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(TLS_HANDSHAKE_DEADLINE, tls.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(error)) => {
                        front.stats.protocol_errors.fetch_add(1, Relaxed);
                        tracing::warn!(%peer, %error, "TLS handshake failed.");
                        return;
                    }
                    Err(_) => {
                        front.stats.protocol_errors.fetch_add(1, Relaxed);
                        tracing::warn!(%peer, "TLS handshake timed out.");
                        return;
                    }
                };
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {}
                    r = front.clone().serve(stream, peer) => if let Err(error) = r {
                        front.stats.protocol_errors.fetch_add(1, Relaxed);
                        tracing::debug!(%peer, %error, "Device connection ended with an error.");
                    }
                }
            });
        }
    }
}
