//! Durable store-and-forward queue of events, on sled.
//!
//! Architecture invariant: this crate knows nothing about HTTP or the cloud. An event appended here
//! stays until [`Spool::ack`] removes it (the cloud confirmed it is stored), [`Spool::quarantine`]
//! moves it aside (the cloud will never accept it, or its bytes are corrupt), or — only for the
//! evictable classes, only when the spool is over its size bound — eviction drops it, which
//! [`Spool::append`] reports so the caller can raise an event about it. Nothing goes silently.
//!
//! **Priority classes** ([`Class`]): alarms > access > detections > telemetry > clips. Each class is
//! its own sled tree; [`Spool::peek`] drains higher classes first, so alarms jump the queue.
//! Order is kept per class (and so per source within a class).
//!
//! **Size bound and eviction:** when an append would push the spool over `max_bytes`, the oldest
//! records of the lowest evictable class go first: clips, then telemetry, then detections.
//! Alarm and access events are never evicted and never expire; an append of them always succeeds
//! while the disk has room, even over the bound.
//!
//! **Disk space:** sled must never meet a full disk: after one failed write (ENOSPC) it refuses
//! every later operation, reads included, until the database is reopened. With a free-space probe
//! ([`SpoolConfig::free_space`]) the spool therefore watches the disk itself: below
//! `reserve_bytes` free it evicts evictable records (oldest, lowest class first) and stores no new
//! evictable ones (reported as evicted like any other eviction), so the remaining room goes to
//! alarms and access events; below `floor_bytes` it writes nothing at all and refuses alarm and
//! access appends with [`SpoolError::DiskFull`] (the caller keeps them and retries), so the database
//! stays usable and everything resumes when space comes back.
//!
//! **On-disk format:** in tree `c<class>`, key = 8-byte big-endian sequence number from sled's
//! `generate_id` (monotonic across restarts, so key order = append order); value = `0x01` (format
//! version) + CRC32 of the payload (little-endian) + CBOR of one [`vigil_proto::Event`]. A record
//! whose checksum or CBOR fails is moved to tree `quarantine` as `reason \0 original bytes`.
//!
//! **Durability:** [`Spool::append`] returns after sled has flushed (fsync) the batch, so an event
//! the daemon has accepted survives a crash or power cut. A batch of events shares one flush, so
//! callers with many events should append them together.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod class;
mod record;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use class::{Class, ClassCounts};
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
    /// The disk is (nearly) full: nothing was written. Retry later; space may come back.
    #[error("disk full: {free_bytes} bytes free, the spool keeps {floor_bytes} untouched")]
    DiskFull { free_bytes: u64, floor_bytes: u64 },
}

impl SpoolError {
    /// Whether the append may succeed later without anyone repairing anything (a full disk).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::DiskFull { .. })
    }
}

/// Where one spooled event lives; what [`Spool::ack`] and [`Spool::quarantine`] take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpoolKey {
    pub class: Class,
    pub seq: u64,
}

/// An event waiting in the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct Spooled {
    pub key: SpoolKey,
    pub event: Event,
}

/// Free bytes on the filesystem holding a path (e.g. `statvfs`'s available blocks).
pub type FreeSpace = fn(&Path) -> std::io::Result<u64>;

/// Settings of a spool.
#[derive(Debug, Clone, Copy)]
pub struct SpoolConfig {
    /// Bound on stored bytes (record values); evictable classes make room beyond it.
    pub max_bytes: u64,
    /// Free disk space kept for alarm and access events: below it, evictable records are evicted
    /// and new evictable events are not stored (both reported as evicted). Needs `free_space`.
    pub reserve_bytes: u64,
    /// Free disk space never used: below it nothing is written ([`SpoolError::DiskFull`] for
    /// alarm and access appends). Needs `free_space`.
    pub floor_bytes: u64,
    /// How to measure free space; `None`: no disk checks (only `max_bytes` applies).
    pub free_space: Option<FreeSpace>,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { max_bytes: 1 << 30, reserve_bytes: 0, floor_bytes: 0, free_space: None }
    }
}

