//! Durable store-and-forward queue of events, on sled.
//!
//! Architecture invariant: this crate knows nothing about HTTP or the cloud. An event appended here
//! stays until [`Spool::ack`] removes it (the cloud confirmed it is stored) or [`Spool::quarantine`]
//! moves it aside (the cloud will never accept it, or its bytes are corrupt): nothing is dropped
//! silently.
//!
//! On-disk format: tree `events` maps an 8-byte big-endian sequence number (sled's monotonic
//! `generate_id`, so it keeps growing across restarts) to the CBOR encoding of one
//! [`vigil_proto::Event`]. Iteration order is append order, which keeps events in order per source.
//! Tree `quarantine` maps the same key to `reason \0 original bytes`.
//!
//! Durability: [`Spool::append`] returns after sled has flushed the write to disk, so an event the
//! daemon has accepted survives a power cut.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use std::path::{Path, PathBuf};

use vigil_proto::{Event, codec};

/// Errors of the spool. Every variant means the operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The database could not be opened (permissions, disk, corruption, another process holds it).
    #[error("cannot open spool at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// A read or write failed (disk full, IO error).
    #[error("spool storage error")]
    Storage(#[from] sled::Error),
    /// An event could not be encoded (never expected for proto types).
    #[error("cannot encode event")]
    Encode(#[from] codec::EncodeError),
}

/// An event waiting in the spool, with the sequence number that acks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spooled {
    pub seq: u64,
    pub event: Event,
}

/// The sled-backed queue. Cheap to clone; all clones share one database.
#[derive(Debug, Clone)]
pub struct Spool {
    db: sled::Db,
    events: sled::Tree,
    quarantine: sled::Tree,
}

impl Spool {
    /// Opens (or creates) the spool in directory `path`.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        let open_err = |source| SpoolError::Open { path: path.to_owned(), source };
        let db = sled::Config::new().path(path).mode(sled::Mode::HighThroughput).open().map_err(open_err)?;
        let events = db.open_tree("events").map_err(open_err)?;
        let quarantine = db.open_tree("quarantine").map_err(open_err)?;
        Ok(Spool { db, events, quarantine })
    }

    /// Appends events in order and makes them durable before returning.
    pub fn append(&self, events: &[Event]) -> Result<(), SpoolError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for event in events {
            let seq = self.db.generate_id()?;
            batch.insert(&seq.to_be_bytes(), codec::encode(event)?);
        }
        self.events.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Up to `max` of the oldest events, oldest first. Records that no longer decode are moved to
    /// quarantine (and counted there) instead of blocking the queue.
    pub fn peek(&self, max: usize) -> Result<Vec<Spooled>, SpoolError> {
        let mut out = Vec::with_capacity(max.min(1024));
        let mut corrupt = Vec::new();
        for item in self.events.iter() {
            if out.len() >= max {
                break;
            }
            let (key, value) = item?;
            let Some(seq) = key_to_seq(&key) else {
                corrupt.push((key, value, "bad key".to_owned()));
                continue;
            };
            match codec::decode::<Event>(&value) {
                Ok(event) => out.push(Spooled { seq, event }),
                Err(e) => corrupt.push((key, value, e.to_string())),
            }
        }
        for (key, value, reason) in corrupt {
            tracing::error!(key = ?key.as_ref(), %reason, "Undecodable spool record moved to quarantine.");
            self.move_to_quarantine(&key, &value, &reason)?;
        }
        Ok(out)
    }

    /// Removes events the cloud has stored.
    pub fn ack(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        let mut batch = sled::Batch::default();
        for seq in seqs {
            batch.remove(&seq.to_be_bytes());
        }
        self.events.apply_batch(batch)?;
        Ok(())
    }

    /// Moves an event the cloud refused aside, with the reason, so it stops blocking the queue but is
    /// kept for an operator.
    pub fn quarantine(&self, seq: u64, reason: &str) -> Result<(), SpoolError> {
        let key = seq.to_be_bytes();
        if let Some(value) = self.events.get(key)? {
            self.move_to_quarantine(&key, &value, reason)?;
        }
        Ok(())
    }

    fn move_to_quarantine(&self, key: &[u8], value: &[u8], reason: &str) -> Result<(), SpoolError> {
        let mut record = Vec::with_capacity(reason.len() + 1 + value.len());
        record.extend_from_slice(reason.as_bytes());
        record.push(0);
        record.extend_from_slice(value);
        self.quarantine.insert(key, record)?;
        self.events.remove(key)?;
        self.db.flush()?;
        Ok(())
    }

    /// Events waiting to be sent.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Records kept aside (refused by the cloud or undecodable).
    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// Forces everything to disk (used at shutdown; appends already flush).
    pub fn flush(&self) -> Result<(), SpoolError> {
        self.db.flush()?;
        Ok(())
    }

    /// Test hook: writes raw bytes as if they were an event record (to simulate corruption).
    #[doc(hidden)]
    pub fn insert_raw_for_test(&self, bytes: &[u8]) -> Result<u64, SpoolError> {
        let seq = self.db.generate_id()?;
        self.events.insert(seq.to_be_bytes(), bytes)?;
        Ok(seq)
    }
}

fn key_to_seq(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

#[cfg(test)]
mod tests;
