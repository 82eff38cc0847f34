//! Broker throughput with auth and ACLs on (our front + rumqttd) against Debian's Mosquitto 2.0,
//! same rumqttc load client, same message mix, run side by side. Printed, not asserted.
//!
//! `cargo run -p edge-mqtt --release --example throughput [messages]`
//!
//! The load client runs as its own process (this binary with `--client`), for both brokers, as devices
//! would; `THROUGHPUT_CLIENT=inproc` runs it inside the bench process instead (sharing Vigil's runtime).
//!
//! Mix: devices publish 64-byte JSON telemetry on their own topics; one consumer takes everything
//! (on Vigil: the edge's hub, which also parses every payload; on Mosquitto: a rumqttc subscriber
//! on `devices/hq/#` at the same QoS, with Mosquitto's queue limit lifted). Losses are counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use edge_mqtt::{Device, DeviceKind, DeviceRegistry, MqttConfig, RegistryDocument, hash_password};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

const PAYLOAD: &str = r#"{"metric":"temperature","value":21.5,"unit":"celsius-0000000000"}"#;

fn registry(n: usize) -> DeviceRegistry {
    let devices = (0..n)
        .map(|i| Device {
            id: format!("t{i}"),
            zone: "z".into(),
            kind: DeviceKind::Temperature,
            password_sha256: hash_password("pw"),
            config: None,
            firmware: None,
        })
        .collect();
    DeviceRegistry::from_document(RegistryDocument { site: "hq".into(), devices }).expect("registry")
}

async fn client(addr: SocketAddr, id: &str, cap: usize) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_credentials(id, "pw");
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(100);
    let (c, mut el) = AsyncClient::new(o, cap);
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    el.set_network_options(net);
    (c, el)
}

/// Publishes `per` messages from each of `pubs` devices; returns how many the broker acknowledged
/// (QoS 1; 0 for QoS 0).
async fn publish_all(addr: SocketAddr, pubs: usize, per: u64, qos: QoS) -> u64 {
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..pubs {
        let (c, mut el) = client(addr, &format!("t{i}"), 1000).await;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let topic = format!("devices/hq/z/t{i}/telemetry");
            let c2 = c.clone();
            let pub_task = tokio::spawn(async move {
                for _ in 0..per {
                    if c2.publish(topic.clone(), qos, false, PAYLOAD.as_bytes().to_vec()).await.is_err() {
                        return;
                    }
                }
            });
            // done when every publish is acknowledged (QoS 1) or written (QoS 0)
            let mut done = 0;
            while done < per {
                match el.poll().await {
                    Err(_) => break,
                    Ok(Event::Incoming(Incoming::PubAck(_))) if qos == QoS::AtLeastOnce => {
                        acked.fetch_add(1, Relaxed);
                        done += 1;
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) if qos == QoS::AtMostOnce => done += 1,
                    Ok(_) => {}
                }
            }
            let _ = pub_task.await;
            let _ = c.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), el.poll()).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    acked.load(Relaxed)
}

/// Runs the load: in a child process (default) or in this one (`THROUGHPUT_CLIENT=inproc`).
async fn load(addr: SocketAddr, pubs: usize, per: u64, qos: QoS) -> u64 {
    if std::env::var("THROUGHPUT_CLIENT").is_ok_and(|v| v == "inproc") {
        return publish_all(addr, pubs, per, qos).await;
    }
    let Ok(exe) = std::env::current_exe() else { return 0 };
    let qos = if qos == QoS::AtLeastOnce { "1" } else { "0" };
    let out = tokio::process::Command::new(exe)
        .args(["--client", &addr.to_string(), &pubs.to_string(), &per.to_string(), qos])
        .stderr(std::process::Stdio::inherit())
        .output()
        .await;
    out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
}

