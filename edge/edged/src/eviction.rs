//! Eviction is never silent: every record the spool drops to stay within its bound is counted,
//! and the counts become an `alert.triggered` event (alarm class: itself never evicted), at most
//! one per [`REPORT_EVERY`] so a full spool cannot flood the queue with reports about itself.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use edge_spool::{ClassCounts, Spool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::{Alert, Event, EventKind, Payload, Severity, Source, SourceKind, Timestamp};

/// How often accumulated evictions are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Shared accumulator of evictions not yet reported.
#[derive(Debug, Clone, Default)]
pub struct EvictionAlerts {
    pending: Arc<Mutex<ClassCounts>>,
    /// Records evicted since start (all classes).
    pub total: Arc<AtomicU64>,
}

impl EvictionAlerts {
    pub fn record(&self, evicted: ClassCounts) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (class, n) in evicted.non_zero() {
            *pending.get_mut(class) += n;
        }
        self.total.fetch_add(evicted.total(), Relaxed);
    }

    fn take(&self) -> ClassCounts {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reports pending evictions every [`REPORT_EVERY`] until cancelled (and once more at the end).
    pub async fn run(self, spool: Spool, tenant: Uuid, site: Uuid, spooled: Arc<Notify>, cancel: CancellationToken) {
        loop {
            let stop = tokio::select! {
                biased;
                _ = cancel.cancelled() => true,
                _ = tokio::time::sleep(REPORT_EVERY) => false,
            };
            let counts = self.take();
            if counts.total() > 0 {
                tracing::warn!(?counts, "Spool evicted records (size bound or low disk); reported as an alert.");
                let now = Timestamp::from(SystemTime::now());
                let event = eviction_alert(counts, tenant, site, now, crate::detect::event_id(now));
                match spool.append(std::slice::from_ref(&event)) {
                    Ok(report) => {
                        self.record(report.evicted);
                        spooled.notify_one();
                    }
                    Err(error) => {
                        // Kept for the next report: the evictions are said once there is room.
                        tracing::error!(%error, ?counts, "Cannot spool the eviction report yet; retrying.");
                        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                        for (class, n) in counts.non_zero() {
                            *pending.get_mut(class) += n;
                        }
                    }
                }
            }
            if stop {
                return;
            }
        }
    }
}

/// The alert that reports `counts` evicted records.
pub fn eviction_alert(counts: ClassCounts, tenant: Uuid, site: Uuid, now: Timestamp, id: Uuid) -> Event {
    let parts: Vec<String> = counts.non_zero().map(|(class, n)| format!("{n} {}", class.as_str())).collect();
    Event {
        id,
        tenant,
        site,
        zone: None,
        source: Source { kind: SourceKind::Edge, id: "spool".into() },
        kind: EventKind::AlertTriggered,
        occurred_at: now,
        payload: Payload::Alert(Alert {
            rule: Some("spool.eviction".into()),
            severity: Severity::Warning,
            message: format!(
                "edge spool full or disk low: evicted {} to keep room for alarms and access events",
                parts.join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use edge_spool::Class;

    use super::*;

    #[test]
    fn the_alert_names_what_was_evicted() {
        let mut counts = ClassCounts::default();
        *counts.get_mut(Class::Telemetry) = 12;
        *counts.get_mut(Class::Detection) = 3;
        let e = eviction_alert(counts, Uuid::nil(), Uuid::nil(), Timestamp(5), Uuid::from_u128(1));
        assert_eq!(e.kind, EventKind::AlertTriggered);
        let Payload::Alert(a) = e.payload else { panic!("not an alert") };
        assert_eq!(
            a.message,
            "edge spool full or disk low: evicted 3 detection, 12 telemetry to keep room for alarms and access events"
        );
        assert_eq!(Class::of(e.kind), Class::Alarm, "reports are never evicted themselves");
    }

    #[test]
    fn evictions_accumulate_until_taken() {
        let alerts = EvictionAlerts::default();
        let mut c = ClassCounts::default();
        *c.get_mut(Class::Clip) = 2;
        alerts.record(c);
        alerts.record(c);
        assert_eq!(alerts.take().get(Class::Clip), 4);
        assert_eq!(alerts.take().total(), 0);
        assert_eq!(alerts.total.load(Relaxed), 4);
    }
}
