//! The LAN front: the only way a device reaches the broker. It authenticates every CONNECT
//! against the [`DeviceRegistry`] and enforces the topic ACLs on every PUBLISH and SUBSCRIBE.
//!
//! Per connection, device → broker packets are parsed with rumqttc's MQTT 3.1.1 codec and
//! re-encoded after checking, except well-formed PUBLISHes: those are read in place and, once
//! checked, forwarded as sent (byte for byte what re-encoding would give). Broker → device bytes
//! are only split into whole frames (so the front can inject its own SUBACK/PUBACK between them)
//! and passed through.
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
//! - Sessions: every broker session ends with a DISCONNECT and the broker closing first; a device
//!   has one broker session at a time (a new connection supersedes the previous one, without its
//!   last will, and waits for its teardown: see [`Sessions`]).

use std::collections::HashMap;
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
use crate::registry::Device;
use crate::topics;

/// The broker sessions of each device, one at a time.
///
/// rumqttd 0.20 must never see two sessions of one client id overlap, nor a session's CONNECT before
/// the previous one is torn down: its takeover and its connection ids (slab slots, reused at once)
/// race with the old link's teardown, which then ends whichever session holds the slot now. So a
/// new connection of a device first supersedes the one before it (which ends without its last will:
/// the device is evidently alive) and waits, bounded, until that one has published its will if it
/// had to, ended its broker session and seen the broker close it.
#[derive(Debug, Default)]
pub struct Sessions {
    devices: std::sync::Mutex<HashMap<String, DeviceSessions>>,
}

#[derive(Debug, Default)]
struct DeviceSessions {
    /// Held by the live session until its broker session is closed.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Cancelled when a newer connection of the device arrives.
    latest: CancellationToken,
}

impl Sessions {
    /// Registers a new connection of `device`: supersedes every earlier one (live or still waiting)
    /// and returns its turn lock and its own "superseded" token.
    fn enter(&self, device: &str) -> (Arc<tokio::sync::Mutex<()>>, CancellationToken) {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let entry = devices.entry(device.to_owned()).or_default();
        let superseded = CancellationToken::new();
        std::mem::replace(&mut entry.latest, superseded.clone()).cancel();
        (entry.turn.clone(), superseded)
    }
}

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
    /// Replaceable while running: new logins use the newest registry.
    pub registry: crate::registry::RegistryHandle,
    pub upstream: SocketAddr,
    pub login: Login,
    /// Largest MQTT packet accepted from a device.
    pub max_packet: usize,
    /// Largest JSON payload accepted on a device topic.
    pub max_payload: usize,
    pub stats: Arc<FrontStats>,
    /// The broker session of each device, one at a time.
    pub sessions: Sessions,
}

const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// How long an ended session waits for the broker to close it after its DISCONNECT.
const BROKER_CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a new connection of a device waits for its previous session's teardown.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

impl Front {
    /// Accepts device connections until `cancel` fires.
    pub async fn run(self: Arc<Self>, listener: TcpListener, cancel: CancellationToken) {
        while let Some((stream, peer)) = accept(&listener, &cancel).await {
            tokio::spawn(self.clone().serve_until(stream, peer, cancel.child_token()));
        }
    }