async fn wait_count(count: &AtomicU64, want: u64) -> Duration {
    let started = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let n = count.load(Relaxed);
        if n >= want {
            return started.elapsed();
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            return started.elapsed() - Duration::from_secs(3);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn vigil(pubs: usize, per: u64, qos: QoS) -> (f64, u64, u64) {
    let cancel = CancellationToken::new();
    let cfg = MqttConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        registry: Arc::new(registry(pubs)),
        max_payload: 4096,
        tls: None,
    };
    let mut sp = edge_mqtt::spawn(&cfg, &cancel).await.expect("spawn");
    let count = Arc::new(AtomicU64::new(0));
    let c2 = count.clone();
    tokio::spawn(async move {
        while sp.inbound.recv().await.is_some() {
            c2.fetch_add(1, Relaxed);
        }
    });
    let want = pubs as u64 * per;
    let started = Instant::now();
    let p = tokio::spawn(load(sp.addr, pubs, per, qos));
    wait_count(&count, want).await;
    let secs = started.elapsed().as_secs_f64();
    let acked = p.await.unwrap_or(0);
    let got = count.load(Relaxed);
    cancel.cancel();
    (got as f64 / secs, want - got.min(want), acked.saturating_sub(got))
}

async fn mosquitto(pubs: usize, per: u64, qos: QoS) -> Option<(f64, u64, u64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let dir = std::env::temp_dir().join(format!("vigil-mosq-{port}"));
    std::fs::create_dir_all(&dir).ok()?;
    let conf = dir.join("m.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 100\n"),
    )
    .ok()?;
    let mut child = tokio::process::Command::new("mosquitto").arg("-c").arg(&conf).kill_on_drop(true).spawn().ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (sub, mut el) = client(addr, "consumer", 10).await;
    sub.subscribe("devices/hq/#", qos).await.ok()?;
    let count = Arc::new(AtomicU64::new(0));
    let c2 = count.clone();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(t) = ready_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    // same work as the hub: parse the JSON
                    let _ = serde_json::from_slice::<edge_mqtt::Telemetry>(&p.payload);
                    c2.fetch_add(1, Relaxed);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    ready_rx.await.ok()?;
    let want = pubs as u64 * per;
    let started = Instant::now();
    let p = tokio::spawn(load(addr, pubs, per, qos));
    wait_count(&count, want).await;
    let secs = started.elapsed().as_secs_f64();
    let acked = p.await.unwrap_or(0);
    let got = count.load(Relaxed);
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Some((got as f64 / secs, want - got.min(want), acked.saturating_sub(got)))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--client") {
        // the load client process: `--client <addr> <publishers> <per publisher> <qos 0|1>`
        let addr: SocketAddr = args[2].parse().expect("addr");
        let (pubs, per): (usize, u64) = (args[3].parse().expect("publishers"), args[4].parse().expect("count"));
        let qos = if args[5] == "1" { QoS::AtLeastOnce } else { QoS::AtMostOnce };
        println!("{}", publish_all(addr, pubs, per, qos).await);
        return;
    }
    let client =
        if std::env::var("THROUGHPUT_CLIENT").is_ok_and(|v| v == "inproc") { "in process" } else { "own process" };
    println!("load client (rumqttc): {client}");
    let total: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    println!(
        "{:<22} {:>12} {:>6} {:>13} {:>16} {:>6} {:>13}",
        "mix (64-byte JSON)", "vigil msg/s", "lost", "acked, lost", "mosquitto msg/s", "lost", "acked, lost"
    );
    for (name, pubs, qos) in [
        ("QoS1 one-to-one", 1, QoS::AtLeastOnce),
        ("QoS0 one-to-one", 1, QoS::AtMostOnce),
        ("QoS1 fifty-to-one", 50, QoS::AtLeastOnce),
    ] {
        // profiling aids: `THROUGHPUT_MIX=QoS0` runs only the mixes whose name contains it,
        // `THROUGHPUT_VIGIL_ONLY=1` skips Mosquitto
        if std::env::var("THROUGHPUT_MIX").is_ok_and(|m| !name.contains(m.as_str())) {
            continue;
        }
        let per = total / pubs as u64;
        let (v, vl, va) = vigil(pubs, per, qos).await;
        let m = match std::env::var_os("THROUGHPUT_VIGIL_ONLY") {
            Some(_) => None,
            None => mosquitto(pubs, per, qos).await,
        };
        let (m, ml, ma) = m.map(|(r, l, a)| (format!("{r:.0}"), l.to_string(), a.to_string())).unwrap_or((
            "n/a".into(),
            "-".into(),
            "-".into(),
        ));
        println!("{name:<22} {v:>12.0} {vl:>6} {va:>13} {m:>16} {ml:>6} {ma:>13}");
    }
}