/// The disk under the spool, as the last append (or [`Spool::disk`]) saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskState {
    /// Free bytes; `None` without a probe or when it failed.
    pub free_bytes: Option<u64>,
    /// Below the reserve: only alarm and access events are stored.
    pub low: bool,
    /// Below the floor: nothing is written.
    pub full: bool,
}

/// What an append did besides storing the events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Records evicted (per class) to stay within the size bound.
    pub evicted: ClassCounts,
}

#[derive(Debug, Default)]
struct Usage {
    bytes: ClassCounts,
    records: ClassCounts,
}

/// The sled-backed queue. Cheap to clone; all clones share one database.
#[derive(Debug, Clone)]
pub struct Spool {
    db: sled::Db,
    trees: Arc<[sled::Tree; Class::COUNT]>,
    quarantine: sled::Tree,
    usage: Arc<Mutex<Usage>>,
    config: SpoolConfig,
    path: Arc<Path>,
    /// Appends refused because the disk was full.
    refused: Arc<std::sync::atomic::AtomicU64>,
    /// The disk level the last append saw (0 room, 1 low, 2 full), to log changes once.
    level: Arc<std::sync::atomic::AtomicU8>,
}

impl Spool {
    /// Opens (or creates) the spool in directory `path` with default settings.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        Spool::open_with(path, SpoolConfig::default())
    }

    /// Opens (or creates) the spool in directory `path`.
    pub fn open_with(path: &Path, config: SpoolConfig) -> Result<Spool, SpoolError> {
        let open_err = |source| SpoolError::Open { path: path.to_owned(), source };
        let db = sled::Config::new().path(path).mode(sled::Mode::HighThroughput).open().map_err(open_err)?;
        let mut trees = Vec::with_capacity(Class::COUNT);
        let mut usage = Usage::default();
        for class in Class::ALL {
            let tree = db.open_tree(class.tree_name()).map_err(open_err)?;
            for item in tree.iter() {
                let (_, value) = item.map_err(open_err)?;
                *usage.bytes.get_mut(class) += value.len() as u64;
                *usage.records.get_mut(class) += 1;
            }
            trees.push(tree);
        }
        let trees: [sled::Tree; Class::COUNT] =
            trees.try_into().map_err(|_| open_err(sled::Error::Unsupported("tree count".into())))?;
        let quarantine = db.open_tree("quarantine").map_err(open_err)?;
        Ok(Spool {
            db,
            trees: Arc::new(trees),
            quarantine,
            usage: Arc::new(Mutex::new(usage)),
            config,
            path: Arc::from(path),
            refused: Arc::default(),
            level: Arc::default(),
        })
    }

    fn tree(&self, class: Class) -> &sled::Tree {
        &self.trees[class as usize]
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends events in order (each to its class) and makes them durable before returning,
    /// evicting old records of evictable classes first if the size bound requires it.
    pub fn append(&self, events: &[Event]) -> Result<AppendReport, SpoolError> {
        let mut report = AppendReport::default();
        if events.is_empty() {
            return Ok(report);
        }
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            encoded.push((Class::of(event.kind), record::encode(event)?));
        }
        // One writer at a time: eviction decisions and usage stay consistent.
        let mut usage = self.usage();
        let disk = self.disk();
        self.note_level(disk);
        if disk.low || disk.full {
            // Keep the room for alarms and access: new evictable events are not stored.
            encoded.retain(|(class, _)| {
                if class.is_evictable() {
                    *report.evicted.get_mut(*class) += 1;
                }
                !class.is_evictable()
            });
        }
        let incoming: u64 = encoded.iter().map(|(_, r)| r.len() as u64).sum();
        if disk.full && !encoded.is_empty() {
            drop(usage);
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(SpoolError::DiskFull {
                free_bytes: disk.free_bytes.unwrap_or(0),
                floor_bytes: self.config.floor_bytes,
            });
        }
        if disk.full {
            tracing::debug!(evicted = ?report.evicted, free = ?disk.free_bytes, "Disk full: new evictable events not stored.");
            return Ok(report);
        }
        if disk.low {
            // Old evictable records go too, lowest class first, as if the bound were what is left.
            let deficit = self.config.reserve_bytes.saturating_sub(disk.free_bytes.unwrap_or(0));
            let bound = usage.bytes.total().saturating_sub(deficit.max(incoming));
            self.evict_to(&mut usage, bound, &mut report)?;
        }
        let mut batches: [sled::Batch; Class::COUNT] = Default::default();
        for (class, value) in &encoded {
            let seq = self.db.generate_id()?;
            batches[*class as usize].insert(&seq.to_be_bytes(), value.as_slice());
        }
        self.evict_to(&mut usage, self.config.max_bytes.saturating_sub(incoming), &mut report)?;
        for class in Class::ALL {
            let batch = std::mem::take(&mut batches[class as usize]);
            self.tree(class).apply_batch(batch)?;
        }
        for (class, value) in &encoded {
            *usage.bytes.get_mut(*class) += value.len() as u64;
            *usage.records.get_mut(*class) += 1;
        }
        drop(usage);
        self.db.flush()?;
        Ok(report)
    }

    /// Drops the oldest records of evictable classes until at most `bound` bytes are stored.
    fn evict_to(&self, usage: &mut Usage, bound: u64, report: &mut AppendReport) -> Result<(), SpoolError> {
        for class in Class::EVICTION_ORDER {
            while usage.bytes.total() > bound {
                let Some((_, value)) = self.tree(class).pop_min()? else { break };
                *usage.bytes.get_mut(class) = usage.bytes.get(class).saturating_sub(value.len() as u64);
                *usage.records.get_mut(class) = usage.records.get(class).saturating_sub(1);
                *report.evicted.get_mut(class) += 1;
            }
        }
        if report.evicted.total() > 0 {
            tracing::debug!(evicted = ?report.evicted, max_bytes = self.config.max_bytes, "Spool evicted old records.");
        }
        Ok(())
    }

    /// Up to `max` of the waiting events: highest class first, oldest first within a class.
    /// Records that fail their checksum or no longer decode are moved to quarantine (and counted
    /// there) instead of blocking the queue.
    pub fn peek(&self, max: usize) -> Result<Vec<Spooled>, SpoolError> {
        let mut out = Vec::with_capacity(max.min(1024));
        let mut corrupt = Vec::new();
        for class in Class::ALL {
            for item in self.tree(class).iter() {
                if out.len() >= max {
                    break;
                }
                let (key, value) = item?;
                let seq = record::key_to_seq(&key);
                match (seq, record::decode(&value)) {
                    (Some(seq), Ok(event)) => out.push(Spooled { key: SpoolKey { class, seq }, event }),
                    (_, Err(reason)) => corrupt.push((class, key, reason)),
                    (None, Ok(_)) => corrupt.push((class, key, "bad key".to_owned())),
                }
            }
        }
        for (class, key, reason) in corrupt {
            tracing::error!(class = class.as_str(), key = ?key.as_ref(), %reason, "Corrupt spool record moved to quarantine.");
            match self.move_to_quarantine(class, &key, &reason) {
                Ok(()) => {}
                // Skipped this time, moved once the disk has room.
                Err(error) if error.is_disk_full() => {}
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    /// When the oldest waiting event happened (the head of each class; undecodable records are
    /// skipped here and quarantined by the next [`Spool::peek`]). `None` when the spool is empty.
    pub fn oldest(&self) -> Result<Option<vigil_proto::Timestamp>, SpoolError> {
        let mut oldest: Option<vigil_proto::Timestamp> = None;
        for class in Class::ALL {
            if let Some((_, value)) = self.tree(class).first()?
                && let Ok(event) = record::decode(&value)
            {
                oldest = Some(oldest.map_or(event.occurred_at, |o| o.min(event.occurred_at)));
            }
        }
        Ok(oldest)
    }

    /// Removes events the cloud has stored. Below the disk floor nothing is removed either (a
    /// removal is a write for sled): [`SpoolError::DiskFull`], the events are sent again later and
    /// the cloud deduplicates them.
    pub fn ack(&self, keys: &[SpoolKey]) -> Result<(), SpoolError> {
        let disk = self.disk();
        if disk.full {
            return Err(SpoolError::DiskFull {
                free_bytes: disk.free_bytes.unwrap_or(0),
                floor_bytes: self.config.floor_bytes,
            });
        }
        let mut usage = self.usage();
        for key in keys {
            if let Some(old) = self.tree(key.class).remove(key.seq.to_be_bytes())? {
                *usage.bytes.get_mut(key.class) = usage.bytes.get(key.class).saturating_sub(old.len() as u64);
                *usage.records.get_mut(key.class) = usage.records.get(key.class).saturating_sub(1);
            }
        }
        Ok(())
    }

    /// Moves an event the cloud refused aside, with the reason, so it stops blocking the queue but is
    /// kept for an operator.
    pub fn quarantine(&self, key: SpoolKey, reason: &str) -> Result<(), SpoolError> {
        self.move_to_quarantine(key.class, &key.seq.to_be_bytes(), reason)
    }

    fn move_to_quarantine(&self, class: Class, key: &[u8], reason: &str) -> Result<(), SpoolError> {
        let disk = self.disk();
        if disk.full {
            // Kept where it is (a write below the floor could wreck sled); moved next time.
            return Err(SpoolError::DiskFull {
                free_bytes: disk.free_bytes.unwrap_or(0),
                floor_bytes: self.config.floor_bytes,
            });
        }
        let mut usage = self.usage();
        let Some(value) = self.tree(class).remove(key)? else { return Ok(()) };
        *usage.bytes.get_mut(class) = usage.bytes.get(class).saturating_sub(value.len() as u64);
        *usage.records.get_mut(class) = usage.records.get(class).saturating_sub(1);
        drop(usage);
        let mut record = Vec::with_capacity(reason.len() + 2 + value.len());
        record.push(class as u8);
        record.extend_from_slice(reason.as_bytes());
        record.push(0);
        record.extend_from_slice(&value);
        self.quarantine.insert(self.db.generate_id()?.to_be_bytes(), record)?;
        self.db.flush()?;
        Ok(())
    }

    /// The disk under the spool now (one `statvfs` with a probe configured).
    pub fn disk(&self) -> DiskState {
        let Some(probe) = self.config.free_space else { return DiskState::default() };
        match probe(&self.path) {
            Ok(free) => DiskState {
                free_bytes: Some(free),
                low: free < self.config.reserve_bytes,
                full: free < self.config.floor_bytes,
            },
            Err(error) => {
                tracing::warn!(%error, "Cannot measure the spool's free disk space.");
                DiskState::default()
            }
        }
    }

    /// Logs when the disk level changes (once per change, not per append).
    fn note_level(&self, disk: DiskState) {
        let level = if disk.full { 2 } else { u8::from(disk.low) };
        let before = self.level.swap(level, std::sync::atomic::Ordering::Relaxed);
        if before == level {
            return;
        }
        let (free, reserve, floor) = (disk.free_bytes, self.config.reserve_bytes, self.config.floor_bytes);
        match level {
            2 => tracing::error!(
                ?free,
                floor,
                "Disk full: the spool writes nothing; alarm and access events wait in memory, others are evicted."
            ),
            1 => tracing::warn!(
                ?free,
                reserve,
                "Disk low: detections, telemetry and clips are evicted to keep room for alarms and access events."
            ),
            _ => tracing::info!(?free, "Disk has room again."),
        }
    }

    /// Appends refused since open because the disk was full.
    pub fn refused_disk_full(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events waiting to be sent.
    pub fn len(&self) -> usize {
        self.usage().records.total() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waiting events per class.
    pub fn depth(&self) -> ClassCounts {
        self.usage().records
    }

    /// Stored bytes (record values) of waiting events.
    pub fn bytes(&self) -> u64 {
        self.usage().bytes.total()
    }

    /// Records kept aside (refused by the cloud or corrupt).
    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }

    /// Forces everything to disk (used at shutdown; appends already flush).
    pub fn flush(&self) -> Result<(), SpoolError> {
        self.db.flush()?;
        Ok(())
    }

    /// Test hook: writes raw bytes as if they were a record of `class` (to simulate corruption).
    #[doc(hidden)]
    pub fn insert_raw_for_test(&self, class: Class, bytes: &[u8]) -> Result<u64, SpoolError> {
        let seq = self.db.generate_id()?;
        self.tree(class).insert(seq.to_be_bytes(), bytes)?;
        let mut usage = self.usage();
        *usage.bytes.get_mut(class) += bytes.len() as u64;
        *usage.records.get_mut(class) += 1;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests;
