use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use edge_mqtt::{Command, DeviceEvent, DeviceMessage, Inbound, Telemetry};
use rumqttc::{Incoming, QoS, SubscribeReasonCode};

use crate::{Client, site};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(5);

fn telemetry(value: f64) -> DeviceMessage {
    DeviceMessage::Telemetry(Telemetry { metric: "temperature".into(), value, unit: "celsius".into() })
}

#[tokio::test]
async fn wrong_password_unknown_device_and_foreign_client_id_are_refused() {
    let s = site().await;
    let refused = Client::connect(s.addr, "lock-1", "wrong").await.err().unwrap();
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    let refused = Client::connect(s.addr, "ghost", "ghost-secret").await.err().unwrap();
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    assert_eq!(s.stats.auth_refused.load(Relaxed), 2);
    assert!(Client::connect(s.addr, "lock-1", "lock-1-secret").await.is_ok());
}

#[tokio::test]
async fn a_sensor_cannot_command_a_lock_nor_read_its_commands() {
    let s = site().await;
    let mut lock = Client::connect(s.addr, "lock-1", "lock-1-secret").await.unwrap();
    lock.client.subscribe("devices/hq/lobby/lock-1/command", QoS::AtLeastOnce).await.unwrap();
    assert!(
        matches!(lock.next(LONG).await, Some(Ok(Incoming::SubAck(a))) if a.return_codes == [SubscribeReasonCode::Success(QoS::AtLeastOnce)])
    );

    let mut sensor = Client::connect(s.addr, "temp-1", "temp-1-secret").await.unwrap();
    // subscribing to another device's commands (or a wildcard) is answered with failure codes
    for filter in ["devices/hq/lobby/lock-1/command", "devices/hq/#", "#"] {
        sensor.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        match sensor.next(LONG).await {
            Some(Ok(Incoming::SubAck(a))) => assert_eq!(a.return_codes, [SubscribeReasonCode::Failure], "{filter}"),
            other => panic!("{filter}: {other:?}"),
        }
    }
    assert_eq!(s.stats.subscribe_refused.load(Relaxed), 3);

    // publishing to the lock's command topic gets the sensor disconnected; the lock hears nothing
    sensor.publish("devices/hq/lobby/lock-1/command", r#"{"id":"evil","action":"unlock","secs":60}"#).await;
    assert!(matches!(sensor.next(LONG).await, Some(Err(_))), "sensor is disconnected");
    assert!(lock.next(SHORT).await.is_none(), "the lock received nothing");
    assert_eq!(s.stats.publish_refused.load(Relaxed), 1);

    // the edge's own command does reach the lock
    s.hub
        .command("lobby", "lock-1", &Command { id: "c1".into(), action: "unlock".into(), secs: Some(5), params: None })
        .unwrap();
    match lock.next(LONG).await {
        Some(Ok(Incoming::Publish(p))) => {
            assert_eq!(p.topic, "devices/hq/lobby/lock-1/command");
            let c: Command = serde_json::from_slice(&p.payload).unwrap();
            assert_eq!(c.id, "c1");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_and_oversized_payloads_are_dropped_and_the_connection_survives() {
    let mut s = site().await;
    let mut lock = Client::connect(s.addr, "lock-1", "lock-1-secret").await.unwrap();
    lock.client.subscribe("devices/hq/lobby/lock-1/command", QoS::AtLeastOnce).await.unwrap();
    assert!(matches!(lock.next(LONG).await, Some(Ok(Incoming::SubAck(_)))));
    let mut sensor = Client::connect(s.addr, "temp-1", "temp-1-secret").await.unwrap();
    sensor.publish("devices/hq/lobby/temp-1/telemetry", "not json").await;
    sensor.publish("devices/hq/lobby/temp-1/telemetry", r#"{"metric":"temperature"}"#).await;
    sensor.publish("devices/hq/lobby/temp-1/events", r#"{"type":"self_destruct"}"#).await;
    // over the payload bound (1 KiB) but within the packet bound: dropped, connection kept
    let big = format!(r#"{{"metric":"temperature","value":1,"unit":"{}"}}"#, "x".repeat(1500));
    sensor.publish("devices/hq/lobby/temp-1/telemetry", &big).await;
    sensor
        .publish("devices/hq/lobby/temp-1/telemetry", r#"{"metric":"temperature","value":31.5,"unit":"celsius"}"#)
        .await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap().unwrap();
    assert_eq!(
        got,
        Inbound {
            zone: "lobby".into(),
            device: "temp-1".into(),
            message: DeviceMessage::Telemetry(Telemetry {
                metric: "temperature".into(),
                value: 31.5,
                unit: "celsius".into()
            })
        }
    );
    assert!(sensor.next(SHORT).await.is_none(), "still connected, nothing unexpected");
    assert_eq!(s.stats.payload_rejected.load(Relaxed), 4);
    // over the packet bound (payload + 1 KiB): the connection is closed, the broker and front live on
    let huge = "x".repeat(4000);
    sensor.publish("devices/hq/lobby/temp-1/telemetry", &huge).await;
    assert!(matches!(sensor.next(LONG).await, Some(Err(_))), "disconnected");
    // the same device reconnects at once: its new session works and what it says reaches the edge
    let mut again = Client::connect(s.addr, "temp-1", "temp-1-secret").await.unwrap();
    again.publish("devices/hq/lobby/temp-1/telemetry", r#"{"metric":"temperature","value":32,"unit":"celsius"}"#).await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.expect("telemetry after the reconnect").unwrap();
    assert_eq!((got.device.as_str(), got.message), ("temp-1", telemetry(32.0)));
    // another device's session, open all along, is unaffected both ways
    lock.publish("devices/hq/lobby/lock-1/events", r#"{"type":"ack","command_id":"c0","ok":true}"#).await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.expect("the lock's event").unwrap();
    assert_eq!(got.device, "lock-1");
    s.hub
        .command("lobby", "lock-1", &Command { id: "c1".into(), action: "unlock".into(), secs: Some(5), params: None })
        .unwrap();
    assert!(matches!(lock.next(LONG).await, Some(Ok(Incoming::Publish(p))) if p.topic.ends_with("lock-1/command")));
    assert!(again.next(SHORT).await.is_none(), "the new session stays up");
    assert!(lock.next(SHORT).await.is_none(), "the lock's session stays up");
}

#[tokio::test]
async fn reader_events_and_lock_acks_reach_the_edge() {
    let mut s = site().await;
    let reader = Client::connect(s.addr, "reader-1", "reader-1-secret").await.unwrap();
    reader.publish("devices/hq/lobby/reader-1/events", r#"{"type":"credential","badge":"A1"}"#).await;
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap().unwrap();
    assert_eq!(got.device, "reader-1");
    assert_eq!(got.message, DeviceMessage::Event(DeviceEvent::Credential { badge: Some("A1".into()), pin: None }));
    // a last will outside the device's own topics is refused at CONNECT
    let mut opts = rumqttc::MqttOptions::new("reader-1", s.addr.ip().to_string(), s.addr.port());
    opts.set_credentials("reader-1", "reader-1-secret");
    opts.set_last_will(rumqttc::LastWill::new("devices/hq/lobby/lock-1/command", "x", QoS::AtLeastOnce, false));
    let (_c, mut el) = rumqttc::AsyncClient::new(opts, 8);
    let err = el.poll().await.unwrap_err().to_string();
    assert!(err.contains("NotAuthorized"), "{err}");
}

#[tokio::test]
async fn garbage_and_silence_do_not_hurt_the_front() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = site().await;
    let junk: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\n\r\n",
        &[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f],       // malformed remaining length
        &[0x10, 0x02, 0x00, 0x04],                   // truncated CONNECT
        &[0x30, 0x05, 0x00, 0x01, b'a', b'b', b'c'], // PUBLISH before CONNECT
        &[0xf0, 0x00],                               // reserved packet type
    ];
    for bytes in junk {
        let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        c.write_all(bytes).await.unwrap();
        let mut buf = [0u8; 16];
        // closed (or nothing) within the deadline, never a CONNACK success
        let _ = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;
    }
    // still serving
    let t = Client::connect(s.addr, "temp-1", "temp-1-secret").await.unwrap();
    t.publish("devices/hq/lobby/temp-1/status", r#"{"online":true}"#).await;
    assert!(tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap().is_some());
}

#[tokio::test]
async fn the_last_will_marks_a_dropped_device_offline_but_not_a_clean_disconnect() {
    use edge_mqtt::Status;
    let mut s = site().await;
    let connect = || async {
        let mut o = rumqttc::MqttOptions::new("temp-1", s.addr.ip().to_string(), s.addr.port());
        o.set_credentials("temp-1", "temp-1-secret");
        o.set_last_will(rumqttc::LastWill::new(
            "devices/hq/lobby/temp-1/status",
            r#"{"online":false}"#,
            QoS::AtLeastOnce,
            false,
        ));
        let (c, mut el) = rumqttc::AsyncClient::new(o, 8);
        assert!(matches!(el.poll().await, Ok(rumqttc::Event::Incoming(Incoming::ConnAck(_)))));
        (c, el)
    };
    let offline = DeviceMessage::Status(Status { online: false, firmware: None, detail: None });

    // clean DISCONNECT: no will
    let (c, mut el) = connect().await;
    c.disconnect().await.unwrap();
    while el.poll().await.is_ok() {}
    let got = tokio::time::timeout(SHORT, s.inbound.recv()).await;
    assert!(got.is_err(), "no will after a clean disconnect: {got:?}");

    // connection dropped: the will arrives
    let (_c, el) = connect().await;
    drop(el);
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap().unwrap();
    assert_eq!((got.device.as_str(), got.message), ("temp-1", offline));
}

#[tokio::test]
async fn a_device_that_goes_silent_is_declared_dead_after_one_and_a_half_keepalives() {
    use bytes::BytesMut;
    use edge_mqtt::Status;
    use rumqttc::mqttbytes::v4::{Connect, LastWill, Login, Packet};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = site().await;
    let mut connect = Connect::new("temp-1");
    connect.keep_alive = 1;
    connect.login = Some(Login::new("temp-1", "temp-1-secret"));
    connect.last_will =
        Some(LastWill::new("devices/hq/lobby/temp-1/status", r#"{"online":false}"#, QoS::AtLeastOnce, false));
    let mut out = BytesMut::new();
    Packet::Connect(connect).write(&mut out, usize::MAX).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(&out).await.unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "accepted");
    let started = std::time::Instant::now();
    // then nothing: no PINGREQ, socket left open
    let got = tokio::time::timeout(LONG, s.inbound.recv()).await.unwrap().unwrap();
    assert_eq!(got.message, DeviceMessage::Status(Status { online: false, firmware: None, detail: None }));
    assert!(started.elapsed() >= Duration::from_millis(1400), "{:?}", started.elapsed());
}