    /// Serves one connection until it ends or `cancel` fires; errors are counted and logged.
    async fn serve_until<S>(self: Arc<Self>, stream: S, peer: SocketAddr, cancel: CancellationToken)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {}
            r = self.clone().serve(stream, peer) => if let Err(error) = r {
                self.stats.protocol_errors.fetch_add(1, Relaxed);
                tracing::debug!(%peer, %error, "Device connection ended with an error.");
            }
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
        let registry = self.registry.current();
        let device = login.as_ref().and_then(|l| registry.authenticate(&l.username, &l.password)).cloned();
        let site = registry.site().to_owned();
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
        // One broker session per device at a time: this connection supersedes the device's previous
        // one, whose teardown (will, DISCONNECT, broker close) completes before this CONNECT is sent.
        let (turn, superseded) = self.sessions.enter(&device.id);
        let turn = tokio::select! {
            biased;
            _ = superseded.cancelled() => {
                tracing::info!(%peer, device = %device.id, "Device connection superseded before its session began.");
                return Ok(());
            }
            t = tokio::time::timeout(TAKEOVER_WAIT, turn.lock_owned()) => match t {
                Ok(t) => t,
                Err(_) => {
                    tracing::error!(%peer, device = %device.id, "The device's previous session did not end in time; device refused.");
                    let mut out = BytesMut::new();
                    let _ = Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServiceUnavailable, false))
                        .write(&mut out, usize::MAX);
                    cw.write_all(&out).await?;
                    return Ok(());
                }
            },
        };
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
        let ended = CancellationToken::new();
        let mut down = tokio::spawn(downstream(ur, cw, inject_rx, ended.clone(), self.max_packet.max(1 << 20)));
        let idle = (keepalive > 0).then(|| Duration::from_millis(u64::from(keepalive) * 1500));
        let result = self.upstream_loop((&device, &site), &mut cr, &mut uw, buf, inject_tx, idle, &superseded).await;
        // Nothing more is relayed to the device; the broker side is drained until it closes.
        ended.cancel();
        let ending = match &result {
            Ok(ending) => *ending,
            Err(_) => Ending::Closed,
        };
        // The broker session ends with a DISCONNECT (after the will, if the device vanished), and the
        // front waits for rumqttd to close it first. Its link then ends on the router's side; closed
        // under it, the link would report "disconnected" for its connection id after the router had
        // already freed that id for the DISCONNECT and possibly given it to a new session, which the
        // router would then end (any device's: ids are slab slots, reused at once). rumqttd 0.20 also
        // drops packets still in its read batch when the socket closes under them.
        let mut last = BytesMut::new();
        if ending == Ending::Closed
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
        if ending != Ending::Disconnect {
            let _ = Packet::Disconnect.write(&mut last, usize::MAX);
        }
        let closed = tokio::time::timeout(BROKER_CLOSE_WAIT, async {
            if uw.write_all(&last).await.is_err() {
                return false; // the broker side is gone already
            }
            let _ = (&mut down).await;
            true
        })
        .await;
        if !matches!(closed, Ok(true)) {
            if closed.is_err() {
                tracing::warn!(device = %device.id, "Embedded broker did not close the session in time; closing it.");
            }
            down.abort();
            let _ = down.await;
        }
        let _ = uw.shutdown().await;
        drop(uw);
        self.stats.sessions_active.fetch_sub(1, Relaxed);
        tracing::info!(%peer, device = %device.id, "Device disconnected.");
        // only now may the device's next session begin
        drop(turn);
        result.map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn upstream_loop<R>(
        &self,
        (device, site): (&Device, &str),
        cr: &mut R,
        uw: &mut tokio::net::tcp::OwnedWriteHalf,
        mut buf: BytesMut,
        inject: mpsc::Sender<Bytes>,
        idle: Option<Duration>,
        superseded: &CancellationToken,
    ) -> Result<Ending, ConnectionError>
    where
        R: AsyncRead + Unpin,
    {
        let mut out = BytesMut::with_capacity(8192);
        let mut last_read = 0usize;
        let mut keepalive = idle.map(|limit| Box::pin(tokio::time::sleep(limit)));
        loop {
            // Everything already buffered is handled before reading again, then written in one go
            // (also what came before a packet that ends the connection).
            let exit = loop {
                // Fast path: a well-formed PUBLISH is checked in place, and forwarded as the device
                // sent it (no topic copy, no re-encoding). Anything else, and any PUBLISH this does
                // not parse, takes the codec below, which also reports the errors.
                if let Some((frame_len, publish)) = raw_publish(&buf, self.max_packet) {
                    let verdict = self.check_publish(device, site, publish);
                    if let PublishVerdict::Forward = verdict {
                        out.extend_from_slice(&buf[..frame_len]);
                    }
                    bytes::Buf::advance(&mut buf, frame_len);
                    match verdict {
                        PublishVerdict::Forward | PublishVerdict::Drop => continue,
                        PublishVerdict::Close => break Some(Ok(Ending::Closed)),
                        PublishVerdict::PubAck(pkid) => {
                            let mut reply = BytesMut::new();
                            if let Err(e) = Packet::PubAck(PubAck::new(pkid)).write(&mut reply, usize::MAX) {
                                break Some(Err(ConnectionError::Mqtt(e)));
                            }
                            let sent = tokio::select! {
                                biased;
                                _ = superseded.cancelled() => break Some(Ok(Ending::Superseded)),
                                r = inject.send(reply.freeze()) => r,
                            };
                            if sent.is_err() {
                                break Some(Ok(Ending::Closed));
                            }
                            continue;
                        }
                    }
                }
                let packet = match Packet::read(&mut buf, self.max_packet) {
                    Ok(p) => p,
                    Err(mqttbytes::Error::InsufficientBytes(_)) => break None,
                    Err(e) => {
                        if matches!(e, mqttbytes::Error::PayloadSizeLimitExceeded(_)) {
                            self.stats.payload_rejected.fetch_add(1, Relaxed);
                            tracing::warn!(device = %device.id, max = self.max_packet, "Oversized packet; disconnecting.");
                        }
                        break Some(Err(ConnectionError::Mqtt(e)));
                    }
                };
                match self.check(device, site, packet) {
                    Verdict::Forward(p) => {
                        if let Err(e) = p.write(&mut out, usize::MAX) {
                            break Some(Err(ConnectionError::Mqtt(e)));
                        }
                    }
                    Verdict::Reply(p) => {
                        let mut reply = BytesMut::new();
                        if let Err(e) = p.write(&mut reply, usize::MAX) {
                            break Some(Err(ConnectionError::Mqtt(e)));
                        }
                        let sent = tokio::select! {
                            biased;
                            _ = superseded.cancelled() => break Some(Ok(Ending::Superseded)),
                            r = inject.send(reply.freeze()) => r,
                        };
                        if sent.is_err() {
                            break Some(Ok(Ending::Closed));
                        }
                    }
                    Verdict::Drop => {}
                    Verdict::Close => break Some(Ok(Ending::Closed)),
                    Verdict::Disconnect => {
                        // a clean DISCONNECT reaches the broker, so the last will is not published
                        let _ = Packet::Disconnect.write(&mut out, usize::MAX);
                        break Some(Ok(Ending::Disconnect));
                    }
                }
            };
            let wrote = !out.is_empty();
            if wrote {
                uw.write_all(&out).await?;
                out.clear();
            }
            if let Some(exit) = exit {
                return exit;
            }
            if wrote {
                // let the runtime's other tasks run first: more of a busy device's packets arrive
                // meanwhile, and are read, checked and forwarded together (for a streaming device,
                // for a while)
                if last_read >= STREAMING_READ {
                    coalesce().await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            // The keepalive runs while waiting for the device: it expires `limit` after this wait
            // began. One timer serves the whole connection (re-armed only when it fires early),
            // rather than one registered and cancelled per read.
            let waiting_since = idle.map(|_| tokio::time::Instant::now());
            let read = loop {
                tokio::select! {
                    biased;
                    _ = superseded.cancelled() => {
                        tracing::info!(device = %device.id, "Device reconnected; closing its previous connection.");
                        return Ok(Ending::Superseded);
                    }
                    r = cr.read_buf(&mut buf) => break r?,
                    () = async {
                        match keepalive.as_mut() {
                            Some(timer) => timer.as_mut().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        let (Some(timer), Some(limit), Some(since)) = (keepalive.as_mut(), idle, waiting_since) else {
                            continue;
                        };
                        let due = since + limit;
                        if due > tokio::time::Instant::now() {
                            timer.as_mut().reset(due);
                            continue;
                        }
                        tracing::info!(device = %device.id, "Device keepalive expired.");
                        return Ok(Ending::Closed);
                    }
                }
            };
            if read == 0 {
                return Ok(Ending::Closed);
            }
            last_read = read;
        }
    }

    /// A last will must be one of the device's own publishable topics, with a valid payload.
    fn will_allowed(&self, site: &str, device: &Device, will: &rumqttc::mqttbytes::v4::LastWill) -> bool {
        acl::may_publish(site, device, &will.topic)
            && topics::parse_device(&will.topic)
                .is_some_and(|t| payload::parse(t.channel, &will.message, self.max_payload).is_ok())
    }

    /// The checks of a device's PUBLISH: its topic ACL, then its payload.
    fn check_publish(&self, device: &Device, site: &str, p: RawPublish<'_>) -> PublishVerdict {
        if !acl::may_publish(site, device, p.topic) {
            self.stats.publish_refused.fetch_add(1, Relaxed);
            tracing::warn!(device = %device.id, topic = %p.topic, "Publish outside the device's topics refused; disconnecting.");
            return PublishVerdict::Close;
        }
        let Some(t) = topics::parse_device(p.topic) else { return PublishVerdict::Close };
        if let Err(error) = payload::validate(t.channel, p.payload, self.max_payload) {
            self.stats.payload_rejected.fetch_add(1, Relaxed);
            tracing::warn!(device = %device.id, topic = %p.topic, %error, "Device payload rejected.");
            return match p.qos {
                QoS::AtMostOnce => PublishVerdict::Drop,
                QoS::AtLeastOnce => PublishVerdict::PubAck(p.pkid),
                QoS::ExactlyOnce => PublishVerdict::Close,
            };
        }
        self.stats.messages_forwarded.fetch_add(1, Relaxed);
        PublishVerdict::Forward
    }

    fn check(&self, device: &Device, site: &str, packet: Packet) -> Verdict {
        match packet {
            Packet::Publish(p) => {
                let raw = RawPublish { qos: p.qos, pkid: p.pkid, topic: &p.topic, payload: &p.payload };
                match self.check_publish(device, site, raw) {
                    PublishVerdict::Forward => Verdict::Forward(Packet::Publish(p)),
                    PublishVerdict::PubAck(pkid) => Verdict::Reply(Packet::PubAck(PubAck::new(pkid))),
                    PublishVerdict::Drop => Verdict::Drop,
                    PublishVerdict::Close => Verdict::Close,
                }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A clean MQTT DISCONNECT (forwarded: no last will).
    Disconnect,
    /// End of stream, a refusal, or a closed reply path (the last will fires).
    Closed,
    /// A newer connection of the same device arrived (no last will: the device is alive).
    Superseded,
}

enum Verdict {
    Forward(Packet),
    Reply(Packet),
    Drop,
    Close,
    Disconnect,
}

/// What the front does with a device's PUBLISH.
enum PublishVerdict {
    Forward,
    /// Dropped, and acknowledged by the front (a rejected QoS 1 payload).
    PubAck(u16),
    Drop,
    Close,
}

/// The parts of a PUBLISH the checks need, borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RawPublish<'a> {
    qos: QoS,
    pkid: u16,
    topic: &'a str,
    payload: &'a [u8],
}

/// The PUBLISH whole at the front of `buf`, and its frame length, when it is one exactly as
/// rumqttc's codec would read it and re-encode it to the same bytes (a minimal remaining length),
/// so that forwarding its frame as is equals re-encoding it. `None` for anything else (other
/// packets, incomplete or malformed frames): the codec handles those, errors included.
fn raw_publish(buf: &[u8], max: usize) -> Option<(usize, RawPublish<'_>)> {
    let byte1 = *buf.first()?;
    if byte1 >> 4 != 3 {
        return None;
    }
    let header = mqttbytes::check(buf.iter(), max).ok()?;
    let frame_len = header.frame_length();
    // the remaining length: 1 to 4 bytes of 7 bits, the last one without its continuation bit
    let len_len = buf[1..].iter().take(4).position(|b| b & 0x80 == 0)? + 1;
    let remaining = frame_len - 1 - len_len;
    let minimal = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    if len_len != minimal {
        return None;
    }
    let qos = match (byte1 >> 1) & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return None,
    };
    let body = &buf[1 + len_len..frame_len];
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = std::str::from_utf8(body.get(2..2 + topic_len)?).ok()?;
    let mut rest = &body[2 + topic_len..];
    let pkid = match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce | QoS::ExactlyOnce => {
            let pkid = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            rest = &rest[2..];
            if pkid == 0 {
                return None;
            }
            pkid
        }
    };
    Some((frame_len, RawPublish { qos, pkid, topic, payload: rest }))
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
/// Relaying stops when `ended` fires (the device's side is over) or the device cannot be written to;
/// the broker side is then still read, and discarded, until rumqttd closes it: the session's
/// teardown waits for that.
///
/// rumqttd never sets `TCP_NODELAY`, so its small writes wait (Nagle) for our ACK of what it sent
/// before; re-arming `TCP_QUICKACK` after every read makes us ACK at once instead of ~40 ms later.
async fn downstream<W>(
    mut ur: tokio::net::tcp::OwnedReadHalf,
    mut cw: W,
    mut inject: mpsc::Receiver<Bytes>,
    ended: CancellationToken,
    max: usize,
) where
    W: AsyncWrite + Unpin,
{
    let quickack = |ur: &tokio::net::tcp::OwnedReadHalf| {
        let _ = socket2::SockRef::from(ur.as_ref()).set_tcp_quickack(true);
    };
    // Writes to the device unless the session ends meanwhile; false when nothing more should be relayed.
    async fn relay<W: AsyncWrite + Unpin>(cw: &mut W, bytes: &[u8], ended: &CancellationToken) -> bool {
        tokio::select! {
            biased;
            _ = ended.cancelled() => false,
            r = cw.write_all(bytes) => r.is_ok(),
        }
    }
    quickack(&ur);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut relaying = true;
    loop {
        if !relaying {
            // the front's own replies fail from now on (the upstream loop ends on that)
            inject.close();
        }
        tokio::select! {
            biased;
            _ = ended.cancelled(), if relaying => relaying = false,
            frame = inject.recv(), if relaying => match frame {
                Some(f) => relaying = relay(&mut cw, &f, &ended).await,
                None => relaying = false,
            },
            n = ur.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => break,
                    Ok(_) => quickack(&ur),
                }
                if !relaying {
                    buf.clear();
                    continue;
                }
                // Length of the complete frames at the front of `buf`.
                let mut whole = 0;
                loop {
                    match mqttbytes::check(buf[whole..].iter(), max) {
                        Ok(h) => whole += h.frame_length(),
                        Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                        Err(_) => {
                            // unframeable bytes from the broker: the device's side is closed, the rest drained
                            relaying = false;
                            break;
                        }
                    }
                }
                if !relaying {
                    buf.clear();
                    let _ = tokio::time::timeout(Duration::from_secs(1), cw.shutdown()).await;
                    continue;
                }
                if whole > 0 {
                    let frames = buf.split_to(whole);
                    relaying = relay(&mut cw, &frames, &ended).await;
                }
            }
        }
    }
    // The broker closed the session: so does the device's side, unless it is already over.
    if relaying {
        tokio::select! {
            biased;
            _ = ended.cancelled() => {}
            _ = cw.shutdown() => {}
        }
    }
}

/// A read at least this large (about 25 telemetry messages) comes from a device streaming faster
/// than it is read.
const STREAMING_READ: usize = 2048;
/// How long the front keeps its thread busy before reading a streaming device again.
const COALESCE: Duration = Duration::from_micros(50);

/// Receive coalescing for a streaming device, as NICs coalesce interrupts and Linux busy-polls
/// sockets: for [`COALESCE`] the task yields to the runtime's other tasks instead of waiting on the
/// socket, so the thread does not go to sleep. The device's writes meanwhile need not wake anyone
/// (waking a sleeping reader is a large part of a small write's cost), and the next read takes them
/// all at once.
/// Measured with `THROUGHPUT_MIX=QoS0 cargo run -p edge-mqtt --release --example throughput --
/// 1000000`, six runs each, alternating: 314–366k msg/s with it (median 355k), 270–329k without
/// (median 311k). A device that is not streaming never waits here.
async fn coalesce() {
    let until = std::time::Instant::now() + COALESCE;
    while std::time::Instant::now() < until {
        tokio::task::yield_now().await;
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
        while let Some((stream, peer)) = accept(&listener, &cancel).await {
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
                front.serve_until(stream, peer, cancel).await;
            });
        }
    }
}

