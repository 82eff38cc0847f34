//! The same guarantees seen from Debian's `mosquitto_pub` / `mosquitto_sub` (package
//! `mosquitto-clients`, installed by tests/setup/deps.sh). Missing tools fail the tests loudly.

use std::time::Duration;

use edge_mqtt::DeviceMessage;
use tokio::process::Command;

use crate::{Client, site, site_with};

async fn run(tool: &str, args: &[String]) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{tool} must be installed (apt-get install mosquitto-clients): {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn base(port: &str, id: &'static str, password: &'static str) -> Vec<String> {
    ["-h", "127.0.0.1", "-p", port, "-i", id, "-u", id, "-P", password, "-q", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[tokio::test]
async fn mosquitto_clients_see_auth_and_acls() {
    let mut s = site().await;
    let port = s.addr.port().to_string();
    let args = |id, pw, rest: &[&str]| {
        let mut v = base(&port, id, pw);
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };

    // wrong password: refused
    let a = args("temp-1", "wrong", &["-t", "devices/hq/lobby/temp-1/status", "-m", r#"{"online":true}"#]);
    let (ok, text) = run("mosquitto_pub", &a).await;
    assert!(!ok, "{text}");
    assert!(text.to_lowercase().contains("refused") || text.to_lowercase().contains("not authorised"), "{text}");

    // a sensor subscribing to a lock's commands: every subscription denied
    let a = args("temp-1", "temp-1-secret", &["-t", "devices/hq/lobby/lock-1/command", "-C", "1", "-W", "3"]);
    let (_, text) = run("mosquitto_sub", &a).await;
    assert!(text.contains("All subscription requests were denied"), "{text}");

    // a sensor publishing to a lock's command topic: the lock hears nothing
    let mut lock = Client::connect(s.addr, "lock-1", "lock-1-secret").await.unwrap();
    lock.client.subscribe("devices/hq/lobby/lock-1/command", rumqttc::QoS::AtLeastOnce).await.unwrap();
    assert!(matches!(lock.next(Duration::from_secs(5)).await, Some(Ok(rumqttc::Incoming::SubAck(_)))));
    let a = args(
        "temp-1",
        "temp-1-secret",
        &["-t", "devices/hq/lobby/lock-1/command", "-m", r#"{"id":"x","action":"unlock"}"#],
    );
    let _ = run("mosquitto_pub", &a).await;
    assert!(lock.next(Duration::from_millis(300)).await.is_none(), "the lock received nothing");

    // its own telemetry goes through to the edge
    let a = args(
        "temp-1",
        "temp-1-secret",
        &["-t", "devices/hq/lobby/temp-1/telemetry", "-m", r#"{"metric":"temperature","value":22.5,"unit":"celsius"}"#],
    );
    let (ok, text) = run("mosquitto_pub", &a).await;
    assert!(ok, "{text}");
    let got = tokio::time::timeout(Duration::from_secs(5), s.inbound.recv()).await.unwrap().unwrap();
    assert!(matches!(got.message, DeviceMessage::Telemetry(t) if t.value == 22.5));
}

/// A fresh CA and a server certificate for 127.0.0.1, as PEM files in `dir`: (ca, cert, key).
fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Vigil test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let files = (dir.join("ca.pem"), dir.join("edge.pem"), dir.join("edge.key"));
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[tokio::test]
async fn mqtts_listener_applies_the_same_auth_and_acls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let tls = edge_mqtt::TlsListenerConfig { listen: "127.0.0.1:0".parse().unwrap(), cert, key };
    let mut s = site_with(Some(tls)).await;
    let port = s.tls_addr.unwrap().port().to_string();
    let ca = ca.display().to_string();
    let args = |id, pw, rest: &[&str]| {
        let mut v = base(&port, id, pw);
        v.extend(["--cafile".to_string(), ca.clone()]);
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let a = args("temp-1", "wrong", &["-t", "devices/hq/lobby/temp-1/status", "-m", r#"{"online":true}"#]);
    let (ok, text) = run("mosquitto_pub", &a).await;
    assert!(!ok, "{text}");
    let a = args("temp-1", "temp-1-secret", &["-t", "devices/hq/lobby/lock-1/command", "-C", "1", "-W", "3"]);
    let (_, text) = run("mosquitto_sub", &a).await;
    assert!(text.contains("All subscription requests were denied"), "{text}");
    let a = args(
        "temp-1",
        "temp-1-secret",
        &["-t", "devices/hq/lobby/temp-1/telemetry", "-m", r#"{"metric":"humidity","value":40,"unit":"percent"}"#],
    );
    let (ok, text) = run("mosquitto_pub", &a).await;
    assert!(ok, "{text}");
    let got = tokio::time::timeout(Duration::from_secs(5), s.inbound.recv()).await.unwrap().unwrap();
    assert!(matches!(got.message, DeviceMessage::Telemetry(t) if t.metric == "humidity"));
}
