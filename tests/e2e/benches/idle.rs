//! Idle uplink traffic: what an edge whose camera sees nothing worth an event costs on the WAN
//! (heartbeats, the remote-command long-poll, TLS-less HTTP framing), measured at a TCP proxy in
//! front of the cloud. Prints bytes and kbit/s. Production heartbeat interval (60 s).
//! `cargo build --workspace --bins && cargo bench -p e2e --bench idle` (env `VIGIL_BENCH_SECS`, default 180).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use e2e::{Site, SiteOptions};

fn main() {
    let secs: u64 = std::env::var("VIGIL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(180);
    // Nothing the detector finds passes the filter: the camera streams and is analysed, no events.
    let quiet = "[cameras.filters]\nmin_area = 0.99\n".to_owned();
    let opts = SiteOptions {
        analyze_fps: 2.0,
        wan_proxy: true,
        analytics: Some(quiet),
        heartbeat_secs: 60,
        ..SiteOptions::default()
    };
    let site = Site::start_with(opts).unwrap();
    std::thread::sleep(Duration::from_secs(10)); // settle: first heartbeat, first poll
    let wan = site.wan.as_ref().unwrap();
    let (b0, t0) = (wan.bytes(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let bytes = wan.bytes() - b0;
    let elapsed = t0.elapsed().as_secs_f64();
    let events = site.edge_counter("/detector/events_created").unwrap_or(0);
    println!(
        "idle edge, 1 camera, {elapsed:.0} s: {bytes} bytes on the WAN = {:.3} kbit/s ({events} analysis events)",
        bytes as f64 * 8.0 / elapsed / 1000.0
    );
}
