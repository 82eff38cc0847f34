//! Device sessions that end and start again at once: nothing a device says may be lost, no session
//! may be ended by another's teardown, and a stale last will never marks a live device offline.

use std::time::Duration;

use edge_mqtt::{Command, DeviceMessage, Status, Telemetry};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, QoS};

use crate::{Client, site};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(5);
const STATUS: &str = "devices/hq/lobby/temp-1/status";
const TELEMETRY: &str = "devices/hq/lobby/temp-1/telemetry";

fn offline() -> DeviceMessage {
    DeviceMessage::Status(Status { online: false, firmware: None, detail: None })
}

fn telemetry(value: f64) -> DeviceMessage {
    DeviceMessage::Telemetry(Telemetry { metric: "temperature".into(), value, unit: "celsius".into() })
}

/// temp-1 with a last will ("offline"), connected and acknowledged.
async fn connect_with_will(addr: std::net::SocketAddr) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new("temp-1", addr.ip().to_string(), addr.port());
    o.set_credentials("temp-1", "temp-1-secret");
    o.set_keep_alive(Duration::from_secs(5));
    o.set_last_will(rumqttc::LastWill::new(STATUS, r#"{"online":false}"#, QoS::AtLeastOnce, false));
    let (c, mut el) = AsyncClient::new(o, 8);
    match tokio::time::timeout(LONG, el.poll()).await {
        Ok(Ok(Event::Incoming(Incoming::ConnAck(a)))) if a.code == rumqttc::ConnectReturnCode::Success => (c, el),
        other => panic!("temp-1 not connected: {other:?}"),
    }
}

/// Polls until the connection fails (it must, within `LONG`).
async fn until_closed(el: &mut EventLoop) {
    let closed = tokio::time::timeout(LONG, async { while el.poll().await.is_ok() {} }).await;
    assert!(closed.is_ok(), "the connection was not closed");
}

/// Polls the event loop until our QoS 1 publish is acknowledged (so it has left the device).
async fn until_puback(el: &mut EventLoop) {
    let acked = tokio::time::timeout(LONG, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("session ended before its PUBACK: {e}"),
            }
        }
    })
    .await;
    assert!(acked.is_ok(), "no PUBACK");
}

