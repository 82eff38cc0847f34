//! Drains the spool to the cloud: the only code that knows both the spool and the uplink.
//!
//! Invariant: an event leaves the spool only when the cloud acknowledged it as stored (or refused
//! it for good, in which case it moves to quarantine). Any failure leaves the batch in place and
//! retries with jittered exponential backoff, so a dead cloud costs nothing but delay.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use edge_core::Backoff;
use edge_spool::{Class, Spool, SpoolKey};
use edge_uplink::{Uplink, UplinkError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vigil_proto::{AckStatus, EventBatch, SCHEMA_VERSION, Timestamp};

use crate::bandwidth::{Bandwidth, Priority};
use crate::enrol::Identity;
use crate::stats::UplinkStats;

pub struct Sender {
    pub spool: Spool,
    pub uplink: Uplink,
    pub spooled: Arc<Notify>,
    pub batch_max: usize,
    pub backoff: Backoff,
    pub stats: Arc<UplinkStats>,
    /// Stamped on events recorded before the edge was enrolled (nil tenant and site).
    pub identity: Identity,
    /// The upload cap shared with the media uploader.
    pub bandwidth: Arc<Bandwidth>,
}

impl Sender {
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut batch_max = self.batch_max;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let items = match self.spool.peek(batch_max) {
                Ok(items) => items,
                Err(error) => {
                    tracing::error!(%error, "Cannot read the spool.");
                    self.pause(&cancel).await;
                    continue;
                }
            };
            if items.is_empty() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    _ = self.spooled.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let keys: Vec<SpoolKey> = items.iter().map(|s| s.key).collect();
            let identity = self.identity.get();
            // Alarms and access decisions never wait for the bandwidth cap (the spool already
            // sends them first); other batches wait, and media waits for them.
            let priority = if keys.iter().any(|k| matches!(k.class, Class::Alarm | Class::Access)) {
                Priority::Urgent
            } else {
                Priority::Events
            };
            let batch = EventBatch {
                schema: SCHEMA_VERSION,
                sent_at: Timestamp::from(SystemTime::now()),
                events: items
                    .into_iter()
                    .map(|s| {
                        let mut event = s.event;
                        if let Some((tenant, site)) = identity
                            && event.tenant.is_nil()
                        {
                            event.tenant = tenant;
                            event.site = site;
                        }
                        event
                    })
                    .collect(),
            };
            let send = async {
                let body = Uplink::encode(&batch)?;
                self.bandwidth.acquire(body.len() as u64, priority).await;
                self.uplink.send_encoded(&batch, body).await
            };
            let result = tokio::select! {
                biased;
                // An interrupted upload leaves the batch spooled: it is sent again next time and
                // the cloud deduplicates it.
                _ = cancel.cancelled() => return,
                r = send => r,
            };
            match result {
                Ok(ack) => {
                    let mut done = Vec::with_capacity(keys.len());
                    for (key, (event, result)) in keys.iter().zip(batch.events.iter().zip(&ack.results)) {
                        match &result.status {
                            AckStatus::Stored | AckStatus::Duplicate => done.push(*key),
                            AckStatus::Rejected { reason } => {
                                self.stats.events_rejected.fetch_add(1, Relaxed);
                                tracing::error!(id = %event.id, kind = %event.kind, %reason, "Cloud refused an event; kept in quarantine.");
                                if let Err(error) = self.spool.quarantine(*key, reason) {
                                    tracing::error!(%error, "Cannot quarantine a refused event.");
                                }
                            }
                        }
                    }
                    let ack_failed = match self.spool.ack(&done) {
                        Ok(()) => false,
                        Err(error) => {
                            // The events stay spooled and are sent again; the cloud deduplicates.
                            tracing::error!(%error, "Cannot remove acknowledged events from the spool.");
                            true
                        }
                    };
                    self.stats.batches_sent.fetch_add(1, Relaxed);
                    self.stats.events_acked.fetch_add(done.len() as u64, Relaxed);
                    self.stats.last_success_micros.store(Timestamp::from(SystemTime::now()).as_micros(), Relaxed);
                    if self.backoff.attempts() > 0 {
                        tracing::info!(backlog = self.spool.len(), "Cloud reachable again; sending backlog.");
                    }
                    self.stats.set_state("ok");
                    self.backoff.reset();
                    batch_max = self.batch_max;
                    if ack_failed {
                        // Not straight back to the same batch: wait for the disk (or whatever it is).
                        self.pause(&cancel).await;
                    }
                }
                Err(UplinkError::TooLarge) if batch_max > 1 => {
                    batch_max = (batch_max / 2).max(1);
                    tracing::warn!(batch_max, "Cloud says the batch is too large; sending smaller batches.");
                }
                Err(UplinkError::NotEnrolled) => {
                    if self.stats.state() != "not_enrolled" {
                        tracing::warn!(
                            backlog = self.spool.len(),
                            "This edge is not enrolled: events stay spooled until it is (vigil-edge enrol, or the status page)."
                        );
                        self.stats.set_state("not_enrolled");
                    }
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(error) => {
                    if matches!(error, UplinkError::Unauthorized(_)) && self.stats.state() != "unauthorized" {
                        tracing::error!(%error, backlog = self.spool.len(), "The cloud refuses this edge's credential (revoked or unknown): nothing is lost, events stay spooled and are retried; re-enrol the edge with a new claim code.");
                    }
                    self.stats.set_state(match error {
                        UplinkError::Unauthorized(_) => "unauthorized",
                        UplinkError::Unavailable(_) | UplinkError::Protocol(_) => "unreachable",
                        _ => "refused",
                    });
                    self.stats.failures.fetch_add(1, Relaxed);
                    *self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
                    if self.backoff.attempts() == 0 {
                        tracing::warn!(%error, backlog = self.spool.len(), "Upload failed; events stay spooled and will be retried.");
                    } else {
                        tracing::debug!(%error, "Upload failed again.");
                    }
                    if !error.is_retryable() {
                        tracing::error!(%error, "Cloud refused a whole batch; an operator must look at it.");
                    }
                    self.pause(&cancel).await;
                }
            }
        }
    }

    async fn pause(&mut self, cancel: &CancellationToken) {
        let delay = self.backoff.next_delay(rand::random::<f64>());
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}
