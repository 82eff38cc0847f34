//! A full disk on the edge, on real processes: the spool lives on a small tmpfs, the cloud is down,
//! detections keep coming and a filler file eats the disk, first down to the spool's reserve, then
//! entirely. The daemon stays up and says so on `/status`; detections and telemetry are evicted
//! (and the eviction reported as an alarm); every access decision and alarm (panic button) reaches
//! the cloud once space and the cloud come back.
//!
//! Needs root (mount), the workspace binaries (`cargo build --workspace --bins`) and
//! `tests/setup/fixtures.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use devsim::{Identity, SimDevice};
use e2e::{Site, SiteOptions};

/// A small tmpfs, unmounted (lazily, so a process still inside cannot keep it) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {} (the tests run as root)", dir.display());
        Tmpfs(dir.to_owned())
    }

    fn free_bytes(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.0).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }

    /// Grows (or shrinks) the filler file so that about `free` bytes stay free.
    fn leave_free(&self, free: u64) {
        let filler = self.0.join("filler");
        let current = std::fs::metadata(&filler).map_or(0, |m| m.len());
        let target = (current + self.free_bytes()).saturating_sub(free);
        let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&filler).unwrap();
        if target < current {
            file.set_len(target).unwrap();
            return;
        }
        // Written, not just sized: tmpfs allocates pages only when they are touched.
        use std::io::{Seek as _, Write as _};
        let mut file = file;
        file.seek(std::io::SeekFrom::Start(current)).unwrap();
        let chunk = vec![0xA5u8; 1 << 20];
        let mut left = target - current;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if file.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = file.sync_all();
    }

    fn remove_filler(&self) {
        let _ = std::fs::remove_file(self.0.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn count(site: &Site, kind: &str) -> usize {
    site.cloud_events(kind).map(|e| e.len()).unwrap_or(0)
}

fn disk_flag(site: &Site, flag: &str) -> bool {
    site.edge_status().is_ok_and(|s| s["disk"][flag] == true)
}

#[test]
fn a_full_disk_evicts_detections_first_keeps_every_access_event_and_alarm_and_the_edge_stays_up() {
    let holder = tempfile::Builder::new().prefix("vigil-disk-").tempdir().unwrap();
    let disk = Tmpfs::mount(&holder.path().join("disk"), 48);
    let mut site = Site::start_with(SiteOptions {
        doors: true,
        spool_dir: Some(disk.0.join("spool")),
        spool_reserve_mb: Some(16),
        ..SiteOptions::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reader = rt
        .block_on(SimDevice::connect(
            Identity {
                broker: ([127, 0, 0, 1], site.mqtt_port.unwrap()).into(),
                site: "hq".into(),
                zone: "lobby".into(),
                id: "reader-1".into(),
                password: "reader-1-pw".into(),
            },
            false,
        ))
        .unwrap();
    let edge_pid = site.edge.as_ref().unwrap().id();
    site.wait_for("first detections in the cloud", Duration::from_secs(120), |s| Ok(count(s, "detection.person") > 0))
        .unwrap();
    site.kill_cloud();
    let mut swipes = 0;
    let mut panics = 0;
    let mut traffic = |n: usize| {
        for i in 0..n {
            rt.block_on(reader.swipe(if i % 2 == 0 { "A1" } else { "UNKNOWN" }, None)).unwrap();
            rt.block_on(reader.telemetry("temperature", 20.0 + i as f64, "C")).unwrap();
            swipes += 1;
        }
        rt.block_on(reader.panic()).unwrap();
        panics += 1;
        std::thread::sleep(Duration::from_millis(300));
    };
    traffic(10);

    // Low: less free than the 16 MiB reserve, more than its 4 MiB floor.
    disk.leave_free(10 << 20);
    site.wait_for("the edge to see the disk low", Duration::from_secs(60), |s| {
        traffic(2);
        Ok(disk_flag(s, "low"))
    })
    .unwrap();
    traffic(10);
    site.wait_for("detections evicted", Duration::from_secs(60), |s| Ok(s.edge_counter("/spool/evicted")? > 0))
        .unwrap();

    // Full: not even the floor is left. The edge writes nothing, keeps decisions in memory, stays up.
    disk.leave_free(1 << 20);
    site.wait_for("the edge to see the disk full", Duration::from_secs(60), |s| {
        traffic(1);
        Ok(disk_flag(s, "full") && s.edge_counter("/disk/appends_refused")? > 0)
    })
    .unwrap();
    traffic(10);
    std::thread::sleep(Duration::from_secs(3));
    let health = reqwest::blocking::get(format!("http://127.0.0.1:{}/health", site.status_port)).unwrap();
    assert!(health.status().is_success(), "the edge stopped answering on a full disk");
    assert!(site.edge.as_mut().unwrap().try_wait().unwrap().is_none(), "the edge died on a full disk");
    let log = std::fs::read_to_string(site.path().join("edge.log")).unwrap();
    assert!(log.contains("Disk full"), "the edge must say the disk is full");
    assert!(!log.contains("panicked"), "the edge panicked");

    // Space and the cloud come back: everything that matters arrives.
    disk.remove_filler();
    site.wait_for("the edge to see room again", Duration::from_secs(60), |s| {
        Ok(!disk_flag(s, "full") && !disk_flag(s, "low"))
    })
    .unwrap();
    site.stop_camera();
    site.start_cloud().unwrap();
    let expected_access = swipes;
    site.wait_for("every access decision and alarm in the cloud", Duration::from_secs(180), |s| {
        let access = count(s, "access.granted") + count(s, "access.denied");
        let alarms = s.cloud_events("alert.triggered")?;
        let panic_alarms = alarms.iter().filter(|a| a.to_string().contains("panic_button")).count();
        Ok(access >= expected_access && panic_alarms >= panics)
    })
    .unwrap();
    let access = count(&site, "access.granted") + count(&site, "access.denied");
    assert_eq!(access, expected_access, "every swipe decided and stored exactly once");
    let alarms = site.cloud_events("alert.triggered").unwrap();
    let panic_alarms = alarms.iter().filter(|a| a.to_string().contains("panic_button")).count();
    assert_eq!(panic_alarms, panics, "every panic stored exactly once");
    site.wait_for("the eviction report in the cloud", Duration::from_secs(60), |s| {
        Ok(s.cloud_events("alert.triggered")?.iter().any(|a| a.to_string().contains("evicted")))
    })
    .unwrap();
    assert_eq!(site.edge.as_ref().unwrap().id(), edge_pid, "the same edge process throughout");
    assert!(site.edge.as_mut().unwrap().try_wait().unwrap().is_none());
    let status = site.edge_status().unwrap();
    assert_eq!(status["devices"]["events_lost"], 0, "{status}");
    eprintln!(
        "full disk: {access} access decisions and {panic_alarms} panic alarms kept, {} records evicted",
        status["spool"]["evicted"]
    );
    rt.block_on(reader.disconnect());
    site.stop_edge().unwrap();
    drop(site);
    drop(disk);
}
