//! The uplink's bandwidth cap (`[cloud] max_upload_kbps`), shared by the event sender and the
//! media uploader.
//!
//! Priorities: alarm and access batches never wait (they still pay, so what follows waits for
//! them); other event batches wait for tokens; media waits for tokens *and* for no event batch to
//! be waiting, so clips and snapshots never delay events. Without a cap every call returns at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use edge_core::TokenBucket;

/// How events ask for bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Alarm or access batches: never wait.
    Urgent,
    /// Other event batches.
    Events,
    /// Clips and snapshots: last.
    Media,
}

/// The shared cap (cheap to share in an `Arc`).
#[derive(Debug)]
pub struct Bandwidth {
    bucket: Option<Mutex<TokenBucket>>,
    epoch: Instant,
    events_waiting: AtomicUsize,
    kbps: u64,
}

impl Bandwidth {
    /// A cap of `kbps` kilobits per second; 0 = unlimited.
    pub fn new(kbps: u64) -> Bandwidth {
        let bucket = (kbps > 0).then(|| Mutex::new(TokenBucket::for_kbps(kbps, 0)));
        Bandwidth { bucket, epoch: Instant::now(), events_waiting: AtomicUsize::new(0), kbps }
    }

    /// The cap in kilobits per second (0 = unlimited).
    pub fn kbps(&self) -> u64 {
        self.kbps
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Waits until `bytes` may be sent at `priority`, and takes them.
    pub async fn acquire(&self, bytes: u64, priority: Priority) {
        let Some(bucket) = &self.bucket else { return };
        if priority == Priority::Urgent {
            bucket.lock().unwrap_or_else(|p| p.into_inner()).force_take(self.now_us(), bytes);
            return;
        }
        let _waiting = (priority == Priority::Events).then(|| WaitingGuard::new(&self.events_waiting));
        loop {
            let wait = {
                let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
                let events_first = priority == Priority::Media && self.events_waiting.load(SeqCst) > 0;
                if events_first { Err(20_000) } else { b.try_take(self.now_us(), bytes) }
            };
            match wait {
                Ok(()) => return,
                Err(us) => tokio::time::sleep(Duration::from_micros(us.min(1_000_000))).await,
            }
        }
    }
}

/// Counts an event sender as waiting while it lives (also when its future is dropped).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> WaitingGuard<'a> {
        counter.fetch_add(1, SeqCst);
        WaitingGuard(counter)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn unlimited_never_waits() {
        let b = Bandwidth::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            b.acquire(10 << 20, Priority::Media).await;
        }
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_cap_paces_to_its_rate() {
        // 800 kbit/s = 100 kB/s; burst 25 kB. 125 kB more than the burst takes about 1 s.
        let b = Bandwidth::new(800);
        let start = Instant::now();
        for _ in 0..150 {
            b.acquire(1000, Priority::Events).await;
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((1.0..1.6).contains(&secs), "{secs} s");
    }

    #[tokio::test]
    async fn urgent_batches_pass_at_once_and_media_yields_to_waiting_events() {
        let b = Arc::new(Bandwidth::new(80)); // 10 kB/s, burst 16 KiB
        b.acquire(16 * 1024, Priority::Media).await; // empty the bucket
        let start = Instant::now();
        b.acquire(30_000, Priority::Urgent).await; // an alarm: no wait, 3 s of debt
        assert!(start.elapsed() < Duration::from_millis(50));

        // An event batch waits for the debt; media asked first but must go after it.
        let order = Arc::new(Mutex::new(Vec::new()));
        let media = {
            let (b, order) = (b.clone(), order.clone());
            tokio::spawn(async move {
                b.acquire(1000, Priority::Media).await;
                order.lock().unwrap().push("media");
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let events = {
            let (b, order) = (b.clone(), order.clone());
            tokio::spawn(async move {
                b.acquire(1000, Priority::Events).await;
                order.lock().unwrap().push("events");
            })
        };
        events.await.unwrap();
        media.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["events", "media"]);
        assert!(start.elapsed() >= Duration::from_millis(2500), "the alarm's debt was paid by those after it");
    }
}