#[tokio::test]
async fn a_device_that_reconnects_at_once_loses_nothing_and_others_are_unaffected() {
    let mut s = site().await;
    // a bystander session that must live through all of it
    let mut lock = Client::connect(s.addr, "lock-1", "lock-1-secret").await.unwrap();
    lock.client.subscribe("devices/hq/lobby/lock-1/command", QoS::AtLeastOnce).await.unwrap();
    assert!(matches!(lock.next(LONG).await, Some(Ok(Incoming::SubAck(_)))));

    let rounds = 30;
    let mut wills = 0;
    for i in 0..rounds {
        let (c, mut el) = connect_with_will(s.addr).await;
        let value = f64::from(i);
        let body = format!(r#"{{"metric":"temperature","value":{value},"unit":"celsius"}}"#);
        c.publish(TELEMETRY, QoS::AtLeastOnce, false, body.into_bytes()).await.unwrap();
        until_puback(&mut el).await;
        // what arrives first may only be the previous session's will, and never after this session is up
        loop {
            let got = tokio::time::timeout(LONG, s.inbound.recv())
                .await
                .unwrap_or_else(|_| panic!("round {i}: telemetry {value} lost"))
                .unwrap();
            assert_eq!(got.device, "temp-1", "round {i}");
            if got.message == telemetry(value) {
                break;
            }
            assert_eq!(got.message, offline(), "round {i}: unexpected message");
            wills += 1;
        }
        // end the session: cleanly, by vanishing, or kicked for an oversized packet
        match i % 3 {
            0 => {
                c.disconnect().await.unwrap();
                while el.poll().await.is_ok() {}
            }
            1 => drop(el),
            _ => {
                let _ = c.publish(TELEMETRY, QoS::AtLeastOnce, false, vec![b'x'; 4000]).await;
                until_closed(&mut el).await;
            }
        }
    }
    // the last session ended by a kick (29 % 3 == 2): its will arrives, and nothing else
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.expect("the last will").unwrap();
    assert_eq!(got.message, offline());
    wills += 1;
    assert!(wills <= 2 * rounds / 3, "one will at most per session that did not DISCONNECT: {wills}");
    assert!(tokio::time::timeout(SHORT, s.inbound.recv()).await.is_err(), "nothing more");

    // the bystander is still served both ways
    lock.publish("devices/hq/lobby/lock-1/events", r#"{"type":"ack","command_id":"c0","ok":true}"#).await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.expect("the lock's event").unwrap();
    assert_eq!(got.device, "lock-1");
    s.hub
        .command("lobby", "lock-1", &Command { id: "c1".into(), action: "unlock".into(), secs: Some(5), params: None })
        .unwrap();
    assert!(matches!(lock.next(LONG).await, Some(Ok(Incoming::Publish(p))) if p.topic.ends_with("lock-1/command")));
    assert!(lock.next(SHORT).await.is_none(), "the lock's session stayed up");
}

#[tokio::test]
async fn new_sessions_right_after_others_end_are_never_cut_off() {
    let mut s = site().await;
    for i in 0..20 {
        // one session ends (cleanly or by vanishing) and another device's begins at once
        let old = Client::connect(s.addr, "reader-1", "reader-1-secret").await.unwrap();
        if i % 2 == 0 {
            old.disconnect().await;
        } else {
            drop(old);
        }
        let mut fresh = Client::connect(s.addr, "lock-1", "lock-1-secret").await.unwrap();
        fresh.client.subscribe("devices/hq/lobby/lock-1/command", QoS::AtLeastOnce).await.unwrap();
        match fresh.next(LONG).await {
            Some(Ok(Incoming::SubAck(_))) => {}
            other => panic!("round {i}: the new session was cut off: {other:?}"),
        }
        fresh.publish("devices/hq/lobby/lock-1/events", r#"{"type":"ack","command_id":"c","ok":true}"#).await;
        let got = tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap_or_else(|_| panic!("round {i}: lost"));
        assert_eq!(got.unwrap().device, "lock-1", "round {i}");
        fresh.disconnect().await;
    }
}

#[tokio::test]
async fn a_second_connection_of_a_device_takes_over_without_its_will_firing() {
    let mut s = site().await;
    let (_old_c, mut old_el) = connect_with_will(s.addr).await;
    // the device comes back on a new connection while the front still holds the old one
    let (c, mut el) = connect_with_will(s.addr).await;
    until_closed(&mut old_el).await;
    c.publish(TELEMETRY, QoS::AtLeastOnce, false, br#"{"metric":"temperature","value":7,"unit":"celsius"}"#.to_vec())
        .await
        .unwrap();
    until_puback(&mut el).await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.expect("telemetry").unwrap();
    assert_eq!(got.message, telemetry(7.0), "no will from the superseded connection");
    // the new session stays up, and no stale will follows
    let idle = tokio::time::timeout(SHORT, el.poll()).await;
    assert!(!matches!(idle, Ok(Err(_))), "the new session was ended: {idle:?}");
    assert!(tokio::time::timeout(SHORT, s.inbound.recv()).await.is_err(), "no stale will");
}

#[tokio::test]
async fn what_a_device_sent_before_an_oversized_packet_still_reaches_the_edge() {
    use bytes::BytesMut;
    use rumqttc::mqttbytes::v4::{Connect, Login, Packet, Publish};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = site().await;
    let mut connect = Connect::new("temp-1");
    connect.keep_alive = 5;
    connect.login = Some(Login::new("temp-1", "temp-1-secret"));
    let mut out = BytesMut::new();
    Packet::Connect(connect).write(&mut out, usize::MAX).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&out).await.unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "accepted");
    // a good message and an oversized packet in one write: the front reads them in one batch
    let mut out = BytesMut::new();
    let good = br#"{"metric":"temperature","value":3,"unit":"celsius"}"#;
    Packet::Publish(Publish::new(TELEMETRY, QoS::AtMostOnce, good.to_vec())).write(&mut out, usize::MAX).unwrap();
    Packet::Publish(Publish::new(TELEMETRY, QoS::AtMostOnce, vec![b'x'; 4000])).write(&mut out, usize::MAX).unwrap();
    tcp.write_all(&out).await.unwrap();
    let got =
        tokio::time::timeout(LONG, s.inbound.recv()).await.expect("the message before the oversized one").unwrap();
    assert_eq!(got.message, telemetry(3.0));
    let mut rest = [0u8; 16];
    let closed = tokio::time::timeout(LONG, tcp.read(&mut rest)).await.expect("closed");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}