/// The next connection on `listener` (with `TCP_NODELAY`), or `None` once `cancel` fires. A failed
/// accept (e.g. out of file descriptors) is logged and retried after a short pause.
async fn accept(listener: &TcpListener, cancel: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = cancel.cancelled() => return None,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, peer));
            }
            Err(error) => {
                tracing::warn!(%error, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::Publish;

    fn encode(p: Publish) -> BytesMut {
        let mut out = BytesMut::new();
        Packet::Publish(p).write(&mut out, usize::MAX).unwrap();
        out
    }

    #[test]
    fn raw_publish_reads_what_the_codec_reads_and_writes() {
        let mut cases = Vec::new();
        for (qos, pkid) in [(QoS::AtMostOnce, 0), (QoS::AtLeastOnce, 7), (QoS::ExactlyOnce, 65535)] {
            for payload in [&b""[..], b"{}", &[b'x'; 200], &[b'y'; 20_000]] {
                for (dup, retain) in [(false, false), (true, true)] {
                    let mut p = Publish::new("devices/hq/lobby/t1/telemetry", qos, payload.to_vec());
                    (p.pkid, p.dup, p.retain) = (pkid, dup, retain);
                    cases.push(p);
                }
            }
        }
        cases.push(Publish::new("", QoS::AtMostOnce, b"x".to_vec()));
        for p in cases {
            let mut frame = encode(p);
            frame.extend_from_slice(b"\xc0\x00"); // a PINGREQ after it
            let (len, raw) = raw_publish(&frame, 1 << 20).expect("fast path");
            let Ok(Packet::Publish(read)) = Packet::read(&mut frame.clone(), 1 << 20) else { panic!() };
            assert_eq!(len, frame.len() - 2);
            assert_eq!(raw, RawPublish { qos: read.qos, pkid: read.pkid, topic: &read.topic, payload: &read.payload });
            assert_eq!(&encode(read)[..], &frame[..len], "forwarding as is equals re-encoding");
        }
    }

    #[test]
    fn raw_publish_leaves_everything_else_to_the_codec() {
        let mut good = Publish::new("a/b", QoS::AtLeastOnce, b"{}".to_vec());
        good.pkid = 1;
        let good = encode(good);
        assert!(raw_publish(&good, 1 << 20).is_some());
        let patched = |at: usize, byte: u8| {
            let mut f = good.to_vec();
            f[at] = byte;
            f
        };
        let cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(), // incomplete
            vec![],                          // nothing
            vec![0x30],                      // no length yet
            vec![0x30, 0x00],                // no topic (PayloadRequired)
            patched(0, 0x36),                // QoS 3
            patched(0, 0x20),                // not a PUBLISH
            {
                let mut f = good.to_vec();
                let (a, b) = (f.len() - 4, f.len() - 3);
                (f[a], f[b]) = (0, 0); // packet id 0
                f
            },
            patched(2, 0x10), // topic longer than the packet
            [&[0x32, 0x80 | (good[1] & 0x7f), 0x00][..], &good[2..]].concat(), // non-minimal length
            [&good[..4], &[0xff][..], &good[5..]].concat(), // topic not UTF-8
        ];
        for f in cases {
            assert!(raw_publish(&f, 1 << 20).is_none(), "{f:?}");
        }
        assert!(raw_publish(&good, 3).is_none(), "over the size limit");
    }
}
