//! `kill -9` during sustained appends and drains, many times, against the real spool on disk.
//!
//! The test re-runs its own executable as a child that appends numbered events and drains them,
//! printing `appended N` only after `append` returned (durable) and `removed N` after `ack`
//! returned. The parent SIGKILLs the child at a random moment, 25 times, then checks the spool:
//! every event whose append was confirmed and whose removal was not is still there exactly once, in
//! order. (A removal that was not confirmed may come back: at-least-once, deduplicated by the cloud.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_spool::Spool;
use uuid::Uuid;
use vigil_proto::{Alert, Event, EventKind, Payload, Severity, Source, SourceKind, Timestamp};

const CHILD_ENV: &str = "VIGIL_SPOOL_CRASH_CHILD";

fn event(n: u64) -> Event {
    Event {
        id: Uuid::from_u128(u128::from(n)),
        tenant: Uuid::nil(),
        site: Uuid::nil(),
        zone: None,
        source: Source { kind: SourceKind::Device, id: "panic-button".into() },
        kind: EventKind::AlertTriggered,
        occurred_at: Timestamp(n as i64),
        payload: Payload::Alert(Alert { rule: None, severity: Severity::Critical, message: "x".repeat(100) }),
    }
}

fn open_retrying(path: &Path) -> Spool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Spool::open(path) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The child: appends forever from `start`, draining the oldest events now and then.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let start: u64 = std::env::var("VIGIL_SPOOL_CRASH_START").unwrap().parse().unwrap();
    let spool = open_retrying(Path::new(&dir));
    // Like a real producer, never re-create an event that made it to disk unconfirmed.
    let on_disk = spool.peek(usize::MAX).unwrap().last().map_or(0, |s| s.event.id.as_u128() as u64 + 1);
    let mut n = start.max(on_disk);
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    loop {
        let batch = 1 + (n % 7);
        let events: Vec<Event> = (n..n + batch).map(event).collect();
        spool.append(&events).unwrap();
        writeln!(out, "appended {}", n + batch - 1).unwrap();
        out.flush().unwrap();
        n += batch;
        if n.is_multiple_of(5) {
            let got = spool.peek(3).unwrap();
            let keys: Vec<_> = got.iter().map(|s| s.key).collect();
            spool.ack(&keys).unwrap();
            for s in &got {
                writeln!(out, "removed {}", s.event.id.as_u128()).unwrap();
            }
            out.flush().unwrap();
        }
    }
}

#[test]
fn nothing_confirmed_is_lost_or_duplicated_across_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut appended_upto: Option<u64> = None;
    let mut removed = BTreeSet::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..25 {
        let start = appended_upto.map_or(0, |n| n + 1);
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("VIGIL_SPOOL_CRASH_START", start.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(80 + seed % 400);
        let stdout = child.stdout.take().unwrap();
        let reader =
            std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<String>>());
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let mut progressed = false;
        for line in lines {
            if let Some(n) = line.strip_prefix("appended ") {
                appended_upto = Some(n.parse().unwrap());
                progressed = true;
            } else if let Some(n) = line.strip_prefix("removed ") {
                removed.insert(n.parse::<u64>().unwrap());
            }
        }
        assert!(progressed || round > 0, "the child made no progress in {kill_after:?}");
    }
    let upto = appended_upto.expect("some appends were confirmed");
    let spool = open_retrying(dir.path());
    let present: Vec<u64> = spool.peek(usize::MAX).unwrap().iter().map(|s| s.event.id.as_u128() as u64).collect();
    let unique: BTreeSet<u64> = present.iter().copied().collect();
    assert_eq!(unique.len(), present.len(), "an event is stored twice");
    let mut sorted = present.clone();
    sorted.sort();
    assert_eq!(sorted, present, "order changed");
    for n in 0..=upto {
        if !removed.contains(&n) {
            assert!(unique.contains(&n), "confirmed event {n} lost (confirmed up to {upto})");
        }
    }
    assert_eq!(spool.quarantined(), 0, "no record was torn");
    eprintln!("kill -9 x25: {} events confirmed, {} removed, {} still spooled", upto + 1, removed.len(), present.len());
}
