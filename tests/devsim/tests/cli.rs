//! The `vigil-devsim` binary against a real front + broker.

use std::sync::Arc;
use std::time::Duration;

use edge_mqtt::{
    Device, DeviceEvent, DeviceKind, DeviceMessage, DeviceRegistry, MqttConfig, RegistryDocument, hash_password,
};
use tokio_util::sync::CancellationToken;

async fn run(addr: std::net::SocketAddr, password: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_vigil-devsim"))
        .args(["--broker", &addr.to_string(), "--site", "hq", "--zone", "lobby", "--id", "reader-1"])
        .args(args)
        .env("VIGIL_DEVICE_PASSWORD", password)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_reader_simulator_swipes_and_a_wrong_password_fails() {
    let registry = DeviceRegistry::from_document(RegistryDocument {
        site: "hq".into(),
        devices: vec![Device {
            id: "reader-1".into(),
            zone: "lobby".into(),
            kind: DeviceKind::Reader,
            password_sha256: hash_password("pw"),
            config: None,
            firmware: None,
        }],
    })
    .unwrap();
    let cancel = CancellationToken::new();
    let cfg = MqttConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        registry: Arc::new(registry),
        max_payload: 1024,
        tls: None,
    };
    let mut sp = edge_mqtt::spawn(&cfg, &cancel).await.unwrap();

    let out = run(sp.addr, "wrong", &["reader", "--badge", "A1"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("connect to the edge"), "{out:?}");

    let out = run(sp.addr, "pw", &["reader", "--badge", "A1"]).await;
    assert!(out.status.success(), "{out:?}");
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), sp.inbound.recv()).await {
        seen.push(m.message);
    }
    assert!(
        seen.contains(&DeviceMessage::Event(DeviceEvent::Credential { badge: Some("A1".into()), pin: None })),
        "{seen:?}"
    );
    cancel.cancel();
}
